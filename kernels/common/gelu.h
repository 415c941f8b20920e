// gelu.h — GPT-2's tanh-approximated GELU and its derivative, shared by C++, OpenCL C
// and GLSL (each target's own tanh; results agree within a few ulps, not bit for bit).
#ifndef PORTA_KERNELS_GELU_H
#define PORTA_KERNELS_GELU_H
#include "common/portable.h"
#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
#include <cmath>
namespace porta::kernels {
#define porta_tanh(x) std::tanh(x)
#else
#define porta_tanh(x) tanh(x)
#endif

// sqrt(2 / pi) and the cubic coefficient of the approximation.
#define PORTA_GELU_SCALE 0.7978845608028654f
#define PORTA_GELU_CUBIC 0.044715f

PORTA_FN float porta_gelu(float x) {
  float inner = PORTA_GELU_SCALE * (x + PORTA_GELU_CUBIC * x * x * x);
  return 0.5f * x * (1.0f + porta_tanh(inner));
}

// d gelu(x) / dx
PORTA_FN float porta_gelu_derivative(float x) {
  float inner = PORTA_GELU_SCALE * (x + PORTA_GELU_CUBIC * x * x * x);
  float t = porta_tanh(inner);
  float d_inner = PORTA_GELU_SCALE * (1.0f + 3.0f * PORTA_GELU_CUBIC * x * x);
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * d_inner;
}

#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
}  // namespace porta::kernels
#endif
#endif

// gelu.h — GPT-2's tanh-approximated GELU and its derivative, shared by C++, OpenCL C
// and GLSL (each target's own exp; results agree within a few ulps, not bit for bit).
#ifndef PORTA_KERNELS_GELU_H
#define PORTA_KERNELS_GELU_H
#include "common/portable.h"
#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
#include <algorithm>
#include <cmath>
namespace porta::kernels {
#define porta_exp(x) std::exp(x)
#define porta_min(a, b) std::min(a, b)
#define porta_max(a, b) std::max(a, b)
#else
#define porta_exp(x) exp(x)
#define porta_min(a, b) min(a, b)
#define porta_max(a, b) max(a, b)
#endif

// sqrt(2 / pi) and the cubic coefficient of the approximation.
#define PORTA_GELU_SCALE 0.7978845608028654f
#define PORTA_GELU_CUBIC 0.044715f

// With e = exp(2u): (1 + tanh u) / 2 = e / (1 + e) and 1 - tanh^2 u = 4e / (1 + e)^2.
// One exp instead of the target's tanh (loose on some devices: lavapipe's is 4x worse
// than glibc's), and no cancellation where tanh is near -1 or 1. |u| <= 15 keeps e
// finite; beyond it the results are exact in f32 anyway.
PORTA_FN float porta_gelu_exp2u(float u) { return porta_exp(2.0f * porta_min(porta_max(u, -15.0f), 15.0f)); }

PORTA_FN float porta_gelu(float x) {
  float e = porta_gelu_exp2u(PORTA_GELU_SCALE * (x + PORTA_GELU_CUBIC * x * x * x));
  return x * (e / (1.0f + e));
}

// d gelu(x) / dx
PORTA_FN float porta_gelu_derivative(float x) {
  float e = porta_gelu_exp2u(PORTA_GELU_SCALE * (x + PORTA_GELU_CUBIC * x * x * x));
  float d_inner = PORTA_GELU_SCALE * (1.0f + 3.0f * PORTA_GELU_CUBIC * x * x);
  return e / (1.0f + e) + 0.5f * x * (4.0f * e / ((1.0f + e) * (1.0f + e))) * d_inner;
}

#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
}  // namespace porta::kernels
#endif
#endif

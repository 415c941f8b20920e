// params.h — arguments of the elementwise kernels, shared by C++, OpenCL C and GLSL.
#ifndef PORTA_KERNELS_ELEMENTWISE_PARAMS_H
#define PORTA_KERNELS_ELEMENTWISE_PARAMS_H
#include "common/gelu.h"
#include "common/portable.h"
#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
namespace porta::kernels {
#endif

#define PORTA_ELEMENTWISE_ADD 0u    // out = a + b
#define PORTA_ELEMENTWISE_MUL 1u    // out = a * b
#define PORTA_ELEMENTWISE_AXPBY 2u  // out = alpha * a + beta * b
#define PORTA_ELEMENTWISE_GELU 3u   // out = gelu(a)            (b unused; kernels/common/gelu.h)
#define PORTA_ELEMENTWISE_GELU_BACKWARD 4u  // out = a * gelu'(b)  (a: gradient, b: gelu's input)

// Contiguous a, b and out of one float dtype; arithmetic in f32.
struct ElementwiseParams {
  uint count;
  uint op;
  uint dtype;
  uint a_offset;
  uint b_offset;
  uint out_offset;
  float alpha;
  float beta;
};

#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
}  // namespace porta::kernels
#endif
#endif

// params.h — arguments of the row softmax kernel (the middle step of unfused attention),
// shared by C++, OpenCL C and GLSL.
#ifndef PORTA_KERNELS_SOFTMAX_PARAMS_H
#define PORTA_KERNELS_SOFTMAX_PARAMS_H
#include "common/portable.h"
#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
namespace porta::kernels {
#endif

// `rows` contiguous f32 rows of n scores; row r is query (r % nq) of an attention with
// nq queries and n keys. out[r][j] = exp(scale * in[r][j] - lse[r]) for visible keys
// (with causal: j <= (r % nq) + n - nq, bottom-right aligned), 0 for hidden ones;
// lse[r] = log sum over visible j of exp(scale * in[r][j]), -inf when none is visible.
struct SoftmaxParams {
  uint rows;
  uint n;
  uint nq;
  uint causal;
  float scale;
  uint in_offset;
  uint out_offset;
  uint lse_offset;
};

#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
}  // namespace porta::kernels
#endif
#endif

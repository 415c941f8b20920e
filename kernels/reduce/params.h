// params.h — arguments of the row-sum kernel, shared by C++, OpenCL C and GLSL.
#ifndef PORTA_KERNELS_REDUCE_PARAMS_H
#define PORTA_KERNELS_REDUCE_PARAMS_H
#include "common/portable.h"
#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
namespace porta::kernels {
#endif

// Input: `rows` contiguous rows of n elements. Each row is cut into `chunks` pieces of
// `chunk` elements (the last may be shorter); out[out_offset + row * chunks + c] is the
// f32-accumulated sum of piece c of row `row`. Two launches (chunks > 1, then chunks = 1
// over the partial sums) give a long row parallelism. Every backend sums in a fixed
// order, so results repeat bit for bit.
struct ReduceParams {
  uint rows;
  uint n;
  uint chunk;
  uint chunks;
  uint in_dtype;
  uint out_dtype;
  uint in_offset;
  uint out_offset;
};

#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
}  // namespace porta::kernels
#endif
#endif

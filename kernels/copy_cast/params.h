// params.h — arguments of the strided copy-and-cast kernel, shared by C++, OpenCL C and GLSL.
#ifndef PORTA_KERNELS_COPY_CAST_PARAMS_H
#define PORTA_KERNELS_COPY_CAST_PARAMS_H
#include "common/portable.h"
#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
namespace porta::kernels {
#endif

#define PORTA_MAX_RANK 8

// Reads a strided view of rank `rank` (element strides, innermost last), writes it
// contiguous at out_offset. Same dtype: bits copied as they are; otherwise through float.
struct CopyCastParams {
  uint count;
  uint in_dtype;
  uint out_dtype;
  uint rank;
  uint in_offset;
  uint out_offset;
  uint shape[PORTA_MAX_RANK];
  int in_strides[PORTA_MAX_RANK];
};

#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
}  // namespace porta::kernels
#endif
#endif

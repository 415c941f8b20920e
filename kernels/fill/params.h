// params.h — arguments of the fill kernel, one struct shared by C++, OpenCL C and GLSL.
#ifndef PORTA_KERNELS_FILL_PARAMS_H
#define PORTA_KERNELS_FILL_PARAMS_H
#include "common/portable.h"
#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
namespace porta::kernels {
#endif

// out[out_offset + i] = value for i < count; value is already in the dtype's bit pattern.
struct FillParams {
  uint count;
  uint dtype;
  uint out_offset;
  uint value_bits;
};

#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
}  // namespace porta::kernels
#endif
#endif

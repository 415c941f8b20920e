// params.h — arguments of the random generator kernel, shared by C++, OpenCL C and GLSL.
#ifndef PORTA_KERNELS_RANDOM_PARAMS_H
#define PORTA_KERNELS_RANDOM_PARAMS_H
#include "common/portable.h"
#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
namespace porta::kernels {
#endif

#define PORTA_RANDOM_UNIFORM 0u  // a + (b - a) * U[0, 1)
#define PORTA_RANDOM_NORMAL 1u   // a + b * N(0, 1)

// Element i is a pure function of (seed, offset + i): the same on every device.
struct RandomParams {
  uint count;
  uint dtype;
  uint distribution;
  uint out_offset;
  uint seed_lo;
  uint seed_hi;
  uint counter_lo;
  uint counter_hi;
  float a;
  float b;
};

#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
}  // namespace porta::kernels
#endif
#endif

// opencl_access.h — typed element access for the OpenCL kernels: a buffer of any dtype
// read and written as float (16-bit types travel as their raw bits).
#ifndef PORTA_KERNELS_OPENCL_ACCESS_H
#define PORTA_KERNELS_OPENCL_ACCESS_H
#include "common/portable.h"

PORTA_FN float porta_cl_load(__global const uchar* base, uint dtype, size_t index) {
  if (dtype == PORTA_DTYPE_F32) return ((__global const float*)base)[index];
  return porta_bits_to_float(((__global const ushort*)base)[index], dtype);
}

PORTA_FN void porta_cl_store(__global uchar* base, uint dtype, size_t index, float value) {
  if (dtype == PORTA_DTYPE_F32) {
    ((__global float*)base)[index] = value;
  } else {
    ((__global ushort*)base)[index] = (ushort)porta_float_to_bits(value, dtype);
  }
}

#endif

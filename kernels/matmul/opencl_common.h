// opencl_common.h — element access and the fused epilogue shared by the OpenCL matmul kernels.
#ifndef PORTA_KERNELS_MATMUL_OPENCL_COMMON_H
#define PORTA_KERNELS_MATMUL_OPENCL_COMMON_H
#include "common/gelu.h"
#include "common/portable.h"
#include "matmul/params.h"

#define PORTA_CAT_(a, b) a##b
#define PORTA_CAT(a, b) PORTA_CAT_(a, b)

// One element of a buffer of `dtype` as float (16-bit types travel as their raw bits).
PORTA_FN float porta_mm_load(__global const uchar* base, uint dtype, uint index) {
  if (dtype == PORTA_DTYPE_F32) return ((__global const float*)base)[index];
  return porta_bits_to_float(((__global const ushort*)base)[index], dtype);
}

PORTA_FN void porta_mm_store(__global uchar* base, uint dtype, uint index, float value) {
  if (dtype == PORTA_DTYPE_F32) {
    ((__global float*)base)[index] = value;
  } else {
    ((__global ushort*)base)[index] = (ushort)porta_float_to_bits(value, dtype);
  }
}

// C[index] = epilogue(alpha * acc + beta * C[index] + bias[j]); beta == 0 never reads C.
PORTA_FN void porta_mm_finish(__global uchar* c, __global const uchar* bias, uint index, uint j, float acc,
                              struct MatmulParams p) {
  float value = p.alpha * acc;
  if (p.beta != 0.0f) value += p.beta * porta_mm_load(c, p.c_dtype, index);
  if (p.has_bias != 0u) value += porta_mm_load(bias, p.bias_dtype, p.bias_offset + j);
  if (p.epilogue == PORTA_EPILOGUE_GELU) value = porta_gelu(value);
  porta_mm_store(c, p.c_dtype, index, value);
}

#endif

// opencl_common.h — the fused epilogue and helpers shared by the OpenCL matmul kernels.
#ifndef PORTA_KERNELS_MATMUL_OPENCL_COMMON_H
#define PORTA_KERNELS_MATMUL_OPENCL_COMMON_H
#include "common/gelu.h"
#include "common/opencl_access.h"
#include "common/portable.h"
#include "matmul/params.h"

#define PORTA_CAT_(a, b) a##b
#define PORTA_CAT(a, b) PORTA_CAT_(a, b)

// C[index] = epilogue(alpha * acc + beta * C[index] + bias[j]); beta == 0 never reads C.
PORTA_FN void porta_mm_finish(__global uchar* c, __global const uchar* bias, uint index, uint j, float acc,
                              struct MatmulParams p) {
  float value = p.alpha * acc;
  if (p.beta != 0.0f) value += p.beta * porta_cl_load(c, p.c_dtype, index);
  if (p.has_bias != 0u) value += porta_cl_load(bias, p.bias_dtype, p.bias_offset + j);
  if (p.epilogue == PORTA_EPILOGUE_GELU) value = porta_gelu(value);
  porta_cl_store(c, p.c_dtype, index, value);
}

#endif

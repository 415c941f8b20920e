// opencl.cl — the naive OpenCL matmul: one work-item per element of C, a plain dot product.
// The reference the fast kernels are checked against; also the only one that takes k == 0.
#include "matmul/opencl_common.h"

// Grid: x over columns, y over rows, z over the batch.
__kernel void porta_matmul_naive(__global const uchar* a, __global const uchar* b, __global const uchar* bias,
                                 __global uchar* c, struct MatmulParams p) {
  uint j = (uint)get_global_id(0);
  uint i = (uint)get_global_id(1);
  uint z = (uint)get_global_id(2);
  if (i >= p.m || j >= p.n || z >= p.batch) return;
  uint a_base = p.a_offset + z * p.batch_stride_a;
  uint b_base = p.b_offset + z * p.batch_stride_b;
  // Step through A and B with the strides of op(A) row i and op(B) column j.
  uint a_index = a_base + (p.trans_a != 0u ? i : i * p.lda);
  uint a_step = p.trans_a != 0u ? p.lda : 1u;
  uint b_index = b_base + (p.trans_b != 0u ? j * p.ldb : j);
  uint b_step = p.trans_b != 0u ? 1u : p.ldb;
  float acc = 0.0f;
  if (p.ab_dtype == PORTA_DTYPE_F32) {
    __global const float* af = (__global const float*)a;
    __global const float* bf = (__global const float*)b;
    for (uint q = 0; q < p.k; ++q) {
      acc += af[a_index] * bf[b_index];
      a_index += a_step;
      b_index += b_step;
    }
  } else {
    for (uint q = 0; q < p.k; ++q) {
      acc += porta_cl_load(a, p.ab_dtype, a_index) * porta_cl_load(b, p.ab_dtype, b_index);
      a_index += a_step;
      b_index += b_step;
    }
  }
  porta_mm_finish(c, bias, p.c_offset + z * p.batch_stride_c + i * p.ldc + j, j, acc, p);
}

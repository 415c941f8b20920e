// params.h — arguments of the matmul kernels, one struct shared by C++, OpenCL C and GLSL.
#ifndef PORTA_KERNELS_MATMUL_PARAMS_H
#define PORTA_KERNELS_MATMUL_PARAMS_H
#include "common/portable.h"
#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
namespace porta::kernels {
#endif

#define PORTA_EPILOGUE_NONE 0u
#define PORTA_EPILOGUE_GELU 1u  // GPT-2's tanh approximation

// For every batch index z < batch, with all matrices row-major and element offsets:
//   A_z = a + a_offset + z * batch_stride_a: m x k (trans_a = 0, A[i][p] at i*lda + p)
//                                          or k x m (trans_a = 1, A[p][i] at p*lda + i)
//   B_z = b + b_offset + z * batch_stride_b: k x n (trans_b = 0, B[p][j] at p*ldb + j)
//                                          or n x k (trans_b = 1, B[j][p] at j*ldb + p)
//   C_z = c + c_offset + z * batch_stride_c: m x n, C[i][j] at i*ldc + j
//   acc = sum over p of op(A)[i][p] * op(B)[p][j], in f32, whatever the operand dtype
//   v = alpha * acc + (beta != 0 ? beta * C[i][j] : 0) + (has_bias ? bias[bias_offset + j] : 0)
//   C[i][j] = epilogue(v), stored as c_dtype
// A batch stride of 0 broadcasts one matrix over the batch. beta == 0 never reads C
// (it may hold NaN). a and b share one dtype (f32, f16, bf16); c_dtype is f32 or that
// dtype; bias_dtype is f32 or the operands' dtype. m, n, k, batch >= 1.
struct MatmulParams {
  uint m;
  uint n;
  uint k;
  uint batch;
  uint trans_a;
  uint trans_b;
  uint lda;
  uint ldb;
  uint ldc;
  uint a_offset;
  uint b_offset;
  uint c_offset;
  uint bias_offset;
  uint batch_stride_a;
  uint batch_stride_b;
  uint batch_stride_c;
  uint ab_dtype;
  uint c_dtype;
  uint bias_dtype;
  uint has_bias;
  uint epilogue;
  float alpha;
  float beta;
  uint reserved;
};

#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
}  // namespace porta::kernels
#endif
#endif

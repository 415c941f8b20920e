// params.h — arguments of the attention kernels, one struct shared by C++, OpenCL C and GLSL.
#ifndef PORTA_KERNELS_ATTENTION_PARAMS_H
#define PORTA_KERNELS_ATTENTION_PARAMS_H
#include "common/portable.h"
#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
namespace porta::kernels {
#endif

// Q: [batch, heads_q, nq, d], K and V: [batch, heads_kv, nk, d], each addressed as
// offset + b * stride_b + h * stride_h + i * stride_n + x (unit stride along d), so
// [B, N, H, D] buffers work without a copy. Query head h reads K/V head
// h / (heads_q / heads_kv) (grouped and multi-query attention).
// Forward: O (contiguous [batch, heads_q, nq, d], dtype) and LSE (contiguous
// [batch, heads_q, nq], f32): S = scale * Q K^T, with causal masking aligned to the
// bottom right (query i sees keys j <= i + nk - nq); O = softmax(S) V; LSE = log-sum-exp
// of each row of S. A row with no visible key gives O = 0 and LSE = -inf.
// Backward (same params; dO and O contiguous like O): dQ like O, dK and dV contiguous
// [batch, heads_kv, nk, d] (dtype), summed over the query heads sharing them.
struct AttentionParams {
  uint batch;
  uint heads_q;
  uint heads_kv;
  uint nq;
  uint nk;
  uint d;
  uint causal;
  uint dtype;
  float scale;
  uint q_offset;
  uint q_stride_b;
  uint q_stride_h;
  uint q_stride_n;
  uint k_offset;
  uint k_stride_b;
  uint k_stride_h;
  uint k_stride_n;
  uint v_offset;
  uint v_stride_b;
  uint v_stride_h;
  uint v_stride_n;
  uint reserved0;
  uint reserved1;
  uint reserved2;
};

#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
}  // namespace porta::kernels
#endif
#endif

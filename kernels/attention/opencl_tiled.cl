// opencl_tiled.cl — fused attention forward for GPUs: one work-group per block of TQ query
// rows (one row per work-item, its output row in registers), K and V staged TK keys at a
// time through local memory and shared by the group, with an online softmax per tile.
#include "attention/opencl_common.h"

#ifndef PORTA_TQ
#define PORTA_TQ 64  // query rows per work-group = work-items per group
#endif
#ifndef PORTA_TK
#define PORTA_TK 32  // keys per local-memory tile
#endif

// Grid: x over query rows (groups of TQ), y over query heads, z over the batch.
__kernel __attribute__((reqd_work_group_size(PORTA_TQ, 1, 1))) void porta_attention_forward_tiled(
    __global const uchar* q, __global const uchar* k, __global const uchar* v, __global uchar* out,
    __global float* lse, struct AttentionParams p) {
  __local float key_tile[PORTA_TK][PORTA_D];
  __local float value_tile[PORTA_TK][PORTA_D];
  uint lid = (uint)get_local_id(0);
  uint i = (uint)get_group_id(0) * PORTA_TQ + lid;
  uint h = (uint)get_global_id(1);
  uint b = (uint)get_global_id(2);
  uint hk = h / (p.heads_q / p.heads_kv);
  bool valid = i < p.nq;
  float scale_log2 = p.scale * PORTA_LOG2E;

  float row[PORTA_D];
  float acc[PORTA_D];
  size_t at = porta_at_row(p, 0u, b, h, min(i, p.nq - 1u));
  for (uint x = 0; x < PORTA_D; ++x) {
    row[x] = valid ? porta_cl_load(q, p.dtype, at + x) * scale_log2 : 0.0f;
    acc[x] = 0.0f;
  }
  int limit = valid ? porta_at_last_key(p, i) : -1;
  // The loop bound must be the same for the whole group (barriers): its last row's.
  uint group_last = min((uint)get_group_id(0) * PORTA_TQ + PORTA_TQ - 1u, p.nq - 1u);
  int keys = porta_at_last_key(p, group_last) + 1;
  float maximum = -INFINITY;
  float total = 0.0f;
  for (int t0 = 0; t0 < keys; t0 += PORTA_TK) {
    barrier(CLK_LOCAL_MEM_FENCE);  // the previous tile is no longer read
    for (uint e = lid; e < PORTA_TK * PORTA_D; e += PORTA_TQ) {
      uint jj = e / PORTA_D;
      uint x = e % PORTA_D;
      uint j = (uint)t0 + jj;
      bool inside = j < p.nk;
      key_tile[jj][x] = inside ? porta_cl_load(k, p.dtype, porta_at_row(p, 1u, b, hk, j) + x) : 0.0f;
      value_tile[jj][x] = inside ? porta_cl_load(v, p.dtype, porta_at_row(p, 2u, b, hk, j) + x) : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    float s[PORTA_TK];
    float tile_max = -INFINITY;
    for (uint jj = 0; jj < PORTA_TK; ++jj) {
      float dot = 0.0f;
      for (uint x = 0; x < PORTA_D; ++x) dot = fma(row[x], key_tile[jj][x], dot);
      s[jj] = t0 + (int)jj <= limit ? dot : -INFINITY;
      tile_max = fmax(tile_max, s[jj]);
    }
    float new_max = fmax(maximum, tile_max);
    float base = new_max == -INFINITY ? 0.0f : new_max;
    float correction = porta_at_exp2(maximum - base);
    total *= correction;
    for (uint x = 0; x < PORTA_D; ++x) acc[x] *= correction;
    for (uint jj = 0; jj < PORTA_TK; ++jj) {
      float prob = porta_at_exp2(s[jj] - base);
      total += prob;
      for (uint x = 0; x < PORTA_D; ++x) acc[x] = fma(prob, value_tile[jj][x], acc[x]);
    }
    maximum = new_max;
  }
  if (!valid) return;
  float inverse = total > 0.0f ? 1.0f / total : 0.0f;
  size_t base_out = ((size_t)(b * p.heads_q + h) * p.nq + i) * PORTA_D;
  for (uint x = 0; x < PORTA_D; ++x) porta_cl_store(out, p.dtype, base_out + x, acc[x] * inverse);
  lse[(size_t)(b * p.heads_q + h) * p.nq + i] = total > 0.0f ? maximum * PORTA_LN2 + log(total) : -INFINITY;
}

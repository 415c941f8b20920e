// opencl.cl — fused attention for CPU-type OpenCL devices (PoCL): each work-item holds a
// block of query (or key) rows x D in vector registers and streams the other side from
// f32 panels packed once per call, with explicit fma and no local memory; the backward
// (dK/dV per key block, dQ per query block, both over a fixed order) recomputes P.
#include "attention/opencl_common.h"

// Tuning knobs (backends/opencl/opencl_config.hpp passes -D values per device).
#ifndef PORTA_VW
#define PORTA_VW 16  // floats per vector: keys (or queries) scored at once; 4, 8 or 16
#endif
#ifndef PORTA_BR
#define PORTA_BR 4  // query rows per work-item (forward, dQ)
#endif
#ifndef PORTA_BKV
#define PORTA_BKV 2  // key rows per work-item (dK / dV)
#endif
#if PORTA_VW != 4 && PORTA_VW != 8 && PORTA_VW != 16
#error "PORTA_VW must be 4, 8 or 16"
#endif
#if PORTA_D % PORTA_VW != 0
#error "PORTA_D must be a multiple of PORTA_VW"
#endif
#define PORTA_NV (PORTA_D / PORTA_VW)  // vectors per row of D
#define VEC PORTA_AT_CAT(float, PORTA_VW)
#define IVEC PORTA_AT_CAT(int, PORTA_VW)
#define VLOAD PORTA_AT_CAT(vload, PORTA_VW)
#define VSTORE PORTA_AT_CAT(vstore, PORTA_VW)

#if PORTA_VW == 16
#define PORTA_LANES ((IVEC)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#elif PORTA_VW == 8
#define PORTA_LANES ((IVEC)(0, 1, 2, 3, 4, 5, 6, 7))
#else
#define PORTA_LANES ((IVEC)(0, 1, 2, 3))
#endif

PORTA_AT_EXP2(porta_at_exp2v, VEC, IVEC, PORTA_AT_CAT(convert_int, PORTA_VW), PORTA_AT_CAT(as_float, PORTA_VW))

PORTA_FN float4 porta_at_fold4_max(VEC v) {
#if PORTA_VW == 16
  float8 half8 = fmax(v.lo, v.hi);
  return fmax(half8.lo, half8.hi);
#elif PORTA_VW == 8
  return fmax(v.lo, v.hi);
#else
  return v;
#endif
}

PORTA_FN float4 porta_at_fold4_sum(VEC v) {
#if PORTA_VW == 16
  float8 half8 = v.lo + v.hi;
  return half8.lo + half8.hi;
#elif PORTA_VW == 8
  return v.lo + v.hi;
#else
  return v;
#endif
}

PORTA_FN float porta_at_hmax(VEC v) {
  float4 v4 = porta_at_fold4_max(v);
  float2 v2 = fmax(v4.lo, v4.hi);
  return fmax(v2.x, v2.y);
}

PORTA_FN float porta_at_hsum(VEC v) {
  float4 v4 = porta_at_fold4_sum(v);
  float2 v2 = v4.lo + v4.hi;
  return v2.x + v2.y;
}

// Rows of one operand as f32 panels, one element per work-item (x along d, y along rows
// padded to a multiple of VW, z over batch x heads). which: 0 q, 1 k, 2 v (strided, as
// in the params), 3 dO (contiguous like O). transposed == 0: [bh][rows][D];
// otherwise [bh][rows / VW][D][VW], so VW consecutive rows load as one vector.
__kernel void porta_attention_pack(__global const uchar* source, __global float* packed, struct AttentionParams p,
                                   uint which, uint transposed) {
  uint x = (uint)get_global_id(0);
  uint i = (uint)get_global_id(1);
  uint bh = (uint)get_global_id(2);
  bool kv = which == 1u || which == 2u;
  uint heads = kv ? p.heads_kv : p.heads_q;
  uint n = kv ? p.nk : p.nq;
  uint rows = (n + PORTA_VW - 1u) / PORTA_VW * PORTA_VW;
  if (x >= PORTA_D || i >= rows || bh >= p.batch * heads) return;
  float value = 0.0f;
  if (i < n) {
    size_t at = which == 3u ? ((size_t)bh * p.nq + i) * PORTA_D + x : porta_at_row(p, which, bh / heads, bh % heads, i) + x;
    value = porta_cl_load(source, p.dtype, at);
  }
  size_t to = transposed != 0u ? (((size_t)bh * (rows / PORTA_VW) + i / PORTA_VW) * PORTA_D + x) * PORTA_VW + i % PORTA_VW
                               : ((size_t)bh * rows + i) * PORTA_D + x;
  packed[to] = value;
}

// Per query row (padded to a multiple of VW per head): lse * log2(e) in stats[row] and
// Delta = dO . O in stats[rows_total + row]. Rows past nq and rows that see no key get
// +inf and 0, so exp2(s - stats[row]) is exactly 0 for them.
__kernel void porta_attention_delta(__global const uchar* out, __global const uchar* grad_out,
                                    __global const float* lse, __global float* stats, struct AttentionParams p) {
  uint i = (uint)get_global_id(0);
  uint bh = (uint)get_global_id(1);
  uint rows = (p.nq + PORTA_VW - 1u) / PORTA_VW * PORTA_VW;
  if (i >= rows || bh >= p.batch * p.heads_q) return;
  size_t total = (size_t)p.batch * p.heads_q * rows;
  float scaled = INFINITY;
  float delta = 0.0f;
  if (i < p.nq) {
    float row_lse = lse[(size_t)bh * p.nq + i];
    if (isfinite(row_lse)) {
      scaled = row_lse * PORTA_LOG2E;
      size_t at = ((size_t)bh * p.nq + i) * PORTA_D;
      for (uint x = 0; x < PORTA_D; ++x) delta = fma(porta_cl_load(out, p.dtype, at + x), porta_cl_load(grad_out, p.dtype, at + x), delta);
    }
  }
  stats[(size_t)bh * rows + i] = scaled;
  stats[total + (size_t)bh * rows + i] = delta;
}

// Forward: BR query rows per work-item; keys in VW-wide steps from K^T panels, values from
// natural V panels. Grid: x over query blocks, y over query heads, z over the batch.
__kernel void porta_attention_forward(__global const uchar* q, __global const float* keys_t,
                                      __global const float* values, __global uchar* out, __global float* lse,
                                      struct AttentionParams p) {
  uint block = (uint)get_global_id(0);
  uint h = (uint)get_global_id(1);
  uint b = (uint)get_global_id(2);
  uint i0 = block * PORTA_BR;
  if (i0 >= p.nq || h >= p.heads_q || b >= p.batch) return;
  uint hk = h / (p.heads_q / p.heads_kv);
  uint key_vectors = (p.nk + PORTA_VW - 1u) / PORTA_VW;
  __global const VEC* kt = (__global const VEC*)keys_t + (size_t)(b * p.heads_kv + hk) * key_vectors * PORTA_D;
  __global const VEC* vn = (__global const VEC*)values + (size_t)(b * p.heads_kv + hk) * key_vectors * PORTA_D;
  float scale_log2 = p.scale * PORTA_LOG2E;

  // Query rows pre-scaled into the log2 domain; a private array read by broadcast loads.
  float qs[PORTA_BR][PORTA_D];
  int limit[PORTA_BR];
  int lowest = (int)p.nk;
  int highest = -1;
  for (uint r = 0; r < PORTA_BR; ++r) {
    uint i = i0 + r;
    limit[r] = i < p.nq ? porta_at_last_key(p, i) : -1;
    lowest = min(lowest, limit[r]);
    highest = max(highest, limit[r]);
    size_t at = porta_at_row(p, 0u, b, h, min(i, p.nq - 1u));
    for (uint x = 0; x < PORTA_D; ++x) qs[r][x] = i < p.nq ? porta_cl_load(q, p.dtype, at + x) * scale_log2 : 0.0f;
  }

  VEC acc[PORTA_BR][PORTA_NV];
  VEC sums[PORTA_BR];
  float maxima[PORTA_BR];
#pragma unroll
  for (uint r = 0; r < PORTA_BR; ++r) {
    sums[r] = (VEC)(0.0f);
    maxima[r] = -INFINITY;
#pragma unroll
    for (uint v = 0; v < PORTA_NV; ++v) acc[r][v] = (VEC)(0.0f);
  }
  float probabilities[PORTA_BR][PORTA_VW];
  uint blocks = (uint)(highest + PORTA_VW) / PORTA_VW;  // key vectors up to the last visible key
  for (uint jb = 0; jb < blocks; ++jb) {
    int j0 = (int)(jb * PORTA_VW);
    VEC s[PORTA_BR];
#pragma unroll
    for (uint r = 0; r < PORTA_BR; ++r) s[r] = (VEC)(0.0f);
    __global const VEC* kcol = kt + (size_t)jb * PORTA_D;
    for (uint x = 0; x < PORTA_D; ++x) {
      VEC kx = kcol[x];
#pragma unroll
      for (uint r = 0; r < PORTA_BR; ++r) s[r] = fma((VEC)(qs[r][x]), kx, s[r]);
    }
    bool masked = j0 + PORTA_VW - 1 > lowest;  // some lane of some row sees past its last key
#pragma unroll
    for (uint r = 0; r < PORTA_BR; ++r) {
      if (masked) s[r] = select(s[r], (VEC)(-INFINITY), PORTA_LANES + j0 > (IVEC)(limit[r]));
      float new_max = fmax(maxima[r], porta_at_hmax(s[r]));
      float base = new_max == -INFINITY ? 0.0f : new_max;  // a row with nothing visible yet stays at zero
      float correction = porta_at_exp2(maxima[r] - base);
      VEC prob = porta_at_exp2v(s[r] - (VEC)(base));
      sums[r] = fma(sums[r], (VEC)(correction), prob);
      maxima[r] = new_max;
#pragma unroll
      for (uint v = 0; v < PORTA_NV; ++v) acc[r][v] *= correction;
      VSTORE(prob, 0, probabilities[r]);
    }
    __global const VEC* vrow = vn + (size_t)j0 * PORTA_NV;
    for (uint jj = 0; jj < PORTA_VW; ++jj) {
      VEC vv[PORTA_NV];
#pragma unroll
      for (uint v = 0; v < PORTA_NV; ++v) vv[v] = vrow[v];
#pragma unroll
      for (uint r = 0; r < PORTA_BR; ++r) {
        VEC pr = (VEC)(probabilities[r][jj]);
#pragma unroll
        for (uint v = 0; v < PORTA_NV; ++v) acc[r][v] = fma(pr, vv[v], acc[r][v]);
      }
      vrow += PORTA_NV;
    }
  }

  // Rows that saw no key have a zero sum: O = 0 and LSE = -inf.
  float finals[PORTA_BR][PORTA_D];
#pragma unroll
  for (uint r = 0; r < PORTA_BR; ++r) {
    float total = porta_at_hsum(sums[r]);
    float inverse = total > 0.0f ? 1.0f / total : 0.0f;
#pragma unroll
    for (uint v = 0; v < PORTA_NV; ++v) VSTORE(acc[r][v] * inverse, v, finals[r]);
    if (i0 + r < p.nq) {
      lse[(size_t)(b * p.heads_q + h) * p.nq + i0 + r] = total > 0.0f ? maxima[r] * PORTA_LN2 + log(total) : -INFINITY;
    }
  }
  uint rows = min((uint)PORTA_BR, p.nq - i0);
  size_t base_out = ((size_t)(b * p.heads_q + h) * p.nq + i0) * PORTA_D;
  for (uint r = 0; r < rows; ++r) {
    for (uint x = 0; x < PORTA_D; ++x) porta_cl_store(out, p.dtype, base_out + r * PORTA_D + x, finals[r][x]);
  }
}

// dQ: BR query rows per work-item, over the key vectors each row can see: S and dP from
// K^T and V^T panels, dS = P (dP - Delta), dQ += dS K from natural K panels.
__kernel void porta_attention_dq(__global const uchar* q, __global const uchar* grad_out, __global const float* keys_t,
                                 __global const float* values_t, __global const float* keys, __global const float* stats,
                                 __global uchar* dq, struct AttentionParams p) {
  uint block = (uint)get_global_id(0);
  uint h = (uint)get_global_id(1);
  uint b = (uint)get_global_id(2);
  uint i0 = block * PORTA_BR;
  if (i0 >= p.nq || h >= p.heads_q || b >= p.batch) return;
  uint hk = h / (p.heads_q / p.heads_kv);
  uint key_vectors = (p.nk + PORTA_VW - 1u) / PORTA_VW;
  size_t kv_head = (size_t)(b * p.heads_kv + hk) * key_vectors * PORTA_D;
  __global const VEC* kt = (__global const VEC*)keys_t + kv_head;
  __global const VEC* vt = (__global const VEC*)values_t + kv_head;
  __global const VEC* kn = (__global const VEC*)keys + kv_head;
  uint bh = b * p.heads_q + h;
  uint rows_padded = (p.nq + PORTA_VW - 1u) / PORTA_VW * PORTA_VW;
  size_t stats_total = (size_t)p.batch * p.heads_q * rows_padded;
  float scale_log2 = p.scale * PORTA_LOG2E;

  float qs[PORTA_BR][PORTA_D];
  float gs[PORTA_BR][PORTA_D];
  float lse2[PORTA_BR];
  float delta[PORTA_BR];
  int limit[PORTA_BR];
  int lowest = (int)p.nk;
  int highest = -1;
  for (uint r = 0; r < PORTA_BR; ++r) {
    uint i = i0 + r;
    lse2[r] = stats[(size_t)bh * rows_padded + i];  // rows are padded: i is in range
    delta[r] = stats[stats_total + (size_t)bh * rows_padded + i];
    limit[r] = i < p.nq && lse2[r] != INFINITY ? porta_at_last_key(p, i) : -1;
    lowest = min(lowest, limit[r]);
    highest = max(highest, limit[r]);
    size_t at = porta_at_row(p, 0u, b, h, min(i, p.nq - 1u));
    size_t at_grad = ((size_t)bh * p.nq + min(i, p.nq - 1u)) * PORTA_D;
    for (uint x = 0; x < PORTA_D; ++x) {
      qs[r][x] = i < p.nq ? porta_cl_load(q, p.dtype, at + x) * scale_log2 : 0.0f;
      gs[r][x] = i < p.nq ? porta_cl_load(grad_out, p.dtype, at_grad + x) : 0.0f;
    }
  }

  VEC acc[PORTA_BR][PORTA_NV];
#pragma unroll
  for (uint r = 0; r < PORTA_BR; ++r) {
#pragma unroll
    for (uint v = 0; v < PORTA_NV; ++v) acc[r][v] = (VEC)(0.0f);
  }
  float grad_s[PORTA_BR][PORTA_VW];
  uint blocks = (uint)(highest + PORTA_VW) / PORTA_VW;
  for (uint jb = 0; jb < blocks; ++jb) {
    int j0 = (int)(jb * PORTA_VW);
    VEC s[PORTA_BR];
    VEC dp[PORTA_BR];
#pragma unroll
    for (uint r = 0; r < PORTA_BR; ++r) {
      s[r] = (VEC)(0.0f);
      dp[r] = (VEC)(0.0f);
    }
    __global const VEC* kcol = kt + (size_t)jb * PORTA_D;
    __global const VEC* vcol = vt + (size_t)jb * PORTA_D;
    for (uint x = 0; x < PORTA_D; ++x) {
      VEC kx = kcol[x];
      VEC vx = vcol[x];
#pragma unroll
      for (uint r = 0; r < PORTA_BR; ++r) {
        s[r] = fma((VEC)(qs[r][x]), kx, s[r]);
        dp[r] = fma((VEC)(gs[r][x]), vx, dp[r]);
      }
    }
    bool masked = j0 + PORTA_VW - 1 > lowest;
#pragma unroll
    for (uint r = 0; r < PORTA_BR; ++r) {
      VEC prob = porta_at_exp2v(s[r] - (VEC)(lse2[r]));
      if (masked) prob = select(prob, (VEC)(0.0f), PORTA_LANES + j0 > (IVEC)(limit[r]));
      VSTORE(prob * (dp[r] - (VEC)(delta[r])), 0, grad_s[r]);
    }
    __global const VEC* krow = kn + (size_t)j0 * PORTA_NV;
    for (uint jj = 0; jj < PORTA_VW; ++jj) {
      VEC kk[PORTA_NV];
#pragma unroll
      for (uint v = 0; v < PORTA_NV; ++v) kk[v] = krow[v];
#pragma unroll
      for (uint r = 0; r < PORTA_BR; ++r) {
        VEC ds = (VEC)(grad_s[r][jj]);
#pragma unroll
        for (uint v = 0; v < PORTA_NV; ++v) acc[r][v] = fma(ds, kk[v], acc[r][v]);
      }
      krow += PORTA_NV;
    }
  }

  float finals[PORTA_BR][PORTA_D];
#pragma unroll
  for (uint r = 0; r < PORTA_BR; ++r) {
#pragma unroll
    for (uint v = 0; v < PORTA_NV; ++v) VSTORE(acc[r][v] * p.scale, v, finals[r]);
  }
  uint rows = min((uint)PORTA_BR, p.nq - i0);
  size_t base_out = ((size_t)bh * p.nq + i0) * PORTA_D;
  for (uint r = 0; r < rows; ++r) {
    for (uint x = 0; x < PORTA_D; ++x) porta_cl_store(dq, p.dtype, base_out + r * PORTA_D + x, finals[r][x]);
  }
}

// dK and dV: BKV key rows per work-item, summed over every query head of the group and
// every query vector that sees them, in a fixed order (deterministic, no atomics):
// S^T and dP^T from Q^T and dO^T panels, dV += P^T dO and dK += dS^T Q from natural panels.
__kernel void porta_attention_dkdv(__global const uchar* k, __global const uchar* v,
                                   __global const float* queries_t, __global const float* grads_t,
                                   __global const float* queries, __global const float* grads,
                                   __global const float* stats, __global uchar* dk, __global uchar* dv,
                                   struct AttentionParams p) {
  uint block = (uint)get_global_id(0);
  uint hk = (uint)get_global_id(1);
  uint b = (uint)get_global_id(2);
  uint j0 = block * PORTA_BKV;
  if (j0 >= p.nk || hk >= p.heads_kv || b >= p.batch) return;
  uint group = p.heads_q / p.heads_kv;
  uint query_vectors = (p.nq + PORTA_VW - 1u) / PORTA_VW;
  uint rows_padded = query_vectors * PORTA_VW;
  size_t stats_total = (size_t)p.batch * p.heads_q * rows_padded;
  float scale_log2 = p.scale * PORTA_LOG2E;
  int offset = (int)p.nk - (int)p.nq;  // query i sees key j when j <= i + offset (causal)

  float ks[PORTA_BKV][PORTA_D];
  float vs[PORTA_BKV][PORTA_D];
  for (uint c = 0; c < PORTA_BKV; ++c) {
    uint j = min(j0 + c, p.nk - 1u);
    size_t at_k = porta_at_row(p, 1u, b, hk, j);
    size_t at_v = porta_at_row(p, 2u, b, hk, j);
    for (uint x = 0; x < PORTA_D; ++x) {
      ks[c][x] = j0 + c < p.nk ? porta_cl_load(k, p.dtype, at_k + x) * scale_log2 : 0.0f;
      vs[c][x] = j0 + c < p.nk ? porta_cl_load(v, p.dtype, at_v + x) : 0.0f;
    }
  }
  VEC acc_k[PORTA_BKV][PORTA_NV];
  VEC acc_v[PORTA_BKV][PORTA_NV];
#pragma unroll
  for (uint c = 0; c < PORTA_BKV; ++c) {
#pragma unroll
    for (uint w = 0; w < PORTA_NV; ++w) {
      acc_k[c][w] = (VEC)(0.0f);
      acc_v[c][w] = (VEC)(0.0f);
    }
  }
  // With causal, queries before j0 - offset see none of these keys.
  int first = p.causal != 0u ? max(0, (int)j0 - offset) : 0;
  int last_key = (int)j0 + PORTA_BKV - 1;
  float probabilities[PORTA_BKV][PORTA_VW];
  float grad_s[PORTA_BKV][PORTA_VW];
  for (uint g = 0; g < group; ++g) {
    uint bh = b * p.heads_q + hk * group + g;
    __global const VEC* qt = (__global const VEC*)queries_t + (size_t)bh * query_vectors * PORTA_D;
    __global const VEC* gt = (__global const VEC*)grads_t + (size_t)bh * query_vectors * PORTA_D;
    __global const VEC* qn = (__global const VEC*)queries + (size_t)bh * query_vectors * PORTA_D;
    __global const VEC* gn = (__global const VEC*)grads + (size_t)bh * query_vectors * PORTA_D;
    __global const float* lse2 = stats + (size_t)bh * rows_padded;
    __global const float* delta = stats + stats_total + (size_t)bh * rows_padded;
    for (uint ib = (uint)first / PORTA_VW; ib < query_vectors; ++ib) {
      int i0 = (int)(ib * PORTA_VW);
      VEC s[PORTA_BKV];
      VEC dp[PORTA_BKV];
#pragma unroll
      for (uint c = 0; c < PORTA_BKV; ++c) {
        s[c] = (VEC)(0.0f);
        dp[c] = (VEC)(0.0f);
      }
      __global const VEC* qcol = qt + (size_t)ib * PORTA_D;
      __global const VEC* gcol = gt + (size_t)ib * PORTA_D;
      for (uint x = 0; x < PORTA_D; ++x) {
        VEC qx = qcol[x];
        VEC gx = gcol[x];
#pragma unroll
        for (uint c = 0; c < PORTA_BKV; ++c) {
          s[c] = fma((VEC)(ks[c][x]), qx, s[c]);
          dp[c] = fma((VEC)(vs[c][x]), gx, dp[c]);
        }
      }
      VEC row_lse2 = VLOAD(ib, lse2);
      VEC row_delta = VLOAD(ib, delta);
      bool masked = p.causal != 0u && i0 + offset < last_key;  // some lane misses some key
#pragma unroll
      for (uint c = 0; c < PORTA_BKV; ++c) {
        VEC prob = porta_at_exp2v(s[c] - row_lse2);
        if (masked) prob = select(prob, (VEC)(0.0f), PORTA_LANES + (IVEC)(i0 + offset) < (IVEC)((int)(j0 + c)));
        VSTORE(prob, 0, probabilities[c]);
        VSTORE(prob * (dp[c] - row_delta), 0, grad_s[c]);
      }
      __global const VEC* qrow = qn + (size_t)i0 * PORTA_NV;
      __global const VEC* grow = gn + (size_t)i0 * PORTA_NV;
      for (uint ii = 0; ii < PORTA_VW; ++ii) {
        VEC qq[PORTA_NV];
        VEC gg[PORTA_NV];
#pragma unroll
        for (uint w = 0; w < PORTA_NV; ++w) {
          qq[w] = qrow[w];
          gg[w] = grow[w];
        }
#pragma unroll
        for (uint c = 0; c < PORTA_BKV; ++c) {
          VEC pr = (VEC)(probabilities[c][ii]);
          VEC ds = (VEC)(grad_s[c][ii]);
#pragma unroll
          for (uint w = 0; w < PORTA_NV; ++w) {
            acc_v[c][w] = fma(pr, gg[w], acc_v[c][w]);
            acc_k[c][w] = fma(ds, qq[w], acc_k[c][w]);
          }
        }
        qrow += PORTA_NV;
        grow += PORTA_NV;
      }
    }
  }

  float finals_k[PORTA_BKV][PORTA_D];
  float finals_v[PORTA_BKV][PORTA_D];
#pragma unroll
  for (uint c = 0; c < PORTA_BKV; ++c) {
#pragma unroll
    for (uint w = 0; w < PORTA_NV; ++w) {
      VSTORE(acc_k[c][w] * p.scale, w, finals_k[c]);
      VSTORE(acc_v[c][w], w, finals_v[c]);
    }
  }
  uint rows = min((uint)PORTA_BKV, p.nk - j0);
  size_t base_out = ((size_t)(b * p.heads_kv + hk) * p.nk + j0) * PORTA_D;
  for (uint c = 0; c < rows; ++c) {
    for (uint x = 0; x < PORTA_D; ++x) {
      porta_cl_store(dk, p.dtype, base_out + c * PORTA_D + x, finals_k[c][x]);
      porta_cl_store(dv, p.dtype, base_out + c * PORTA_D + x, finals_v[c][x]);
    }
  }
}

// vulkan_dkdv.comp — the attention backward's dK and dV: one work-group per key block of
// one K/V head, one invocation per key row holding k, v and their gradients in
// registers. It loops over every query row of every query head sharing that K/V head
// (tiles of Q, dO, LSE and Delta staged in shared memory), recomputing P and dS, so
// each gradient is summed by one invocation in a fixed order: no atomics, same bits on
// every run.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#if PORTA_STORAGE16
#extension GL_EXT_shader_16bit_storage : require
#endif
#define PORTA_ATTENTION_BACKWARD
#include "attention/vulkan_attention.glsl"

layout(local_size_x_id = 0) in;               // key rows per work-group
layout(constant_id = 1) const uint TILE = 32;  // query rows per shared tile
layout(constant_id = 2) const uint D = 64;
layout(constant_id = 3) const uint DTYPE = 0;

shared float q_tile[TILE * D];
shared float do_tile[TILE * D];
shared float lse_tile[TILE];    // log2 units
shared float delta_tile[TILE];

void main() {
  const uint bk = gl_WorkGroupSize.x;
  const uint tid = gl_LocalInvocationID.x;
  const uint group = p.heads_q / p.heads_kv;
  const float scale_log2 = p.scale * float(LOG2E);
  for (uint b = gl_WorkGroupID.z; b < p.batch; b += gl_NumWorkGroups.z) {
    for (uint hk = gl_WorkGroupID.y; hk < p.heads_kv; hk += gl_NumWorkGroups.y) {
      for (uint j0 = gl_WorkGroupID.x * bk; j0 < p.nk; j0 += gl_NumWorkGroups.x * bk) {
        const uint j = j0 + tid;
        const bool key_valid = j < p.nk;
        const uint key = min(j, p.nk - 1u);
        float k[MAX_D], v[MAX_D], dk[MAX_D], dv[MAX_D];
        const uint k_base = k_row(b, hk, key), v_base = v_row(b, hk, key);
        [[unroll]] for (uint c = 0u; c < MAX_D; ++c) {
          if (c < D) {
            k[c] = PORTA_ATTENTION_LOAD(k, k_base + c, DTYPE) * scale_log2;
            v[c] = PORTA_ATTENTION_LOAD(v, v_base + c, DTYPE);
            dk[c] = 0.0f;
            dv[c] = 0.0f;
          }
        }
        // Queries before first_query(j0) see no key of this block (causal).
        const uint i_begin = first_query(j0);
        const uint i_mine = key_valid ? first_query(j) : p.nq;  // this key's first query
        for (uint g = 0u; g < group; ++g) {
          const uint h = hk * group + g;
          for (uint i0 = i_begin; i0 < p.nq; i0 += TILE) {
            barrier();  // the previous tile is no longer read
            for (uint e = tid; e < TILE * D; e += bk) {
              const uint t = e / D;
              const uint c = e - t * D;
              const uint i = i0 + t;
              float qv = 0.0f, gv = 0.0f;
              if (i < p.nq) {
                qv = PORTA_ATTENTION_LOAD(q, q_row(b, h, i) + c, DTYPE);
                gv = PORTA_ATTENTION_LOAD(dout, out_row(b, h, i) + c, DTYPE);
              }
              q_tile[e] = qv;
              do_tile[e] = gv;
            }
            for (uint t = tid; t < TILE; t += bk) {
              const uint i = min(i0 + t, p.nq - 1u);
              lse_tile[t] = lse32[lse_index(b, h, i)] * float(LOG2E);
              delta_tile[t] = delta32[lse_index(b, h, i)];
            }
            barrier();
            const uint t_begin = i_mine > i0 ? min(i_mine - i0, TILE) : 0u;
            const uint t_end = min(TILE, p.nq - i0);
            for (uint t = t_begin; t < t_end; ++t) {
              float s = 0.0f, dp = 0.0f;
              [[unroll]] for (uint c = 0u; c < MAX_D; ++c) {
                if (c < D) {
                  s += k[c] * q_tile[t * D + c];
                  dp += v[c] * do_tile[t * D + c];
                }
              }
              // A query that sees this key sees at least one key: its LSE is finite.
              const float prob = exp2(s - lse_tile[t]);
              const float ds = prob * (dp - delta_tile[t]);
              [[unroll]] for (uint c = 0u; c < MAX_D; ++c) {
                if (c < D) {
                  dv[c] += prob * do_tile[t * D + c];
                  dk[c] += ds * q_tile[t * D + c];
                }
              }
            }
          }
        }
        if (key_valid) {
          const uint base = ((b * p.heads_kv + hk) * p.nk + j) * D;
          [[unroll]] for (uint c = 0u; c < MAX_D; ++c) {
            if (c < D) {
              PORTA_ATTENTION_STORE(dk, base + c, dk[c] * p.scale, DTYPE)
              PORTA_ATTENTION_STORE(dv, base + c, dv[c], DTYPE)
            }
          }
        }
      }
    }
  }
}

// vulkan_dq.comp — the attention backward's dQ: one work-group per query block of one
// head, one invocation per query row holding q, dO and dQ in registers; K and V tiles
// pass through shared memory and P, dP and dS are recomputed from LSE and Delta.
// Each row is summed by one invocation in key order: the same bits on every run.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#if PORTA_STORAGE16
#extension GL_EXT_shader_16bit_storage : require
#endif
#define PORTA_ATTENTION_BACKWARD
#include "attention/vulkan_attention.glsl"

layout(local_size_x_id = 0) in;               // query rows per work-group
layout(constant_id = 1) const uint TILE = 32;  // keys per shared tile
layout(constant_id = 2) const uint D = 64;
layout(constant_id = 3) const uint DTYPE = 0;

shared float k_tile[TILE * D];
shared float v_tile[TILE * D];

void main() {
  const uint bq = gl_WorkGroupSize.x;
  const uint tid = gl_LocalInvocationID.x;
  const uint group = p.heads_q / p.heads_kv;
  const float scale_log2 = p.scale * float(LOG2E);
  for (uint b = gl_WorkGroupID.z; b < p.batch; b += gl_NumWorkGroups.z) {
    for (uint h = gl_WorkGroupID.y; h < p.heads_q; h += gl_NumWorkGroups.y) {
      const uint hk = h / group;
      for (uint q0 = gl_WorkGroupID.x * bq; q0 < p.nq; q0 += gl_NumWorkGroups.x * bq) {
        const uint i = q0 + tid;
        const bool row_valid = i < p.nq;
        const uint row = min(i, p.nq - 1u);
        float q[MAX_D], g[MAX_D], dq[MAX_D];
        const uint q_base = q_row(b, h, row), g_base = out_row(b, h, row);
        [[unroll]] for (uint c = 0u; c < MAX_D; ++c) {
          if (c < D) {
            q[c] = PORTA_ATTENTION_LOAD(q, q_base + c, DTYPE) * scale_log2;
            g[c] = PORTA_ATTENTION_LOAD(dout, g_base + c, DTYPE);
            dq[c] = 0.0f;
          }
        }
        const float lse_log2 = lse32[lse_index(b, h, row)] * float(LOG2E);
        const float delta = delta32[lse_index(b, h, row)];
        const uint visible = row_valid ? keys_needed(i) : 0u;
        const uint block_keys = keys_needed(min(q0 + bq, p.nq) - 1u);
        for (uint j0 = 0u; j0 < block_keys; j0 += TILE) {
          barrier();
          for (uint e = tid; e < TILE * D; e += bq) {
            const uint t = e / D;
            const uint c = e - t * D;
            const uint j = j0 + t;
            float kv = 0.0f, vv = 0.0f;
            if (j < p.nk) {
              kv = PORTA_ATTENTION_LOAD(k, k_row(b, hk, j) + c, DTYPE);
              vv = PORTA_ATTENTION_LOAD(v, v_row(b, hk, j) + c, DTYPE);
            }
            k_tile[e] = kv;
            v_tile[e] = vv;
          }
          barrier();
          const uint count = visible > j0 ? min(TILE, visible - j0) : 0u;
          for (uint t = 0u; t < count; ++t) {
            float s = 0.0f, dp = 0.0f;
            [[unroll]] for (uint c = 0u; c < MAX_D; ++c) {
              if (c < D) {
                s += q[c] * k_tile[t * D + c];
                dp += g[c] * v_tile[t * D + c];
              }
            }
            const float ds = exp2(s - lse_log2) * (dp - delta);
            [[unroll]] for (uint c = 0u; c < MAX_D; ++c) {
              if (c < D) dq[c] += ds * k_tile[t * D + c];
            }
          }
        }
        if (row_valid) {
          const uint base = out_row(b, h, i);
          [[unroll]] for (uint c = 0u; c < MAX_D; ++c) {
            if (c < D) {
              PORTA_ATTENTION_STORE(dq, base + c, dq[c] * p.scale, DTYPE)
            }
          }
        }
      }
    }
  }
}

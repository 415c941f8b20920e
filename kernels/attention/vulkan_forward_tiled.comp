// vulkan_forward_tiled.comp — the GPU attention forward (FlashAttention-2's scheme): one
// work-group per query block of one head, one invocation per query row holding q and
// its output row in registers; K and V pass through shared memory BK keys at a time,
// loaded once per work-group with coalesced reads, and an online softmax keeps the
// N x N scores out of memory. Block sizes come from backends/vulkan/vulkan_tuning.hpp.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#if PORTA_STORAGE16
#extension GL_EXT_shader_16bit_storage : require
#endif
#include "attention/vulkan_attention.glsl"

layout(local_size_x_id = 0) in;  // BQ: query rows per work-group
layout(constant_id = 1) const uint BK = 32;  // keys per shared tile
layout(constant_id = 2) const uint D = 64;   // head dim, <= MAX_D
layout(constant_id = 3) const uint DTYPE = 0;

shared float k_tile[BK * D];
shared float v_tile[BK * D];

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
        const uint row = min(i, p.nq - 1u);  // tails load a real row and store nothing
        // q pre-scaled so that scores come out in log2 units.
        float q[MAX_D];
        float acc[MAX_D];
        const uint q_base = q_row(b, h, row);
        [[unroll]] for (uint c = 0u; c < MAX_D; ++c) {
          if (c < D) {
            q[c] = PORTA_ATTENTION_LOAD(q, q_base + c, DTYPE) * scale_log2;
            acc[c] = 0.0f;
          }
        }
        float running_max = NEG_INF;
        float running_sum = 0.0f;
        const uint visible = row_valid ? keys_needed(i) : 0u;
        // Uniform over the work-group (barriers): what its last row needs.
        const uint block_keys = keys_needed(min(q0 + bq, p.nq) - 1u);
        for (uint j0 = 0u; j0 < block_keys; j0 += BK) {
          barrier();  // the previous tile is no longer read
          for (uint e = tid; e < BK * D; e += bq) {
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
          const uint count = visible > j0 ? min(BK, visible - j0) : 0u;
          for (uint t = 0u; t < count; ++t) {
            float s = 0.0f;
            [[unroll]] for (uint c = 0u; c < MAX_D; ++c) {
              if (c < D) s += q[c] * k_tile[t * D + c];
            }
            // Rescale only when the maximum grows (rare after the first keys).
            if (s > running_max) {
              const float correction = exp2(running_max - s);
              running_sum *= correction;
              [[unroll]] for (uint c = 0u; c < MAX_D; ++c) {
                if (c < D) acc[c] *= correction;
              }
              running_max = s;
            }
            const float prob = exp2(s - running_max);
            running_sum += prob;
            [[unroll]] for (uint c = 0u; c < MAX_D; ++c) {
              if (c < D) acc[c] += prob * v_tile[t * D + c];
            }
          }
        }
        if (row_valid) {
          const float inverse = running_sum > 0.0f ? 1.0f / running_sum : 0.0f;
          const uint o_base = out_row(b, h, i);
          [[unroll]] for (uint c = 0u; c < MAX_D; ++c) {
            if (c < D) {
              PORTA_ATTENTION_STORE(o, o_base + c, acc[c] * inverse, DTYPE)
            }
          }
          lse32[lse_index(b, h, i)] =
              running_sum > 0.0f ? (running_max + log2(running_sum)) * float(LN2) : NEG_INF;
        }
      }
    }
  }
}

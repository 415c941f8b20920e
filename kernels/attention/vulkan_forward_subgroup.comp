// vulkan_forward_subgroup.comp — the attention forward for CPU-type Vulkan devices
// (lavapipe, SwiftShader): a work-group is one subgroup, each lane owns ROWS query rows.
// Per step the lanes load LANES keys' K and V rows (lane t loads key j0 + t) and hand
// the values to every lane with subgroupBroadcast: there every buffer or shared-memory
// load is a scalar, bounds-checked load, so a value loaded once and broadcast beats
// shared memory, and no barrier is needed. Online softmax per block of LANES keys.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
#extension GL_EXT_control_flow_attributes : require
#if PORTA_STORAGE16
#extension GL_EXT_shader_16bit_storage : require
#endif
#include "attention/vulkan_attention.glsl"

layout(local_size_x_id = 0) in;  // = LANES = the subgroup size (the host sets both)
layout(constant_id = 1) const uint LANES = 8;  // <= MAX_LANES
layout(constant_id = 2) const uint D = 64;     // head dim, <= MAX_D
layout(constant_id = 3) const uint DTYPE = 0;
layout(constant_id = 4) const uint ROWS = 2;   // query rows per lane, <= MAX_ROWS
#define MAX_LANES 8  // attention_subgroup_max_lanes on the host
#define MAX_ROWS 4   // attention_subgroup_max_rows on the host

void main() {
  const uint lane = gl_SubgroupInvocationID;
  const uint group = p.heads_q / p.heads_kv;
  const uint rows_per_group = LANES * ROWS;
  const float scale_log2 = p.scale * float(LOG2E);
  for (uint b = gl_WorkGroupID.z; b < p.batch; b += gl_NumWorkGroups.z) {
    for (uint h = gl_WorkGroupID.y; h < p.heads_q; h += gl_NumWorkGroups.y) {
      const uint hk = h / group;
      for (uint q0 = gl_WorkGroupID.x * rows_per_group; q0 < p.nq; q0 += gl_NumWorkGroups.x * rows_per_group) {
        float q[MAX_ROWS][MAX_D];
        float acc[MAX_ROWS][MAX_D];
        float running_max[MAX_ROWS];
        float running_sum[MAX_ROWS];
        int last[MAX_ROWS];
        [[unroll]] for (uint r = 0u; r < MAX_ROWS; ++r) {
          if (r < ROWS) {
            const uint i = q0 + r * LANES + lane;
            // Rows past the end load a real row, see no key and store nothing.
            last[r] = i < p.nq ? min(last_key(i), int(p.nk) - 1) : -1;
            const uint q_base = q_row(b, h, min(i, p.nq - 1u));
            [[unroll]] for (uint c = 0u; c < MAX_D; ++c) {
              if (c < D) {
                q[r][c] = PORTA_ATTENTION_LOAD(q, q_base + c, DTYPE) * scale_log2;
                acc[r][c] = 0.0f;
              }
            }
            running_max[r] = NEG_INF;
            running_sum[r] = 0.0f;
          }
        }
        // Uniform over the subgroup (broadcasts need every lane): what the last row needs.
        const uint block_keys = keys_needed(min(q0 + rows_per_group, p.nq) - 1u);
        for (uint j0 = 0u; j0 < block_keys; j0 += LANES) {
          const uint j_mine = min(j0 + lane, p.nk - 1u);
          const uint k_base = k_row(b, hk, j_mine);
          const uint v_base = v_row(b, hk, j_mine);
          float s[MAX_ROWS][MAX_LANES];
          [[unroll]] for (uint r = 0u; r < MAX_ROWS; ++r) {
            [[unroll]] for (uint t = 0u; t < MAX_LANES; ++t) s[r][t] = 0.0f;
          }
          [[unroll]] for (uint c = 0u; c < MAX_D; ++c) {
            if (c < D) {
              const float kc = PORTA_ATTENTION_LOAD(k, k_base + c, DTYPE);
              [[unroll]] for (uint t = 0u; t < MAX_LANES; ++t) {
                if (t < LANES) {
                  const float kt = subgroupBroadcast(kc, t);
                  [[unroll]] for (uint r = 0u; r < MAX_ROWS; ++r) {
                    if (r < ROWS) s[r][t] += q[r][c] * kt;
                  }
                }
              }
            }
          }
          float correction[MAX_ROWS];
          [[unroll]] for (uint r = 0u; r < MAX_ROWS; ++r) {
            if (r < ROWS) {
              const int seen = last[r] - int(j0);  // keys j0 + t with t <= seen are visible
              float block_max = NEG_INF;
              [[unroll]] for (uint t = 0u; t < MAX_LANES; ++t) {
                if (t < LANES && int(t) <= seen) block_max = max(block_max, s[r][t]);
              }
              const float new_max = max(running_max[r], block_max);
              correction[r] = new_max == NEG_INF ? 1.0f : exp2(running_max[r] - new_max);
              float total = 0.0f;
              [[unroll]] for (uint t = 0u; t < MAX_LANES; ++t) {
                if (t < LANES) {
                  s[r][t] = int(t) <= seen ? exp2(s[r][t] - new_max) : 0.0f;
                  total += s[r][t];
                }
              }
              running_sum[r] = running_sum[r] * correction[r] + total;
              running_max[r] = new_max;
            }
          }
          [[unroll]] for (uint c = 0u; c < MAX_D; ++c) {
            if (c < D) {
              const float vc = PORTA_ATTENTION_LOAD(v, v_base + c, DTYPE);
              float sum[MAX_ROWS];
              [[unroll]] for (uint r = 0u; r < MAX_ROWS; ++r) sum[r] = 0.0f;
              [[unroll]] for (uint t = 0u; t < MAX_LANES; ++t) {
                if (t < LANES) {
                  const float vt = subgroupBroadcast(vc, t);
                  [[unroll]] for (uint r = 0u; r < MAX_ROWS; ++r) {
                    if (r < ROWS) sum[r] += s[r][t] * vt;
                  }
                }
              }
              [[unroll]] for (uint r = 0u; r < MAX_ROWS; ++r) {
                if (r < ROWS) acc[r][c] = acc[r][c] * correction[r] + sum[r];
              }
            }
          }
        }
        [[unroll]] for (uint r = 0u; r < MAX_ROWS; ++r) {
          const uint i = q0 + r * LANES + lane;
          if (r < ROWS && i < p.nq) {
            const float total = running_sum[r];
            const float inverse = total > 0.0f ? 1.0f / total : 0.0f;
            const uint o_base = out_row(b, h, i);
            [[unroll]] for (uint c = 0u; c < MAX_D; ++c) {
              if (c < D) {
                PORTA_ATTENTION_STORE(o, o_base + c, acc[r][c] * inverse, DTYPE)
              }
            }
            lse32[lse_index(b, h, i)] = total > 0.0f ? (running_max[r] + log2(total)) * float(LN2) : NEG_INF;
          }
        }
      }
    }
  }
}

// vulkan_forward_subgroup.comp — the attention forward for CPU-type Vulkan devices
// (lavapipe, SwiftShader): a work-group is one subgroup, each lane owns ROWS query rows.
// Per step the lanes load LANES keys' K and V rows (lane t loads key j0 + t) and hand
// the values to every lane with subgroupBroadcast: there every buffer or shared-memory
// load is a scalar, bounds-checked load, so a value loaded once and broadcast beats
// shared memory, and no barrier is needed. Online softmax per block of LANES keys. Rows
// move four elements at a time (vec4 loads where the views allow, vulkan_attention.glsl).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
#extension GL_EXT_control_flow_attributes : require
#if PORTA_STORAGE16
#extension GL_EXT_shader_16bit_storage : require
#endif
#define PORTA_ATTENTION_VEC4
#include "attention/vulkan_attention.glsl"

layout(local_size_x_id = 0) in;  // = LANES = the subgroup size (the host sets both)
layout(constant_id = 1) const uint LANES = 8;  // <= MAX_LANES
layout(constant_id = 2) const uint D = 64;     // head dim, <= MAX_D
layout(constant_id = 3) const uint DTYPE = 0;
layout(constant_id = 4) const uint ROWS = 2;   // query rows per lane, <= MAX_ROWS
layout(constant_id = 5) const bool ALIGNED = false;  // Q, K, V rows start at multiples of 4
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
            [[unroll]] for (uint c = 0u; c < MAX_D; c += 4u) {
              if (c < D) {
                vec4 x;
                PORTA_ATTENTION_LOAD4(x, q, q_base + c, DTYPE, ALIGNED)
                [[unroll]] for (uint e = 0u; e < 4u; ++e) {
                  q[r][c + e] = x[e] * scale_log2;
                  acc[r][c + e] = 0.0f;
                }
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
          [[unroll]] for (uint c4 = 0u; c4 < MAX_D; c4 += 4u) {
            if (c4 < D) {
              vec4 k_mine;
              PORTA_ATTENTION_LOAD4(k_mine, k, k_base + c4, DTYPE, ALIGNED)
              [[unroll]] for (uint e = 0u; e < 4u; ++e) {
                const uint c = c4 + e;
                [[unroll]] for (uint t = 0u; t < MAX_LANES; ++t) {
                  if (t < LANES) {
                    const float kt = subgroupBroadcast(k_mine[e], t);
                    [[unroll]] for (uint r = 0u; r < MAX_ROWS; ++r) {
                      if (r < ROWS) s[r][t] += q[r][c] * kt;
                    }
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
          [[unroll]] for (uint c4 = 0u; c4 < MAX_D; c4 += 4u) {
            if (c4 < D) {
              vec4 v_mine;
              PORTA_ATTENTION_LOAD4(v_mine, v, v_base + c4, DTYPE, ALIGNED)
              [[unroll]] for (uint e = 0u; e < 4u; ++e) {
                const uint c = c4 + e;
                float sum[MAX_ROWS];
                [[unroll]] for (uint r = 0u; r < MAX_ROWS; ++r) sum[r] = 0.0f;
                [[unroll]] for (uint t = 0u; t < MAX_LANES; ++t) {
                  if (t < LANES) {
                    const float vt = subgroupBroadcast(v_mine[e], t);
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
        }
        [[unroll]] for (uint r = 0u; r < MAX_ROWS; ++r) {
          const uint i = q0 + r * LANES + lane;
          if (r < ROWS && i < p.nq) {
            const float total = running_sum[r];
            const float inverse = total > 0.0f ? 1.0f / total : 0.0f;
            const uint o_base = out_row(b, h, i);
            [[unroll]] for (uint c = 0u; c < MAX_D; c += 4u) {
              if (c < D) {
                const vec4 x = vec4(acc[r][c], acc[r][c + 1u], acc[r][c + 2u], acc[r][c + 3u]) * inverse;
                PORTA_ATTENTION_STORE4(o, o_base + c, x, DTYPE)
              }
            }
            lse32[lse_index(b, h, i)] = total > 0.0f ? (running_max[r] + log2(total)) * float(LN2) : NEG_INF;
          }
        }
      }
    }
  }
}

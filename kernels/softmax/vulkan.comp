// vulkan.comp — the masked, scaled row softmax with log-sum-exp on Vulkan (the middle
// step of unfused attention): one invocation per row, three passes over it (maximum,
// sum, probabilities). Rows are many (batch x heads x queries), so that is enough
// parallelism for the baseline it serves.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "softmax/params.h"

layout(local_size_x_id = 0) in;
layout(push_constant) uniform Push { SoftmaxParams p; };
layout(std430, binding = 0) readonly buffer In { float x[]; };
layout(std430, binding = 1) writeonly buffer Out { float y[]; };
layout(std430, binding = 2) writeonly buffer Lse { float lse[]; };

void main() {
  const float neg_inf = uintBitsToFloat(0xff800000u);
  for (uint r = gl_GlobalInvocationID.x; r < p.rows; r += gl_NumWorkGroups.x * gl_WorkGroupSize.x) {
    const uint in_base = p.in_offset + r * p.n;
    const uint out_base = p.out_offset + r * p.n;
    const int query = int(r % p.nq);
    const int last = p.causal != 0u ? query + int(p.n) - int(p.nq) : int(p.n) - 1;
    const uint visible = uint(clamp(last + 1, 0, int(p.n)));
    float row_max = neg_inf;
    for (uint j = 0u; j < visible; ++j) row_max = max(row_max, p.scale * x[in_base + j]);
    float total = 0.0f;
    for (uint j = 0u; j < visible; ++j) total += exp(p.scale * x[in_base + j] - row_max);
    const float log_total = visible > 0u ? row_max + log(total) : neg_inf;
    for (uint j = 0u; j < p.n; ++j) y[out_base + j] = j < visible ? exp(p.scale * x[in_base + j] - log_total) : 0.0f;
    lse[p.lse_offset + r] = log_total;
  }
}

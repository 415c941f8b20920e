// vulkan_delta.comp — the first step of the Vulkan attention backward: Delta_i = dO_i . O_i
// for every query row (f32, O(B * H * N) scratch), read by the dK/dV and dQ kernels.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#if PORTA_STORAGE16
#extension GL_EXT_shader_16bit_storage : require
#endif
#define PORTA_ATTENTION_BACKWARD
#include "attention/vulkan_attention.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint D = 64;
layout(constant_id = 2) const uint DTYPE = 0;

void main() {
  const uint rows = p.batch * p.heads_q * p.nq;
  for (uint row = gl_GlobalInvocationID.x; row < rows; row += gl_NumWorkGroups.x * gl_WorkGroupSize.x) {
    const uint base = row * D;
    float sum = 0.0f;
    [[unroll]] for (uint c = 0u; c < MAX_D; ++c) {
      if (c < D) sum += PORTA_ATTENTION_LOAD(dout, base + c, DTYPE) * PORTA_ATTENTION_LOAD(o, base + c, DTYPE);
    }
    delta32[row] = sum;
  }
}

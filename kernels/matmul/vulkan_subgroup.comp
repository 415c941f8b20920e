// vulkan_subgroup.comp — matmul for CPU-type Vulkan devices (lavapipe, SwiftShader): a
// work-group is one subgroup whose invocations are the lanes of one SIMD register.
// Each lane owns one column of C and ROWS rows; per k-step every lane loads one B value
// and ROWS / lanes A values, and the A values reach all lanes through subgroupBroadcast.
// There, every buffer or shared-memory load is a scalar load with a bounds check, so
// this keeps loads per multiply-add low and needs no shared memory or barriers.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
#extension GL_EXT_control_flow_attributes : require
#if PORTA_STORAGE16
#extension GL_EXT_shader_16bit_storage : require
#endif
#include "matmul/vulkan_matmul.glsl"

// Work-group size: must equal the device's subgroup size (the host sets both).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint LANES = 8;     // = subgroup size
layout(constant_id = 2) const uint AB_DTYPE = 0;  // operand dtype, folded at pipeline build
// Rows per work-group, a multiple of LANES; fixed here so that the accumulators live in
// registers (a fully unrolled loop).
#ifndef ROWS
#define ROWS 32
#endif
#define MAX_SLOTS 8  // ROWS / smallest LANES (4)

void main() {
  const uint lane = gl_SubgroupInvocationID;
  const uint slots = ROWS / LANES;  // A values each lane loads per k-step
  const uint a_step = p.trans_a != 0u ? p.lda : 1u;
  const uint b_step = p.trans_b != 0u ? 1u : p.ldb;
  for (uint z = gl_WorkGroupID.z; z < p.batch; z += gl_NumWorkGroups.z) {
    for (uint i0 = gl_WorkGroupID.y * ROWS; i0 < p.m; i0 += gl_NumWorkGroups.y * ROWS) {
      for (uint j0 = gl_WorkGroupID.x * LANES; j0 < p.n; j0 += gl_NumWorkGroups.x * LANES) {
        // Tails: clamped indices keep every load in bounds; the store is skipped.
        const uint j = min(j0 + lane, p.n - 1u);
        uint b_index = p.b_offset + z * p.batch_stride_b + (p.trans_b != 0u ? j * p.ldb : j);
        uint a_index[MAX_SLOTS];
        [[unroll]] for (uint s = 0u; s < MAX_SLOTS; ++s) {
          const uint i = min(i0 + s * LANES + lane, p.m - 1u);
          a_index[s] = p.a_offset + z * p.batch_stride_a + (p.trans_a != 0u ? i : i * p.lda);
        }
        float acc[ROWS];
        [[unroll]] for (uint r = 0u; r < ROWS; ++r) acc[r] = 0.0f;
        for (uint q = 0u; q < p.k; ++q) {
          const float b = load_b(b_index, AB_DTYPE);
          b_index += b_step;
          float a[MAX_SLOTS];
          [[unroll]] for (uint s = 0u; s < MAX_SLOTS; ++s) {
            if (s < slots) {
              a[s] = load_a(a_index[s], AB_DTYPE);
              a_index[s] += a_step;
            }
          }
          [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
            acc[r] += subgroupBroadcast(a[r / LANES], r % LANES) * b;
          }
        }
        if (j0 + lane < p.n) {
          const uint c_base = p.c_offset + z * p.batch_stride_c + j0 + lane;
          [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
            if (i0 + r < p.m) store_result(c_base + (i0 + r) * p.ldc, j0 + lane, acc[r]);
          }
        }
      }
    }
  }
}

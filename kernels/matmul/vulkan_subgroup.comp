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
// registers (a fully unrolled loop; the column loops are unrolled to MAX_COLS and the
// unused ones fold away when the pipeline is specialized).
#define ROWS 32  // matmul_subgroup_rows on the host
layout(constant_id = 3) const uint COLS = 2;      // columns per lane, LANES apart; <= MAX_COLS
#define MAX_COLS 8
#define MAX_SLOTS 8  // ROWS / smallest LANES (4)

void main() {
  const uint lane = gl_SubgroupInvocationID;
  const uint slots = ROWS / LANES;  // A values each lane loads per k-step
  const uint a_step = p.trans_a != 0u ? p.lda : 1u;
  const uint b_step = p.trans_b != 0u ? 1u : p.ldb;
  for (uint z = gl_WorkGroupID.z; z < p.batch; z += gl_NumWorkGroups.z) {
    for (uint i0 = gl_WorkGroupID.y * ROWS; i0 < p.m; i0 += gl_NumWorkGroups.y * ROWS) {
      for (uint j0 = gl_WorkGroupID.x * LANES * COLS; j0 < p.n; j0 += gl_NumWorkGroups.x * LANES * COLS) {
        // Tails: clamped indices keep every load in bounds; the store is skipped.
        uint b_index[MAX_COLS];
        [[unroll]] for (uint c = 0u; c < MAX_COLS; ++c) {
          const uint j = min(j0 + c * LANES + lane, p.n - 1u);
          b_index[c] = p.b_offset + z * p.batch_stride_b + (p.trans_b != 0u ? j * p.ldb : j);
        }
        uint a_index[MAX_SLOTS];
        [[unroll]] for (uint s = 0u; s < MAX_SLOTS; ++s) {
          const uint i = min(i0 + s * LANES + lane, p.m - 1u);
          a_index[s] = p.a_offset + z * p.batch_stride_a + (p.trans_a != 0u ? i : i * p.lda);
        }
        float acc[ROWS][MAX_COLS];
        [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
          [[unroll]] for (uint c = 0u; c < MAX_COLS; ++c) acc[r][c] = 0.0f;
        }
        for (uint q = 0u; q < p.k; ++q) {
          float b[MAX_COLS];
          [[unroll]] for (uint c = 0u; c < MAX_COLS; ++c) {
            if (c < COLS) {
              b[c] = load_b(b_index[c], AB_DTYPE);
              b_index[c] += b_step;
            }
          }
          float a[MAX_SLOTS];
          [[unroll]] for (uint s = 0u; s < MAX_SLOTS; ++s) {
            if (s < slots) {
              a[s] = load_a(a_index[s], AB_DTYPE);
              a_index[s] += a_step;
            }
          }
          [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
            const float a_r = subgroupBroadcast(a[r / LANES], r % LANES);
            [[unroll]] for (uint c = 0u; c < MAX_COLS; ++c) {
              if (c < COLS) acc[r][c] += a_r * b[c];
            }
          }
        }
        // The epilogue (beta, bias, GELU, the output dtype: push constants, so all of it is
        // code) appears once, in loops over a copy of the tile: unrolled over every
        // accumulator it took most of a pipeline's compile time on lavapipe (up to a minute).
        float tile[ROWS * MAX_COLS];
        [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
          [[unroll]] for (uint c = 0u; c < MAX_COLS; ++c) {
            if (c < COLS) tile[r * MAX_COLS + c] = acc[r][c];
          }
        }
        const uint rows_here = min(ROWS, p.m - i0);
        [[dont_unroll]] for (uint c = 0u; c < COLS; ++c) {
          const uint j = j0 + c * LANES + lane;
          if (j < p.n) {
            const uint c_base = p.c_offset + z * p.batch_stride_c + j;
            [[dont_unroll]] for (uint r = 0u; r < rows_here; ++r) {
              store_result(c_base + (i0 + r) * p.ldc, j, tile[r * MAX_COLS + c]);
            }
          }
        }
      }
    }
  }
}

// vulkan_tiled.comp — the GPU matmul: each work-group computes a BM x BN tile of C,
// staging BK-deep slices of A and B in shared memory with coalesced loads; each
// invocation keeps a TM x TN block of C in registers. Tile sizes and the work-group
// shape are specialization constants chosen per device (backends/vulkan/vulkan_tuning.hpp).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#if PORTA_STORAGE16
#extension GL_EXT_shader_16bit_storage : require
#endif
#include "matmul/vulkan_matmul.glsl"

layout(local_size_x_id = 0) in;  // (BM / TM) * (BN / TN) invocations
layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 64;
layout(constant_id = 3) const uint BK = 16;
layout(constant_id = 4) const uint TM = 4;  // at most MAX_T
layout(constant_id = 5) const uint TN = 4;  // at most MAX_T
layout(constant_id = 6) const uint AB_DTYPE = 0;
// Register blocks are sized for the largest configuration and guarded by TM/TN, so glslc
// unrolls them now and the accumulators stay in registers whatever the driver unrolls.
#define MAX_T 8

// k-major tiles: a row of the A tile (fixed k) is read by the invocations of a row of C.
// One word of padding per k keeps the transposing stores apart in the banks.
const uint A_STRIDE = BM + 1u;
const uint B_STRIDE = BN + 1u;
shared float a_tile[BK * A_STRIDE];
shared float b_tile[BK * B_STRIDE];

void main() {
  const uint threads = gl_WorkGroupSize.x;
  const uint tid = gl_LocalInvocationIndex;
  const uint tx_count = BN / TN;
  const uint ty_count = BM / TM;
  const uint tx = tid % tx_count;
  const uint ty = tid / tx_count;
  for (uint z = gl_WorkGroupID.z; z < p.batch; z += gl_NumWorkGroups.z) {
    const uint a_base = p.a_offset + z * p.batch_stride_a;
    const uint b_base = p.b_offset + z * p.batch_stride_b;
    const uint c_base = p.c_offset + z * p.batch_stride_c;
    for (uint i0 = gl_WorkGroupID.y * BM; i0 < p.m; i0 += gl_NumWorkGroups.y * BM) {
      for (uint j0 = gl_WorkGroupID.x * BN; j0 < p.n; j0 += gl_NumWorkGroups.x * BN) {
        float acc[MAX_T][MAX_T];
        [[unroll]] for (uint r = 0u; r < MAX_T; ++r) {
          [[unroll]] for (uint c = 0u; c < MAX_T; ++c) acc[r][c] = 0.0f;
        }
        for (uint k0 = 0u; k0 < p.k; k0 += BK) {
          // Stage the tiles; consecutive invocations read consecutive addresses along
          // whichever dimension the operand stores contiguously. Outside the matrix: 0.
          for (uint e = tid; e < BM * BK; e += threads) {
            const uint ii = p.trans_a != 0u ? e % BM : e / BK;
            const uint kk = p.trans_a != 0u ? e / BM : e % BK;
            const uint i = i0 + ii;
            const uint q = k0 + kk;
            float value = 0.0f;
            if (i < p.m && q < p.k) value = load_a(a_base + (p.trans_a != 0u ? q * p.lda + i : i * p.lda + q), AB_DTYPE);
            a_tile[kk * A_STRIDE + ii] = value;
          }
          for (uint e = tid; e < BK * BN; e += threads) {
            const uint jj = p.trans_b != 0u ? e / BK : e % BN;
            const uint kk = p.trans_b != 0u ? e % BK : e / BN;
            const uint j = j0 + jj;
            const uint q = k0 + kk;
            float value = 0.0f;
            if (j < p.n && q < p.k) value = load_b(b_base + (p.trans_b != 0u ? j * p.ldb + q : q * p.ldb + j), AB_DTYPE);
            b_tile[kk * B_STRIDE + jj] = value;
          }
          barrier();
          for (uint kk = 0u; kk < BK; ++kk) {
            float a_reg[MAX_T];
            float b_reg[MAX_T];
            // Strided ownership (row ty + r * ty_count): neighbours read neighbouring words.
            [[unroll]] for (uint r = 0u; r < MAX_T; ++r) {
              if (r < TM) a_reg[r] = a_tile[kk * A_STRIDE + ty + r * ty_count];
            }
            [[unroll]] for (uint c = 0u; c < MAX_T; ++c) {
              if (c < TN) b_reg[c] = b_tile[kk * B_STRIDE + tx + c * tx_count];
            }
            [[unroll]] for (uint r = 0u; r < MAX_T; ++r) {
              [[unroll]] for (uint c = 0u; c < MAX_T; ++c) {
                if (r < TM && c < TN) acc[r][c] = fma(a_reg[r], b_reg[c], acc[r][c]);
              }
            }
          }
          barrier();  // the tiles are overwritten next
        }
        // Fused epilogue; neighbouring invocations store neighbouring columns.
        [[unroll]] for (uint r = 0u; r < MAX_T; ++r) {
          const uint i = i0 + ty + r * ty_count;
          [[unroll]] for (uint c = 0u; c < MAX_T; ++c) {
            const uint j = j0 + tx + c * tx_count;
            if (r < TM && c < TN && i < p.m && j < p.n) store_result(c_base + i * p.ldc + j, j, acc[r][c]);
          }
        }
      }
    }
  }
}

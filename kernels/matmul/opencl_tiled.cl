// opencl_tiled.cl — matmul for GPUs: tiles of A and B staged in local memory, each
// work-item computing a WPTM x WPTN register block of C with vector loads from the tiles.
#include "matmul/opencl_common.h"

// Tuning knobs (the per-device table in backends/opencl/opencl_config.hpp passes -D values).
#ifndef PORTA_MWG
#define PORTA_MWG 64  // rows of C per work-group
#endif
#ifndef PORTA_NWG
#define PORTA_NWG 64  // columns of C per work-group
#endif
#ifndef PORTA_KWG
#define PORTA_KWG 16  // k per staged tile
#endif
#ifndef PORTA_MDIMC
#define PORTA_MDIMC 16  // work-items along M (local y)
#endif
#ifndef PORTA_NDIMC
#define PORTA_NDIMC 16  // work-items along N (local x)
#endif
#ifndef PORTA_VWM
#define PORTA_VWM 4  // vector width of the A reads from local memory: 1, 2, 4, 8
#endif
#ifndef PORTA_VWN
#define PORTA_VWN 4  // vector width of the B reads and of the accumulators: 1, 2, 4, 8
#endif

#define PORTA_WPTM (PORTA_MWG / PORTA_MDIMC)  // rows per work-item
#define PORTA_WPTN (PORTA_NWG / PORTA_NDIMC)  // columns per work-item
#define PORTA_ITEMS (PORTA_MDIMC * PORTA_NDIMC)
#if PORTA_MWG % (PORTA_MDIMC * PORTA_VWM) != 0 || PORTA_NWG % (PORTA_NDIMC * PORTA_VWN) != 0
#error "the tile must split into whole vectors per work-item"
#endif
// Row padding of the tiles in local memory: shifts banks between k rows, keeps vector alignment.
#define PORTA_LDA_TILE (PORTA_MWG + PORTA_VWM)
#define PORTA_LDB_TILE (PORTA_NWG + PORTA_VWN)

#if PORTA_VWM == 1
#define PORTA_VECM float
#define PORTA_SPLIT_M(value, out) (out)[0] = (value)
#else
#define PORTA_VECM PORTA_CAT(float, PORTA_VWM)
#define PORTA_SPLIT_M(value, out) PORTA_CAT(vstore, PORTA_VWM)(value, 0, out)
#endif
#if PORTA_VWN == 1
#define PORTA_VECN float
#define PORTA_SPLIT_N(value, out) (out)[0] = (value)
#else
#define PORTA_VECN PORTA_CAT(float, PORTA_VWN)
#define PORTA_SPLIT_N(value, out) PORTA_CAT(vstore, PORTA_VWN)(value, 0, out)
#endif

// Work-group (NDIMC, MDIMC) computes the MWG x NWG block of C at group (x, y) of batch z.
// An item owns rows (ty + s * MDIMC) * VWM + e and columns (tx + s * NDIMC) * VWN + e:
// neighbouring items read neighbouring vectors of a tile, which keeps local reads conflict-free.
__kernel __attribute__((reqd_work_group_size(PORTA_NDIMC, PORTA_MDIMC, 1))) void porta_matmul_tiled(
    __global const uchar* a, __global const uchar* b, __global const uchar* bias, __global uchar* c,
    struct MatmulParams p) {
  __local float a_tile[PORTA_KWG * PORTA_LDA_TILE];  // [k][row]
  __local float b_tile[PORTA_KWG * PORTA_LDB_TILE];  // [k][column]
  uint tx = (uint)get_local_id(0);
  uint ty = (uint)get_local_id(1);
  uint item = ty * PORTA_NDIMC + tx;
  uint n0 = (uint)get_group_id(0) * PORTA_NWG;
  uint m0 = (uint)get_group_id(1) * PORTA_MWG;
  uint z = (uint)get_group_id(2);
  uint a_base = p.a_offset + z * p.batch_stride_a;
  uint b_base = p.b_offset + z * p.batch_stride_b;

  PORTA_VECN acc[PORTA_WPTM][PORTA_WPTN / PORTA_VWN];
#pragma unroll
  for (uint r = 0; r < PORTA_WPTM; ++r) {
#pragma unroll
    for (uint s = 0; s < PORTA_WPTN / PORTA_VWN; ++s) acc[r][s] = (PORTA_VECN)(0.0f);
  }

  for (uint k0 = 0; k0 < p.k; k0 += PORTA_KWG) {
    // Stage the tiles; consecutive items read consecutive addresses of whichever
    // dimension is contiguous in memory. Out-of-range elements become zeros.
    for (uint index = item; index < PORTA_MWG * PORTA_KWG; index += PORTA_ITEMS) {
      uint row = p.trans_a != 0u ? index % PORTA_MWG : index / PORTA_KWG;
      uint kk = p.trans_a != 0u ? index / PORTA_MWG : index % PORTA_KWG;
      uint i = m0 + row;
      uint q = k0 + kk;
      float value = 0.0f;
      if (i < p.m && q < p.k) value = porta_cl_load(a, p.ab_dtype, a_base + (p.trans_a != 0u ? q * p.lda + i : i * p.lda + q));
      a_tile[kk * PORTA_LDA_TILE + row] = value;
    }
    for (uint index = item; index < PORTA_NWG * PORTA_KWG; index += PORTA_ITEMS) {
      uint col = p.trans_b != 0u ? index / PORTA_KWG : index % PORTA_NWG;
      uint kk = p.trans_b != 0u ? index % PORTA_KWG : index / PORTA_NWG;
      uint j = n0 + col;
      uint q = k0 + kk;
      float value = 0.0f;
      if (j < p.n && q < p.k) value = porta_cl_load(b, p.ab_dtype, b_base + (p.trans_b != 0u ? j * p.ldb + q : q * p.ldb + j));
      b_tile[kk * PORTA_LDB_TILE + col] = value;
    }
    barrier(CLK_LOCAL_MEM_FENCE);

#pragma unroll
    for (uint kk = 0; kk < PORTA_KWG; ++kk) {
      float a_reg[PORTA_WPTM];
#pragma unroll
      for (uint s = 0; s < PORTA_WPTM / PORTA_VWM; ++s) {
        PORTA_VECM value = *(__local const PORTA_VECM*)&a_tile[kk * PORTA_LDA_TILE + (ty + s * PORTA_MDIMC) * PORTA_VWM];
        PORTA_SPLIT_M(value, a_reg + s * PORTA_VWM);
      }
      PORTA_VECN b_reg[PORTA_WPTN / PORTA_VWN];
#pragma unroll
      for (uint s = 0; s < PORTA_WPTN / PORTA_VWN; ++s) {
        b_reg[s] = *(__local const PORTA_VECN*)&b_tile[kk * PORTA_LDB_TILE + (tx + s * PORTA_NDIMC) * PORTA_VWN];
      }
#pragma unroll
      for (uint r = 0; r < PORTA_WPTM; ++r) {
#pragma unroll
        for (uint s = 0; s < PORTA_WPTN / PORTA_VWN; ++s) acc[r][s] = fma((PORTA_VECN)(a_reg[r]), b_reg[s], acc[r][s]);
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }

  uint c_base = p.c_offset + z * p.batch_stride_c;
#pragma unroll
  for (uint r = 0; r < PORTA_WPTM; ++r) {
    uint i = m0 + (ty + (r / PORTA_VWM) * PORTA_MDIMC) * PORTA_VWM + r % PORTA_VWM;
    if (i < p.m) {
#pragma unroll
      for (uint s = 0; s < PORTA_WPTN / PORTA_VWN; ++s) {
        float lanes[PORTA_VWN];
        PORTA_SPLIT_N(acc[r][s], lanes);
        uint j = n0 + (tx + s * PORTA_NDIMC) * PORTA_VWN;
        for (uint e = 0; e < PORTA_VWN && j + e < p.n; ++e) {
          porta_mm_finish(c, bias, c_base + i * p.ldc + j + e, j + e, lanes[e], p);
        }
      }
    }
  }
}

// opencl_packed.cl — matmul for CPU-type OpenCL devices (PoCL): A and B repacked into
// contiguous f32 panels along k, then each work-item computes an MR x NR block of C in
// vector registers with explicit fma, the epilogue fused into the store.
#include "matmul/opencl_common.h"

// Tuning knobs (the per-device table in backends/opencl/opencl_config.hpp passes -D values).
#ifndef PORTA_MR
#define PORTA_MR 6  // rows of C per work-item
#endif
#ifndef PORTA_VW
#define PORTA_VW 8  // floats per accumulator vector: 2, 4, 8 or 16
#endif
#ifndef PORTA_NV
#define PORTA_NV 2  // accumulator vectors per row: NR = VW * NV columns per work-item
#endif
#define PORTA_NR (PORTA_VW * PORTA_NV)

#if PORTA_VW != 2 && PORTA_VW != 4 && PORTA_VW != 8 && PORTA_VW != 16
#error "PORTA_VW must be 2, 4, 8 or 16"
#endif
#define PORTA_VEC PORTA_CAT(float, PORTA_VW)
#define PORTA_VLOAD PORTA_CAT(vload, PORTA_VW)
#define PORTA_VSTORE PORTA_CAT(vstore, PORTA_VW)

// Panels of MR rows of op(A): panel-major, then k, then the MR rows (zeros past m).
// Grid: x over k, y over row panels, z over the A batches that differ (1 when broadcast).
__kernel void porta_matmul_pack_a(__global const uchar* a, __global float* packed, struct MatmulParams p) {
  uint q = (uint)get_global_id(0);
  uint panel = (uint)get_global_id(1);
  uint z = (uint)get_global_id(2);
  uint panels = (p.m + PORTA_MR - 1u) / PORTA_MR;
  if (q >= p.k || panel >= panels) return;
  uint base = p.a_offset + z * p.batch_stride_a;
  __global float* out = packed + (((size_t)z * panels + panel) * p.k + q) * PORTA_MR;
  for (uint r = 0; r < PORTA_MR; ++r) {
    uint i = panel * PORTA_MR + r;
    float value = 0.0f;
    if (i < p.m) value = porta_mm_load(a, p.ab_dtype, base + (p.trans_a != 0u ? q * p.lda + i : i * p.lda + q));
    out[r] = value;
  }
}

// Panels of NR columns of op(B): panel-major, then k, then the NR columns (zeros past n).
__kernel void porta_matmul_pack_b(__global const uchar* b, __global float* packed, struct MatmulParams p) {
  uint q = (uint)get_global_id(0);
  uint panel = (uint)get_global_id(1);
  uint z = (uint)get_global_id(2);
  uint panels = (p.n + PORTA_NR - 1u) / PORTA_NR;
  if (q >= p.k || panel >= panels) return;
  uint base = p.b_offset + z * p.batch_stride_b;
  __global float* out = packed + (((size_t)z * panels + panel) * p.k + q) * PORTA_NR;
  for (uint col = 0; col < PORTA_NR; ++col) {
    uint j = panel * PORTA_NR + col;
    float value = 0.0f;
    if (j < p.n) value = porta_mm_load(b, p.ab_dtype, base + (p.trans_b != 0u ? j * p.ldb + q : q * p.ldb + j));
    out[col] = value;
  }
}

// GPT-2's GELU on a vector, the same formula as porta_gelu.
PORTA_FN PORTA_VEC porta_mm_gelu_vec(PORTA_VEC x) {
  PORTA_VEC inner = PORTA_GELU_SCALE * (x + PORTA_GELU_CUBIC * x * x * x);
  return 0.5f * x * (1.0f + tanh(inner));
}

// One MR x NR block of C per work-item over the whole k. Grid: x over column panels,
// y over row panels, z over the batch; work-groups are stacked along y so the row blocks
// run one after another on one thread and share the B panel in cache.
__kernel void porta_matmul_packed(__global const float* packed_a, __global const float* packed_b,
                                  __global const uchar* bias, __global uchar* c, struct MatmulParams p) {
  uint jp = (uint)get_global_id(0);
  uint ip = (uint)get_global_id(1);
  uint z = (uint)get_global_id(2);
  uint panels_m = (p.m + PORTA_MR - 1u) / PORTA_MR;
  uint panels_n = (p.n + PORTA_NR - 1u) / PORTA_NR;
  if (jp >= panels_n || ip >= panels_m || z >= p.batch) return;
  uint za = p.batch_stride_a != 0u ? z : 0u;
  uint zb = p.batch_stride_b != 0u ? z : 0u;
  __global const float* pa = packed_a + ((size_t)za * panels_m + ip) * p.k * PORTA_MR;
  // Panels start at multiples of NR floats: aligned for whole-vector loads.
  __global const PORTA_VEC* pb = (__global const PORTA_VEC*)(packed_b + ((size_t)zb * panels_n + jp) * p.k * PORTA_NR);

  PORTA_VEC acc[PORTA_MR][PORTA_NV];
#pragma unroll
  for (uint r = 0; r < PORTA_MR; ++r) {
#pragma unroll
    for (uint v = 0; v < PORTA_NV; ++v) acc[r][v] = (PORTA_VEC)(0.0f);
  }
  for (uint q = 0; q < p.k; ++q) {
    PORTA_VEC bv[PORTA_NV];
#pragma unroll
    for (uint v = 0; v < PORTA_NV; ++v) bv[v] = pb[v];
#pragma unroll
    for (uint r = 0; r < PORTA_MR; ++r) {
      PORTA_VEC av = (PORTA_VEC)(pa[r]);
#pragma unroll
      for (uint v = 0; v < PORTA_NV; ++v) acc[r][v] = fma(av, bv[v], acc[r][v]);
    }
    pa += PORTA_MR;
    pb += PORTA_NV;
  }

  // Whole vectors of f32 output take the vector path; tails and 16-bit types go element by element.
  uint c_base = p.c_offset + z * p.batch_stride_c;
  bool vector_ok = p.c_dtype == PORTA_DTYPE_F32 && (p.has_bias == 0u || p.bias_dtype == PORTA_DTYPE_F32);
  __global float* cf = (__global float*)c;
  __global const float* bias_f = (__global const float*)bias + p.bias_offset;
#pragma unroll
  for (uint r = 0; r < PORTA_MR; ++r) {
    uint i = ip * PORTA_MR + r;
    if (i < p.m) {
      uint row = c_base + i * p.ldc;
#pragma unroll
      for (uint v = 0; v < PORTA_NV; ++v) {
        uint j = jp * PORTA_NR + v * PORTA_VW;
        if (vector_ok && j + PORTA_VW <= p.n) {
          PORTA_VEC value = p.alpha * acc[r][v];
          if (p.beta != 0.0f) value += p.beta * PORTA_VLOAD(0, cf + row + j);
          if (p.has_bias != 0u) value += PORTA_VLOAD(0, bias_f + j);
          if (p.epilogue == PORTA_EPILOGUE_GELU) value = porta_mm_gelu_vec(value);
          PORTA_VSTORE(value, 0, cf + row + j);
        } else if (j < p.n) {
          float lanes[PORTA_VW];
          PORTA_VSTORE(acc[r][v], 0, lanes);
          for (uint e = 0; e < PORTA_VW && j + e < p.n; ++e) porta_mm_finish(c, bias, row + j + e, j + e, lanes[e], p);
        }
      }
    }
  }
}

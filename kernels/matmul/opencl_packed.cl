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
#ifndef PORTA_KC
#define PORTA_KC 0  // k per step of the work-group in lockstep (0: each item runs the whole k)
#endif
#define PORTA_NR (PORTA_VW * PORTA_NV)

#if PORTA_VW != 2 && PORTA_VW != 4 && PORTA_VW != 8 && PORTA_VW != 16
#error "PORTA_VW must be 2, 4, 8 or 16"
#endif
#define PORTA_VEC PORTA_CAT(float, PORTA_VW)
#define PORTA_VLOAD PORTA_CAT(vload, PORTA_VW)
#define PORTA_VSTORE PORTA_CAT(vstore, PORTA_VW)

// Packing: one work-item copies a tile of PORTA_PACK_STEPS steps of k by one panel's
// MR rows (A) or NR columns (B). One element per work-item cost PoCL 2-3 ns an element,
// a fifth of a 2048^3 matmul; per tile the index arithmetic is an add per element.
// Grid (x, y, z): x over blocks of k, y over panels, z over the operand's batches that
// differ (1 when it is broadcast). PORTA_PACK_STEPS comes from the host
// (matmul_pack_steps in backends/opencl/opencl_config.hpp), which sizes the grid with it.

// out[q * width + w] = source[base + q * k_step + w * w_step] for q < steps, w < valid;
// zero for valid <= w < width (the panel's rows or columns past the matrix).
PORTA_FN void porta_pack_tile(__global const uchar* source, uint dtype, size_t base, size_t k_step,
                              size_t w_step, uint steps, uint valid, uint width, __global float* out) {
  for (uint q = 0; q < steps; ++q) {
    for (uint w = 0; w < width; ++w) {
      out[q * width + w] = w < valid ? porta_cl_load(source, dtype, base + q * k_step + w * w_step) : 0.0f;
    }
  }
}

// Panels of MR rows of op(A): panel-major, then k, then the MR rows (zeros past m).
__kernel void porta_matmul_pack_a(__global const uchar* a, __global float* packed, struct MatmulParams p) {
  uint q0 = (uint)get_global_id(0) * PORTA_PACK_STEPS;
  uint panel = (uint)get_global_id(1);
  uint z = (uint)get_global_id(2);
  uint panels = (p.m + PORTA_MR - 1u) / PORTA_MR;
  if (q0 >= p.k || panel >= panels) return;
  uint i0 = panel * PORTA_MR;
  bool stored_transposed = p.trans_a != 0u;  // A^T stored: A[i][q] at q * lda + i
  size_t base = p.a_offset + (size_t)z * p.batch_stride_a +
                (stored_transposed ? (size_t)q0 * p.lda + i0 : (size_t)i0 * p.lda + q0);
  porta_pack_tile(a, p.ab_dtype, base, stored_transposed ? p.lda : 1u, stored_transposed ? 1u : p.lda,
                  min((uint)PORTA_PACK_STEPS, p.k - q0), min((uint)PORTA_MR, p.m - i0), PORTA_MR,
                  packed + (((size_t)z * panels + panel) * p.k + q0) * PORTA_MR);
}

// Panels of NR columns of op(B): panel-major, then k, then the NR columns (zeros past n).
__kernel void porta_matmul_pack_b(__global const uchar* b, __global float* packed, struct MatmulParams p) {
  uint q0 = (uint)get_global_id(0) * PORTA_PACK_STEPS;
  uint panel = (uint)get_global_id(1);
  uint z = (uint)get_global_id(2);
  uint panels = (p.n + PORTA_NR - 1u) / PORTA_NR;
  if (q0 >= p.k || panel >= panels) return;
  uint j0 = panel * PORTA_NR;
  bool stored_transposed = p.trans_b != 0u;  // B^T stored: B[j][q] at j * ldb + q
  size_t base = p.b_offset + (size_t)z * p.batch_stride_b +
                (stored_transposed ? (size_t)j0 * p.ldb + q0 : (size_t)q0 * p.ldb + j0);
  porta_pack_tile(b, p.ab_dtype, base, stored_transposed ? 1u : p.ldb, stored_transposed ? p.ldb : 1u,
                  min((uint)PORTA_PACK_STEPS, p.k - q0), min((uint)PORTA_NR, p.n - j0), PORTA_NR,
                  packed + (((size_t)z * panels + panel) * p.k + q0) * PORTA_NR);
}

// GPT-2's GELU on a vector: porta_gelu's formula (kernels/common/gelu.h) lane by lane.
PORTA_FN PORTA_VEC porta_mm_gelu_vec(PORTA_VEC x) {
  PORTA_VEC inner = PORTA_GELU_SCALE * (x + PORTA_GELU_CUBIC * x * x * x);
  PORTA_VEC e = exp(2.0f * clamp(inner, -15.0f, 15.0f));
  return x * (e / (1.0f + e));
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
#if PORTA_KC == 0
  if (jp >= panels_n || ip >= panels_m || z >= p.batch) return;
#else
  // Every item of the group must reach the barriers: items past the edge idle along.
  bool active = jp < panels_n && ip < panels_m && z < p.batch;
  if (!active) {
    jp = 0u;
    ip = 0u;
    z = 0u;
  }
#endif
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
#if PORTA_KC == 0
  uint k_step = p.k;
#else
  // The group walks k in steps of KC together, so the B panel's current KC x NR slice,
  // shared by the group's row blocks, stays in the L1 cache.
  uint k_step = PORTA_KC;
#endif
  for (uint k0 = 0; k0 < p.k; k0 += k_step) {
#if PORTA_KC == 0
    uint k1 = p.k;
#else
    uint k1 = active ? min(k0 + k_step, p.k) : k0;
#endif
    for (uint q = k0; q < k1; ++q) {
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
#if PORTA_KC != 0
    barrier(CLK_GLOBAL_MEM_FENCE);
#endif
  }
#if PORTA_KC != 0
  if (!active) return;
#endif

  // Epilogue. Unrolled over the MR x NV accumulators it must stay small (the accumulators
  // live in registers only while every index is a constant), so GELU and the element-wise
  // tails run afterwards in loops that are not unrolled: unrolled, they made PoCL's
  // compile take a minute.
  uint c_base = p.c_offset + z * p.batch_stride_c;
  bool vector_ok = p.c_dtype == PORTA_DTYPE_F32 && (p.has_bias == 0u || p.bias_dtype == PORTA_DTYPE_F32);
  __global float* cf = (__global float*)c;
  __global const float* bias_f = (__global const float*)bias + p.bias_offset;
  float tails[PORTA_MR * PORTA_NR];  // accumulators of the blocks the vector path leaves
  bool any_tail = false;
#pragma unroll
  for (uint r = 0; r < PORTA_MR; ++r) {
    uint i = ip * PORTA_MR + r;
#pragma unroll
    for (uint v = 0; v < PORTA_NV; ++v) {
      uint j = jp * PORTA_NR + v * PORTA_VW;
      if (i < p.m && vector_ok && j + PORTA_VW <= p.n) {
        uint at = c_base + i * p.ldc + j;
        PORTA_VEC value = p.alpha * acc[r][v];
        if (p.beta != 0.0f) value += p.beta * PORTA_VLOAD(0, cf + at);
        if (p.has_bias != 0u) value += PORTA_VLOAD(0, bias_f + j);
        PORTA_VSTORE(value, 0, cf + at);
      } else {
        PORTA_VSTORE(acc[r][v], r * PORTA_NV + v, tails);
        any_tail = true;
      }
    }
  }
  uint rows = min((uint)PORTA_MR, p.m - ip * PORTA_MR);
#pragma unroll 1
  for (uint r = 0; r < rows; ++r) {
    uint row = c_base + (ip * PORTA_MR + r) * p.ldc;
#pragma unroll 1
    for (uint v = 0; v < PORTA_NV; ++v) {
      uint j = jp * PORTA_NR + v * PORTA_VW;
      if (vector_ok && j + PORTA_VW <= p.n) {
        if (p.epilogue == PORTA_EPILOGUE_GELU) PORTA_VSTORE(porta_mm_gelu_vec(PORTA_VLOAD(0, cf + row + j)), 0, cf + row + j);
      } else if (any_tail) {
#pragma unroll 1
        for (uint e = 0; e < PORTA_VW && j + e < p.n; ++e) {
          porta_mm_finish(c, bias, row + j + e, j + e, tails[(r * PORTA_NV + v) * PORTA_VW + e], p);
        }
      }
    }
  }
}

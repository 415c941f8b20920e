// opencl.cl — row sums in OpenCL C: one work-group per (row, piece), a local-memory tree
// of fixed shape, so the summation order (and the bits) never change between runs.
#include "reduce/params.h"

PORTA_FN float porta_load_float(__global const uchar* base, uint dtype, ulong index) {
  if (dtype == PORTA_DTYPE_F16 || dtype == PORTA_DTYPE_BF16) {
    return porta_bits_to_float(((__global const ushort*)base)[index], dtype);
  }
  return ((__global const float*)base)[index];
}

PORTA_FN void porta_store_float(__global uchar* base, uint dtype, ulong index, float value) {
  uint bits = porta_float_to_bits(value, dtype);
  if (dtype == PORTA_DTYPE_F16 || dtype == PORTA_DTYPE_BF16) {
    ((__global ushort*)base)[index] = (ushort)bits;
  } else {
    ((__global uint*)base)[index] = bits;
  }
}

// Sum of elements [first, last) of `base`, four lanes combined in a fixed order.
PORTA_FN float porta_sum_run(__global const uchar* in, uint dtype, ulong base, uint first, uint last) {
  float4 lanes = (float4)(0.0f);
  uint i = first;
  if (dtype == PORTA_DTYPE_F32) {
    __global const float* x = (__global const float*)in + base;
    for (; i + 4u <= last; i += 4u) lanes += vload4(0, x + i);
  } else {
    for (; i + 4u <= last; i += 4u) {
      lanes += (float4)(porta_load_float(in, dtype, base + i), porta_load_float(in, dtype, base + i + 1u),
                        porta_load_float(in, dtype, base + i + 2u), porta_load_float(in, dtype, base + i + 3u));
    }
  }
  float tail = 0.0f;
  for (; i < last; ++i) tail += porta_load_float(in, dtype, base + i);
  return ((lanes.x + lanes.z) + (lanes.y + lanes.w)) + tail;
}

// Tree over the work-group (its size is a power of two); work-item 0 writes the result.
PORTA_FN void porta_finish(__local float* scratch, float value, __global uchar* out, struct ReduceParams* p, uint piece) {
  uint lid = (uint)get_local_id(0);
  uint size = (uint)get_local_size(0);
  scratch[lid] = value;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint half_size = size >> 1; half_size > 0u; half_size >>= 1) {
    if (lid < half_size) scratch[lid] += scratch[lid + half_size];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0u) porta_store_float(out, p->out_dtype, (ulong)p->out_offset + piece, scratch[0]);
}

// Work-item t sums elements first + t, first + t + size, ...: neighbours read neighbours
// (coalesced on GPUs).
__kernel void porta_reduce_sum_strided(__global const uchar* in, __global uchar* out, struct ReduceParams p,
                                       __local float* scratch) {
  uint piece = (uint)(get_global_id(0) / get_local_size(0));
  uint lid = (uint)get_local_id(0);
  uint size = (uint)get_local_size(0);
  uint row = piece / p.chunks;
  uint first = (piece - row * p.chunks) * p.chunk;
  uint last = min(first + p.chunk, p.n);
  ulong base = (ulong)p.in_offset + (ulong)row * p.n;
  float value = 0.0f;
  if (piece < p.rows * p.chunks) {
    for (uint i = first + lid; i < last; i += size) value += porta_load_float(in, p.in_dtype, base + i);
  }
  porta_finish(scratch, value, out, &p, piece);
}

// Work-item t sums one contiguous run of the piece: what CPU caches and SIMD units like.
__kernel void porta_reduce_sum_contiguous(__global const uchar* in, __global uchar* out, struct ReduceParams p,
                                          __local float* scratch) {
  uint piece = (uint)(get_global_id(0) / get_local_size(0));
  uint lid = (uint)get_local_id(0);
  uint size = (uint)get_local_size(0);
  uint row = piece / p.chunks;
  uint first = (piece - row * p.chunks) * p.chunk;
  uint last = min(first + p.chunk, p.n);
  ulong base = (ulong)p.in_offset + (ulong)row * p.n;
  float value = 0.0f;
  if (piece < p.rows * p.chunks) {
    uint run = (last - first + size - 1u) / size;
    uint begin = min(first + lid * run, last);
    value = porta_sum_run(in, p.in_dtype, base, begin, min(begin + run, last));
  }
  porta_finish(scratch, value, out, &p, piece);
}

// Short pieces: one work-item sums a whole piece, no tree.
__kernel void porta_reduce_sum_short(__global const uchar* in, __global uchar* out, struct ReduceParams p) {
  uint piece = (uint)get_global_id(0);
  if (piece >= p.rows * p.chunks) return;
  uint row = piece / p.chunks;
  uint first = (piece - row * p.chunks) * p.chunk;
  uint last = min(first + p.chunk, p.n);
  float value = porta_sum_run(in, p.in_dtype, (ulong)p.in_offset + (ulong)row * p.n, first, last);
  porta_store_float(out, p.out_dtype, (ulong)p.out_offset + piece, value);
}

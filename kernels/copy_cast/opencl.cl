// opencl.cl — strided copy-and-cast in OpenCL C: any strided view in, contiguous out.
#include "copy_cast/params.h"

PORTA_FN uint porta_load_bits(__global const uchar* base, uint dtype, long index) {
  if (dtype == PORTA_DTYPE_F16 || dtype == PORTA_DTYPE_BF16) return ((__global const ushort*)base)[index];
  return ((__global const uint*)base)[index];
}

PORTA_FN void porta_store_bits(__global uchar* base, uint dtype, ulong index, uint bits) {
  if (dtype == PORTA_DTYPE_F16 || dtype == PORTA_DTYPE_BF16) {
    ((__global ushort*)base)[index] = (ushort)bits;
  } else {
    ((__global uint*)base)[index] = bits;
  }
}

// Same dtype: the raw bits (NaN payloads kept); otherwise through float, exact and RNE.
PORTA_FN void porta_move(__global const uchar* in, __global uchar* out, struct CopyCastParams* p, long source, ulong target) {
  uint bits = porta_load_bits(in, p->in_dtype, source);
  if (p->in_dtype != p->out_dtype) bits = porta_float_to_bits(porta_bits_to_float(bits, p->in_dtype), p->out_dtype);
  porta_store_bits(out, p->out_dtype, target, bits);
}

// Source offset of row `row` (the index over every dimension but the innermost).
PORTA_FN long porta_row_source(struct CopyCastParams* p, uint row) {
  long source = (long)p->in_offset;
  for (int dim = (int)p->rank - 2; dim >= 0; --dim) {
    uint extent = p->shape[dim];
    uint next = row / extent;
    source += (long)(row - next * extent) * p->in_strides[dim];
    row = next;
  }
  return source;
}

// One element per work-item over the flat output index. The host collapses contiguous
// dimensions first, so a plain copy arrives as rank <= 1 and divides nothing.
__kernel void porta_copy_cast(__global const uchar* in, __global uchar* out, struct CopyCastParams p) {
  uint i = (uint)get_global_id(0);
  if (i >= p.count) return;
  long source;
  if (p.rank == 0u) {
    source = (long)p.in_offset;
  } else if (p.rank == 1u) {
    source = (long)p.in_offset + (long)i * p.in_strides[0];
  } else {
    uint inner = p.shape[p.rank - 1u];
    uint row = i / inner;
    source = porta_row_source(&p, row) + (long)(i - row * inner) * p.in_strides[p.rank - 1u];
  }
  porta_move(in, out, &p, source, (ulong)p.out_offset + i);
}

// A 2D grid of 2D work-groups: x along the innermost dimension, y over rows, so the row
// decode costs one division chain per work-item (none for rank 2), and a square group
// reads whole cache lines of a transposed input.
__kernel void porta_copy_cast_rows(__global const uchar* in, __global uchar* out, struct CopyCastParams p) {
  uint inner = p.shape[p.rank - 1u];
  uint column = (uint)get_global_id(0);
  uint row = (uint)get_global_id(1);
  ulong target = (ulong)row * inner + column;
  if (column >= inner || target >= p.count) return;
  long source = porta_row_source(&p, row) + (long)column * p.in_strides[p.rank - 1u];
  porta_move(in, out, &p, source, (ulong)p.out_offset + target);
}

// opencl.cl — fill in OpenCL C: every element of a contiguous range set to one bit pattern.
#include "fill/params.h"

// One element per work-item; the host rounds the global size up to the local size.
__kernel void porta_fill(__global uchar* out, struct FillParams p) {
  uint i = (uint)get_global_id(0);
  if (i >= p.count) return;
  if (p.dtype == PORTA_DTYPE_F16 || p.dtype == PORTA_DTYPE_BF16) {
    ((__global ushort*)out)[p.out_offset + i] = (ushort)p.value_bits;
  } else {
    ((__global uint*)out)[p.out_offset + i] = p.value_bits;
  }
}

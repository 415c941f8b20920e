// opencl.cl — the counter-based random generator in OpenCL C; bit-identical to the cpu
// kernel because the shared generator switches fma contraction off.
#include "random/params.h"
#include "random/generator.h"

__kernel void porta_random(__global uchar* out, struct RandomParams p) {
  uint i = (uint)get_global_id(0);
  if (i >= p.count) return;
  float value = porta_random_value(p.seed_lo, p.seed_hi, p.counter_lo, p.counter_hi, i, p.distribution, p.a, p.b);
  uint bits = porta_float_to_bits(value, p.dtype);
  if (p.dtype == PORTA_DTYPE_F16 || p.dtype == PORTA_DTYPE_BF16) {
    ((__global ushort*)out)[p.out_offset + i] = (ushort)bits;
  } else {
    ((__global uint*)out)[p.out_offset + i] = bits;
  }
}

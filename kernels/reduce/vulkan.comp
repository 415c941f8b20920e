// vulkan.comp — row sums on Vulkan: one work-group per (row, piece); each invocation sums
// a strided slice in order, then a shared-memory tree of fixed shape: repeatable bits.
#version 450
#extension GL_GOOGLE_include_directive : require
#if PORTA_STORAGE16
#extension GL_EXT_shader_16bit_storage : require
#endif
#include "reduce/params.h"

// The work-group size must be a power of two (the backend's tuning table ensures it).
layout(local_size_x_id = 0) in;
layout(push_constant) uniform Push { ReduceParams p; };
// Each binding seen as 32-bit words and, where the device can, as 16-bit elements.
layout(std430, binding = 0) readonly buffer In32 { uint in32[]; };
layout(std430, binding = 1) writeonly buffer Out32 { uint out32[]; };
#if PORTA_STORAGE16
layout(std430, binding = 0) readonly buffer In16 { uint16_t in16[]; };
layout(std430, binding = 1) writeonly buffer Out16 { uint16_t out16[]; };
#endif

shared float partial[gl_WorkGroupSize.x];

bool is_narrow(uint dtype) { return dtype == PORTA_DTYPE_F16 || dtype == PORTA_DTYPE_BF16; }

float load_value(uint index) {
#if PORTA_STORAGE16
  if (is_narrow(p.in_dtype)) return porta_bits_to_float(uint(in16[index]), p.in_dtype);
#endif
  return porta_bits_to_float(in32[index], p.in_dtype);
}

void store_value(uint index, float value) {
  const uint bits = porta_float_to_bits(value, p.out_dtype);
#if PORTA_STORAGE16
  if (is_narrow(p.out_dtype)) {
    out16[index] = uint16_t(bits);
    return;
  }
#endif
  out32[index] = bits;
}

void main() {
  const uint lane = gl_LocalInvocationID.x;
  const uint lanes = gl_WorkGroupSize.x;
  const uint pieces = p.rows * p.chunks;
  // The loop bound depends on the work-group alone, so every barrier is reached uniformly.
  for (uint piece = gl_WorkGroupID.x; piece < pieces; piece += gl_NumWorkGroups.x) {
    const uint row = piece / p.chunks;
    const uint first = (piece - row * p.chunks) * p.chunk;
    const uint last = min(first + p.chunk, p.n);
    const uint base = p.in_offset + row * p.n;
    float sum = 0.0;
    for (uint i = first + lane; i < last; i += lanes) sum += load_value(base + i);
    partial[lane] = sum;
    barrier();
    for (uint half_width = lanes / 2u; half_width > 0u; half_width /= 2u) {
      if (lane < half_width) partial[lane] += partial[lane + half_width];
      barrier();
    }
    if (lane == 0u) store_value(p.out_offset + piece, partial[0]);
    barrier();  // partial[0] is read before the next piece overwrites it
  }
}

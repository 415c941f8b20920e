// vulkan.comp — the counter-based random generator on Vulkan; bit-identical to the cpu
// kernel because generator.h marks its float arithmetic `precise` (no fma contraction).
#version 450
#extension GL_GOOGLE_include_directive : require
#if PORTA_STORAGE16
#extension GL_EXT_shader_16bit_storage : require
#endif
#include "random/generator.h"

layout(local_size_x_id = 0) in;
layout(push_constant) uniform Push { RandomParams p; };
// One binding seen as 32-bit words and, where the device can, as 16-bit elements.
layout(std430, binding = 0) writeonly buffer Out32 { uint out32[]; };
#if PORTA_STORAGE16
layout(std430, binding = 0) writeonly buffer Out16 { uint16_t out16[]; };
#endif

void main() {
  const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  for (uint i = gl_GlobalInvocationID.x; i < p.count; i += stride) {
    const float value = porta_random_value(p.seed_lo, p.seed_hi, p.counter_lo, p.counter_hi, i, p.distribution, p.a, p.b);
    const uint bits = porta_float_to_bits(value, p.dtype);
#if PORTA_STORAGE16
    if (p.dtype == PORTA_DTYPE_F16 || p.dtype == PORTA_DTYPE_BF16) {
      out16[p.out_offset + i] = uint16_t(bits);
      continue;
    }
#endif
    out32[p.out_offset + i] = bits;
  }
}

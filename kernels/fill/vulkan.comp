// vulkan.comp — fill on Vulkan: out[out_offset + i] = value_bits, grid-stride over count.
#version 450
#extension GL_GOOGLE_include_directive : require
#if PORTA_STORAGE16
#extension GL_EXT_shader_16bit_storage : require
#endif
#include "fill/params.h"

layout(local_size_x_id = 0) in;
layout(push_constant) uniform Push { FillParams p; };
// One binding seen as 32-bit words and, where the device can, as 16-bit elements.
layout(std430, binding = 0) writeonly buffer Out32 { uint out32[]; };
#if PORTA_STORAGE16
layout(std430, binding = 0) writeonly buffer Out16 { uint16_t out16[]; };
#endif

void main() {
  const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  const bool narrow = p.dtype == PORTA_DTYPE_F16 || p.dtype == PORTA_DTYPE_BF16;
  for (uint i = gl_GlobalInvocationID.x; i < p.count; i += stride) {
    if (!narrow) {
      out32[p.out_offset + i] = p.value_bits;
    }
#if PORTA_STORAGE16
    else {
      out16[p.out_offset + i] = uint16_t(p.value_bits);
    }
#endif
  }
}

// vulkan.comp — strided copy-and-cast on Vulkan: any strided view in, contiguous out.
#version 450
#extension GL_GOOGLE_include_directive : require
#if PORTA_STORAGE16
#extension GL_EXT_shader_16bit_storage : require
#endif
#include "copy_cast/params.h"

layout(local_size_x_id = 0) in;
layout(push_constant) uniform Push { CopyCastParams p; };
// Each binding seen as 32-bit words and, where the device can, as 16-bit elements.
layout(std430, binding = 0) readonly buffer In32 { uint in32[]; };
layout(std430, binding = 1) writeonly buffer Out32 { uint out32[]; };
#if PORTA_STORAGE16
layout(std430, binding = 0) readonly buffer In16 { uint16_t in16[]; };
layout(std430, binding = 1) writeonly buffer Out16 { uint16_t out16[]; };
#endif

bool is_narrow(uint dtype) { return dtype == PORTA_DTYPE_F16 || dtype == PORTA_DTYPE_BF16; }

uint load_bits(uint index) {
#if PORTA_STORAGE16
  if (is_narrow(p.in_dtype)) return uint(in16[index]);
#endif
  return in32[index];
}

void store_bits(uint index, uint bits) {
#if PORTA_STORAGE16
  if (is_narrow(p.out_dtype)) {
    out16[index] = uint16_t(bits);
    return;
  }
#endif
  out32[index] = bits;
}

void main() {
  const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  for (uint i = gl_GlobalInvocationID.x; i < p.count; i += stride) {
    // Innermost dimension last; uint arithmetic wraps, so negative strides still land
    // on the right element as long as the final index is inside the buffer.
    uint source = p.in_offset;
    uint rest = i;
    for (int dim = int(p.rank) - 1; dim >= 0; --dim) {
      const uint extent = p.shape[dim];
      const uint coordinate = rest % extent;
      rest /= extent;
      source += uint(int(coordinate) * p.in_strides[dim]);
    }
    uint bits = load_bits(source);
    if (p.in_dtype != p.out_dtype) bits = porta_float_to_bits(porta_bits_to_float(bits, p.in_dtype), p.out_dtype);
    store_bits(p.out_offset + i, bits);
  }
}

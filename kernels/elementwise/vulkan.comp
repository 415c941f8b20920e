// vulkan.comp — elementwise add, mul, axpby, gelu and its backward on Vulkan, f32 arithmetic
// for every dtype.
#version 450
#extension GL_GOOGLE_include_directive : require
#if PORTA_STORAGE16
#extension GL_EXT_shader_16bit_storage : require
#endif
#include "elementwise/params.h"

layout(local_size_x_id = 0) in;
layout(push_constant) uniform Push { ElementwiseParams p; };
// Each binding seen as 32-bit words and, where the device can, as 16-bit elements.
layout(std430, binding = 0) readonly buffer A32 { uint a32[]; };
layout(std430, binding = 1) readonly buffer B32 { uint b32[]; };
layout(std430, binding = 2) writeonly buffer Out32 { uint out32[]; };
#if PORTA_STORAGE16
layout(std430, binding = 0) readonly buffer A16 { uint16_t a16[]; };
layout(std430, binding = 1) readonly buffer B16 { uint16_t b16[]; };
layout(std430, binding = 2) writeonly buffer Out16 { uint16_t out16[]; };
#endif

void main() {
  const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  const bool narrow = p.dtype == PORTA_DTYPE_F16 || p.dtype == PORTA_DTYPE_BF16;
  for (uint i = gl_GlobalInvocationID.x; i < p.count; i += stride) {
    uint a_bits;
    uint b_bits;
#if PORTA_STORAGE16
    if (narrow) {
      a_bits = uint(a16[p.a_offset + i]);
      b_bits = uint(b16[p.b_offset + i]);
    } else
#endif
    {
      a_bits = a32[p.a_offset + i];
      b_bits = b32[p.b_offset + i];
    }
    const float a = porta_bits_to_float(a_bits, p.dtype);
    const float b = porta_bits_to_float(b_bits, p.dtype);
    // precise: axpby rounds twice like the cpu kernel, never fused into an fma.
    precise float value;
    if (p.op == PORTA_ELEMENTWISE_ADD) {
      value = a + b;
    } else if (p.op == PORTA_ELEMENTWISE_MUL) {
      value = a * b;
    } else if (p.op == PORTA_ELEMENTWISE_AXPBY) {
      value = p.alpha * a + p.beta * b;
    } else if (p.op == PORTA_ELEMENTWISE_GELU) {
      value = porta_gelu(a);
    } else {  // PORTA_ELEMENTWISE_GELU_BACKWARD: a is the gradient, b gelu's input
      value = a * porta_gelu_derivative(b);
    }
    const uint bits = porta_float_to_bits(value, p.dtype);
#if PORTA_STORAGE16
    if (narrow) {
      out16[p.out_offset + i] = uint16_t(bits);
      continue;
    }
#endif
    out32[p.out_offset + i] = bits;
  }
}

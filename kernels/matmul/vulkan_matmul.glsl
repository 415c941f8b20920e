// vulkan_matmul.glsl — bindings, operand loads and the fused epilogue shared by the Vulkan
// matmul shaders (naive, tiled, subgroup). Include after the #version and extensions.
#ifndef PORTA_VULKAN_MATMUL_GLSL
#define PORTA_VULKAN_MATMUL_GLSL
#include "common/gelu.h"
#include "matmul/params.h"

layout(push_constant) uniform Push { MatmulParams p; };

// Bindings: 0 A, 1 B, 2 bias (some readable buffer when there is none: never read), 3 C.
// f32 data is read as floats; 16-bit dtypes through 16-bit views of the same bindings.
layout(std430, binding = 0) readonly buffer A32 { float a32[]; };
layout(std430, binding = 1) readonly buffer B32 { float b32[]; };
layout(std430, binding = 2) readonly buffer Bias32 { uint bias32[]; };
layout(std430, binding = 3) buffer C32 { uint c32[]; };
#if PORTA_STORAGE16
layout(std430, binding = 0) readonly buffer A16 { uint16_t a16[]; };
layout(std430, binding = 1) readonly buffer B16 { uint16_t b16[]; };
layout(std430, binding = 2) readonly buffer Bias16 { uint16_t bias16[]; };
layout(std430, binding = 3) buffer C16 { uint16_t c16[]; };
#endif

bool porta_is_narrow(uint dtype) { return dtype == PORTA_DTYPE_F16 || dtype == PORTA_DTYPE_BF16; }

// An operand element; `dtype` is a specialization constant in the fast shaders, so the
// branch folds away when the pipeline is built.
float load_a(uint index, uint dtype) {
#if PORTA_STORAGE16
  if (porta_is_narrow(dtype)) return porta_bits_to_float(uint(a16[index]), dtype);
#endif
  return a32[index];
}

float load_b(uint index, uint dtype) {
#if PORTA_STORAGE16
  if (porta_is_narrow(dtype)) return porta_bits_to_float(uint(b16[index]), dtype);
#endif
  return b32[index];
}

float load_bias(uint j) {
  const uint index = p.bias_offset + j;
#if PORTA_STORAGE16
  if (porta_is_narrow(p.bias_dtype)) return porta_bits_to_float(uint(bias16[index]), p.bias_dtype);
#endif
  return uintBitsToFloat(bias32[index]);
}

float load_c(uint index) {
#if PORTA_STORAGE16
  if (porta_is_narrow(p.c_dtype)) return porta_bits_to_float(uint(c16[index]), p.c_dtype);
#endif
  return uintBitsToFloat(c32[index]);
}

// C[index] = epilogue(alpha * acc + beta * C + bias[j]); beta == 0 never reads C.
void store_result(uint index, uint j, float acc) {
  float value = p.alpha * acc;
  if (p.beta != 0.0f) value += p.beta * load_c(index);
  if (p.has_bias != 0u) value += load_bias(j);
  if (p.epilogue == PORTA_EPILOGUE_GELU) value = porta_gelu(value);
  const uint bits = porta_float_to_bits(value, p.c_dtype);
#if PORTA_STORAGE16
  if (porta_is_narrow(p.c_dtype)) {
    c16[index] = uint16_t(bits);
    return;
  }
#endif
  c32[index] = bits;
}

#endif

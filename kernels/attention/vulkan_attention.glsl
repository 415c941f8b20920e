// vulkan_attention.glsl — bindings, loads, stores and masking shared by the Vulkan
// attention shaders. Include after #version and the extensions; define
// PORTA_ATTENTION_BACKWARD first in the backward shaders (more bindings).
#ifndef PORTA_VULKAN_ATTENTION_GLSL
#define PORTA_VULKAN_ATTENTION_GLSL
#include "attention/params.h"

layout(push_constant) uniform Push { AttentionParams p; };

// Head dims are specialization constants up to MAX_D: loops over d are written to MAX_D
// and guarded, so glslc unrolls them and the row vectors stay in registers.
#define MAX_D 128
#define LOG2E 1.4426950408889634
#define LN2 0.6931471805599453
#define NEG_INF uintBitsToFloat(0xff800000u)

// Bindings: 0 Q, 1 K, 2 V, 3 O, 4 LSE; backward also 5 dO, 6 dQ, 7 dK, 8 dV, 9 Delta.
// Inputs and outputs in the input dtype (16-bit views where the device has them);
// LSE and Delta are f32.
layout(std430, binding = 0) readonly buffer Q32 { float q32[]; };
layout(std430, binding = 1) readonly buffer K32 { float k32[]; };
layout(std430, binding = 2) readonly buffer V32 { float v32[]; };
layout(std430, binding = 3) buffer O32 { float o32[]; };
layout(std430, binding = 4) buffer Lse32 { float lse32[]; };
#if PORTA_STORAGE16
layout(std430, binding = 0) readonly buffer Q16 { uint16_t q16[]; };
layout(std430, binding = 1) readonly buffer K16 { uint16_t k16[]; };
layout(std430, binding = 2) readonly buffer V16 { uint16_t v16[]; };
layout(std430, binding = 3) buffer O16 { uint16_t o16[]; };
#endif
#ifdef PORTA_ATTENTION_BACKWARD
layout(std430, binding = 5) readonly buffer Dout32 { float dout32[]; };
layout(std430, binding = 6) writeonly buffer Dq32 { float dq32[]; };
layout(std430, binding = 7) writeonly buffer Dk32 { float dk32[]; };
layout(std430, binding = 8) writeonly buffer Dv32 { float dv32[]; };
layout(std430, binding = 9) buffer Delta32 { float delta32[]; };
#if PORTA_STORAGE16
layout(std430, binding = 5) readonly buffer Dout16 { uint16_t dout16[]; };
layout(std430, binding = 6) writeonly buffer Dq16 { uint16_t dq16[]; };
layout(std430, binding = 7) writeonly buffer Dk16 { uint16_t dk16[]; };
layout(std430, binding = 8) writeonly buffer Dv16 { uint16_t dv16[]; };
#endif
#endif

bool attention_narrow(uint dtype) { return dtype == PORTA_DTYPE_F16 || dtype == PORTA_DTYPE_BF16; }

// `dtype` is a specialization constant in every shader: the branches fold away.
#if PORTA_STORAGE16
#define PORTA_ATTENTION_LOAD(name, index, dtype) \
  (attention_narrow(dtype) ? porta_bits_to_float(uint(name##16[index]), dtype) : name##32[index])
#define PORTA_ATTENTION_STORE(name, index, value, dtype)                        \
  if (attention_narrow(dtype)) {                                                \
    name##16[index] = uint16_t(porta_float_to_bits(value, dtype));              \
  } else {                                                                      \
    name##32[index] = value;                                                    \
  }
#else
#define PORTA_ATTENTION_LOAD(name, index, dtype) (name##32[index])
#define PORTA_ATTENTION_STORE(name, index, value, dtype) name##32[index] = value;
#endif

// Four consecutive elements from element `base`. Where `aligned` (a specialization
// constant: base a multiple of 4) one vec4 load (f32) or uvec2 load (f16, bf16), else four
// scalar loads. CPU devices lower every buffer access to a bounds-checked load per lane,
// so a shader with a quarter of the accesses compiles faster there (the subgroup forward
// at d = 128 in 2/3 of the time on lavapipe). Define PORTA_ATTENTION_VEC4 first.
#ifdef PORTA_ATTENTION_VEC4
layout(std430, binding = 0) readonly buffer Q4 { vec4 q4[]; };
layout(std430, binding = 1) readonly buffer K4 { vec4 k4[]; };
layout(std430, binding = 2) readonly buffer V4 { vec4 v4[]; };
layout(std430, binding = 3) writeonly buffer O4 { vec4 o4[]; };
layout(std430, binding = 0) readonly buffer Q4x16 { uvec2 q4x16[]; };
layout(std430, binding = 1) readonly buffer K4x16 { uvec2 k4x16[]; };
layout(std430, binding = 2) readonly buffer V4x16 { uvec2 v4x16[]; };
layout(std430, binding = 3) writeonly buffer O4x16 { uvec2 o4x16[]; };

// Elements 2i (low half) and 2i + 1 of a 16-bit dtype from their 32-bit word, and back.
vec2 attention_unpack2(uint word, uint dtype) {
  return vec2(porta_bits_to_float(word & 0xffffu, dtype), porta_bits_to_float(word >> 16, dtype));
}
uint attention_pack2(vec2 value, uint dtype) {
  return porta_float_to_bits(value.x, dtype) | (porta_float_to_bits(value.y, dtype) << 16);
}

#define PORTA_ATTENTION_LOAD4(result, name, base, dtype, aligned)                              \
  if (aligned) {                                                                               \
    if (attention_narrow(dtype)) {                                                             \
      const uvec2 words_ = name##4x16[(base) / 4u];                                            \
      result = vec4(attention_unpack2(words_.x, dtype), attention_unpack2(words_.y, dtype));   \
    } else {                                                                                   \
      result = name##4[(base) / 4u];                                                           \
    }                                                                                          \
  } else {                                                                                     \
    result = vec4(PORTA_ATTENTION_LOAD(name, base, dtype), PORTA_ATTENTION_LOAD(name, (base) + 1u, dtype), \
                  PORTA_ATTENTION_LOAD(name, (base) + 2u, dtype), PORTA_ATTENTION_LOAD(name, (base) + 3u, dtype)); \
  }

// O is contiguous with d a multiple of 16: its rows are always aligned.
#define PORTA_ATTENTION_STORE4(name, base, value, dtype)                                        \
  if (attention_narrow(dtype)) {                                                               \
    name##4x16[(base) / 4u] = uvec2(attention_pack2((value).xy, dtype), attention_pack2((value).zw, dtype)); \
  } else {                                                                                     \
    name##4[(base) / 4u] = (value);                                                            \
  }
#endif

// Element addresses (unit stride along d).
uint q_row(uint b, uint h, uint i) { return p.q_offset + b * p.q_stride_b + h * p.q_stride_h + i * p.q_stride_n; }
uint k_row(uint b, uint h, uint j) { return p.k_offset + b * p.k_stride_b + h * p.k_stride_h + j * p.k_stride_n; }
uint v_row(uint b, uint h, uint j) { return p.v_offset + b * p.v_stride_b + h * p.v_stride_h + j * p.v_stride_n; }
// O, dO, dQ: contiguous [batch, heads_q, nq, d]; LSE, Delta: [batch, heads_q, nq].
uint out_row(uint b, uint h, uint i) { return ((b * p.heads_q + h) * p.nq + i) * p.d; }
uint lse_index(uint b, uint h, uint i) { return (b * p.heads_q + h) * p.nq + i; }

// The last key query i sees (may be negative: none).
int last_key(uint i) { return p.causal != 0u ? int(i) + int(p.nk) - int(p.nq) : int(p.nk) - 1; }
// Number of keys the queries up to i need: keys [0, keys_needed(i)).
uint keys_needed(uint i) { return uint(clamp(last_key(i) + 1, 0, int(p.nk))); }
// The first query that sees key j.
uint first_query(uint j) {
  return p.causal != 0u ? uint(clamp(int(j) - int(p.nk) + int(p.nq), 0, int(p.nq))) : 0u;
}

#endif

// portable.h — the C subset shared verbatim by the C++, OpenCL C and GLSL kernels:
// fixed-width types, bit casts, dtype codes and exact f16/bf16 conversions.
#ifndef PORTA_KERNELS_PORTABLE_H
#define PORTA_KERNELS_PORTABLE_H

// Exactly one of three targets: GLSL (glslc -DPORTA_TARGET_GLSL), OpenCL C, or C++.
#if defined(PORTA_TARGET_GLSL)
#define PORTA_FN
#define PORTA_PRECISE precise
#define porta_float(x) float(x)
#define porta_uint(x) uint(x)
#define porta_int(x) int(x)
#define porta_as_float(u) uintBitsToFloat(u)
#define porta_as_uint(f) floatBitsToUint(f)
#define PORTA_MUL_HI_LO(a, b, hi, lo) umulExtended((a), (b), hi, lo)
#elif defined(__OPENCL_VERSION__)
// Contraction to fma would change rounding from device to device; the random
// generator relies on every device computing the same bits.
#pragma OPENCL FP_CONTRACT OFF
// Internal linkage lets the compiler inline the helpers into the kernel (PoCL then
// vectorises across work-items); OpenCL C 1.2 allows static functions.
#define PORTA_FN static inline
#define PORTA_PRECISE
#define porta_float(x) ((float)(x))
#define porta_uint(x) ((uint)(x))
#define porta_int(x) ((int)(x))
#define porta_as_float(u) as_float(u)
#define porta_as_uint(f) as_uint(f)
// A widening multiply rather than mul_hi: PoCL's mul_hi is a slow generic routine (3x
// the whole Philox kernel), while GPU compilers turn this into one wide multiply.
#define PORTA_MUL_HI_LO(a, b, hi, lo)                     \
  do {                                                    \
    ulong porta_product_ = (ulong)(a) * (ulong)(b);       \
    hi = (uint)(porta_product_ >> 32);                    \
    lo = (uint)porta_product_;                            \
  } while (0)
#else
#include <bit>
#include <cstdint>
namespace porta::kernels {
using uint = std::uint32_t;
#define PORTA_FN inline
#define PORTA_PRECISE
#define porta_float(x) static_cast<float>(x)
#define porta_uint(x) static_cast<std::uint32_t>(x)
#define porta_int(x) static_cast<int>(x)
#define porta_as_float(u) std::bit_cast<float>(static_cast<std::uint32_t>(u))
#define porta_as_uint(f) std::bit_cast<std::uint32_t>(static_cast<float>(f))
#define PORTA_MUL_HI_LO(a, b, hi, lo)                                   \
  do {                                                                  \
    std::uint64_t porta_product_ = std::uint64_t(a) * std::uint64_t(b); \
    hi = std::uint32_t(porta_product_ >> 32);                                \
    lo = std::uint32_t(porta_product_);                                \
  } while (false)
#endif

// dtype codes as kernels see them; must match porta::DType.
#define PORTA_DTYPE_F32 0u
#define PORTA_DTYPE_F16 1u
#define PORTA_DTYPE_BF16 2u
#define PORTA_DTYPE_I32 3u

// IEEE half -> float, exact (subnormals included), by the magnitude's range: no loop, and
// no branch on the exponent field, a form Oclgrind 21.10 ran wrongly for negative halves.
PORTA_FN uint porta_f16_to_f32_bits(uint h) {
  uint sign = (h & 0x8000u) << 16;
  uint magnitude = h & 0x7fffu;
  if (magnitude >= 0x7c00u) return sign | 0x7f800000u | ((magnitude & 0x3ffu) << 13);  // inf, nan
  if (magnitude >= 0x0400u) return sign | ((magnitude << 13) + (112u << 23));          // normal: rebias
  // Zero or subnormal: magnitude x 2^-24, exact in float (the product is a normal float).
  return sign | porta_as_uint(porta_float(magnitude) * 5.9604644775390625e-8f);
}

// float -> IEEE half, round to nearest even, overflow to inf, NaN kept quiet.
PORTA_FN uint porta_f32_bits_to_f16(uint f) {
  uint sign = (f >> 16) & 0x8000u;
  uint exponent = (f >> 23) & 0xffu;
  uint mantissa = f & 0x7fffffu;
  if (exponent == 0xffu) return sign | 0x7c00u | (mantissa != 0u ? (0x200u | (mantissa >> 13)) : 0u);
  if (exponent > 142u) return sign | 0x7c00u;  // |x| >= 65536: beyond the largest half
  uint result;
  uint shift;
  if (exponent >= 113u) {  // normal half
    result = ((exponent - 112u) << 10) | (mantissa >> 13);
    shift = 13u;
  } else {  // subnormal half or zero
    if (exponent < 102u) return sign;  // below half the smallest subnormal
    mantissa |= 0x800000u;
    shift = 126u - exponent;
    result = mantissa >> shift;
  }
  uint rest = mantissa & ((1u << shift) - 1u);
  uint halfway = 1u << (shift - 1u);
  if (rest > halfway || (rest == halfway && (result & 1u) != 0u)) result += 1u;  // may carry into inf: correct
  return sign | result;
}

PORTA_FN uint porta_bf16_to_f32_bits(uint b) { return b << 16; }

// float -> bfloat16, round to nearest even, NaN kept quiet.
PORTA_FN uint porta_f32_bits_to_bf16(uint f) {
  if ((f & 0x7fffffffu) > 0x7f800000u) return (f >> 16) | 0x40u;
  return (f + 0x7fffu + ((f >> 16) & 1u)) >> 16;
}

// A stored element (its raw bits widened to 32) as float.
PORTA_FN float porta_bits_to_float(uint bits, uint dtype) {
  if (dtype == PORTA_DTYPE_F16) return porta_as_float(porta_f16_to_f32_bits(bits));
  if (dtype == PORTA_DTYPE_BF16) return porta_as_float(porta_bf16_to_f32_bits(bits));
  return porta_as_float(bits);
}

// A float as the raw bits of a stored element of dtype (low 16 bits for 16-bit types).
PORTA_FN uint porta_float_to_bits(float value, uint dtype) {
  uint bits = porta_as_uint(value);
  if (dtype == PORTA_DTYPE_F16) return porta_f32_bits_to_f16(bits);
  if (dtype == PORTA_DTYPE_BF16) return porta_f32_bits_to_bf16(bits);
  return bits;
}

#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
}  // namespace porta::kernels
#endif
#endif

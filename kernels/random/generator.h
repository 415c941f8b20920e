// generator.h — the counter-based random generator (Philox4x32-10 and exact-arithmetic
// transforms) shared verbatim by the C++, OpenCL C and GLSL kernels, so that one seed
// gives bit-identical tensors on every device.
#ifndef PORTA_KERNELS_RANDOM_GENERATOR_H
#define PORTA_KERNELS_RANDOM_GENERATOR_H
#include "common/portable.h"
#include "random/params.h"
#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
namespace porta::kernels {
#endif

// Constants are written as bit patterns: a decimal literal may round differently in
// another compiler. Why no log/sqrt/cos from the platform: their precision differs from device to device.
// Everything below uses integer operations, float add/sub/mul (correctly rounded on
// every OpenCL and Vulkan device) and int<->float conversions of exact values, with
// contraction into fma switched off, so every device computes the same bits.

struct PhiloxWords {
  uint w0;
  uint w1;
  uint w2;
  uint w3;
};
#if defined(__OPENCL_VERSION__)
typedef struct PhiloxWords PhiloxWords;
#endif

// Philox4x32 with 10 rounds (Salmon et al., SC'11): counter (c0..c3), key (k0, k1).
PORTA_FN PhiloxWords porta_philox4x32_10(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1) {
  for (int pass = 0; pass < 10; ++pass) {
    uint hi0;
    uint lo0;
    uint hi1;
    uint lo1;
    PORTA_MUL_HI_LO(0xD2511F53u, c0, hi0, lo0);
    PORTA_MUL_HI_LO(0xCD9E8D57u, c2, hi1, lo1);
    uint n0 = hi1 ^ c1 ^ k0;
    uint n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  PhiloxWords words;
  words.w0 = c0;
  words.w1 = c1;
  words.w2 = c2;
  words.w3 = c3;
  return words;
}

// U[0, 1) with 24 random bits: exact.
PORTA_FN float porta_unit_uniform(uint word) { return porta_float(word >> 8) * porta_as_float(0x33800000u); }

// ln(u) for u in (0, 1): u = m * 2^e with m in [sqrt(1/2), sqrt(2)), ln(1 + f) = f * q(f);
// q is a degree-10 Chebyshev fit of ln(1+f)/f (max error 7.5e-10).
PORTA_FN float porta_log_unit(float u) {
  uint bits = porta_as_uint(u);
  int e = porta_int(bits >> 23) - 127;
  PORTA_PRECISE float m = porta_as_float((bits & 0x7fffffu) | 0x3f800000u);
  if (m > porta_as_float(0x3fb504f3u)) {
    m = m * 0.5f;
    e = e + 1;
  }
  PORTA_PRECISE float f = m - 1.0f;
  PORTA_PRECISE float q = porta_as_float(0x3d8a0a3bu);
  q = q * f + porta_as_float(0xbdf02c74u);
  q = q * f + porta_as_float(0x3df433b7u);
  q = q * f + porta_as_float(0xbdfdefa1u);
  q = q * f + porta_as_float(0x3e11897fu);
  q = q * f + porta_as_float(0xbe2aae46u);
  q = q * f + porta_as_float(0x3e4cd38eu);
  q = q * f + porta_as_float(0xbe800008u);
  q = q * f + porta_as_float(0x3eaaaaa0u);
  q = q * f + -0.5f;
  q = q * f + 1.0f;
  PORTA_PRECISE float result = porta_float(e) * porta_as_float(0x3f317218u) + f * q;
  return result;
}

// sqrt(x) for x > 0 through three Newton steps on 1/sqrt(x).
PORTA_FN float porta_sqrt_positive(float x) {
  PORTA_PRECISE float y = porta_as_float(0x5f3759dfu - (porta_as_uint(x) >> 1));
  PORTA_PRECISE float half_x = 0.5f * x;
  y = y * (1.5f - half_x * y * y);
  y = y * (1.5f - half_x * y * y);
  y = y * (1.5f - half_x * y * y);
  PORTA_PRECISE float result = x * y;
  return result;
}

// cos(2 pi t) for t in [0, 1): quarter-wave reduction (exact), then Chebyshev fits of
// cos(pi r / 2) and sin(pi r / 2) / r in r^2 on [0, 1] (max error 2.2e-10).
PORTA_FN float porta_cos_two_pi(float t) {
  PORTA_PRECISE float x = t * 4.0f;
  uint quadrant = porta_uint(x);
  PORTA_PRECISE float r = x - porta_float(quadrant);
  PORTA_PRECISE float s = r * r;
  PORTA_PRECISE float c = porta_as_float(0xb7c7dacdu);
  c = c * s + porta_as_float(0x3a709368u);
  c = c * s + porta_as_float(0xbcaae83au);
  c = c * s + porta_as_float(0x3e81e0f2u);
  c = c * s + porta_as_float(0xbf9de9e6u);
  c = c * s + 1.0f;
  PORTA_PRECISE float n = porta_as_float(0xb6664e61u);
  n = n * s + porta_as_float(0x39280a0bu);
  n = n * s + porta_as_float(0xbb996898u);
  n = n * s + porta_as_float(0x3da335e0u);
  n = n * s + porta_as_float(0xbf255de7u);
  n = n * s + porta_as_float(0x3fc90fdbu);
  PORTA_PRECISE float sine = n * r;
  if (quadrant == 0u) return c;
  if (quadrant == 1u) return -sine;
  if (quadrant == 2u) return -c;
  return sine;
}

// Element `index` of a tensor drawn with (seed, counter): Philox of counter + index.
PORTA_FN float porta_random_value(uint seed_lo, uint seed_hi, uint counter_lo, uint counter_hi, uint index,
                                  uint distribution, float a, float b) {
  uint c0 = counter_lo + index;
  uint c1 = counter_hi + (c0 < index ? 1u : 0u);  // carry of the 64-bit counter
  PhiloxWords words = porta_philox4x32_10(c0, c1, 0u, 0u, seed_lo, seed_hi);
  if (distribution == PORTA_RANDOM_UNIFORM) {
    PORTA_PRECISE float value = a + (b - a) * porta_unit_uniform(words.w0);
    return value;
  }
  // Box-Muller; u1 = odd multiples of 2^-24, exact and never 0, so the logarithm is finite.
  PORTA_PRECISE float u1 = porta_float(((words.w0 >> 9) << 1) | 1u) * porta_as_float(0x33800000u);
  PORTA_PRECISE float radius = porta_sqrt_positive(-2.0f * porta_log_unit(u1));
  PORTA_PRECISE float normal = a + b * (radius * porta_cos_two_pi(porta_unit_uniform(words.w1)));
  return normal;
}

#if !defined(PORTA_TARGET_GLSL) && !defined(__OPENCL_VERSION__)
}  // namespace porta::kernels
#endif
#endif

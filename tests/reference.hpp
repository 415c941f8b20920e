// reference.hpp — the independent float64 references and helpers of the test suites:
// dtype rounding written apart from the kernels' bit tricks, a separate Philox, the
// named tolerance rule, and host-side random inputs with printed seeds.
#pragma once

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "porta/porta.hpp"

namespace porta::test {

// ---- dtype rounding, independent of kernels/common/portable.h -----------------------

// Nearest f16 by the compiler's own _Float16 conversion (round to nearest even).
inline std::uint16_t reference_to_f16(double value) {
  _Float16 half = static_cast<_Float16>(static_cast<float>(value));
  std::uint16_t bits;
  std::memcpy(&bits, &half, 2);
  return bits;
}
inline double reference_from_f16(std::uint16_t bits) {
  _Float16 half;
  std::memcpy(&half, &bits, 2);
  return static_cast<double>(half);
}

inline double reference_from_bf16(std::uint16_t bits) {
  return static_cast<double>(std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16));
}
// Nearest bf16 by comparing the two neighbours in double; ties to the even one.
inline std::uint16_t reference_to_bf16(double value) {
  float f = static_cast<float>(value);
  if (std::isnan(f)) return 0x7fc0;
  std::uint32_t bits = std::bit_cast<std::uint32_t>(f);
  auto down = static_cast<std::uint16_t>(bits >> 16);
  if ((bits & 0xffffu) == 0) return down;
  auto up = static_cast<std::uint16_t>(down + 1);  // next magnitude away from zero
  double distance_down = std::fabs(static_cast<double>(f) - reference_from_bf16(down));
  double distance_up = std::fabs(static_cast<double>(f) - reference_from_bf16(up));
  if (distance_down < distance_up) return down;
  if (distance_up < distance_down) return up;
  return (down & 1u) == 0 ? down : up;
}

// Element `index` of a host buffer holding `dtype`, as double.
inline double element(const std::vector<unsigned char>& bytes, DType dtype, std::size_t index) {
  switch (dtype) {
    case DType::f32: { float v; std::memcpy(&v, &bytes[index * 4], 4); return v; }
    case DType::i32: { std::int32_t v; std::memcpy(&v, &bytes[index * 4], 4); return v; }
    case DType::f16: { std::uint16_t v; std::memcpy(&v, &bytes[index * 2], 2); return reference_from_f16(v); }
    case DType::bf16: { std::uint16_t v; std::memcpy(&v, &bytes[index * 2], 2); return reference_from_bf16(v); }
  }
  return 0;
}

// `value` rounded to dtype, stored at `index`.
inline void set_element(std::vector<unsigned char>& bytes, DType dtype, std::size_t index, double value) {
  switch (dtype) {
    case DType::f32: { float v = static_cast<float>(value); std::memcpy(&bytes[index * 4], &v, 4); break; }
    case DType::i32: { auto v = static_cast<std::int32_t>(value); std::memcpy(&bytes[index * 4], &v, 4); break; }
    case DType::f16: { std::uint16_t v = reference_to_f16(value); std::memcpy(&bytes[index * 2], &v, 2); break; }
    case DType::bf16: { std::uint16_t v = reference_to_bf16(value); std::memcpy(&bytes[index * 2], &v, 2); break; }
  }
}

// ---- tolerance ------------------------------------------------------------------------

// The one rule for how far a result may be from the float64 reference:
// |out - ref| <= (rounding_steps * eps(out dtype) + reduction_length * eps(f32)) * scale
//                + rounding_steps * underflow(out dtype),
// where scale is |ref| for elementwise results and sum|terms| for reductions, and the
// underflow term is the spacing of the dtype's subnormals (rounding there is absolute).
struct Tolerance {
  static double underflow(DType dtype) {
    switch (dtype) {
      case DType::f32: return 0x1p-149;
      case DType::f16: return 0x1p-24;
      case DType::bf16: return 0x1p-133;
      case DType::i32: return 0;
    }
    return 0;
  }
  static double absolute(DType out, int rounding_steps = 1) { return rounding_steps * underflow(out); }
  static double epsilon(DType dtype) {
    switch (dtype) {
      case DType::f32: return 0x1p-23;
      case DType::f16: return 0x1p-10;
      case DType::bf16: return 0x1p-7;
      case DType::i32: return 0;
    }
    return 0;
  }
  static double bound(DType out, std::int64_t reduction_length, int rounding_steps = 1) {
    return rounding_steps * epsilon(out) + static_cast<double>(reduction_length) * epsilon(DType::f32);
  }
};

// ---- inputs ---------------------------------------------------------------------------

// A fresh seed per call (printed by the tests on failure).
inline std::uint64_t fresh_seed() {
  static std::random_device device;
  return (std::uint64_t(device()) << 32) | device();
}

// numel values drawn from N(0, 1), rounded to dtype, as raw bytes.
inline std::vector<unsigned char> random_bytes(DType dtype, std::int64_t numel, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal;
  std::vector<unsigned char> bytes(static_cast<std::size_t>(numel) * size_of(dtype));
  for (std::int64_t i = 0; i < numel; ++i) {
    double value = dtype == DType::i32 ? std::round(normal(engine) * 1000) : normal(engine);
    set_element(bytes, dtype, static_cast<std::size_t>(i), value);
  }
  return bytes;
}

inline std::vector<unsigned char> read_bytes(const Tensor& tensor) {
  std::vector<unsigned char> bytes(tensor.nbytes());
  tensor.copy_to_host(bytes.data(), bytes.size());
  return bytes;
}

// ---- errors --------------------------------------------------------------------------

// The message of the porta::Error `call` throws, checking its kind; a test failure if
// nothing is thrown.
template <class F>
std::string error_text(F&& call, ErrorKind expected_kind = ErrorKind::invalid_argument) {
  try {
    call();
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), expected_kind) << error.what();
    return error.what();
  }
  ADD_FAILURE() << "expected porta::Error";
  return "";
}

// ---- Philox4x32-10, written apart from kernels/random/generator.h -------------------

inline std::array<std::uint32_t, 4> reference_philox(std::uint64_t counter, std::uint64_t key) {
  std::uint32_t x[4] = {static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32), 0, 0};
  std::uint32_t k[2] = {static_cast<std::uint32_t>(key), static_cast<std::uint32_t>(key >> 32)};
  for (int round = 0; round < 10; ++round) {
    std::uint64_t p0 = std::uint64_t(0xD2511F53u) * x[0];
    std::uint64_t p1 = std::uint64_t(0xCD9E8D57u) * x[2];
    std::uint32_t y0 = static_cast<std::uint32_t>(p1 >> 32) ^ x[1] ^ k[0];
    std::uint32_t y1 = static_cast<std::uint32_t>(p1);
    std::uint32_t y2 = static_cast<std::uint32_t>(p0 >> 32) ^ x[3] ^ k[1];
    std::uint32_t y3 = static_cast<std::uint32_t>(p0);
    x[0] = y0; x[1] = y1; x[2] = y2; x[3] = y3;
    k[0] += 0x9E3779B9u;
    k[1] += 0xBB67AE85u;
  }
  return {x[0], x[1], x[2], x[3]};
}

// Element `index` of uniform(low, high) / randn(mean, stddev) with (seed, offset), in float64.
inline double reference_random(bool normal, std::uint64_t seed, std::uint64_t offset, std::uint64_t index, double a,
                               double b) {
  auto words = reference_philox(offset + index, seed);
  if (!normal) return a + (b - a) * std::ldexp(static_cast<double>(words[0] >> 8), -24);
  double u1 = std::ldexp(static_cast<double>((words[0] >> 9) * 2 + 1), -24);
  double u2 = std::ldexp(static_cast<double>(words[1] >> 8), -24);
  return a + b * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

}  // namespace porta::test

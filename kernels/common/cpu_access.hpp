// cpu_access.hpp — typed element access for the cpu kernels: raw bits in, raw bits out.
#pragma once

#include <cstdint>
#include <cstring>

#include "common/portable.h"

namespace porta::kernels::cpu {

// The element's raw bits, widened to 32 (16-bit dtypes in the low half).
inline uint load_bits(const void* base, uint dtype, std::size_t index) {
  if (dtype == PORTA_DTYPE_F16 || dtype == PORTA_DTYPE_BF16) return static_cast<const std::uint16_t*>(base)[index];
  return static_cast<const uint*>(base)[index];
}

inline void store_bits(void* base, uint dtype, std::size_t index, uint bits) {
  if (dtype == PORTA_DTYPE_F16 || dtype == PORTA_DTYPE_BF16) {
    static_cast<std::uint16_t*>(base)[index] = static_cast<std::uint16_t>(bits);
  } else {
    static_cast<uint*>(base)[index] = bits;
  }
}

inline float load_float(const void* base, uint dtype, std::size_t index) {
  return porta_bits_to_float(load_bits(base, dtype, index), dtype);
}

inline void store_float(void* base, uint dtype, std::size_t index, float value) {
  store_bits(base, dtype, index, porta_float_to_bits(value, dtype));
}

}  // namespace porta::kernels::cpu

// dtype.hpp — element types of tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "porta/export.h"

namespace porta {

// Values are the codes kernels see (kernels/common/portable.h).
enum class DType : std::uint32_t { f32 = 0, f16 = 1, bf16 = 2, i32 = 3 };

inline constexpr DType f32 = DType::f32;
inline constexpr DType f16 = DType::f16;
inline constexpr DType bf16 = DType::bf16;
inline constexpr DType i32 = DType::i32;

constexpr std::size_t size_of(DType dtype) { return dtype == DType::f16 || dtype == DType::bf16 ? 2 : 4; }
constexpr bool is_floating(DType dtype) { return dtype != DType::i32; }
PORTA_API std::string_view to_string(DType dtype);

// Exact conversions, the same the kernels use (round to nearest even).
PORTA_API std::uint16_t float_to_half_bits(float value);
PORTA_API float half_bits_to_float(std::uint16_t bits);
PORTA_API std::uint16_t float_to_bfloat16_bits(float value);
PORTA_API float bfloat16_bits_to_float(std::uint16_t bits);

}  // namespace porta

// dtype.cpp — dtype names and the host-side conversions (the kernels' own, shared).
#include "porta/dtype.hpp"

#include "common/portable.h"

namespace porta {

std::string_view to_string(DType dtype) {
  switch (dtype) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
    case DType::i32: return "i32";
  }
  return "unknown dtype";
}

std::uint16_t float_to_half_bits(float value) {
  return static_cast<std::uint16_t>(kernels::porta_f32_bits_to_f16(porta_as_uint(value)));
}
float half_bits_to_float(std::uint16_t bits) { return porta_as_float(kernels::porta_f16_to_f32_bits(bits)); }
std::uint16_t float_to_bfloat16_bits(float value) {
  return static_cast<std::uint16_t>(kernels::porta_f32_bits_to_bf16(porta_as_uint(value)));
}
float bfloat16_bits_to_float(std::uint16_t bits) { return porta_as_float(kernels::porta_bf16_to_f32_bits(bits)); }

}  // namespace porta

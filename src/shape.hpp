// shape.hpp — shape and stride rules used by the front end.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "porta/error.hpp"
#include "porta/tensor.hpp"

namespace porta::detail {

// Kernels index with 32-bit integers; larger tensors are refused up front.
inline constexpr std::int64_t max_elements = (std::int64_t(1) << 31) - 1;

Shape contiguous_strides(const Shape& shape);
// Checks rank and dimensions and returns the element count; `op` names the caller.
std::int64_t checked_numel(std::string_view op, const Shape& shape);
// Wraps a possibly negative dimension index into [0, rank).
int wrap_dim(std::string_view op, int dim, int rank);

[[noreturn]] inline void fail(ErrorKind kind, std::string_view op, std::string_view argument, const std::string& what) {
  throw Error(kind, std::string(op) + ": argument " + std::string(argument) + ": " + what);
}

}  // namespace porta::detail

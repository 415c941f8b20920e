// collectives_cases.hpp — inputs and expected results shared by the local and the MPI
// collectives tests: integer-valued data whose f32 (and bf16/f16) sums are exact, so
// every result is checked bit for bit, and random data checked against float64.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "reference.hpp"

namespace porta::test {

// Small integers in [-8, 8]: sums over up to 16 ranks stay exact in bf16's 8 bits.
inline double integer_value(int rank, std::size_t index, int salt) {
  return static_cast<double>(static_cast<int>((index * 7 + static_cast<std::size_t>(rank) * 13 + static_cast<std::size_t>(salt)) % 17) - 8);
}

inline std::vector<unsigned char> integer_input(DType dtype, std::int64_t numel, int rank, int salt) {
  std::vector<unsigned char> bytes(static_cast<std::size_t>(numel) * size_of(dtype));
  for (std::size_t i = 0; i < static_cast<std::size_t>(numel); ++i) set_element(bytes, dtype, i, integer_value(rank, i, salt));
  return bytes;
}

// The exact all-reduce of integer_input over `ranks` ranks at `index`; avg is the f32
// quotient rounded once to dtype, as the library computes it.
inline double integer_expected(Reduce op, int ranks, std::size_t index, int salt) {
  double result = integer_value(0, index, salt);
  double sum = result;
  for (int q = 1; q < ranks; ++q) {
    double value = integer_value(q, index, salt);
    sum += value;
    if (op == Reduce::max) result = std::max(result, value);
    if (op == Reduce::min) result = std::min(result, value);
  }
  if (op == Reduce::sum) return sum;
  if (op == Reduce::avg) return static_cast<double>(static_cast<float>(sum) / static_cast<float>(ranks));
  return result;
}

// The expected bytes: `count` elements starting at element `first` of the full result.
inline std::vector<unsigned char> integer_expected_bytes(DType dtype, Reduce op, int ranks, std::size_t first,
                                                         std::size_t count, int salt) {
  std::vector<unsigned char> bytes(count * size_of(dtype));
  for (std::size_t i = 0; i < count; ++i) set_element(bytes, dtype, i, integer_expected(op, ranks, first + i, salt));
  return bytes;
}

// Index of the first element that differs, or -1.
inline std::int64_t first_difference(const std::vector<unsigned char>& got, const std::vector<unsigned char>& want,
                                     DType dtype) {
  if (got.size() != want.size()) return 0;
  const std::size_t element_size = size_of(dtype);
  for (std::size_t i = 0; i < got.size(); i += element_size) {
    if (std::memcmp(got.data() + i, want.data() + i, element_size) != 0) return static_cast<std::int64_t>(i / element_size);
  }
  return -1;
}

inline std::string difference_text(const std::vector<unsigned char>& got, const std::vector<unsigned char>& want,
                                   DType dtype) {
  std::int64_t at = first_difference(got, want, dtype);
  if (at < 0) return "";
  if (got.size() != want.size()) return "sizes differ";
  return "element " + std::to_string(at) + ": got " + std::to_string(element(got, dtype, static_cast<std::size_t>(at))) +
         ", expected " + std::to_string(element(want, dtype, static_cast<std::size_t>(at)));
}

// Random inputs: rank q's values from seed + q. The result must lie within the tolerance
// rule's bound of the float64 reduction of the (dtype-rounded) inputs.
inline std::string check_random_sum(const std::vector<std::vector<unsigned char>>& inputs,
                                    const std::vector<unsigned char>& got, DType dtype, bool average) {
  const int ranks = static_cast<int>(inputs.size());
  const std::size_t count = got.size() / size_of(dtype);
  for (std::size_t i = 0; i < count; ++i) {
    double sum = 0;
    double magnitude = 0;
    for (const auto& input : inputs) {
      double value = element(input, dtype, i);
      sum += value;
      magnitude += std::abs(value);
    }
    double reference = average ? sum / ranks : sum;
    double scale = average ? magnitude / ranks : magnitude;
    double value = element(got, dtype, i);
    double allowed = Tolerance::bound(dtype, ranks, average ? 2 : 1) * scale + Tolerance::absolute(dtype, 2);
    if (!(std::abs(value - reference) <= allowed)) {  // NaN fails
      return "element " + std::to_string(i) + ": got " + std::to_string(value) + ", float64 reference " +
             std::to_string(reference) + ", allowed error " + std::to_string(allowed);
    }
  }
  return "";
}

}  // namespace porta::test

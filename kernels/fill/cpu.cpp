// cpu.cpp — fill on the cpu: every element of a contiguous range set to one bit pattern.
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstdint>

#include "common/cpu_kernels.hpp"

namespace porta::kernels::cpu {

void fill(void* out, const FillParams& params) {
  auto fill_as = [&](auto* first) {
    using Element = std::remove_pointer_t<decltype(first)>;
    auto value = static_cast<Element>(params.value_bits);
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, params.count, 1 << 16), [&](const auto& range) {
      std::fill(first + range.begin(), first + range.end(), value);
    });
  };
  if (params.dtype == PORTA_DTYPE_F16 || params.dtype == PORTA_DTYPE_BF16) {
    fill_as(static_cast<std::uint16_t*>(out) + params.out_offset);
  } else {
    fill_as(static_cast<std::uint32_t*>(out) + params.out_offset);
  }
}

}  // namespace porta::kernels::cpu

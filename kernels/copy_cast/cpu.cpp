// cpu.cpp — strided copy-and-cast on the cpu: any strided view in, contiguous out.
#include <tbb/parallel_for.h>

#include <cstdint>
#include <cstring>

#include "common/cpu_access.hpp"
#include "common/cpu_kernels.hpp"

namespace porta::kernels::cpu {

void copy_cast(const void* in, void* out, const CopyCastParams& params) {
  const uint rank = params.rank;
  const uint inner = rank == 0 ? 1u : params.shape[rank - 1];
  const std::int64_t inner_stride = rank == 0 ? 1 : params.in_strides[rank - 1];
  const std::size_t rows = inner == 0 ? 0 : params.count / inner;
  // One task per run of innermost elements; the outer index is decoded once per run.
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, rows, std::max<std::size_t>(1, 16384 / std::max(inner, 1u))),
                    [&](const auto& range) {
    for (std::size_t row = range.begin(); row != range.end(); ++row) {
      std::int64_t source = params.in_offset;
      std::size_t rest = row;
      for (int dim = static_cast<int>(rank) - 2; dim >= 0; --dim) {
        source += static_cast<std::int64_t>(rest % params.shape[dim]) * params.in_strides[dim];
        rest /= params.shape[dim];
      }
      const std::size_t target = params.out_offset + row * inner;
      if (params.in_dtype == params.out_dtype) {
        if (inner_stride == 1) {
          const std::size_t bytes = params.in_dtype == PORTA_DTYPE_F16 || params.in_dtype == PORTA_DTYPE_BF16 ? 2 : 4;
          std::memcpy(static_cast<char*>(out) + target * bytes, static_cast<const char*>(in) + source * bytes,
                      inner * bytes);
        } else {
          for (uint i = 0; i < inner; ++i) {
            store_bits(out, params.out_dtype, target + i, load_bits(in, params.in_dtype, source + i * inner_stride));
          }
        }
      } else {
        for (uint i = 0; i < inner; ++i) {
          store_float(out, params.out_dtype, target + i, load_float(in, params.in_dtype, source + i * inner_stride));
        }
      }
    }
  });
}

}  // namespace porta::kernels::cpu

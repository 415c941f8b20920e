// cpu.cpp — row sums on the cpu: eight f32 lanes per piece, combined in a fixed order.
#include <tbb/parallel_for.h>

#include <algorithm>

#include "common/cpu_access.hpp"
#include "common/cpu_kernels.hpp"

namespace porta::kernels::cpu {

void reduce_sum(const void* in, void* out, const ReduceParams& p) {
  const std::size_t pieces = std::size_t(p.rows) * p.chunks;
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, pieces), [&](const auto& range) {
    for (std::size_t piece = range.begin(); piece != range.end(); ++piece) {
      const std::size_t row = piece / p.chunks;
      const std::size_t first = std::size_t(piece % p.chunks) * p.chunk;
      const std::size_t last = std::min<std::size_t>(first + p.chunk, p.n);
      const std::size_t base = p.in_offset + row * p.n;
      float lanes[8] = {};
      std::size_t i = first;
      if (p.in_dtype == PORTA_DTYPE_F32) {
        const float* x = static_cast<const float*>(in) + base;
        for (; i + 8 <= last; i += 8) {
          for (int lane = 0; lane < 8; ++lane) lanes[lane] += x[i + lane];
        }
      } else {
        for (; i + 8 <= last; i += 8) {
          for (int lane = 0; lane < 8; ++lane) lanes[lane] += load_float(in, p.in_dtype, base + i + lane);
        }
      }
      for (int lane = 0; i < last; ++i, ++lane) lanes[lane] += load_float(in, p.in_dtype, base + i);
      float total = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
      store_float(out, p.out_dtype, p.out_offset + piece, total);
    }
  });
}

}  // namespace porta::kernels::cpu

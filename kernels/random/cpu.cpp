// cpu.cpp — the counter-based random generator on the cpu (compiled without fma
// contraction, so its bits match the OpenCL and Vulkan kernels).
#include <tbb/parallel_for.h>

#include "common/cpu_access.hpp"
#include "common/cpu_kernels.hpp"
#include "random/generator.h"

namespace porta::kernels::cpu {

void random(void* out, const RandomParams& p) {
  tbb::parallel_for(tbb::blocked_range<uint>(0, p.count, 4096), [&](const auto& range) {
    for (uint i = range.begin(); i != range.end(); ++i) {
      float value = porta_random_value(p.seed_lo, p.seed_hi, p.counter_lo, p.counter_hi, i, p.distribution, p.a, p.b);
      store_float(out, p.dtype, p.out_offset + i, value);
    }
  });
}

}  // namespace porta::kernels::cpu

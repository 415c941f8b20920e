// cpu.cpp — the masked, scaled row softmax with log-sum-exp on the cpu.
#include <tbb/parallel_for.h>

#include <cmath>
#include <limits>

#include "common/cpu_kernels.hpp"

namespace porta::kernels::cpu {

void softmax_rows(const void* in, void* out, void* lse, const SoftmaxParams& p) {
  tbb::parallel_for(std::size_t(0), std::size_t(p.rows), [&](std::size_t r) {
    const float* x = static_cast<const float*>(in) + p.in_offset + r * p.n;
    float* y = static_cast<float*>(out) + p.out_offset + r * p.n;
    const std::int64_t query = static_cast<std::int64_t>(r % p.nq);
    const std::int64_t last = p.causal ? query + std::int64_t(p.n) - std::int64_t(p.nq) : std::int64_t(p.n) - 1;
    const std::size_t visible = static_cast<std::size_t>(std::clamp<std::int64_t>(last + 1, 0, p.n));
    float max = -std::numeric_limits<float>::infinity();
    for (std::size_t j = 0; j < visible; ++j) max = std::max(max, p.scale * x[j]);
    float total = 0.0f;
    for (std::size_t j = 0; j < visible; ++j) total += std::exp(p.scale * x[j] - max);
    const float log_total = visible ? max + std::log(total) : -std::numeric_limits<float>::infinity();
    for (std::size_t j = 0; j < p.n; ++j) y[j] = j < visible ? std::exp(p.scale * x[j] - log_total) : 0.0f;
    static_cast<float*>(lse)[p.lse_offset + r] = log_total;
  });
}

}  // namespace porta::kernels::cpu

// roofline.cpp — see roofline.hpp. Compiled with -ffp-contract=fast so that `a * x + y`
// on vectors becomes one FMA, the instruction the peak is defined by.
#include "roofline.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

namespace {

// Independent accumulators enough to cover the FMA latency on both FMA ports. Inlined
// into each caller, so that it is compiled for the caller's instruction set.
template <class Vector, int kChains>
[[gnu::always_inline]] inline float fma_chains(std::int64_t iterations) {
  Vector acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = Vector{} + float(c) * 1e-3f;
  const Vector x = Vector{} + 0.999999f, y = Vector{} + 1e-7f;
  for (std::int64_t i = 0; i < iterations; ++i) {
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * x + y;
  }
  Vector sum{};
  for (int c = 0; c < kChains; ++c) sum += acc[c];
  return sum[0];
}

using f32x16 = float __attribute__((vector_size(64)));
using f32x8 = float __attribute__((vector_size(32)));
using f32x4 = float __attribute__((vector_size(16)));

__attribute__((target("avx512f"))) float fma_avx512(std::int64_t n) { return fma_chains<f32x16, 12>(n); }
__attribute__((target("avx2,fma"))) float fma_avx2(std::int64_t n) { return fma_chains<f32x8, 10>(n); }
float fma_sse(std::int64_t n) { return fma_chains<f32x4, 8>(n); }

template <class F>
double seconds(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

template <class F>
void on_threads(int threads, F&& f) {  // f(thread index), on every thread at once
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(f, t);
  for (auto& thread : pool) thread.join();
}

}  // namespace

Roofline measure_roofline(int threads) {
  Roofline roofline;
  __builtin_cpu_init();
  float (*kernel)(std::int64_t) = fma_sse;
  int lanes = 4, chains = 8;
  roofline.isa = "sse";
  if (__builtin_cpu_supports("avx512f")) {
    kernel = fma_avx512, lanes = 16, chains = 12, roofline.isa = "avx512f";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    kernel = fma_avx2, lanes = 8, chains = 10, roofline.isa = "avx2+fma";
  }
  const std::int64_t iterations = 20'000'000;
  std::vector<float> sink(std::size_t(threads) * 16);
  double best = 1e30;
  for (int repeat = 0; repeat < 3; ++repeat) {
    best = std::min(best, seconds([&] { on_threads(threads, [&](int t) { sink[std::size_t(t) * 16] = kernel(iterations); }); }));
  }
  roofline.peak_gflops = 2.0 * lanes * chains * double(iterations) * threads / best / 1e9;

  // 3 arrays of 128 MiB, each thread touching (first) and streaming its own slice.
  const std::size_t n = std::size_t(32) << 20, slice = n / std::size_t(threads);
  std::unique_ptr<float[]> a(new float[n]), b(new float[n]), c(new float[n]);
  on_threads(threads, [&](int t) {
    for (std::size_t i = std::size_t(t) * slice; i < std::size_t(t + 1) * slice; ++i) a[i] = 0, b[i] = 1, c[i] = 2;
  });
  best = 1e30;
  for (int repeat = 0; repeat < 5; ++repeat) {
    best = std::min(best, seconds([&] {
      on_threads(threads, [&](int t) {
        float *x = a.get(), *y = b.get(), *z = c.get();
        for (std::size_t i = std::size_t(t) * slice; i < std::size_t(t + 1) * slice; ++i) x[i] = y[i] + 3.0f * z[i];
      });
    }));
  }
  roofline.bandwidth_gbps = 3.0 * double(slice * std::size_t(threads)) * sizeof(float) / best / 1e9;
  return roofline;
}

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

// c[r] += a[p][r] * b[p] over `steps` steps of A (6 floats each), B's steps cycling
// through b_steps (2 vectors each): the microkernel's loads and FMAs, no packing, no C.
template <class Vector>
[[gnu::always_inline]] inline float cache_fed(const float* a, const float* b, std::size_t steps,
                                              std::size_t b_steps, int passes) {
  constexpr int rows = 6;
  constexpr std::size_t lanes = sizeof(Vector) / sizeof(float);
  Vector acc[rows][2] = {};
  for (int pass = 0; pass < passes; ++pass) {
    for (std::size_t p0 = 0; p0 < steps; p0 += b_steps) {
      const float* ap = a + p0 * rows;
      const float* bp = b;
      for (std::size_t q = 0; q < b_steps; ++q, ap += rows, bp += 2 * lanes) {
        const Vector b0 = *reinterpret_cast<const Vector*>(bp), b1 = *reinterpret_cast<const Vector*>(bp + lanes);
        for (int r = 0; r < rows; ++r) {  // a scalar times a vector: one broadcast, two FMAs
          acc[r][0] = ap[r] * b0 + acc[r][0];
          acc[r][1] = ap[r] * b1 + acc[r][1];
        }
      }
    }
  }
  Vector sum{};
  for (int r = 0; r < rows; ++r) sum += acc[r][0] + acc[r][1];
  return sum[0];
}

using f32x16 = float __attribute__((vector_size(64)));
using f32x8 = float __attribute__((vector_size(32)));
using f32x4 = float __attribute__((vector_size(16)));

__attribute__((target("avx512f"))) float fma_avx512(std::int64_t n) { return fma_chains<f32x16, 12>(n); }
__attribute__((target("avx2,fma"))) float fma_avx2(std::int64_t n) { return fma_chains<f32x8, 10>(n); }
float fma_sse(std::int64_t n) { return fma_chains<f32x4, 8>(n); }

using CacheFed = float (*)(const float*, const float*, std::size_t, std::size_t, int);
__attribute__((target("avx512f"))) float cache_fed_avx512(const float* a, const float* b, std::size_t steps,
                                                          std::size_t b_steps, int passes) {
  return cache_fed<f32x16>(a, b, steps, b_steps, passes);
}
__attribute__((target("avx2,fma"))) float cache_fed_avx2(const float* a, const float* b, std::size_t steps,
                                                         std::size_t b_steps, int passes) {
  return cache_fed<f32x8>(a, b, steps, b_steps, passes);
}
float cache_fed_sse(const float* a, const float* b, std::size_t steps, std::size_t b_steps, int passes) {
  return cache_fed<f32x4>(a, b, steps, b_steps, passes);
}

// The widest vector instructions this cpu has, and both loops compiled for them.
struct Isa {
  const char* name;
  int lanes, chains;
  float (*fma)(std::int64_t);
  CacheFed cache_fed;
};
const Isa& widest_isa() {
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return Isa{"avx512f", 16, 12, fma_avx512, cache_fed_avx512};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      return Isa{"avx2+fma", 8, 10, fma_avx2, cache_fed_avx2};
    }
    return Isa{"sse", 4, 8, fma_sse, cache_fed_sse};
  }();
  return isa;
}

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
  const Isa& isa = widest_isa();
  roofline.isa = isa.name;
  const std::int64_t iterations = 20'000'000;
  std::vector<float> sink(std::size_t(threads) * 16);
  double best = 1e30;
  for (int repeat = 0; repeat < 3; ++repeat) {
    best = std::min(best, seconds([&] { on_threads(threads, [&](int t) { sink[std::size_t(t) * 16] = isa.fma(iterations); }); }));
  }
  roofline.peak_gflops = 2.0 * isa.lanes * isa.chains * double(iterations) * threads / best / 1e9;

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

double measure_cache_fed_share(int threads, const Roofline& roofline) {
  const Isa& isa = widest_isa();  // the instructions the peak was measured with
  const std::size_t lanes = std::size_t(isa.lanes);
  const std::size_t b_steps = (32 << 10) / (2 * lanes * sizeof(float));    // B: 32 KiB
  const std::size_t steps = (144 << 10) / (6 * sizeof(float)) / b_steps * b_steps;  // A: about 144 KiB
  const int passes = int(400'000'000 / (steps * 2 * lanes * 6 * 2));  // about 0.4 GFLOP per thread
  std::vector<std::vector<float>> a(threads, std::vector<float>(steps * 6 + 16, 1e-3f));
  std::vector<std::vector<float>> b(threads, std::vector<float>(b_steps * 2 * lanes + 16, 1e-3f));
  auto aligned = [](std::vector<float>& v) {  // a 64-byte boundary inside v
    return v.data() + (64 - reinterpret_cast<std::uintptr_t>(v.data()) % 64) % 64 / sizeof(float);
  };
  std::vector<float> sink(std::size_t(threads) * 16);
  double best = 1e30;
  for (int repeat = 0; repeat < 3; ++repeat) {
    best = std::min(best, seconds([&] {
      on_threads(threads, [&](int t) {
        sink[std::size_t(t) * 16] = isa.cache_fed(aligned(a[t]), aligned(b[t]), steps, b_steps, passes);
      });
    }));
  }
  const double flops_per_thread = 2.0 * 2 * double(lanes) * 6 * double(steps) * passes;
  const double gflops = flops_per_thread * threads / best / 1e9;
  return gflops / roofline.peak_gflops;
}

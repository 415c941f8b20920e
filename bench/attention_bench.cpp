// attention_bench.cpp — Google Benchmark of attention on every device: the fused
// kernels forward and backward beside the unfused three-step baseline built from
// porta's own matmul and softmax, and (when found) the same baseline on OpenBLAS sgemm.
// GFLOP/s use the standard count 4 * B * H * Nq * Nk * D (causal: half; backward 2.5x).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bench_devices.hpp"
#include "porta/porta.hpp"

#ifdef PORTA_BENCH_OPENBLAS
#include <cblas.h>

#include "openblas_anchor.hpp"
#endif

namespace {

struct AttentionShape {
  std::int64_t batch = 1, heads = 12, n = 1024, d = 64;
  bool causal = false;
  std::string name() const {
    char text[96];
    std::snprintf(text, sizeof text, "B%lld_H%lld_N%lld_D%lld%s", static_cast<long long>(batch),
                  static_cast<long long>(heads), static_cast<long long>(n), static_cast<long long>(d),
                  causal ? "_causal" : "");
    return text;
  }
  double forward_flops() const {
    return 4.0 * double(batch * heads) * double(n) * double(n) * double(d) * (causal ? 0.5 : 1.0);
  }
};

void set_rate(benchmark::State& state, double flops) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

void run_porta(benchmark::State& state, porta::Device device, std::string kernel, AttentionShape shape, bool backward) {
  const porta::Shape qkv{shape.batch, shape.heads, shape.n, shape.d};
  porta::Tensor q = porta::randn(qkv, porta::f32, device, 1), k = porta::randn(qkv, porta::f32, device, 2),
                v = porta::randn(qkv, porta::f32, device, 3);
  porta::AttentionOptions options;
  options.causal = shape.causal;
  options.kernel = kernel;
  porta::AttentionOutput forward = porta::attention(q, k, v, options);  // compiles and warms up
  porta::Tensor grad = porta::randn(qkv, porta::f32, device, 4);
  if (backward) porta::attention_backward(grad, q, k, v, forward, options);
  device.synchronize();
  for (auto _ : state) {
    if (backward) {
      porta::attention_backward(grad, q, k, v, forward, options);
    } else {
      forward = porta::attention(q, k, v, options);
    }
    device.synchronize();
  }
  set_rate(state, shape.forward_flops() * (backward ? 2.5 : 1.0));
}

// A case the device cannot run (a dtype it declines, a buffer beyond its largest
// allocation) is reported as skipped with porta's message, and the run goes on.
void bench_porta(benchmark::State& state, porta::Device device, std::string kernel, AttentionShape shape, bool backward) {
  try {
    run_porta(state, device, kernel, shape, backward);
  } catch (const porta::Error& error) {
    state.SkipWithError(error.what());
  }
}

#ifdef PORTA_BENCH_OPENBLAS
// The baseline's softmax, vectorised as a good unfused implementation would be:
// fast-math lets GCC reduce in any order and call glibc's vector expf.
__attribute__((target_clones("avx512f", "avx2", "default"), optimize("fast-math"))) void softmax_row(
    float* row, std::size_t visible, std::size_t n) {
  float max = row[0];
  for (std::size_t j = 1; j < visible; ++j) max = row[j] > max ? row[j] : max;
  float total = 0.0f;
  for (std::size_t j = 0; j < visible; ++j) {
    row[j] = std::exp(row[j] - max);
    total += row[j];
  }
  const float inverse = 1.0f / total;
  for (std::size_t j = 0; j < visible; ++j) row[j] *= inverse;
  for (std::size_t j = visible; j < n; ++j) row[j] = 0.0f;
}

// The three steps on OpenBLAS: S = Q K^T (all N x N, masked entries too), softmax, O = P V.
void bench_openblas(benchmark::State& state, AttentionShape shape) {
  const std::size_t n = std::size_t(shape.n), d = std::size_t(shape.d), heads = std::size_t(shape.batch * shape.heads);
  std::vector<float> q(heads * n * d), k(q.size()), v(q.size()), o(q.size()), s(n * n);
  for (std::size_t i = 0; i < q.size(); ++i) {
    q[i] = float(i % 13) * 0.05f - 0.3f;
    k[i] = float(i % 7) * 0.07f - 0.2f;
    v[i] = float(i % 11) * 0.09f - 0.45f;
  }
  const float scale = 1.0f / std::sqrt(float(d));
  for (auto _ : state) {
    for (std::size_t h = 0; h < heads; ++h) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(n), int(d), scale, q.data() + h * n * d, int(d),
                  k.data() + h * n * d, int(d), 0.0f, s.data(), int(n));
      for (std::size_t i = 0; i < n; ++i) softmax_row(s.data() + i * n, shape.causal ? i + 1 : n, n);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(n), int(d), int(n), 1.0f, s.data(), int(n),
                  v.data() + h * n * d, int(d), 0.0f, o.data() + h * n * d, int(d));
    }
    benchmark::DoNotOptimize(o.data());
  }
  set_rate(state, shape.forward_flops());
}
#endif

}  // namespace

int main(int argc, char** argv) {
#ifdef PORTA_BENCH_OPENBLAS
  give_openblas_its_best_kernel(argv);
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
#endif
  benchmark::Initialize(&argc, argv);
  std::vector<AttentionShape> shapes;
  for (bool causal : {false, true}) {
    for (std::int64_t n : {1024, 2048, 4096}) shapes.push_back({1, 12, n, 64, causal});
  }
  auto add = [](const std::string& name, auto&& function, auto... args) {
    benchmark::RegisterBenchmark(name.c_str(), function, args...)->UseRealTime()->Unit(benchmark::kMillisecond);
  };
#ifdef PORTA_BENCH_OPENBLAS
  openblas_set_num_threads(std::getenv("PORTA_CPU_THREADS") ? std::atoi(std::getenv("PORTA_CPU_THREADS"))
                                                             : int(std::thread::hardware_concurrency()));
  for (const AttentionShape& shape : shapes) add("attention/" + shape.name() + "/fwd/openblas_unfused", bench_openblas, shape);
#endif
  for (const porta::Device& device : porta::devices()) {
    const std::string id = device.id();
    if (!wanted(id) || (device.info().backend == porta::BackendKind::cpu && device.info().index > 0)) continue;
    const bool host_speed = device.info().backend == porta::BackendKind::cpu;
    const std::vector<std::string> kernels = porta::attention_kernels(device);
    for (const std::string& kernel : kernels) {
      // The device's preferred kernel and the unfused baseline; PORTA_BENCH_ALL_KERNELS=1 for every one.
      if (kernel != kernels.front() && kernel != "unfused" && std::getenv("PORTA_BENCH_ALL_KERNELS") == nullptr) continue;
      for (const AttentionShape& shape : shapes) {
        if (!host_speed && shape.n > 2048) continue;  // emulated devices: minutes per call
        add("attention/" + shape.name() + "/fwd/" + id + "/" + kernel, bench_porta, device, kernel, shape, false);
        if (kernel != "unfused") {
          add("attention/" + shape.name() + "/bwd/" + id + "/" + kernel, bench_porta, device, kernel, shape, true);
        }
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

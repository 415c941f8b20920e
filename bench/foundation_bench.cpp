// foundation_bench.cpp — Google Benchmark of the foundation kernels on every device:
// elementwise, cast, sum and the random generator, with GB/s counters, plus the
// host<->device transfers that frame every backend comparison.
#include <benchmark/benchmark.h>

#include <cstdio>

#include "porta/porta.hpp"

namespace {

constexpr std::int64_t elements = 1 << 24;  // 64 MiB of f32: past every cache here

void set_bytes(benchmark::State& state, double bytes_per_iteration) {
  state.counters["GB/s"] = benchmark::Counter(bytes_per_iteration, benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}

void bench_axpby(benchmark::State& state, porta::Device device) {
  porta::Tensor a = porta::randn({elements}, porta::f32, device, 1);
  porta::Tensor b = porta::randn({elements}, porta::f32, device, 2);
  device.synchronize();
  for (auto _ : state) {
    porta::Tensor c = porta::axpby(0.5f, a, 2.0f, b);
    device.synchronize();
  }
  set_bytes(state, 3.0 * 4 * elements);
}

void bench_cast_transpose(benchmark::State& state, porta::Device device) {
  porta::Tensor a = porta::randn({4096, 4096}, porta::f32, device, 1);
  device.synchronize();
  for (auto _ : state) {
    porta::Tensor c = porta::cast(a.transpose(0, 1), porta::bf16);
    device.synchronize();
  }
  set_bytes(state, (4.0 + 2.0) * 4096 * 4096);
}

void bench_sum(benchmark::State& state, porta::Device device) {
  porta::Tensor a = porta::randn({elements}, porta::f32, device, 1);
  device.synchronize();
  for (auto _ : state) {
    porta::Tensor s = porta::sum(a);
    device.synchronize();
  }
  set_bytes(state, 4.0 * elements);
}

void bench_randn(benchmark::State& state, porta::Device device) {
  std::uint64_t offset = 0;
  for (auto _ : state) {
    porta::Tensor r = porta::randn({elements}, porta::f32, device, 1, offset);
    offset += elements;
    device.synchronize();
  }
  set_bytes(state, 4.0 * elements);
}

void bench_upload(benchmark::State& state, porta::Device device) {
  std::vector<float> host(elements, 1.0f);
  for (auto _ : state) {
    porta::Tensor t = porta::Tensor::from_host(std::span<const float>(host), {elements}, porta::f32, device);
    device.synchronize();
  }
  set_bytes(state, 4.0 * elements);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  for (const porta::Device& device : porta::devices()) {
    const std::string id = device.id();
    benchmark::RegisterBenchmark(("axpby_f32/" + id).c_str(), bench_axpby, device)->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("cast_transpose_f32_bf16/" + id).c_str(), bench_cast_transpose, device)->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("sum_f32/" + id).c_str(), bench_sum, device)->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("randn_f32/" + id).c_str(), bench_randn, device)->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("upload_f32/" + id).c_str(), bench_upload, device)->UseRealTime()->Unit(benchmark::kMillisecond);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

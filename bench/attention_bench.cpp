// attention_bench.cpp — Google Benchmark of attention on every device: the fused
// kernels forward and backward beside the unfused three-step baseline built from
// porta's own matmul and softmax, and (when found) the same baseline on OpenBLAS sgemm,
// forward and backward. The cases are attention_case.hpp's, which porta-bench runs too.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "attention_case.hpp"
#include "bench_devices.hpp"
#include "gbench_case.hpp"
#include "porta/porta.hpp"

int main(int argc, char** argv) {
#ifdef PORTA_BENCH_OPENBLAS
  give_openblas_its_best_kernel(argv);
  benchmark::AddCustomContext("openblas_core", openblas_kernels());
#endif
  benchmark::Initialize(&argc, argv);
  std::vector<AttentionCase> shapes;
  for (bool backward : {false, true}) {
    for (bool causal : {false, true}) {
      for (std::int64_t n : {1024, 2048, 4096}) shapes.push_back({1, 12, n, 64, causal, backward});
    }
  }
  auto add = [](const AttentionCase& shape, const std::string& where, auto&& function, auto... args) {
    const std::string name = "attention/" + shape.name() + "/" + shape.direction() + "/" + where;
    benchmark::RegisterBenchmark(name.c_str(), function, shape, args...)->UseRealTime()->Unit(benchmark::kMillisecond);
  };
#ifdef PORTA_BENCH_OPENBLAS
  for (const AttentionCase& shape : shapes) add(shape, "openblas_unfused", bench<OpenblasAttention, AttentionCase>);
#endif
  for (const porta::Device& device : porta::devices()) {
    const std::string id = device.id();
    if (!wanted(id) || (device.info().backend == porta::BackendKind::cpu && device.info().index > 0)) continue;
    const bool host_speed = device.info().backend == porta::BackendKind::cpu;
    const std::vector<std::string> kernels = porta::attention_kernels(device);
    for (const std::string& kernel : kernels) {
      // The device's preferred kernel and the unfused baseline; PORTA_BENCH_ALL_KERNELS=1 for every one.
      if (kernel != kernels.front() && kernel != "unfused" && std::getenv("PORTA_BENCH_ALL_KERNELS") == nullptr) continue;
      for (const AttentionCase& shape : shapes) {
        if (!host_speed && shape.n > 2048) continue;  // emulated devices: minutes per call
        if (kernel == "unfused" && shape.backward) continue;  // the baseline has no backward
        add(shape, id + "/" + kernel, bench<PortaAttention, AttentionCase, porta::Device, std::string>, device, kernel);
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

// matmul_bench.cpp — Google Benchmark of matmul on every device and kernel, beside the
// anchors found at configure time (OpenBLAS sgemm; CLBlast on the first OpenCL device),
// with GFLOP/s counters, so every ratio comes from one run. Each device runs its
// preferred kernel; PORTA_BENCH_ALL_KERNELS=1 runs every one, PORTA_BENCH_DEVICES=cpu,opencl
// chooses backends. The cases are matmul_case.hpp's, which porta-bench runs too.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "bench_devices.hpp"
#include "gbench_case.hpp"
#include "matmul_case.hpp"
#include "porta/porta.hpp"

int main(int argc, char** argv) {
#ifdef PORTA_BENCH_OPENBLAS
  give_openblas_its_best_kernel(argv);
  benchmark::AddCustomContext("openblas_core", openblas_kernels());
#endif
  benchmark::Initialize(&argc, argv);
  const std::vector<MatmulCase> big = {{1024, 1024, 1024}, {2048, 2048, 2048}, {4096, 4096, 4096},
                                       {4096, 3072, 768},  {4096, 768, 3072},  {4096, 2304, 768}};
  // On the cpu, beside OpenBLAS: every transpose combination of every shape (the backward
  // pass multiplies by A^T and B^T), and batched small GEMMs.
  std::vector<MatmulCase> cpu_extra;
  for (int t = 1; t < 4; ++t) {
    for (const MatmulCase& shape : big) cpu_extra.push_back({shape.m, shape.n, shape.k, (t & 1) != 0, (t & 2) != 0});
  }
  cpu_extra.push_back({128, 128, 64, false, false, 48});
  auto add = [](const MatmulCase& shape, const std::string& where, auto&& function, auto... args) {
    const std::string name = "matmul/" + shape.name() + "/" + std::string(porta::to_string(shape.dtype)) + "/" + where;
    benchmark::RegisterBenchmark(name.c_str(), function, shape, args...)->UseRealTime()->Unit(benchmark::kMillisecond);
  };
#ifdef PORTA_BENCH_OPENBLAS
  for (const MatmulCase& shape : big) add(shape, "openblas", bench<OpenblasMatmul, MatmulCase>);
  for (const MatmulCase& shape : cpu_extra) add(shape, "openblas", bench<OpenblasMatmul, MatmulCase>);
#endif
  for (const porta::Device& device : porta::devices()) {
    const std::string id = device.id();
    if (!wanted(id) || (device.info().backend == porta::BackendKind::cpu && device.info().index > 0)) continue;
    const std::vector<std::string> kernels = porta::matmul_kernels(device);
    for (const std::string& kernel : kernels) {
      if (kernel == "naive") continue;  // seconds per call at these sizes; tests cover it
      if (kernel != kernels.front() && std::getenv("PORTA_BENCH_ALL_KERNELS") == nullptr) continue;
      const std::string where = id + "/" + kernel;
      for (const MatmulCase& shape : big) add(shape, where, bench<PortaMatmul, MatmulCase, porta::Device, std::string>, device, kernel);
      if (device.info().backend != porta::BackendKind::cpu) continue;
      for (const MatmulCase& shape : cpu_extra) {
        add(shape, where, bench<PortaMatmul, MatmulCase, porta::Device, std::string>, device, kernel);
      }
      for (porta::DType dtype : {porta::bf16, porta::f16}) {
        MatmulCase low = big[1];
        low.dtype = dtype;
        add(low, where, bench<PortaMatmul, MatmulCase, porta::Device, std::string>, device, kernel);
      }
    }
  }
#ifdef PORTA_BENCH_CLBLAST
  if (wanted("opencl")) {
    for (const MatmulCase& shape : big) add(shape, "clblast", bench<ClblastMatmul, MatmulCase>);
  }
#endif
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

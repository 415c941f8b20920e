// matmul_bench.cpp — Google Benchmark of matmul on every device and kernel, beside the
// anchors found at configure time (OpenBLAS sgemm; CLBlast on the first OpenCL device),
// with GFLOP/s counters, so every ratio comes from one run. Each device runs its
// preferred kernel; PORTA_BENCH_ALL_KERNELS=1 runs every one, PORTA_BENCH_DEVICES=cpu,opencl
// chooses backends.
#include <benchmark/benchmark.h>

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
#ifdef PORTA_BENCH_CLBLAST
#define CL_TARGET_OPENCL_VERSION 120
#include <clblast.h>
#endif

namespace {

struct GemmShape {
  std::int64_t m, n, k;
  bool trans_a = false, trans_b = false;
  std::int64_t batch = 1;
  std::string name() const {
    std::string text = std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) + "_" +
                       (trans_a ? "t" : "n") + (trans_b ? "t" : "n");
    return batch > 1 ? std::to_string(batch) + "x" + text : text;
  }
  double flops() const { return 2.0 * double(batch) * double(m) * double(n) * double(k); }
};

void set_rate(benchmark::State& state, const GemmShape& shape) {
  state.counters["GFLOP/s"] = benchmark::Counter(shape.flops(), benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.counters["GFLOP/s"].value /= 1e9;
}

porta::Shape stored(std::int64_t batch, std::int64_t rows, std::int64_t cols, bool trans) {
  std::int64_t r = trans ? cols : rows, c = trans ? rows : cols;
  return batch > 1 ? porta::Shape{batch, r, c} : porta::Shape{r, c};
}

void run_porta(benchmark::State& state, porta::Device device, std::string kernel, GemmShape shape, porta::DType dtype) {
  porta::Tensor a = porta::randn(stored(shape.batch, shape.m, shape.k, shape.trans_a), dtype, device, 1);
  porta::Tensor b = porta::randn(stored(shape.batch, shape.k, shape.n, shape.trans_b), dtype, device, 2);
  porta::MatmulOptions options;
  options.trans_a = shape.trans_a;
  options.trans_b = shape.trans_b;
  options.kernel = kernel;
  options.out_dtype = porta::f32;
  porta::Tensor c = porta::matmul(a, b, options);  // the first call compiles and warms up
  device.synchronize();
  for (auto _ : state) {
    porta::matmul_into(c, a, b, options);
    device.synchronize();
  }
  set_rate(state, shape);
}

// A case the device cannot run (a dtype it declines, a buffer beyond its largest
// allocation) is reported as skipped with porta's message, and the run goes on.
void bench_porta(benchmark::State& state, porta::Device device, std::string kernel, GemmShape shape, porta::DType dtype) {
  try {
    run_porta(state, device, kernel, shape, dtype);
  } catch (const porta::Error& error) {
    state.SkipWithError(error.what());
  }
}

#ifdef PORTA_BENCH_OPENBLAS
void bench_openblas(benchmark::State& state, GemmShape shape) {
  std::vector<float> a(std::size_t(shape.batch * shape.m * shape.k)), b(std::size_t(shape.batch * shape.k * shape.n)),
      c(std::size_t(shape.batch * shape.m * shape.n));
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = float(i % 7) * 0.25f - 0.75f;
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = float(i % 5) * 0.5f - 1.0f;
  const int lda = int(shape.trans_a ? shape.m : shape.k), ldb = int(shape.trans_b ? shape.k : shape.n);
  for (auto _ : state) {
    for (std::int64_t z = 0; z < shape.batch; ++z) {
      cblas_sgemm(CblasRowMajor, shape.trans_a ? CblasTrans : CblasNoTrans, shape.trans_b ? CblasTrans : CblasNoTrans,
                  int(shape.m), int(shape.n), int(shape.k), 1.0f, a.data() + z * shape.m * shape.k, lda,
                  b.data() + z * shape.k * shape.n, ldb, 0.0f, c.data() + z * shape.m * shape.n, int(shape.n));
    }
    benchmark::DoNotOptimize(c.data());
  }
  set_rate(state, shape);
}
#endif

#ifdef PORTA_BENCH_CLBLAST
// CLBlast on the first OpenCL device, in its own context: an anchor, not part of porta.
struct ClblastAnchor {
  cl_context context = nullptr;
  cl_command_queue queue = nullptr;
  bool ready = false;
  ClblastAnchor() {
    cl_platform_id platform;
    cl_device_id device;
    cl_uint count = 0;
    if (clGetPlatformIDs(1, &platform, &count) != CL_SUCCESS || count == 0) return;
    if (clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, &count) != CL_SUCCESS || count == 0) return;
    cl_int status;
    context = clCreateContext(nullptr, 1, &device, nullptr, nullptr, &status);
    if (status != CL_SUCCESS) return;
    queue = clCreateCommandQueue(context, device, 0, &status);
    ready = status == CL_SUCCESS;
  }
};

void bench_clblast(benchmark::State& state, GemmShape shape) {
  static ClblastAnchor anchor;
  if (!anchor.ready) {
    state.SkipWithError("no OpenCL device for CLBlast");
    return;
  }
  const std::size_t a_size = shape.m * shape.k, b_size = shape.k * shape.n, c_size = shape.m * shape.n;
  std::vector<float> host(std::max({a_size, b_size, c_size}), 0.5f);
  cl_int status;
  cl_mem a = clCreateBuffer(anchor.context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, a_size * 4, host.data(), &status);
  cl_mem b = clCreateBuffer(anchor.context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, b_size * 4, host.data(), &status);
  cl_mem c = clCreateBuffer(anchor.context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, c_size * 4, host.data(), &status);
  const std::size_t lda = shape.trans_a ? shape.m : shape.k, ldb = shape.trans_b ? shape.k : shape.n;
  auto run = [&] {
    auto result = clblast::Gemm(clblast::Layout::kRowMajor,
                                shape.trans_a ? clblast::Transpose::kYes : clblast::Transpose::kNo,
                                shape.trans_b ? clblast::Transpose::kYes : clblast::Transpose::kNo, shape.m, shape.n,
                                shape.k, 1.0f, a, 0, lda, b, 0, ldb, 0.0f, c, 0, shape.n, &anchor.queue);
    clFinish(anchor.queue);
    return result == clblast::StatusCode::kSuccess;
  };
  if (!run()) state.SkipWithError("CLBlast Gemm failed");  // the first call compiles
  for (auto _ : state) run();
  set_rate(state, shape);
  clReleaseMemObject(a);
  clReleaseMemObject(b);
  clReleaseMemObject(c);
}
#endif

}  // namespace

int main(int argc, char** argv) {
#ifdef PORTA_BENCH_OPENBLAS
  give_openblas_its_best_kernel(argv);
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
#endif
  benchmark::Initialize(&argc, argv);
  const std::vector<GemmShape> big = {{1024, 1024, 1024}, {2048, 2048, 2048}, {4096, 4096, 4096},
                                      {4096, 3072, 768},  {4096, 768, 3072},  {4096, 2304, 768}};
  std::vector<GemmShape> cpu_extra;  // every transpose combination at 2048^3, and batched small GEMMs
  for (int t = 1; t < 4; ++t) cpu_extra.push_back({2048, 2048, 2048, (t & 1) != 0, (t & 2) != 0});
  const GemmShape batched{128, 128, 64, false, false, 48};
  auto add = [](const std::string& name, auto&& function, auto... args) {
    benchmark::RegisterBenchmark(name.c_str(), function, args...)->UseRealTime()->Unit(benchmark::kMillisecond);
  };
#ifdef PORTA_BENCH_OPENBLAS
  const int threads = std::getenv("PORTA_CPU_THREADS") ? std::atoi(std::getenv("PORTA_CPU_THREADS"))
                                                        : int(std::thread::hardware_concurrency());
  openblas_set_num_threads(threads);
  for (const GemmShape& shape : big) add("matmul/" + shape.name() + "/f32/openblas", bench_openblas, shape);
  for (const GemmShape& shape : cpu_extra) add("matmul/" + shape.name() + "/f32/openblas", bench_openblas, shape);
  add("matmul/" + batched.name() + "/f32/openblas", bench_openblas, batched);
#endif
  for (const porta::Device& device : porta::devices()) {
    const std::string id = device.id();
    if (!wanted(id) || (device.info().backend == porta::BackendKind::cpu && device.info().index > 0)) continue;
    const std::vector<std::string> kernels = porta::matmul_kernels(device);
    for (const std::string& kernel : kernels) {
      if (kernel == "naive") continue;  // seconds per call at these sizes; tests cover it
      if (kernel != kernels.front() && std::getenv("PORTA_BENCH_ALL_KERNELS") == nullptr) continue;
      for (const GemmShape& shape : big) {
        add("matmul/" + shape.name() + "/f32/" + id + "/" + kernel, bench_porta, device, kernel, shape, porta::f32);
      }
      if (device.info().backend == porta::BackendKind::cpu) {
        for (const GemmShape& shape : cpu_extra) {
          add("matmul/" + shape.name() + "/f32/" + id + "/" + kernel, bench_porta, device, kernel, shape, porta::f32);
        }
        add("matmul/" + batched.name() + "/f32/" + id + "/" + kernel, bench_porta, device, kernel, batched, porta::f32);
        for (porta::DType dtype : {porta::bf16, porta::f16}) {
          add("matmul/" + big[1].name() + "/" + std::string(porta::to_string(dtype)) + "/" + id + "/" + kernel,
              bench_porta, device, kernel, big[1], dtype);
        }
      }
    }
  }
#ifdef PORTA_BENCH_CLBLAST
  if (wanted("opencl")) {
    for (const GemmShape& shape : big) add("matmul/" + shape.name() + "/f32/clblast", bench_clblast, shape);
  }
#endif
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

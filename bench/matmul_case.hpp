// matmul_case.hpp — one matmul benchmark case, shared by porta-bench-matmul (Google
// Benchmark) and porta-bench: its shape, flop and byte counts, its inputs, a runner for
// porta and one per anchor (OpenBLAS, CLBlast when built with them), and the float64
// check of a run's output. Inputs come from porta's counter-based generator, so every
// device and anchor multiplies the same numbers.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "bench_check.hpp"
#include "porta/porta.hpp"

#ifdef PORTA_BENCH_OPENBLAS
#include "openblas_anchor.hpp"
#endif
#ifdef PORTA_BENCH_CLBLAST
#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <clblast.h>
#endif

struct MatmulCase {
  std::int64_t m, n, k;
  bool trans_a = false, trans_b = false;
  std::int64_t batch = 1;
  porta::DType dtype = porta::f32;  // the operands'; the output is f32

  std::string transposes() const { return std::string(trans_a ? "t" : "n") + (trans_b ? "t" : "n"); }
  std::string dims() const {
    std::string text = std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k);
    return batch > 1 ? std::to_string(batch) + "x" + text : text;
  }
  // Google Benchmark's name ("2048x2048x2048_nn") and porta-bench's ("2048x2048x2048 nn f32").
  std::string name() const { return dims() + "_" + transposes(); }
  std::string label() const { return dims() + " " + transposes() + " " + std::string(porta::to_string(dtype)); }
  double flops() const { return 2.0 * double(batch) * double(m) * double(n) * double(k); }
  // Compulsory traffic: A and B read once, C written once.
  double bytes() const {
    return double(batch) * (double(m * k + k * n) * double(porta::size_of(dtype)) + double(m * n) * 4.0);
  }
  porta::Shape a_shape() const { return stored(m, k, trans_a); }
  porta::Shape b_shape() const { return stored(k, n, trans_b); }

 private:
  porta::Shape stored(std::int64_t rows, std::int64_t cols, bool trans) const {
    const std::int64_t r = trans ? cols : rows, c = trans ? rows : cols;
    return batch > 1 ? porta::Shape{batch, r, c} : porta::Shape{r, c};
  }
};

// The case's operands as generated on `device` (the seeds are fixed: every runner gets
// the same values).
inline porta::Tensor matmul_operand(const MatmulCase& c, char which, const porta::Device& device) {
  return which == 'a' ? porta::randn(c.a_shape(), c.dtype, device, 1) : porta::randn(c.b_shape(), c.dtype, device, 2);
}

// The operands' values as f32 on the host (f16/bf16 widen exactly).
inline std::vector<float> matmul_host_operand(const MatmulCase& c, char which) {
  const porta::Device cpu = porta::Device::get("cpu:0");
  return porta::cast(matmul_operand(c, which, cpu), porta::f32).to_host<float>();
}

// The float64 product at a few rows of the first and last batch (every column), checked
// against a run's full output: enough to catch a wrong tile, edge or transpose, cheap
// enough for 4096^3.
class MatmulReference {
 public:
  explicit MatmulReference(const MatmulCase& c) : case_(c) {
    const std::vector<float> a = matmul_host_operand(c, 'a'), b = matmul_host_operand(c, 'b');
    for (std::int64_t z : {std::int64_t{0}, c.batch - 1}) {
      for (std::int64_t i : sampled_indices(c.m)) {
        for (std::int64_t j = 0; j < c.n; ++j) {
          double sum = 0;
          for (std::int64_t p = 0; p < c.k; ++p) {
            const double x = a[std::size_t(z * c.m * c.k + (c.trans_a ? p * c.m + i : i * c.k + p))];
            const double y = b[std::size_t(z * c.k * c.n + (c.trans_b ? j * c.k + p : p * c.n + j))];
            sum += x * y;
          }
          index_.push_back(std::size_t((z * c.m + i) * c.n + j));
          value_.push_back(sum);
        }
      }
      if (c.batch == 1) break;
    }
  }

  // ‖out − ref‖/‖ref‖ over the sampled entries; passes when finite and within K ulps of
  // f32 (the inputs are the exact same values, so only the summation rounds).
  Check check(const std::vector<float>& out) const {
    std::vector<double> got(index_.size());
    for (std::size_t e = 0; e < index_.size(); ++e) got[e] = out.at(index_[e]);
    return compare(got, value_, double(case_.k) * 0x1p-23);
  }

 private:
  MatmulCase case_;
  std::vector<std::size_t> index_;
  std::vector<double> value_;
};

// porta's matmul on one device with one kernel ("auto": the device's best). The output
// is poisoned with NaN before the first call.
class PortaMatmul {
 public:
  PortaMatmul(const MatmulCase& c, const porta::Device& device, const std::string& kernel)
      : device_(device),
        a_(matmul_operand(c, 'a', device)),
        b_(matmul_operand(c, 'b', device)),
        c_(porta::full(c.batch > 1 ? porta::Shape{c.batch, c.m, c.n} : porta::Shape{c.m, c.n},
                       std::numeric_limits<double>::quiet_NaN(), porta::f32, device)) {
    options_.trans_a = c.trans_a;
    options_.trans_b = c.trans_b;
    options_.kernel = kernel;
    options_.out_dtype = porta::f32;
  }
  void operator()() {
    porta::matmul_into(c_, a_, b_, options_);
    device_.synchronize();
  }
  std::vector<float> output() const { return c_.to_host<float>(); }

 private:
  porta::Device device_;
  porta::Tensor a_, b_, c_;
  porta::MatmulOptions options_;
};

#ifdef PORTA_BENCH_OPENBLAS
// OpenBLAS sgemm, one call per batch entry (f32 only).
class OpenblasMatmul {
 public:
  explicit OpenblasMatmul(const MatmulCase& c)
      : case_(c),
        a_(matmul_host_operand(c, 'a')),
        b_(matmul_host_operand(c, 'b')),
        c_(std::size_t(c.batch * c.m * c.n), std::numeric_limits<float>::quiet_NaN()) {
    openblas_set_num_threads(anchor_threads());
  }
  void operator()() {
    const MatmulCase& s = case_;
    const int lda = int(s.trans_a ? s.m : s.k), ldb = int(s.trans_b ? s.k : s.n);
    for (std::int64_t z = 0; z < s.batch; ++z) {
      cblas_sgemm(CblasRowMajor, s.trans_a ? CblasTrans : CblasNoTrans, s.trans_b ? CblasTrans : CblasNoTrans, int(s.m),
                  int(s.n), int(s.k), 1.0f, a_.data() + z * s.m * s.k, lda, b_.data() + z * s.k * s.n, ldb, 0.0f,
                  c_.data() + z * s.m * s.n, int(s.n));
    }
  }
  const std::vector<float>& output() const { return c_; }

 private:
  MatmulCase case_;
  std::vector<float> a_, b_, c_;
};
#endif

#ifdef PORTA_BENCH_CLBLAST
// CLBlast on the first OpenCL device, in a context of its own: an anchor, not part of
// porta (f32, batch 1). Throws porta::Error when there is no OpenCL device or CLBlast
// fails, so a benchmark can report it and go on.
class ClblastMatmul {
 public:
  explicit ClblastMatmul(const MatmulCase& c) : case_(c) {
    cl_platform_id platform;
    cl_device_id device;
    cl_uint count = 0;
    if (clGetPlatformIDs(1, &platform, &count) != CL_SUCCESS || count == 0 ||
        clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, &count) != CL_SUCCESS || count == 0) {
      throw porta::Error(porta::ErrorKind::unsupported, "clblast: no OpenCL device");
    }
    cl_int status;
    context_ = clCreateContext(nullptr, 1, &device, nullptr, nullptr, &status);
    queue_ = clCreateCommandQueue(context_, device, 0, &status);
    std::vector<float> a = matmul_host_operand(c, 'a'), b = matmul_host_operand(c, 'b');
    std::vector<float> poison(std::size_t(c.m * c.n), std::numeric_limits<float>::quiet_NaN());
    auto buffer = [&](std::vector<float>& host) {
      return clCreateBuffer(context_, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, host.size() * 4, host.data(), &status);
    };
    a_ = buffer(a);
    b_ = buffer(b);
    c_ = buffer(poison);
    if (status != CL_SUCCESS) throw porta::Error(porta::ErrorKind::out_of_memory, "clblast: buffer allocation failed");
  }
  ClblastMatmul(const ClblastMatmul&) = delete;
  ClblastMatmul& operator=(const ClblastMatmul&) = delete;
  ~ClblastMatmul() {
    for (cl_mem buffer : {a_, b_, c_}) {
      if (buffer != nullptr) clReleaseMemObject(buffer);
    }
    if (queue_ != nullptr) clReleaseCommandQueue(queue_);
    if (context_ != nullptr) clReleaseContext(context_);
  }
  void operator()() {
    const MatmulCase& s = case_;
    const std::size_t lda = std::size_t(s.trans_a ? s.m : s.k), ldb = std::size_t(s.trans_b ? s.k : s.n);
    const clblast::StatusCode result = clblast::Gemm(
        clblast::Layout::kRowMajor, s.trans_a ? clblast::Transpose::kYes : clblast::Transpose::kNo,
        s.trans_b ? clblast::Transpose::kYes : clblast::Transpose::kNo, std::size_t(s.m), std::size_t(s.n),
        std::size_t(s.k), 1.0f, a_, 0, lda, b_, 0, ldb, 0.0f, c_, 0, std::size_t(s.n), &queue_);
    clFinish(queue_);
    if (result != clblast::StatusCode::kSuccess) {
      throw porta::Error(porta::ErrorKind::backend_error, "clblast: Gemm failed with status " + std::to_string(int(result)));
    }
  }
  std::vector<float> output() const {
    std::vector<float> host(std::size_t(case_.m * case_.n));
    clEnqueueReadBuffer(queue_, c_, CL_TRUE, 0, host.size() * 4, host.data(), 0, nullptr, nullptr);
    return host;
  }

 private:
  MatmulCase case_;
  cl_context context_ = nullptr;
  cl_command_queue queue_ = nullptr;
  cl_mem a_ = nullptr, b_ = nullptr, c_ = nullptr;
};
#endif

// matmul_tuner.hpp — what porta-opencl-tuner and porta-vulkan-tuner share. A candidate is
// a kernel name and the text of the backend's override variable (PORTA_OPENCL_MATMUL,
// PORTA_VULKAN_MATMUL); each is checked against the naive kernel on odd shapes and timed
// on square sizes, and the geometric mean of its rates is its score.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "porta/porta.hpp"

namespace porta::tuner {

struct Candidate {
  std::string kernel;  // the matmul kernel the text configures
  std::string text;    // the override variable's value
  double score = 0;    // geometric mean of GFLOP/s over the timed sizes; 0: did not run correctly
  std::string note;
  bool wrong = false;  // ran, but disagreed with the naive kernel: a kernel bug
};

struct Settings {
  std::vector<std::int64_t> sizes;  // square matmuls timed
  int repetitions = 3;              // timed runs per size (the median counts), after one warm-up
};

inline double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    diff += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    norm += double(want[i]) * want[i];
  }
  return std::sqrt(diff / std::max(norm, 1e-30));
}

// Odd shapes, both transposes, bias and GELU: every tail of the candidate's tiles.
inline bool agrees_with_naive(const Device& device, const std::string& kernel) {
  struct Shape3 {
    std::int64_t m, n, k;
    bool trans_a, trans_b;
  };
  for (const Shape3& s :
       {Shape3{131, 67, 97, false, false}, Shape3{67, 131, 255, true, true}, Shape3{1, 7, 3, false, true}}) {
    Tensor a = randn(s.trans_a ? Shape{s.k, s.m} : Shape{s.m, s.k}, DType::f32, device, 1);
    Tensor b = randn(s.trans_b ? Shape{s.n, s.k} : Shape{s.k, s.n}, DType::f32, device, 2);
    MatmulOptions options;
    options.trans_a = s.trans_a;
    options.trans_b = s.trans_b;
    options.bias = randn({s.n}, DType::f32, device, 3);
    options.epilogue = Epilogue::gelu;
    options.kernel = "naive";
    const std::vector<float> want = matmul(a, b, options).to_host<float>();
    options.kernel = kernel;
    const std::vector<float> got = matmul(a, b, options).to_host<float>();
    if (!(relative_error(got, want) < 1e-5)) return false;
  }
  return true;
}

// Median GFLOP/s of `repetitions` timed runs after one warm-up.
inline double gflops(const Device& device, const std::string& kernel, std::int64_t size, int repetitions) {
  Tensor a = randn({size, size}, DType::f32, device, 1);
  Tensor b = randn({size, size}, DType::f32, device, 2);
  Tensor c = Tensor::empty({size, size}, DType::f32, device);
  MatmulOptions options;
  options.kernel = kernel;
  matmul_into(c, a, b, options);
  device.synchronize();
  std::vector<double> seconds;
  for (int r = 0; r < repetitions; ++r) {
    const auto start = std::chrono::steady_clock::now();
    matmul_into(c, a, b, options);
    device.synchronize();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return 2.0 * double(size) * double(size) * double(size) / seconds[seconds.size() / 2] / 1e9;
}

// Runs every candidate with `variable` set to its text, printing a line for each, and
// returns the index of the best (list.size() when none ran correctly). The variable is
// unset afterwards.
inline std::size_t search(const Device& device, const char* variable, std::vector<Candidate>& list,
                          const Settings& settings) {
  std::size_t best = list.size();
  for (std::size_t i = 0; i < list.size(); ++i) {
    Candidate& candidate = list[i];
    setenv(variable, candidate.text.c_str(), 1);
    try {
      if (!agrees_with_naive(device, candidate.kernel)) {
        candidate.note = "wrong results";
        candidate.wrong = true;
      } else {
        double log_sum = 0;
        std::string per_size;
        for (std::int64_t size : settings.sizes) {
          const double rate = gflops(device, candidate.kernel, size, settings.repetitions);
          log_sum += std::log(rate);
          char text[32];
          std::snprintf(text, sizeof text, " %7.1f", rate);
          per_size += text;
        }
        candidate.score = std::exp(log_sum / double(settings.sizes.size()));
        candidate.note = "GFLOP/s" + per_size;
      }
    } catch (const Error& error) {
      candidate.note = std::string("failed: ") + error.what();
    }
    std::printf("  %-60s %s\n", candidate.text.c_str(), candidate.note.c_str());
    std::fflush(stdout);
    if (candidate.score > 0 && (best == list.size() || candidate.score > list[best].score)) best = i;
  }
  unsetenv(variable);
  return best;
}

// Says so on stderr and returns true when a candidate computed wrong results.
inline bool report_wrong(const char* tool, const std::vector<Candidate>& list) {
  bool any = false;
  for (const Candidate& candidate : list) {
    if (!candidate.wrong) continue;
    std::fprintf(stderr, "%s: '%s' computed wrong results: a kernel bug, please report it\n", tool,
                 candidate.text.c_str());
    any = true;
  }
  return any;
}

// The command line both tuners take: `[<backend>:N] [--quick]`.
struct CommandLine {
  std::string device;  // the device named, else the backend's first
  bool quick = false;
  int status = 0;  // not 0: exit with it (the usage or "no device" was printed)
};

inline CommandLine parse_command_line(int argc, char** argv, BackendKind backend) {
  const std::string name(to_string(backend));
  CommandLine line;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      line.quick = true;
    } else if (arg.rfind(name + ":", 0) == 0) {
      line.device = arg;
    } else {
      std::fprintf(stderr, "usage: porta-%s-tuner [%s:N] [--quick]\n", name.c_str(), name.c_str());
      line.status = 2;
      return line;
    }
  }
  for (const Device& device : devices()) {
    if (line.device.empty() && device.info().backend == backend) line.device = device.id();
  }
  if (line.device.empty()) {
    std::fprintf(stderr, "porta-%s-tuner: no %s device found\n", name.c_str(), name.c_str());
    line.status = 1;
  }
  return line;
}

inline void print_sizes(const Settings& settings) {
  std::printf(", sizes");
  for (std::int64_t size : settings.sizes) std::printf(" %lld^3", static_cast<long long>(size));
  std::printf(", median of %d\n", settings.repetitions);
}

}  // namespace porta::tuner

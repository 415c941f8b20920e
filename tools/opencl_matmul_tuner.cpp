// opencl_matmul_tuner.cpp — porta-opencl-tuner: searches the matmul parameters of an OpenCL
// device's preferred kernel, checks each candidate against the naive kernel, and prints the
// row to paste into backends/opencl/opencl_config.hpp.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "backends/opencl/opencl_config.hpp"
#include "porta/porta.hpp"

namespace {

namespace cl = porta::backend::opencl;

struct Candidate {
  cl::MatmulConfig config;
  std::string text;  // the $PORTA_OPENCL_MATMUL form
  double score = 0;  // geometric mean of GFLOP/s over the timed sizes
  std::string note;
};

// A small grid around designs that work: register blocks that fit 32 vector registers
// (packed), tiles that fit typical local memories and register files (tiled).
std::vector<Candidate> candidates(const cl::MatmulConfig& base, bool packed, unsigned max_group) {
  std::vector<Candidate> list;
  if (packed) {
    const unsigned shapes[][3] = {{6, 8, 2}, {6, 16, 2}, {12, 16, 2}, {6, 16, 4}};
    for (const auto& shape : shapes) {
      for (unsigned kc : {0u, 128u, 256u}) {
        cl::MatmulConfig config = base;
        config.packed = {shape[0], shape[1], shape[2], 16, 1, kc};
        list.push_back({config, cl::to_string(config.packed), 0, {}});
      }
    }
  } else {
    const unsigned tiles[][7] = {{64, 64, 16, 16, 16, 4, 4},   {64, 64, 16, 8, 8, 4, 4},    {128, 128, 16, 16, 16, 4, 4},
                                 {128, 64, 16, 16, 16, 4, 4},  {128, 128, 8, 16, 16, 4, 4}, {64, 128, 16, 16, 16, 2, 4},
                                 {128, 128, 32, 16, 16, 8, 8}, {32, 32, 16, 8, 8, 2, 2}};
    for (const auto& t : tiles) {
      if (t[3] * t[4] > max_group) continue;
      cl::MatmulConfig config = base;
      config.tiled = {t[0], t[1], t[2], t[3], t[4], t[5], t[6]};
      list.push_back({config, cl::to_string(config.tiled), 0, {}});
    }
  }
  return list;
}

double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    diff += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    norm += double(want[i]) * want[i];
  }
  return std::sqrt(diff / std::max(norm, 1e-30));
}

// Odd shapes, both transposes, bias and GELU: every tail of the candidate's tiles.
bool verify(const porta::Device& device, const std::string& kernel) {
  struct Shape3 {
    std::int64_t m, n, k;
    bool trans_a, trans_b;
  };
  for (const Shape3& s : {Shape3{131, 67, 97, false, false}, Shape3{67, 131, 255, true, true}, Shape3{1, 7, 3, false, true}}) {
    porta::Tensor a = porta::randn(s.trans_a ? porta::Shape{s.k, s.m} : porta::Shape{s.m, s.k}, porta::DType::f32, device, 1);
    porta::Tensor b = porta::randn(s.trans_b ? porta::Shape{s.n, s.k} : porta::Shape{s.k, s.n}, porta::DType::f32, device, 2);
    porta::MatmulOptions options;
    options.trans_a = s.trans_a;
    options.trans_b = s.trans_b;
    options.bias = porta::randn({s.n}, porta::DType::f32, device, 3);
    options.epilogue = porta::Epilogue::gelu;
    options.kernel = "naive";
    const std::vector<float> want = porta::matmul(a, b, options).to_host<float>();
    options.kernel = kernel;
    const std::vector<float> got = porta::matmul(a, b, options).to_host<float>();
    if (!(relative_error(got, want) < 1e-5)) return false;
  }
  return true;
}

// Median GFLOP/s of `repetitions` timed runs after one warm-up.
double gflops(const porta::Device& device, const std::string& kernel, std::int64_t size, int repetitions) {
  porta::Tensor a = porta::randn({size, size}, porta::DType::f32, device, 1);
  porta::Tensor b = porta::randn({size, size}, porta::DType::f32, device, 2);
  porta::Tensor c = porta::Tensor::empty({size, size}, porta::DType::f32, device);
  porta::MatmulOptions options;
  options.kernel = kernel;
  porta::matmul_into(c, a, b, options);
  device.synchronize();
  std::vector<double> seconds;
  for (int r = 0; r < repetitions; ++r) {
    const auto start = std::chrono::steady_clock::now();
    porta::matmul_into(c, a, b, options);
    device.synchronize();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return 2.0 * double(size) * double(size) * double(size) / seconds[seconds.size() / 2] / 1e9;
}

const char* type_constant(porta::DeviceType type) {
  switch (type) {
    case porta::DeviceType::cpu: return "CL_DEVICE_TYPE_CPU";
    case porta::DeviceType::discrete_gpu:
    case porta::DeviceType::integrated_gpu: return "CL_DEVICE_TYPE_GPU";
    case porta::DeviceType::accelerator: return "CL_DEVICE_TYPE_ACCELERATOR";
    default: return "0";
  }
}

std::string entry(const porta::DeviceInfo& info, const cl::MatmulConfig& c, bool packed) {
  char text[512];
  if (packed) {
    std::snprintf(text, sizeof text, "{%s, \"\", \"%s\", {MatmulKernel::packed, {%u, %u, %u, %u, %u, %u}, {}}},",
                  type_constant(info.type), info.name.c_str(), c.packed.mr, c.packed.vw, c.packed.nv, c.packed.group_m,
                  c.packed.group_n, c.packed.kc);
  } else {
    std::snprintf(text, sizeof text, "{%s, \"%s\", \"%s\", {MatmulKernel::tiled, {}, {%u, %u, %u, %u, %u, %u, %u}}},",
                  type_constant(info.type), info.vendor.c_str(), info.name.c_str(), c.tiled.mwg, c.tiled.nwg,
                  c.tiled.kwg, c.tiled.mdimc, c.tiled.ndimc, c.tiled.vwm, c.tiled.vwn);
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string device_name;
    std::vector<std::int64_t> sizes = {1024, 2048};
    int repetitions = 3;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--quick") {
        sizes = {1024};
        repetitions = 2;
      } else if (arg.rfind("opencl:", 0) == 0) {
        device_name = arg;
      } else {
        std::fprintf(stderr, "usage: porta-opencl-tuner [opencl:N] [--quick]\n");
        return 2;
      }
    }
    if (device_name.empty()) {
      for (const porta::Device& device : porta::devices()) {
        if (device.info().backend == porta::BackendKind::opencl) {
          device_name = device.id();
          break;
        }
      }
    }
    if (device_name.empty()) {
      std::fprintf(stderr, "porta-opencl-tuner: no OpenCL device found\n");
      return 1;
    }
    const porta::Device device = porta::Device::get(device_name);
    const porta::DeviceInfo& info = device.info();
    const std::string kernel = porta::matmul_kernels(device).front();
    const bool packed = kernel == "packed";
    std::printf("tuning the '%s' matmul on %s (%s, %s), sizes", kernel.c_str(), device_name.c_str(), info.name.c_str(),
                info.vendor.c_str());
    for (std::int64_t size : sizes) std::printf(" %lld^3", static_cast<long long>(size));
    std::printf(", median of %d\n", repetitions);

    // Start from the device's current row so fields the grid does not search keep their values.
    cl::MatmulConfig base;
    base.preferred = packed ? cl::MatmulKernel::packed : cl::MatmulKernel::tiled;
    std::vector<Candidate> list = candidates(base, packed, info.max_work_group_size);
    Candidate* best = nullptr;
    for (Candidate& candidate : list) {
      setenv("PORTA_OPENCL_MATMUL", candidate.text.c_str(), 1);
      try {
        if (!verify(device, kernel)) {
          candidate.note = "wrong results";
        } else {
          double log_sum = 0;
          std::string per_size;
          for (std::int64_t size : sizes) {
            const double rate = gflops(device, kernel, size, repetitions);
            log_sum += std::log(rate);
            char text[32];
            std::snprintf(text, sizeof text, " %7.1f", rate);
            per_size += text;
          }
          candidate.score = std::exp(log_sum / double(sizes.size()));
          candidate.note = "GFLOP/s" + per_size;
        }
      } catch (const porta::Error& error) {
        candidate.note = std::string("failed: ") + error.what();
      }
      std::printf("  %-60s %s\n", candidate.text.c_str(), candidate.note.c_str());
      std::fflush(stdout);
      if (candidate.score > 0 && (best == nullptr || candidate.score > best->score)) best = &candidate;
    }
    unsetenv("PORTA_OPENCL_MATMUL");
    if (best == nullptr) {
      std::fprintf(stderr, "porta-opencl-tuner: no candidate ran correctly on %s\n", device_name.c_str());
      return 1;
    }
    std::printf("\nbest: %s (%.1f GFLOP/s geometric mean)\n", best->text.c_str(), best->score);
    std::printf("row for matmul_table in backends/opencl/opencl_config.hpp:\n    %s\n",
                entry(info, best->config, packed).c_str());
    return 0;
  } catch (const porta::Error& error) {
    std::fprintf(stderr, "porta-opencl-tuner: %s\n", error.what());
    return 1;
  }
}

// opencl_matmul_tuner.cpp — porta-opencl-tuner: searches the matmul parameters of an OpenCL
// device's preferred kernel, checks each candidate against the naive kernel, and prints the
// row to paste into backends/opencl/opencl_config.hpp.
#include <cstdio>
#include <string>
#include <vector>

#include "backends/opencl/opencl_config.hpp"
#include "matmul_tuner.hpp"

namespace {

namespace cl = porta::backend::opencl;

// A small grid around designs that work: register blocks that fit 32 vector registers
// (packed), tiles that fit typical local memories and register files (tiled).
std::vector<cl::MatmulConfig> candidates(const cl::MatmulConfig& base, bool packed, unsigned max_group) {
  std::vector<cl::MatmulConfig> list;
  if (packed) {
    const unsigned shapes[][3] = {{6, 8, 2}, {6, 16, 2}, {12, 16, 2}, {6, 16, 4}};
    for (const auto& shape : shapes) {
      for (unsigned kc : {0u, 128u, 256u}) {
        cl::MatmulConfig config = base;
        config.packed = {shape[0], shape[1], shape[2], 16, 1, kc};
        list.push_back(config);
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
      list.push_back(config);
    }
  }
  return list;
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
    const auto line = porta::tuner::parse_command_line(argc, argv, porta::BackendKind::opencl);
    if (line.status != 0) return line.status;
    const std::string& device_name = line.device;
    porta::tuner::Settings settings{{1024, 2048}, 3};
    if (line.quick) settings = {{1024}, 2};
    const porta::Device device = porta::Device::get(device_name);
    const porta::DeviceInfo& info = device.info();
    const std::string kernel = porta::matmul_kernels(device).front();
    const bool packed = kernel == "packed";
    std::printf("tuning the '%s' matmul on %s (%s, %s)", kernel.c_str(), device_name.c_str(), info.name.c_str(),
                info.vendor.c_str());
    porta::tuner::print_sizes(settings);

    // Start from the device's current row so fields the grid does not search keep their values.
    cl::MatmulConfig base;
    base.preferred = packed ? cl::MatmulKernel::packed : cl::MatmulKernel::tiled;
    const std::vector<cl::MatmulConfig> configs = candidates(base, packed, info.max_work_group_size);
    std::vector<porta::tuner::Candidate> list;
    for (const cl::MatmulConfig& config : configs) {
      list.push_back({kernel, packed ? cl::to_string(config.packed) : cl::to_string(config.tiled), 0, {}, false});
    }
    const std::size_t best = porta::tuner::search(device, "PORTA_OPENCL_MATMUL", list, settings);
    if (best == list.size()) {
      std::fprintf(stderr, "porta-opencl-tuner: no candidate ran correctly on %s\n", device_name.c_str());
      return 1;
    }
    std::printf("\nbest: %s (%.1f GFLOP/s geometric mean)\n", list[best].text.c_str(), list[best].score);
    std::printf("row for matmul_table in backends/opencl/opencl_config.hpp:\n    %s\n",
                entry(info, configs[best], packed).c_str());
    return porta::tuner::report_wrong("porta-opencl-tuner", list) ? 3 : 0;
  } catch (const porta::Error& error) {
    std::fprintf(stderr, "porta-opencl-tuner: %s\n", error.what());
    return 1;
  }
}

// vulkan_matmul_tuner.cpp — porta-vulkan-tuner: searches the tile parameters of a Vulkan
// device's matmul kernels ("tiled" everywhere, "subgroup" where the device can run it),
// checks each candidate against the naive kernel, and prints the row to paste into
// matmul_table in backends/vulkan/vulkan_tuning.hpp.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "backends/vulkan/vulkan_tuning.hpp"
#include "matmul_tuner.hpp"

namespace {

namespace vk = porta::backend::vulkan;

// Shared-memory tiles from small (mobile, software devices) to the 128 x 128 x 8 x 8 blocks
// of discrete GPUs; candidates the device cannot run fail with the reason and are skipped.
constexpr vk::MatmulTiles tiled_grid[] = {{32, 32, 8, 4, 4},   {64, 64, 8, 4, 4},    {64, 64, 16, 4, 4},
                                          {64, 64, 16, 8, 8},  {128, 64, 16, 8, 4},  {64, 128, 16, 4, 8},
                                          {128, 128, 8, 8, 8}, {128, 128, 16, 8, 8}};
constexpr std::uint32_t subgroup_grid[] = {1, 2, 4, 8};

const char* type_constant(porta::DeviceType type) {
  switch (type) {
    case porta::DeviceType::cpu: return "VK_PHYSICAL_DEVICE_TYPE_CPU";
    case porta::DeviceType::discrete_gpu: return "VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU";
    case porta::DeviceType::integrated_gpu: return "VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU";
    case porta::DeviceType::virtual_gpu: return "VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU";
    default: return "VK_PHYSICAL_DEVICE_TYPE_OTHER";
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto line = porta::tuner::parse_command_line(argc, argv, porta::BackendKind::vulkan);
    if (line.status != 0) return line.status;
    const std::string& device_name = line.device;
    const porta::Device device = porta::Device::get(device_name);
    const porta::DeviceInfo& info = device.info();
    // Software devices (lavapipe, SwiftShader) run at a few GFLOP/s: smaller products there.
    const bool cpu_device = info.type == porta::DeviceType::cpu;
    porta::tuner::Settings settings{{1024, 2048}, 3};
    if (cpu_device) settings.sizes = {512, 1024};
    if (line.quick) settings = {{cpu_device ? 256 : 1024}, 2};
    const std::vector<std::string> kernels = porta::matmul_kernels(device);
    const bool has_subgroup = std::find(kernels.begin(), kernels.end(), "subgroup") != kernels.end();
    std::printf("tuning the matmul on %s (%s, %s; the table prefers '%s')", device_name.c_str(), info.name.c_str(),
                info.vendor.c_str(), kernels.front().c_str());
    porta::tuner::print_sizes(settings);

    std::vector<porta::tuner::Candidate> tiled;
    for (const vk::MatmulTiles& tiles : tiled_grid) tiled.push_back({"tiled", vk::to_string(tiles), 0, {}, false});
    const std::size_t best_tiled = porta::tuner::search(device, "PORTA_VULKAN_MATMUL", tiled, settings);
    std::vector<porta::tuner::Candidate> subgroup;
    std::size_t best_subgroup = 0;
    if (has_subgroup) {
      for (std::uint32_t cols : subgroup_grid) subgroup.push_back({"subgroup", vk::subgroup_matmul_text(cols), 0, {}, false});
      best_subgroup = porta::tuner::search(device, "PORTA_VULKAN_MATMUL", subgroup, settings);
    }
    const bool tiled_ok = best_tiled < tiled.size(), subgroup_ok = best_subgroup < subgroup.size();
    if (!tiled_ok && !subgroup_ok) {
      std::fprintf(stderr, "porta-vulkan-tuner: no candidate ran correctly on %s\n", device_name.c_str());
      return 1;
    }
    const vk::MatmulTiles tiles = tiled_ok ? tiled_grid[best_tiled] : vk::matmul_fallback_tiles;
    const std::uint32_t cols = subgroup_ok ? subgroup_grid[best_subgroup] : vk::MatmulConfig{}.subgroup_cols;
    const bool prefer_subgroup =
        subgroup_ok && (!tiled_ok || subgroup[best_subgroup].score > tiled[best_tiled].score);
    std::printf("\n");
    if (tiled_ok) {
      std::printf("best tiled: %s (%.1f GFLOP/s geometric mean)\n", tiled[best_tiled].text.c_str(),
                  tiled[best_tiled].score);
    }
    if (subgroup_ok) {
      std::printf("best subgroup: %s (%.1f GFLOP/s geometric mean)\n", subgroup[best_subgroup].text.c_str(),
                  subgroup[best_subgroup].score);
    }
    std::printf("row for matmul_table in backends/vulkan/vulkan_tuning.hpp:\n");
    std::printf("    {\"%s\", %s, 0x%X, {\"%s\", {%u, %u, %u, %u, %u}, %u}},\n", info.name.c_str(),
                type_constant(info.type), vk::vendor_id(info.vendor), prefer_subgroup ? "subgroup" : "tiled", tiles.bm,
                tiles.bn, tiles.bk, tiles.tm, tiles.tn, cols);
    const bool wrong = porta::tuner::report_wrong("porta-vulkan-tuner", tiled);
    return porta::tuner::report_wrong("porta-vulkan-tuner", subgroup) || wrong ? 3 : 0;
  } catch (const porta::Error& error) {
    std::fprintf(stderr, "porta-vulkan-tuner: %s\n", error.what());
    return 1;
  }
}

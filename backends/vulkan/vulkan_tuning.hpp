// vulkan_tuning.hpp — per-device launch parameters of the Vulkan kernels (work-group sizes,
// dispatch and batch limits, the matmul configuration table), chosen from what the device
// reports; kept apart from the backend code so the tables can grow without touching it.
#pragma once

#include <vulkan/vulkan.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

namespace porta::backend::vulkan {

// PCI vendor ids (Khronos ids for Mesa's software devices) and the names porta reports
// for them; other vendors are reported as "0x" and the id in hex.
inline constexpr std::array<std::pair<std::uint32_t, std::string_view>, 6> known_vendors = {{
    {0x10DE, "NVIDIA"}, {0x1002, "AMD"}, {0x8086, "Intel"}, {0x13B5, "ARM"}, {0x5143, "Qualcomm"}, {0x10005, "Mesa"}}};

inline std::string vendor_name(std::uint32_t vendor_id) {
  for (const auto& [id, name] : known_vendors) {
    if (id == vendor_id) return std::string(name);
  }
  char text[16];
  std::snprintf(text, sizeof text, "0x%04x", vendor_id);
  return text;
}

// The inverse of vendor_name (0 when `name` is neither known nor hex).
inline std::uint32_t vendor_id(std::string_view name) {
  for (const auto& [id, known] : known_vendors) {
    if (known == name) return id;
  }
  if (name.size() > 2 && name.substr(0, 2) == "0x") {
    return static_cast<std::uint32_t>(std::strtoul(std::string(name.substr(2)).c_str(), nullptr, 16));
  }
  return 0;
}

// What the table looks at.
struct DeviceTraits {
  VkPhysicalDeviceType type = VK_PHYSICAL_DEVICE_TYPE_OTHER;
  std::uint32_t vendor_id = 0;
  std::uint32_t subgroup_size = 0;  // 0: not reported
  std::uint32_t max_invocations = 0;  // maxComputeWorkGroupInvocations
  std::uint32_t max_group_size_x = 0;  // maxComputeWorkGroupSize[0]
  std::uint32_t max_group_count_x = 0;  // maxComputeWorkGroupCount[0]
  std::uint32_t shared_memory_bytes = 0;  // maxComputeSharedMemorySize
  VkShaderStageFlags subgroup_stages = 0;  // VkPhysicalDeviceSubgroupProperties
  VkSubgroupFeatureFlags subgroup_operations = 0;
};

struct Tuning {
  std::uint32_t stream_group_size = 256;  // fill, copy_cast, elementwise, random (one element per invocation)
  std::uint32_t reduce_group_size = 256;  // reduce_sum; a power of two (its tree needs it)
  std::uint32_t max_groups = 65535;       // per dispatch; grid-stride loops cover the rest
  std::uint32_t subgroup_size = 0;
  std::uint32_t batch_dispatches = 256;   // recorded before a batch is submitted without waiting
  std::uint64_t staging_bytes = 16u << 20;  // staging chunk when memory cannot be mapped
};

namespace detail {
inline std::uint32_t power_of_two_at_most(std::uint32_t limit, std::uint32_t wanted) {
  std::uint32_t size = 1;
  while (size * 2 <= std::min(limit, wanted)) size *= 2;
  return size;
}
}  // namespace detail

inline Tuning choose_tuning(const DeviceTraits& device) {
  Tuning tuning;
  tuning.subgroup_size = device.subgroup_size;
  if (device.type == VK_PHYSICAL_DEVICE_TYPE_CPU) {
    // lavapipe/SwiftShader run a work-group on one thread, looping over invocations:
    // mid-sized groups, few of them (each thread strides over many elements), and
    // small reduction trees (barriers are expensive there).
    tuning.stream_group_size = 128;
    tuning.reduce_group_size = 64;
    tuning.max_groups = 1024;
  } else if (device.vendor_id == 0x1002) {  // AMD: wave64 on GCN, 256 fills a CU
    tuning.stream_group_size = 256;
    tuning.reduce_group_size = 256;
  } else if (device.vendor_id == 0x13B5 || device.vendor_id == 0x5143) {  // Mali, Adreno: smaller groups
    tuning.stream_group_size = 128;
    tuning.reduce_group_size = 128;
  }
  const std::uint32_t group_limit = std::max<std::uint32_t>(1, std::min(device.max_invocations, device.max_group_size_x));
  tuning.stream_group_size = detail::power_of_two_at_most(group_limit, tuning.stream_group_size);
  const std::uint32_t shared_limit = std::max<std::uint32_t>(1, device.shared_memory_bytes / 4);
  tuning.reduce_group_size = detail::power_of_two_at_most(std::min(group_limit, shared_limit), tuning.reduce_group_size);
  tuning.max_groups = std::max<std::uint32_t>(1, std::min(tuning.max_groups, device.max_group_count_x));
  return tuning;
}

// ---------------------------------------------------------------------------------------
// Matmul. "tiled" (kernels/matmul/vulkan_tiled.comp) is the GPU design: shared-memory
// tiles of BM x BN x BK, each invocation a TM x TN register block, (BM/TM)*(BN/TN)
// invocations. "subgroup" (vulkan_subgroup.comp) is the CPU-device design: one subgroup
// per work-group, 32 rows x subgroup-size columns, A shared through subgroupBroadcast.
struct MatmulTiles {
  std::uint32_t bm, bn, bk, tm, tn;
  constexpr std::uint32_t threads() const { return (bm / tm) * (bn / tn); }
};

inline constexpr std::uint32_t matmul_max_register_block = 8;  // MAX_T in vulkan_tiled.comp
inline constexpr std::uint32_t matmul_subgroup_rows = 32;      // ROWS in vulkan_subgroup.comp
inline constexpr std::uint32_t matmul_subgroup_max_cols = 8;   // MAX_COLS in vulkan_subgroup.comp

struct MatmulConfig {
  std::string_view preferred = "tiled";  // the kernel "auto" picks: tiled or subgroup
  MatmulTiles tiles{64, 64, 16, 4, 4};
  std::uint32_t subgroup_cols = 4;  // "subgroup": columns per invocation (1..8)
};

// One row of the table: the first whose type and vendor match (0: any) wins.
struct MatmulTableEntry {
  std::string_view what;            // for the reader: the devices this row is for
  VkPhysicalDeviceType type;        // VK_PHYSICAL_DEVICE_TYPE_MAX_ENUM: any
  std::uint32_t vendor_id;          // 0: any
  MatmulConfig config;
};

// Measured rows: the CPU one, on lavapipe (Mesa 22.3, LLVM 15, 2 threads), where
// "subgroup" ran several times faster than "tiled" (every load is a scalar bounds-checked
// load there, and barriers are loops), and 8 columns per invocation beat 1, 2, 4 and 6
// (2048^3: about 3x the rate of 1 column; 4096x3072x768 about 1.2x that of 4). The GPU
// rows are the usual shapes for each family and are not measured here (no GPU in the
// environment where they were written): run porta-vulkan-tuner on the hardware and
// replace them with the row it prints.
inline constexpr std::array<MatmulTableEntry, 6> matmul_table = {{
    {"CPU devices: lavapipe, SwiftShader", VK_PHYSICAL_DEVICE_TYPE_CPU, 0, {"subgroup", {32, 32, 8, 4, 4}, 8}},
    {"NVIDIA discrete", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 0x10DE, {"tiled", {128, 128, 8, 8, 8}}},
    {"AMD discrete (wave64 on GCN)", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 0x1002, {"tiled", {128, 128, 8, 8, 8}}},
    {"other discrete GPUs", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 0, {"tiled", {128, 128, 8, 8, 8}}},
    {"Mali: small register files", VK_PHYSICAL_DEVICE_TYPE_MAX_ENUM, 0x13B5, {"tiled", {32, 32, 8, 4, 4}}},
    {"Adreno: small register files", VK_PHYSICAL_DEVICE_TYPE_MAX_ENUM, 0x5143, {"tiled", {32, 32, 8, 4, 4}}},
}};
// Unknown devices (integrated GPUs among them): a middle shape that fits every limit.
inline constexpr MatmulConfig matmul_default{"tiled", {64, 64, 16, 4, 4}};
// Fits the minimum limits Vulkan guarantees (128 invocations, 16 KiB shared memory).
inline constexpr MatmulTiles matmul_fallback_tiles{32, 32, 8, 4, 4};

// Whether vulkan_subgroup.comp can run: subgroupBroadcast in compute shaders, and a
// subgroup size that divides its rows (one subgroup is the whole work-group).
inline bool matmul_subgroup_supported(const DeviceTraits& device) {
  const VkSubgroupFeatureFlags needed = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_BALLOT_BIT;
  const std::uint32_t lanes = device.subgroup_size;
  return (device.subgroup_stages & VK_SHADER_STAGE_COMPUTE_BIT) != 0 &&
         (device.subgroup_operations & needed) == needed && lanes >= 4 && lanes <= matmul_subgroup_rows &&
         (lanes & (lanes - 1)) == 0 && lanes <= device.max_invocations && lanes <= device.max_group_size_x;
}

// Why vulkan_tiled.comp cannot run these tiles on the device ("" when it can).
inline std::string matmul_tiles_problem(const MatmulTiles& tiles, const DeviceTraits& device) {
  const std::string max_t = std::to_string(matmul_max_register_block);
  if (tiles.tm < 1 || tiles.tn < 1 || tiles.tm > matmul_max_register_block || tiles.tn > matmul_max_register_block) {
    return "tm and tn must be 1.." + max_t;
  }
  if (tiles.bm == 0 || tiles.bm % tiles.tm != 0 || tiles.bn == 0 || tiles.bn % tiles.tn != 0) {
    return "bm must be a multiple of tm and bn of tn";
  }
  if (tiles.bk < 1) return "bk must be >= 1";
  const std::uint64_t threads = std::uint64_t(tiles.bm / tiles.tm) * (tiles.bn / tiles.tn);
  if (threads > device.max_invocations || threads > device.max_group_size_x) {
    return std::to_string(threads) + " invocations per work-group, the device allows " +
           std::to_string(std::min(device.max_invocations, device.max_group_size_x));
  }
  const std::uint64_t shared = 4ull * tiles.bk * (tiles.bm + 1ull + tiles.bn + 1ull);  // the shader pads by one
  if (shared > device.shared_memory_bytes) {
    return std::to_string(shared) + " bytes of shared memory, the device has " +
           std::to_string(device.shared_memory_bytes);
  }
  return {};
}

inline bool matmul_tiles_fit(const MatmulTiles& tiles, const DeviceTraits& device) {
  return matmul_tiles_problem(tiles, device).empty();
}

inline MatmulConfig choose_matmul(const DeviceTraits& device) {
  MatmulConfig config = matmul_default;
  for (const auto& entry : matmul_table) {
    if ((entry.type == VK_PHYSICAL_DEVICE_TYPE_MAX_ENUM || entry.type == device.type) &&
        (entry.vendor_id == 0 || entry.vendor_id == device.vendor_id)) {
      config = entry.config;
      break;
    }
  }
  if (!matmul_tiles_fit(config.tiles, device)) config.tiles = matmul_fallback_tiles;
  config.subgroup_cols = std::clamp<std::uint32_t>(config.subgroup_cols, 1, matmul_subgroup_max_cols);
  if (config.preferred == "subgroup" && !matmul_subgroup_supported(device)) config.preferred = "tiled";
  return config;
}

// Text form used by $PORTA_VULKAN_MATMUL (an override for experiments and
// porta-vulkan-tuner): "tiled bm=64 bn=64 bk=16 tm=4 tn=4" or "subgroup cols=8"; it sets
// the parameters of the kernel it names (which kernel "auto" picks stays the table's),
// and keys left out keep the table's value.
inline std::string to_string(const MatmulTiles& t) {
  return "tiled bm=" + std::to_string(t.bm) + " bn=" + std::to_string(t.bn) + " bk=" + std::to_string(t.bk) +
         " tm=" + std::to_string(t.tm) + " tn=" + std::to_string(t.tn);
}

inline std::string subgroup_matmul_text(std::uint32_t cols) { return "subgroup cols=" + std::to_string(cols); }

// Applies a text form to `config`; returns why it cannot run on the device ("" when it can).
inline std::string apply_matmul_override(std::string_view text, const DeviceTraits& device, MatmulConfig& config) {
  std::istringstream in{std::string(text)};
  std::string kernel;
  in >> kernel;
  if (kernel != "tiled" && kernel != "subgroup") return "expected 'tiled ...' or 'subgroup ...'";
  std::string pair;
  while (in >> pair) {
    const auto eq = pair.find('=');
    if (eq == std::string::npos) return "expected key=value, got '" + pair + "'";
    const std::string key = pair.substr(0, eq), digits = pair.substr(eq + 1);
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) {
      return "expected a number in '" + pair + "'";
    }
    const auto value = static_cast<std::uint32_t>(std::stoul(digits));
    MatmulTiles& t = config.tiles;
    std::uint32_t* field = nullptr;
    if (kernel == "tiled") {
      field = key == "bm" ? &t.bm : key == "bn" ? &t.bn : key == "bk" ? &t.bk : key == "tm" ? &t.tm
            : key == "tn" ? &t.tn : nullptr;
    } else if (key == "cols") {
      field = &config.subgroup_cols;
    }
    if (field == nullptr) return "unknown key '" + key + "' for " + kernel;
    *field = value;
  }
  if (kernel == "tiled") return matmul_tiles_problem(config.tiles, device);
  if (!matmul_subgroup_supported(device)) return "the device cannot run the subgroup kernel";
  if (config.subgroup_cols < 1 || config.subgroup_cols > matmul_subgroup_max_cols) {
    return "cols must be 1.." + std::to_string(matmul_subgroup_max_cols);
  }
  return {};
}

// ---------------------------------------------------------------------------------------
// Attention. "tiled" (kernels/attention/vulkan_forward_tiled.comp) is the GPU forward:
// one work-group of forward_bq invocations per query block (one query row each), K/V
// tiles of forward_bk keys in shared memory. "subgroup" (vulkan_forward_subgroup.comp) is
// the CPU-device forward: one subgroup per work-group, subgroup_rows query rows per lane,
// K/V values shared through subgroupBroadcast. The backward (vulkan_delta/dkdv/dq.comp)
// stages tiles of backward_tile rows in shared memory, backward_block rows per work-group.
struct AttentionConfig {
  std::string_view preferred = "tiled";  // the forward "auto" picks: tiled or subgroup
  std::uint32_t forward_bq = 64, forward_bk = 32;
  std::uint32_t subgroup_rows = 2;  // 1..attention_subgroup_max_rows
  std::uint32_t backward_block = 64, backward_tile = 32;
};

inline constexpr std::uint32_t attention_max_d = 128;                // MAX_D in vulkan_attention.glsl
inline constexpr std::uint32_t attention_subgroup_max_lanes = 8;     // MAX_LANES in vulkan_forward_subgroup.comp
inline constexpr std::uint32_t attention_subgroup_max_rows = 4;      // MAX_ROWS there

struct AttentionTableEntry {
  std::string_view what;
  VkPhysicalDeviceType type;  // VK_PHYSICAL_DEVICE_TYPE_MAX_ENUM: any
  std::uint32_t vendor_id;    // 0: any
  AttentionConfig config;
};

// The CPU row was measured on lavapipe (Mesa 22.3, 2 threads): 4 rows per lane ran the
// N = 2048, d = 64 forward 1.6x faster than 2 and 4x faster than 1. The GPU rows are the
// usual one-row-per-invocation shapes (64-128 rows, 32-key tiles: 32 KiB of shared
// memory at d = 128) and are not measured here: tune them on the hardware.
inline constexpr std::array<AttentionTableEntry, 5> attention_table = {{
    {"CPU devices: lavapipe, SwiftShader", VK_PHYSICAL_DEVICE_TYPE_CPU, 0, {"subgroup", 64, 32, 4, 16, 32}},
    {"NVIDIA discrete", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 0x10DE, {"tiled", 64, 32, 2, 64, 32}},
    {"AMD discrete (wave64 on GCN)", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 0x1002, {"tiled", 64, 32, 2, 64, 32}},
    {"Mali: small register files", VK_PHYSICAL_DEVICE_TYPE_MAX_ENUM, 0x13B5, {"tiled", 32, 16, 2, 32, 16}},
    {"Adreno: small register files", VK_PHYSICAL_DEVICE_TYPE_MAX_ENUM, 0x5143, {"tiled", 32, 16, 2, 32, 16}},
}};
inline constexpr AttentionConfig attention_default{"tiled", 64, 32, 2, 64, 32};

// Whether vulkan_forward_subgroup.comp can run: broadcasts in compute shaders, and one
// subgroup of at most attention_subgroup_max_lanes lanes as the whole work-group.
inline bool attention_subgroup_supported(const DeviceTraits& device) {
  const VkSubgroupFeatureFlags needed = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_BALLOT_BIT;
  const std::uint32_t lanes = device.subgroup_size;
  return (device.subgroup_stages & VK_SHADER_STAGE_COMPUTE_BIT) != 0 &&
         (device.subgroup_operations & needed) == needed && lanes >= 1 && lanes <= attention_subgroup_max_lanes &&
         lanes <= device.max_invocations && lanes <= device.max_group_size_x;
}

// The largest power of two <= wanted (and >= 1) whose two tiles of `tile` rows x d floats
// (plus `extra` floats) fit the device's shared memory.
inline std::uint32_t attention_fit_tile(std::uint32_t wanted, std::uint32_t d, std::uint32_t extra,
                                        const DeviceTraits& device) {
  std::uint32_t tile = detail::power_of_two_at_most(4096, std::max<std::uint32_t>(wanted, 1));
  while (tile > 1 && 4ull * (2ull * tile * d + extra * tile) > device.shared_memory_bytes) tile /= 2;
  return tile;
}

inline AttentionConfig choose_attention(const DeviceTraits& device) {
  AttentionConfig config = attention_default;
  for (const auto& entry : attention_table) {
    if ((entry.type == VK_PHYSICAL_DEVICE_TYPE_MAX_ENUM || entry.type == device.type) &&
        (entry.vendor_id == 0 || entry.vendor_id == device.vendor_id)) {
      config = entry.config;
      break;
    }
  }
  const std::uint32_t group_limit = std::max<std::uint32_t>(1, std::min(device.max_invocations, device.max_group_size_x));
  config.forward_bq = detail::power_of_two_at_most(group_limit, config.forward_bq);
  config.backward_block = detail::power_of_two_at_most(group_limit, config.backward_block);
  config.subgroup_rows = std::clamp<std::uint32_t>(config.subgroup_rows, 1, attention_subgroup_max_rows);
  if (config.preferred == "subgroup" && !attention_subgroup_supported(device)) config.preferred = "tiled";
  return config;
}

}  // namespace porta::backend::vulkan

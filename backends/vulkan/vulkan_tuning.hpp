// vulkan_tuning.hpp — per-device launch parameters of the Vulkan kernels (work-group sizes,
// dispatch and batch limits), chosen from what the device reports; kept apart from the
// backend code so the table can grow (matmul tiles...) without touching it.
#pragma once

#include <vulkan/vulkan.h>

#include <algorithm>
#include <cstdint>

namespace porta::backend::vulkan {

// What the table looks at.
struct DeviceTraits {
  VkPhysicalDeviceType type = VK_PHYSICAL_DEVICE_TYPE_OTHER;
  std::uint32_t vendor_id = 0;
  std::uint32_t subgroup_size = 0;  // 0: not reported
  std::uint32_t max_invocations = 0;  // maxComputeWorkGroupInvocations
  std::uint32_t max_group_size_x = 0;  // maxComputeWorkGroupSize[0]
  std::uint32_t max_group_count_x = 0;  // maxComputeWorkGroupCount[0]
  std::uint32_t shared_memory_bytes = 0;  // maxComputeSharedMemorySize
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

}  // namespace porta::backend::vulkan

// device.hpp — devices: discovery, selection by name, properties and the device queue.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "porta/export.h"

namespace porta {

namespace backend {
class Device;
}

enum class BackendKind { cpu, opencl, vulkan };
PORTA_API std::string_view to_string(BackendKind backend);

enum class DeviceType { cpu, discrete_gpu, integrated_gpu, virtual_gpu, accelerator, other };
PORTA_API std::string_view to_string(DeviceType type);

struct PORTA_API DeviceInfo {
  BackendKind backend = BackendKind::cpu;
  int index = 0;  // position among the devices of this backend
  DeviceType type = DeviceType::other;
  std::string name;
  std::string vendor;
  std::string driver;                    // driver or runtime and its version
  std::uint64_t memory_bytes = 0;        // global memory
  std::uint64_t max_allocation_bytes = 0;  // the largest single tensor
  std::uint32_t compute_units = 0;
  std::uint32_t max_work_group_size = 0;
  std::uint32_t subgroup_size = 0;  // SIMD width / warp / wavefront; 0 = the API does not say
  bool fp16 = false;                // f16 and bf16 tensors can be stored and computed on

  std::string id() const;  // "cpu:0", "opencl:1", "vulkan:0"
};

// Allocation and compilation accounting, per device since it was opened.
struct DeviceStats {
  std::uint64_t bytes_allocated = 0;
  std::uint64_t peak_bytes_allocated = 0;   // since the last reset_peak()
  std::uint64_t programs_built = 0;         // kernels compiled from source in this process
  std::uint64_t programs_loaded_from_cache = 0;  // kernels taken from the on-disk cache
};

// A handle to one device; copies share it. Each device has one in-order queue: ops are
// enqueued and return at once; reading a tensor back to the host and synchronize() wait.
class PORTA_API Device {
 public:
  // "cpu", "cpu:1", "opencl", "opencl:0", "vulkan:1"; no index means index 0.
  static Device get(std::string_view name);
  // $PORTA_DEVICE if set, else the best device present (GPUs first), else the cpu.
  static Device default_device();

  const DeviceInfo& info() const;
  std::string id() const { return info().id(); }
  void synchronize() const;
  DeviceStats stats() const;
  void reset_peak() const;

  bool operator==(const Device& other) const { return impl_ == other.impl_; }
  explicit operator bool() const { return impl_ != nullptr; }

  // For porta's own front end; users have no use for it.
  backend::Device& impl() const { return *impl_; }
  explicit Device(std::shared_ptr<backend::Device> impl);

 private:
  std::shared_ptr<backend::Device> impl_;
};

// Every device of every backend built in, cpu first; a backend whose driver is missing
// contributes none (Device::get on it says why).
PORTA_API std::vector<Device> devices();

}  // namespace porta

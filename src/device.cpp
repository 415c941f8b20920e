// device.cpp — the device registry: discovery across backends, selection by name or
// $PORTA_DEVICE, the default device, and the porta::Device handle.
#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <mutex>

#include "backends/discover.hpp"
#include "porta/device.hpp"
#include "porta/error.hpp"

namespace porta {

std::string_view to_string(BackendKind backend) {
  switch (backend) {
    case BackendKind::cpu: return "cpu";
    case BackendKind::opencl: return "opencl";
    case BackendKind::vulkan: return "vulkan";
  }
  return "unknown";
}

std::string_view to_string(DeviceType type) {
  switch (type) {
    case DeviceType::cpu: return "cpu";
    case DeviceType::discrete_gpu: return "discrete gpu";
    case DeviceType::integrated_gpu: return "integrated gpu";
    case DeviceType::virtual_gpu: return "virtual gpu";
    case DeviceType::accelerator: return "accelerator";
    case DeviceType::other: return "other";
  }
  return "unknown";
}

std::string DeviceInfo::id() const { return std::string(to_string(backend)) + ":" + std::to_string(index); }

namespace {

struct BackendEntry {
  BackendKind kind;
  bool built;
  backend::Discovery (*discover)();
};

[[maybe_unused]] backend::Discovery not_built(std::string_view name) {
  return {{}, "porta was built without the " + std::string(name) + " backend (CMake option PORTA_" +
                  (name == "opencl" ? std::string("OPENCL") : std::string("VULKAN")) + ")"};
}

// Discovery runs once per process, on first use; devices live until the process ends.
struct Registry {
  std::vector<Device> devices;
  std::vector<std::pair<BackendKind, std::string>> unavailable;  // backend -> why it has no device

  Registry() {
    auto add = [&](BackendKind kind, backend::Discovery found) {
      for (auto& device : found.devices) {
        if (device->implemented_interface_version() != backend::interface_version) {
          throw Error(ErrorKind::backend_error, "porta: the " + std::string(to_string(kind)) +
                                                    " backend implements interface version " +
                                                    std::to_string(device->implemented_interface_version()) +
                                                    ", porta expects " + std::to_string(backend::interface_version));
        }
        devices.emplace_back(std::move(device));
      }
      if (found.devices.empty()) unavailable.emplace_back(kind, found.unavailable_reason);
    };
    add(BackendKind::cpu, backend::discover_cpu());
#ifdef PORTA_HAVE_OPENCL
    add(BackendKind::opencl, backend::discover_opencl());
#else
    add(BackendKind::opencl, not_built("opencl"));
#endif
#ifdef PORTA_HAVE_VULKAN
    add(BackendKind::vulkan, backend::discover_vulkan());
#else
    add(BackendKind::vulkan, not_built("vulkan"));
#endif
  }
};

// Never destroyed: at exit, the drivers' own statics and threads (Mesa's queues, the
// validation layer's tables) may already be gone, and a device closed then did hang in
// its last submit. The OS reclaims everything; nothing waits on a device at exit.
const Registry& registry() {
  static const Registry* instance = new Registry;
  return *instance;
}

// GPUs before accelerators before the cpu backend; PoCL and lavapipe, which run on
// the host cpu through an extra layer, come after porta's own cpu device.
int preference(const DeviceInfo& info) {
  switch (info.type) {
    case DeviceType::discrete_gpu: return 0;
    case DeviceType::integrated_gpu: return 1;
    case DeviceType::accelerator: return 2;
    case DeviceType::virtual_gpu: return 3;
    default: return info.backend == BackendKind::cpu ? 4 : 5;
  }
}

}  // namespace

Device::Device(std::shared_ptr<backend::Device> impl) : impl_(std::move(impl)) {}

const DeviceInfo& Device::info() const {
  if (!impl_) throw Error(ErrorKind::invalid_argument, "porta::Device: the device handle is empty");
  return impl_->info();
}
void Device::synchronize() const { impl_->synchronize(); }
DeviceStats Device::stats() const { return impl_->stats(); }
void Device::reset_peak() const { impl_->reset_peak(); }

std::vector<Device> devices() { return registry().devices; }

Device Device::get(std::string_view name) {
  const std::string given(name);
  auto colon = name.find(':');
  std::string_view backend_name = name.substr(0, colon);
  int index = 0;
  if (colon != std::string_view::npos) {
    std::string_view digits = name.substr(colon + 1);
    auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() || index < 0) {
      throw Error(ErrorKind::invalid_argument, "porta::Device::get: argument name: expected '<backend>[:<index>]' "
                                               "with a non-negative index, got '" + given + "'");
    }
  }
  std::optional<BackendKind> kind;
  for (BackendKind candidate : {BackendKind::cpu, BackendKind::opencl, BackendKind::vulkan}) {
    if (backend_name == to_string(candidate)) kind = candidate;
  }
  if (!kind) {
    throw Error(ErrorKind::invalid_argument, "porta::Device::get: argument name: unknown backend '" +
                                                 std::string(backend_name) + "' in '" + given +
                                                 "'; expected cpu, opencl or vulkan");
  }
  const Registry& found = registry();
  int count = 0;
  for (const Device& device : found.devices) {
    if (device.info().backend != *kind) continue;
    if (device.info().index == index) return device;
    ++count;
  }
  if (count == 0) {
    std::string why = "no device found";
    for (const auto& [backend, reason] : found.unavailable) {
      if (backend == *kind) why = reason;
    }
    throw Error(ErrorKind::unsupported,
                "porta::Device::get: argument name: '" + given + "': the " + std::string(backend_name) +
                    " backend has no device: " + why);
  }
  throw Error(ErrorKind::invalid_argument, "porta::Device::get: argument name: '" + given + "': the " +
                                               std::string(backend_name) + " backend has " + std::to_string(count) +
                                               " device(s), indices 0 to " + std::to_string(count - 1));
}

Device Device::default_device() {
  if (const char* chosen = std::getenv("PORTA_DEVICE"); chosen != nullptr && *chosen != '\0') {
    return get(chosen);
  }
  const auto& all = registry().devices;
  return *std::min_element(all.begin(), all.end(), [](const Device& a, const Device& b) {
    return preference(a.info()) < preference(b.info());
  });
}

}  // namespace porta

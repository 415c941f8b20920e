// porta_info.cpp — porta-info: the table of every device porta finds, and why a backend
// has none.
#include <cstdio>
#include <string>

#include "porta/porta.hpp"

namespace {

std::string gib(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f GiB", static_cast<double>(bytes) / (1u << 30));
  return text;
}

std::string or_dash(std::uint32_t value) { return value == 0 ? "-" : std::to_string(value); }

}  // namespace

int main() {
  try {
    std::printf("porta %s\n\n", PORTA_VERSION_STRING);
    std::printf("%-9s %-15s %-44s %-12s %-10s %-10s %4s %6s %4s %4s  %s\n", "device", "type", "name", "vendor", "memory",
                "max alloc", "CUs", "max wg", "sg", "fp16", "driver");
    for (const porta::Device& device : porta::devices()) {
      const porta::DeviceInfo& info = device.info();
      std::printf("%-9s %-15s %-44.44s %-12.12s %-10s %-10s %4s %6s %4s %4s  %s\n", info.id().c_str(),
                  std::string(porta::to_string(info.type)).c_str(), info.name.c_str(), info.vendor.c_str(),
                  gib(info.memory_bytes).c_str(), gib(info.max_allocation_bytes).c_str(),
                  or_dash(info.compute_units).c_str(), or_dash(info.max_work_group_size).c_str(),
                  or_dash(info.subgroup_size).c_str(), info.fp16 ? "yes" : "no", info.driver.c_str());
    }
    for (std::string_view backend : {"opencl", "vulkan"}) {
      try {
        porta::Device::get(backend);
      } catch (const porta::Error& error) {
        std::printf("\n%s: %s\n", std::string(backend).c_str(), error.what());
      }
    }
    std::printf("\ndefault device: %s\n", porta::Device::default_device().id().c_str());
    return 0;
  } catch (const porta::Error& error) {
    std::fprintf(stderr, "porta-info: %s\n", error.what());
    return 1;
  }
}

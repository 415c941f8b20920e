// device_accounting.cpp — allocation and compilation counters shared by every backend.
#include "backends/backend.hpp"

namespace porta::backend {

DeviceStats Device::stats() const {
  DeviceStats stats;
  stats.bytes_allocated = bytes_allocated_.load();
  stats.peak_bytes_allocated = peak_bytes_allocated_.load();
  stats.programs_built = programs_built_.load();
  stats.programs_loaded_from_cache = programs_loaded_from_cache_.load();
  return stats;
}

void Device::reset_peak() { peak_bytes_allocated_.store(bytes_allocated_.load()); }

void Device::count_allocation(std::uint64_t bytes) {
  std::uint64_t now = bytes_allocated_.fetch_add(bytes) + bytes;
  std::uint64_t peak = peak_bytes_allocated_.load();
  while (now > peak && !peak_bytes_allocated_.compare_exchange_weak(peak, now)) {
  }
}

void Device::count_free(std::uint64_t bytes) { bytes_allocated_.fetch_sub(bytes); }

}  // namespace porta::backend

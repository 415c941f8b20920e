// device_accounting.cpp — what every backend shares: allocation and compilation
// counters, and the answer of an optional entry a backend does not implement.
#include "backends/backend.hpp"
#include "porta/error.hpp"

namespace porta::backend {

namespace {
[[noreturn]] void not_offered(const Device& device, const char* entry) {
  throw Error(ErrorKind::unsupported, "porta: " + device.info().id() + " has no " + entry + " kernel yet");
}
}  // namespace

void Device::attention_forward(const Buffer&, const Buffer&, const Buffer&, Buffer&, Buffer&,
                               const kernels::AttentionParams&, std::string_view) {
  not_offered(*this, "attention");
}
void Device::attention_backward(const Buffer&, const Buffer&, const Buffer&, const Buffer&, const Buffer&,
                                const Buffer&, Buffer&, Buffer&, Buffer&, const kernels::AttentionParams&,
                                std::string_view) {
  not_offered(*this, "attention");
}
void Device::softmax_rows(const Buffer&, Buffer&, Buffer&, const kernels::SoftmaxParams&) {
  not_offered(*this, "softmax");
}

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

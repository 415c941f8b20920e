// backend.hpp — the interface every backend implements (cpu, opencl, vulkan): device
// discovery, memory, the in-order queue and one entry per op family.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attention/params.h"
#include "copy_cast/params.h"
#include "elementwise/params.h"
#include "fill/params.h"
#include "matmul/params.h"
#include "porta/device.hpp"
#include "porta/dtype.hpp"
#include "random/params.h"
#include "reduce/params.h"
#include "softmax/params.h"

namespace porta::backend {

// Bumped when an entry below changes meaning; each backend states the version it implements.
inline constexpr int interface_version = 4;  // 4: host_pointer()

enum class Op { fill, copy_cast, elementwise, random, reduce_sum, matmul, attention, softmax_rows };

// A device allocation. Destroying the last reference frees it; backends keep buffers
// that queued work still uses alive until that work completes.
class Buffer {
 public:
  explicit Buffer(std::uint64_t bytes) : bytes_(bytes) {}
  virtual ~Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  std::uint64_t bytes() const { return bytes_; }

 private:
  std::uint64_t bytes_;
};

// One device of one backend. Ops are enqueued in order; write() returns once `source`
// may be reused; read() and synchronize() wait for everything enqueued before them.
// Every failure throws porta::Error; nothing here calls exit or abort.
class Device {
 public:
  virtual ~Device() = default;

  virtual int implemented_interface_version() const = 0;
  virtual const DeviceInfo& info() const = 0;

  // bytes > 0; bytes beyond info().max_allocation_bytes throw ErrorKind::out_of_memory.
  virtual std::shared_ptr<Buffer> allocate(std::uint64_t bytes) = 0;
  virtual void write(Buffer& buffer, std::uint64_t offset, const void* source, std::uint64_t bytes) = 0;
  virtual void read(const Buffer& buffer, std::uint64_t offset, void* destination, std::uint64_t bytes) = 0;
  virtual void synchronize() = 0;
  // Optional: the host address of the buffer's first byte when the device keeps it in
  // host memory the host may read and write directly once synchronize() returned; null
  // otherwise. Collectives read peers' buffers through it instead of copying them.
  virtual void* host_pointer(const Buffer&) const { return nullptr; }

  // Why this device cannot run `op` on `dtype`, or nothing when it can.
  virtual std::optional<std::string> declines(Op op, DType dtype) const = 0;

  // Kernels; every offset and count in the params is in elements.
  virtual void fill(Buffer& out, const kernels::FillParams& params) = 0;
  virtual void copy_cast(const Buffer& in, Buffer& out, const kernels::CopyCastParams& params) = 0;
  virtual void elementwise(const Buffer& a, const Buffer& b, Buffer& out, const kernels::ElementwiseParams& params) = 0;
  virtual void random(Buffer& out, const kernels::RandomParams& params) = 0;
  virtual void reduce_sum(const Buffer& in, Buffer& out, const kernels::ReduceParams& params) = 0;

  // Matmul implementations by name, the device's preferred first; "naive" is always
  // there (the simple reference version kept beside the fast ones).
  virtual std::vector<std::string> matmul_kernels() const = 0;
  // `kernel` is one of matmul_kernels(); bias is null when params.has_bias == 0.
  virtual void matmul(const Buffer& a, const Buffer& b, const Buffer* bias, Buffer& c,
                      const kernels::MatmulParams& params, std::string_view kernel) = 0;

  // Fused attention (kernels/attention/params.h) by implementation name, preferred first.
  // Optional entries: a backend without them offers no attention kernel (and no
  // softmax_rows), and the front end reports that as ErrorKind::unsupported.
  virtual std::vector<std::string> attention_kernels() const { return {}; }
  virtual void attention_forward(const Buffer& q, const Buffer& k, const Buffer& v, Buffer& o, Buffer& lse,
                                 const kernels::AttentionParams& params, std::string_view kernel);
  virtual void attention_backward(const Buffer& q, const Buffer& k, const Buffer& v, const Buffer& o,
                                  const Buffer& lse, const Buffer& grad_o, Buffer& dq, Buffer& dk, Buffer& dv,
                                  const kernels::AttentionParams& params, std::string_view kernel);
  // Masked, scaled row softmax with log-sum-exp: the middle step of unfused attention.
  virtual bool has_softmax_rows() const { return false; }
  virtual void softmax_rows(const Buffer& in, Buffer& out, Buffer& lse, const kernels::SoftmaxParams& params);

  // Accounting shared by all backends.
  DeviceStats stats() const;
  void reset_peak();

 protected:
  void count_allocation(std::uint64_t bytes);
  void count_free(std::uint64_t bytes);
  void count_program_built() { ++programs_built_; }
  void count_program_loaded_from_cache() { ++programs_loaded_from_cache_; }

 private:
  std::atomic<std::uint64_t> bytes_allocated_{0};
  std::atomic<std::uint64_t> peak_bytes_allocated_{0};
  std::atomic<std::uint64_t> programs_built_{0};
  std::atomic<std::uint64_t> programs_loaded_from_cache_{0};
};

// What a backend found: its devices, or why it has none (no driver, no platform...).
struct Discovery {
  std::vector<std::shared_ptr<Device>> devices;
  std::string unavailable_reason;
};

}  // namespace porta::backend

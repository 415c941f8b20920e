// cpu_device.cpp — the cpu backend: host memory and a oneTBB task_arena per device.
// $PORTA_CPU_THREADS sets the arena's threads (default: all cores); $PORTA_CPU_DEVICES=N
// exposes N virtual devices with separate memory, for multi-rank tests on one machine.
#include <sys/mman.h>
#include <tbb/task_arena.h>
#include <tbb/version.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <string>
#include <thread>

#include "backends/discover.hpp"
#include "common/cpu_isa.hpp"
#include "common/cpu_kernels.hpp"
#include "porta/error.hpp"

namespace porta::backend {

namespace {

int positive_env(const char* name, int fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < 1 || value > 4096) {
    throw Error(ErrorKind::invalid_argument,
                std::string("porta cpu backend: environment variable ") + name + ": expected a positive integer, got '" +
                    text + "'");
  }
  return static_cast<int>(value);
}

std::string cpu_model_name() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "host cpu";
}

std::string cpu_vendor() {
  __builtin_cpu_init();
  if (__builtin_cpu_is("intel")) return "Intel";
  if (__builtin_cpu_is("amd")) return "AMD";
  return "unknown";
}

std::uint32_t simd_floats() {
  switch (kernels::cpu::cpu_isa()) {
    case kernels::cpu::CpuIsa::avx512: return 16;
    case kernels::cpu::CpuIsa::avx2: return 8;
    case kernels::cpu::CpuIsa::portable: break;
  }
  return 4;
}

class CpuBuffer final : public Buffer {
 public:
  CpuBuffer(std::uint64_t bytes, void* data, std::size_t alignment, std::function<void(std::uint64_t)> on_free)
      : Buffer(bytes), data_(data), alignment_(alignment), on_free_(std::move(on_free)) {}
  ~CpuBuffer() override {
    ::operator delete(data_, std::align_val_t(alignment_));
    on_free_(bytes());
  }
  void* data() const { return data_; }

 private:
  void* data_;
  std::size_t alignment_;
  std::function<void(std::uint64_t)> on_free_;
};

// Buffers of two huge pages and more start on one and ask the kernel for them (transparent
// huge pages in "madvise" mode, as on this project's machines, or "always"): a matmul that
// packs A^T reads one row per step of k, each row on its own 4 KiB page otherwise, a TLB
// miss each. On a 2-core Xeon (family 6 model 207), porta-ab against 4 KiB pages, 12-16
// rounds: 4096x768x3072 tn 1.026-1.042, 2048^3 tt 1.023, 1024^3 tt 1.028 (tn 0.987-1.008),
// 4096x2304x768 tt 1.014, 2048^3 tn 1.006, nn 1.005, 4096^3 nt 0.999. The advice may be
// refused: the pages stay 4 KiB.
constexpr std::size_t huge_page_bytes = std::size_t(2) << 20;

void* data_of(const Buffer& buffer) { return static_cast<const CpuBuffer&>(buffer).data(); }

class CpuDevice final : public Device, public std::enable_shared_from_this<CpuDevice> {
 public:
  CpuDevice(int index, int threads) : arena_(threads) {
    info_.backend = BackendKind::cpu;
    info_.index = index;
    info_.type = DeviceType::cpu;
    info_.name = cpu_model_name();
    info_.vendor = cpu_vendor();
    info_.driver = "porta cpu, oneTBB " + std::to_string(TBB_VERSION_MAJOR) + "." + std::to_string(TBB_VERSION_MINOR) +
                   ", " + std::to_string(threads) + " threads, " + kernels::cpu::cpu_isa_name(kernels::cpu::cpu_isa());
    info_.memory_bytes = static_cast<std::uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
    info_.max_allocation_bytes = info_.memory_bytes;
    info_.compute_units = static_cast<std::uint32_t>(threads);
    info_.max_work_group_size = 1;
    info_.subgroup_size = simd_floats();
    info_.fp16 = true;
  }

  int implemented_interface_version() const override { return interface_version; }
  const DeviceInfo& info() const override { return info_; }

  std::shared_ptr<Buffer> allocate(std::uint64_t bytes) override {
    if (bytes > info_.max_allocation_bytes) {
      throw Error(ErrorKind::out_of_memory, "porta: allocation on " + info_.id() + ": " + std::to_string(bytes) +
                                                " bytes requested, the device allows at most " +
                                                std::to_string(info_.max_allocation_bytes));
    }
    const std::size_t alignment = bytes >= 2 * huge_page_bytes ? huge_page_bytes : 64;
    void* data = ::operator new(bytes, std::align_val_t(alignment), std::nothrow);
    if (data == nullptr) {
      throw Error(ErrorKind::out_of_memory,
                  "porta: allocation on " + info_.id() + ": " + std::to_string(bytes) + " bytes: host memory exhausted");
    }
    if (alignment == huge_page_bytes) madvise(data, bytes / huge_page_bytes * huge_page_bytes, MADV_HUGEPAGE);
    count_allocation(bytes);
    std::weak_ptr<CpuDevice> self = weak_from_this();
    return std::make_shared<CpuBuffer>(bytes, data, alignment, [self](std::uint64_t freed) {
      if (auto device = self.lock()) device->count_free(freed);
    });
  }

  void write(Buffer& buffer, std::uint64_t offset, const void* source, std::uint64_t bytes) override {
    std::memcpy(static_cast<char*>(data_of(buffer)) + offset, source, bytes);
  }
  void read(const Buffer& buffer, std::uint64_t offset, void* destination, std::uint64_t bytes) override {
    std::memcpy(destination, static_cast<const char*>(data_of(buffer)) + offset, bytes);
  }
  // Kernels run to completion inside the arena when enqueued: the queue is always empty.
  void synchronize() override {}
  void* host_pointer(const Buffer& buffer) const override { return data_of(buffer); }

  std::optional<std::string> declines(Op, DType) const override { return std::nullopt; }

  void fill(Buffer& out, const kernels::FillParams& params) override {
    arena_.execute([&] { kernels::cpu::fill(data_of(out), params); });
  }
  void copy_cast(const Buffer& in, Buffer& out, const kernels::CopyCastParams& params) override {
    arena_.execute([&] { kernels::cpu::copy_cast(data_of(in), data_of(out), params); });
  }
  void elementwise(const Buffer& a, const Buffer& b, Buffer& out, const kernels::ElementwiseParams& params) override {
    arena_.execute([&] { kernels::cpu::elementwise(data_of(a), data_of(b), data_of(out), params); });
  }
  void random(Buffer& out, const kernels::RandomParams& params) override {
    arena_.execute([&] { kernels::cpu::random(data_of(out), params); });
  }
  void reduce_sum(const Buffer& in, Buffer& out, const kernels::ReduceParams& params) override {
    arena_.execute([&] { kernels::cpu::reduce_sum(data_of(in), data_of(out), params); });
  }

  std::vector<std::string> attention_kernels() const override { return {"flash"}; }
  void attention_forward(const Buffer& q, const Buffer& k, const Buffer& v, Buffer& o, Buffer& lse,
                         const kernels::AttentionParams& params, std::string_view) override {
    ScratchAccount scratch(*this, kernels::cpu::attention_scratch_bytes(params, false, threads()));
    arena_.execute([&] { kernels::cpu::attention_forward(data_of(q), data_of(k), data_of(v), data_of(o), data_of(lse), params); });
  }
  void attention_backward(const Buffer& q, const Buffer& k, const Buffer& v, const Buffer& o, const Buffer& lse,
                          const Buffer& grad_o, Buffer& dq, Buffer& dk, Buffer& dv, const kernels::AttentionParams& params,
                          std::string_view) override {
    ScratchAccount scratch(*this, kernels::cpu::attention_scratch_bytes(params, true, threads()));
    arena_.execute([&] {
      kernels::cpu::attention_backward(data_of(q), data_of(k), data_of(v), data_of(o), data_of(lse), data_of(grad_o),
                                       data_of(dq), data_of(dk), data_of(dv), params);
    });
  }
  bool has_softmax_rows() const override { return true; }
  void softmax_rows(const Buffer& in, Buffer& out, Buffer& lse, const kernels::SoftmaxParams& params) override {
    arena_.execute([&] { kernels::cpu::softmax_rows(data_of(in), data_of(out), data_of(lse), params); });
  }

  std::vector<std::string> matmul_kernels() const override { return {"packed", "naive"}; }
  void matmul(const Buffer& a, const Buffer& b, const Buffer* bias, Buffer& c, const kernels::MatmulParams& params,
              std::string_view kernel) override {
    const void* bias_data = bias != nullptr ? data_of(*bias) : nullptr;
    arena_.execute([&] {
      if (kernel == "naive") {
        kernels::cpu::matmul_naive(data_of(a), data_of(b), bias_data, data_of(c), params);
      } else {
        kernels::cpu::matmul_packed(data_of(a), data_of(b), bias_data, data_of(c), params);
      }
    });
  }

 private:
  // Kernel working memory on the host heap, counted like tensors while the kernel runs.
  struct ScratchAccount {
    ScratchAccount(CpuDevice& device, std::uint64_t bytes) : device_(device), bytes_(bytes) {
      device_.count_allocation(bytes_);
    }
    ~ScratchAccount() { device_.count_free(bytes_); }
    ScratchAccount(const ScratchAccount&) = delete;
    ScratchAccount& operator=(const ScratchAccount&) = delete;
    CpuDevice& device_;
    std::uint64_t bytes_;
  };
  std::size_t threads() { return static_cast<std::size_t>(arena_.max_concurrency()); }

  DeviceInfo info_;
  tbb::task_arena arena_;
};

}  // namespace

Discovery discover_cpu() {
  int threads = positive_env("PORTA_CPU_THREADS", static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  int count = positive_env("PORTA_CPU_DEVICES", 1);
  Discovery found;
  for (int index = 0; index < count; ++index) found.devices.push_back(std::make_shared<CpuDevice>(index, threads));
  return found;
}

}  // namespace porta::backend

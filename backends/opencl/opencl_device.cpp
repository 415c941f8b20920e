// opencl_device.cpp — the OpenCL backend: every device of every ICD platform, one in-order
// queue each, one program per op file cached in memory and on disk.
#include <CL/cl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/discover.hpp"
#include "backends/disk_cache.hpp"
#include "backends/opencl/opencl_config.hpp"
#include "backends/opencl/opencl_errors.hpp"
#include "porta/error.hpp"

namespace porta::embedded {
std::span<const unsigned char> opencl_source(std::string_view name);
}

namespace porta::backend {

namespace {

using opencl::check;
using opencl::describe;

// Vendor queries for the SIMD width (cl_nv_device_attribute_query, cl_amd_device_attribute_query).
constexpr cl_device_info device_warp_size_nv = 0x4003;
constexpr cl_device_info device_wavefront_width_amd = 0x4043;

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\0' || text.back() == ' ')) text.pop_back();
  return text;
}

std::string platform_string(cl_platform_id platform, cl_platform_info what) {
  std::size_t size = 0;
  if (clGetPlatformInfo(platform, what, 0, nullptr, &size) != CL_SUCCESS || size == 0) return {};
  std::string text(size, '\0');
  if (clGetPlatformInfo(platform, what, size, text.data(), nullptr) != CL_SUCCESS) return {};
  return trimmed(std::move(text));
}

std::string device_string(cl_device_id device, cl_device_info what) {
  std::size_t size = 0;
  if (clGetDeviceInfo(device, what, 0, nullptr, &size) != CL_SUCCESS || size == 0) return {};
  std::string text(size, '\0');
  if (clGetDeviceInfo(device, what, size, text.data(), nullptr) != CL_SUCCESS) return {};
  return trimmed(std::move(text));
}

// A scalar device property; `fallback` when the runtime does not answer.
template <class T>
T device_value(cl_device_id device, cl_device_info what, T fallback = T{}) {
  T value{};
  if (clGetDeviceInfo(device, what, sizeof value, &value, nullptr) != CL_SUCCESS) return fallback;
  return value;
}

bool has_extension(const std::string& extensions, std::string_view name) {
  std::size_t at = 0;
  while ((at = extensions.find(name, at)) != std::string::npos) {
    std::size_t end = at + name.size();
    bool starts = at == 0 || extensions[at - 1] == ' ';
    bool ends = end == extensions.size() || extensions[end] == ' ';
    if (starts && ends) return true;
    at = end;
  }
  return false;
}

std::size_t round_up(std::size_t value, std::size_t multiple) { return (value + multiple - 1) / multiple * multiple; }

std::size_t power_of_two_at_least(std::size_t value) {
  std::size_t result = 1;
  while (result < value) result *= 2;
  return result;
}

std::size_t power_of_two_at_most(std::size_t value) {
  std::size_t result = 1;
  while (result * 2 <= value) result *= 2;
  return result;
}

// "-cl-std=CL1.2" plus $PORTA_OPENCL_OPTIONS, read at every build (a knob for experiments).
std::string build_options() {
  std::string options = "-cl-std=CL1.2";
  if (const char* extra = std::getenv("PORTA_OPENCL_OPTIONS"); extra != nullptr && *extra != '\0') {
    options += ' ';
    options += extra;
  }
  return options;
}

// Cached binaries travel in an envelope (magic, size, hash of the payload): some runtimes
// crash on a truncated or damaged binary instead of rejecting it, so we check first.
constexpr std::string_view cache_magic = "PORTACL1";

std::uint64_t payload_hash(const unsigned char* data, std::size_t size) {
  return stable_hash({std::string_view(reinterpret_cast<const char*>(data), size)});
}

std::vector<unsigned char> wrap_for_cache(const std::vector<unsigned char>& binary) {
  if (binary.empty()) return {};
  const std::uint64_t header[2] = {binary.size(), payload_hash(binary.data(), binary.size())};
  std::vector<unsigned char> stored(cache_magic.size() + sizeof header + binary.size());
  std::memcpy(stored.data(), cache_magic.data(), cache_magic.size());
  std::memcpy(stored.data() + cache_magic.size(), header, sizeof header);
  std::memcpy(stored.data() + cache_magic.size() + sizeof header, binary.data(), binary.size());
  return stored;
}

std::optional<std::vector<unsigned char>> unwrap_cached(const std::optional<std::vector<unsigned char>>& stored) {
  constexpr std::size_t header_size = cache_magic.size() + 2 * sizeof(std::uint64_t);
  if (!stored || stored->size() <= header_size) return std::nullopt;
  if (!std::equal(cache_magic.begin(), cache_magic.end(), stored->begin())) return std::nullopt;
  std::uint64_t header[2];
  std::memcpy(header, stored->data() + cache_magic.size(), sizeof header);
  const unsigned char* payload = stored->data() + header_size;
  const std::size_t size = stored->size() - header_size;
  if (header[0] != size || header[1] != payload_hash(payload, size)) return std::nullopt;
  return std::vector<unsigned char>(payload, payload + size);
}

class OpenclBuffer final : public Buffer {
 public:
  OpenclBuffer(std::uint64_t bytes, cl_mem memory, std::function<void(std::uint64_t)> on_free)
      : Buffer(bytes), memory_(memory), on_free_(std::move(on_free)) {}
  // OpenCL defers the actual release until queued commands that use the memory finish.
  ~OpenclBuffer() override {
    clReleaseMemObject(memory_);
    on_free_(bytes());
  }
  cl_mem memory() const { return memory_; }

 private:
  cl_mem memory_;
  std::function<void(std::uint64_t)> on_free_;
};

cl_mem memory_of(const Buffer& buffer) { return static_cast<const OpenclBuffer&>(buffer).memory(); }

// One built program and its kernels by name.
struct Program {
  cl_program program = nullptr;
  std::map<std::string, cl_kernel, std::less<>> kernels;
};

void release(Program& program) {
  for (auto& [name, kernel] : program.kernels) clReleaseKernel(kernel);
  program.kernels.clear();
  if (program.program != nullptr) clReleaseProgram(program.program);
  program.program = nullptr;
}

class OpenclDevice final : public Device, public std::enable_shared_from_this<OpenclDevice> {
 public:
  OpenclDevice(int index, cl_platform_id platform, cl_device_id device) : device_(device) {
    const std::string platform_name = platform_string(platform, CL_PLATFORM_NAME);
    const std::string platform_version = platform_string(platform, CL_PLATFORM_VERSION);
    driver_version_ = device_string(device, CL_DRIVER_VERSION);
    platform_identity_ = platform_name + ' ' + platform_version;

    const auto type = device_value<cl_device_type>(device, CL_DEVICE_TYPE);
    config_ = opencl::kernel_config(type);
    info_.backend = BackendKind::opencl;
    info_.index = index;
    if ((type & CL_DEVICE_TYPE_GPU) != 0) {
      info_.type = device_value<cl_bool>(device, CL_DEVICE_HOST_UNIFIED_MEMORY) ? DeviceType::integrated_gpu
                                                                                  : DeviceType::discrete_gpu;
    } else if ((type & CL_DEVICE_TYPE_CPU) != 0) {
      info_.type = DeviceType::cpu;
    } else if ((type & CL_DEVICE_TYPE_ACCELERATOR) != 0) {
      info_.type = DeviceType::accelerator;
    } else {
      info_.type = DeviceType::other;
    }
    info_.name = device_string(device, CL_DEVICE_NAME);
    info_.vendor = device_string(device, CL_DEVICE_VENDOR);
    info_.driver = platform_name + ' ' + platform_version + ", driver " + driver_version_;
    info_.memory_bytes = device_value<cl_ulong>(device, CL_DEVICE_GLOBAL_MEM_SIZE);
    info_.max_allocation_bytes = device_value<cl_ulong>(device, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
    info_.compute_units = device_value<cl_uint>(device, CL_DEVICE_MAX_COMPUTE_UNITS);
    max_work_group_size_ = std::max<std::size_t>(1, device_value<std::size_t>(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, 1));
    std::size_t item_sizes[3] = {max_work_group_size_, 1, 1};
    if (clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof item_sizes, item_sizes, nullptr) == CL_SUCCESS) {
      max_work_group_size_ = std::max<std::size_t>(1, std::min(max_work_group_size_, item_sizes[0]));
      max_work_items_y_ = std::max<std::size_t>(1, item_sizes[1]);
    }
    info_.max_work_group_size = static_cast<std::uint32_t>(std::min<std::size_t>(max_work_group_size_, UINT32_MAX));
    const std::string extensions = device_string(device, CL_DEVICE_EXTENSIONS);
    if (has_extension(extensions, "cl_nv_device_attribute_query")) {
      info_.subgroup_size = device_value<cl_uint>(device, device_warp_size_nv);
    } else if (has_extension(extensions, "cl_amd_device_attribute_query")) {
      info_.subgroup_size = device_value<cl_uint>(device, device_wavefront_width_amd);
    }
    // Storage-only 16-bit types with f32 math: any OpenCL 1.2 device can do it.
    info_.fp16 = true;
    matmul_config_ = opencl::matmul_config(type, info_.vendor, info_.name);
    attention_config_ = opencl::attention_config(type, info_.vendor, info_.name);
    if (const char* text = std::getenv("PORTA_OPENCL_ATTENTION"); text != nullptr && *text != '\0') {
      attention_config_ = opencl::apply_attention_override(text, attention_config_);
    }
    local_memory_bytes_ = device_value<cl_ulong>(device, CL_DEVICE_LOCAL_MEM_SIZE);

    cl_int status = CL_SUCCESS;
    context_ = clCreateContext(nullptr, 1, &device_, nullptr, nullptr, &status);
    check(status, "clCreateContext", info_.id());
    queue_ = clCreateCommandQueue(context_, device_, 0, &status);
    if (status != CL_SUCCESS) {
      clReleaseContext(context_);
      check(status, "clCreateCommandQueue", info_.id());
    }
  }

  ~OpenclDevice() override {
    clFinish(queue_);
    for (cl_mem scratch : {pack_a_.memory, pack_b_.memory}) {
      if (scratch != nullptr) clReleaseMemObject(scratch);
    }
    for (auto& [key, program] : programs_) release(program);
    clReleaseCommandQueue(queue_);
    clReleaseContext(context_);
  }

  OpenclDevice(const OpenclDevice&) = delete;
  OpenclDevice& operator=(const OpenclDevice&) = delete;

  int implemented_interface_version() const override { return interface_version; }
  const DeviceInfo& info() const override { return info_; }

  std::shared_ptr<Buffer> allocate(std::uint64_t bytes) override {
    if (bytes > info_.max_allocation_bytes) {
      throw Error(ErrorKind::out_of_memory, "porta: allocation on " + info_.id() + ": " + std::to_string(bytes) +
                                                " bytes requested, the device allows at most " +
                                                std::to_string(info_.max_allocation_bytes));
    }
    cl_int status = CL_SUCCESS;
    cl_mem memory = clCreateBuffer(context_, CL_MEM_READ_WRITE, static_cast<std::size_t>(bytes), nullptr, &status);
    if (status == CL_OUT_OF_RESOURCES) status = CL_MEM_OBJECT_ALLOCATION_FAILURE;
    if (status != CL_SUCCESS) {
      throw Error(opencl::error_kind(status), "porta: allocation on " + info_.id() + ": " + std::to_string(bytes) +
                                                  " bytes: clCreateBuffer failed: " + describe(status));
    }
    count_allocation(bytes);
    std::weak_ptr<OpenclDevice> self = weak_from_this();
    return std::make_shared<OpenclBuffer>(bytes, memory, [self](std::uint64_t freed) {
      if (auto device = self.lock()) device->count_free(freed);
    });
  }

  void write(Buffer& buffer, std::uint64_t offset, const void* source, std::uint64_t bytes) override {
    if (bytes == 0) return;
    check(clEnqueueWriteBuffer(queue_, memory_of(buffer), CL_TRUE, static_cast<std::size_t>(offset),
                               static_cast<std::size_t>(bytes), source, 0, nullptr, nullptr),
          "clEnqueueWriteBuffer", info_.id());
  }

  void read(const Buffer& buffer, std::uint64_t offset, void* destination, std::uint64_t bytes) override {
    if (bytes == 0) return;
    check(clEnqueueReadBuffer(queue_, memory_of(buffer), CL_TRUE, static_cast<std::size_t>(offset),
                              static_cast<std::size_t>(bytes), destination, 0, nullptr, nullptr),
          "clEnqueueReadBuffer", info_.id());
  }

  void synchronize() override { check(clFinish(queue_), "clFinish", info_.id()); }

  std::optional<std::string> declines(Op, DType) const override { return std::nullopt; }

  void fill(Buffer& out, const kernels::FillParams& params) override {
    std::lock_guard lock(mutex_);
    cl_kernel kernel = kernel_for("fill", "porta_fill");
    set_buffers(kernel, {memory_of(out)});
    set_params(kernel, 1, params);
    launch_1d(kernel, params.count, local_size(kernel, config_.fill_local));
  }

  void copy_cast(const Buffer& in, Buffer& out, const kernels::CopyCastParams& params) override {
    kernels::CopyCastParams p = collapsed(params);
    std::lock_guard lock(mutex_);
    const std::size_t inner = p.rank == 0 ? 1 : p.shape[p.rank - 1];
    if (p.rank >= 2 && inner >= config_.copy_rows_min_inner) {
      cl_kernel kernel = kernel_for("copy_cast", "porta_copy_cast_rows");
      set_buffers(kernel, {memory_of(in), memory_of(out)});
      set_params(kernel, 2, p);
      launch_rows(kernel, inner, p.count / inner);
    } else {
      cl_kernel kernel = kernel_for("copy_cast", "porta_copy_cast");
      set_buffers(kernel, {memory_of(in), memory_of(out)});
      set_params(kernel, 2, p);
      launch_1d(kernel, p.count, local_size(kernel, config_.copy_local));
    }
  }

  void elementwise(const Buffer& a, const Buffer& b, Buffer& out, const kernels::ElementwiseParams& params) override {
    std::lock_guard lock(mutex_);
    cl_kernel kernel = kernel_for("elementwise", "porta_elementwise");
    set_buffers(kernel, {memory_of(a), memory_of(b), memory_of(out)});
    set_params(kernel, 3, params);
    launch_1d(kernel, params.count, local_size(kernel, config_.elementwise_local));
  }

  void random(Buffer& out, const kernels::RandomParams& params) override {
    std::lock_guard lock(mutex_);
    cl_kernel kernel = kernel_for("random", "porta_random");
    set_buffers(kernel, {memory_of(out)});
    set_params(kernel, 1, params);
    launch_1d(kernel, params.count, local_size(kernel, config_.random_local));
  }

  void reduce_sum(const Buffer& in, Buffer& out, const kernels::ReduceParams& params) override {
    std::lock_guard lock(mutex_);
    const std::size_t pieces = std::size_t(params.rows) * params.chunks;
    if (params.chunk <= config_.reduce_short_chunk) {
      cl_kernel kernel = kernel_for("reduce", "porta_reduce_sum_short");
      set_buffers(kernel, {memory_of(in), memory_of(out)});
      set_params(kernel, 2, params);
      launch_1d(kernel, pieces, local_size(kernel, config_.reduce_local));
      return;
    }
    cl_kernel kernel = kernel_for("reduce", config_.reduce_contiguous ? "porta_reduce_sum_contiguous"
                                                                       : "porta_reduce_sum_strided");
    // The tree's shape depends on this size alone, which is fixed per device: the bits repeat.
    const std::size_t local = power_of_two_at_most(local_size(kernel, config_.reduce_local));
    set_buffers(kernel, {memory_of(in), memory_of(out)});
    set_params(kernel, 2, params);
    check(clSetKernelArg(kernel, 3, local * sizeof(float), nullptr), "clSetKernelArg", info_.id());
    launch_1d(kernel, pieces * local, local);
  }

  std::vector<std::string> matmul_kernels() const override {
    if (matmul_config_.preferred == opencl::MatmulKernel::packed) return {"packed", "tiled", "naive"};
    return {"tiled", "packed", "naive"};
  }

  void matmul(const Buffer& a, const Buffer& b, const Buffer* bias, Buffer& c, const kernels::MatmulParams& params,
              std::string_view kernel) override {
    std::lock_guard lock(mutex_);
    const opencl::MatmulConfig config = current_matmul_config();
    // Without a bias the kernels never read that argument; any valid buffer will do.
    const cl_mem bias_memory = bias != nullptr ? memory_of(*bias) : memory_of(c);
    if (kernel == "naive" || params.k == 0) {
      matmul_naive(memory_of(a), memory_of(b), bias_memory, memory_of(c), params);
    } else if (kernel == "tiled") {
      matmul_tiled(memory_of(a), memory_of(b), bias_memory, memory_of(c), params, config.tiled);
    } else if (kernel == "packed") {
      if (!matmul_packed(memory_of(a), memory_of(b), bias_memory, memory_of(c), params, config.packed)) {
        matmul_tiled(memory_of(a), memory_of(b), bias_memory, memory_of(c), params, config.tiled);
      }
    } else {
      throw Error(ErrorKind::invalid_argument, "porta opencl: no matmul kernel named '" + std::string(kernel) +
                                                   "' on " + info_.id() + " (expected packed, tiled or naive)");
    }
  }

  std::vector<std::string> attention_kernels() const override {
    if (attention_config_.preferred == opencl::AttentionKernel::rows) return {"rows", "tiled"};
    return {"tiled", "rows"};
  }

  void attention_forward(const Buffer& q, const Buffer& k, const Buffer& v, Buffer& o, Buffer& lse,
                         const kernels::AttentionParams& p, std::string_view kernel) override {
    std::lock_guard lock(mutex_);
    if (kernel == "tiled") {
      attention_forward_tiled(memory_of(q), memory_of(k), memory_of(v), memory_of(o), memory_of(lse), p);
      return;
    }
    check_attention_kernel(kernel);
    const opencl::AttentionConfig& c = attention_config_;
    const std::string defines = attention_defines(p.d);
    // K transposed (VW keys per vector) and V as f32 panels: O(N * D), counted like any buffer.
    const std::size_t kv_bytes = std::size_t(p.batch) * p.heads_kv * round_up(p.nk, c.vw) * p.d * sizeof(float);
    const std::shared_ptr<Buffer> keys_t = allocate(kv_bytes), values = allocate(kv_bytes);
    attention_pack(memory_of(k), memory_of(*keys_t), p, 1, true, defines);
    attention_pack(memory_of(v), memory_of(*values), p, 2, false, defines);
    cl_kernel forward = kernel_for("attention", "porta_attention_forward", defines);
    set_buffers(forward, {memory_of(q), memory_of(*keys_t), memory_of(*values), memory_of(o), memory_of(lse)});
    set_params(forward, 5, p);
    launch_attention(forward, (p.nq + c.rows_per_item(p.d) - 1) / c.rows_per_item(p.d), p.heads_q, p.batch);
  }

  void attention_backward(const Buffer& q, const Buffer& k, const Buffer& v, const Buffer& o, const Buffer& lse,
                          const Buffer& grad_o, Buffer& dq, Buffer& dk, Buffer& dv, const kernels::AttentionParams& p,
                          std::string_view kernel) override {
    std::lock_guard lock(mutex_);
    if (kernel != "tiled") check_attention_kernel(kernel);  // both forwards share this backward
    const opencl::AttentionConfig& c = attention_config_;
    const std::string defines = attention_defines(p.d);
    const std::size_t rows_q = round_up(p.nq, c.vw), rows_k = round_up(p.nk, c.vw);
    const std::size_t q_bytes = std::size_t(p.batch) * p.heads_q * rows_q * p.d * sizeof(float);
    const std::size_t k_bytes = std::size_t(p.batch) * p.heads_kv * rows_k * p.d * sizeof(float);
    // Per query row: lse * log2(e) and Delta = dO . O (padded rows: +inf and 0).
    const std::shared_ptr<Buffer> stats = allocate(2 * std::size_t(p.batch) * p.heads_q * rows_q * sizeof(float));
    cl_kernel delta = kernel_for("attention", "porta_attention_delta", defines);
    set_buffers(delta, {memory_of(o), memory_of(grad_o), memory_of(lse), memory_of(*stats)});
    set_params(delta, 4, p);
    const std::size_t delta_global[2] = {rows_q, std::size_t(p.batch) * p.heads_q};
    check(clEnqueueNDRangeKernel(queue_, delta, 2, nullptr, delta_global, nullptr, 0, nullptr, nullptr),
          "clEnqueueNDRangeKernel", info_.id());

    // dQ per query block, from K^T, V^T and K panels.
    {
      const std::shared_ptr<Buffer> keys_t = allocate(k_bytes), values_t = allocate(k_bytes), keys = allocate(k_bytes);
      attention_pack(memory_of(k), memory_of(*keys_t), p, 1, true, defines);
      attention_pack(memory_of(v), memory_of(*values_t), p, 2, true, defines);
      attention_pack(memory_of(k), memory_of(*keys), p, 1, false, defines);
      cl_kernel kernel_dq = kernel_for("attention", "porta_attention_dq", defines);
      set_buffers(kernel_dq, {memory_of(q), memory_of(grad_o), memory_of(*keys_t), memory_of(*values_t),
                              memory_of(*keys), memory_of(*stats), memory_of(dq)});
      set_params(kernel_dq, 7, p);
      launch_attention(kernel_dq, (p.nq + c.rows_per_item(p.d) - 1) / c.rows_per_item(p.d), p.heads_q, p.batch);
    }
    // dK and dV per key block, from Q^T, dO^T, Q and dO panels.
    const std::shared_ptr<Buffer> queries_t = allocate(q_bytes), grads_t = allocate(q_bytes),
                                  queries = allocate(q_bytes), grads = allocate(q_bytes);
    attention_pack(memory_of(q), memory_of(*queries_t), p, 0, true, defines);
    attention_pack(memory_of(grad_o), memory_of(*grads_t), p, 3, true, defines);
    attention_pack(memory_of(q), memory_of(*queries), p, 0, false, defines);
    attention_pack(memory_of(grad_o), memory_of(*grads), p, 3, false, defines);
    cl_kernel kernel_dkdv = kernel_for("attention", "porta_attention_dkdv", defines);
    set_buffers(kernel_dkdv, {memory_of(k), memory_of(v), memory_of(*queries_t), memory_of(*grads_t),
                              memory_of(*queries), memory_of(*grads), memory_of(*stats), memory_of(dk), memory_of(dv)});
    set_params(kernel_dkdv, 9, p);
    launch_attention(kernel_dkdv, (p.nk + c.keys_per_item(p.d) - 1) / c.keys_per_item(p.d), p.heads_kv, p.batch);
  }

  bool has_softmax_rows() const override { return true; }

  void softmax_rows(const Buffer& in, Buffer& out, Buffer& lse, const kernels::SoftmaxParams& params) override {
    std::lock_guard lock(mutex_);
    cl_kernel kernel = kernel_for("softmax", "porta_softmax_rows");
    set_buffers(kernel, {memory_of(in), memory_of(out), memory_of(lse)});
    set_params(kernel, 3, params);
    launch_1d(kernel, params.rows, local_size(kernel, config_.elementwise_local));
  }

 private:
  void check_attention_kernel(std::string_view kernel) const {
    if (kernel != "rows") {
      throw Error(ErrorKind::invalid_argument, "porta opencl: no attention kernel named '" + std::string(kernel) +
                                                   "' on " + info_.id() + " (expected rows or tiled)");
    }
  }

  // The -D options of kernels/attention/opencl.cl for head dimension d on this device.
  std::string attention_defines(unsigned d) const {
    const opencl::AttentionConfig& c = attention_config_;
    return " -DPORTA_D=" + std::to_string(d) + " -DPORTA_VW=" + std::to_string(c.vw) +
           " -DPORTA_BR=" + std::to_string(c.rows_per_item(d)) + " -DPORTA_BKV=" + std::to_string(c.keys_per_item(d));
  }

  // One operand's rows as f32 panels (see porta_attention_pack): which 0 q, 1 k, 2 v, 3 dO.
  void attention_pack(cl_mem source, cl_mem packed, const kernels::AttentionParams& p, cl_uint which,
                      bool transposed, const std::string& defines) {
    cl_kernel kernel = kernel_for("attention", "porta_attention_pack", defines);
    const cl_uint layout = transposed ? 1u : 0u;
    set_buffers(kernel, {source, packed});
    set_params(kernel, 2, p);
    check(clSetKernelArg(kernel, 3, sizeof which, &which), "clSetKernelArg", info_.id());
    check(clSetKernelArg(kernel, 4, sizeof layout, &layout), "clSetKernelArg", info_.id());
    const bool kv = which == 1 || which == 2;
    const std::size_t global[3] = {p.d, round_up(kv ? p.nk : p.nq, attention_config_.vw),
                                   std::size_t(p.batch) * (kv ? p.heads_kv : p.heads_q)};
    check(clEnqueueNDRangeKernel(queue_, kernel, 3, nullptr, global, nullptr, 0, nullptr, nullptr),
          "clEnqueueNDRangeKernel", info_.id());
  }

  // A rows-kernel grid: x over row blocks (in groups of the configured size), y over
  // heads, z over the batch; items past the edge return at once.
  void launch_attention(cl_kernel kernel, std::size_t blocks, std::size_t heads, std::size_t batch) {
    const std::size_t local[3] = {local_size(kernel, attention_config_.group), 1, 1};
    const std::size_t global[3] = {round_up(blocks, local[0]), heads, batch};
    check(clEnqueueNDRangeKernel(queue_, kernel, 3, nullptr, global, local, 0, nullptr, nullptr),
          "clEnqueueNDRangeKernel", info_.id());
  }

  void attention_forward_tiled(cl_mem q, cl_mem k, cl_mem v, cl_mem o, cl_mem lse, const kernels::AttentionParams& p) {
    const opencl::AttentionConfig& c = attention_config_;
    // Both tiles (K and V, f32) must fit the device's local memory.
    std::size_t tile_k = std::max(1u, c.tile_k);
    while (tile_k > 1 && 2 * tile_k * p.d * sizeof(float) > local_memory_bytes_) tile_k /= 2;
    const std::string defines = " -DPORTA_D=" + std::to_string(p.d) + " -DPORTA_TQ=" + std::to_string(c.tile_q) +
                                " -DPORTA_TK=" + std::to_string(tile_k);
    cl_kernel kernel = kernel_for("attention_tiled", "porta_attention_forward_tiled", defines);
    if (local_size(kernel, c.tile_q) < c.tile_q) {
      throw Error(ErrorKind::unsupported, "porta opencl: attention tiled needs work-groups of " +
                                              std::to_string(c.tile_q) + " items, more than " + info_.id() +
                                              " allows for this kernel");
    }
    set_buffers(kernel, {q, k, v, o, lse});
    set_params(kernel, 5, p);
    const std::size_t local[3] = {c.tile_q, 1, 1};
    const std::size_t global[3] = {round_up(p.nq, c.tile_q), p.heads_q, p.batch};
    check(clEnqueueNDRangeKernel(queue_, kernel, 3, nullptr, global, local, 0, nullptr, nullptr),
          "clEnqueueNDRangeKernel", info_.id());
  }

  // Scratch memory of the packed matmul: internal to the backend, reused call after call
  // (the in-order queue finishes one matmul before the next repacks), grown on demand and
  // not counted in the device's allocation statistics, which track user buffers.
  struct Scratch {
    cl_mem memory = nullptr;
    std::size_t bytes = 0;
  };

  cl_mem scratch(Scratch& slot, std::size_t bytes) {
    if (slot.bytes < bytes) {
      if (slot.memory != nullptr) clReleaseMemObject(slot.memory);  // freed once queued work is done
      slot = {};
      cl_int status = CL_SUCCESS;
      cl_mem memory = clCreateBuffer(context_, CL_MEM_READ_WRITE, bytes, nullptr, &status);
      if (status != CL_SUCCESS) {
        throw Error(opencl::error_kind(status), "porta opencl: matmul packing buffer of " + std::to_string(bytes) +
                                                    " bytes on " + info_.id() + ": clCreateBuffer failed: " +
                                                    describe(status));
      }
      slot = {memory, bytes};
    }
    return slot.memory;
  }

  // The table's entry, or $PORTA_OPENCL_MATMUL applied on top of it (read at every call so
  // the tuner can switch configurations in one process).
  opencl::MatmulConfig current_matmul_config() {
    const char* text = std::getenv("PORTA_OPENCL_MATMUL");
    if (text == nullptr || *text == '\0') return matmul_config_;
    if (override_text_ != text) {
      opencl::MatmulConfig config = matmul_config_;
      opencl::apply_override(text, config);
      override_config_ = config;
      override_text_ = text;
    }
    return override_config_;
  }

  void matmul_naive(cl_mem a, cl_mem b, cl_mem bias, cl_mem c, const kernels::MatmulParams& p) {
    cl_kernel kernel = kernel_for("matmul", "porta_matmul_naive");
    set_buffers(kernel, {a, b, bias, c});
    set_params(kernel, 4, p);
    const std::size_t limit = local_size(kernel, 256);
    std::size_t local[3] = {std::min<std::size_t>(16, limit), std::min<std::size_t>(16, max_work_items_y_), 1};
    while (local[1] > 1 && local[0] * local[1] > limit) local[1] /= 2;
    const std::size_t global[3] = {round_up(p.n, local[0]), round_up(p.m, local[1]), p.batch};
    check(clEnqueueNDRangeKernel(queue_, kernel, 3, nullptr, global, local, 0, nullptr, nullptr),
          "clEnqueueNDRangeKernel", info_.id());
  }

  void matmul_tiled(cl_mem a, cl_mem b, cl_mem bias, cl_mem c, const kernels::MatmulParams& p,
                    const opencl::TiledMatmulConfig& t) {
    cl_kernel kernel = kernel_for("matmul_tiled", "porta_matmul_tiled", opencl::build_defines(t));
    const std::size_t local[3] = {t.ndimc, t.mdimc, 1};
    std::size_t kernel_limit = 0;
    clGetKernelWorkGroupInfo(kernel, device_, CL_KERNEL_WORK_GROUP_SIZE, sizeof kernel_limit, &kernel_limit, nullptr);
    if (local[0] * local[1] > std::min(max_work_group_size_, kernel_limit > 0 ? kernel_limit : max_work_group_size_) ||
        local[1] > max_work_items_y_) {
      throw Error(ErrorKind::unsupported, "porta opencl: matmul " + opencl::to_string(t) + " needs work-groups of " +
                                              std::to_string(local[0]) + " x " + std::to_string(local[1]) + " on " +
                                              info_.id() + ", which allows " + std::to_string(kernel_limit) +
                                              " items for this kernel");
    }
    set_buffers(kernel, {a, b, bias, c});
    set_params(kernel, 4, p);
    const std::size_t global[3] = {(p.n + t.nwg - 1) / t.nwg * t.ndimc, (p.m + t.mwg - 1) / t.mwg * t.mdimc, p.batch};
    check(clEnqueueNDRangeKernel(queue_, kernel, 3, nullptr, global, local, 0, nullptr, nullptr),
          "clEnqueueNDRangeKernel", info_.id());
  }

  // Packs op(A) and op(B) into f32 panels, then runs the register-blocked kernel. Returns
  // false (nothing enqueued) when a packed copy would exceed the device's allocation limit.
  bool matmul_packed(cl_mem a, cl_mem b, cl_mem bias, cl_mem c, const kernels::MatmulParams& p,
                     const opencl::PackedMatmulConfig& t) {
    const std::size_t nr = std::size_t(t.vw) * t.nv;
    const std::size_t panels_m = (p.m + t.mr - 1) / t.mr;
    const std::size_t panels_n = (p.n + nr - 1) / nr;
    const std::size_t batches_a = p.batch_stride_a == 0 ? 1 : p.batch;
    const std::size_t batches_b = p.batch_stride_b == 0 ? 1 : p.batch;
    const std::size_t bytes_a = batches_a * panels_m * t.mr * p.k * sizeof(float);
    const std::size_t bytes_b = batches_b * panels_n * nr * p.k * sizeof(float);
    if (bytes_a > info_.max_allocation_bytes || bytes_b > info_.max_allocation_bytes) return false;
    const std::string defines = opencl::build_defines(t);
    cl_kernel pack_a = kernel_for("matmul_packed", "porta_matmul_pack_a", defines);
    cl_kernel pack_b = kernel_for("matmul_packed", "porta_matmul_pack_b", defines);
    cl_kernel compute = kernel_for("matmul_packed", "porta_matmul_packed", defines);
    const cl_mem packed_a = scratch(pack_a_, bytes_a);
    const cl_mem packed_b = scratch(pack_b_, bytes_b);

    // One tile of matmul_pack_steps steps of k by one panel per item (see opencl_packed.cl).
    auto launch_pack = [&](cl_kernel pack, cl_mem source, cl_mem packed, std::size_t panels, std::size_t batches) {
      set_buffers(pack, {source, packed});
      set_params(pack, 2, p);
      const std::size_t blocks = (p.k + opencl::matmul_pack_steps - 1) / opencl::matmul_pack_steps;
      const std::size_t local[3] = {std::min<std::size_t>({16, local_size(pack, 256), blocks}), 1, 1};
      const std::size_t global[3] = {round_up(blocks, local[0]), panels, batches};
      check(clEnqueueNDRangeKernel(queue_, pack, 3, nullptr, global, local, 0, nullptr, nullptr),
            "clEnqueueNDRangeKernel", info_.id());
    };
    launch_pack(pack_a, a, packed_a, panels_m, batches_a);
    launch_pack(pack_b, b, packed_b, panels_n, batches_b);

    set_buffers(compute, {packed_a, packed_b, bias, c});
    set_params(compute, 4, p);
    const std::size_t limit = local_size(compute, std::size_t(t.group_m) * t.group_n);
    // No wider than the grid (rounded up to a power of two, so that small shapes share a few
    // group sizes: PoCL compiles the kernel once per group size): items past the edge only idle.
    std::size_t local[3] = {std::min<std::size_t>({t.group_n, limit, power_of_two_at_least(panels_n)}),
                            std::min<std::size_t>({t.group_m, max_work_items_y_, power_of_two_at_least(panels_m)}), 1};
    while (local[1] > 1 && local[0] * local[1] > limit) local[1] /= 2;
    const std::size_t global[3] = {round_up(panels_n, local[0]), round_up(panels_m, local[1]), p.batch};
    check(clEnqueueNDRangeKernel(queue_, compute, 3, nullptr, global, local, 0, nullptr, nullptr),
          "clEnqueueNDRangeKernel", info_.id());
    return true;
  }

  // Drops extent-1 dimensions and merges neighbours that are contiguous with each other,
  // so a plain copy becomes rank 1 and the kernel decodes fewer dimensions.
  static kernels::CopyCastParams collapsed(const kernels::CopyCastParams& params) {
    kernels::CopyCastParams p = params;
    kernels::uint rank = 0;
    for (kernels::uint dim = 0; dim < params.rank; ++dim) {
      const kernels::uint extent = params.shape[dim];
      const int stride = params.in_strides[dim];
      if (extent == 1) continue;
      if (rank > 0 && std::int64_t(p.in_strides[rank - 1]) == std::int64_t(extent) * stride) {
        p.shape[rank - 1] *= extent;
        p.in_strides[rank - 1] = stride;
      } else {
        p.shape[rank] = extent;
        p.in_strides[rank] = stride;
        ++rank;
      }
    }
    for (kernels::uint dim = rank; dim < PORTA_MAX_RANK; ++dim) {
      p.shape[dim] = 1;
      p.in_strides[dim] = 0;
    }
    p.rank = rank;
    return p;
  }

  void set_buffers(cl_kernel kernel, std::initializer_list<cl_mem> buffers) {
    cl_uint index = 0;
    for (cl_mem memory : buffers) {
      check(clSetKernelArg(kernel, index++, sizeof(cl_mem), &memory), "clSetKernelArg", info_.id());
    }
  }

  // The params struct travels by value as one argument: the same layout in C++ and OpenCL C.
  template <class Params>
  void set_params(cl_kernel kernel, cl_uint index, const Params& params) {
    check(clSetKernelArg(kernel, index, sizeof(Params), &params), "clSetKernelArg", info_.id());
  }

  // The configured work-group size, clamped to what the device and this kernel allow.
  std::size_t local_size(cl_kernel kernel, std::size_t wanted) {
    std::size_t limit = max_work_group_size_;
    std::size_t kernel_limit = 0;
    if (clGetKernelWorkGroupInfo(kernel, device_, CL_KERNEL_WORK_GROUP_SIZE, sizeof kernel_limit, &kernel_limit,
                                 nullptr) == CL_SUCCESS &&
        kernel_limit > 0) {
      limit = std::min(limit, kernel_limit);
    }
    return std::max<std::size_t>(1, std::min(wanted, limit));
  }

  // `items` work-items in groups of `local`, cut into launches of at most
  // max_items_per_launch through the global offset (kernels index with get_global_id).
  void launch_1d(cl_kernel kernel, std::size_t items, std::size_t local) {
    const std::size_t step = std::max(local, config_.max_items_per_launch / local * local);
    for (std::size_t start = 0; start < items; start += step) {
      const std::size_t offset = start;
      const std::size_t global = round_up(std::min(step, items - start), local);
      check(clEnqueueNDRangeKernel(queue_, kernel, 1, &offset, &global, &local, 0, nullptr, nullptr),
            "clEnqueueNDRangeKernel", info_.id());
    }
  }

  // A 2D grid: x along rows of `inner` elements, y over `rows`, in groups of
  // config_.copy_rows_local shrunk (y first) to what the device and kernel allow.
  void launch_rows(cl_kernel kernel, std::size_t inner, std::size_t rows) {
    const std::size_t limit = local_size(kernel, config_.copy_rows_local[0] * config_.copy_rows_local[1]);
    std::size_t group[2] = {std::min(config_.copy_rows_local[0], limit),
                            std::min(config_.copy_rows_local[1], max_work_items_y_)};
    while (group[1] > 1 && group[0] * group[1] > limit) group[1] /= 2;
    const std::size_t width = round_up(inner, group[0]);
    const std::size_t step = std::max(group[1], config_.max_items_per_launch / width / group[1] * group[1]);
    for (std::size_t start = 0; start < rows; start += step) {
      const std::size_t offset[2] = {0, start};
      const std::size_t global[2] = {width, round_up(std::min(step, rows - start), group[1])};
      check(clEnqueueNDRangeKernel(queue_, kernel, 2, offset, global, group, 0, nullptr, nullptr),
            "clEnqueueNDRangeKernel", info_.id());
    }
  }

  // The kernel `name` of the op's program (`defines`: its tuning -D options), built (or loaded from the disk cache) on first
  // use for the current build options. Caller holds mutex_.
  cl_kernel kernel_for(const std::string& op, std::string_view name, const std::string& defines = {}) {
    const std::string options = build_options() + defines;
    const std::string key = op + '\n' + options;
    auto found = programs_.find(key);
    if (found == programs_.end()) found = programs_.emplace(key, load_program(op, options)).first;
    auto kernel = found->second.kernels.find(name);
    if (kernel == found->second.kernels.end()) {
      throw Error(ErrorKind::backend_error, "porta opencl: the program '" + op + "' on " + info_.id() +
                                                " has no kernel named " + std::string(name));
    }
    return kernel->second;
  }

  Program load_program(const std::string& op, const std::string& options) {
    const std::span<const unsigned char> text = embedded::opencl_source(op);
    const std::string_view source(reinterpret_cast<const char*>(text.data()), text.size());
    const std::filesystem::path file =
        cache_file("opencl", stable_hash({platform_identity_, info_.name, driver_version_, source, options}));
    if (auto binary = unwrap_cached(cache_load(file))) {
      if (auto program = program_from_binary(*binary, options)) {
        count_program_loaded_from_cache();
        return std::move(*program);
      }
    }
    Program program = program_from_source(op, source, options);
    count_program_built();
    cache_store(file, wrap_for_cache(binary_of(program.program)));
    return program;
  }

  // A cached binary the runtime rejects (corrupt, from another driver) is not an error:
  // the caller rebuilds from source.
  std::optional<Program> program_from_binary(const std::vector<unsigned char>& binary, const std::string& options) {
    const std::size_t size = binary.size();
    const unsigned char* data = binary.data();
    cl_int binary_status = CL_SUCCESS;
    cl_int status = CL_SUCCESS;
    Program program;
    program.program = clCreateProgramWithBinary(context_, 1, &device_, &size, &data, &binary_status, &status);
    if (status != CL_SUCCESS || binary_status != CL_SUCCESS || program.program == nullptr ||
        clBuildProgram(program.program, 1, &device_, options.c_str(), nullptr, nullptr) != CL_SUCCESS ||
        !create_kernels(program)) {
      release(program);
      return std::nullopt;
    }
    return program;
  }

  Program program_from_source(const std::string& op, std::string_view source, const std::string& options) {
    const char* text = source.data();
    const std::size_t length = source.size();
    cl_int status = CL_SUCCESS;
    Program program;
    program.program = clCreateProgramWithSource(context_, 1, &text, &length, &status);
    check(status, "clCreateProgramWithSource", info_.id());
    status = clBuildProgram(program.program, 1, &device_, options.c_str(), nullptr, nullptr);
    if (status != CL_SUCCESS) {
      const std::string log = build_log(program.program);
      release(program);
      throw Error(opencl::error_kind(status), "porta opencl: building the program '" + op + "' on " + info_.id() +
                                                  " failed: clBuildProgram: " + describe(status) + "; options: " +
                                                  options + "; build log:\n" + log);
    }
    if (!create_kernels(program)) {
      release(program);
      throw Error(ErrorKind::backend_error,
                  "porta opencl: clCreateKernelsInProgram for the program '" + op + "' on " + info_.id() + " failed");
    }
    return program;
  }

  bool create_kernels(Program& program) {
    cl_uint count = 0;
    if (clCreateKernelsInProgram(program.program, 0, nullptr, &count) != CL_SUCCESS || count == 0) return false;
    std::vector<cl_kernel> kernels(count);
    if (clCreateKernelsInProgram(program.program, count, kernels.data(), nullptr) != CL_SUCCESS) return false;
    for (cl_kernel kernel : kernels) {
      std::size_t size = 0;
      std::string name;
      if (clGetKernelInfo(kernel, CL_KERNEL_FUNCTION_NAME, 0, nullptr, &size) == CL_SUCCESS && size > 0) {
        name.resize(size);
        clGetKernelInfo(kernel, CL_KERNEL_FUNCTION_NAME, size, name.data(), nullptr);
      }
      program.kernels.emplace(trimmed(std::move(name)), kernel);
    }
    return true;
  }

  std::string build_log(cl_program program) const {
    std::size_t size = 0;
    if (clGetProgramBuildInfo(program, device_, CL_PROGRAM_BUILD_LOG, 0, nullptr, &size) != CL_SUCCESS || size == 0) {
      return "(no build log)";
    }
    std::string log(size, '\0');
    clGetProgramBuildInfo(program, device_, CL_PROGRAM_BUILD_LOG, size, log.data(), nullptr);
    return trimmed(std::move(log));
  }

  // The device binary of a built program, or nothing when the runtime offers none.
  std::vector<unsigned char> binary_of(cl_program program) const {
    std::size_t size = 0;
    if (clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, nullptr) != CL_SUCCESS || size == 0) {
      return {};
    }
    std::vector<unsigned char> binary(size);
    unsigned char* data = binary.data();
    if (clGetProgramInfo(program, CL_PROGRAM_BINARIES, sizeof data, &data, nullptr) != CL_SUCCESS) return {};
    return binary;
  }

  cl_device_id device_;
  cl_context context_ = nullptr;
  cl_command_queue queue_ = nullptr;
  DeviceInfo info_;
  opencl::KernelConfig config_;
  std::size_t max_work_group_size_ = 1;  // also within the device's work-item limit along x
  std::size_t max_work_items_y_ = 1;
  std::string platform_identity_;  // platform name and version, part of the cache key
  std::string driver_version_;
  std::mutex mutex_;  // kernel arguments are per kernel object: set and enqueue under one lock
  std::map<std::string, Program> programs_;  // by op and build options
  opencl::MatmulConfig matmul_config_;        // this device's row of the matmul table
  opencl::AttentionConfig attention_config_;  // and of the attention table
  std::size_t local_memory_bytes_ = 0;
  std::string override_text_;                 // the last $PORTA_OPENCL_MATMUL seen, parsed:
  opencl::MatmulConfig override_config_;
  Scratch pack_a_;                            // packed panels of the packed matmul
  Scratch pack_b_;
};

}  // namespace

Discovery discover_opencl() {
  Discovery found;
  cl_uint platform_count = 0;
  cl_int status = clGetPlatformIDs(0, nullptr, &platform_count);
  if (status == opencl::platform_not_found_khr || (status == CL_SUCCESS && platform_count == 0)) {
    found.unavailable_reason =
        "no OpenCL platform found (the ICD loader lists none): install an OpenCL driver (ICD), e.g. Debian's "
        "pocl-opencl-icd for the CPU or the GPU vendor's OpenCL driver";
    return found;
  }
  if (status != CL_SUCCESS) {
    found.unavailable_reason = "clGetPlatformIDs failed: " + describe(status);
    return found;
  }
  std::vector<cl_platform_id> platforms(platform_count);
  status = clGetPlatformIDs(platform_count, platforms.data(), nullptr);
  if (status != CL_SUCCESS) {
    found.unavailable_reason = "clGetPlatformIDs failed: " + describe(status);
    return found;
  }
  std::string problems;
  int index = 0;
  for (cl_platform_id platform : platforms) {
    cl_uint device_count = 0;
    status = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 0, nullptr, &device_count);
    if (status == CL_DEVICE_NOT_FOUND || (status == CL_SUCCESS && device_count == 0)) continue;
    std::vector<cl_device_id> devices(device_count);
    if (status == CL_SUCCESS) status = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, device_count, devices.data(), nullptr);
    if (status != CL_SUCCESS) {
      problems += "; platform '" + platform_string(platform, CL_PLATFORM_NAME) + "': clGetDeviceIDs failed: " +
                  describe(status);
      continue;
    }
    for (cl_device_id device : devices) {
      try {
        found.devices.push_back(std::make_shared<OpenclDevice>(index, platform, device));
        ++index;
      } catch (const Error& error) {
        problems += std::string("; ") + error.what();
      }
    }
  }
  if (found.devices.empty()) {
    found.unavailable_reason = "no usable OpenCL device: the platforms list none" + problems;
  }
  return found;
}

}  // namespace porta::backend

// c_api.cpp — include/porta/porta.h over the C++ API: handle tables, argument checks, and
// the one place where every exception becomes a status code and a thread-local message.
#include "porta/porta.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "porta/porta.hpp"

namespace {

// ---- errors -------------------------------------------------------------------------

// Thrown by the checks below; porta::Error carries the C++ API's own failures.
struct CallError {
  porta_status status;
  std::string message;
};

thread_local std::string last_message;
thread_local const char* last_error_text = "";

void record(const char* text) noexcept {
  try {
    last_message = text;
    last_error_text = last_message.c_str();
  } catch (...) {
    last_error_text = "porta: out of host memory (the error message could not be stored)";
  }
}

porta_status status_of(porta::ErrorKind kind) {
  switch (kind) {
    case porta::ErrorKind::invalid_argument: return PORTA_ERROR_INVALID_ARGUMENT;
    case porta::ErrorKind::unsupported: return PORTA_ERROR_UNSUPPORTED;
    case porta::ErrorKind::out_of_memory: return PORTA_ERROR_OUT_OF_MEMORY;
    case porta::ErrorKind::backend_error: return PORTA_ERROR_BACKEND;
    case porta::ErrorKind::device_lost: return PORTA_ERROR_DEVICE_LOST;
  }
  return PORTA_ERROR_INTERNAL;
}

// Runs `body`; nothing thrown inside gets past this frame.
template <class Body>
porta_status guarded(const char* function, Body&& body) noexcept {
  try {
    body();
    return PORTA_OK;
  } catch (const CallError& error) {
    record(error.message.c_str());
    return error.status;
  } catch (const porta::Error& error) {
    record(error.what());
    return status_of(error.kind());
  } catch (const std::bad_alloc&) {
    char text[160];  // no allocation while out of memory
    std::snprintf(text, sizeof text, "%s: out of host memory", function);
    record(text);
    return PORTA_ERROR_OUT_OF_MEMORY;
  } catch (const std::exception& error) {
    char text[512];
    std::snprintf(text, sizeof text, "%s: internal error: %s", function, error.what());
    record(text);
    return PORTA_ERROR_INTERNAL;
  } catch (...) {
    char text[160];
    std::snprintf(text, sizeof text, "%s: internal error: an unknown exception", function);
    record(text);
    return PORTA_ERROR_INTERNAL;
  }
}

[[noreturn]] void fail(porta_status status, const char* function, const char* argument, const std::string& what) {
  throw CallError{status, std::string(function) + ": argument " + argument + ": " + what};
}

template <class T>
T& required(T* pointer, const char* function, const char* argument) {
  if (pointer == nullptr) fail(PORTA_ERROR_INVALID_ARGUMENT, function, argument, "expected a pointer, got null");
  return *pointer;
}

// ---- devices: one handle per device, alive until the process exits --------------------

struct DeviceHandle {
  porta::Device device;
  std::string id;  // the strings porta_device_info points into
};

struct DeviceTable {
  std::mutex mutex;
  std::map<const void*, std::unique_ptr<DeviceHandle>> by_impl;  // keyed by the backend device
  std::set<const DeviceHandle*> handles;
};

// Never destroyed, like porta's own device registry: handles stay valid during exit.
DeviceTable& device_table() {
  static DeviceTable* table = new DeviceTable;
  return *table;
}

porta_device handle_of(const porta::Device& device) {
  DeviceTable& table = device_table();
  std::lock_guard lock(table.mutex);
  auto& slot = table.by_impl[&device.impl()];
  if (!slot) {
    slot = std::make_unique<DeviceHandle>(DeviceHandle{device, device.id()});
    table.handles.insert(slot.get());
  }
  return reinterpret_cast<porta_device>(slot.get());
}

const porta::Device& device_of(porta_device handle, const char* function, const char* argument) {
  if (handle == nullptr) fail(PORTA_ERROR_INVALID_HANDLE, function, argument, "expected a device, got null");
  DeviceTable& table = device_table();
  std::lock_guard lock(table.mutex);
  const auto* candidate = reinterpret_cast<const DeviceHandle*>(handle);
  if (table.handles.count(candidate) == 0) {
    fail(PORTA_ERROR_INVALID_HANDLE, function, argument, "not a device handle porta gave out");
  }
  return candidate->device;
}

// ---- tensors: a table of slots; a handle is (generation, slot), never a pointer ---------
// A freed slot's generation moves on, so a stale handle (double free, use after free) is
// told apart from a live one without touching freed memory.

constexpr unsigned slot_bits = sizeof(std::uintptr_t) * 4;  // low half: slot + 1, high half: generation
constexpr std::uintptr_t slot_mask = (std::uintptr_t(1) << slot_bits) - 1;

struct TensorSlot {
  std::uintptr_t generation = 1;
  std::optional<porta::Tensor> tensor;
};

struct TensorTable {
  std::mutex mutex;
  std::vector<TensorSlot> slots;
  std::vector<std::size_t> free_slots;
};

TensorTable& tensor_table() {
  static TensorTable* table = new TensorTable;  // outlives other statics, as the device table
  return *table;
}

// The slot of a live handle; the caller holds the table's lock.
TensorSlot& live_slot(TensorTable& table, porta_tensor handle, const char* function, const char* argument) {
  if (handle == nullptr) fail(PORTA_ERROR_INVALID_HANDLE, function, argument, "expected a tensor, got null");
  const auto value = reinterpret_cast<std::uintptr_t>(handle);
  const std::uintptr_t index = value & slot_mask;
  const std::uintptr_t generation = value >> slot_bits;
  if (index == 0 || index > table.slots.size() || generation == 0 || generation > table.slots[index - 1].generation) {
    fail(PORTA_ERROR_INVALID_HANDLE, function, argument, "not a tensor handle porta gave out");
  }
  TensorSlot& slot = table.slots[index - 1];
  if (generation != slot.generation || !slot.tensor) {
    fail(PORTA_ERROR_INVALID_HANDLE, function, argument, "the tensor was already freed");
  }
  return slot;
}

porta::Tensor tensor_of(porta_tensor handle, const char* function, const char* argument) {
  TensorTable& table = tensor_table();
  std::lock_guard lock(table.mutex);
  return *live_slot(table, handle, function, argument).tensor;
}

// Registers every tensor or none: outputs are written only when all got a handle.
template <std::size_t N>
void publish(std::array<porta::Tensor, N> tensors, std::array<porta_tensor*, N> outputs) {
  TensorTable& table = tensor_table();
  std::lock_guard lock(table.mutex);
  table.slots.reserve(table.slots.size() + N);
  table.free_slots.reserve(table.free_slots.size() + N);
  std::array<porta_tensor, N> handles{};
  for (std::size_t i = 0; i < N; ++i) {
    std::size_t index;
    if (!table.free_slots.empty()) {
      index = table.free_slots.back();
      table.free_slots.pop_back();
    } else {
      if (table.slots.size() >= slot_mask) throw std::bad_alloc();
      index = table.slots.size();
      table.slots.emplace_back();
    }
    TensorSlot& slot = table.slots[index];
    slot.tensor = std::move(tensors[i]);
    handles[i] = reinterpret_cast<porta_tensor>((slot.generation << slot_bits) | (index + 1));
  }
  for (std::size_t i = 0; i < N; ++i) *outputs[i] = handles[i];
}

void publish(porta::Tensor tensor, porta_tensor* output) {
  publish<1>({std::move(tensor)}, {output});
}

porta::DType dtype_of(porta_dtype dtype, const char* function) {
  switch (dtype) {
    case PORTA_F32: return porta::DType::f32;
    case PORTA_F16: return porta::DType::f16;
    case PORTA_BF16: return porta::DType::bf16;
    case PORTA_I32: return porta::DType::i32;
  }
  fail(PORTA_ERROR_INVALID_ARGUMENT, function, "dtype",
       "expected PORTA_F32, PORTA_F16, PORTA_BF16 or PORTA_I32, got " + std::to_string(dtype));
}

porta_dtype c_dtype(porta::DType dtype) { return static_cast<porta_dtype>(dtype); }

// Where a struct ended in the release that introduced it (0.1.0): the end of its last
// field then, rounded up to its alignment.
template <class Struct, class LastField>
constexpr std::size_t size_ending_at(std::size_t last_field_offset) {
  return (last_field_offset + sizeof(LastField) + alignof(Struct) - 1) / alignof(Struct) * alignof(Struct);
}

// The least struct_size each struct that crosses the API takes: its first release's size,
// so a caller built with that header keeps working (README.md, "ABI promise").
template <class Struct>
constexpr std::size_t first_release_size = 0;
template <>
constexpr std::size_t first_release_size<porta_device_info> =
    size_ending_at<porta_device_info, int32_t>(offsetof(porta_device_info, fp16));
// beta (0.1.1) took what was padding after epilogue: the size did not change.
template <>
constexpr std::size_t first_release_size<porta_matmul_options> =
    size_ending_at<porta_matmul_options, porta_epilogue>(offsetof(porta_matmul_options, epilogue));
template <>
constexpr std::size_t first_release_size<porta_attention_options> =
    size_ending_at<porta_attention_options, float>(offsetof(porta_attention_options, scale));

// A struct filled by its _init function of this or a later version.
template <class Struct>
void check_struct_size(const Struct& value, const char* function, const char* argument, const char* init) {
  // Fires when a release appends a field past the first release's end: read that field
  // only when struct_size covers it (older callers' structs end before it), then let
  // this assert allow the larger size.
  static_assert(sizeof(Struct) == first_release_size<Struct>,
                "a field was appended: read it only when struct_size covers it, then update this check");
  if (value.struct_size < first_release_size<Struct>) {
    fail(PORTA_ERROR_INVALID_ARGUMENT, function, argument,
         "struct_size is " + std::to_string(value.struct_size) + ", expected at least " +
             std::to_string(first_release_size<Struct>) + " (initialise it with " + init + ")");
  }
}

porta::MatmulOptions matmul_options(const porta_matmul_options* options, const char* function) {
  porta::MatmulOptions converted;
  if (options == nullptr) return converted;
  check_struct_size(*options, function, "options", "porta_matmul_options_init");
  converted.trans_a = options->trans_a != 0;
  converted.trans_b = options->trans_b != 0;
  converted.alpha = options->alpha;
  converted.beta = options->beta;
  if (options->bias != nullptr) converted.bias = tensor_of(options->bias, function, "options->bias");
  switch (options->epilogue) {
    case PORTA_EPILOGUE_NONE: converted.epilogue = porta::Epilogue::none; break;
    case PORTA_EPILOGUE_GELU: converted.epilogue = porta::Epilogue::gelu; break;
    default:
      fail(PORTA_ERROR_INVALID_ARGUMENT, function, "options->epilogue",
           "expected PORTA_EPILOGUE_NONE or PORTA_EPILOGUE_GELU, got " + std::to_string(options->epilogue));
  }
  return converted;
}

porta::AttentionOptions attention_options(const porta_attention_options* options, const char* function) {
  porta::AttentionOptions converted;
  if (options == nullptr) return converted;
  check_struct_size(*options, function, "options", "porta_attention_options_init");
  converted.causal = options->causal != 0;
  if (options->has_scale != 0) {
    if (!std::isfinite(options->scale)) {
      fail(PORTA_ERROR_INVALID_ARGUMENT, function, "options", "expected a finite scale, got " +
                                                                  std::to_string(options->scale));
    }
    converted.scale = options->scale;
  }
  return converted;
}

// ---- collectives ------------------------------------------------------------------------

porta::Reduce reduce_of(porta_reduce op, const char* function) {
  switch (op) {
    case PORTA_REDUCE_SUM: return porta::Reduce::sum;
    case PORTA_REDUCE_AVG: return porta::Reduce::avg;
    case PORTA_REDUCE_MAX: return porta::Reduce::max;
    case PORTA_REDUCE_MIN: return porta::Reduce::min;
  }
  fail(PORTA_ERROR_INVALID_ARGUMENT, function, "op",
       "expected PORTA_REDUCE_SUM, _AVG, _MAX or _MIN, got " + std::to_string(op));
}

// One MPI communicator per device this process reduces on, made on first use and kept
// until exit, like the handle tables.
const porta::Communicator& mpi_communicator(const porta::Device& device) {
  static std::mutex mutex;
  static auto* communicators = new std::map<std::string, porta::Communicator>;
  std::lock_guard lock(mutex);
  auto found = communicators->find(device.id());
  if (found == communicators->end()) found = communicators->emplace(device.id(), porta::Communicator::mpi(device)).first;
  return found->second;
}

}  // namespace

// ---- the C functions ----------------------------------------------------------------

extern "C" {

const char* porta_last_error(void) noexcept { return last_error_text; }

const char* porta_status_name(porta_status status) noexcept {
  switch (status) {
    case PORTA_OK: return "PORTA_OK";
    case PORTA_ERROR_INVALID_ARGUMENT: return "PORTA_ERROR_INVALID_ARGUMENT";
    case PORTA_ERROR_UNSUPPORTED: return "PORTA_ERROR_UNSUPPORTED";
    case PORTA_ERROR_OUT_OF_MEMORY: return "PORTA_ERROR_OUT_OF_MEMORY";
    case PORTA_ERROR_BACKEND: return "PORTA_ERROR_BACKEND";
    case PORTA_ERROR_DEVICE_LOST: return "PORTA_ERROR_DEVICE_LOST";
    case PORTA_ERROR_INVALID_HANDLE: return "PORTA_ERROR_INVALID_HANDLE";
    case PORTA_ERROR_INTERNAL: return "PORTA_ERROR_INTERNAL";
  }
  return "unknown porta_status";
}

void porta_version(int* major, int* minor, int* patch) noexcept {
  if (major != nullptr) *major = PORTA_VERSION_MAJOR;
  if (minor != nullptr) *minor = PORTA_VERSION_MINOR;
  if (patch != nullptr) *patch = PORTA_VERSION_PATCH;
}

void porta_device_info_init(porta_device_info* info) noexcept {
  if (info == nullptr) return;
  *info = porta_device_info{};
  info->struct_size = sizeof(porta_device_info);
}

porta_status porta_device_count(size_t* count) noexcept {
  constexpr const char* function = "porta_device_count";
  return guarded(function, [&] {
    size_t& out = required(count, function, "count");
    out = porta::devices().size();
  });
}

porta_status porta_device_at(size_t index, porta_device* device) noexcept {
  constexpr const char* function = "porta_device_at";
  return guarded(function, [&] {
    porta_device& out = required(device, function, "device");
    std::vector<porta::Device> all = porta::devices();
    if (index >= all.size()) {
      fail(PORTA_ERROR_INVALID_ARGUMENT, function, "index",
           "expected an index below the device count " + std::to_string(all.size()) + ", got " + std::to_string(index));
    }
    out = handle_of(all[index]);
  });
}

porta_status porta_device_get(const char* name, porta_device* device) noexcept {
  constexpr const char* function = "porta_device_get";
  return guarded(function, [&] {
    const char& first = required(name, function, "name");
    porta_device& out = required(device, function, "device");
    out = handle_of(porta::Device::get(&first));
  });
}

porta_status porta_device_default(porta_device* device) noexcept {
  constexpr const char* function = "porta_device_default";
  return guarded(function, [&] {
    porta_device& out = required(device, function, "device");
    out = handle_of(porta::Device::default_device());
  });
}

porta_status porta_device_get_info(porta_device device, porta_device_info* info) noexcept {
  constexpr const char* function = "porta_device_get_info";
  return guarded(function, [&] {
    const porta::Device& found = device_of(device, function, "device");
    porta_device_info& out = required(info, function, "info");
    check_struct_size(out, function, "info", "porta_device_info_init");
    const auto* handle = reinterpret_cast<const DeviceHandle*>(device);
    const porta::DeviceInfo& source = found.info();  // lives as long as the device
    out.id = handle->id.c_str();
    out.name = source.name.c_str();
    out.vendor = source.vendor.c_str();
    out.driver = source.driver.c_str();
    out.backend = static_cast<porta_backend>(source.backend);
    out.index = source.index;
    out.type = static_cast<porta_device_type>(source.type);
    out.memory_bytes = source.memory_bytes;
    out.max_allocation_bytes = source.max_allocation_bytes;
    out.compute_units = source.compute_units;
    out.max_work_group_size = source.max_work_group_size;
    out.subgroup_size = source.subgroup_size;
    out.fp16 = source.fp16 ? 1 : 0;
  });
}

porta_status porta_device_synchronize(porta_device device) noexcept {
  constexpr const char* function = "porta_device_synchronize";
  return guarded(function, [&] { device_of(device, function, "device").synchronize(); });
}

porta_status porta_tensor_from_host(porta_device device, porta_dtype dtype, const int64_t* shape, int32_t rank,
                                    const void* data, size_t bytes, porta_tensor* tensor) noexcept {
  constexpr const char* function = "porta_tensor_from_host";
  return guarded(function, [&] {
    const porta::Device& target = device_of(device, function, "device");
    const porta::DType element = dtype_of(dtype, function);
    porta_tensor& out = required(tensor, function, "tensor");
    if (rank < 0 || rank > PORTA_MAX_RANK) {
      fail(PORTA_ERROR_INVALID_ARGUMENT, function, "rank",
           "expected 0 to " + std::to_string(PORTA_MAX_RANK) + ", got " + std::to_string(rank));
    }
    if (rank > 0 && shape == nullptr) {
      fail(PORTA_ERROR_INVALID_ARGUMENT, function, "shape", "expected " + std::to_string(rank) + " extents, got null");
    }
    porta::Shape dims(shape, shape + rank);
    publish(porta::Tensor::from_host(data, bytes, dims, element, target), &out);
  });
}

porta_status porta_tensor_to_host(porta_tensor tensor, void* data, size_t bytes) noexcept {
  constexpr const char* function = "porta_tensor_to_host";
  return guarded(function, [&] {
    porta::Tensor source = tensor_of(tensor, function, "tensor");
    if (data == nullptr && bytes > 0) {
      fail(PORTA_ERROR_INVALID_ARGUMENT, function, "data", "expected host memory for " + std::to_string(bytes) +
                                                               " bytes, got null");
    }
    source.copy_to_host(data, bytes);  // checks bytes against the tensor's size
  });
}

porta_status porta_tensor_info(porta_tensor tensor, porta_dtype* dtype, int32_t* rank, int64_t* shape,
                               porta_device* device) noexcept {
  constexpr const char* function = "porta_tensor_info";
  return guarded(function, [&] {
    porta::Tensor source = tensor_of(tensor, function, "tensor");
    porta_device owner = device != nullptr ? handle_of(source.device()) : nullptr;
    if (dtype != nullptr) *dtype = c_dtype(source.dtype());
    if (rank != nullptr) *rank = source.rank();
    if (shape != nullptr) std::copy(source.shape().begin(), source.shape().end(), shape);
    if (device != nullptr) *device = owner;
  });
}

porta_status porta_tensor_nbytes(porta_tensor tensor, size_t* bytes) noexcept {
  constexpr const char* function = "porta_tensor_nbytes";
  return guarded(function, [&] {
    porta::Tensor source = tensor_of(tensor, function, "tensor");
    required(bytes, function, "bytes") = source.nbytes();
  });
}

porta_status porta_tensor_free(porta_tensor tensor) noexcept {
  constexpr const char* function = "porta_tensor_free";
  if (tensor == nullptr) return PORTA_OK;
  return guarded(function, [&] {
    std::optional<porta::Tensor> released;  // destroyed after the lock is dropped
    TensorTable& table = tensor_table();
    {
      std::lock_guard lock(table.mutex);
      table.free_slots.reserve(table.slots.size());  // so the push_back below cannot throw
      TensorSlot& slot = live_slot(table, tensor, function, "tensor");
      released = std::move(slot.tensor);
      slot.tensor.reset();
      if (slot.generation < (std::uintptr_t(1) << (sizeof(std::uintptr_t) * 8 - slot_bits)) - 1) {
        ++slot.generation;
        table.free_slots.push_back(static_cast<std::size_t>(&slot - table.slots.data()));
      }  // else the slot is retired: its generations are used up
    }
  });
}

void porta_matmul_options_init(porta_matmul_options* options) noexcept {
  if (options == nullptr) return;
  *options = porta_matmul_options{};
  options->struct_size = sizeof(porta_matmul_options);
  options->alpha = 1.0f;
  options->bias = nullptr;
  options->epilogue = PORTA_EPILOGUE_NONE;
}

porta_status porta_matmul(porta_tensor a, porta_tensor b, const porta_matmul_options* options,
                          porta_tensor* out) noexcept {
  constexpr const char* function = "porta_matmul";
  return guarded(function, [&] {
    porta::Tensor left = tensor_of(a, function, "a");
    porta::Tensor right = tensor_of(b, function, "b");
    porta_tensor& result = required(out, function, "out");
    const porta::MatmulOptions converted = matmul_options(options, function);
    if (converted.beta != 0.0f) {
      fail(PORTA_ERROR_INVALID_ARGUMENT, function, "options->beta",
           "expected 0 for a new output (porta_matmul_into scales an existing one), got " +
               std::to_string(converted.beta));
    }
    publish(porta::matmul(left, right, converted), &result);
  });
}

porta_status porta_matmul_into(porta_tensor a, porta_tensor b, const porta_matmul_options* options,
                               porta_tensor c) noexcept {
  constexpr const char* function = "porta_matmul_into";
  return guarded(function, [&] {
    porta::Tensor left = tensor_of(a, function, "a");
    porta::Tensor right = tensor_of(b, function, "b");
    porta::Tensor target = tensor_of(c, function, "c");  // shares c's storage: the result lands there
    porta::MatmulOptions converted = matmul_options(options, function);
    if (target.dtype() == porta::DType::f32) converted.out_dtype = porta::DType::f32;  // else the operands'
    porta::matmul_into(target, left, right, converted);
  });
}

porta_status porta_matmul_backward(porta_tensor grad_out, porta_tensor a, porta_tensor b,
                                   const porta_matmul_options* options, porta_tensor* da, porta_tensor* db,
                                   porta_tensor* dbias) noexcept {
  constexpr const char* function = "porta_matmul_backward";
  return guarded(function, [&] {
    porta::Tensor grad = tensor_of(grad_out, function, "grad_out");
    porta::Tensor left = tensor_of(a, function, "a");
    porta::Tensor right = tensor_of(b, function, "b");
    porta_tensor& da_handle = required(da, function, "da");
    porta_tensor& db_handle = required(db, function, "db");
    const porta::MatmulOptions converted = matmul_options(options, function);
    const bool has_bias = converted.bias.defined();
    if (has_bias) required(dbias, function, "dbias");
    porta::MatmulGradients gradients = porta::matmul_backward(grad, left, right, converted);
    if (has_bias) {
      publish<3>({std::move(gradients.da), std::move(gradients.db), std::move(gradients.dbias)},
                 {&da_handle, &db_handle, dbias});
    } else {
      publish<2>({std::move(gradients.da), std::move(gradients.db)}, {&da_handle, &db_handle});
    }
  });
}

void porta_attention_options_init(porta_attention_options* options) noexcept {
  if (options == nullptr) return;
  *options = porta_attention_options{};
  options->struct_size = sizeof(porta_attention_options);
}

porta_status porta_attention_forward(porta_tensor q, porta_tensor k, porta_tensor v,
                                     const porta_attention_options* options, porta_tensor* out,
                                     porta_tensor* lse) noexcept {
  constexpr const char* function = "porta_attention_forward";
  return guarded(function, [&] {
    porta::Tensor query = tensor_of(q, function, "q");
    porta::Tensor key = tensor_of(k, function, "k");
    porta::Tensor value = tensor_of(v, function, "v");
    porta_tensor& out_handle = required(out, function, "out");
    porta_tensor& lse_handle = required(lse, function, "lse");
    porta::AttentionOutput result = porta::attention(query, key, value, attention_options(options, function));
    publish<2>({std::move(result.out), std::move(result.lse)}, {&out_handle, &lse_handle});
  });
}

porta_status porta_attention_backward(porta_tensor grad_out, porta_tensor q, porta_tensor k, porta_tensor v,
                                      porta_tensor out, porta_tensor lse, const porta_attention_options* options,
                                      porta_tensor* dq, porta_tensor* dk, porta_tensor* dv) noexcept {
  constexpr const char* function = "porta_attention_backward";
  return guarded(function, [&] {
    porta::Tensor grad = tensor_of(grad_out, function, "grad_out");
    porta::Tensor query = tensor_of(q, function, "q");
    porta::Tensor key = tensor_of(k, function, "k");
    porta::Tensor value = tensor_of(v, function, "v");
    porta::AttentionOutput forward{tensor_of(out, function, "out"), tensor_of(lse, function, "lse")};
    porta_tensor& dq_handle = required(dq, function, "dq");
    porta_tensor& dk_handle = required(dk, function, "dk");
    porta_tensor& dv_handle = required(dv, function, "dv");
    porta::AttentionGradients gradients =
        porta::attention_backward(grad, query, key, value, forward, attention_options(options, function));
    publish<3>({std::move(gradients.dq), std::move(gradients.dk), std::move(gradients.dv)},
               {&dq_handle, &dk_handle, &dv_handle});
  });
}

porta_status porta_all_reduce_local(const porta_tensor* tensors, size_t count, porta_reduce op) noexcept {
  constexpr const char* function = "porta_all_reduce_local";
  return guarded(function, [&] {
    const porta::Reduce reduce = reduce_of(op, function);
    if (count == 0) fail(PORTA_ERROR_INVALID_ARGUMENT, function, "count", "expected at least one tensor, got 0");
    required(tensors, function, "tensors");
    std::vector<porta::Tensor> ranks;
    std::vector<porta::Device> devices;
    for (std::size_t i = 0; i < count; ++i) {
      const std::string argument = "tensors[" + std::to_string(i) + "]";
      ranks.push_back(tensor_of(tensors[i], function, argument.c_str()));
      devices.push_back(ranks.back().device());
    }
    porta::run_ranks(porta::Communicator::local(devices), [&](const porta::Communicator& communicator) {
      communicator.all_reduce(ranks[static_cast<std::size_t>(communicator.rank())], reduce);
    });
  });
}

porta_status porta_all_reduce_mpi(porta_tensor tensor, porta_reduce op) noexcept {
  constexpr const char* function = "porta_all_reduce_mpi";
  return guarded(function, [&] {
    const porta::Reduce reduce = reduce_of(op, function);
    porta::Tensor target = tensor_of(tensor, function, "tensor");
    mpi_communicator(target.device()).all_reduce(target, reduce);
  });
}

porta_status porta_mpi_rank(int32_t* rank, int32_t* size) noexcept {
  constexpr const char* function = "porta_mpi_rank";
  return guarded(function, [&] {
    int32_t& rank_out = required(rank, function, "rank");
    int32_t& size_out = required(size, function, "size");
    const porta::Communicator& communicator = mpi_communicator(porta::Device::get("cpu:0"));
    rank_out = communicator.rank();
    size_out = communicator.size();
  });
}

}  // extern "C"

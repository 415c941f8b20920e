// vulkan_device.cpp — the Vulkan backend: a compute-only 1.2 instance, one device per
// physical device, buffers, a recorded command batch submitted at sync points, lazily
// built pipelines with an on-disk pipeline cache, and validation-layer plumbing.
// Environment: PORTA_VULKAN_VALIDATION=1 (Khronos layer on, any message fails the next
// sync point); PORTA_VULKAN_MATMUL (the matmul's tile parameters, vulkan_tuning.hpp); for
// tests, PORTA_VULKAN_FORCE_STAGING=1 (never map device memory) and
// PORTA_VULKAN_NO_STORAGE16=1 (act as a device without 16-bit storage buffers).
#include <vulkan/vulkan.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "backends/discover.hpp"
#include "backends/disk_cache.hpp"
#include "backends/vulkan/vulkan_tuning.hpp"
#include "porta/error.hpp"

namespace porta::embedded {
std::span<const unsigned char> vulkan_spirv(std::string_view name);
}

namespace porta::backend {

namespace {

using vulkan::Tuning;

const char* result_name(VkResult result) {
  switch (result) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
    case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
    case VK_ERROR_UNKNOWN: return "VK_ERROR_UNKNOWN";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    case VK_ERROR_INVALID_EXTERNAL_HANDLE: return "VK_ERROR_INVALID_EXTERNAL_HANDLE";
    case VK_ERROR_FRAGMENTATION: return "VK_ERROR_FRAGMENTATION";
    case VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS: return "VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS";
    case VK_PIPELINE_COMPILE_REQUIRED: return "VK_PIPELINE_COMPILE_REQUIRED";
    case VK_ERROR_VALIDATION_FAILED_EXT: return "VK_ERROR_VALIDATION_FAILED_EXT";
    case VK_ERROR_INVALID_SHADER_NV: return "VK_ERROR_INVALID_SHADER_NV";
    default: return "an unknown VkResult";
  }
}

ErrorKind kind_of(VkResult result) {
  if (result == VK_ERROR_OUT_OF_DEVICE_MEMORY || result == VK_ERROR_OUT_OF_HOST_MEMORY) return ErrorKind::out_of_memory;
  if (result == VK_ERROR_DEVICE_LOST) return ErrorKind::device_lost;
  return ErrorKind::backend_error;
}

[[noreturn]] void fail(VkResult result, std::string_view call, std::string_view where) {
  throw Error(kind_of(result), "porta vulkan: " + std::string(call) + " failed on " + std::string(where) + ": " +
                                   result_name(result) + " (" + std::to_string(static_cast<int>(result)) + ")");
}

void check(VkResult result, std::string_view call, std::string_view where) {
  if (result != VK_SUCCESS) fail(result, call, where);
}

std::string version_string(std::uint32_t version) {
  return std::to_string(VK_API_VERSION_MAJOR(version)) + "." + std::to_string(VK_API_VERSION_MINOR(version)) + "." +
         std::to_string(VK_API_VERSION_PATCH(version));
}

DeviceType device_type(VkPhysicalDeviceType type) {
  switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return DeviceType::integrated_gpu;
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return DeviceType::discrete_gpu;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return DeviceType::virtual_gpu;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return DeviceType::cpu;
    default: return DeviceType::other;
  }
}

bool env_flag(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && std::string_view(value) == "1";
}

// ---------------------------------------------------------------------------------------
// The instance, shared by every device; with PORTA_VULKAN_VALIDATION=1 it also collects
// the validation layer's messages, which the next sync point of any device turns into an
// Error so that a test that provokes one fails.
class Instance {
 public:
  Instance() = default;
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;
  ~Instance() {
    if (messenger_ != VK_NULL_HANDLE) {
      auto destroy = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
          vkGetInstanceProcAddr(handle, "vkDestroyDebugUtilsMessengerEXT"));
      if (destroy != nullptr) destroy(handle, messenger_, nullptr);
    }
    if (handle != VK_NULL_HANDLE) vkDestroyInstance(handle, nullptr);
  }

  // Creates the VkInstance; returns the reason when there is none to be had.
  std::optional<std::string> create(bool validation) {
    // vkEnumerateInstanceVersion is missing from 1.0 loaders: look it up instead of linking it.
    std::uint32_t loader_version = VK_API_VERSION_1_0;
    auto enumerate_version = reinterpret_cast<PFN_vkEnumerateInstanceVersion>(
        vkGetInstanceProcAddr(VK_NULL_HANDLE, "vkEnumerateInstanceVersion"));
    if (enumerate_version != nullptr) enumerate_version(&loader_version);
    if (loader_version < VK_API_VERSION_1_2) {
      return "the Vulkan loader is version " + version_string(loader_version) +
             "; porta needs 1.2 (Debian: apt-get install libvulkan1 mesa-vulkan-drivers)";
    }
    std::vector<const char*> layers;
    std::vector<const char*> extensions;
    bool portability = has_instance_extension(nullptr, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME);
    if (portability) extensions.push_back(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME);  // MoltenVK and friends

    VkDebugUtilsMessengerCreateInfoEXT messenger_info{};
    VkValidationFeaturesEXT features{};
    const std::array<VkValidationFeatureEnableEXT, 1> enables = {
        VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT};
    // The layer's shader cache lives in $HOME and reports its absence on a first run.
    const std::array<VkValidationFeatureDisableEXT, 1> disables = {
        VK_VALIDATION_FEATURE_DISABLE_SHADER_VALIDATION_CACHE_EXT};
    const void* chain = nullptr;
    if (validation) {
      const char* layer = "VK_LAYER_KHRONOS_validation";
      if (!has_layer(layer)) {
        return "PORTA_VULKAN_VALIDATION=1 but the layer VK_LAYER_KHRONOS_validation is not installed "
               "(Debian: apt-get install vulkan-validationlayers)";
      }
      layers.push_back(layer);
      if (!has_instance_extension(layer, VK_EXT_DEBUG_UTILS_EXTENSION_NAME)) {
        return "PORTA_VULKAN_VALIDATION=1 but " VK_EXT_DEBUG_UTILS_EXTENSION_NAME " is missing";
      }
      extensions.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
      messenger_info.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT;
      messenger_info.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_INFO_BIT_EXT |
                                       VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                                       VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
      messenger_info.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                                   VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                                   VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
      messenger_info.pfnUserCallback = &Instance::on_message;
      messenger_info.pUserData = this;
      chain = &messenger_info;  // also catches messages of vkCreateInstance/vkDestroyInstance
      if (has_instance_extension(layer, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME)) {
        // Synchronization validation checks the barriers between recorded dispatches.
        extensions.push_back(VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME);
        features.sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT;
        features.enabledValidationFeatureCount = static_cast<std::uint32_t>(enables.size());
        features.pEnabledValidationFeatures = enables.data();
        features.disabledValidationFeatureCount = static_cast<std::uint32_t>(disables.size());
        features.pDisabledValidationFeatures = disables.data();
        features.pNext = &messenger_info;
        chain = &features;
      }
    }

    VkApplicationInfo application{};
    application.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO;
    application.pApplicationName = "porta";
    application.pEngineName = "porta";
    application.apiVersion = VK_API_VERSION_1_2;
    VkInstanceCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO;
    info.pNext = chain;
    info.flags = portability ? VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR : 0;
    info.pApplicationInfo = &application;
    info.enabledLayerCount = static_cast<std::uint32_t>(layers.size());
    info.ppEnabledLayerNames = layers.data();
    info.enabledExtensionCount = static_cast<std::uint32_t>(extensions.size());
    info.ppEnabledExtensionNames = extensions.data();
    VkResult result = vkCreateInstance(&info, nullptr, &handle);
    if (result == VK_ERROR_INCOMPATIBLE_DRIVER) {
      handle = VK_NULL_HANDLE;
      return "no Vulkan driver found (vkCreateInstance: VK_ERROR_INCOMPATIBLE_DRIVER); install one, e.g. Debian: "
             "apt-get install mesa-vulkan-drivers";
    }
    if (result != VK_SUCCESS) {
      handle = VK_NULL_HANDLE;
      return std::string("vkCreateInstance failed: ") + result_name(result);
    }
    if (validation) {
      auto create_messenger = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
          vkGetInstanceProcAddr(handle, "vkCreateDebugUtilsMessengerEXT"));
      if (create_messenger == nullptr) return "vkCreateDebugUtilsMessengerEXT is missing";
      messenger_info.pNext = nullptr;
      result = create_messenger(handle, &messenger_info, nullptr, &messenger_);
      if (result != VK_SUCCESS) return std::string("vkCreateDebugUtilsMessengerEXT failed: ") + result_name(result);
    }
    return std::nullopt;
  }

  // Throws the validation messages gathered since the last call, if any.
  void throw_if_messages(std::string_view where) {
    std::vector<std::string> messages;
    {
      std::lock_guard lock(messages_mutex_);
      messages.swap(messages_);
    }
    if (messages.empty()) return;
    std::string text = "porta vulkan: the validation layer reported " + std::to_string(messages.size()) +
                       " message(s) before this sync point on " + std::string(where) + ":";
    for (const auto& message : messages) text += "\n  " + message;
    throw Error(ErrorKind::backend_error, text);
  }

  VkInstance handle = VK_NULL_HANDLE;

 private:
  static bool has_layer(const char* name) {
    std::uint32_t count = 0;
    if (vkEnumerateInstanceLayerProperties(&count, nullptr) != VK_SUCCESS) return false;
    std::vector<VkLayerProperties> layers(count);
    if (vkEnumerateInstanceLayerProperties(&count, layers.data()) != VK_SUCCESS) return false;
    return std::any_of(layers.begin(), layers.begin() + count,
                       [&](const VkLayerProperties& layer) { return std::strcmp(layer.layerName, name) == 0; });
  }

  static bool has_instance_extension(const char* layer, const char* name) {
    std::uint32_t count = 0;
    if (vkEnumerateInstanceExtensionProperties(layer, &count, nullptr) != VK_SUCCESS) return false;
    std::vector<VkExtensionProperties> found(count);
    if (vkEnumerateInstanceExtensionProperties(layer, &count, found.data()) != VK_SUCCESS) return false;
    bool present = std::any_of(found.begin(), found.begin() + count, [&](const VkExtensionProperties& extension) {
      return std::strcmp(extension.extensionName, name) == 0;
    });
    return present || (layer != nullptr && has_instance_extension(nullptr, name));
  }

  static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                   VkDebugUtilsMessageTypeFlagsEXT type,
                                                   const VkDebugUtilsMessengerCallbackDataEXT* data, void* user) {
    // Warnings and errors of every kind, and the layer's own informational findings.
    bool serious = severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT;
    bool finding = severity == VK_DEBUG_UTILS_MESSAGE_SEVERITY_INFO_BIT_EXT &&
                   (type & VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT) != 0;
    if (!serious && !finding) return VK_FALSE;
    // The layer announces itself (and its settings) once per instance: not a finding.
    if (data != nullptr && data->pMessageIdName != nullptr &&
        std::strcmp(data->pMessageIdName, "UNASSIGNED-khronos-validation-createinstance-status-message") == 0) {
      return VK_FALSE;
    }
    std::string message = data != nullptr && data->pMessage != nullptr ? data->pMessage : "(no text)";
    std::fprintf(stderr, "porta vulkan validation: %s\n", message.c_str());
    auto* self = static_cast<Instance*>(user);
    std::lock_guard lock(self->messages_mutex_);
    self->messages_.push_back(std::move(message));
    return VK_FALSE;
  }

  VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
  std::mutex messages_mutex_;
  std::vector<std::string> messages_;
};

// ---------------------------------------------------------------------------------------
// The VkDevice; shared by the porta device and every allocation, so that buffers outliving
// the device (or still used by a batch in flight) can free themselves.
struct Core {
  Core() = default;
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;
  ~Core() {
    if (device != VK_NULL_HANDLE) vkDestroyDevice(device, nullptr);
  }
  std::shared_ptr<Instance> instance;
  VkDevice device = VK_NULL_HANDLE;
  std::string id;  // "vulkan:0", for messages
};

// One VkBuffer and its memory. Recorded batches hold a reference until their fence
// signals, so a porta Buffer may die while work on it is still queued.
struct Allocation {
  Allocation() = default;
  Allocation(const Allocation&) = delete;
  Allocation& operator=(const Allocation&) = delete;
  ~Allocation() {
    if (buffer != VK_NULL_HANDLE) vkDestroyBuffer(core->device, buffer, nullptr);
    if (memory != VK_NULL_HANDLE) vkFreeMemory(core->device, memory, nullptr);  // unmaps too
  }
  std::shared_ptr<Core> core;
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceMemory memory = VK_NULL_HANDLE;
  VkDeviceSize size = 0;
  void* mapped = nullptr;  // host-visible coherent memory, mapped once
};

class VulkanBuffer final : public Buffer {
 public:
  VulkanBuffer(std::uint64_t bytes, std::shared_ptr<Allocation> allocation, std::function<void(std::uint64_t)> on_free)
      : Buffer(bytes), allocation_(std::move(allocation)), on_free_(std::move(on_free)) {}
  ~VulkanBuffer() override { on_free_(bytes()); }
  const std::shared_ptr<Allocation>& allocation() const { return allocation_; }

 private:
  std::shared_ptr<Allocation> allocation_;
  std::function<void(std::uint64_t)> on_free_;
};

const std::shared_ptr<Allocation>& allocation_of(const Buffer& buffer) {
  return static_cast<const VulkanBuffer&>(buffer).allocation();
}

// The kernels: embedded SPIR-V name, storage-buffer bindings and push-constant size.
enum class Kernel {
  fill,
  copy_cast,
  elementwise,
  random,
  reduce,
  matmul,
  matmul_tiled,
  matmul_subgroup,
  attention_forward_tiled,
  attention_forward_subgroup,
  attention_delta,
  attention_dkdv,
  attention_dq,
  softmax,
  count
};

struct KernelSpec {
  const char* name;
  std::uint32_t bindings;
  std::uint32_t push_bytes;
};

constexpr std::array<KernelSpec, static_cast<std::size_t>(Kernel::count)> kernel_specs = {{
    {"fill", 1, sizeof(kernels::FillParams)},
    {"copy_cast", 2, sizeof(kernels::CopyCastParams)},
    {"elementwise", 3, sizeof(kernels::ElementwiseParams)},
    {"random", 1, sizeof(kernels::RandomParams)},
    {"reduce", 2, sizeof(kernels::ReduceParams)},
    {"matmul", 4, sizeof(kernels::MatmulParams)},  // a, b, bias, c
    {"matmul_tiled", 4, sizeof(kernels::MatmulParams)},
    {"matmul_subgroup", 4, sizeof(kernels::MatmulParams)},
    {"attention_forward_tiled", 5, sizeof(kernels::AttentionParams)},  // q, k, v, o, lse
    {"attention_forward_subgroup", 5, sizeof(kernels::AttentionParams)},
    // q, k, v, o, lse, dO, dQ, dK, dV, Delta (every backward kernel sees all ten)
    {"attention_delta", 10, sizeof(kernels::AttentionParams)},
    {"attention_dkdv", 10, sizeof(kernels::AttentionParams)},
    {"attention_dq", 10, sizeof(kernels::AttentionParams)},
    {"softmax", 3, sizeof(kernels::SoftmaxParams)},  // in, out, lse
}};
constexpr std::uint32_t max_bindings = 10;

bool is_narrow(std::uint32_t dtype) { return dtype == PORTA_DTYPE_F16 || dtype == PORTA_DTYPE_BF16; }

// One recorded command buffer and what must live until its fence signals.
struct Batch {
  VkCommandBuffer commands = VK_NULL_HANDLE;
  VkFence fence = VK_NULL_HANDLE;
  std::vector<VkDescriptorPool> pools;
  std::size_t pool_in_use = 0;
  std::uint32_t sets_in_pool = 0;
  std::uint32_t dispatches = 0;
  std::vector<std::shared_ptr<Allocation>> retained;
};

constexpr std::uint32_t sets_per_pool = 256;
constexpr std::uint32_t max_batches_in_flight = 2;

struct PhysicalDeviceFacts {
  VkPhysicalDevice handle = VK_NULL_HANDLE;
  VkPhysicalDeviceProperties properties{};
  VkPhysicalDeviceDriverProperties driver{};
  VkPhysicalDeviceSubgroupProperties subgroup{};
  VkPhysicalDeviceMaintenance3Properties maintenance3{};
  VkPhysicalDeviceMemoryProperties memory{};
  bool storage16 = false;
  bool creation_feedback = false;  // VK_EXT_pipeline_creation_feedback
  bool portability_subset = false;  // MoltenVK and other layered drivers: must be enabled
  std::uint32_t queue_family = 0;
};

// ---------------------------------------------------------------------------------------
class VulkanDevice final : public Device, public std::enable_shared_from_this<VulkanDevice> {
 public:
  VulkanDevice(std::shared_ptr<Instance> instance, const PhysicalDeviceFacts& facts, int index)
      : facts_(facts), core_(std::make_shared<Core>()) {
    core_->instance = std::move(instance);
    fill_info(index);
    core_->id = info_.id() + " (" + info_.name + ")";
    vulkan::DeviceTraits traits;
    traits.type = facts.properties.deviceType;
    traits.vendor_id = facts.properties.vendorID;
    traits.subgroup_size = facts.subgroup.subgroupSize;
    traits.max_invocations = facts.properties.limits.maxComputeWorkGroupInvocations;
    traits.max_group_size_x = facts.properties.limits.maxComputeWorkGroupSize[0];
    traits.max_group_count_x = facts.properties.limits.maxComputeWorkGroupCount[0];
    traits.shared_memory_bytes = facts.properties.limits.maxComputeSharedMemorySize;
    traits.subgroup_stages = facts.subgroup.supportedStages;
    traits.subgroup_operations = facts.subgroup.supportedOperations;
    tuning_ = vulkan::choose_tuning(traits);
    matmul_config_ = vulkan::choose_matmul(traits);
    subgroup_matmul_ = vulkan::matmul_subgroup_supported(traits);
    attention_config_ = vulkan::choose_attention(traits);
    subgroup_attention_ = vulkan::attention_subgroup_supported(traits);
    traits_ = traits;
    choose_memory_types();
    try {
      create_device();
      create_layouts();
      load_pipeline_cache();
    } catch (...) {
      destroy_objects();
      throw;
    }
  }

  VulkanDevice(const VulkanDevice&) = delete;
  VulkanDevice& operator=(const VulkanDevice&) = delete;

  ~VulkanDevice() override {
    std::lock_guard lock(mutex_);
    try {
      finish_all();
    } catch (const std::exception& error) {
      std::fprintf(stderr, "porta vulkan: %s: while closing the device: %s\n", core_->id.c_str(), error.what());
    }
    if (core_->device != VK_NULL_HANDLE) vkDeviceWaitIdle(core_->device);
    save_pipeline_cache();
    destroy_objects();
  }

  int implemented_interface_version() const override { return interface_version; }
  const DeviceInfo& info() const override { return info_; }

  std::shared_ptr<Buffer> allocate(std::uint64_t bytes) override {
    if (bytes > info_.max_allocation_bytes) {
      throw Error(ErrorKind::out_of_memory, "porta: allocation on " + info_.id() + ": " + std::to_string(bytes) +
                                                " bytes requested, the device allows at most " +
                                                std::to_string(info_.max_allocation_bytes));
    }
    std::lock_guard lock(mutex_);
    std::shared_ptr<Allocation> allocation;
    try {
      allocation = create_allocation((bytes + 3) & ~std::uint64_t(3), true);
    } catch (const Error& error) {
      if (error.kind() != ErrorKind::out_of_memory || !holds_retired_buffers()) throw;
      // Buffers that died while queued work used them are freed once that work is done.
      finish_all();
      allocation = create_allocation((bytes + 3) & ~std::uint64_t(3), true);
    }
    count_allocation(bytes);
    std::weak_ptr<VulkanDevice> self = weak_from_this();
    return std::make_shared<VulkanBuffer>(bytes, std::move(allocation), [self](std::uint64_t freed) {
      if (auto device = self.lock()) device->count_free(freed);
    });
  }

  void write(Buffer& buffer, std::uint64_t offset, const void* source, std::uint64_t bytes) override {
    std::lock_guard lock(mutex_);
    const auto& target = allocation_of(buffer);
    if (target->mapped != nullptr) {
      finish_all();  // queued kernels may still read or write the old contents
      std::memcpy(static_cast<char*>(target->mapped) + offset, source, bytes);
    } else {
      for (std::uint64_t done = 0; done < bytes;) {
        std::uint64_t piece = std::min<std::uint64_t>(bytes - done, tuning_.staging_bytes);
        auto& staging = staging_buffer();
        finish_all();  // the staging buffer is free again
        std::memcpy(staging->mapped, static_cast<const char*>(source) + done, piece);
        record_copy(staging, 0, target, offset + done, piece);
        finish_all();
        done += piece;
      }
    }
    core_->instance->throw_if_messages(core_->id);
  }

  void read(const Buffer& buffer, std::uint64_t offset, void* destination, std::uint64_t bytes) override {
    std::lock_guard lock(mutex_);
    const auto& source = allocation_of(buffer);
    if (source->mapped != nullptr) {
      finish_all();
      std::memcpy(destination, static_cast<const char*>(source->mapped) + offset, bytes);
    } else {
      for (std::uint64_t done = 0; done < bytes;) {
        std::uint64_t piece = std::min<std::uint64_t>(bytes - done, tuning_.staging_bytes);
        auto& staging = staging_buffer();
        record_copy(source, offset + done, staging, 0, piece);
        finish_all();
        std::memcpy(static_cast<char*>(destination) + done, staging->mapped, piece);
        done += piece;
      }
    }
    core_->instance->throw_if_messages(core_->id);
  }

  void synchronize() override {
    std::lock_guard lock(mutex_);
    finish_all();
    core_->instance->throw_if_messages(core_->id);
  }

  std::optional<std::string> declines(Op, DType dtype) const override {
    if ((dtype == DType::f16 || dtype == DType::bf16) && !facts_.storage16) {
      return info_.id() + " (" + info_.name + ") lacks the Vulkan feature storageBuffer16BitAccess, needed for " +
             std::string(to_string(dtype)) + " tensors";
    }
    return std::nullopt;
  }

  void fill(Buffer& out, const kernels::FillParams& params) override {
    launch(Kernel::fill, {&out}, &params, is_narrow(params.dtype), params.count, tuning_.stream_group_size);
  }
  void copy_cast(const Buffer& in, Buffer& out, const kernels::CopyCastParams& params) override {
    launch(Kernel::copy_cast, {&in, &out}, &params, is_narrow(params.in_dtype) || is_narrow(params.out_dtype),
           params.count, tuning_.stream_group_size);
  }
  void elementwise(const Buffer& a, const Buffer& b, Buffer& out, const kernels::ElementwiseParams& params) override {
    launch(Kernel::elementwise, {&a, &b, &out}, &params, is_narrow(params.dtype), params.count,
           tuning_.stream_group_size);
  }
  void random(Buffer& out, const kernels::RandomParams& params) override {
    launch(Kernel::random, {&out}, &params, is_narrow(params.dtype), params.count, tuning_.stream_group_size);
  }
  void reduce_sum(const Buffer& in, Buffer& out, const kernels::ReduceParams& params) override {
    // One work-group per (row, piece): the items are work-groups here.
    const std::uint64_t pieces = std::uint64_t(params.rows) * params.chunks;
    launch(Kernel::reduce, {&in, &out}, &params, is_narrow(params.in_dtype) || is_narrow(params.out_dtype),
           pieces * tuning_.reduce_group_size, tuning_.reduce_group_size);
  }

  std::vector<std::string> matmul_kernels() const override {
    std::vector<std::string> names{std::string(matmul_config_.preferred)};
    if (matmul_config_.preferred != "tiled") names.emplace_back("tiled");
    if (matmul_config_.preferred != "subgroup" && subgroup_matmul_) names.emplace_back("subgroup");
    names.emplace_back("naive");
    return names;
  }

  void matmul(const Buffer& a, const Buffer& b, const Buffer* bias, Buffer& c, const kernels::MatmulParams& params,
              std::string_view kernel) override {
    const bool storage16 = is_narrow(params.ab_dtype) || is_narrow(params.c_dtype) ||
                           (params.has_bias != 0 && is_narrow(params.bias_dtype));
    // Without a bias the slot still needs a buffer: a, which the shader never reads there.
    const Buffer* bias_or_a = bias != nullptr ? bias : &a;
    const auto& limits = facts_.properties.limits;
    auto groups_for = [&](std::uint64_t n_groups, std::uint64_t m_groups) {
      return std::array<std::uint32_t, 3>{
          static_cast<std::uint32_t>(std::clamp<std::uint64_t>(n_groups, 1, limits.maxComputeWorkGroupCount[0])),
          static_cast<std::uint32_t>(std::clamp<std::uint64_t>(m_groups, 1, limits.maxComputeWorkGroupCount[1])),
          static_cast<std::uint32_t>(std::clamp<std::uint64_t>(params.batch, 1, limits.maxComputeWorkGroupCount[2]))};
    };
    auto ceil_div = [](std::uint64_t x, std::uint64_t y) { return (x + y - 1) / y; };
    const vulkan::MatmulConfig config = current_matmul_config();
    if (kernel == "tiled" && params.k > 0) {
      const auto& t = config.tiles;
      launch_groups(Kernel::matmul_tiled, {&a, &b, bias_or_a, &c}, &params, storage16,
                    groups_for(ceil_div(params.n, t.bn), ceil_div(params.m, t.bm)),
                    {t.threads(), t.bm, t.bn, t.bk, t.tm, t.tn, params.ab_dtype});
    } else if (kernel == "subgroup" && params.k > 0 && subgroup_matmul_) {
      const std::uint32_t lanes = facts_.subgroup.subgroupSize;
      const std::uint32_t cols = config.subgroup_cols;
      launch_groups(Kernel::matmul_subgroup, {&a, &b, bias_or_a, &c}, &params, storage16,
                    groups_for(ceil_div(params.n, lanes * cols), ceil_div(params.m, vulkan::matmul_subgroup_rows)),
                    {lanes, lanes, params.ab_dtype, cols});
    } else if (kernel == "naive" || params.k == 0) {
      // The flattened m x n elements along x, a grid-stride loop covering the rest.
      const std::uint32_t group = tuning_.stream_group_size;
      auto groups = groups_for(ceil_div(std::uint64_t(params.m) * params.n, group), 1);
      groups[0] = std::min(groups[0], tuning_.max_groups);
      launch_groups(Kernel::matmul, {&a, &b, bias_or_a, &c}, &params, storage16, groups, {group});
    } else {
      throw Error(ErrorKind::invalid_argument, "porta vulkan: matmul on " + core_->id + ": no kernel named '" +
                                                   std::string(kernel) + "'");
    }
  }

  // The table's configuration, or $PORTA_VULKAN_MATMUL applied on top of it (read at every
  // call, so porta-vulkan-tuner can switch configurations in one process).
  vulkan::MatmulConfig current_matmul_config() {
    const char* text = std::getenv("PORTA_VULKAN_MATMUL");
    if (text == nullptr || *text == '\0') return matmul_config_;
    std::lock_guard lock(override_mutex_);
    if (override_text_ != text) {
      vulkan::MatmulConfig config = matmul_config_;
      if (const std::string why = vulkan::apply_matmul_override(text, traits_, config); !why.empty()) {
        throw Error(ErrorKind::invalid_argument,
                    "porta vulkan: PORTA_VULKAN_MATMUL='" + std::string(text) + "' on " + core_->id + ": " + why);
      }
      override_config_ = config;
      override_text_ = text;
    }
    return override_config_;
  }

  std::vector<std::string> attention_kernels() const override {
    std::vector<std::string> names{std::string(attention_config_.preferred)};
    if (attention_config_.preferred != "tiled") names.emplace_back("tiled");
    if (attention_config_.preferred != "subgroup" && subgroup_attention_) names.emplace_back("subgroup");
    return names;
  }

  void attention_forward(const Buffer& q, const Buffer& k, const Buffer& v, Buffer& o, Buffer& lse,
                         const kernels::AttentionParams& params, std::string_view kernel) override {
    check_attention(params, kernel, "attention");
    const bool storage16 = is_narrow(params.dtype);
    if (kernel == "subgroup" && subgroup_attention_) {
      const std::uint32_t lanes = facts_.subgroup.subgroupSize;
      const std::uint32_t rows = attention_config_.subgroup_rows;
      launch_groups(Kernel::attention_forward_subgroup, {&q, &k, &v, &o, &lse}, &params, storage16,
                    attention_groups(params.nq, lanes * rows, params.heads_q, params.batch),
                    {lanes, lanes, params.d, params.dtype, rows, rows_aligned_to_4(params) ? 1u : 0u});
    } else {
      const std::uint32_t bq = attention_config_.forward_bq;
      const std::uint32_t bk = vulkan::attention_fit_tile(attention_config_.forward_bk, params.d, 0, traits_);
      launch_groups(Kernel::attention_forward_tiled, {&q, &k, &v, &o, &lse}, &params, storage16,
                    attention_groups(params.nq, bq, params.heads_q, params.batch), {bq, bk, params.d, params.dtype});
    }
  }

  void attention_backward(const Buffer& q, const Buffer& k, const Buffer& v, const Buffer& o, const Buffer& lse,
                          const Buffer& grad_o, Buffer& dq, Buffer& dk, Buffer& dv,
                          const kernels::AttentionParams& params, std::string_view kernel) override {
    check_attention(params, kernel, "attention_backward");
    const bool storage16 = is_narrow(params.dtype);
    const std::uint64_t rows = std::uint64_t(params.batch) * params.heads_q * params.nq;
    // Delta = rowsum(dO * O): O(B * H * N) scratch, counted like any allocation.
    std::shared_ptr<Buffer> delta = allocate(rows * sizeof(float));
    const std::initializer_list<const Buffer*> buffers = {&q, &k, &v, &o, &lse, &grad_o, &dq, &dk, &dv, delta.get()};
    const std::uint32_t group = tuning_.stream_group_size;
    const auto delta_groups =
        static_cast<std::uint32_t>(std::clamp<std::uint64_t>((rows + group - 1) / group, 1, tuning_.max_groups));
    launch_groups(Kernel::attention_delta, buffers, &params, storage16, {delta_groups, 1, 1},
                  {group, params.d, params.dtype});
    const std::uint32_t block = attention_config_.backward_block;
    const std::uint32_t dkdv_tile =
        vulkan::attention_fit_tile(attention_config_.backward_tile, params.d, 2, traits_);
    launch_groups(Kernel::attention_dkdv, buffers, &params, storage16,
                  attention_groups(params.nk, block, params.heads_kv, params.batch),
                  {block, dkdv_tile, params.d, params.dtype});
    const std::uint32_t dq_tile = vulkan::attention_fit_tile(attention_config_.backward_tile, params.d, 0, traits_);
    launch_groups(Kernel::attention_dq, buffers, &params, storage16,
                  attention_groups(params.nq, block, params.heads_q, params.batch),
                  {block, dq_tile, params.d, params.dtype});
  }

  bool has_softmax_rows() const override { return true; }

  void softmax_rows(const Buffer& in, Buffer& out, Buffer& lse, const kernels::SoftmaxParams& params) override {
    if (params.rows == 0) return;
    launch(Kernel::softmax, {&in, &out, &lse}, &params, false, params.rows, tuning_.stream_group_size);
  }

 private:
  void check_attention(const kernels::AttentionParams& params, std::string_view kernel, std::string_view op) const {
    if (kernel != "tiled" && !(kernel == "subgroup" && subgroup_attention_)) {
      throw Error(ErrorKind::invalid_argument, "porta vulkan: " + std::string(op) + " on " + core_->id +
                                                   ": no kernel named '" + std::string(kernel) + "'");
    }
    if (params.d == 0 || params.d > vulkan::attention_max_d) {
      throw Error(ErrorKind::unsupported, "porta vulkan: " + std::string(op) + " on " + core_->id +
                                              ": head dim " + std::to_string(params.d) + " is beyond " +
                                              std::to_string(vulkan::attention_max_d));
    }
  }

  // Whether every Q, K and V row starts at a multiple of 4 elements (d is a multiple of
  // 16): the subgroup forward then moves rows with vector loads.
  static bool rows_aligned_to_4(const kernels::AttentionParams& params) {
    const std::uint32_t starts = params.q_offset | params.q_stride_b | params.q_stride_h | params.q_stride_n |
                                 params.k_offset | params.k_stride_b | params.k_stride_h | params.k_stride_n |
                                 params.v_offset | params.v_stride_b | params.v_stride_h | params.v_stride_n;
    return starts % 4 == 0;
  }

  // x: blocks of `rows`, y: heads, z: batch; the shaders stride over what the limits cut.
  std::array<std::uint32_t, 3> attention_groups(std::uint32_t n, std::uint32_t rows, std::uint32_t heads,
                                                std::uint32_t batch) const {
    const auto& limits = facts_.properties.limits;
    const std::uint64_t blocks = (std::uint64_t(n) + rows - 1) / rows;
    return {static_cast<std::uint32_t>(std::clamp<std::uint64_t>(blocks, 1, limits.maxComputeWorkGroupCount[0])),
            std::clamp<std::uint32_t>(heads, 1, limits.maxComputeWorkGroupCount[1]),
            std::clamp<std::uint32_t>(batch, 1, limits.maxComputeWorkGroupCount[2])};
  }

  // --- setup --------------------------------------------------------------------------
  void fill_info(int index) {
    const auto& properties = facts_.properties;
    info_.backend = BackendKind::vulkan;
    info_.index = index;
    info_.type = device_type(properties.deviceType);
    info_.name = properties.deviceName;
    info_.vendor = vulkan::vendor_name(properties.vendorID);
    info_.driver = std::string(facts_.driver.driverName);
    if (facts_.driver.driverInfo[0] != '\0') info_.driver += std::string(" ") + facts_.driver.driverInfo;
    info_.driver += ", Vulkan " + version_string(properties.apiVersion);
    std::uint64_t largest_local = 0;
    std::uint64_t largest_any = 0;
    for (std::uint32_t heap = 0; heap < facts_.memory.memoryHeapCount; ++heap) {
      const auto& h = facts_.memory.memoryHeaps[heap];
      largest_any = std::max<std::uint64_t>(largest_any, h.size);
      if ((h.flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0) largest_local = std::max<std::uint64_t>(largest_local, h.size);
    }
    info_.memory_bytes = largest_local != 0 ? largest_local : largest_any;
    std::uint64_t limit = std::min<std::uint64_t>(facts_.maintenance3.maxMemoryAllocationSize,
                                                  properties.limits.maxStorageBufferRange);
    // Allocations are rounded up to whole words, and a binding covers all of it.
    info_.max_allocation_bytes = std::min<std::uint64_t>(limit, info_.memory_bytes) & ~std::uint64_t(3);
    info_.compute_units = 0;  // Vulkan does not say
    info_.max_work_group_size = properties.limits.maxComputeWorkGroupInvocations;
    info_.subgroup_size = facts_.subgroup.subgroupSize;
    info_.fp16 = facts_.storage16;
  }

  void choose_memory_types() {
    const auto& memory = facts_.memory;
    std::uint64_t largest_local = 0;
    for (std::uint32_t heap = 0; heap < memory.memoryHeapCount; ++heap) {
      if ((memory.memoryHeaps[heap].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0) {
        largest_local = std::max<std::uint64_t>(largest_local, memory.memoryHeaps[heap].size);
      }
    }
    const VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    // Mapped device memory only where it is the main heap (unified memory, resizable BAR):
    // a 256 MiB BAR window would run out long before the device does.
    bool force_staging = env_flag("PORTA_VULKAN_FORCE_STAGING");
    for (std::uint32_t type = 0; type < memory.memoryTypeCount; ++type) {
      const auto flags = memory.memoryTypes[type].propertyFlags;
      const auto heap_size = memory.memoryHeaps[memory.memoryTypes[type].heapIndex].size;
      if ((flags & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) == 0) continue;
      if (!force_staging && (flags & host) == host && heap_size >= largest_local && !mapped_type_) mapped_type_ = type;
      if (!local_type_) local_type_ = type;
    }
    for (std::uint32_t type = 0; type < memory.memoryTypeCount; ++type) {
      if ((memory.memoryTypes[type].propertyFlags & host) == host && !staging_type_) staging_type_ = type;
    }
  }

  void create_device() {
    const float priority = 1.0f;
    VkDeviceQueueCreateInfo queue{};
    queue.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO;
    queue.queueFamilyIndex = facts_.queue_family;
    queue.queueCount = 1;
    queue.pQueuePriorities = &priority;
    VkPhysicalDeviceVulkan11Features features11{};
    features11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES;
    features11.storageBuffer16BitAccess = facts_.storage16 ? VK_TRUE : VK_FALSE;
    std::vector<const char*> extensions;
    if (facts_.creation_feedback) extensions.push_back(VK_EXT_PIPELINE_CREATION_FEEDBACK_EXTENSION_NAME);
    if (facts_.portability_subset) extensions.push_back("VK_KHR_portability_subset");
    VkDeviceCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO;
    info.pNext = &features11;
    info.queueCreateInfoCount = 1;
    info.pQueueCreateInfos = &queue;
    info.enabledExtensionCount = static_cast<std::uint32_t>(extensions.size());
    info.ppEnabledExtensionNames = extensions.data();
    check(vkCreateDevice(facts_.handle, &info, nullptr, &core_->device), "vkCreateDevice", core_->id);
    vkGetDeviceQueue(core_->device, facts_.queue_family, 0, &queue_);

    VkCommandPoolCreateInfo pool{};
    pool.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO;
    pool.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    pool.queueFamilyIndex = facts_.queue_family;
    check(vkCreateCommandPool(core_->device, &pool, nullptr, &command_pool_), "vkCreateCommandPool", core_->id);
  }

  void create_layouts() {
    for (std::size_t k = 0; k < kernel_specs.size(); ++k) {
      const auto& spec = kernel_specs[k];
      std::vector<VkDescriptorSetLayoutBinding> bindings(spec.bindings);
      for (std::uint32_t b = 0; b < spec.bindings; ++b) {
        bindings[b].binding = b;
        bindings[b].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        bindings[b].descriptorCount = 1;
        bindings[b].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
      }
      VkDescriptorSetLayoutCreateInfo set_info{};
      set_info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO;
      set_info.bindingCount = spec.bindings;
      set_info.pBindings = bindings.data();
      check(vkCreateDescriptorSetLayout(core_->device, &set_info, nullptr, &set_layouts_[k]),
            "vkCreateDescriptorSetLayout", core_->id);
      VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, spec.push_bytes};
      VkPipelineLayoutCreateInfo layout_info{};
      layout_info.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO;
      layout_info.setLayoutCount = 1;
      layout_info.pSetLayouts = &set_layouts_[k];
      layout_info.pushConstantRangeCount = 1;
      layout_info.pPushConstantRanges = &range;
      check(vkCreatePipelineLayout(core_->device, &layout_info, nullptr, &pipeline_layouts_[k]),
            "vkCreatePipelineLayout", core_->id);
    }
  }

  // --- pipeline cache on disk ------------------------------------------------------------
  std::filesystem::path pipeline_cache_file() const {
    const auto& p = facts_.properties;
    auto bytes_of = [](const auto& value) {
      return std::string_view(reinterpret_cast<const char*>(&value), sizeof value);
    };
    return cache_file("vulkan", stable_hash({bytes_of(p.vendorID), bytes_of(p.deviceID), bytes_of(p.driverVersion),
                                             bytes_of(p.pipelineCacheUUID)}));
  }

  // The header a driver writes first (VkPipelineCacheHeaderVersionOne); data for another
  // device or driver is dropped here rather than trusted to every driver's own check.
  bool cache_header_matches(const std::vector<unsigned char>& data) const {
    if (data.size() < 32) return false;
    std::uint32_t words[4];
    std::memcpy(words, data.data(), sizeof words);
    return words[0] >= 32 && words[1] == VK_PIPELINE_CACHE_HEADER_VERSION_ONE &&
           words[2] == facts_.properties.vendorID && words[3] == facts_.properties.deviceID &&
           std::memcmp(data.data() + 16, facts_.properties.pipelineCacheUUID, VK_UUID_SIZE) == 0;
  }

  void load_pipeline_cache() {
    cache_path_ = pipeline_cache_file();
    std::vector<unsigned char> initial;
    if (auto loaded = cache_load(cache_path_); loaded && cache_header_matches(*loaded)) initial = std::move(*loaded);
    VkPipelineCacheCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO;
    info.initialDataSize = initial.size();
    info.pInitialData = initial.empty() ? nullptr : initial.data();
    check(vkCreatePipelineCache(core_->device, &info, nullptr, &pipeline_cache_), "vkCreatePipelineCache", core_->id);
  }

  void save_pipeline_cache() {
    if (pipeline_cache_ == VK_NULL_HANDLE || cache_path_.empty() || !cache_dirty_) return;
    std::size_t size = 0;
    if (vkGetPipelineCacheData(core_->device, pipeline_cache_, &size, nullptr) != VK_SUCCESS || size == 0) return;
    std::vector<unsigned char> data(size);
    if (vkGetPipelineCacheData(core_->device, pipeline_cache_, &size, data.data()) != VK_SUCCESS) return;
    data.resize(size);
    cache_store(cache_path_, data);
    cache_dirty_ = false;
  }

  // --- pipelines --------------------------------------------------------------------------
  // `constants` are the specialization constants 0, 1, ... (0: the work-group size).
  VkPipeline pipeline(Kernel kernel, bool storage16, const std::vector<std::uint32_t>& constants) {
    auto key = std::make_tuple(kernel, storage16, constants);
    if (auto found = pipelines_.find(key); found != pipelines_.end()) return found->second;
    const auto& spec = kernel_specs[static_cast<std::size_t>(kernel)];
    const std::string name = std::string(spec.name) + (storage16 ? ".s16_1" : ".s16_0");
    std::span<const unsigned char> code = embedded::vulkan_spirv(name);
    VkShaderModuleCreateInfo module_info{};
    module_info.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO;
    module_info.codeSize = code.size();
    module_info.pCode = reinterpret_cast<const std::uint32_t*>(code.data());  // embedded with alignas(4)
    VkShaderModule module = VK_NULL_HANDLE;
    check(vkCreateShaderModule(core_->device, &module_info, nullptr, &module), "vkCreateShaderModule(" + name + ")",
          core_->id);

    std::vector<VkSpecializationMapEntry> entries(constants.size());
    for (std::uint32_t id = 0; id < constants.size(); ++id) {
      entries[id] = {id, static_cast<std::uint32_t>(id * sizeof(std::uint32_t)), sizeof(std::uint32_t)};
    }
    VkSpecializationInfo specialization{static_cast<std::uint32_t>(entries.size()), entries.data(),
                                        constants.size() * sizeof(std::uint32_t), constants.data()};
    VkComputePipelineCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO;
    info.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    info.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    info.stage.module = module;
    info.stage.pName = "main";
    info.stage.pSpecializationInfo = &specialization;
    info.layout = pipeline_layouts_[static_cast<std::size_t>(kernel)];
    VkPipelineCreationFeedback feedback{};
    VkPipelineCreationFeedbackCreateInfo feedback_info{};
    if (facts_.creation_feedback) {
      feedback_info.sType = VK_STRUCTURE_TYPE_PIPELINE_CREATION_FEEDBACK_CREATE_INFO;
      feedback_info.pPipelineCreationFeedback = &feedback;
      info.pNext = &feedback_info;
    }
    VkPipeline created = VK_NULL_HANDLE;
    VkResult result = vkCreateComputePipelines(core_->device, pipeline_cache_, 1, &info, nullptr, &created);
    vkDestroyShaderModule(core_->device, module, nullptr);
    std::string described;
    for (std::uint32_t value : constants) described += (described.empty() ? "" : ", ") + std::to_string(value);
    check(result, "vkCreateComputePipelines(" + name + ", specialization " + described + ")", core_->id);
    pipelines_.emplace(key, created);
    const VkPipelineCreationFeedbackFlags hit =
        VK_PIPELINE_CREATION_FEEDBACK_VALID_BIT | VK_PIPELINE_CREATION_FEEDBACK_APPLICATION_PIPELINE_CACHE_HIT_BIT;
    if ((feedback.flags & hit) == hit) {
      count_program_loaded_from_cache();
    } else {
      count_program_built();
      cache_dirty_ = true;
      save_pipeline_cache();  // a crash later still keeps what was compiled
    }
    return created;
  }

  // --- memory -----------------------------------------------------------------------------
  std::shared_ptr<Allocation> create_allocation(std::uint64_t size, bool device_local) {
    auto allocation = std::make_shared<Allocation>();
    allocation->core = core_;
    allocation->size = size;
    VkBufferCreateInfo buffer_info{};
    buffer_info.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
    buffer_info.size = size;
    buffer_info.usage =
        VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    buffer_info.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    check(vkCreateBuffer(core_->device, &buffer_info, nullptr, &allocation->buffer), "vkCreateBuffer", core_->id);
    VkMemoryRequirements requirements{};
    vkGetBufferMemoryRequirements(core_->device, allocation->buffer, &requirements);
    std::optional<std::uint32_t> type;
    auto usable = [&](std::optional<std::uint32_t> candidate) {
      return candidate && (requirements.memoryTypeBits & (1u << *candidate)) != 0;
    };
    if (device_local) {
      if (usable(mapped_type_)) {
        type = mapped_type_;
      } else if (usable(local_type_)) {
        type = local_type_;
      }
    } else if (usable(staging_type_)) {
      type = staging_type_;
    }
    if (!type) {
      throw Error(ErrorKind::backend_error, "porta vulkan: " + core_->id + " offers no suitable memory type for a " +
                                                (device_local ? "storage" : "staging") + " buffer");
    }
    VkMemoryAllocateInfo memory_info{};
    memory_info.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO;
    memory_info.allocationSize = requirements.size;
    memory_info.memoryTypeIndex = *type;
    VkResult result = vkAllocateMemory(core_->device, &memory_info, nullptr, &allocation->memory);
    if (result != VK_SUCCESS) {
      allocation->memory = VK_NULL_HANDLE;
      if (kind_of(result) == ErrorKind::out_of_memory) {
        throw Error(ErrorKind::out_of_memory, "porta vulkan: vkAllocateMemory of " + std::to_string(size) +
                                                  " bytes failed on " + core_->id + ": " + result_name(result));
      }
      fail(result, "vkAllocateMemory", core_->id);
    }
    check(vkBindBufferMemory(core_->device, allocation->buffer, allocation->memory, 0), "vkBindBufferMemory",
          core_->id);
    const auto flags = facts_.memory.memoryTypes[*type].propertyFlags;
    const VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    if ((flags & host) == host) {
      check(vkMapMemory(core_->device, allocation->memory, 0, VK_WHOLE_SIZE, 0, &allocation->mapped), "vkMapMemory",
            core_->id);
    }
    return allocation;
  }

  std::shared_ptr<Allocation>& staging_buffer() {
    if (!staging_) staging_ = create_allocation(tuning_.staging_bytes, false);
    return staging_;
  }

  bool holds_retired_buffers() const {
    for (const auto& batch : in_flight_) {
      if (!batch->retained.empty()) return true;
    }
    return recording_ != nullptr && !recording_->retained.empty();
  }

  // --- batches ----------------------------------------------------------------------------
  Batch& recording_batch() {
    if (recording_ != nullptr) return *recording_;
    std::unique_ptr<Batch> batch;
    if (!spare_.empty()) {
      batch = std::move(spare_.back());
      spare_.pop_back();
    } else {
      batch = std::make_unique<Batch>();
      VkCommandBufferAllocateInfo allocate{};
      allocate.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
      allocate.commandPool = command_pool_;
      allocate.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
      allocate.commandBufferCount = 1;
      check(vkAllocateCommandBuffers(core_->device, &allocate, &batch->commands), "vkAllocateCommandBuffers",
            core_->id);
      VkFenceCreateInfo fence{};
      fence.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO;
      VkResult result = vkCreateFence(core_->device, &fence, nullptr, &batch->fence);
      if (result != VK_SUCCESS) {
        vkFreeCommandBuffers(core_->device, command_pool_, 1, &batch->commands);
        fail(result, "vkCreateFence", core_->id);
      }
    }
    VkCommandBufferBeginInfo begin{};
    begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
    begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    VkResult result = vkBeginCommandBuffer(batch->commands, &begin);
    if (result != VK_SUCCESS) {
      spare_.push_back(std::move(batch));
      fail(result, "vkBeginCommandBuffer", core_->id);
    }
    recording_ = std::move(batch);
    return *recording_;
  }

  VkDescriptorSet allocate_set(Batch& batch, Kernel kernel) {
    if (batch.pools.empty() || batch.sets_in_pool == sets_per_pool) {
      if (!batch.pools.empty()) ++batch.pool_in_use;
      if (batch.pool_in_use == batch.pools.size()) {
        VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, sets_per_pool * max_bindings};
        VkDescriptorPoolCreateInfo info{};
        info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO;
        info.maxSets = sets_per_pool;
        info.poolSizeCount = 1;
        info.pPoolSizes = &size;
        VkDescriptorPool pool = VK_NULL_HANDLE;
        check(vkCreateDescriptorPool(core_->device, &info, nullptr, &pool), "vkCreateDescriptorPool", core_->id);
        batch.pools.push_back(pool);
      }
      batch.sets_in_pool = 0;
    }
    VkDescriptorSetAllocateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO;
    info.descriptorPool = batch.pools[batch.pool_in_use];
    info.descriptorSetCount = 1;
    info.pSetLayouts = &set_layouts_[static_cast<std::size_t>(kernel)];
    VkDescriptorSet set = VK_NULL_HANDLE;
    check(vkAllocateDescriptorSets(core_->device, &info, &set), "vkAllocateDescriptorSets", core_->id);
    ++batch.sets_in_pool;
    return set;
  }

  // Orders every recorded command after the ones before it (kernels and copies).
  static void barrier_after(VkCommandBuffer commands) {
    VkMemoryBarrier barrier{};
    barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER;
    barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    barrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                            VK_ACCESS_TRANSFER_WRITE_BIT;
    const VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(commands, stages, stages, 0, 1, &barrier, 0, nullptr, 0, nullptr);
  }

  // One invocation per item along x, at most max_groups work-groups (kernels stride over the rest).
  void launch(Kernel kernel, std::initializer_list<const Buffer*> buffers, const void* params, bool storage16,
              std::uint64_t items, std::uint32_t group_size) {
    const std::uint64_t groups_needed = (items + group_size - 1) / group_size;
    const auto groups = static_cast<std::uint32_t>(std::clamp<std::uint64_t>(groups_needed, 1, tuning_.max_groups));
    launch_groups(kernel, buffers, params, storage16, {groups, 1, 1}, {group_size});
  }

  void launch_groups(Kernel kernel, std::initializer_list<const Buffer*> buffers, const void* params, bool storage16,
                     std::array<std::uint32_t, 3> groups, const std::vector<std::uint32_t>& constants) {
    std::lock_guard lock(mutex_);
    const auto& spec = kernel_specs[static_cast<std::size_t>(kernel)];
    if (storage16 && !facts_.storage16) {
      throw Error(ErrorKind::unsupported, "porta vulkan: " + std::string(spec.name) + " on " + core_->id +
                                              ": f16/bf16 need storageBuffer16BitAccess, which this device lacks");
    }
    VkPipeline chosen = pipeline(kernel, storage16, constants);
    Batch& batch = recording_batch();
    VkDescriptorSet set = allocate_set(batch, kernel);
    std::array<VkDescriptorBufferInfo, max_bindings> infos{};
    std::array<VkWriteDescriptorSet, max_bindings> writes{};
    std::uint32_t binding = 0;
    for (const Buffer* buffer : buffers) {
      const auto& allocation = allocation_of(*buffer);
      infos[binding] = {allocation->buffer, 0, VK_WHOLE_SIZE};
      writes[binding].sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
      writes[binding].dstSet = set;
      writes[binding].dstBinding = binding;
      writes[binding].descriptorCount = 1;
      writes[binding].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
      writes[binding].pBufferInfo = &infos[binding];
      batch.retained.push_back(allocation);
      ++binding;
    }
    vkUpdateDescriptorSets(core_->device, binding, writes.data(), 0, nullptr);
    const std::size_t layout = static_cast<std::size_t>(kernel);
    vkCmdBindPipeline(batch.commands, VK_PIPELINE_BIND_POINT_COMPUTE, chosen);
    vkCmdBindDescriptorSets(batch.commands, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline_layouts_[layout], 0, 1, &set, 0,
                            nullptr);
    vkCmdPushConstants(batch.commands, pipeline_layouts_[layout], VK_SHADER_STAGE_COMPUTE_BIT, 0, spec.push_bytes,
                       params);
    vkCmdDispatch(batch.commands, groups[0], groups[1], groups[2]);
    barrier_after(batch.commands);
    // Long runs without a sync point: let the device start, and bound what the batch holds.
    if (++batch.dispatches >= tuning_.batch_dispatches) submit();
  }

  void record_copy(const std::shared_ptr<Allocation>& from, std::uint64_t from_offset,
                   const std::shared_ptr<Allocation>& to, std::uint64_t to_offset, std::uint64_t bytes) {
    Batch& batch = recording_batch();
    VkBufferCopy region{from_offset, to_offset, bytes};
    vkCmdCopyBuffer(batch.commands, from->buffer, to->buffer, 1, &region);
    barrier_after(batch.commands);
    batch.retained.push_back(from);
    batch.retained.push_back(to);
  }

  // Ends and submits the recording batch, if any; returns at once.
  void submit() {
    if (recording_ == nullptr) return;
    std::unique_ptr<Batch> batch = std::move(recording_);
    // The host reads results after the fence: make the device's writes visible to it.
    VkMemoryBarrier barrier{};
    barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER;
    barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    barrier.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(batch->commands, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &barrier, 0, nullptr, 0, nullptr);
    VkResult result = vkEndCommandBuffer(batch->commands);
    if (result == VK_SUCCESS) {
      VkSubmitInfo info{};
      info.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO;
      info.commandBufferCount = 1;
      info.pCommandBuffers = &batch->commands;
      result = vkQueueSubmit(queue_, 1, &info, batch->fence);
    }
    if (result != VK_SUCCESS) {
      recycle(*batch);
      spare_.push_back(std::move(batch));
      fail(result, "vkQueueSubmit", core_->id);
    }
    in_flight_.push_back(std::move(batch));
    while (in_flight_.size() > max_batches_in_flight) finish_oldest();
  }

  void finish_oldest() {
    std::unique_ptr<Batch> batch = std::move(in_flight_.front());
    in_flight_.pop_front();
    VkResult result = vkWaitForFences(core_->device, 1, &batch->fence, VK_TRUE, UINT64_MAX);
    if (result == VK_SUCCESS) result = vkResetFences(core_->device, 1, &batch->fence);
    if (result != VK_SUCCESS) {
      // Whatever happened, nothing of this batch will run again: drop what it holds.
      batch->retained.clear();
      spare_.push_back(std::move(batch));
      fail(result, "vkWaitForFences", core_->id);
    }
    recycle(*batch);
    spare_.push_back(std::move(batch));
  }

  // Makes a finished batch ready to record again.
  void recycle(Batch& batch) {
    for (VkDescriptorPool pool : batch.pools) vkResetDescriptorPool(core_->device, pool, 0);
    batch.pool_in_use = 0;
    batch.sets_in_pool = 0;
    batch.dispatches = 0;
    batch.retained.clear();
  }

  // Submits what is recorded and waits for everything queued.
  void finish_all() {
    submit();
    while (!in_flight_.empty()) finish_oldest();
  }

  void destroy_batch(Batch& batch) {
    for (VkDescriptorPool pool : batch.pools) vkDestroyDescriptorPool(core_->device, pool, nullptr);
    if (batch.fence != VK_NULL_HANDLE) vkDestroyFence(core_->device, batch.fence, nullptr);
    batch.retained.clear();
  }

  void destroy_objects() {
    if (core_->device == VK_NULL_HANDLE) return;
    if (recording_ != nullptr) {
      vkEndCommandBuffer(recording_->commands);
      spare_.push_back(std::move(recording_));
    }
    for (auto& batch : in_flight_) spare_.push_back(std::move(batch));
    in_flight_.clear();
    for (auto& batch : spare_) destroy_batch(*batch);
    spare_.clear();
    staging_.reset();
    for (auto& [key, handle] : pipelines_) vkDestroyPipeline(core_->device, handle, nullptr);
    pipelines_.clear();
    if (pipeline_cache_ != VK_NULL_HANDLE) vkDestroyPipelineCache(core_->device, pipeline_cache_, nullptr);
    pipeline_cache_ = VK_NULL_HANDLE;
    for (auto& layout : pipeline_layouts_) {
      if (layout != VK_NULL_HANDLE) vkDestroyPipelineLayout(core_->device, layout, nullptr);
      layout = VK_NULL_HANDLE;
    }
    for (auto& layout : set_layouts_) {
      if (layout != VK_NULL_HANDLE) vkDestroyDescriptorSetLayout(core_->device, layout, nullptr);
      layout = VK_NULL_HANDLE;
    }
    // Destroying the pool frees its command buffers.
    if (command_pool_ != VK_NULL_HANDLE) vkDestroyCommandPool(core_->device, command_pool_, nullptr);
    command_pool_ = VK_NULL_HANDLE;
  }

  PhysicalDeviceFacts facts_;
  std::shared_ptr<Core> core_;
  DeviceInfo info_;
  Tuning tuning_;
  vulkan::MatmulConfig matmul_config_;
  std::mutex override_mutex_;                  // guards the two below
  std::string override_text_;                  // the last $PORTA_VULKAN_MATMUL seen, parsed:
  vulkan::MatmulConfig override_config_;
  vulkan::AttentionConfig attention_config_;
  bool subgroup_attention_ = false;  // vulkan_forward_subgroup.comp can run here
  vulkan::DeviceTraits traits_;
  bool subgroup_matmul_ = false;  // vulkan_subgroup.comp can run here
  std::optional<std::uint32_t> mapped_type_;   // device-local, host-visible and coherent
  std::optional<std::uint32_t> local_type_;    // device-local
  std::optional<std::uint32_t> staging_type_;  // host-visible and coherent

  std::mutex mutex_;  // the queue, batches and pipelines
  VkQueue queue_ = VK_NULL_HANDLE;
  VkCommandPool command_pool_ = VK_NULL_HANDLE;
  std::array<VkDescriptorSetLayout, kernel_specs.size()> set_layouts_{};
  std::array<VkPipelineLayout, kernel_specs.size()> pipeline_layouts_{};
  VkPipelineCache pipeline_cache_ = VK_NULL_HANDLE;
  std::filesystem::path cache_path_;
  bool cache_dirty_ = false;
  std::map<std::tuple<Kernel, bool, std::vector<std::uint32_t>>, VkPipeline> pipelines_;
  std::unique_ptr<Batch> recording_;
  std::deque<std::unique_ptr<Batch>> in_flight_;
  std::vector<std::unique_ptr<Batch>> spare_;
  std::shared_ptr<Allocation> staging_;
};

// What porta needs of a physical device, or why it is left out.
std::optional<std::string> examine(VkPhysicalDevice handle, PhysicalDeviceFacts& facts) {
  facts.handle = handle;
  VkPhysicalDeviceProperties2 properties{};
  properties.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2;
  vkGetPhysicalDeviceProperties(handle, &properties.properties);
  const std::string name = properties.properties.deviceName;
  if (properties.properties.apiVersion < VK_API_VERSION_1_2) {
    return name + " supports Vulkan " + version_string(properties.properties.apiVersion) + " only, porta needs 1.2";
  }
  facts.driver.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES;
  facts.subgroup.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES;
  facts.maintenance3.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES;
  properties.pNext = &facts.driver;
  facts.driver.pNext = &facts.subgroup;
  facts.subgroup.pNext = &facts.maintenance3;
  vkGetPhysicalDeviceProperties2(handle, &properties);
  facts.driver.pNext = nullptr;
  facts.subgroup.pNext = nullptr;
  facts.properties = properties.properties;

  VkPhysicalDeviceVulkan11Features features11{};
  features11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES;
  VkPhysicalDeviceFeatures2 features{};
  features.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
  features.pNext = &features11;
  vkGetPhysicalDeviceFeatures2(handle, &features);
  // PORTA_VULKAN_NO_STORAGE16=1 plays a device without 16-bit storage, for tests.
  facts.storage16 = features11.storageBuffer16BitAccess == VK_TRUE && !env_flag("PORTA_VULKAN_NO_STORAGE16");
  vkGetPhysicalDeviceMemoryProperties(handle, &facts.memory);

  std::uint32_t count = 0;
  vkEnumerateDeviceExtensionProperties(handle, nullptr, &count, nullptr);
  std::vector<VkExtensionProperties> extensions(count);
  vkEnumerateDeviceExtensionProperties(handle, nullptr, &count, extensions.data());
  auto has_extension = [&](const char* wanted) {
    return std::any_of(extensions.begin(), extensions.begin() + count,
                       [&](const auto& extension) { return std::strcmp(extension.extensionName, wanted) == 0; });
  };
  facts.creation_feedback = has_extension(VK_EXT_PIPELINE_CREATION_FEEDBACK_EXTENSION_NAME);
  facts.portability_subset = has_extension("VK_KHR_portability_subset");

  vkGetPhysicalDeviceQueueFamilyProperties(handle, &count, nullptr);
  std::vector<VkQueueFamilyProperties> families(count);
  vkGetPhysicalDeviceQueueFamilyProperties(handle, &count, families.data());
  // A compute-only family (an async compute engine) if there is one, else any with compute.
  std::optional<std::uint32_t> chosen;
  for (std::uint32_t family = 0; family < count; ++family) {
    const auto flags = families[family].queueFlags;
    if ((flags & VK_QUEUE_COMPUTE_BIT) == 0 || families[family].queueCount == 0) continue;
    if (!chosen || (flags & VK_QUEUE_GRAPHICS_BIT) == 0) chosen = family;
    if ((flags & VK_QUEUE_GRAPHICS_BIT) == 0) break;
  }
  if (!chosen) return name + " has no compute queue";
  facts.queue_family = *chosen;
  return std::nullopt;
}

}  // namespace

Discovery discover_vulkan() {
  Discovery found;
  auto instance = std::make_shared<Instance>();
  if (auto why = instance->create(env_flag("PORTA_VULKAN_VALIDATION"))) {
    found.unavailable_reason = *why;
    return found;
  }
  std::uint32_t count = 0;
  VkResult result = vkEnumeratePhysicalDevices(instance->handle, &count, nullptr);
  std::vector<VkPhysicalDevice> handles(count);
  if (result == VK_SUCCESS && count > 0) result = vkEnumeratePhysicalDevices(instance->handle, &count, handles.data());
  if (result != VK_SUCCESS && result != VK_INCOMPLETE) {
    found.unavailable_reason = std::string("vkEnumeratePhysicalDevices failed: ") + result_name(result);
    return found;
  }
  if (count == 0) {
    found.unavailable_reason =
        "the Vulkan loader lists no device; install a driver, e.g. Debian: apt-get install mesa-vulkan-drivers";
    return found;
  }
  std::vector<std::string> skipped;
  for (std::uint32_t i = 0; i < count; ++i) {
    PhysicalDeviceFacts facts;
    if (auto why = examine(handles[i], facts)) {
      skipped.push_back(*why);
      continue;
    }
    try {
      found.devices.push_back(
          std::make_shared<VulkanDevice>(instance, facts, static_cast<int>(found.devices.size())));
    } catch (const Error& error) {
      skipped.push_back(error.what());
    }
  }
  if (found.devices.empty()) {
    found.unavailable_reason = "no usable Vulkan device:";
    for (const auto& why : skipped) found.unavailable_reason += " " + why + ";";
  }
  return found;
}

}  // namespace porta::backend

// api_test.cpp — the public API around the kernels: device selection and its errors,
// tensor views, bad input of every kind, allocation failures, and the kernel caches.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <utility>

#include "backends/backend.hpp"
#include "porta/porta.hpp"
#include "reference.hpp"

namespace porta::test {
namespace {

template <class F>
Error error_of(F&& call) {
  try {
    call();
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << "expected porta::Error, nothing was thrown";
  return Error(ErrorKind::backend_error, "");
}

::testing::AssertionResult mentions(const Error& error, std::initializer_list<std::string_view> parts) {
  std::string text = error.what();
  for (std::string_view part : parts) {
    if (text.find(part) == std::string::npos) {
      return ::testing::AssertionFailure() << "'" << text << "' does not mention '" << part << "'";
    }
  }
  return ::testing::AssertionSuccess();
}

std::vector<float> iota_floats(std::size_t count) {
  std::vector<float> values(count);
  std::iota(values.begin(), values.end(), 0.0f);
  return values;
}

// ---- devices ------------------------------------------------------------------------

TEST(Devices, ListsTheBackendsThisBuildExpects) {
  // ctest sets PORTA_EXPECT_DEVICES to the backends built, so a driver that silently
  // vanished fails here instead of shrinking the conformance suite.
  const char* expected = std::getenv("PORTA_EXPECT_DEVICES");
  if (expected == nullptr) GTEST_SKIP() << "PORTA_EXPECT_DEVICES not set";
  std::string list = expected;
  for (std::size_t start = 0; start < list.size();) {
    std::size_t end = list.find(',', start);
    std::string backend = list.substr(start, end == std::string::npos ? std::string::npos : end - start);
    EXPECT_NO_THROW(Device::get(backend)) << "no " << backend << " device";
    if (end == std::string::npos) break;
    start = end + 1;
  }
}

TEST(Devices, InfoIsComplete) {
  for (const Device& device : devices()) {
    const DeviceInfo& info = device.info();
    SCOPED_TRACE(info.id());
    EXPECT_FALSE(info.name.empty());
    EXPECT_FALSE(info.driver.empty());
    EXPECT_GT(info.memory_bytes, 0u);
    EXPECT_GT(info.max_allocation_bytes, 0u);
    EXPECT_LE(info.max_allocation_bytes, info.memory_bytes);
    EXPECT_GT(info.max_work_group_size, 0u);
    EXPECT_TRUE(Device::get(info.id()) == device);
  }
}

TEST(Devices, NoIndexMeansIndexZero) { EXPECT_TRUE(Device::get("cpu") == Device::get("cpu:0")); }

TEST(Devices, BadNamesAreRejected) {
  EXPECT_TRUE(mentions(error_of([] { Device::get("gpu:0"); }), {"unknown backend 'gpu'", "cpu, opencl or vulkan"}));
  EXPECT_TRUE(mentions(error_of([] { Device::get("cpu:x"); }), {"'cpu:x'", "non-negative index"}));
  EXPECT_TRUE(mentions(error_of([] { Device::get("cpu:-1"); }), {"'cpu:-1'"}));
  EXPECT_TRUE(mentions(error_of([] { Device::get("cpu:"); }), {"'cpu:'"}));
  Error missing = error_of([] { Device::get("cpu:4096"); });
  EXPECT_EQ(missing.kind(), ErrorKind::invalid_argument);
  EXPECT_TRUE(mentions(missing, {"'cpu:4096'", "indices 0 to"}));
}

TEST(Devices, EnvironmentChoosesTheDefault) {
  ::setenv("PORTA_DEVICE", "cpu:0", 1);
  EXPECT_TRUE(Device::default_device() == Device::get("cpu:0"));
  ::setenv("PORTA_DEVICE", "nonsense:3", 1);
  EXPECT_EQ(error_of([] { Device::default_device(); }).kind(), ErrorKind::invalid_argument);
  ::unsetenv("PORTA_DEVICE");
  EXPECT_NO_THROW(Device::default_device());
}

// ---- tensors and views ----------------------------------------------------------------

TEST(Tensors, ViewsShareStorageAndReadBackInOrder) {
  for (const Device& device : devices()) {
    SCOPED_TRACE(device.id());
    std::vector<float> values = iota_floats(24);
    Tensor t = Tensor::from_host(std::span<const float>(values), {2, 3, 4}, f32, device);
    EXPECT_TRUE(t.is_contiguous());
    Tensor r = t.reshape({6, -1});
    EXPECT_EQ(r.shape(), (Shape{6, 4}));
    EXPECT_EQ(r.buffer(), t.buffer());
    Tensor p = t.permute({2, 0, 1});  // [4, 2, 3]
    EXPECT_FALSE(p.is_contiguous());
    EXPECT_EQ(p.buffer(), t.buffer());
    std::vector<float> got = p.to_host<float>();
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 2; ++j)
        for (int k = 0; k < 3; ++k) EXPECT_EQ(got[(i * 2 + j) * 3 + k], values[(j * 3 + k) * 4 + i]);
    Tensor s = t.slice(2, 1, 4, 2);  // last dim: elements 1 and 3
    EXPECT_EQ(s.shape(), (Shape{2, 3, 2}));
    std::vector<float> sliced = s.to_host<float>();
    EXPECT_EQ(sliced[0], 1.0f);
    EXPECT_EQ(sliced[1], 3.0f);
    EXPECT_EQ(sliced[11], 23.0f);
    Tensor tt = t.transpose(0, -1).contiguous();
    EXPECT_TRUE(tt.is_contiguous());
    EXPECT_EQ(tt.shape(), (Shape{4, 3, 2}));
  }
}

TEST(Tensors, ZeroSizeTensorsAreValidAndEmpty) {
  for (const Device& device : devices()) {
    Tensor empty = zeros({3, 0, 2}, f32, device);
    EXPECT_EQ(empty.numel(), 0);
    EXPECT_TRUE(add(empty, empty).to_host<float>().empty());
    EXPECT_EQ(sum(empty).to_host<float>(), std::vector<float>{0.0f});
    EXPECT_EQ(sum(empty, 1).shape(), (Shape{3, 2}));
    EXPECT_EQ(sum(empty, 1).to_host<float>(), std::vector<float>(6, 0.0f));
  }
}

TEST(Tensors, BadViewsAreRejected) {
  Device cpu = Device::get("cpu");
  Tensor t = zeros({2, 3, 4}, f32, cpu);
  EXPECT_TRUE(mentions(error_of([&] { t.reshape({5, 5}); }), {"reshape", "24 elements"}));
  EXPECT_TRUE(mentions(error_of([&] { t.reshape({-1, -1}); }), {"at most one -1"}));
  EXPECT_TRUE(mentions(error_of([&] { t.transpose(0, 1).reshape({24}); }), {"contiguous"}));
  EXPECT_TRUE(mentions(error_of([&] { t.permute({0, 0, 1}); }), {"permute", "repeats"}));
  EXPECT_TRUE(mentions(error_of([&] { t.permute({0, 1}); }), {"permute", "expected 3 dimensions"}));
  EXPECT_TRUE(mentions(error_of([&] { t.slice(3, 0, 1); }), {"slice", "argument dim"}));
  EXPECT_TRUE(mentions(error_of([&] { t.slice(0, 0, 1, 0); }), {"slice", "step"}));
  EXPECT_TRUE(mentions(error_of([&] { Tensor::empty({1, 2, 3, 4, 5, 6, 7, 8, 9}, f32, cpu); }), {"at most 8"}));
  EXPECT_TRUE(mentions(error_of([&] { Tensor::empty({-1}, f32, cpu); }), {"sizes >= 0"}));
  EXPECT_EQ(error_of([&] { Tensor::empty({1 << 20, 1 << 20}, f32, cpu); }).kind(), ErrorKind::unsupported);
  std::vector<float> three(3);
  EXPECT_TRUE(mentions(error_of([&] { Tensor::from_host(std::span<const float>(three), {4}, f32, cpu); }),
                       {"from_host", "expected 16 bytes", "got 12"}));
  std::vector<float> out(5);
  EXPECT_TRUE(mentions(error_of([&] { t.copy_to_host(out.data(), 20); }), {"copy_to_host", "expected 96"}));
}

// ---- bad op arguments -------------------------------------------------------------------

TEST(Ops, MismatchedArgumentsAreRejected) {
  const std::vector<Device> all = devices();
  for (const Device& device : all) {
    SCOPED_TRACE(device.id());
    Tensor a = zeros({3, 4}, f32, device);
    Error shape = error_of([&] { add(a, zeros({4, 3}, f32, device)); });
    EXPECT_EQ(shape.kind(), ErrorKind::invalid_argument);
    EXPECT_TRUE(mentions(shape, {"porta::add", "argument b", "expected shape [3, 4]", "got [4, 3]"}));
    EXPECT_TRUE(mentions(error_of([&] { mul(a, zeros({3, 4}, bf16, device)); }),
                         {"porta::mul", "expected dtype f32", "got bf16"}));
    EXPECT_TRUE(mentions(error_of([&] { axpby(1, a, 1, Tensor()); }), {"porta::axpby", "argument b", "undefined"}));
    EXPECT_TRUE(mentions(error_of([&] { add(zeros({2}, i32, device), zeros({2}, i32, device)); }),
                         {"porta::add", "floating dtype", "got i32"}));
    EXPECT_TRUE(mentions(error_of([&] { cast(zeros({2}, i32, device), f32); }), {"porta::cast", "i32 to f32"}));
    EXPECT_TRUE(mentions(error_of([&] { sum(a, 2); }), {"porta::sum", "argument dim"}));
    EXPECT_TRUE(mentions(error_of([&] { full({2}, 0.5, i32, device); }), {"porta::full", "i32 range"}));
    EXPECT_TRUE(mentions(error_of([&] { uniform({2}, f32, device, 1, 0, 1.0f, 1.0f); }), {"porta::uniform", "low < high"}));
    for (const Device& other : all) {
      if (other == device) continue;
      EXPECT_TRUE(mentions(error_of([&] { add(a, zeros({3, 4}, f32, other)); }),
                           {"porta::add", "argument b", "expected a tensor on " + device.id(), other.id()}));
    }
  }
}

// ---- allocation failure ---------------------------------------------------------------

TEST(Memory, AnAllocationBeyondTheDeviceFailsCleanly) {
  for (const Device& device : devices()) {
    SCOPED_TRACE(device.id());
    device.synchronize();
    const std::uint64_t before = device.stats().bytes_allocated;
    // 1 PiB: a tensor that large is refused earlier by the 32-bit index limit, so ask the
    // backend itself.
    Error huge = error_of([&] { device.impl().allocate(std::uint64_t(1) << 50); });
    EXPECT_EQ(huge.kind(), ErrorKind::out_of_memory);
    EXPECT_TRUE(mentions(huge, {device.id(), std::to_string(std::uint64_t(1) << 50)}));
    EXPECT_EQ(device.stats().bytes_allocated, before) << "a failed allocation leaked";
    // The device still works.
    EXPECT_EQ(sum(full({1000}, 1.0, f32, device)).to_host<float>(), std::vector<float>{1000.0f});
  }
}

TEST(Memory, AccountingFollowsTensorLifetimes) {
  for (const Device& device : devices()) {
    SCOPED_TRACE(device.id());
    device.synchronize();
    const std::uint64_t before = device.stats().bytes_allocated;
    device.reset_peak();
    {
      Tensor t = zeros({1 << 20}, f32, device);
      EXPECT_EQ(device.stats().bytes_allocated, before + (4u << 20));
    }
    device.synchronize();
    EXPECT_EQ(device.stats().bytes_allocated, before);
    EXPECT_GE(device.stats().peak_bytes_allocated, before + (4u << 20));
  }
}

// ---- the Vulkan matmul's override (porta-vulkan-tuner's lever) ------------------------

std::uint64_t pipelines_made(const Device& device) {
  const DeviceStats stats = device.stats();
  return stats.programs_built + stats.programs_loaded_from_cache;
}

// $PORTA_VULKAN_MATMUL sets the parameters of the kernel it names: each setting makes its
// own pipeline and agrees with the naive kernel; a setting the device cannot run, or text
// that does not parse, is a clear error naming the variable and the reason.
TEST(VulkanMatmulOverride, SetsTheTilesOrSaysWhyNot) {
  struct Unset {
    ~Unset() { unsetenv("PORTA_VULKAN_MATMUL"); }
  } unset;
  for (const Device& device : devices()) {
    if (device.info().backend != BackendKind::vulkan) continue;
    SCOPED_TRACE(device.id());
    const Tensor a = randn({67, 45}, f32, device, 1), b = randn({45, 29}, f32, device, 2);
    MatmulOptions options;
    options.kernel = "naive";
    const std::vector<float> want = matmul(a, b, options).to_host<float>();
    std::vector<std::pair<std::string, std::string>> settings = {{"tiled", "tiled bm=16 bn=32 bk=4 tm=2 tn=8"},
                                                                 {"tiled", "tiled bk=3 tm=1"}};
    const std::vector<std::string> kernels = matmul_kernels(device);
    const bool has_subgroup = std::find(kernels.begin(), kernels.end(), "subgroup") != kernels.end();
    if (has_subgroup) settings.emplace_back("subgroup", "subgroup cols=3");
    for (const auto& [kernel, text] : settings) {
      SCOPED_TRACE(text);
      setenv("PORTA_VULKAN_MATMUL", text.c_str(), 1);
      const std::uint64_t before = pipelines_made(device);
      options.kernel = kernel;
      const std::vector<float> got = matmul(a, b, options).to_host<float>();
      EXPECT_GT(pipelines_made(device), before) << "no new pipeline: the setting was not used";
      double diff = 0, norm = 0;
      for (std::size_t i = 0; i < want.size(); ++i) {
        diff += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
        norm += double(want[i]) * want[i];
      }
      EXPECT_LT(std::sqrt(diff / norm), 1e-5);  // NaN (a poisoned output left unwritten) fails too
    }
    options.kernel = "tiled";
    const std::pair<const char*, const char*> bad[] = {
        {"wide bm=64", "expected 'tiled ...' or 'subgroup ...'"},
        {"tiled bm", "expected key=value, got 'bm'"},
        {"tiled bm=-4", "expected a number in 'bm=-4'"},
        {"tiled depth=2", "unknown key 'depth' for tiled"},
        {"tiled tm=9", "tm and tn must be 1..8"},
        {"tiled bm=30 tm=4", "bm must be a multiple of tm"},
        {"tiled bm=4096 bn=4096 tm=1 tn=1", "invocations per work-group, the device allows"},
        {"tiled bm=64 bn=64 bk=1000000 tm=8 tn=8", "bytes of shared memory, the device has"},
        {"subgroup cols=9", has_subgroup ? "cols must be 1..8" : "the device cannot run the subgroup kernel"},
    };
    for (const auto& [text, reason] : bad) {
      SCOPED_TRACE(text);
      setenv("PORTA_VULKAN_MATMUL", text, 1);
      const Error error = error_of([&] { matmul(a, b, options).to_host<float>(); });
      EXPECT_EQ(error.kind(), ErrorKind::invalid_argument);
      EXPECT_TRUE(mentions(error, {"PORTA_VULKAN_MATMUL", text, reason}));
    }
  }
}

// ---- kernel caches (driven by ctest with their own environment) ------------------------

// With PORTA_EXPECT_CACHE=cold|warm, runs every kernel on every device, then checks
// that a warm run (a second process over the same PORTA_CACHE_DIR) compiled nothing.
TEST(KernelCache, SecondProcessDoesNotRecompile) {
  const char* expect = std::getenv("PORTA_EXPECT_CACHE");
  if (expect == nullptr) GTEST_SKIP() << "runs as the ctest pair kernel_cache_cold / kernel_cache_warm";
  for (const Device& device : devices()) {
    SCOPED_TRACE(device.id());
    Tensor x = randn({1000}, f32, device, 7);
    Tensor y = uniform({1000}, f32, device, 8);
    Tensor z = axpby(2, add(x, y), 1, mul(x, y));
    std::vector<float> total = sum(cast(z.reshape({10, 100}).transpose(0, 1), bf16)).to(f32).to_host<float>();
    EXPECT_TRUE(std::isfinite(total[0]));
    DeviceStats stats = device.stats();
    std::printf("%s: %llu kernel programs built, %llu loaded from the disk cache\n", device.id().c_str(),
                static_cast<unsigned long long>(stats.programs_built),
                static_cast<unsigned long long>(stats.programs_loaded_from_cache));
    if (std::string_view(expect) == "warm" && device.info().backend == BackendKind::opencl) {
      EXPECT_EQ(stats.programs_built, 0u) << "the warm run recompiled OpenCL programs";
      EXPECT_GT(stats.programs_loaded_from_cache, 0u);
    }
  }
}

// With PORTA_OPENCL_OPTIONS set to break the build (ctest opencl_build_failure), the
// error names the failure and carries the compiler's log.
TEST(OpenclBuildFailure, ReportsTheBuildLog) {
  if (std::getenv("PORTA_EXPECT_BUILD_FAILURE") == nullptr) GTEST_SKIP() << "runs as the ctest opencl_build_failure";
  Device device = Device::get("opencl:0");
  Error error = error_of([&] { full({4}, 1.0, f32, device).to_host<float>(); });
  EXPECT_EQ(error.kind(), ErrorKind::backend_error);
  EXPECT_TRUE(mentions(error, {"opencl:0", "CL_BUILD_PROGRAM_FAILURE", "error"}));
  std::printf("the error as a user sees it:\n%s\n", error.what());
}

}  // namespace
}  // namespace porta::test

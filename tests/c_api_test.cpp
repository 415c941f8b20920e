// c_api_test.cpp — the C API (porta/porta.h): the plain-C end-to-end checks on every
// device, and every bad input it can receive: each must give its status code and a
// message, leave the outputs untouched, and never throw.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "c_api_end_to_end.h"
#include "porta/porta.h"

// This binary replaces the global operator new so that a test can make the next
// allocations on its thread fail: std::bad_alloc deep inside porta must come back as
// PORTA_ERROR_OUT_OF_MEMORY. (libporta's own allocations resolve to this one too.)
namespace {
thread_local int failing_allocations = 0;
}  // namespace

void* operator new(std::size_t size) {
  if (failing_allocations > 0) {
    --failing_allocations;
    throw std::bad_alloc();
  }
  if (void* memory = std::malloc(size == 0 ? 1 : size)) return memory;
  throw std::bad_alloc();
}
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t) noexcept { std::free(memory); }

namespace {

// ---- end to end, from C, on every device --------------------------------------------

std::vector<std::string> device_ids() {
  std::vector<std::string> ids;
  size_t count = 0;
  if (porta_device_count(&count) != PORTA_OK) return ids;
  for (size_t i = 0; i < count; ++i) {
    porta_device device = nullptr;
    porta_device_info info;
    porta_device_info_init(&info);
    if (porta_device_at(i, &device) == PORTA_OK && porta_device_get_info(device, &info) == PORTA_OK) {
      ids.emplace_back(info.id);
    }
  }
  return ids;
}

std::uint64_t fresh_seed() {
  std::random_device source;
  return (std::uint64_t(source()) << 32) | source();
}

using Check = int (*)(const char*, std::uint64_t, char*, size_t);

void run_check(Check check, const std::string& device) {
  const std::uint64_t seed = fresh_seed();
  char report[1024] = "";
  const int result = check(device.c_str(), seed, report, sizeof report);
  if (result == C_API_CHECK_UNSUPPORTED) GTEST_SKIP() << report;
  EXPECT_EQ(result, C_API_CHECK_PASSED) << device << ", seed " << seed << ": " << report;
}

class CApiEndToEnd : public ::testing::TestWithParam<std::string> {};

TEST_P(CApiEndToEnd, MatmulFromCMatchesFloat64) { run_check(c_api_check_matmul, GetParam()); }
TEST_P(CApiEndToEnd, AttentionForwardAndBackwardFromCMatchFloat64) { run_check(c_api_check_attention, GetParam()); }

INSTANTIATE_TEST_SUITE_P(Devices, CApiEndToEnd, ::testing::ValuesIn(device_ids()),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           std::string name = param.param;
                           for (char& c : name) c = c == ':' ? '_' : c;
                           return name;
                         });

TEST(CApiDevices, EveryDeviceIsFoundByItsIdAndKeepsItsHandle) {
  size_t count = 0;
  ASSERT_EQ(porta_device_count(&count), PORTA_OK);
  ASSERT_GT(count, 0u);
  for (size_t i = 0; i < count; ++i) {
    porta_device at = nullptr, by_name = nullptr;
    ASSERT_EQ(porta_device_at(i, &at), PORTA_OK);
    porta_device_info info;
    porta_device_info_init(&info);
    ASSERT_EQ(porta_device_get_info(at, &info), PORTA_OK);
    ASSERT_NE(info.id, nullptr);
    ASSERT_NE(info.name, nullptr);
    EXPECT_GT(info.max_allocation_bytes, 0u) << info.id;
    ASSERT_EQ(porta_device_get(info.id, &by_name), PORTA_OK) << porta_last_error();
    EXPECT_EQ(at, by_name) << info.id << ": one device, one handle";
    EXPECT_EQ(porta_device_synchronize(at), PORTA_OK);
  }
  porta_device chosen = nullptr;
  EXPECT_EQ(porta_device_default(&chosen), PORTA_OK);
  EXPECT_NE(chosen, nullptr);
}

TEST(CApiVersion, TheLibraryAndTheHeaderAgree) {
  int major = -1, minor = -1, patch = -1;
  porta_version(&major, &minor, &patch);
  EXPECT_EQ(major, PORTA_VERSION_MAJOR);
  EXPECT_EQ(minor, PORTA_VERSION_MINOR);
  EXPECT_EQ(patch, PORTA_VERSION_PATCH);
  EXPECT_EQ(std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch),
            std::string(PORTA_VERSION_STRING));
}

// ---- bad input ----------------------------------------------------------------------

// The call returned `expected` and the thread's last error mentions every part.
::testing::AssertionResult failed_with(porta_status got, porta_status expected,
                                       std::initializer_list<std::string_view> parts) {
  if (got != expected) {
    return ::testing::AssertionFailure() << "returned " << porta_status_name(got) << ", expected "
                                         << porta_status_name(expected) << " (last error: " << porta_last_error() << ")";
  }
  const std::string text = porta_last_error();
  for (std::string_view part : parts) {
    if (text.find(part) == std::string::npos) {
      return ::testing::AssertionFailure() << "'" << text << "' does not mention '" << part << "'";
    }
  }
  return ::testing::AssertionSuccess();
}

// A value no output may take on failure: outputs are left untouched.
porta_tensor untouched_tensor() { return reinterpret_cast<porta_tensor>(std::uintptr_t(0xdead)); }
porta_device untouched_device() { return reinterpret_cast<porta_device>(std::uintptr_t(0xbeef)); }

porta_device cpu(int index = 0) {
  porta_device device = nullptr;
  EXPECT_EQ(porta_device_get(("cpu:" + std::to_string(index)).c_str(), &device), PORTA_OK) << porta_last_error();
  return device;
}

porta_tensor make(porta_device device, std::vector<std::int64_t> shape, float value = 1.0f) {
  std::int64_t count = 1;
  for (std::int64_t extent : shape) count *= extent;
  std::vector<float> data(static_cast<std::size_t>(count), value);
  porta_tensor tensor = nullptr;
  EXPECT_EQ(porta_tensor_from_host(device, PORTA_F32, shape.data(), static_cast<int32_t>(shape.size()), data.data(),
                                   data.size() * sizeof(float), &tensor),
            PORTA_OK)
      << porta_last_error();
  return tensor;
}

TEST(CApiErrors, DeviceCalls) {
  size_t count = 0;
  porta_device device = untouched_device();
  EXPECT_TRUE(failed_with(porta_device_count(nullptr), PORTA_ERROR_INVALID_ARGUMENT, {"porta_device_count", "count"}));
  ASSERT_EQ(porta_device_count(&count), PORTA_OK);
  EXPECT_TRUE(failed_with(porta_device_at(count, &device), PORTA_ERROR_INVALID_ARGUMENT,
                          {"porta_device_at", "index", std::to_string(count)}));
  EXPECT_TRUE(failed_with(porta_device_at(0, nullptr), PORTA_ERROR_INVALID_ARGUMENT, {"porta_device_at", "device"}));
  EXPECT_TRUE(failed_with(porta_device_get(nullptr, &device), PORTA_ERROR_INVALID_ARGUMENT, {"porta_device_get", "name"}));
  EXPECT_TRUE(failed_with(porta_device_get("gpu:0", &device), PORTA_ERROR_INVALID_ARGUMENT, {"unknown backend 'gpu'"}));
  EXPECT_TRUE(failed_with(porta_device_get("cpu:x", &device), PORTA_ERROR_INVALID_ARGUMENT, {"'cpu:x'"}));
  EXPECT_TRUE(failed_with(porta_device_get("cpu:0", nullptr), PORTA_ERROR_INVALID_ARGUMENT, {"argument device"}));
  EXPECT_TRUE(failed_with(porta_device_default(nullptr), PORTA_ERROR_INVALID_ARGUMENT, {"porta_device_default"}));
  EXPECT_EQ(device, untouched_device());

  porta_device_info info;
  porta_device_info_init(&info);
  EXPECT_TRUE(failed_with(porta_device_get_info(nullptr, &info), PORTA_ERROR_INVALID_HANDLE, {"argument device", "null"}));
  EXPECT_TRUE(failed_with(porta_device_get_info(untouched_device(), &info), PORTA_ERROR_INVALID_HANDLE,
                          {"not a device handle"}));
  EXPECT_TRUE(failed_with(porta_device_get_info(cpu(), nullptr), PORTA_ERROR_INVALID_ARGUMENT, {"argument info"}));
  porta_device_info uninitialised{};
  EXPECT_TRUE(failed_with(porta_device_get_info(cpu(), &uninitialised), PORTA_ERROR_INVALID_ARGUMENT,
                          {"struct_size is 0", "porta_device_info_init"}));
  EXPECT_EQ(uninitialised.id, nullptr);
  EXPECT_TRUE(failed_with(porta_device_synchronize(nullptr), PORTA_ERROR_INVALID_HANDLE, {"porta_device_synchronize"}));
}

TEST(CApiErrors, TensorFromHost) {
  const std::int64_t shape[2] = {2, 3};
  const std::int64_t negative[2] = {2, -3};
  const float data[6] = {1, 2, 3, 4, 5, 6};
  porta_tensor tensor = untouched_tensor();
  EXPECT_TRUE(failed_with(porta_tensor_from_host(nullptr, PORTA_F32, shape, 2, data, sizeof data, &tensor),
                          PORTA_ERROR_INVALID_HANDLE, {"porta_tensor_from_host", "argument device"}));
  EXPECT_TRUE(failed_with(porta_tensor_from_host(cpu(), 99, shape, 2, data, sizeof data, &tensor),
                          PORTA_ERROR_INVALID_ARGUMENT, {"argument dtype", "99"}));
  EXPECT_TRUE(failed_with(porta_tensor_from_host(cpu(), PORTA_F32, shape, 2, data, sizeof data, nullptr),
                          PORTA_ERROR_INVALID_ARGUMENT, {"argument tensor"}));
  EXPECT_TRUE(failed_with(porta_tensor_from_host(cpu(), PORTA_F32, shape, -1, data, sizeof data, &tensor),
                          PORTA_ERROR_INVALID_ARGUMENT, {"argument rank", "-1"}));
  EXPECT_TRUE(failed_with(porta_tensor_from_host(cpu(), PORTA_F32, shape, 9, data, sizeof data, &tensor),
                          PORTA_ERROR_INVALID_ARGUMENT, {"argument rank", "9"}));
  EXPECT_TRUE(failed_with(porta_tensor_from_host(cpu(), PORTA_F32, nullptr, 2, data, sizeof data, &tensor),
                          PORTA_ERROR_INVALID_ARGUMENT, {"argument shape", "null"}));
  EXPECT_TRUE(failed_with(porta_tensor_from_host(cpu(), PORTA_F32, negative, 2, data, sizeof data, &tensor),
                          PORTA_ERROR_INVALID_ARGUMENT, {"-3"}));
  EXPECT_TRUE(failed_with(porta_tensor_from_host(cpu(), PORTA_F32, shape, 2, data, sizeof data - 4, &tensor),
                          PORTA_ERROR_INVALID_ARGUMENT, {"expected 24 bytes", "got 20"}));
  EXPECT_TRUE(failed_with(porta_tensor_from_host(cpu(), PORTA_F16, shape, 2, data, sizeof data, &tensor),
                          PORTA_ERROR_INVALID_ARGUMENT, {"expected 12 bytes", "got 24"}));
  EXPECT_TRUE(failed_with(porta_tensor_from_host(cpu(), PORTA_F32, shape, 2, nullptr, sizeof data, &tensor),
                          PORTA_ERROR_INVALID_ARGUMENT, {"argument data", "null"}));
  EXPECT_EQ(tensor, untouched_tensor());
  // A rank-0 tensor takes no shape; an empty one takes no data.
  ASSERT_EQ(porta_tensor_from_host(cpu(), PORTA_F32, nullptr, 0, data, sizeof(float), &tensor), PORTA_OK);
  EXPECT_EQ(porta_tensor_free(tensor), PORTA_OK);
  const std::int64_t empty[1] = {0};
  ASSERT_EQ(porta_tensor_from_host(cpu(), PORTA_F32, empty, 1, nullptr, 0, &tensor), PORTA_OK);
  EXPECT_EQ(porta_tensor_free(tensor), PORTA_OK);
}

TEST(CApiErrors, TensorReadBackAndInfo) {
  porta_tensor tensor = make(cpu(), {2, 3});
  float host[6];
  size_t bytes = 0;
  EXPECT_TRUE(failed_with(porta_tensor_to_host(nullptr, host, sizeof host), PORTA_ERROR_INVALID_HANDLE,
                          {"porta_tensor_to_host", "argument tensor", "null"}));
  EXPECT_TRUE(failed_with(porta_tensor_to_host(tensor, nullptr, sizeof host), PORTA_ERROR_INVALID_ARGUMENT,
                          {"argument data", "null"}));
  EXPECT_TRUE(failed_with(porta_tensor_to_host(tensor, host, sizeof host + 4), PORTA_ERROR_INVALID_ARGUMENT,
                          {"expected 24", "got 28"}));
  EXPECT_TRUE(failed_with(porta_tensor_nbytes(tensor, nullptr), PORTA_ERROR_INVALID_ARGUMENT, {"argument bytes"}));
  EXPECT_TRUE(failed_with(porta_tensor_info(nullptr, nullptr, nullptr, nullptr, nullptr), PORTA_ERROR_INVALID_HANDLE,
                          {"porta_tensor_info"}));
  ASSERT_EQ(porta_tensor_nbytes(tensor, &bytes), PORTA_OK);
  EXPECT_EQ(bytes, sizeof host);
  ASSERT_EQ(porta_tensor_free(tensor), PORTA_OK);
  // Every call on a freed handle says so.
  EXPECT_TRUE(failed_with(porta_tensor_to_host(tensor, host, sizeof host), PORTA_ERROR_INVALID_HANDLE, {"already freed"}));
  EXPECT_TRUE(failed_with(porta_tensor_nbytes(tensor, &bytes), PORTA_ERROR_INVALID_HANDLE, {"already freed"}));
  EXPECT_TRUE(failed_with(porta_tensor_info(tensor, nullptr, nullptr, nullptr, nullptr), PORTA_ERROR_INVALID_HANDLE,
                          {"already freed"}));
}

TEST(CApiErrors, FreeDetectsDoubleFreeAndForeignHandles) {
  EXPECT_EQ(porta_tensor_free(nullptr), PORTA_OK);  // like free(NULL)
  porta_tensor first = make(cpu(), {4});
  ASSERT_EQ(porta_tensor_free(first), PORTA_OK);
  EXPECT_TRUE(failed_with(porta_tensor_free(first), PORTA_ERROR_INVALID_HANDLE, {"porta_tensor_free", "already freed"}));
  // The slot is reused by the next tensor: the stale handle stays dead, the new one lives.
  porta_tensor second = make(cpu(), {4}, 2.0f);
  EXPECT_NE(first, second);
  EXPECT_TRUE(failed_with(porta_tensor_free(first), PORTA_ERROR_INVALID_HANDLE, {"already freed"}));
  float host[4] = {};
  ASSERT_EQ(porta_tensor_to_host(second, host, sizeof host), PORTA_OK) << porta_last_error();
  EXPECT_EQ(host[3], 2.0f);
  EXPECT_TRUE(failed_with(porta_tensor_free(untouched_tensor()), PORTA_ERROR_INVALID_HANDLE, {"not a tensor handle"}));
  EXPECT_TRUE(failed_with(porta_tensor_free(reinterpret_cast<porta_tensor>(&host)), PORTA_ERROR_INVALID_HANDLE,
                          {"not a tensor handle"}));
  EXPECT_EQ(porta_tensor_free(second), PORTA_OK);
}

TEST(CApiErrors, Matmul) {
  porta_tensor a = make(cpu(), {2, 3});
  porta_tensor b = make(cpu(), {3, 4});
  porta_tensor wrong = make(cpu(), {4, 4});
  porta_tensor elsewhere = make(cpu(1), {3, 4});
  porta_tensor freed = make(cpu(), {4});
  ASSERT_EQ(porta_tensor_free(freed), PORTA_OK);
  porta_tensor out = untouched_tensor();
  porta_matmul_options options;
  porta_matmul_options_init(&options);

  EXPECT_TRUE(failed_with(porta_matmul(nullptr, b, nullptr, &out), PORTA_ERROR_INVALID_HANDLE, {"porta_matmul", "argument a"}));
  EXPECT_TRUE(failed_with(porta_matmul(a, freed, nullptr, &out), PORTA_ERROR_INVALID_HANDLE, {"argument b", "already freed"}));
  EXPECT_TRUE(failed_with(porta_matmul(a, b, nullptr, nullptr), PORTA_ERROR_INVALID_ARGUMENT, {"argument out"}));
  EXPECT_TRUE(failed_with(porta_matmul(a, wrong, nullptr, &out), PORTA_ERROR_INVALID_ARGUMENT, {"porta::matmul"}));
  EXPECT_TRUE(failed_with(porta_matmul(a, elsewhere, nullptr, &out), PORTA_ERROR_INVALID_ARGUMENT, {"cpu:1"}));
  porta_matmul_options zeroed{};
  EXPECT_TRUE(failed_with(porta_matmul(a, b, &zeroed, &out), PORTA_ERROR_INVALID_ARGUMENT,
                          {"argument options", "struct_size", "porta_matmul_options_init"}));
  options.epilogue = 7;
  EXPECT_TRUE(failed_with(porta_matmul(a, b, &options, &out), PORTA_ERROR_INVALID_ARGUMENT, {"options->epilogue", "7"}));
  porta_matmul_options_init(&options);
  options.bias = freed;
  EXPECT_TRUE(failed_with(porta_matmul(a, b, &options, &out), PORTA_ERROR_INVALID_HANDLE, {"options->bias", "already freed"}));
  options.bias = a;  // [2, 3], expected [4]
  EXPECT_TRUE(failed_with(porta_matmul(a, b, &options, &out), PORTA_ERROR_INVALID_ARGUMENT, {"bias"}));
  EXPECT_EQ(out, untouched_tensor());

  // The same inputs, right this time, work: a failed call leaves nothing broken.
  porta_matmul_options_init(&options);
  options.trans_b = 1;
  ASSERT_EQ(porta_matmul(a, wrong, &options, &out), PORTA_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ(porta_matmul(a, b, nullptr, &out), PORTA_OK) << porta_last_error();
  float host[8];
  ASSERT_EQ(porta_tensor_to_host(out, host, sizeof host), PORTA_OK);
  EXPECT_EQ(host[7], 3.0f);
  for (porta_tensor tensor : {a, b, wrong, elsewhere, out}) EXPECT_EQ(porta_tensor_free(tensor), PORTA_OK);
}

TEST(CApiErrors, MatmulBetaNeedsAnExistingOutput) {
  porta_tensor a = make(cpu(), {2, 3});
  porta_tensor b = make(cpu(), {3, 4});
  porta_tensor out = untouched_tensor();
  porta_matmul_options options;
  porta_matmul_options_init(&options);
  EXPECT_EQ(options.beta, 0.0f);
  options.beta = 0.5f;
  EXPECT_TRUE(failed_with(porta_matmul(a, b, &options, &out), PORTA_ERROR_INVALID_ARGUMENT,
                          {"porta_matmul", "options->beta", "porta_matmul_into"}));
  EXPECT_EQ(out, untouched_tensor());
  for (porta_tensor tensor : {a, b}) EXPECT_EQ(porta_tensor_free(tensor), PORTA_OK);
}

TEST(CApiErrors, MatmulInto) {
  porta_tensor a = make(cpu(), {2, 3});
  porta_tensor b = make(cpu(), {3, 4});
  porta_tensor c = make(cpu(), {2, 4}, 7.0f);
  porta_tensor wrong = make(cpu(), {4, 2}, 7.0f);
  porta_tensor elsewhere = make(cpu(1), {2, 4}, 7.0f);
  porta_tensor square = make(cpu(), {3, 3});
  porta_tensor freed = make(cpu(), {2, 4});
  ASSERT_EQ(porta_tensor_free(freed), PORTA_OK);
  std::int64_t shape[2] = {2, 4};
  std::vector<std::int32_t> integers(8, 0);
  porta_tensor integer = nullptr;
  ASSERT_EQ(porta_tensor_from_host(cpu(), PORTA_I32, shape, 2, integers.data(), 8 * sizeof(std::int32_t), &integer),
            PORTA_OK);
  porta_matmul_options options;
  porta_matmul_options_init(&options);
  options.beta = 1.0f;

  EXPECT_TRUE(failed_with(porta_matmul_into(a, b, &options, nullptr), PORTA_ERROR_INVALID_HANDLE,
                          {"porta_matmul_into", "argument c"}));
  EXPECT_TRUE(failed_with(porta_matmul_into(a, b, &options, freed), PORTA_ERROR_INVALID_HANDLE, {"argument c", "already freed"}));
  EXPECT_TRUE(failed_with(porta_matmul_into(a, b, &options, wrong), PORTA_ERROR_INVALID_ARGUMENT, {"c", "[2, 4]", "[4, 2]"}));
  EXPECT_TRUE(failed_with(porta_matmul_into(a, b, &options, elsewhere), PORTA_ERROR_INVALID_ARGUMENT, {"cpu:1"}));
  EXPECT_TRUE(failed_with(porta_matmul_into(a, b, &options, integer), PORTA_ERROR_INVALID_ARGUMENT, {"c", "i32"}));
  EXPECT_TRUE(failed_with(porta_matmul_into(square, square, &options, square), PORTA_ERROR_INVALID_ARGUMENT,
                          {"overlaps input a"}));
  porta_matmul_options zeroed{};
  EXPECT_TRUE(failed_with(porta_matmul_into(a, b, &zeroed, c), PORTA_ERROR_INVALID_ARGUMENT,
                          {"porta_matmul_into", "struct_size"}));

  // Every failure left c as it was; then c = 1 * a b + 1 * c (each product 3, each c 7).
  float host[8];
  ASSERT_EQ(porta_tensor_to_host(c, host, sizeof host), PORTA_OK);
  for (float value : host) EXPECT_EQ(value, 7.0f);
  ASSERT_EQ(porta_matmul_into(a, b, &options, c), PORTA_OK) << porta_last_error();
  ASSERT_EQ(porta_tensor_to_host(c, host, sizeof host), PORTA_OK);
  for (float value : host) EXPECT_EQ(value, 10.0f);
  for (porta_tensor tensor : {a, b, c, wrong, elsewhere, square, integer}) EXPECT_EQ(porta_tensor_free(tensor), PORTA_OK);
}

TEST(CApiErrors, MatmulBackward) {
  porta_tensor a = make(cpu(), {2, 3});
  porta_tensor b = make(cpu(), {3, 4});
  porta_tensor grad = make(cpu(), {2, 4});
  porta_tensor wrong = make(cpu(), {4, 2});
  porta_tensor bias = make(cpu(), {4});
  porta_tensor da = untouched_tensor(), db = untouched_tensor(), dbias = untouched_tensor();
  porta_matmul_options options;
  porta_matmul_options_init(&options);

  EXPECT_TRUE(failed_with(porta_matmul_backward(nullptr, a, b, nullptr, &da, &db, nullptr), PORTA_ERROR_INVALID_HANDLE,
                          {"porta_matmul_backward", "argument grad_out"}));
  EXPECT_TRUE(failed_with(porta_matmul_backward(grad, a, b, nullptr, nullptr, &db, nullptr), PORTA_ERROR_INVALID_ARGUMENT,
                          {"argument da"}));
  EXPECT_TRUE(failed_with(porta_matmul_backward(grad, a, b, nullptr, &da, nullptr, nullptr), PORTA_ERROR_INVALID_ARGUMENT,
                          {"argument db"}));
  EXPECT_TRUE(failed_with(porta_matmul_backward(wrong, a, b, nullptr, &da, &db, nullptr), PORTA_ERROR_INVALID_ARGUMENT,
                          {"grad_out"}));
  options.bias = bias;
  EXPECT_TRUE(failed_with(porta_matmul_backward(grad, a, b, &options, &da, &db, nullptr), PORTA_ERROR_INVALID_ARGUMENT,
                          {"argument dbias"}));
  options.beta = 1.0f;
  EXPECT_TRUE(failed_with(porta_matmul_backward(grad, a, b, &options, &da, &db, &dbias), PORTA_ERROR_INVALID_ARGUMENT,
                          {"beta"}));
  EXPECT_EQ(da, untouched_tensor());
  EXPECT_EQ(db, untouched_tensor());
  EXPECT_EQ(dbias, untouched_tensor());

  // Without a bias, dbias is neither required nor written.
  ASSERT_EQ(porta_matmul_backward(grad, a, b, nullptr, &da, &db, &dbias), PORTA_OK) << porta_last_error();
  EXPECT_EQ(dbias, untouched_tensor());
  float host_da[6], host_db[12];
  ASSERT_EQ(porta_tensor_to_host(da, host_da, sizeof host_da), PORTA_OK);
  ASSERT_EQ(porta_tensor_to_host(db, host_db, sizeof host_db), PORTA_OK);
  for (float value : host_da) EXPECT_EQ(value, 4.0f);  // grad (ones) times b^T: 4 ones per row
  for (float value : host_db) EXPECT_EQ(value, 2.0f);  // a^T times grad: 2 rows
  for (porta_tensor tensor : {a, b, grad, wrong, bias, da, db}) EXPECT_EQ(porta_tensor_free(tensor), PORTA_OK);
}

TEST(CApiErrors, Attention) {
  porta_tensor q = make(cpu(), {1, 2, 3, 32});
  porta_tensor k = make(cpu(), {1, 1, 4, 32});
  porta_tensor odd = make(cpu(), {1, 1, 4, 7});  // head dimension 7 is not offered
  porta_tensor out = untouched_tensor(), lse = untouched_tensor();
  porta_attention_options options;
  porta_attention_options_init(&options);

  EXPECT_TRUE(failed_with(porta_attention_forward(nullptr, k, k, nullptr, &out, &lse), PORTA_ERROR_INVALID_HANDLE,
                          {"porta_attention_forward", "argument q"}));
  EXPECT_TRUE(failed_with(porta_attention_forward(q, nullptr, k, nullptr, &out, &lse), PORTA_ERROR_INVALID_HANDLE, {"argument k"}));
  EXPECT_TRUE(failed_with(porta_attention_forward(q, k, nullptr, nullptr, &out, &lse), PORTA_ERROR_INVALID_HANDLE, {"argument v"}));
  EXPECT_TRUE(failed_with(porta_attention_forward(q, k, k, nullptr, nullptr, &lse), PORTA_ERROR_INVALID_ARGUMENT, {"argument out"}));
  EXPECT_TRUE(failed_with(porta_attention_forward(q, k, k, nullptr, &out, nullptr), PORTA_ERROR_INVALID_ARGUMENT, {"argument lse"}));
  EXPECT_NE(porta_attention_forward(q, odd, odd, nullptr, &out, &lse), PORTA_OK);
  EXPECT_NE(std::string(porta_last_error()).find("porta::attention"), std::string::npos) << porta_last_error();
  porta_attention_options zeroed{};
  EXPECT_TRUE(failed_with(porta_attention_forward(q, k, k, &zeroed, &out, &lse), PORTA_ERROR_INVALID_ARGUMENT,
                          {"struct_size", "porta_attention_options_init"}));
  options.has_scale = 1;
  options.scale = NAN;
  EXPECT_TRUE(failed_with(porta_attention_forward(q, k, k, &options, &out, &lse), PORTA_ERROR_INVALID_ARGUMENT,
                          {"finite scale"}));
  EXPECT_EQ(out, untouched_tensor());
  EXPECT_EQ(lse, untouched_tensor());

  ASSERT_EQ(porta_attention_forward(q, k, k, nullptr, &out, &lse), PORTA_OK) << porta_last_error();
  porta_tensor dq = untouched_tensor(), dk = untouched_tensor(), dv = untouched_tensor();
  EXPECT_TRUE(failed_with(porta_attention_backward(nullptr, q, k, k, out, lse, nullptr, &dq, &dk, &dv),
                          PORTA_ERROR_INVALID_HANDLE, {"porta_attention_backward", "argument grad_out"}));
  EXPECT_TRUE(failed_with(porta_attention_backward(out, q, k, k, out, nullptr, nullptr, &dq, &dk, &dv),
                          PORTA_ERROR_INVALID_HANDLE, {"argument lse"}));
  EXPECT_TRUE(failed_with(porta_attention_backward(out, q, k, k, out, lse, nullptr, nullptr, &dk, &dv),
                          PORTA_ERROR_INVALID_ARGUMENT, {"argument dq"}));
  EXPECT_TRUE(failed_with(porta_attention_backward(out, q, k, k, out, lse, nullptr, &dq, nullptr, &dv),
                          PORTA_ERROR_INVALID_ARGUMENT, {"argument dk"}));
  EXPECT_TRUE(failed_with(porta_attention_backward(out, q, k, k, out, lse, nullptr, &dq, &dk, nullptr),
                          PORTA_ERROR_INVALID_ARGUMENT, {"argument dv"}));
  EXPECT_TRUE(failed_with(porta_attention_backward(out, q, k, k, out, lse, &zeroed, &dq, &dk, &dv),
                          PORTA_ERROR_INVALID_ARGUMENT, {"struct_size"}));
  EXPECT_NE(porta_attention_backward(lse, q, k, k, out, lse, nullptr, &dq, &dk, &dv), PORTA_OK);  // dO shaped like lse
  EXPECT_NE(std::string(porta_last_error()).find("grad_out"), std::string::npos) << porta_last_error();
  EXPECT_EQ(dq, untouched_tensor());
  EXPECT_EQ(dk, untouched_tensor());
  EXPECT_EQ(dv, untouched_tensor());
  ASSERT_EQ(porta_tensor_free(lse), PORTA_OK);
  EXPECT_TRUE(failed_with(porta_attention_backward(out, q, k, k, out, lse, nullptr, &dq, &dk, &dv),
                          PORTA_ERROR_INVALID_HANDLE, {"argument lse", "already freed"}));
  for (porta_tensor tensor : {q, k, odd, out}) EXPECT_EQ(porta_tensor_free(tensor), PORTA_OK);
}

// All-reduce from C over every device present at once (one rank each), integer-valued
// inputs so every sum, max and min is exact; every rank must end with the same values.
TEST(CApiAllReduce, LocalOverEveryDeviceIsExactOnEveryRank) {
  const std::vector<std::string> ids = device_ids();
  const std::size_t count = 1031;  // prime: not a multiple of any chunk
  for (porta_reduce op : {PORTA_REDUCE_SUM, PORTA_REDUCE_MAX, PORTA_REDUCE_MIN}) {
    std::vector<porta_tensor> tensors;
    for (std::size_t r = 0; r < ids.size(); ++r) {
      porta_device device = nullptr;
      ASSERT_EQ(porta_device_get(ids[r].c_str(), &device), PORTA_OK) << porta_last_error();
      std::vector<float> data(count);
      for (std::size_t i = 0; i < count; ++i) data[i] = float(int((i * 7 + r * 13) % 17) - 8);
      const std::int64_t shape[1] = {std::int64_t(count)};
      porta_tensor tensor = nullptr;
      ASSERT_EQ(porta_tensor_from_host(device, PORTA_F32, shape, 1, data.data(), count * sizeof(float), &tensor),
                PORTA_OK)
          << porta_last_error();
      tensors.push_back(tensor);
    }
    ASSERT_EQ(porta_all_reduce_local(tensors.data(), tensors.size(), op), PORTA_OK) << porta_last_error();
    for (std::size_t r = 0; r < tensors.size(); ++r) {
      std::vector<float> got(count);
      ASSERT_EQ(porta_tensor_to_host(tensors[r], got.data(), count * sizeof(float)), PORTA_OK);
      for (std::size_t i = 0; i < count; ++i) {
        float want = op == PORTA_REDUCE_SUM ? 0.0f : float(int(i * 7 % 17) - 8);
        for (std::size_t q = 0; q < tensors.size(); ++q) {
          const float value = float(int((i * 7 + q * 13) % 17) - 8);
          want = op == PORTA_REDUCE_SUM ? want + value : op == PORTA_REDUCE_MAX ? std::max(want, value) : std::min(want, value);
        }
        ASSERT_EQ(got[i], want) << ids[r] << ", op " << op << ", element " << i;
      }
    }
    for (porta_tensor tensor : tensors) EXPECT_EQ(porta_tensor_free(tensor), PORTA_OK);
  }
}

TEST(CApiErrors, AllReduce) {
  porta_tensor a = make(cpu(), {8});
  porta_tensor b = make(cpu(1), {8});
  porta_tensor shorter = make(cpu(1), {7});
  porta_tensor freed = make(cpu(), {8});
  ASSERT_EQ(porta_tensor_free(freed), PORTA_OK);
  porta_tensor pair[2] = {a, b};
  EXPECT_TRUE(failed_with(porta_all_reduce_local(nullptr, 2, PORTA_REDUCE_SUM), PORTA_ERROR_INVALID_ARGUMENT,
                          {"porta_all_reduce_local", "argument tensors"}));
  EXPECT_TRUE(failed_with(porta_all_reduce_local(pair, 0, PORTA_REDUCE_SUM), PORTA_ERROR_INVALID_ARGUMENT,
                          {"argument count", "got 0"}));
  EXPECT_TRUE(failed_with(porta_all_reduce_local(pair, 2, 9), PORTA_ERROR_INVALID_ARGUMENT, {"argument op", "9"}));
  porta_tensor with_freed[2] = {a, freed};
  EXPECT_TRUE(failed_with(porta_all_reduce_local(with_freed, 2, PORTA_REDUCE_SUM), PORTA_ERROR_INVALID_HANDLE,
                          {"tensors[1]", "already freed"}));
  porta_tensor mismatched[2] = {a, shorter};
  EXPECT_TRUE(failed_with(porta_all_reduce_local(mismatched, 2, PORTA_REDUCE_SUM), PORTA_ERROR_INVALID_ARGUMENT, {}));
  EXPECT_TRUE(failed_with(porta_all_reduce_mpi(nullptr, PORTA_REDUCE_SUM), PORTA_ERROR_INVALID_HANDLE,
                          {"porta_all_reduce_mpi", "argument tensor"}));
  EXPECT_TRUE(failed_with(porta_all_reduce_mpi(a, -1), PORTA_ERROR_INVALID_ARGUMENT, {"argument op", "-1"}));
  EXPECT_TRUE(failed_with(porta_mpi_rank(nullptr, nullptr), PORTA_ERROR_INVALID_ARGUMENT, {"porta_mpi_rank", "rank"}));
  // The inputs are untouched by the failed calls, and a right call still works.
  ASSERT_EQ(porta_all_reduce_local(pair, 2, PORTA_REDUCE_AVG), PORTA_OK) << porta_last_error();
  float host[8];
  ASSERT_EQ(porta_tensor_to_host(b, host, sizeof host), PORTA_OK);
  EXPECT_EQ(host[5], 1.0f);
  for (porta_tensor tensor : {a, b, shorter}) EXPECT_EQ(porta_tensor_free(tensor), PORTA_OK);
}

TEST(CApiErrors, OutOfHostMemoryIsAStatusNotAnException) {
  size_t count = 0;
  failing_allocations = 1;
  porta_status status = porta_device_count(&count);  // porta::devices() copies its list
  failing_allocations = 0;
  EXPECT_TRUE(failed_with(status, PORTA_ERROR_OUT_OF_MEMORY, {"porta_device_count", "out of host memory"}));
  EXPECT_EQ(count, 0u);

  porta_tensor a = make(cpu(), {2, 2});
  porta_tensor out = untouched_tensor();
  failing_allocations = 1;
  status = porta_matmul(a, a, nullptr, &out);
  failing_allocations = 0;
  EXPECT_TRUE(failed_with(status, PORTA_ERROR_OUT_OF_MEMORY, {"porta_matmul", "out of host memory"}));
  EXPECT_EQ(out, untouched_tensor());
  // Nothing was left half done: the same call works now.
  ASSERT_EQ(porta_matmul(a, a, nullptr, &out), PORTA_OK) << porta_last_error();
  EXPECT_EQ(porta_tensor_free(out), PORTA_OK);
  EXPECT_EQ(porta_tensor_free(a), PORTA_OK);
}

TEST(CApiErrors, TheLastErrorBelongsToItsThread) {
  EXPECT_NE(porta_device_count(nullptr), PORTA_OK);
  const std::string mine = porta_last_error();
  std::string theirs;
  std::thread other([&] {
    theirs = porta_last_error();  // nothing failed on this thread yet
    porta_device device = nullptr;
    EXPECT_NE(porta_device_get("nothing", &device), PORTA_OK);
  });
  other.join();
  EXPECT_EQ(theirs, "");
  EXPECT_EQ(porta_last_error(), mine);
  // A call that succeeds leaves the message alone.
  size_t count = 0;
  ASSERT_EQ(porta_device_count(&count), PORTA_OK);
  EXPECT_EQ(porta_last_error(), mine);
}

TEST(CApiErrors, EveryStatusHasAName) {
  EXPECT_STREQ(porta_status_name(PORTA_OK), "PORTA_OK");
  EXPECT_STREQ(porta_status_name(PORTA_ERROR_INVALID_HANDLE), "PORTA_ERROR_INVALID_HANDLE");
  EXPECT_STREQ(porta_status_name(PORTA_ERROR_INTERNAL), "PORTA_ERROR_INTERNAL");
  EXPECT_STREQ(porta_status_name(42), "unknown porta_status");
}

}  // namespace

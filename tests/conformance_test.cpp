// conformance_test.cpp — every op on every device present, against float64 references:
// fresh random inputs (seed printed), outputs poisoned with NaN ($PORTA_POISON=1, set by
// ctest), odd shapes, one tolerance rule, NaN never passing, repeat runs bit-identical.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <span>
#include <sstream>

#include "porta/porta.hpp"
#include "cpu_isa_cap.hpp"
#include "reference.hpp"

namespace porta::test {
namespace {

enum class Kind { fill, cast, add, mul, axpby, gelu, gelu_backward, uniform, randn, sum_all, sum_dim, transfer };

const char* name_of(Kind kind) {
  switch (kind) {
    case Kind::fill: return "fill";
    case Kind::cast: return "cast";
    case Kind::add: return "add";
    case Kind::mul: return "mul";
    case Kind::axpby: return "axpby";
    case Kind::gelu: return "gelu";
    case Kind::gelu_backward: return "gelu_backward";
    case Kind::uniform: return "uniform";
    case Kind::randn: return "randn";
    case Kind::sum_all: return "sum_all";
    case Kind::sum_dim: return "sum_dim";
    case Kind::transfer: return "transfer";
  }
  return "?";
}

enum class Layout { contiguous, transposed, strided_slice, permuted };
const char* name_of(Layout layout) {
  switch (layout) {
    case Layout::contiguous: return "contiguous";
    case Layout::transposed: return "transposed";
    case Layout::strided_slice: return "sliced";
    case Layout::permuted: return "permuted";
  }
  return "?";
}

struct Case {
  Case(Kind kind_, std::string device_, DType dtype_, DType out_dtype_, Shape shape_, Layout layout_ = Layout::contiguous,
       int dim_ = 0, std::string peer_ = {})
      : kind(kind_), device(std::move(device_)), dtype(dtype_), out_dtype(out_dtype_), shape(std::move(shape_)),
        layout(layout_), dim(dim_), peer(std::move(peer_)) {}
  Kind kind;
  std::string device;  // device id; the first token of the test name
  DType dtype;
  DType out_dtype;
  Shape shape;
  Layout layout;
  int dim;
  std::string peer;  // transfer: the other device
};

std::string case_name(const Case& c) {
  std::ostringstream name;
  name << c.device << "_" << name_of(c.kind) << "_" << to_string(c.dtype);
  if (c.kind == Kind::cast) name << "_to_" << to_string(c.out_dtype) << "_" << name_of(c.layout);
  if (c.kind == Kind::sum_dim) name << "_dim" << (c.dim < 0 ? "m" : "") << std::abs(c.dim);
  if (c.kind == Kind::transfer) name << "_to_" << c.peer;
  name << "_";
  for (std::size_t i = 0; i < c.shape.size(); ++i) name << (i ? "x" : "") << c.shape[i];
  if (c.shape.empty()) name << "scalar";
  std::string text = name.str();
  std::replace_if(text.begin(), text.end(), [](char ch) { return !std::isalnum(static_cast<unsigned char>(ch)); }, '_');
  return text;
}

const std::vector<Shape> elementwise_shapes = {{0}, {1}, {7}, {13, 17}, {3, 5, 7, 11}, {1000003}, {2, 1, 3, 1, 2, 3, 1, 2}};
const std::vector<Shape> cast_shapes = {{1}, {7}, {13, 17}, {5, 7, 11}, {257, 129}, {2, 3, 1, 2, 3, 2, 1, 3}};
const std::vector<Shape> sum_shapes = {{1}, {7}, {13, 17}, {129, 1000}, {1000003}, {3, 5, 7, 11}, {4, 0}};
const std::vector<DType> floating = {DType::f32, DType::f16, DType::bf16};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const Device& device : devices()) {
    const std::string id = device.id();
    for (DType dtype : {DType::f32, DType::f16, DType::bf16, DType::i32}) {
      for (const Shape& shape : elementwise_shapes) cases.emplace_back(Kind::fill, id, dtype, dtype, shape);
    }
    for (DType from : {DType::f32, DType::f16, DType::bf16, DType::i32}) {
      for (DType to : {DType::f32, DType::f16, DType::bf16, DType::i32}) {
        if ((from == DType::i32) != (to == DType::i32)) continue;
        for (const Shape& shape : cast_shapes) {
          for (Layout layout : {Layout::contiguous, Layout::transposed, Layout::strided_slice, Layout::permuted}) {
            if (layout == Layout::transposed && shape.size() < 2) continue;
            if (layout == Layout::permuted && shape.size() < 3) continue;
            cases.emplace_back(Kind::cast, id, from, to, shape, layout);
          }
        }
      }
    }
    for (Kind kind : {Kind::add, Kind::mul, Kind::axpby, Kind::gelu, Kind::gelu_backward, Kind::uniform, Kind::randn}) {
      for (DType dtype : floating) {
        for (const Shape& shape : elementwise_shapes) cases.emplace_back(kind, id, dtype, dtype, shape);
      }
    }
    for (DType dtype : floating) {
      for (const Shape& shape : sum_shapes) {
        cases.emplace_back(Kind::sum_all, id, dtype, dtype, shape);
        cases.emplace_back(Kind::sum_dim, id, dtype, dtype, shape, Layout::contiguous, 0);
        if (shape.size() > 1) cases.emplace_back(Kind::sum_dim, id, dtype, dtype, shape, Layout::contiguous, -1);
      }
    }
    for (const Device& peer : devices()) {
      if (peer == device) continue;
      for (DType dtype : {DType::f32, DType::bf16}) {
        for (const Shape& shape : {Shape{0}, Shape{7}, Shape{13, 17}, Shape{1000003}}) {
          cases.emplace_back(Kind::transfer, id, dtype, dtype, shape, Layout::contiguous, 0, peer.id());
        }
      }
    }
  }
  return cases;
}

// An input tensor of `shape` in the requested layout, with its host elements in
// row-major order of the logical shape.
struct Input {
  Tensor tensor;
  std::vector<double> values;
};

Input make_input(const Device& device, DType dtype, const Shape& shape, Layout layout, std::uint64_t seed) {
  // Build a larger contiguous base and take a view of it with the wanted layout.
  Shape base_shape = shape;
  if (layout == Layout::transposed) std::swap(base_shape[base_shape.size() - 1], base_shape[base_shape.size() - 2]);
  if (layout == Layout::permuted) std::rotate(base_shape.begin(), base_shape.begin() + 1, base_shape.end());
  if (layout == Layout::strided_slice) base_shape.back() = base_shape.back() * 2 + 1;
  std::int64_t base_count = 1;
  for (auto extent : base_shape) base_count *= extent;
  std::vector<unsigned char> bytes = random_bytes(dtype, base_count, seed);
  Tensor base = Tensor::from_host(bytes.data(), bytes.size(), base_shape, dtype, device);
  Tensor view = base;
  const int rank = static_cast<int>(shape.size());
  if (layout == Layout::transposed) view = base.transpose(-1, -2);
  if (layout == Layout::permuted) {
    std::vector<int> order(rank);
    for (int i = 0; i < rank; ++i) order[i] = (i + rank - 1) % rank;
    view = base.permute(order);
  }
  if (layout == Layout::strided_slice) view = base.slice(-1, 1, base_shape.back(), 2);
  EXPECT_EQ(view.shape(), shape);

  // The same view computed on the host from the base bytes.
  Shape base_strides(base_shape.size());
  std::int64_t stride = 1;
  for (std::size_t i = base_shape.size(); i-- > 0;) {
    base_strides[i] = stride;
    stride *= base_shape[i];
  }
  Input input{view, {}};
  std::int64_t count = view.numel();
  input.values.resize(static_cast<std::size_t>(count));
  for (std::int64_t linear = 0; linear < count; ++linear) {
    std::int64_t rest = linear;
    std::int64_t source = view.offset();
    for (int dim = rank - 1; dim >= 0; --dim) {
      source += (rest % shape[dim]) * view.strides()[dim];
      rest /= shape[dim];
    }
    input.values[static_cast<std::size_t>(linear)] = element(bytes, dtype, static_cast<std::size_t>(source));
  }
  return input;
}

// Compares out against reference values: NaN/Inf never pass; |out - ref| <= bound * scale.
void expect_close(const std::vector<unsigned char>& out, DType dtype, const std::vector<double>& reference,
                  const std::vector<double>& scale, double bound, double absolute, const std::string& what) {
  ASSERT_EQ(out.size(), reference.size() * size_of(dtype)) << what;
  std::size_t failures = 0;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    double got = element(out, dtype, i);
    bool ok = std::isfinite(got) && std::fabs(got - reference[i]) <= bound * scale[i] + absolute;
    if (!ok && ++failures <= 5) {
      ADD_FAILURE() << what << ": element " << i << ": got " << got << ", expected " << reference[i]
                    << " within " << bound * scale[i] + absolute;
    }
  }
  EXPECT_EQ(failures, 0u) << what << ": " << failures << " of " << reference.size() << " elements out of bounds";
}

void PrintTo(const Case& c, std::ostream* os) { *os << case_name(c); }

class Conformance : public ::testing::TestWithParam<Case> {};

TEST_P(Conformance, MatchesFloat64Reference) {
  const Case& c = GetParam();
  Device device = Device::get(c.device);
  const std::uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::int64_t count = 1;
  for (auto extent : c.shape) count *= extent;

  std::function<Tensor()> run;
  std::vector<double> reference;
  std::vector<double> scale;
  double bound = 0;     // relative to scale; 0 for exact ops (fill, cast, transfer)
  double absolute = 0;  // the dtype's subnormal spacing, times the roundings
  DType out_dtype = c.out_dtype;
  switch (c.kind) {
    case Kind::fill: {
      std::mt19937_64 engine(seed);
      double value = c.dtype == DType::i32 ? static_cast<double>(static_cast<std::int32_t>(engine()))
                                           : std::normal_distribution<double>()(engine) * 100;
      std::vector<unsigned char> one(size_of(c.dtype));
      set_element(one, c.dtype, 0, value);
      reference.assign(static_cast<std::size_t>(count), element(one, c.dtype, 0));
      scale.assign(reference.size(), 1.0);
      run = [&, value] { return full(c.shape, value, c.dtype, device); };
      break;
    }
    case Kind::cast: {
      Input input = make_input(device, c.dtype, c.shape, c.layout, seed);
      for (double v : input.values) {
        std::vector<unsigned char> one(size_of(c.out_dtype));
        set_element(one, c.out_dtype, 0, v);
        reference.push_back(element(one, c.out_dtype, 0));
      }
      scale.assign(reference.size(), 1.0);  // bound 0: casts are exact
      run = [&, input] { return cast(input.tensor, c.out_dtype); };
      break;
    }
    case Kind::add:
    case Kind::mul:
    case Kind::axpby: {
      Input a = make_input(device, c.dtype, c.shape, Layout::contiguous, seed);
      Input b = make_input(device, c.dtype, c.shape, Layout::contiguous, seed + 1);
      const double alpha = 0.75, beta = -1.5;
      for (std::size_t i = 0; i < a.values.size(); ++i) {
        double x = a.values[i], y = b.values[i];
        double value = c.kind == Kind::add ? x + y : c.kind == Kind::mul ? x * y : alpha * x + beta * y;
        reference.push_back(value);
        // f32 arithmetic rounds each product and the sum: scale by the terms' size.
        scale.push_back(c.kind == Kind::axpby ? std::fabs(alpha * x) + std::fabs(beta * y)
                        : c.kind == Kind::add  ? std::fabs(x) + std::fabs(y)
                                               : std::fabs(value));
      }
      bound = Tolerance::bound(c.dtype, 0, c.kind == Kind::axpby ? 3 : 1);
      absolute = Tolerance::absolute(c.dtype, c.kind == Kind::axpby ? 3 : 1);
      run = [&, a, b] {
        if (c.kind == Kind::add) return add(a.tensor, b.tensor);
        if (c.kind == Kind::mul) return mul(a.tensor, b.tensor);
        return axpby(0.75f, a.tensor, -1.5f, b.tensor);
      };
      break;
    }
    case Kind::gelu:
    case Kind::gelu_backward: {
      // x from N(0, 3^2) reaches both saturated ends; the gradient from N(0, 1).
      Input x = make_input(device, c.dtype, c.shape, Layout::contiguous, seed);
      std::vector<double> scaled(x.values.size());
      for (std::size_t i = 0; i < scaled.size(); ++i) scaled[i] = 3.0 * x.values[i];
      std::vector<unsigned char> bytes(scaled.size() * size_of(c.dtype));
      for (std::size_t i = 0; i < scaled.size(); ++i) set_element(bytes, c.dtype, i, scaled[i]);
      Tensor inputs = Tensor::from_host(bytes.data(), bytes.size(), c.shape, c.dtype, device);
      Input grad = make_input(device, c.dtype, c.shape, Layout::contiguous, seed + 1);
      const double root = std::sqrt(2.0 / M_PI), cubic = 0.044715;
      for (std::size_t i = 0; i < scaled.size(); ++i) {
        const double v = element(bytes, c.dtype, i);  // the input as stored
        const double inner = root * (v + cubic * v * v * v), t = std::tanh(inner);
        const double d_inner = root * (1.0 + 3.0 * cubic * v * v);
        // f32 rounding of the inner polynomial grows through exp(2u): scale by |u|.
        const double growth = 1.0 + std::fabs(inner);
        if (c.kind == Kind::gelu) {
          reference.push_back(0.5 * v * (1.0 + t));
          scale.push_back(std::fabs(v) * growth);
        } else {
          const double g = grad.values[i];
          reference.push_back(g * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * d_inner));
          scale.push_back(std::fabs(g) * growth * (1.0 + std::fabs(v) * d_inner));
        }
      }
      bound = Tolerance::bound(c.dtype, 0, 2) + 16 * Tolerance::epsilon(DType::f32);
      absolute = Tolerance::absolute(c.dtype, 2);
      run = [&, inputs, grad] {
        return c.kind == Kind::gelu ? gelu(inputs) : gelu_backward(grad.tensor, inputs);
      };
      break;
    }
    case Kind::uniform:
    case Kind::randn: {
      const bool normal = c.kind == Kind::randn;
      const std::uint64_t offset = seed >> 20;  // exercise the 64-bit counter too
      const float a = normal ? 0.5f : -2.0f, b = normal ? 2.0f : 3.0f;
      for (std::int64_t i = 0; i < count; ++i) {
        double value = reference_random(normal, seed, offset, static_cast<std::uint64_t>(i), a, b);
        reference.push_back(value);
        scale.push_back(std::fabs(value) + (normal ? 8.0 * b : std::fabs(b - a)));
      }
      // Polynomial log/cos/sqrt in f32: a few f32 roundings per value, then the dtype's.
      bound = Tolerance::bound(c.dtype, 0) + 8 * Tolerance::epsilon(DType::f32);
      absolute = Tolerance::absolute(c.dtype);
      run = [&, seed, offset, a, b, normal] {
        return normal ? randn(c.shape, c.dtype, device, seed, offset, a, b)
                      : uniform(c.shape, c.dtype, device, seed, offset, a, b);
      };
      break;
    }
    case Kind::sum_all:
    case Kind::sum_dim: {
      Input x = make_input(device, c.dtype, c.shape, Layout::contiguous, seed);
      const int rank = static_cast<int>(c.shape.size());
      const int dim = c.kind == Kind::sum_all ? -1 : (c.dim + rank) % rank;
      std::int64_t n = c.kind == Kind::sum_all ? count : c.shape[dim];
      std::int64_t inner = 1;
      if (c.kind == Kind::sum_dim) {
        for (int i = dim + 1; i < rank; ++i) inner *= c.shape[i];
      }
      std::int64_t outputs = n == 0 ? (c.kind == Kind::sum_all ? 1 : count) : count / n;
      if (c.kind == Kind::sum_dim && n == 0) {
        outputs = 1;
        for (int i = 0; i < rank; ++i) outputs *= i == dim ? 1 : c.shape[i];
      }
      reference.assign(static_cast<std::size_t>(outputs), 0.0);
      scale.assign(static_cast<std::size_t>(outputs), 0.0);
      for (std::int64_t i = 0; i < count; ++i) {
        std::int64_t target = c.kind == Kind::sum_all ? 0 : (i / (inner * n)) * inner + i % inner;
        reference[static_cast<std::size_t>(target)] += x.values[static_cast<std::size_t>(i)];
        scale[static_cast<std::size_t>(target)] += std::fabs(x.values[static_cast<std::size_t>(i)]);
      }
      for (auto& s : scale) s = std::max(s, 1e-30);
      bound = Tolerance::bound(c.dtype, n);
      absolute = Tolerance::absolute(c.dtype);
      run = [&, x, dim] { return c.kind == Kind::sum_all ? sum(x.tensor) : sum(x.tensor, dim); };
      break;
    }
    case Kind::transfer: {
      Input x = make_input(device, c.dtype, c.shape, Layout::contiguous, seed);
      reference = x.values;
      scale.assign(reference.size(), 1.0);
      Device peer = Device::get(c.peer);
      run = [x, peer] { return x.tensor.to(peer).to(x.tensor.device()); };
      break;
    }
  }

  // A device that cannot run the case says so with ErrorKind::unsupported: a skip, with its reason.
  Tensor first;
  try {
    first = run();
  } catch (const Error& error) {
    if (error.kind() != ErrorKind::unsupported) throw;
    GTEST_SKIP() << error.what();
  }
  ASSERT_EQ(first.dtype(), out_dtype);
  ASSERT_TRUE(first.device() == device);
  std::vector<unsigned char> out = read_bytes(first);
  expect_close(out, out_dtype, reference, scale, bound, absolute, case_name(c));
  std::vector<unsigned char> again = read_bytes(run());
  EXPECT_EQ(out, again) << "a second run gave different bits";
  if (c.kind == Kind::uniform || c.kind == Kind::randn) {
    // The same seed gives the same bits on every device: compare with the cpu.
    Device cpu = Device::get("cpu");
    std::vector<unsigned char> on_cpu = read_bytes(
        c.kind == Kind::randn ? randn(c.shape, c.dtype, cpu, seed, seed >> 20, 0.5f, 2.0f)
                              : uniform(c.shape, c.dtype, cpu, seed, seed >> 20, -2.0f, 3.0f));
    EXPECT_EQ(out, on_cpu) << "random bits differ from the cpu device's";
  }
}

INSTANTIATE_TEST_SUITE_P(AllDevices, Conformance, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& param_info) { return case_name(param_info.param); });

// All 65536 halves cast to f32 on each device, bit for bit against the compiler's _Float16
// (NaN: any NaN): random inputs seldom reach the signed zeros, subnormals, infinities and
// NaNs, where hand-written conversions go wrong.
class EveryHalf : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryHalf, CastsToF32Exactly) {
  const Device device = Device::get(GetParam());
  std::vector<std::uint16_t> halves(65536);
  std::iota(halves.begin(), halves.end(), std::uint16_t(0));
  const Tensor input = Tensor::from_host(std::span<const std::uint16_t>(halves), {65536}, DType::f16, device);
  const std::vector<float> got = cast(input, DType::f32).to_host<float>();
  std::size_t failures = 0;
  for (std::size_t i = 0; i < halves.size(); ++i) {
    const float want = static_cast<float>(reference_from_f16(halves[i]));
    const bool ok = std::isnan(want) ? std::isnan(got[i])
                                     : std::bit_cast<std::uint32_t>(got[i]) == std::bit_cast<std::uint32_t>(want);
    if (!ok && ++failures <= 5) {
      ADD_FAILURE() << "half 0x" << std::hex << halves[i] << ": got 0x" << std::bit_cast<std::uint32_t>(got[i])
                    << ", expected 0x" << std::bit_cast<std::uint32_t>(want);
    }
  }
  EXPECT_EQ(failures, 0u) << "of 65536 halves";
}

INSTANTIATE_TEST_SUITE_P(AllDevices, EveryHalf, ::testing::ValuesIn([] {
                           std::vector<std::string> ids;
                           for (const Device& device : devices()) ids.push_back(device.id());
                           return ids;
                         }()),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           std::string name = param_info.param + "_every_f16_to_f32";
                           std::replace(name.begin(), name.end(), ':', '_');
                           return name;
                         });

// Prints how many cases ran, passed and were skipped on each device, so a log shows
// that no device was left out.
class PerDeviceSummary : public ::testing::EmptyTestEventListener {
  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (info.value_param() == nullptr) return;
    std::string name = info.name();  // MatchesFloat64Reference/<backend>_<index>_<op>...
    std::string param = name.substr(name.find('/') + 1);
    std::string device = param.substr(0, param.find('_', param.find('_') + 1));
    auto& counts = per_device_[device];
    if (info.result()->Skipped()) ++counts[2];
    else if (info.result()->Passed()) ++counts[0];
    else ++counts[1];
  }
  void OnTestProgramEnd(const ::testing::UnitTest&) override {
    for (const auto& [device, counts] : per_device_) {
      std::printf("conformance on %s: %d passed, %d failed, %d skipped\n", device.c_str(), counts[0], counts[1],
                  counts[2]);
    }
  }
  std::map<std::string, std::array<int, 3>> per_device_;
};

}  // namespace
}  // namespace porta::test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(new porta::test::PerDeviceSummary);
  return RUN_ALL_TESTS();
}

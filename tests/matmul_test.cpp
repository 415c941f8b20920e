// matmul_test.cpp — matmul and its backward on every device and every kernel the
// device offers, against a float64 reference: transposes, batches (and broadcast),
// epilogues, dtypes, alpha/beta, views, odd shapes; then every bad argument.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "porta/porta.hpp"
#include "cpu_isa_cap.hpp"
#include "reference.hpp"

namespace porta::test {
namespace {

struct MatmulCase {
  std::string device{};
  std::string kernel{};
  std::int64_t m = 1, n = 1, k = 1;
  bool trans_a = false, trans_b = false;
  std::int64_t batch = 0;  // 0: plain matrices
  int broadcast = 0;       // 1: A is one matrix for the batch, 2: B is
  DType dtype = DType::f32;
  DType out_dtype = DType::f32;
  bool bias = false;
  bool gelu = false;
  float alpha = 1.0f, beta = 0.0f;
  bool into = false;  // matmul_into an existing output with row stride n + 3
  int view = 0;       // 1: A given as a transposed view, 2: A as a column slice (ld > cols)
};

std::string case_name(const MatmulCase& c) {
  std::ostringstream name;
  name << c.device << "_" << c.kernel << "_" << c.m << "x" << c.n << "x" << c.k << "_" << (c.trans_a ? "t" : "n")
       << (c.trans_b ? "t" : "n") << "_" << to_string(c.dtype);
  if (c.out_dtype != c.dtype) name << "_out_" << to_string(c.out_dtype);
  if (c.batch) name << "_batch" << c.batch << (c.broadcast == 1 ? "_bcastA" : c.broadcast == 2 ? "_bcastB" : "");
  if (c.bias) name << "_bias";
  if (c.gelu) name << "_gelu";
  if (c.alpha != 1.0f || c.beta != 0.0f) name << "_alpha" << c.alpha << "_beta" << c.beta;
  if (c.into) name << "_into";
  if (c.view) name << (c.view == 1 ? "_viewT" : "_viewslice");
  std::string text = name.str();
  for (char& ch : text) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return text;
}

void PrintTo(const MatmulCase& c, std::ostream* os) { *os << case_name(c); }

std::vector<MatmulCase> all_cases() {
  std::vector<MatmulCase> cases;
  for (const Device& device : devices()) {
    for (const std::string& kernel : matmul_kernels(device)) {
      auto add = [&](MatmulCase c) {
        c.device = device.id();
        c.kernel = kernel;
        if (c.out_dtype == DType::f32 && c.dtype != DType::f32 && c.out_dtype == c.dtype) c.out_dtype = c.dtype;
        cases.push_back(c);
      };
      const bool naive = kernel == "naive";
      for (auto [m, n, k] : {std::tuple{1, 1, 1}, {7, 13, 5}, {127, 1, 129}, {33, 65, 17}, {64, 64, 64}}) {
        for (int t = 0; t < 4; ++t) add({.m = m, .n = n, .k = k, .trans_a = (t & 1) != 0, .trans_b = (t & 2) != 0});
      }
      add({.m = 4097, .n = 33, .k = 1000});
      add({.m = 4097, .n = 33, .k = 1000, .trans_a = true, .trans_b = true});
      add({.m = 8, .n = 9, .k = 16384});
      add({.m = 5, .n = 7, .k = 16384, .trans_b = true, .dtype = DType::bf16, .out_dtype = DType::f32});
      if (!naive) add({.m = 301, .n = 257, .k = 259});
      if (!naive) {  // several column blocks (nc 2048 or 4096) and k blocks of the cpu's packed GEMM
        add({.m = 13, .n = 4200, .k = 1100, .bias = true, .alpha = 0.5f, .beta = 0.5f, .into = true});
        add({.m = 13, .n = 2100, .k = 1100, .trans_a = true, .dtype = DType::bf16, .out_dtype = DType::bf16});
        add({.m = 149, .n = 263, .k = 1543, .trans_a = true});  // A^T packed step by step, over three k blocks
        // rows enough to feed the threads and one column block: each task spans n and packs
        // its own rows of A (partial row, column and k blocks on every kernel)
        add({.m = 613, .n = 1031, .k = 1100, .bias = true, .alpha = 0.5f, .beta = 0.5f, .into = true});
        // ... and, over several column blocks (nc 2048 or 4096), once per block
        add({.m = 613, .n = 4200, .k = 45, .trans_a = true, .bias = true, .alpha = 0.5f, .beta = 0.5f, .into = true});
        // k blocks of every kernel's kc (256, 512, 1024) and a short one after them, over
        // full and partial tiles, accumulating into C
        add({.m = 29, .n = 67, .k = 2085, .trans_b = true, .bias = true, .alpha = 0.5f, .beta = 0.5f, .into = true});
      }
      add({.m = 7, .n = 13, .k = 5, .batch = 1});
      add({.m = 7, .n = 13, .k = 5, .batch = 3});
      add({.m = 19, .n = 23, .k = 29, .trans_a = true, .batch = 17});
      add({.m = 11, .n = 6, .k = 9, .batch = 3, .broadcast = 1});
      add({.m = 11, .n = 6, .k = 9, .trans_b = true, .batch = 17, .broadcast = 2});
      add({.m = 33, .n = 65, .k = 17, .trans_b = true, .bias = true, .alpha = 0.5f});
      add({.m = 33, .n = 65, .k = 17, .bias = true, .gelu = true});
      add({.m = 3, .n = 5, .k = 7, .batch = 3, .bias = true, .gelu = true});
      for (DType dtype : {DType::f16, DType::bf16}) {
        for (DType out : {dtype, DType::f32}) {
          add({.m = 31, .n = 37, .k = 41, .dtype = dtype, .out_dtype = out});
          add({.m = 31, .n = 37, .k = 41, .trans_a = true, .trans_b = true, .dtype = dtype, .out_dtype = out,
               .bias = true, .gelu = true});
        }
      }
      add({.m = 23, .n = 29, .k = 31, .alpha = 1.0f, .beta = 1.0f, .into = true});
      add({.m = 23, .n = 29, .k = 31, .trans_a = true, .alpha = -1.5f, .beta = 0.25f, .into = true});
      add({.m = 23, .n = 29, .k = 31, .bias = true, .alpha = 0.0f, .beta = 1.0f, .into = true});
      add({.m = 17, .n = 19, .k = 23, .batch = 3, .dtype = DType::bf16, .out_dtype = DType::bf16, .beta = 0.5f,
           .into = true});
      add({.m = 37, .n = 11, .k = 13, .view = 1});
      add({.m = 37, .n = 11, .k = 13, .trans_b = true, .view = 2});
    }
  }
  return cases;
}

// Host copy of a tensor's logical [batch?, rows, cols] contents, in float64.
struct HostMatrix {
  Tensor tensor;
  std::vector<double> values;  // row-major over the logical shape
};

HostMatrix random_matrix(const Device& device, DType dtype, const Shape& shape, std::uint64_t seed) {
  std::int64_t count = 1;
  for (auto extent : shape) count *= extent;
  std::vector<unsigned char> bytes = random_bytes(dtype, count, seed);
  HostMatrix matrix{Tensor::from_host(bytes.data(), bytes.size(), shape, dtype, device), {}};
  for (std::int64_t i = 0; i < count; ++i) matrix.values.push_back(element(bytes, dtype, static_cast<std::size_t>(i)));
  return matrix;
}

double gelu_reference(double x) {
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}
double gelu_derivative_reference(double x) {
  double inner = std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
  double t = std::tanh(inner);
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * std::sqrt(2.0 / M_PI) * (1.0 + 3.0 * 0.044715 * x * x);
}

// Element (i, j) of op(X) for batch z, X stored row-major [batches, rows, cols].
double op_element(const std::vector<double>& x, std::int64_t z, bool trans, std::int64_t stored_rows,
                  std::int64_t stored_cols, std::int64_t i, std::int64_t j) {
  std::int64_t base = z * stored_rows * stored_cols;
  return trans ? x[static_cast<std::size_t>(base + j * stored_cols + i)]
               : x[static_cast<std::size_t>(base + i * stored_cols + j)];
}

class MatmulConformance : public ::testing::TestWithParam<MatmulCase> {};

TEST_P(MatmulConformance, MatchesFloat64Reference) {
  const MatmulCase& c = GetParam();
  Device device = Device::get(c.device);
  const std::uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const std::int64_t batches = std::max<std::int64_t>(c.batch, 1);
  const std::int64_t a_batches = c.broadcast == 1 ? 1 : batches, b_batches = c.broadcast == 2 ? 1 : batches;
  const std::int64_t a_rows = c.trans_a ? c.k : c.m, a_cols = c.trans_a ? c.m : c.k;
  const std::int64_t b_rows = c.trans_b ? c.n : c.k, b_cols = c.trans_b ? c.k : c.n;
  auto batched = [&](std::int64_t count, std::int64_t rows, std::int64_t cols, bool rank2) {
    return rank2 || c.batch == 0 ? Shape{rows, cols} : Shape{count, rows, cols};
  };

  HostMatrix a = random_matrix(device, c.dtype, batched(a_batches, a_rows, a_cols, c.broadcast == 1), seed);
  HostMatrix b = random_matrix(device, c.dtype, batched(b_batches, b_rows, b_cols, false), seed + 1);
  Tensor a_argument = a.tensor;
  if (c.view == 1) {
    // The same logical A, stored transposed: the front end must read it without a copy.
    std::vector<double> transposed(a.values.size());
    std::vector<unsigned char> bytes(a.values.size() * size_of(c.dtype));
    for (std::int64_t i = 0; i < a_rows; ++i)
      for (std::int64_t j = 0; j < a_cols; ++j) set_element(bytes, c.dtype, j * a_rows + i, a.values[i * a_cols + j]);
    a_argument = Tensor::from_host(bytes.data(), bytes.size(), {a_cols, a_rows}, c.dtype, device).transpose(0, 1);
  } else if (c.view == 2) {
    // A as the first columns of a wider matrix: leading dimension > columns.
    std::vector<unsigned char> bytes(a_rows * (a_cols + 5) * size_of(c.dtype));
    for (std::int64_t i = 0; i < a_rows; ++i)
      for (std::int64_t j = 0; j < a_cols + 5; ++j)
        set_element(bytes, c.dtype, i * (a_cols + 5) + j, j < a_cols ? a.values[i * a_cols + j] : std::nan(""));
    a_argument = Tensor::from_host(bytes.data(), bytes.size(), {a_rows, a_cols + 5}, c.dtype, device).slice(1, 0, a_cols);
  }
  HostMatrix bias = c.bias ? random_matrix(device, c.out_dtype, {c.n}, seed + 2) : HostMatrix{};
  const Shape out_shape = c.batch ? Shape{batches, c.m, c.n} : Shape{c.m, c.n};
  HostMatrix previous;  // C's contents before matmul_into, in a buffer with row stride n + 3
  if (c.into) previous = random_matrix(device, c.out_dtype, {batches, c.m, c.n + 3}, seed + 3);

  MatmulOptions options;
  options.trans_a = c.trans_a;
  options.trans_b = c.trans_b;
  options.alpha = c.alpha;
  options.beta = c.beta;
  options.kernel = c.kernel;
  options.out_dtype = c.out_dtype;
  if (c.bias) options.bias = bias.tensor;
  if (c.gelu) options.epilogue = Epilogue::gelu;

  std::vector<double> reference, scale;
  for (std::int64_t z = 0; z < batches; ++z) {
    for (std::int64_t i = 0; i < c.m; ++i) {
      for (std::int64_t j = 0; j < c.n; ++j) {
        double acc = 0, magnitude = 0;
        for (std::int64_t p = 0; p < c.k; ++p) {
          double x = op_element(a.values, c.broadcast == 1 ? 0 : z, c.trans_a, a_rows, a_cols, i, p);
          double y = op_element(b.values, c.broadcast == 2 ? 0 : z, c.trans_b, b_rows, b_cols, p, j);
          acc += x * y;
          magnitude += std::fabs(x * y);
        }
        double value = c.alpha * acc;
        magnitude *= std::fabs(c.alpha);
        if (c.into) {
          double old = previous.values[static_cast<std::size_t>((z * c.m + i) * (c.n + 3) + j)];
          value += c.beta * old;
          magnitude += std::fabs(c.beta * old);
        }
        if (c.bias) {
          value += bias.values[static_cast<std::size_t>(j)];
          magnitude += std::fabs(bias.values[static_cast<std::size_t>(j)]);
        }
        if (c.gelu) {
          value = gelu_reference(value);
          magnitude = 1.2 * magnitude + 1e-6;  // |gelu'| < 1.13; tanh's own error
        }
        reference.push_back(value);
        scale.push_back(magnitude + std::fabs(value));
      }
    }
  }

  auto run = [&]() -> std::vector<unsigned char> {
    if (!c.into) return read_bytes(matmul(a_argument, b.tensor, options));
    std::vector<unsigned char> bytes = read_bytes(previous.tensor);
    Tensor target = Tensor::from_host(bytes.data(), bytes.size(), previous.tensor.shape(), c.out_dtype, device);
    Tensor view = target.slice(2, 0, c.n);
    if (c.batch == 0) view = target.reshape({c.m, c.n + 3}).slice(1, 0, c.n);
    matmul_into(view, a_argument, b.tensor, options);
    // Only the n columns may change; the 3 extra per row must be untouched.
    std::vector<unsigned char> all = read_bytes(target);
    std::vector<unsigned char> inside;
    for (std::int64_t row = 0; row < batches * c.m; ++row) {
      for (std::int64_t j = 0; j < c.n + 3; ++j) {
        std::size_t index = static_cast<std::size_t>(row * (c.n + 3) + j);
        if (j >= c.n) {
          EXPECT_EQ(element(all, c.out_dtype, index), previous.values[index]) << "wrote outside C at row " << row;
        } else {
          auto first = all.begin() + static_cast<std::ptrdiff_t>(index * size_of(c.out_dtype));
          inside.insert(inside.end(), first, first + static_cast<std::ptrdiff_t>(size_of(c.out_dtype)));
        }
      }
    }
    return inside;
  };
  std::vector<unsigned char> out;
  try {
    out = run();
  } catch (const Error& error) {
    if (error.kind() != ErrorKind::unsupported) throw;
    GTEST_SKIP() << error.what();
  }
  std::size_t failures = 0;
  const double bound = Tolerance::bound(c.out_dtype, c.k, 3);
  const double absolute = Tolerance::absolute(c.out_dtype, 3);
  for (std::size_t i = 0; i < reference.size(); ++i) {
    double got = element(out, c.out_dtype, i);
    if (!(std::isfinite(got) && std::fabs(got - reference[i]) <= bound * scale[i] + absolute) && ++failures <= 5) {
      ADD_FAILURE() << case_name(c) << ": element " << i << ": got " << got << ", expected " << reference[i]
                    << " within " << bound * scale[i] + absolute;
    }
  }
  EXPECT_EQ(failures, 0u) << failures << " of " << reference.size() << " elements out of bounds";
  EXPECT_EQ(out, run()) << "a second run gave different bits";
}

INSTANTIATE_TEST_SUITE_P(AllDevices, MatmulConformance, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<MatmulCase>& param_info) { return case_name(param_info.param); });

// ---- backward --------------------------------------------------------------------------

struct BackwardCase {
  std::string device;
  bool trans_a, trans_b, gelu, broadcast_b;
  DType dtype;
};

std::string backward_name(const BackwardCase& c) {
  std::string name = c.device + std::string("_") + (c.trans_a ? "t" : "n") + (c.trans_b ? "t" : "n") +
                     (c.gelu ? "_gelu" : "") + (c.broadcast_b ? "_bcastB" : "") + "_" + std::string(to_string(c.dtype));
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}
void PrintTo(const BackwardCase& c, std::ostream* os) { *os << backward_name(c); }

std::vector<BackwardCase> backward_cases() {
  std::vector<BackwardCase> cases;
  for (const Device& device : devices()) {
    for (int t = 0; t < 4; ++t) {
      for (bool gelu : {false, true}) cases.push_back({device.id(), (t & 1) != 0, (t & 2) != 0, gelu, t == 0, DType::f32});
    }
    cases.push_back({device.id(), false, true, true, true, DType::bf16});
  }
  return cases;
}

class MatmulBackward : public ::testing::TestWithParam<BackwardCase> {};

TEST_P(MatmulBackward, MatchesFloat64Reference) {
  const BackwardCase& c = GetParam();
  Device device = Device::get(c.device);
  const std::uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const std::int64_t batches = 3, m = 13, n = 17, k = 19;
  const std::int64_t a_rows = c.trans_a ? k : m, a_cols = c.trans_a ? m : k;
  const std::int64_t b_rows = c.trans_b ? n : k, b_cols = c.trans_b ? k : n;
  HostMatrix a = random_matrix(device, c.dtype, {batches, a_rows, a_cols}, seed);
  HostMatrix b = random_matrix(device, c.dtype, c.broadcast_b ? Shape{b_rows, b_cols} : Shape{batches, b_rows, b_cols},
                               seed + 1);
  HostMatrix bias = random_matrix(device, c.dtype, {n}, seed + 2);
  HostMatrix grad = random_matrix(device, c.dtype, {batches, m, n}, seed + 3);
  MatmulOptions options;
  options.trans_a = c.trans_a;
  options.trans_b = c.trans_b;
  options.alpha = 0.75f;
  options.bias = bias.tensor;
  if (c.gelu) options.epilogue = Epilogue::gelu;

  // Reference: dZ = dY * gelu'(Z); d op(A) = alpha dZ op(B)^T; d op(B) = alpha op(A)^T dZ.
  std::vector<double> da(a.values.size(), 0.0), db(b.values.size(), 0.0), dbias(n, 0.0);
  std::vector<double> da_scale(da.size(), 0.0), db_scale(db.size(), 0.0), dbias_scale(n, 0.0);
  for (std::int64_t z = 0; z < batches; ++z) {
    const std::int64_t bz = c.broadcast_b ? 0 : z;
    for (std::int64_t i = 0; i < m; ++i) {
      for (std::int64_t j = 0; j < n; ++j) {
        double pre = bias.values[j];
        for (std::int64_t p = 0; p < k; ++p) {
          pre += 0.75 * op_element(a.values, z, c.trans_a, a_rows, a_cols, i, p) *
                 op_element(b.values, bz, c.trans_b, b_rows, b_cols, p, j);
        }
        double dz = grad.values[(z * m + i) * n + j] * (c.gelu ? gelu_derivative_reference(pre) : 1.0);
        dbias[j] += dz;
        dbias_scale[j] += std::fabs(dz);
        for (std::int64_t p = 0; p < k; ++p) {
          double x = op_element(a.values, z, c.trans_a, a_rows, a_cols, i, p);
          double y = op_element(b.values, bz, c.trans_b, b_rows, b_cols, p, j);
          std::size_t ai = z * a_rows * a_cols + (c.trans_a ? p * a_cols + i : i * a_cols + p);
          std::size_t bi = bz * b_rows * b_cols + (c.trans_b ? j * b_cols + p : p * b_cols + j);
          da[ai] += 0.75 * dz * y;
          da_scale[ai] += std::fabs(0.75 * dz * y);
          db[bi] += 0.75 * x * dz;
          db_scale[bi] += std::fabs(0.75 * x * dz);
        }
      }
    }
  }
  MatmulGradients gradients;
  try {
    gradients = matmul_backward(grad.tensor, a.tensor, b.tensor, options);
  } catch (const Error& error) {
    if (error.kind() != ErrorKind::unsupported) throw;
    GTEST_SKIP() << error.what();
  }
  EXPECT_EQ(gradients.da.shape(), a.tensor.shape());
  EXPECT_EQ(gradients.db.shape(), b.tensor.shape());
  EXPECT_EQ(gradients.dbias.shape(), bias.tensor.shape());
  // Reductions over n (dA), batch*m (dB, dbias), plus the gelu' factor's rounding.
  const double bound = Tolerance::bound(c.dtype, batches * m + n, 4) + (c.gelu ? 64 * Tolerance::epsilon(DType::f32) : 0);
  auto check = [&](const char* what, const Tensor& got_tensor, const std::vector<double>& want,
                   const std::vector<double>& scale) {
    std::vector<unsigned char> got = read_bytes(got_tensor);
    ASSERT_EQ(got.size(), want.size() * size_of(c.dtype)) << what;
    std::size_t failures = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
      double value = element(got, c.dtype, i);
      if (!(std::isfinite(value) && std::fabs(value - want[i]) <= bound * (scale[i] + std::fabs(want[i])) +
                                                                    Tolerance::absolute(c.dtype, 4)) &&
          ++failures <= 3) {
        ADD_FAILURE() << what << " element " << i << ": got " << value << ", expected " << want[i];
      }
    }
    EXPECT_EQ(failures, 0u) << what;
  };
  check("dA", gradients.da, da, da_scale);
  check("dB", gradients.db, db, db_scale);
  check("dbias", gradients.dbias, dbias, dbias_scale);
}

INSTANTIATE_TEST_SUITE_P(AllDevices, MatmulBackward, ::testing::ValuesIn(backward_cases()),
                         [](const ::testing::TestParamInfo<BackwardCase>& param_info) {
                           return backward_name(param_info.param);
                         });

// ---- empty operands --------------------------------------------------------------------

TEST(MatmulEmpty, ZeroSizesGiveEmptyOrBiasOnlyResults) {
  for (const Device& device : devices()) {
    SCOPED_TRACE(device.id());
    EXPECT_EQ(matmul(zeros({0, 5}, f32, device), zeros({5, 3}, f32, device)).shape(), (Shape{0, 3}));
    EXPECT_EQ(matmul(zeros({4, 5}, f32, device), zeros({5, 0}, f32, device)).shape(), (Shape{4, 0}));
    // K = 0: nothing to sum, so C = epilogue(bias).
    MatmulOptions options;
    options.bias = full({3}, 2.0, f32, device);
    std::vector<float> c = matmul(zeros({4, 0}, f32, device), zeros({0, 3}, f32, device), options).to_host<float>();
    EXPECT_EQ(c, std::vector<float>(12, 2.0f));
  }
}

// ---- bad input -------------------------------------------------------------------------

TEST(MatmulErrors, BadArgumentsAreNamed) {
  for (const Device& device : devices()) {
    SCOPED_TRACE(device.id());
    Tensor a = zeros({4, 5}, f32, device), b = zeros({6, 3}, f32, device);
    EXPECT_NE(error_text([&] { matmul(a, b); }).find("expected op(b) to have 5 rows"), std::string::npos);
    MatmulOptions bad_bias;
    bad_bias.bias = zeros({4}, f32, device);
    EXPECT_NE(error_text([&] { matmul(a, zeros({5, 3}, f32, device), bad_bias); }).find("options.bias: expected shape [3]"),
              std::string::npos);
    EXPECT_NE(error_text([&] { matmul(a, zeros({5, 3}, bf16, device)); }).find("expected dtype f32 like a"),
              std::string::npos);
    EXPECT_NE(error_text([&] { matmul(zeros({4}, f32, device), a); }).find("expected a matrix"), std::string::npos);
    EXPECT_NE(error_text([&] { matmul(zeros({2, 4, 5}, f32, device), zeros({3, 5, 2}, f32, device)); })
                  .find("expected a batch of 2 or 1"),
              std::string::npos);
    MatmulOptions unknown;
    unknown.kernel = "fastest";
    EXPECT_NE(error_text([&] { matmul(a, zeros({5, 3}, f32, device), unknown); }).find("options.kernel"),
              std::string::npos);
    MatmulOptions beta;
    beta.beta = 1;
    EXPECT_NE(error_text([&] { matmul(a, zeros({5, 3}, f32, device), beta); }).find("matmul_into"), std::string::npos);
    MatmulOptions out_i32;
    out_i32.out_dtype = i32;
    EXPECT_NE(error_text([&] { matmul(a, zeros({5, 3}, f32, device), out_i32); }).find("options.out_dtype"),
              std::string::npos);
    EXPECT_NE(error_text([&] { matmul(zeros({4, 5}, i32, device), zeros({5, 3}, i32, device)); }, ErrorKind::unsupported)
                  .find("got i32"),
              std::string::npos);
    // An output that overlaps an input.
    Tensor square = zeros({4, 4}, f32, device);
    EXPECT_NE(error_text([&] { matmul_into(square, square, zeros({4, 4}, f32, device)); }).find("overlaps input a"),
              std::string::npos);
    Tensor wrong = zeros({4, 4}, f32, device);
    EXPECT_NE(error_text([&] { matmul_into(wrong, a, zeros({5, 3}, f32, device)); }).find("expected shape [4, 3]"),
              std::string::npos);
    for (const Device& other : devices()) {
      if (other == device) continue;
      EXPECT_NE(error_text([&] { matmul(a, zeros({5, 3}, f32, other)); }).find("expected a tensor on " + device.id()),
                std::string::npos);
    }
  }
}

// The backward has no forward output to check grad_out against: it works out the
// forward's shape itself, so a wrong grad_out or mismatched operands are named, never
// turned into gradients of the wrong shape.
TEST(MatmulErrors, BackwardChecksTheForwardsShapes) {
  for (const Device& device : devices()) {
    SCOPED_TRACE(device.id());
    Tensor a = zeros({4, 5}, f32, device), b = zeros({5, 3}, f32, device);
    EXPECT_NE(error_text([&] { matmul_backward(zeros({3, 3}, f32, device), a, b); })
                  .find("grad_out: expected shape [4, 3]"),
              std::string::npos);
    EXPECT_NE(error_text([&] { matmul_backward(zeros({4, 3}, f32, device), a, zeros({6, 3}, f32, device)); })
                  .find("expected op(b) to have 5 rows"),
              std::string::npos);
    EXPECT_NE(error_text([&] { matmul_backward(zeros({2, 4, 3}, f32, device), zeros({2, 4, 5}, f32, device),
                                               zeros({3, 5, 3}, f32, device)); })
                  .find("expected a batch of 2 or 1"),
              std::string::npos);
    EXPECT_NE(error_text([&] { matmul_backward(zeros({4, 3}, f32, device), zeros({5}, f32, device), b); })
                  .find("expected a matrix"),
              std::string::npos);
    MatmulOptions transposed;
    transposed.trans_a = true;
    EXPECT_NE(error_text([&] { matmul_backward(zeros({4, 3}, f32, device), a, b, transposed); })
                  .find("expected op(b) to have 4 rows"),
              std::string::npos);
    MatmulOptions gelu;
    gelu.epilogue = Epilogue::gelu;
    EXPECT_NE(error_text([&] { matmul_backward(zeros({4, 4}, f32, device), a, b, gelu); })
                  .find("grad_out: expected shape [4, 3]"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace porta::test

// attention_test.cpp — attention forward and backward on every device and kernel,
// against a float64 reference (itself checked by finite differences): causal and not,
// grouped heads, Nq != Nk, odd lengths, every head dim, strided and misaligned views,
// 16-bit dtypes, fully masked rows, the O(N) memory promise, and bad arguments.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "porta/porta.hpp"
#include "cpu_isa_cap.hpp"
#include "reference.hpp"

namespace porta::test {
namespace {

struct AttentionCase {
  std::string device{};
  std::string kernel{};
  std::int64_t batch = 1, heads_q = 1, heads_kv = 1, nq = 1, nk = 1, d = 64;
  bool causal = false;
  DType dtype = DType::f32;
  // q, k, v: contiguous [B, H, N, D]; or views of [B, N, H, D] buffers permuted to
  // [B, H, N, D]; or the same with rows of D + 1 elements from element 1 (no row starts
  // at a multiple of 4, so kernels that load rows as vectors must take their other path).
  enum class Layout { bhnd, bnhd, bnhd_padded } layout = Layout::bhnd;
  bool backward = true;
};

std::string case_name(const AttentionCase& c) {
  std::ostringstream name;
  name << c.device << "_" << c.kernel << "_B" << c.batch << "_H" << c.heads_q << "_" << c.heads_kv << "_N" << c.nq
       << "_" << c.nk << "_D" << c.d << (c.causal ? "_causal" : "") << "_" << to_string(c.dtype)
       << (c.layout == AttentionCase::Layout::bnhd          ? "_bnhd"
           : c.layout == AttentionCase::Layout::bnhd_padded ? "_bnhd_padded"
                                                            : "")
       << (c.backward ? "" : "_fwd");
  std::string text = name.str();
  for (char& ch : text) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return text;
}
void PrintTo(const AttentionCase& c, std::ostream* os) { *os << case_name(c); }

std::vector<AttentionCase> all_cases() {
  std::vector<AttentionCase> cases;
  for (const Device& device : devices()) {
    for (const std::string& kernel : attention_kernels(device)) {
      const bool unfused = kernel == "unfused";
      auto add = [&](AttentionCase c) {
        c.device = device.id();
        c.kernel = kernel;
        if (unfused) c.backward = false;
        cases.push_back(c);
      };
      // Every head dim the API takes (32, 64, 80, 96, 128). Each (d, dtype) pair costs
      // lavapipe a cold compile of the subgroup forward that grows faster than d (d = 64:
      // 35-85 s, d = 32: 8-30 s), so the 16-bit dtypes are tested at d = 32.
      for (bool causal : {false, true}) {
        for (std::int64_t n : {1, 7, 129, 1000}) add({.nq = n, .nk = n, .causal = causal});
        add({.heads_q = 4, .heads_kv = 1, .nq = 37, .nk = 53, .d = 32, .causal = causal});
        add({.batch = 2, .heads_q = 8, .heads_kv = 1, .nq = 65, .nk = 33, .d = 128, .causal = causal});  // Nq > Nk
        add({.batch = 2, .heads_q = 8, .heads_kv = 2, .nq = 100, .nk = 100, .d = 80, .causal = causal});
        add({.heads_q = 3, .heads_kv = 3, .nq = 96, .nk = 200, .d = 96, .causal = causal,
             .layout = AttentionCase::Layout::bnhd});
      }
      for (DType dtype : {DType::f32, DType::bf16}) {
        add({.heads_q = 2, .heads_kv = 2, .nq = 41, .nk = 23, .d = 32, .dtype = dtype,
             .layout = AttentionCase::Layout::bnhd_padded});
      }
      add({.nq = 4096, .nk = 4096, .d = 32, .causal = true});
      for (DType dtype : {DType::f16, DType::bf16}) {
        add({.heads_q = 2, .heads_kv = 1, .nq = 77, .nk = 77, .d = 32, .causal = true, .dtype = dtype});
      }
    }
  }
  return cases;
}

// Host values of a [B, H, N, D] tensor in float64, and the tensor (possibly a view).
struct HostTensor {
  Tensor tensor;
  std::vector<double> values;
};

HostTensor random_bhnd(const Device& device, DType dtype, std::int64_t b, std::int64_t h, std::int64_t n, std::int64_t d,
                       AttentionCase::Layout layout, std::uint64_t seed) {
  using Layout = AttentionCase::Layout;
  const std::int64_t count = b * h * n * d;
  HostTensor x;
  x.values.resize(static_cast<std::size_t>(count));
  if (layout == Layout::bhnd) {
    std::vector<unsigned char> bytes = random_bytes(dtype, count, seed);
    for (std::int64_t i = 0; i < count; ++i) x.values[i] = element(bytes, dtype, static_cast<std::size_t>(i));
    x.tensor = Tensor::from_host(bytes.data(), bytes.size(), {b, h, n, d}, dtype, device);
    return x;
  }
  // The bytes are a [B, N, H, pitch] buffer; the tensor is the [B, H, N, D] view of its
  // elements start .. start + D - 1 in each row.
  const std::int64_t start = layout == Layout::bnhd_padded ? 1 : 0;
  const std::int64_t pitch = d + start;
  std::vector<unsigned char> bytes = random_bytes(dtype, b * n * h * pitch, seed);
  for (std::int64_t bi = 0; bi < b; ++bi)
    for (std::int64_t hi = 0; hi < h; ++hi)
      for (std::int64_t ni = 0; ni < n; ++ni)
        for (std::int64_t di = 0; di < d; ++di)
          x.values[((bi * h + hi) * n + ni) * d + di] =
              element(bytes, dtype, ((bi * n + ni) * h + hi) * pitch + start + di);
  x.tensor = Tensor::from_host(bytes.data(), bytes.size(), {b, n, h, pitch}, dtype, device)
                 .slice(3, start, start + d)
                 .permute({0, 2, 1, 3});
  return x;
}

// The float64 reference: forward O and LSE, backward dQ, dK, dV, with the magnitudes of
// the summed terms (the tolerance's scale) alongside.
struct Reference {
  std::vector<double> out, lse, out_scale, lse_scale;
  std::vector<double> dq, dk, dv, dq_scale, dk_scale, dv_scale;
};

Reference reference_attention(const AttentionCase& c, const std::vector<double>& q, const std::vector<double>& k,
                              const std::vector<double>& v, const std::vector<double>* grad_out, double scale) {
  const std::int64_t group = c.heads_q / c.heads_kv, d = c.d;
  Reference r;
  r.out.assign(c.batch * c.heads_q * c.nq * d, 0.0);
  r.out_scale = r.out;
  r.lse.assign(c.batch * c.heads_q * c.nq, -std::numeric_limits<double>::infinity());
  r.lse_scale.assign(r.lse.size(), 1.0);
  if (grad_out != nullptr) {
    r.dq.assign(r.out.size(), 0.0);
    r.dq_scale = r.dq;
    r.dk.assign(k.size(), 0.0);
    r.dk_scale = r.dk;
    r.dv = r.dk;
    r.dv_scale = r.dk;
  }
  std::vector<double> s(c.nk), p(c.nk), dp(c.nk), dp_magnitude(c.nk);
  for (std::int64_t b = 0; b < c.batch; ++b) {
    for (std::int64_t h = 0; h < c.heads_q; ++h) {
      const std::int64_t hk = h / group;
      auto qrow = [&](std::int64_t i) { return &q[((b * c.heads_q + h) * c.nq + i) * d]; };
      auto krow = [&](std::int64_t j) { return &k[((b * c.heads_kv + hk) * c.nk + j) * d]; };
      auto vrow = [&](std::int64_t j) { return &v[((b * c.heads_kv + hk) * c.nk + j) * d]; };
      for (std::int64_t i = 0; i < c.nq; ++i) {
        const std::int64_t last = c.causal ? std::min(i + c.nk - c.nq, c.nk - 1) : c.nk - 1;
        const std::size_t row = (b * c.heads_q + h) * c.nq + i;
        if (last < 0) continue;  // no visible key: O = 0, LSE = -inf, no gradient
        double max = -INFINITY, magnitude = 0;
        for (std::int64_t j = 0; j <= last; ++j) {
          double dot = 0, abs_dot = 0;
          for (std::int64_t x = 0; x < d; ++x) {
            dot += qrow(i)[x] * krow(j)[x];
            abs_dot += std::fabs(qrow(i)[x] * krow(j)[x]);
          }
          s[j] = scale * dot;
          max = std::max(max, s[j]);
          magnitude = std::max(magnitude, scale * abs_dot);
        }
        double total = 0;
        for (std::int64_t j = 0; j <= last; ++j) total += std::exp(s[j] - max);
        r.lse[row] = max + std::log(total);
        r.lse_scale[row] = magnitude + 1.0;
        for (std::int64_t j = 0; j <= last; ++j) p[j] = std::exp(s[j] - r.lse[row]);
        for (std::int64_t x = 0; x < d; ++x) {
          double o = 0, abs_o = 0;
          for (std::int64_t j = 0; j <= last; ++j) {
            o += p[j] * vrow(j)[x];
            abs_o += p[j] * std::fabs(vrow(j)[x]);
          }
          r.out[row * d + x] = o;
          r.out_scale[row * d + x] = abs_o + std::fabs(o);
        }
        if (grad_out == nullptr) continue;
        const double* go = &(*grad_out)[row * d];
        // Magnitudes of the terms behind dP and Delta = dO . O (with O's own error), which
        // bound what rounding can do to dS = P (dP - Delta) even when they cancel.
        double delta = 0, delta_magnitude = 0;
        for (std::int64_t x = 0; x < d; ++x) {
          delta += go[x] * r.out[row * d + x];
          delta_magnitude += std::fabs(go[x]) * r.out_scale[row * d + x];
        }
        for (std::int64_t j = 0; j <= last; ++j) {
          dp[j] = 0;
          dp_magnitude[j] = 0;
          for (std::int64_t x = 0; x < d; ++x) {
            dp[j] += go[x] * vrow(j)[x];
            dp_magnitude[j] += std::fabs(go[x] * vrow(j)[x]);
          }
        }
        for (std::int64_t j = 0; j <= last; ++j) {
          const double ds = p[j] * (dp[j] - delta), abs_ds = p[j] * (dp_magnitude[j] + delta_magnitude);
          const std::size_t kv = ((b * c.heads_kv + hk) * c.nk + j) * d;
          for (std::int64_t x = 0; x < d; ++x) {
            r.dv[kv + x] += p[j] * go[x];
            r.dv_scale[kv + x] += p[j] * std::fabs(go[x]);
            r.dk[kv + x] += scale * ds * qrow(i)[x];
            r.dk_scale[kv + x] += scale * abs_ds * std::fabs(qrow(i)[x]);
            r.dq[row * d + x] += scale * ds * krow(j)[x];
            r.dq_scale[row * d + x] += scale * abs_ds * std::fabs(krow(j)[x]);
          }
        }
      }
    }
  }
  return r;
}

void expect_close(const char* what, const Tensor& got_tensor, const std::vector<double>& want,
                  const std::vector<double>& scale, double bound, double absolute) {
  std::vector<unsigned char> got = read_bytes(got_tensor);
  ASSERT_EQ(got.size(), want.size() * size_of(got_tensor.dtype())) << what;
  std::size_t failures = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double value = element(got, got_tensor.dtype(), i);
    const bool both_minus_infinity = std::isinf(want[i]) && want[i] < 0 && std::isinf(value) && value < 0;
    const bool ok = both_minus_infinity || (std::isfinite(value) && std::fabs(value - want[i]) <= bound * scale[i] + absolute);
    if (!ok && ++failures <= 5) {
      ADD_FAILURE() << what << " element " << i << ": got " << value << ", expected " << want[i] << " within "
                    << bound * scale[i] + absolute;
    }
  }
  EXPECT_EQ(failures, 0u) << what << ": " << failures << " of " << want.size() << " out of bounds";
}

class AttentionConformance : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(AttentionConformance, MatchesFloat64Reference) {
  const AttentionCase& c = GetParam();
  Device device = Device::get(c.device);
  const std::uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  HostTensor q = random_bhnd(device, c.dtype, c.batch, c.heads_q, c.nq, c.d, c.layout, seed);
  HostTensor k = random_bhnd(device, c.dtype, c.batch, c.heads_kv, c.nk, c.d, c.layout, seed + 1);
  HostTensor v = random_bhnd(device, c.dtype, c.batch, c.heads_kv, c.nk, c.d, c.layout, seed + 2);
  HostTensor grad = random_bhnd(device, c.dtype, c.batch, c.heads_q, c.nq, c.d, AttentionCase::Layout::bhnd, seed + 3);
  AttentionOptions options;
  options.causal = c.causal;
  options.kernel = c.kernel;
  const double scale = 1.0 / std::sqrt(double(c.d));
  AttentionOutput forward;
  try {
    forward = attention(q.tensor, k.tensor, v.tensor, options);
  } catch (const Error& error) {
    // Only a 16-bit dtype may be beyond a device; every f32 case must run.
    if (error.kind() != ErrorKind::unsupported || c.dtype == DType::f32) throw;
    GTEST_SKIP() << error.what();
  }
  // The reference backward uses the device's own output rounded to its dtype, as the
  // kernel does (Delta = dO . O).
  Reference r = reference_attention(c, q.values, k.values, v.values, c.backward ? &grad.values : nullptr, scale);
  const double bound = Tolerance::bound(c.dtype, c.d + c.nk, 8);
  expect_close("out", forward.out, r.out, r.out_scale, bound, Tolerance::absolute(c.dtype, 8));
  expect_close("lse", forward.lse, r.lse, r.lse_scale, Tolerance::bound(DType::f32, c.d + c.nk, 8), 0);
  EXPECT_EQ(read_bytes(forward.out), read_bytes(attention(q.tensor, k.tensor, v.tensor, options).out))
      << "a second run gave different bits";
  if (!c.backward) return;
  AttentionGradients gradients = attention_backward(grad.tensor, q.tensor, k.tensor, v.tensor, forward, options);
  // dO . O enters every dS: with O rounded to a 16-bit dtype that costs that dtype's eps.
  const double backward_bound = Tolerance::bound(c.dtype, c.d + c.nk + c.nq, 16);
  const double absolute = Tolerance::absolute(c.dtype, 16);
  expect_close("dq", gradients.dq, r.dq, r.dq_scale, backward_bound, absolute);
  expect_close("dk", gradients.dk, r.dk, r.dk_scale, backward_bound, absolute);
  expect_close("dv", gradients.dv, r.dv, r.dv_scale, backward_bound, absolute);
  AttentionGradients again = attention_backward(grad.tensor, q.tensor, k.tensor, v.tensor, forward, options);
  EXPECT_EQ(read_bytes(gradients.dq), read_bytes(again.dq)) << "a second backward gave different bits";
  EXPECT_EQ(read_bytes(gradients.dk), read_bytes(again.dk));
}

INSTANTIATE_TEST_SUITE_P(AllDevices, AttentionConformance, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<AttentionCase>& param_info) { return case_name(param_info.param); });

// ---- the reference itself, by finite differences --------------------------------------

TEST(AttentionReference, BackwardMatchesFiniteDifferences) {
  for (bool causal : {false, true}) {
    AttentionCase c{.heads_q = 2, .heads_kv = 1, .nq = 4, .nk = 3, .d = 3, .causal = causal};
    std::mt19937_64 engine(7);
    std::normal_distribution<double> normal;
    auto draw = [&](std::size_t n) {
      std::vector<double> x(n);
      for (auto& value : x) value = normal(engine);
      return x;
    };
    std::vector<double> q = draw(2 * 4 * 3), k = draw(3 * 3), v = draw(3 * 3), grad = draw(2 * 4 * 3);
    const double scale = 0.7;
    Reference analytic = reference_attention(c, q, k, v, &grad, scale);
    auto loss = [&](const std::vector<double>& qq, const std::vector<double>& kk, const std::vector<double>& vv) {
      Reference r = reference_attention(c, qq, kk, vv, nullptr, scale);
      double total = 0;
      for (std::size_t i = 0; i < r.out.size(); ++i) total += r.out[i] * grad[i];
      return total;
    };
    const double h = 1e-6;
    auto check = [&](std::vector<double>& x, const std::vector<double>& gradient, const char* what) {
      for (std::size_t i = 0; i < x.size(); ++i) {
        const double saved = x[i];
        x[i] = saved + h;
        const double up = loss(q, k, v);
        x[i] = saved - h;
        const double down = loss(q, k, v);
        x[i] = saved;
        EXPECT_NEAR((up - down) / (2 * h), gradient[i], 1e-6) << what << "[" << i << "] causal " << causal;
      }
    };
    check(q, analytic.dq, "dq");
    check(k, analytic.dk, "dk");
    check(v, analytic.dv, "dv");
  }
}

// ---- memory -----------------------------------------------------------------------------

// At N = 8192 the scores would be 256 MiB per head: the fused kernels' peak allocation
// during the call stays O(B * H * N * D); the unfused baseline's shows the N x N matrix,
// which proves the accounting sees kernel memory.
TEST(AttentionMemory, FusedKernelsNeverHoldTheScores) {
  for (const Device& device : devices()) {
    SCOPED_TRACE(device.id());
    // Devices that emulate a GPU on the cpu (lavapipe) take minutes for the backward at
    // this size: there the forward alone is measured.
    const bool with_backward = !(device.info().backend == BackendKind::vulkan && device.info().type == DeviceType::cpu);
    const std::int64_t n = 8192, d = 64, heads = 2;
    Tensor q = randn({1, heads, n, d}, f32, device, 1), k = randn({1, heads, n, d}, f32, device, 2),
           v = randn({1, heads, n, d}, f32, device, 3);
    AttentionOptions options;
    options.causal = true;
    device.synchronize();
    const std::uint64_t before = device.stats().bytes_allocated;
    device.reset_peak();
    AttentionOutput result;
    try {
      result = attention(q, k, v, options);
    } catch (const Error& error) {
      if (error.kind() != ErrorKind::unsupported) throw;
      std::printf("%s: %s\n", device.id().c_str(), error.what());
      continue;
    }
    if (with_backward) attention_backward(result.out, q, k, v, result, options);
    device.synchronize();
    const double extra = double(device.stats().peak_bytes_allocated - before);
    const double outputs = 4.0 * heads * n * ((with_backward ? 4 : 1) * d + 1);  // out, lse (dq, dk, dv)
    const double per_row = (extra - outputs) / double(heads * n);
    std::printf("%s: attention forward%s at N = %lld: %.1f MiB beyond inputs and outputs "
                "(%.0f bytes per query row; the scores would be %.0f MiB)\n",
                device.id().c_str(), with_backward ? " + backward" : "", static_cast<long long>(n),
                (extra - outputs) / (1 << 20), per_row,
                4.0 * heads * n * n / (1 << 20));
    EXPECT_LT(extra - outputs, 64.0 * heads * n * d * 4) << "more than O(N * D) extra memory";
  }
  // The baseline at a size where its N x N matrices fit: the accounting must see them.
  Device cpu = Device::get("cpu");
  const std::int64_t n = 1024;
  Tensor q = randn({1, 1, n, 64}, f32, cpu, 1);
  cpu.reset_peak();
  const std::uint64_t before = cpu.stats().bytes_allocated;
  AttentionOptions unfused;
  unfused.kernel = "unfused";
  AttentionOutput baseline = attention(q, q, q, unfused);
  EXPECT_GE(double(cpu.stats().peak_bytes_allocated - before), 4.0 * n * n) << "the accounting missed the scores";
}

// ---- bad input ----------------------------------------------------------------------------

TEST(AttentionErrors, BadArgumentsAreNamed) {
  for (const Device& device : devices()) {
    SCOPED_TRACE(device.id());
    Tensor q = zeros({1, 4, 8, 64}, f32, device), k = zeros({1, 2, 8, 64}, f32, device);
    auto contains = [](const std::string& text, const char* part) { return text.find(part) != std::string::npos; };
    EXPECT_TRUE(contains(error_text([&] { attention(q, zeros({1, 3, 8, 64}, f32, device), zeros({1, 3, 8, 64}, f32, device)); }),
                         "dividing q's 4"));
    EXPECT_TRUE(contains(error_text([&] { attention(q, k, zeros({1, 2, 9, 64}, f32, device)); }), "argument v"));
    EXPECT_TRUE(contains(error_text([&] { attention(q, zeros({1, 2, 8, 32}, f32, device), zeros({1, 2, 8, 32}, f32, device)); }),
                         "head_dim 64 like q"));
    EXPECT_TRUE(contains(error_text([&] { attention(q, zeros({2, 2, 8, 64}, f32, device), zeros({2, 2, 8, 64}, f32, device)); }),
                         "batch 1 like q"));
    EXPECT_TRUE(contains(error_text([&] { attention(zeros({1, 1, 8, 48}, f32, device), zeros({1, 1, 8, 48}, f32, device),
                                                   zeros({1, 1, 8, 48}, f32, device)); },
                                    ErrorKind::unsupported),
                         "head_dim 32, 64, 80, 96 or 128"));
    EXPECT_TRUE(contains(error_text([&] { attention(zeros({4, 8, 64}, f32, device), k, k); }), "expected [batch, heads"));
    EXPECT_TRUE(contains(error_text([&] { attention(q, zeros({1, 2, 8, 64}, bf16, device), k); }), "expected dtype f32"));
    for (const Device& other : devices()) {
      if (other == device) continue;
      EXPECT_TRUE(contains(error_text([&] { attention(q, zeros({1, 2, 8, 64}, f32, other), k); }),
                           ("expected a tensor on " + device.id()).c_str()));
    }
  }
}

}  // namespace
}  // namespace porta::test

// attention_case.hpp — one attention benchmark case, shared by porta-bench-attention
// (Google Benchmark) and porta-bench: its shape, flop and byte counts, its inputs, a
// runner for porta (fused kernels, or the `unfused` baseline) and for the three-step
// baseline on OpenBLAS, and the float64 check of a run's output.
// GFLOP/s use the standard count 4 * B * H * N^2 * D (causal: half; backward 2.5x).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "bench_check.hpp"
#include "porta/porta.hpp"

#ifdef PORTA_BENCH_OPENBLAS
#include "openblas_anchor.hpp"
#endif

struct AttentionCase {
  std::int64_t batch = 1, heads = 12, n = 1024, d = 64;
  bool causal = false;
  bool backward = false;

  std::string dims(const char* separator) const {
    char text[96];
    std::snprintf(text, sizeof text, "B%lld%sH%lld%sN%lld%sD%lld", static_cast<long long>(batch), separator,
                  static_cast<long long>(heads), separator, static_cast<long long>(n), separator,
                  static_cast<long long>(d));
    return text;
  }
  // Google Benchmark's name ("B1_H12_N2048_D64_causal", the direction apart) and
  // porta-bench's ("B1 H12 N2048 D64 causal f32 fwd").
  std::string name() const { return dims("_") + (causal ? "_causal" : ""); }
  std::string direction() const { return backward ? "bwd" : "fwd"; }
  std::string label() const { return dims(" ") + (causal ? " causal" : "") + " f32 " + direction(); }
  double flops() const {
    return 4.0 * double(batch * heads) * double(n) * double(n) * double(d) * (causal ? 0.5 : 1.0) *
           (backward ? 2.5 : 1.0);
  }
  // Compulsory traffic: forward reads Q, K, V and writes O and the LSE; the backward
  // also reads dO, O, LSE and writes dQ, dK, dV.
  double bytes() const {
    const double tensor = double(batch * heads * n * d) * 4.0, row = double(batch * heads * n) * 4.0;
    return backward ? 8 * tensor + row : 4 * tensor + row;
  }
  porta::Shape qkv_shape() const { return {batch, heads, n, d}; }
  float scale() const { return 1.0f / std::sqrt(float(d)); }
};

// q, k, v and the output gradient, from fixed seeds: every runner gets the same values.
inline porta::Tensor attention_input(const AttentionCase& c, int which, const porta::Device& device) {
  return porta::randn(c.qkv_shape(), porta::f32, device, std::uint64_t(which) + 1);
}

// The float64 attention of the last head (the first for a forward is as good; the last
// sits furthest from every buffer's start), checked on a few rows: the output rows for a
// forward; dQ rows and dK, dV rows for a backward (which needs every row's softmax).
class AttentionReference {
 public:
  explicit AttentionReference(const AttentionCase& c) : case_(c) {
    const porta::Device cpu = porta::Device::get("cpu:0");
    const std::size_t head = std::size_t(c.batch * c.heads - 1) * std::size_t(c.n * c.d);
    for (int which = 0; which < 4; ++which) {
      const std::vector<float> all = attention_input(c, which, cpu).to_host<float>();
      inputs_[which].assign(all.begin() + std::ptrdiff_t(head), all.begin() + std::ptrdiff_t(head + c.n * c.d));
    }
    const std::vector<std::int64_t> rows = sampled_indices(c.n);
    if (!c.backward) {
      for (std::int64_t i : rows) append(out_row(i).second);
      return;
    }
    // Every row's log-sum-exp and Delta_i = dO_i . O_i, then the sampled gradient rows.
    std::vector<double> lse(std::size_t(c.n)), delta(std::size_t(c.n));
    for (std::int64_t i = 0; i < c.n; ++i) {
      auto [row_lse, o] = out_row(i);
      lse[std::size_t(i)] = row_lse;
      for (std::int64_t e = 0; e < c.d; ++e) delta[std::size_t(i)] += o[std::size_t(e)] * at(3, i, e);
    }
    const double scale = c.scale();
    auto probability = [&](std::int64_t i, std::int64_t j) { return std::exp(score(i, j) - lse[std::size_t(i)]); };
    auto dp = [&](std::int64_t i, std::int64_t j) { return dot(3, i, 2, j); };  // dO_i . v_j
    for (std::int64_t i : rows) {  // dQ_i = scale sum_j P_ij (dP_ij - Delta_i) k_j
      std::vector<double> dq(std::size_t(c.d), 0.0);
      for (std::int64_t j = 0; j <= last_visible(i); ++j) {
        const double ds = probability(i, j) * (dp(i, j) - delta[std::size_t(i)]);
        for (std::int64_t e = 0; e < c.d; ++e) dq[std::size_t(e)] += scale * ds * at(1, j, e);
      }
      append(dq);
    }
    for (std::int64_t j : rows) {  // dK_j = scale sum_i dS_ij q_i, dV_j = sum_i P_ij dO_i
      std::vector<double> dk(std::size_t(c.d), 0.0), dv(std::size_t(c.d), 0.0);
      for (std::int64_t i = 0; i < c.n; ++i) {
        if (last_visible(i) < j) continue;
        const double p = probability(i, j), ds = p * (dp(i, j) - delta[std::size_t(i)]);
        for (std::int64_t e = 0; e < c.d; ++e) {
          dk[std::size_t(e)] += scale * ds * at(0, i, e);
          dv[std::size_t(e)] += p * at(3, i, e);
        }
      }
      dk_dv_.push_back(dk);
      dk_dv_.push_back(dv);
    }
  }

  // `outputs`: the run's full O for a forward; dQ, dK, dV for a backward. Bounded by the
  // summation lengths in f32 ulps (the backward's longer chain counts twice).
  Check check(const std::vector<std::vector<float>>& outputs) const {
    const AttentionCase& c = case_;
    const std::size_t head = std::size_t(c.batch * c.heads - 1) * std::size_t(c.n * c.d);
    auto rows_of = [&](const std::vector<float>& tensor) {
      std::vector<double> rows;
      for (std::int64_t i : sampled_indices(c.n)) {
        for (std::int64_t e = 0; e < c.d; ++e) rows.push_back(tensor.at(head + std::size_t(i * c.d + e)));
      }
      return rows;
    };
    std::vector<double> got = rows_of(outputs.at(0)), want = value_;
    if (c.backward) {  // dK and dV rows interleaved, as the reference holds them
      const std::vector<double> dk = rows_of(outputs.at(1)), dv = rows_of(outputs.at(2));
      for (std::size_t r = 0; r < dk_dv_.size() / 2; ++r) {
        const auto row = std::ptrdiff_t(r * std::size_t(c.d)), next = row + std::ptrdiff_t(c.d);
        got.insert(got.end(), dk.begin() + row, dk.begin() + next);
        got.insert(got.end(), dv.begin() + row, dv.begin() + next);
        want.insert(want.end(), dk_dv_[2 * r].begin(), dk_dv_[2 * r].end());
        want.insert(want.end(), dk_dv_[2 * r + 1].begin(), dk_dv_[2 * r + 1].end());
      }
    }
    const double length = double(c.d + c.n) * (c.backward ? 2 : 1);
    return compare(got, want, 8 * length * 0x1p-23);
  }

 private:
  double at(int which, std::int64_t row, std::int64_t e) const {
    return inputs_[which][std::size_t(row * case_.d + e)];
  }
  double dot(int x, std::int64_t i, int y, std::int64_t j) const {
    double sum = 0;
    for (std::int64_t e = 0; e < case_.d; ++e) sum += at(x, i, e) * at(y, j, e);
    return sum;
  }
  std::int64_t last_visible(std::int64_t i) const { return case_.causal ? i : case_.n - 1; }
  double score(std::int64_t i, std::int64_t j) const { return dot(0, i, 1, j) * double(case_.scale()); }
  // Row i's log-sum-exp and output.
  std::pair<double, std::vector<double>> out_row(std::int64_t i) const {
    double max = -INFINITY;
    for (std::int64_t j = 0; j <= last_visible(i); ++j) max = std::max(max, score(i, j));
    double total = 0;
    std::vector<double> o(std::size_t(case_.d), 0.0);
    for (std::int64_t j = 0; j <= last_visible(i); ++j) {
      const double p = std::exp(score(i, j) - max);
      total += p;
      for (std::int64_t e = 0; e < case_.d; ++e) o[std::size_t(e)] += p * at(2, j, e);
    }
    for (double& value : o) value /= total;
    return {max + std::log(total), o};
  }
  void append(const std::vector<double>& row) { value_.insert(value_.end(), row.begin(), row.end()); }

  AttentionCase case_;
  std::vector<float> inputs_[4];  // q, k, v, dO of the checked head
  std::vector<double> value_;     // O rows (forward) or dQ rows (backward)
  std::vector<std::vector<double>> dk_dv_;
};

// porta's attention on one device with one kernel ("auto", a fused kernel's name, or
// "unfused"). Outputs are poisoned with NaN before the first call.
class PortaAttention {
 public:
  PortaAttention(const AttentionCase& c, const porta::Device& device, const std::string& kernel)
      : case_(c),
        device_(device),
        q_(attention_input(c, 0, device)),
        k_(attention_input(c, 1, device)),
        v_(attention_input(c, 2, device)) {
    options_.causal = c.causal;
    options_.kernel = kernel;
    if (c.backward) {
      grad_ = attention_input(c, 3, device);
      forward_ = porta::attention(q_, k_, v_, options_);
    } else {
      forward_.out = porta::full(c.qkv_shape(), std::numeric_limits<double>::quiet_NaN(), porta::f32, device);
    }
  }
  void operator()() {
    if (case_.backward) {
      gradients_ = porta::attention_backward(grad_, q_, k_, v_, forward_, options_);
    } else {
      forward_ = porta::attention(q_, k_, v_, options_);
    }
    device_.synchronize();
  }
  std::vector<std::vector<float>> output() const {
    if (!case_.backward) return {forward_.out.to_host<float>()};
    return {gradients_.dq.to_host<float>(), gradients_.dk.to_host<float>(), gradients_.dv.to_host<float>()};
  }

 private:
  AttentionCase case_;
  porta::Device device_;
  porta::Tensor q_, k_, v_, grad_;
  porta::AttentionOptions options_;
  porta::AttentionOutput forward_;
  porta::AttentionGradients gradients_;
};

#ifdef PORTA_BENCH_OPENBLAS
namespace {
// The baseline's softmax, vectorised as a good unfused implementation would be:
// fast-math lets GCC reduce in any order and call glibc's vector expf.
__attribute__((target_clones("avx512f", "avx2", "default"), optimize("fast-math"))) void softmax_row(
    float* row, std::size_t visible, std::size_t n) {
  float max = row[0];
  for (std::size_t j = 1; j < visible; ++j) max = row[j] > max ? row[j] : max;
  float total = 0.0f;
  for (std::size_t j = 0; j < visible; ++j) {
    row[j] = std::exp(row[j] - max);
    total += row[j];
  }
  const float inverse = 1.0f / total;
  for (std::size_t j = 0; j < visible; ++j) row[j] *= inverse;
  for (std::size_t j = visible; j < n; ++j) row[j] = 0.0f;
}

// dS = P (dP - Delta), row by row, in place over dP.
__attribute__((target_clones("avx512f", "avx2", "default"))) void softmax_backward_row(
    const float* p, float* dp, float delta, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) dp[j] = p[j] * (dp[j] - delta);
}
}  // namespace

// The unfused three steps on OpenBLAS sgemm, per head: S = scale Q K^T (the whole N x N,
// masked entries too), softmax, O = P V. Its backward is the textbook one: the forward
// keeps every head's P (B*H*N^2 floats: what unfused training stores), then
// dV = P^T dO, dP = dO V^T, dS = P (dP - rowsum(dO o O)), dQ = scale dS K, dK = scale dS^T Q.
class OpenblasAttention {
 public:
  explicit OpenblasAttention(const AttentionCase& c) : case_(c) {
    const porta::Device cpu = porta::Device::get("cpu:0");
    for (int which = 0; which < 4; ++which) input_[which] = attention_input(c, which, cpu).to_host<float>();
    const std::size_t size = input_[0].size();
    o_.assign(size, std::numeric_limits<float>::quiet_NaN());
    p_.resize(std::size_t(c.backward ? c.batch * c.heads : 1) * std::size_t(c.n * c.n));
    if (c.backward) {
      forward();
      for (auto* gradient : {&dq_, &dk_, &dv_}) gradient->assign(size, std::numeric_limits<float>::quiet_NaN());
      ds_.resize(std::size_t(c.n * c.n));
    }
    openblas_set_num_threads(anchor_threads());
  }
  void operator()() { case_.backward ? backward() : forward(); }
  std::vector<std::vector<float>> output() const {
    if (!case_.backward) return {o_};
    return {dq_, dk_, dv_};
  }

 private:
  void forward() {
    const AttentionCase& c = case_;
    const int n = int(c.n), d = int(c.d);
    for (std::int64_t h = 0; h < c.batch * c.heads; ++h) {
      const std::size_t at = std::size_t(h * c.n * c.d);
      float* p = p_.data() + (c.backward ? std::size_t(h * c.n * c.n) : 0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, d, c.scale(), input_[0].data() + at, d,
                  input_[1].data() + at, d, 0.0f, p, n);
      for (std::size_t i = 0; i < std::size_t(n); ++i) softmax_row(p + i * std::size_t(n), c.causal ? i + 1 : n, n);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, n, 1.0f, p, n, input_[2].data() + at, d, 0.0f,
                  o_.data() + at, d);
    }
  }
  void backward() {
    const AttentionCase& c = case_;
    const int n = int(c.n), d = int(c.d);
    for (std::int64_t h = 0; h < c.batch * c.heads; ++h) {
      const std::size_t at = std::size_t(h * c.n * c.d);
      const float *q = input_[0].data() + at, *k = input_[1].data() + at, *v = input_[2].data() + at,
                  *grad = input_[3].data() + at, *o = o_.data() + at, *p = p_.data() + std::size_t(h * c.n * c.n);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, d, n, 1.0f, p, n, grad, d, 0.0f, dv_.data() + at, d);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, d, 1.0f, grad, d, v, d, 0.0f, ds_.data(), n);
      for (std::size_t i = 0; i < std::size_t(n); ++i) {
        const float delta = cblas_sdot(d, grad + i * std::size_t(d), 1, o + i * std::size_t(d), 1);
        softmax_backward_row(p + i * std::size_t(n), ds_.data() + i * std::size_t(n), delta, std::size_t(n));
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, n, c.scale(), ds_.data(), n, k, d, 0.0f,
                  dq_.data() + at, d);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, d, n, c.scale(), ds_.data(), n, q, d, 0.0f,
                  dk_.data() + at, d);
    }
  }

  AttentionCase case_;
  std::vector<float> input_[4];
  std::vector<float> o_, p_, ds_, dq_, dk_, dv_;
};
#endif

// cpu.cpp — fused attention on the cpu (FlashAttention-2's scheme): per key/value head,
// K and V are packed once into the matmul microkernel's panels; query blocks run in
// parallel, each streaming over key blocks with an online softmax, so memory stays
// O(N * D) per head and the N x N scores never exist. The backward recomputes the
// probabilities block by block.
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "common/cpu_access.hpp"
#include "common/cpu_isa.hpp"
#include "common/cpu_kernels.hpp"
#include "matmul/cpu_microkernel.hpp"

namespace porta::kernels::cpu {

namespace {

// Query and key block sizes: multiples of every attention microkernel's mr (12, 6, 4) and nr (32, 16).
constexpr std::size_t block_q = 48;
constexpr std::size_t block_k = 96;
constexpr float log2e = 1.4426950408889634f;

std::size_t round_up(std::size_t value, std::size_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// 2^x for x <= 0 (or -inf): exponent bits and a degree-6 Chebyshev fit of 2^f on [0, 1)
// (relative error 2.6e-9). Written so loops over it vectorise: value selects only, and
// the integer part comes from the 1.5 * 2^23 rounding trick rather than a float-to-int
// conversion, which GCC will not execute speculatively after a select.
inline float exp2_nonpositive(float x) {
  x = x < -127.0f ? -127.0f : x;  // also maps -inf
  constexpr float magic = 12582912.0f;
  const float shifted = x + magic;  // x rounded to an integer, held in the low mantissa bits
  const float rounded = shifted - magic;
  const float above = rounded > x ? 1.0f : 0.0f;
  const float f = x - (rounded - above);  // in [0, 1)
  const std::int32_t whole = std::bit_cast<std::int32_t>(shifted) - std::bit_cast<std::int32_t>(magic) -
                             static_cast<std::int32_t>(above);
  float poly = 0.00021877504774643532f;
  poly = poly * f + 0.0012387821477309214f;
  poly = poly * f + 0.009684580452564118f;
  poly = poly * f + 0.05548042632561699f;
  poly = poly * f + 0.24023050204505123f;
  poly = poly * f + 0.6931469286930213f;
  poly = poly * f + 1.0000000025868894f;
  return std::bit_cast<float>(static_cast<std::uint32_t>(whole + 127) << 23) * poly;
}

// One query row's step of the online softmax over a key block: scales and exponentiates
// the `visible` scores, writes the probabilities into the packed P sliver (stride mr,
// zeros past `visible`), and rescales the running sum and output row. Compiled per SIMD
// level (PerIsa below): this elementwise work is what the microkernel does not cover.
[[gnu::always_inline]] inline void online_softmax_row(
    float* scores, std::size_t visible, float scale_log2, float* sliver, std::size_t mr, float& running_max,
    float& running_sum, float* acc_row, std::size_t d_pad) {
  if (visible == 0) {
    for (std::size_t j = 0; j < block_k; ++j) sliver[j * mr] = 0.0f;
    return;
  }
  // Reductions in 16 independent lanes: a single running max or sum is a chain of
  // dependent instructions the compiler may not reorder (that would change rounding).
  constexpr std::size_t lanes = 16;
  float lane_max[lanes], lane_sum[lanes];
  for (std::size_t l = 0; l < lanes; ++l) {
    lane_max[l] = -std::numeric_limits<float>::infinity();
    lane_sum[l] = 0.0f;
  }
  const std::size_t whole = visible / lanes * lanes;
  for (std::size_t j = 0; j < whole; j += lanes) {
    for (std::size_t l = 0; l < lanes; ++l) lane_max[l] = std::max(lane_max[l], scores[j + l] * scale_log2);
  }
  for (std::size_t j = whole; j < visible; ++j) lane_max[j - whole] = std::max(lane_max[j - whole], scores[j] * scale_log2);
  float block_max = lane_max[0];
  for (std::size_t l = 1; l < lanes; ++l) block_max = std::max(block_max, lane_max[l]);
  const float new_max = std::max(running_max, block_max);
  const float correction = exp2_nonpositive(running_max - new_max);
  for (std::size_t j = 0; j < visible; ++j) scores[j] = exp2_nonpositive(scores[j] * scale_log2 - new_max);
  for (std::size_t j = 0; j < whole; j += lanes) {
    for (std::size_t l = 0; l < lanes; ++l) lane_sum[l] += scores[j + l];
  }
  for (std::size_t j = whole; j < visible; ++j) lane_sum[j - whole] += scores[j];
  float total = 0.0f;
  for (std::size_t l = 0; l < lanes; ++l) total += lane_sum[l];
  for (std::size_t j = 0; j < block_k; ++j) sliver[j * mr] = j < visible ? scores[j] : 0.0f;
  running_sum = running_sum * correction + total;
  running_max = new_max;
  if (correction != 1.0f) {
    for (std::size_t c = 0; c < d_pad; ++c) acc_row[c] *= correction;
  }
}

// One query row of the backward over a key block: P = 2^(S scale_log2 - lse_log2) and
// dS = P (dP - delta) for the `visible` keys (0 past them), written in the packed
// layouts the three products need.
[[gnu::always_inline]] inline void gradient_row(
    const float* scores, const float* grad_p, std::size_t visible, float scale_log2, float lse_log2, float delta,
    float* probabilities_t, float* grad_s_t, std::size_t t_stride, float* grad_s_sliver, std::size_t mr) {
  // First into local rows (a vector loop: nothing aliases them), then scattered into the
  // packed layouts, mr consecutive keys at a time.
  float prob[block_k], ds[block_k];
  for (std::size_t j = 0; j < block_k; ++j) {
    const float value = exp2_nonpositive(scores[j] * scale_log2 - lse_log2);
    prob[j] = j < visible ? value : 0.0f;
    ds[j] = prob[j] * (grad_p[j] - delta);
  }
  for (std::size_t j0 = 0; j0 < block_k; j0 += mr) {
    float* p_t = probabilities_t + (j0 / mr) * t_stride;
    float* ds_t = grad_s_t + (j0 / mr) * t_stride;
    for (std::size_t r = 0; r < mr; ++r) {
      p_t[r] = prob[j0 + r];
      ds_t[r] = ds[j0 + r];
    }
  }
  for (std::size_t j = 0; j < block_k; ++j) grad_s_sliver[j * mr] = ds[j];
}

// `row` compiled once per SIMD level, the one cpu_isa() allows picked at run time, so
// $PORTA_CPU_ISA caps these rows as it caps the microkernel (target_clones would pick by
// the processor alone, and the portable rows would go untested on an AVX machine).
template <auto row>
struct PerIsa;
template <class... Args, void (*row)(Args...)>
struct PerIsa<row> {
  __attribute__((target("avx512f"))) static void avx512(Args... args) { row(args...); }
  __attribute__((target("avx2,fma"))) static void avx2(Args... args) { row(args...); }
  static void portable(Args... args) { row(args...); }
  static void (*pick())(Args...) {
    switch (cpu_isa()) {
      case CpuIsa::avx512: return avx512;
      case CpuIsa::avx2: return avx2;
      case CpuIsa::portable: break;
    }
    return portable;
  }
};

// Addressing of one [batch, heads, n, d] operand with a unit stride along d.
struct Operand {
  const void* base;
  uint dtype;
  std::size_t offset, stride_b, stride_h, stride_n;
  std::size_t row(std::size_t b, std::size_t h, std::size_t i) const {
    return offset + b * stride_b + h * stride_h + i * stride_n;
  }
};

// d values of a row, as f32 (the packing routines' source).
void load_row(const Operand& x, std::size_t index, std::size_t d, float* out) {
  if (x.dtype == PORTA_DTYPE_F32) {
    const float* row = static_cast<const float*>(x.base) + index;
    std::copy(row, row + d, out);
    return;
  }
  for (std::size_t i = 0; i < d; ++i) out[i] = load_float(x.base, x.dtype, index + i);
}

// Rows [r0, r0 + valid) of x as the microkernel's A operand: slivers of mr rows, k = d;
// rows up to `rows` (a multiple of mr) are zero.
void pack_a(const Operand& x, std::size_t b, std::size_t h, std::size_t r0, std::size_t valid, std::size_t rows,
            std::size_t d, std::size_t mr, float* out, float* run) {
  for (std::size_t r = 0; r < rows; ++r) {
    float* sliver = out + (r / mr) * mr * d;
    if (r < valid) load_row(x, x.row(b, h, r0 + r), d, run);
    for (std::size_t i = 0; i < d; ++i) sliver[i * mr + r % mr] = r < valid ? run[i] : 0.0f;
  }
}

// Rows [r0, r0 + valid) of x, transposed, as the microkernel's B operand: slivers of nr
// rows (the product's columns), k = d.
void pack_b_transposed(const Operand& x, std::size_t b, std::size_t h, std::size_t r0, std::size_t valid,
                       std::size_t rows, std::size_t d, std::size_t nr, float* out, float* run) {
  for (std::size_t r = 0; r < rows; ++r) {
    float* sliver = out + (r / nr) * nr * d;
    if (r < valid) load_row(x, x.row(b, h, r0 + r), d, run);
    for (std::size_t i = 0; i < d; ++i) sliver[i * nr + r % nr] = r < valid ? run[i] : 0.0f;
  }
}

// Rows [r0, r0 + valid) of x as the microkernel's B operand: k = rows, columns = d
// padded to d_pad, in slivers of nr columns.
void pack_b(const Operand& x, std::size_t b, std::size_t h, std::size_t r0, std::size_t valid, std::size_t rows,
            std::size_t d, std::size_t d_pad, std::size_t nr, float* out, float* run) {
  std::fill(run + d, run + d_pad, 0.0f);
  for (std::size_t r = 0; r < rows; ++r) {
    if (r < valid) {
      load_row(x, x.row(b, h, r0 + r), d, run);
    } else {
      std::fill(run, run + d, 0.0f);
    }
    for (std::size_t s = 0; s < d_pad / nr; ++s) std::copy(run + s * nr, run + (s + 1) * nr, out + (s * rows + r) * nr);
  }
}

// Aligned f32 scratch that does not initialise.
struct Scratch {
  std::unique_ptr<float[]> storage;
  float* data = nullptr;
  explicit Scratch(std::size_t floats) : storage(new float[floats + 16]) {
    auto address = reinterpret_cast<std::uintptr_t>(storage.get());
    data = storage.get() + ((64 - address % 64) % 64) / sizeof(float);
  }
};

// C (rows x cols, ldc) = alpha * A * B + c_scale * C for packed A (rows in mr slivers) and
// B (cols in nr slivers), both with k = kc.
void multiply(const MicrokernelShape& micro, std::size_t kc, const float* a, std::size_t rows, const float* b,
              std::size_t cols, float* c, std::size_t ldc, float alpha, float c_scale) {
  for (std::size_t i = 0; i < rows; i += micro.mr) {
    for (std::size_t j = 0; j < cols; j += micro.nr) {
      micro.kernel(kc, a + i * kc, b + j * kc, TileOutput{c + i * ldc + j, ldc, alpha, c_scale, nullptr, nullptr});
    }
  }
}

// The last key query i may see (i + nk - nq when causal), as a signed index.
std::int64_t last_visible_key(const AttentionParams& p, std::size_t i) {
  return p.causal ? static_cast<std::int64_t>(i) + std::int64_t(p.nk) - std::int64_t(p.nq) : std::int64_t(p.nk) - 1;
}

// Number of key blocks that query block [q0, q1) needs.
std::size_t key_blocks_needed(const AttentionParams& p, std::size_t q1) {
  const std::int64_t last = std::min<std::int64_t>(last_visible_key(p, q1 - 1), std::int64_t(p.nk) - 1);
  return last < 0 ? 0 : (static_cast<std::size_t>(last) + block_k) / block_k;
}

struct Operands {
  Operand q, k, v;
  explicit Operands(const void* q_base, const void* k_base, const void* v_base, const AttentionParams& p)
      : q{q_base, p.dtype, p.q_offset, p.q_stride_b, p.q_stride_h, p.q_stride_n},
        k{k_base, p.dtype, p.k_offset, p.k_stride_b, p.k_stride_h, p.k_stride_n},
        v{v_base, p.dtype, p.v_offset, p.v_stride_b, p.v_stride_h, p.v_stride_n} {}
};

}  // namespace

std::size_t attention_scratch_bytes(const AttentionParams& p, bool backward, std::size_t threads) {
  const MicrokernelShape& micro = cpu_attention_microkernel();
  const std::size_t d = p.d, d_pad = round_up(d, micro.nr);
  const std::size_t nk_pad = round_up(p.nk, block_k), nq_pad = round_up(p.nq, block_q);
  const std::size_t per_block = block_q * (2 * d + 2 * d_pad) + block_q * block_k * 5 + 4 * block_q + 2 * d_pad;
  if (!backward) return sizeof(float) * (nk_pad * (d + d_pad) + threads * per_block);
  const std::size_t per_head = 2 * nk_pad * d + 3 * nk_pad * d_pad + nq_pad * d_pad + per_block;
  return sizeof(float) * threads * per_head;
}

void attention_forward(const void* q_base, const void* k_base, const void* v_base, void* o, void* lse_base,
                       const AttentionParams& p) {
  const MicrokernelShape& micro = cpu_attention_microkernel();
  static const auto online_softmax_row_simd = PerIsa<online_softmax_row>::pick();
  const Operands x(q_base, k_base, v_base, p);
  const std::size_t d = p.d, d_pad = round_up(d, micro.nr), group = p.heads_q / p.heads_kv;
  const std::size_t key_blocks = (p.nk + block_k - 1) / block_k, query_blocks = (p.nq + block_q - 1) / block_q;
  const float scale_log2 = p.scale * log2e;
  float* lse = static_cast<float*>(lse_base);
  Scratch keys(key_blocks * block_k * d), values(key_blocks * block_k * d_pad);

  for (std::size_t b = 0; b < p.batch; ++b) {
    for (std::size_t hk = 0; hk < p.heads_kv; ++hk) {
      tbb::parallel_for(std::size_t(0), key_blocks, [&](std::size_t kb) {
        std::vector<float> run(d_pad);
        const std::size_t j0 = kb * block_k, valid = std::min<std::size_t>(block_k, p.nk - j0);
        pack_b_transposed(x.k, b, hk, j0, valid, block_k, d, micro.nr, keys.data + kb * block_k * d, run.data());
        pack_b(x.v, b, hk, j0, valid, block_k, d, d_pad, micro.nr, values.data + kb * block_k * d_pad, run.data());
      });
      tbb::parallel_for(std::size_t(0), group * query_blocks, [&](std::size_t task) {
        const std::size_t h = hk * group + task / query_blocks;
        const std::size_t q0 = (task % query_blocks) * block_q, q1 = std::min<std::size_t>(q0 + block_q, p.nq);
        thread_local std::vector<float> buffers;
        buffers.resize(block_q * d + block_q * block_k * 2 + block_q * d_pad + 3 * block_q + d_pad + 64);
        float* queries = buffers.data();
        float* scores = queries + block_q * d;
        float* probabilities = scores + block_q * block_k;
        float* acc = probabilities + block_q * block_k;
        float* running_max = acc + block_q * d_pad;
        float* running_sum = running_max + block_q;
        float* run = running_sum + block_q;
        pack_a(x.q, b, h, q0, q1 - q0, block_q, d, micro.mr, queries, run);
        std::fill(acc, acc + block_q * d_pad, 0.0f);
        std::fill(running_max, running_max + block_q, -std::numeric_limits<float>::infinity());
        std::fill(running_sum, running_sum + block_q, 0.0f);
        const std::size_t needed = key_blocks_needed(p, q1);
        for (std::size_t kb = 0; kb < needed; ++kb) {
          const std::size_t j0 = kb * block_k;
          multiply(micro, d, queries, block_q, keys.data + kb * block_k * d, block_k, scores, block_k, 1.0f, 0.0f);
          for (std::size_t i = 0; i < block_q; ++i) {
            const std::int64_t last = i < q1 - q0 ? std::min<std::int64_t>(last_visible_key(p, q0 + i), p.nk - 1) : -1;
            const std::int64_t visible = std::clamp<std::int64_t>(last - std::int64_t(j0) + 1, 0, block_k);
            online_softmax_row_simd(scores + i * block_k, static_cast<std::size_t>(visible), scale_log2,
                                    probabilities + (i / micro.mr) * micro.mr * block_k + i % micro.mr, micro.mr,
                                    running_max[i], running_sum[i], acc + i * d_pad, d_pad);
          }
          multiply(micro, block_k, probabilities, block_q, values.data + kb * block_k * d_pad, d_pad, acc, d_pad, 1.0f,
                   1.0f);
        }
        const std::size_t out_base = ((b * p.heads_q + h) * p.nq) * d;
        for (std::size_t i = 0; i < q1 - q0; ++i) {
          const float sum = running_sum[i];
          const float inverse = sum > 0.0f ? 1.0f / sum : 0.0f;
          for (std::size_t c = 0; c < d; ++c) store_float(o, p.dtype, out_base + (q0 + i) * d + c, acc[i * d_pad + c] * inverse);
          lse[(b * p.heads_q + h) * p.nq + q0 + i] =
              sum > 0.0f ? running_max[i] / log2e + std::log(sum) : -std::numeric_limits<float>::infinity();
        }
      });
    }
  }
}

void attention_backward(const void* q_base, const void* k_base, const void* v_base, const void* o,
                        const void* lse_base, const void* grad_o, void* dq, void* dk, void* dv,
                        const AttentionParams& p) {
  const MicrokernelShape& micro = cpu_attention_microkernel();
  static const auto gradient_row_simd = PerIsa<gradient_row>::pick();
  const Operands x(q_base, k_base, v_base, p);
  const std::size_t d = p.d, d_pad = round_up(d, micro.nr), group = p.heads_q / p.heads_kv;
  const std::size_t key_blocks = (p.nk + block_k - 1) / block_k, query_blocks = (p.nq + block_q - 1) / block_q;
  const std::size_t nk_pad = key_blocks * block_k, nq_pad = query_blocks * block_q;
  const float scale_log2 = p.scale * log2e;
  const float* lse = static_cast<const float*>(lse_base);

  // One task per key/value head: it owns dK and dV of that head and the dQ of its query
  // heads, so nothing is shared and the sums run in a fixed order.
  tbb::parallel_for(std::size_t(0), std::size_t(p.batch) * p.heads_kv, [&](std::size_t task) {
    const std::size_t b = task / p.heads_kv, hk = task % p.heads_kv;
    Scratch keys_t(nk_pad * d), values_t(nk_pad * d), keys(nk_pad * d_pad);
    std::vector<float> grad_k(nk_pad * d_pad, 0.0f), grad_v(nk_pad * d_pad, 0.0f), grad_q(nq_pad * d_pad);
    std::vector<float> run(d_pad);
    for (std::size_t kb = 0; kb < key_blocks; ++kb) {
      const std::size_t j0 = kb * block_k, valid = std::min<std::size_t>(block_k, p.nk - j0);
      pack_b_transposed(x.k, b, hk, j0, valid, block_k, d, micro.nr, keys_t.data + kb * block_k * d, run.data());
      pack_b_transposed(x.v, b, hk, j0, valid, block_k, d, micro.nr, values_t.data + kb * block_k * d, run.data());
      pack_b(x.k, b, hk, j0, valid, block_k, d, d_pad, micro.nr, keys.data + kb * block_k * d_pad, run.data());
    }
    Scratch queries(block_q * d), grads(block_q * d), queries_b(block_q * d_pad), grads_b(block_q * d_pad);
    Scratch scores(block_q * block_k), grad_p(block_q * block_k);
    Scratch probabilities_t(block_k * block_q), grad_s_t(block_k * block_q), grad_s(block_q * block_k);
    std::vector<float> delta(block_q), lse_log2(block_q), o_row(d), do_row(d);
    for (std::size_t g = 0; g < group; ++g) {
      const std::size_t h = hk * group + g;
      std::fill(grad_q.begin(), grad_q.end(), 0.0f);
      const Operand out{o, p.dtype, ((b * p.heads_q + h) * p.nq) * d, 0, 0, d};
      const Operand grad_out{grad_o, p.dtype, ((b * p.heads_q + h) * p.nq) * d, 0, 0, d};
      for (std::size_t qb = 0; qb < query_blocks; ++qb) {
        const std::size_t q0 = qb * block_q, q1 = std::min<std::size_t>(q0 + block_q, p.nq), rows = q1 - q0;
        pack_a(x.q, b, h, q0, rows, block_q, d, micro.mr, queries.data, run.data());
        pack_a(grad_out, 0, 0, q0, rows, block_q, d, micro.mr, grads.data, run.data());
        pack_b(x.q, b, h, q0, rows, block_q, d, d_pad, micro.nr, queries_b.data, run.data());
        pack_b(grad_out, 0, 0, q0, rows, block_q, d, d_pad, micro.nr, grads_b.data, run.data());
        for (std::size_t i = 0; i < block_q; ++i) {  // delta_i = dO_i . O_i
          float sum = 0.0f;
          if (i < rows) {
            load_row(out, out.row(0, 0, q0 + i), d, o_row.data());
            load_row(grad_out, grad_out.row(0, 0, q0 + i), d, do_row.data());
            for (std::size_t c = 0; c < d; ++c) sum += o_row[c] * do_row[c];
          }
          delta[i] = sum;
          const float row_lse = i < rows ? lse[(b * p.heads_q + h) * p.nq + q0 + i] : -INFINITY;
          lse_log2[i] = std::isfinite(row_lse) ? row_lse * log2e : -INFINITY;
        }
        const std::size_t needed = key_blocks_needed(p, q1);
        for (std::size_t kb = 0; kb < needed; ++kb) {
          const std::size_t j0 = kb * block_k;
          multiply(micro, d, queries.data, block_q, keys_t.data + kb * block_k * d, block_k, scores.data, block_k,
                   1.0f, 0.0f);
          multiply(micro, d, grads.data, block_q, values_t.data + kb * block_k * d, block_k, grad_p.data, block_k,
                   1.0f, 0.0f);
          for (std::size_t i = 0; i < block_q; ++i) {
            const std::int64_t last = i < rows ? std::min<std::int64_t>(last_visible_key(p, q0 + i), p.nk - 1) : -1;
            const std::int64_t visible = std::isfinite(lse_log2[i])
                                             ? std::clamp<std::int64_t>(last - std::int64_t(j0) + 1, 0, block_k)
                                             : 0;
            gradient_row_simd(scores.data + i * block_k, grad_p.data + i * block_k,
                              static_cast<std::size_t>(visible), scale_log2, lse_log2[i], delta[i],
                              probabilities_t.data + i * micro.mr, grad_s_t.data + i * micro.mr, micro.mr * block_q,
                              grad_s.data + (i / micro.mr) * micro.mr * block_k + i % micro.mr, micro.mr);
          }
          float* dv_block = grad_v.data() + j0 * d_pad;
          float* dk_block = grad_k.data() + j0 * d_pad;
          multiply(micro, block_q, probabilities_t.data, block_k, grads_b.data, d_pad, dv_block, d_pad, 1.0f, 1.0f);
          multiply(micro, block_q, grad_s_t.data, block_k, queries_b.data, d_pad, dk_block, d_pad, p.scale, 1.0f);
          multiply(micro, block_k, grad_s.data, block_q, keys.data + kb * block_k * d_pad, d_pad,
                   grad_q.data() + q0 * d_pad, d_pad, p.scale, 1.0f);
        }
      }
      const std::size_t dq_base = ((b * p.heads_q + h) * p.nq) * d;
      for (std::size_t i = 0; i < p.nq; ++i) {
        for (std::size_t c = 0; c < d; ++c) store_float(dq, p.dtype, dq_base + i * d + c, grad_q[i * d_pad + c]);
      }
    }
    const std::size_t kv_base = ((b * p.heads_kv + hk) * p.nk) * d;
    for (std::size_t j = 0; j < p.nk; ++j) {
      for (std::size_t c = 0; c < d; ++c) {
        store_float(dk, p.dtype, kv_base + j * d + c, grad_k[j * d_pad + c]);
        store_float(dv, p.dtype, kv_base + j * d + c, grad_v[j * d_pad + c]);
      }
    }
  });
}

}  // namespace porta::kernels::cpu

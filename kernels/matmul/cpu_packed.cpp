// cpu_packed.cpp — the fast cpu matmul: A and B packed into contiguous panels (any
// transpose and dtype becomes f32 slivers), cache blocking over n, k and m, and the
// register-blocked microkernel of cpu_microkernel.cpp chosen at run time by cpu
// feature, parallel over blocks of rows (or over the batch) with oneTBB.
#include <immintrin.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <memory>
#include <vector>

#include "common/cpu_access.hpp"
#include "common/cpu_isa.hpp"
#include "common/cpu_kernels.hpp"
#include "common/gelu.h"
#include "matmul/cpu_microkernel.hpp"

namespace porta::kernels::cpu {

namespace {

__attribute__((target("f16c"))) void half_run_f16c(const std::uint16_t* in, std::size_t count, float* out) {
  std::size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  }
  for (; i < count; ++i) out[i] = porta_as_float(porta_f16_to_f32_bits(in[i]));
}

// count consecutive elements of dtype from base[index], as f32: packing's inner loop.
void convert_run(const void* base, uint dtype, std::size_t index, std::size_t count, float* out) {
  if (dtype == PORTA_DTYPE_F32) {
    std::memcpy(out, static_cast<const float*>(base) + index, count * sizeof(float));
  } else if (dtype == PORTA_DTYPE_BF16) {
    const std::uint16_t* in = static_cast<const std::uint16_t*>(base) + index;
    for (std::size_t i = 0; i < count; ++i) out[i] = std::bit_cast<float>(std::uint32_t(in[i]) << 16);
  } else {
    static const bool f16c = cpu_isa() != CpuIsa::portable && __builtin_cpu_supports("f16c");
    const std::uint16_t* in = static_cast<const std::uint16_t*>(base) + index;
    if (f16c) return half_run_f16c(in, count, out);
    for (std::size_t i = 0; i < count; ++i) out[i] = porta_as_float(porta_f16_to_f32_bits(in[i]));
  }
}

// The rows of an 8 x 8 block become its columns: r[s][i] = old r[i][s].
__attribute__((target("avx2"))) inline void transpose8x8(__m256 r[8]) {
  __m256 u[8];
  for (int h = 0; h < 8; h += 4) {  // rows h..h+3: each 128-bit lane of u[h + c] holds column c or c + 4 of them
    const __m256 t0 = _mm256_unpacklo_ps(r[h], r[h + 1]), t1 = _mm256_unpackhi_ps(r[h], r[h + 1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[h + 2], r[h + 3]), t3 = _mm256_unpackhi_ps(r[h + 2], r[h + 3]);
    u[h] = _mm256_shuffle_ps(t0, t2, 0x44);
    u[h + 1] = _mm256_shuffle_ps(t0, t2, 0xEE);
    u[h + 2] = _mm256_shuffle_ps(t1, t3, 0x44);
    u[h + 3] = _mm256_shuffle_ps(t1, t3, 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm256_permute2f128_ps(u[c], u[c + 4], 0x20);
    r[c + 4] = _mm256_permute2f128_ps(u[c], u[c + 4], 0x31);
  }
}

// out[0, count) = v[0, count): count is 8, or what is left of a sliver width (4 or 6 for
// mr 4, 6, 12 and 14; any other count takes the slow path).
__attribute__((target("avx2"))) inline void store_first(float* out, __m256 v, std::size_t count) {
  switch (count) {
    case 8: return _mm256_storeu_ps(out, v);
    case 6: _mm_storel_pi(reinterpret_cast<__m64*>(out + 4), _mm256_extractf128_ps(v, 1)); [[fallthrough]];
    case 4: return _mm_storeu_ps(out, _mm256_castps256_ps128(v));
    default: {
      alignas(32) float values[8];
      _mm256_store_ps(values, v);
      std::memcpy(out, values, count * sizeof(float));
    }
  }
}

// out[q * width + j] = rows[j][q] for q < kc and j < width, 0 where j >= valid: packing's
// transpose for f32 (A's rows into mr-wide steps, B^T's into nr-wide ones).
// Scalar: 16 steps of k at a time, so the 16 floats read from each row are one cache line
// and the tile written (16 x width) stays in L1.
void interleave_rows_scalar(const float* const* rows, std::size_t valid, std::size_t width, std::size_t first,
                            std::size_t kc, float* out) {
  constexpr std::size_t step = 16;
  for (std::size_t q0 = first; q0 < kc; q0 += step) {
    const std::size_t steps = std::min(step, kc - q0);
    for (std::size_t j = 0; j < width; ++j) {
      float* column = out + q0 * width + j;
      if (j >= valid) {
        for (std::size_t q = 0; q < steps; ++q) column[q * width] = 0.0f;
        continue;
      }
      const float* row = rows[j] + q0;
      for (std::size_t q = 0; q < steps; ++q) column[q * width] = row[q];
    }
  }
}

// AVX2: 8 rows by 8 steps transposed in registers. Packing one 72 x 512 block of A
// (mr 6) from L2 took 6.3 us against the scalar copy's 12-15 us, which is bound by its
// one-float loads and stores wherever the rows are (Zen3, one thread). Inside the matmul
// the rows mostly come from memory, so less is left: at 2048^3 packing A took 10% less
// time, packing B^T (nt) 17% less.
__attribute__((target("avx2"))) void interleave_rows_avx2(const float* const* rows, std::size_t valid,
                                                          std::size_t width, std::size_t kc, float* out) {
  std::size_t q = 0;
  for (; q + 8 <= kc; q += 8) {
    for (std::size_t g = 0; g < width; g += 8) {
      __m256 r[8];
#pragma GCC unroll 8
      for (std::size_t i = 0; i < 8; ++i) r[i] = g + i < valid ? _mm256_loadu_ps(rows[g + i] + q) : _mm256_setzero_ps();
      transpose8x8(r);
      const std::size_t count = std::min<std::size_t>(8, width - g);
#pragma GCC unroll 8
      for (std::size_t step = 0; step < 8; ++step) store_first(out + (q + step) * width + g, r[step], count);
    }
  }
  interleave_rows_scalar(rows, valid, width, q, kc, out);  // the last kc % 8 steps
}

void interleave_rows(const float* const* rows, std::size_t valid, std::size_t width, std::size_t kc, float* out) {
  static const bool avx2 = cpu_isa() != CpuIsa::portable;
  if (avx2) return interleave_rows_avx2(rows, valid, width, kc, out);
  interleave_rows_scalar(rows, valid, width, 0, kc, out);
}

// out[0, width) = in[0, valid) then zeros: one row of a packed sliver. The widths the
// microkernels use (mr 4, 6, 12, 14; nr 16, 32) get a fixed-size copy the compiler inlines.
inline void copy_padded(const float* in, std::size_t valid, std::size_t width, float* out) {
  if (valid == width) {
    switch (width) {
      case 4: return static_cast<void>(std::memcpy(out, in, 4 * sizeof(float)));
      case 6: return static_cast<void>(std::memcpy(out, in, 6 * sizeof(float)));
      case 12: return static_cast<void>(std::memcpy(out, in, 12 * sizeof(float)));
      case 14: return static_cast<void>(std::memcpy(out, in, 14 * sizeof(float)));
      case 16: return static_cast<void>(std::memcpy(out, in, 16 * sizeof(float)));
      case 32: return static_cast<void>(std::memcpy(out, in, 32 * sizeof(float)));
      default: break;
    }
  }
  for (std::size_t j = 0; j < valid; ++j) out[j] = in[j];
  for (std::size_t j = valid; j < width; ++j) out[j] = 0.0f;
}

// Asks for the cache lines of [begin, begin + bytes) to be fetched into L1.
inline void prefetch_range(const void* begin, std::size_t bytes) {
  const char* first = static_cast<const char*>(begin);
  for (std::size_t offset = 0; offset < bytes; offset += 64) _mm_prefetch(first + offset, _MM_HINT_T0);
  _mm_prefetch(first + bytes - 1, _MM_HINT_T0);
}

// One batch item's operands: where op(A) and op(B) start.
struct Operands {
  const void* a;
  const void* b;
  std::size_t a_base, b_base;
  const MatmulParams* p;
};

// pack_a for op(A) = A^T (run: room for `rows` floats). Step q's rows i0.. are one
// contiguous run of A (its row q0 + q) and the steps are lda apart, each on its own page,
// where the hardware prefetcher does not follow. So the block is packed step by step:
// each run is read once, fetched a few steps ahead, and dealt out over the slivers.
// Sliver by sliver, every run was read once per sliver it spans, a cache and TLB miss
// each time: packing took 3.3% of 4096x2304x768 tn's samples, now 1.7-2.0% (1.1% for
// the same A untransposed; what is left waits mostly on the pages of the runs).
void pack_a_transposed(const Operands& x, std::size_t i0, std::size_t rows, std::size_t q0, std::size_t kc,
                       std::size_t mr, float* out, float* run) {
  const MatmulParams& p = *x.p;
  constexpr std::size_t ahead = 16;  // steps: about a DRAM latency of packing
  const std::size_t element = p.ab_dtype == PORTA_DTYPE_F32 ? sizeof(float) : sizeof(std::uint16_t);
  const char* const a = static_cast<const char*>(x.a);
  for (std::size_t q = 0; q < kc; ++q) {
    const std::size_t index = x.a_base + (q0 + q) * p.lda + i0;
    if (q + ahead < kc) prefetch_range(a + (index + ahead * p.lda) * element, rows * element);
    const float* source = run;
    if (p.ab_dtype == PORTA_DTYPE_F32) {
      source = static_cast<const float*>(x.a) + index;
    } else {
      convert_run(x.a, p.ab_dtype, index, rows, run);
    }
    for (std::size_t s = 0; s < rows; s += mr) copy_padded(source + s, std::min(mr, rows - s), mr, out + s * kc + q * mr);
  }
}

// Packs rows [i0, i0 + rows) x k [q0, q0 + kc) of op(A) into mr-row slivers, zero-padded
// (run: room for max(kc, rows) floats).
void pack_a(const Operands& x, std::size_t i0, std::size_t rows, std::size_t q0, std::size_t kc, std::size_t mr,
            float* out, float* run) {
  const MatmulParams& p = *x.p;
  if (p.trans_a) return pack_a_transposed(x, i0, rows, q0, kc, mr, out, run);
  for (std::size_t s = 0; s < rows; s += mr) {
    const std::size_t valid = std::min(mr, rows - s);
    float* sliver = out + s * kc;
    if (p.ab_dtype == PORTA_DTYPE_F32) {  // rows of A are contiguous along k
      const float* starts[MicrokernelShape::max_mr];
      for (std::size_t r = 0; r < valid; ++r) starts[r] = static_cast<const float*>(x.a) + x.a_base + (i0 + s + r) * p.lda + q0;
      interleave_rows(starts, valid, mr, kc, sliver);
    } else {
      for (std::size_t r = 0; r < mr; ++r) {
        if (r < valid) convert_run(x.a, p.ab_dtype, x.a_base + (i0 + s + r) * p.lda + q0, kc, run);
        for (std::size_t q = 0; q < kc; ++q) sliver[q * mr + r] = r < valid ? run[q] : 0.0f;
      }
    }
  }
}

// Packs k [q0, q0 + kc) x columns [j0, j0 + cols) of op(B) into nr-column slivers.
void pack_b(const Operands& x, std::size_t q0, std::size_t kc, std::size_t j0, std::size_t cols, std::size_t nr,
            float* out) {
  const MatmulParams& p = *x.p;
  const std::size_t slivers = (cols + nr - 1) / nr;
  if (!p.trans_b) {
    // Rows of B are contiguous along n: each task copies a tile of 16 steps of k across
    // every sliver, so the reads stream through whole rows and each sliver receives 16
    // consecutive steps (1 KiB at nr 16). With B in cache this packs 2-4x faster than
    // copying runs of 8 slivers row by row (a packing-only test on Zen3); inside the
    // matmul B mostly comes from DRAM, and packing's share of 2048^3 went 2.45 -> 2.33%.
    constexpr std::size_t steps = 16;
    tbb::parallel_for(std::size_t(0), (kc + steps - 1) / steps, [&](std::size_t tile) {
      thread_local std::vector<float> run;  // 16-bit operands, converted to f32 first
      if (p.ab_dtype != PORTA_DTYPE_F32) run.resize(cols);
      for (std::size_t q = tile * steps; q < std::min(kc, (tile + 1) * steps); ++q) {
        const std::size_t row = x.b_base + (q0 + q) * p.ldb + j0;
        const float* source = static_cast<const float*>(x.b) + row;
        if (p.ab_dtype != PORTA_DTYPE_F32) {
          convert_run(x.b, p.ab_dtype, row, cols, run.data());
          source = run.data();
        }
        for (std::size_t s = 0; s < slivers; ++s) {
          copy_padded(source + s * nr, std::min(nr, cols - s * nr), nr, out + s * nr * kc + q * nr);
        }
      }
    });
    return;
  }
  tbb::parallel_for(std::size_t(0), slivers, [&](std::size_t s) {
    const std::size_t first = s * nr;
    const std::size_t valid = std::min(nr, cols - first);
    float* sliver = out + first * kc;
    if (p.ab_dtype == PORTA_DTYPE_F32) {  // B^T: each column of op(B) is contiguous along k
      const float* columns[MicrokernelShape::max_nr];
      for (std::size_t j = 0; j < valid; ++j) columns[j] = static_cast<const float*>(x.b) + x.b_base + (j0 + first + j) * p.ldb + q0;
      interleave_rows(columns, valid, nr, kc, sliver);
    } else {
      thread_local std::vector<float> run;
      run.resize(kc);
      for (std::size_t j = 0; j < nr; ++j) {
        if (j < valid) convert_run(x.b, p.ab_dtype, x.b_base + (j0 + first + j) * p.ldb + q0, kc, run.data());
        for (std::size_t q = 0; q < kc; ++q) sliver[q * nr + j] = j < valid ? run[q] : 0.0f;
      }
    }
  });
}

// A 64-byte aligned scratch buffer per thread, grown on demand.
float* scratch(std::size_t floats, int which) {
  thread_local std::vector<float> buffers[4];
  std::vector<float>& buffer = buffers[which];
  if (buffer.size() < floats + 16) buffer.resize(floats + 16);
  auto address = reinterpret_cast<std::uintptr_t>(buffer.data());
  return buffer.data() + ((64 - address % 64) % 64) / sizeof(float);
}

// Where partial sums live between k blocks: C itself when it is f32, else f32 scratch.
struct Target {
  void* c;
  std::size_t c_base;
  float* partial;  // null: partial sums go to C (f32)
  std::size_t partial_ld;
  const void* bias;
  const MatmulParams* p;
};

// Writes an mr x nr accumulator tile for rows i0.., columns j0.. (valid part only).
void store_tile(const Target& t, const float* acc, std::size_t nr, std::size_t i0, std::size_t rows, std::size_t j0,
                std::size_t cols, bool first_k, bool last_k) {
  const MatmulParams& p = *t.p;
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t c_row = t.c_base + (i0 + r) * p.ldc + j0;
    float* partial_row = t.partial != nullptr ? t.partial + (i0 + r) * t.partial_ld + j0
                                              : static_cast<float*>(t.c) + c_row;
    for (std::size_t j = 0; j < cols; ++j) {
      float value = p.alpha * acc[r * nr + j];
      if (first_k) {
        if (p.beta != 0.0f) value += p.beta * load_float(t.c, p.c_dtype, c_row + j);
      } else {
        value += partial_row[j];
      }
      if (!last_k) {
        partial_row[j] = value;
        continue;
      }
      if (p.has_bias) value += load_float(t.bias, p.bias_dtype, p.bias_offset + j0 + j);
      if (p.epilogue == PORTA_EPILOGUE_GELU) value = porta_gelu(value);
      store_float(t.c, p.c_dtype, c_row + j, value);
    }
  }
}

// Computes C for batch item z. alpha is applied once per k block (the blocks' alpha *
// acc add up to alpha * sum); beta scales C in the first block; bias, GELU and the
// conversion to C's dtype come with the last.
void gemm_one(const void* a, const void* b, const void* bias, void* c, const MatmulParams& p, std::size_t z,
              bool parallel) {
  const MicrokernelShape& shape = cpu_microkernel();
  const Operands x{a, b, p.a_offset + z * p.batch_stride_a, p.b_offset + z * p.batch_stride_b, &p};
  const std::size_t m = p.m, n = p.n, k = p.k;
  const std::size_t kc_max = k <= 2 * shape.kc ? k : shape.kc;  // one block when k is short
  // Column blocks of equal width in whole slivers, at most nc: 2304 columns as 2 x 1152
  // rather than 2048 + 256 ran 4096x2304x768 4% faster (nn; nt and tt 2%). One block of
  // all n was 6-8% slower then (AVX2 on Zen3, before tasks packed their own A).
  const std::size_t column_blocks = (n + shape.nc - 1) / shape.nc;
  const std::size_t nc_max = ((n + column_blocks - 1) / column_blocks + shape.nr - 1) / shape.nr * shape.nr;
  std::vector<float> partial;
  Target target{c, p.c_offset + z * p.batch_stride_c, nullptr, 0, bias, &p};
  const bool c_is_f32 = p.c_dtype == PORTA_DTYPE_F32;
  if (!c_is_f32 && k > kc_max) {
    partial.resize(m * n);
    target.partial = partial.data();
    target.partial_ld = n;
  }
  // The microkernel writes full tiles of an f32 C itself, bias included when it is f32.
  const bool fast_last = c_is_f32 && p.epilogue == PORTA_EPILOGUE_NONE &&
                         (!p.has_bias || p.bias_dtype == PORTA_DTYPE_F32);
  const float* bias_f32 = p.has_bias && p.bias_dtype == PORTA_DTYPE_F32 ? static_cast<const float*>(bias) + p.bias_offset
                                                                        : nullptr;
  std::unique_ptr<float[]> packed_b_storage(new float[kc_max * nc_max + 16]);  // nc_max: whole slivers
  float* packed_b = packed_b_storage.get() +
                    ((64 - reinterpret_cast<std::uintptr_t>(packed_b_storage.get()) % 64) % 64) / sizeof(float);
  // k blocks outermost, so a k block of A packed for all tasks (below) serves every column
  // block (with column blocks outermost, 4096^3 packed A twice: 10 of its 18 ms of packing).
  const std::size_t row_blocks = (m + shape.mc - 1) / shape.mc;
  // Tasks: a block of mc rows times a chunk of columns. When the row blocks alone keep the
  // threads busy (or one thread runs them all), a task spans its whole column block and
  // packs its own rows of A into its own cache, where its microkernels read them: packed
  // once for all tasks, A went out to L3 and came back. On a 2-core Intel Xeon (family 6
  // model 207, 2 MiB L2; porta-ab, 20 rounds), shapes of one column block: 4096x768x3072
  // nn 1.067-1.084, tn 1.033; 2048^3 1.048; 1024^3 1.041. Shapes of several column blocks
  // pack A once per block this way, and still gained on Zen3 (AVX2, nc 2048; porta-ab,
  // 20 rounds, lower quartiles above 1): 4096x2304x768 nn 1.052 twice, tn 1.032;
  // 4096x3072x768 nn 1.026-1.041, tn 1.033; 2048x4096x1024 tn 1.059; 4096^3 nn 0.97-1.02
  // in three runs, tt 1.011: no better or worse than noise.
  const bool rows_feed_threads = row_blocks >= 4 * std::size_t(tbb::this_task_arena::max_concurrency());
  const std::size_t chunk = rows_feed_threads || !parallel ? nc_max : shape.chunk;
  for (std::size_t q0 = 0; q0 < k; q0 += kc_max) {
    const std::size_t kc = std::min(kc_max, k - q0);
    const bool first_k = q0 == 0, last_k = q0 + kc == k;
    // When several chunks of a column block use the same rows of A, A is packed once for
    // them all (in parallel, before the tasks) rather than once per task.
    float* shared_a = nc_max > chunk ? scratch(row_blocks * shape.mc * kc, 3) : nullptr;
    auto pack_rows = [&](std::size_t block, float* out) {
      const std::size_t i0 = block * shape.mc;
      pack_a(x, i0, std::min(shape.mc, m - i0), q0, kc, shape.mr, out, scratch(std::max(kc, shape.mc), 2));
    };
    if (shared_a != nullptr) {
      auto pack_block = [&](std::size_t block) { pack_rows(block, shared_a + block * shape.mc * kc); };
      if (parallel) {
        tbb::parallel_for(std::size_t(0), row_blocks, pack_block);
      } else {
        for (std::size_t block = 0; block < row_blocks; ++block) pack_block(block);
      }
    }
    for (std::size_t j0 = 0; j0 < n; j0 += nc_max) {
      const std::size_t nc = std::min(nc_max, n - j0);
      pack_b(x, q0, kc, j0, nc, shape.nr, packed_b);
      const std::size_t column_chunks = (nc + chunk - 1) / chunk;
      const std::size_t tasks = row_blocks * column_chunks;
      auto task = [&](std::size_t index) {
        const std::size_t i0 = (index / column_chunks) * shape.mc;
        const std::size_t mc = std::min(shape.mc, m - i0);
        const std::size_t jc0 = (index % column_chunks) * chunk;
        const std::size_t jc1 = std::min(nc, jc0 + chunk);
        float* packed_a = shared_a != nullptr ? shared_a + (index / column_chunks) * shape.mc * kc
                                              : scratch(shape.mc * kc, 0);
        float* acc = scratch(shape.mr * shape.nr, 1);
        if (shared_a == nullptr) pack_rows(index / column_chunks, packed_a);
        // The sliver after jr: the next in this task, else the first of the task after it
        // (the one a thread most often runs next).
        auto sliver_after = [&](std::size_t jr) -> const float* {
          if (jr + shape.nr < jc1) return packed_b + (jr + shape.nr) * kc;
          return index + 1 < tasks ? packed_b + (index + 1) % column_chunks * chunk * kc : nullptr;
        };
        for (std::size_t jr = jc0; jr < jc1; jr += shape.nr) {
          const std::size_t cols = std::min(shape.nr, nc - jr);
          for (std::size_t ir = 0; ir < mc; ir += shape.mr) {
            const std::size_t rows = std::min(shape.mr, mc - ir);
            TileOutput out{nullptr, p.ldc, p.alpha, first_k ? p.beta : 1.0f, nullptr, acc};
            if (ir + shape.mr >= mc) out.next_b = sliver_after(jr);  // the last call on this sliver
            if (c_is_f32 && rows == shape.mr && cols == shape.nr && (!last_k || fast_last)) {
              out.c = static_cast<float*>(c) + target.c_base + (i0 + ir) * p.ldc + j0 + jr;
              if (last_k && bias_f32 != nullptr) out.bias = bias_f32 + j0 + jr;
            }
            shape.kernel(kc, packed_a + ir * kc, packed_b + jr * kc, out);
            if (out.c == nullptr) store_tile(target, acc, shape.nr, i0 + ir, rows, j0 + jr, cols, first_k, last_k);
          }
        }
      };
      if (parallel) {
        tbb::parallel_for(std::size_t(0), tasks, task);
      } else {
        for (std::size_t index = 0; index < tasks; ++index) task(index);
      }
    }
  }
}

}  // namespace

void matmul_packed(const void* a, const void* b, const void* bias, void* c, const MatmulParams& p) {
  // Many small products: one per task. Few large ones: parallel inside each.
  const std::size_t rows_blocks = (p.m + cpu_microkernel().mc - 1) / cpu_microkernel().mc;
  if (p.batch > 1 && rows_blocks < 4) {
    tbb::parallel_for(std::size_t(0), std::size_t(p.batch), [&](std::size_t z) { gemm_one(a, b, bias, c, p, z, false); });
    return;
  }
  for (std::size_t z = 0; z < p.batch; ++z) gemm_one(a, b, bias, c, p, z, true);
}

}  // namespace porta::kernels::cpu

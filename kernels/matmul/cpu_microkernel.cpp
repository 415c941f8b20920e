// cpu_microkernel.cpp — the matmul microkernels: AVX-512 (14x32 for the matmul, 12x32 for
// the attention), AVX2+FMA (6x16) and portable (4x16), each computing an MR x NR block
// from packed slivers in registers.
#include "matmul/cpu_microkernel.hpp"

#include <immintrin.h>

#include <cstring>

#include "common/cpu_isa.hpp"

namespace porta::kernels::cpu {

namespace {

// mr rows: 14 for the matmul (28 of the 32 registers hold accumulators, so each B row
// loaded feeds 28 FMAs rather than 24); 12 for the attention, whose blocks of 48 and 96
// rows are not multiples of 14.
template <int mr>
__attribute__((target("avx512f"))) void microkernel_avx512(std::size_t kc, const float* a, const float* b,
                                                           const TileOutput& out) {
  static_assert(mr <= 14, "mr accumulator pairs, two B rows and a broadcast must fit 32 registers");
  if (out.c != nullptr && out.c_scale != 0.0f) {  // the C tile is read at the end: fetch it meanwhile
#pragma GCC unroll 14
    for (int r = 0; r < mr; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(out.c + r * out.ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(out.c + r * out.ldc + 16), _MM_HINT_T0);
    }
  }
  __m512 c[mr][2];
#pragma GCC unroll 14
  for (int r = 0; r < mr; ++r) c[r][0] = c[r][1] = _mm512_setzero_ps();
  // The loop of the AVX2 kernel below, in 512 bits: two steps per iteration, pointers
  // walked to an end, and the next B sliver fetched as this one is used. On a Zen5
  // (AVX-512, 2 threads) with porta-ab, 30 rounds, this alone gave 1.008 at 2048^3 nn,
  // 1.020 at 4096^3 nt, 1.009 at 4096x768x3072 nn.
  const float* const next_b = out.next_b;
  const float* const a_end = a + kc * mr;
  const float* nb = next_b != nullptr ? next_b : b;  // walks next_b's sliver (b's when unused: no null arithmetic)
#pragma GCC unroll 2
  for (; a != a_end; a += mr, b += 32, nb += 32) {
    // The B sliver (kc x 32, 128 KiB at kc 1024) outgrows L1 and streams from L2: fetch
    // it 8 steps ahead. On an earlier AVX-512 machine (ba821fe), porta-bench in turn with
    // OpenBLAS, four runs each: 2048^3 0.93 -> 1.01x, 4096x768x3072 0.89 -> 0.91x,
    // 4096x3072x768 1.02 -> 1.03x. Within noise either way on the Zen5.
    _mm_prefetch(reinterpret_cast<const char*>(b + 256), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 272), _MM_HINT_T0);
    if (next_b != nullptr) {
      _mm_prefetch(reinterpret_cast<const char*>(nb), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(nb + 16), _MM_HINT_T0);
    }
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 14
    for (int r = 0; r < mr; ++r) {
      const __m512 x = _mm512_set1_ps(a[r]);
      c[r][0] = _mm512_fmadd_ps(x, b0, c[r][0]);
      c[r][1] = _mm512_fmadd_ps(x, b1, c[r][1]);
    }
  }
  if (out.c == nullptr) {
#pragma GCC unroll 14
    for (int r = 0; r < mr; ++r) {
      _mm512_store_ps(out.acc + r * 32, c[r][0]);
      _mm512_store_ps(out.acc + r * 32 + 16, c[r][1]);
    }
    return;
  }
  float* const tile = out.c;
  const std::size_t ldc = out.ldc;
  const float* const bias = out.bias;
  const bool read_c = out.c_scale != 0.0f;
  const __m512 alpha = _mm512_set1_ps(out.alpha), scale = _mm512_set1_ps(out.c_scale);
  const __m512 bias0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
  const __m512 bias1 = bias ? _mm512_loadu_ps(bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 14
  for (int r = 0; r < mr; ++r) {
    float* row = tile + r * ldc;
    __m512 v0 = _mm512_fmadd_ps(alpha, c[r][0], bias0), v1 = _mm512_fmadd_ps(alpha, c[r][1], bias1);
    if (read_c) {
      v0 = _mm512_fmadd_ps(scale, _mm512_loadu_ps(row), v0);
      v1 = _mm512_fmadd_ps(scale, _mm512_loadu_ps(row + 16), v1);
    }
    _mm512_storeu_ps(row, v0);
    _mm512_storeu_ps(row + 16, v1);
  }
}

__attribute__((target("avx2,fma"))) void microkernel_avx2(std::size_t kc, const float* a, const float* b,
                                                          const TileOutput& out) {
  constexpr int mr = 6;
  // Every loop over c is unrolled, so GCC keeps it in registers: with the init and
  // epilogue loops rolled it stored all 12 accumulators to the stack on each k step
  // (0.5-0.6x OpenBLAS's Haswell kernels; 0.8-0.96x unrolled).
  // The C tile's rows are ldc apart and were last touched a k block ago: fetching them
  // now hides the misses behind the k loop (1024^3 on Zen3: 0.90-0.95x OpenBLAS without,
  // 0.96-1.0x with, together with the larger kc below).
  if (out.c != nullptr) {
#pragma GCC unroll 6
    for (int r = 0; r < mr; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(out.c + r * out.ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(out.c + r * out.ldc + 15), _MM_HINT_T0);
    }
  }
  __m256 c[mr][2];
#pragma GCC unroll 6
  for (int r = 0; r < mr; ++r) c[r][0] = c[r][1] = _mm256_setzero_ps();
  // A sliver of B read for the first time comes from L3. Left to the hardware prefetcher,
  // the first of the 12 calls on a sliver took 5-13% longer than the rest (rdtsc around
  // each call at 2048^3 on Zen3; 30% while another tenant loaded memory); fetched here
  // during the call before, it takes as long as they do. GCC unswitches the loop on next_b.
  const float* const next_b = out.next_b;
  // Two steps per iteration, walking the pointers to an end (no counter): 21.5
  // instructions per 12 FMAs rather than 25. While another tenant shared the machine,
  // whole matmuls ran 6-9% faster with the two steps (alternating builds, all pairs
  // faster at 2048^3) and 1.5-4% faster again without the counter; the FMA-only roof
  // was unchanged then, so the loop's other instructions were what cost.
  const float* const a_end = a + kc * mr;
  const float* nb = next_b != nullptr ? next_b : b;  // walks next_b's sliver (b's when unused: no null arithmetic)
#pragma GCC unroll 2
  for (; a != a_end; a += mr, b += 16, nb += 16) {
    if (next_b != nullptr) _mm_prefetch(reinterpret_cast<const char*>(nb), _MM_HINT_T0);
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < mr; ++r) {
      const __m256 x = _mm256_broadcast_ss(a + r);
      c[r][0] = _mm256_fmadd_ps(x, b0, c[r][0]);
      c[r][1] = _mm256_fmadd_ps(x, b1, c[r][1]);
    }
  }
  if (out.c == nullptr) {
#pragma GCC unroll 6
    for (int r = 0; r < mr; ++r) {
      _mm256_store_ps(out.acc + r * 16, c[r][0]);
      _mm256_store_ps(out.acc + r * 16 + 8, c[r][1]);
    }
    return;
  }
  // out's fields in locals: read through the reference, GCC loaded them again after every
  // store to C (a float store may alias them) and spilled accumulators around the reloads.
  float* const tile = out.c;
  const std::size_t ldc = out.ldc;
  const float* const bias = out.bias;
  const bool read_c = out.c_scale != 0.0f;
  const __m256 alpha = _mm256_set1_ps(out.alpha), scale = _mm256_set1_ps(out.c_scale);
#pragma GCC unroll 6
  for (int r = 0; r < mr; ++r) {
    float* row = tile + r * ldc;
    __m256 v0 = _mm256_mul_ps(alpha, c[r][0]), v1 = _mm256_mul_ps(alpha, c[r][1]);
    if (bias != nullptr) {
      v0 = _mm256_add_ps(v0, _mm256_loadu_ps(bias));
      v1 = _mm256_add_ps(v1, _mm256_loadu_ps(bias + 8));
    }
    if (read_c) {
      v0 = _mm256_fmadd_ps(scale, _mm256_loadu_ps(row), v0);
      v1 = _mm256_fmadd_ps(scale, _mm256_loadu_ps(row + 8), v1);
    }
    _mm256_storeu_ps(row, v0);
    _mm256_storeu_ps(row + 8, v1);
  }
}

// Portable: plain loops the compiler vectorises for whatever the build targets.
void microkernel_portable(std::size_t kc, const float* a, const float* b, const TileOutput& out) {
  constexpr int mr = 4, nr = 16;
  float c[mr][nr] = {};
  for (std::size_t p = 0; p < kc; ++p) {
    for (int r = 0; r < mr; ++r) {
      for (int j = 0; j < nr; ++j) c[r][j] += a[p * mr + r] * b[p * nr + j];
    }
  }
  if (out.c == nullptr) {
    std::memcpy(out.acc, c, sizeof c);
    return;
  }
  for (int r = 0; r < mr; ++r) {
    float* row = out.c + r * out.ldc;
    for (int j = 0; j < nr; ++j) {
      float value = out.alpha * c[r][j] + (out.bias ? out.bias[j] : 0.0f);
      row[j] = out.c_scale != 0.0f ? value + out.c_scale * row[j] : value;
    }
  }
}

}  // namespace

const MicrokernelShape& cpu_microkernel() {
  static const MicrokernelShape shape = [] {
    switch (cpu_isa()) {
      // kc 1024 over 768: fewer passes over C, and k up to 2048 in one block. On a Zen5
      // (48 KiB L1, 1 MiB L2) with porta-ab, four runs of 30 rounds each: 2048^3 nn
      // 1.053-1.075, 4096^3 nt 1.057-1.071, 4096x768x3072 nn 1.006-1.034, 1024^3 nn
      // 1.015-1.057 (with the loop above). Smaller blocks lost: kc 256 with mc 192
      // 0.89-0.95, kc 384 or 512 with mc 96 0.97-0.99; kc 1536 and 2048 were no better.
      // nc 4096 over 2048: the transformer shapes and 4096^3 become one column block, whose
      // tasks pack their own rows of A (cpu_packed.cpp). On an Intel Xeon (family 6
      // model 207, 2 MiB L2), porta-ab, 20 rounds: 4096x3072x768 1.013-1.020, 4096x2304x768
      // 1.019, 4096^3 1.015-1.059.
      // mr 14 with mc 84 (6 slivers, 336 KiB of A) over mr 12 with mc 48: each B sliver
      // streamed from L2 feeds 14-row calls, 6 of them. On the Xeon, porta-ab, 24 rounds
      // against 12 x 48: 1024^3 tn 1.031, 2048^3 1.039, 4096x768x3072 1.020,
      // 4096x3072x768 1.024, 4096x2304x768 tt 1.000; mr 12 with mc 84 or 96 gave
      // 0.988-1.037, no better than noise.
      case CpuIsa::avx512: return MicrokernelShape{14, 32, 1024, 84, 4096, 512, microkernel_avx512<14>};
      // kc 512 (a 32 KiB B sliver) over 256: half the passes over C; measured on Zen3
      // (32 KiB L1, 512 KiB L2) at 1024^3 to 4096^3, 2-4% faster; mc 72 keeps A in L2.
      // Tasks of 256 columns rather than 512: twice as many for the threads to share;
      // on Zen3 the mean ratio to OpenBLAS over the f32 shapes rose 1.0-3.5% in three runs.
      // Lost on Zen3 (porta-ab at 4096^3 nn, 20 rounds, median speedup): kc 1024 0.96, mc 144
      // 0.985, nc 4096 as for AVX-512 0.94 (4096x3072x768 0.92), and fetching the B sliver
      // 16 steps ahead in the loop 0.98.
      case CpuIsa::avx2: return MicrokernelShape{6, 16, 512, 72, 2048, 256, microkernel_avx2};
      case CpuIsa::portable: break;
    }
    return MicrokernelShape{4, 16, 256, 128, 2048, 512, microkernel_portable};
  }();
  return shape;
}

const MicrokernelShape& cpu_attention_microkernel() {
  static const MicrokernelShape shape = [] {
    MicrokernelShape attention = cpu_microkernel();
    if (cpu_isa() == CpuIsa::avx512) {
      attention.mr = 12;
      attention.mc = 48;
      attention.kernel = microkernel_avx512<12>;
    }
    return attention;
  }();
  return shape;
}

}  // namespace porta::kernels::cpu

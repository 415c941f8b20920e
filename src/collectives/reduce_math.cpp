// reduce_math.cpp — the reduction loops of the collectives: rank-ordered, f32
// accumulation, written in blocks so the compiler vectorises them.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "common/cpu_access.hpp"
#include "common/cpu_isa.hpp"
#include "src/collectives/collective.hpp"

namespace porta::detail {

namespace {

// max/min propagate NaN; the order of operands is fixed by the callers, which is what
// makes results bit-identical on every rank.
template <Reduce Op>
inline float apply(float acc, float value) {
  if constexpr (Op == Reduce::max) return (acc > value || acc != acc) ? acc : value;
  if constexpr (Op == Reduce::min) return (acc < value || acc != acc) ? acc : value;
  return acc + value;  // sum and avg
}

template <DType D>
inline float load(const void* base, std::size_t index) {
  if constexpr (D == DType::f32) return static_cast<const float*>(base)[index];
  return kernels::cpu::load_float(base, static_cast<kernels::uint>(D), index);
}

template <DType D>
inline void store(void* base, std::size_t index, float value) {
  if constexpr (D == DType::f32) {
    static_cast<float*>(base)[index] = value;
  } else {
    kernels::cpu::store_float(base, static_cast<kernels::uint>(D), index, value);
  }
}

constexpr std::size_t block = 1024;

template <DType D, Reduce Op>
void reduce_sources_typed(const void* const* sources, int n, void* dest, std::size_t count) {
  alignas(64) float acc[block];
  const float divisor = static_cast<float>(n);
  for (std::size_t start = 0; start < count; start += block) {
    const std::size_t length = std::min(block, count - start);
    for (std::size_t i = 0; i < length; ++i) acc[i] = load<D>(sources[0], start + i);
    for (int q = 1; q < n; ++q) {
      const void* source = sources[q];
      for (std::size_t i = 0; i < length; ++i) acc[i] = apply<Op>(acc[i], load<D>(source, start + i));
    }
    if constexpr (Op == Reduce::avg) {
      for (std::size_t i = 0; i < length; ++i) acc[i] /= divisor;
    }
    for (std::size_t i = 0; i < length; ++i) store<D>(dest, start + i, acc[i]);
  }
}

template <DType D>
void reduce_sources_dtype(Reduce op, const void* const* sources, int n, void* dest, std::size_t count) {
  switch (op) {
    case Reduce::sum: return reduce_sources_typed<D, Reduce::sum>(sources, n, dest, count);
    case Reduce::avg: return reduce_sources_typed<D, Reduce::avg>(sources, n, dest, count);
    case Reduce::max: return reduce_sources_typed<D, Reduce::max>(sources, n, dest, count);
    case Reduce::min: return reduce_sources_typed<D, Reduce::min>(sources, n, dest, count);
  }
}

#if defined(__x86_64__)
bool use_avx512() { return kernels::cpu::cpu_isa() == kernels::cpu::CpuIsa::avx512; }

// The f32 sum (or avg) of n sources into each of `outputs` outputs straight from
// registers: each input line is loaded once and each output line stored once. The
// portable loops below go through an L1 buffer in SSE2 and move half as much per core
// (local all-reduce, 2 ranks, 16 MiB: 4.5-5.8 GB/s busbw buffered, 10.4-10.8 here).
// Same operations in the same order as the portable loops, so the same bits.
__attribute__((target("avx512f"))) void sum_to_all_avx512(const float* const* sources, int n, float* const* outs,
                                                           int outputs, std::size_t count, bool average, bool stream) {
  const __m512 divisor = _mm512_set1_ps(static_cast<float>(n));
  std::size_t i = 0;
  for (; i + 16 <= count; i += 16) {
    __m512 acc = _mm512_loadu_ps(sources[0] + i);
    for (int q = 1; q < n; ++q) acc = _mm512_add_ps(acc, _mm512_loadu_ps(sources[q] + i));
    if (average) acc = _mm512_div_ps(acc, divisor);
    for (int q = 0; q < outputs; ++q) {
      if (stream) {
        _mm512_stream_ps(outs[q] + i, acc);
      } else {
        _mm512_storeu_ps(outs[q] + i, acc);
      }
    }
  }
  for (; i < count; ++i) {
    float acc = sources[0][i];
    for (int q = 1; q < n; ++q) acc += sources[q][i];
    if (average) acc /= static_cast<float>(n);
    for (int q = 0; q < outputs; ++q) outs[q][i] = acc;
  }
}

#endif

template <Reduce Op>
void combine_typed(const float* first, const float* second, float* out, std::size_t count) {
#if defined(__x86_64__)
  if (Op == Reduce::sum && use_avx512()) {
    const float* sources[2] = {first, second};
    return sum_to_all_avx512(sources, 2, &out, 1, count, false, false);
  }
#endif
  for (std::size_t i = 0; i < count; ++i) out[i] = apply<Op>(first[i], second[i]);
}

}  // namespace

void reduce_sources(DType dtype, Reduce op, const void* const* sources, int n, void* dest, std::size_t count) {
#if defined(__x86_64__)
  if (use_avx512() && dtype == DType::f32 && (op == Reduce::sum || op == Reduce::avg)) {
    float* out = static_cast<float*>(dest);
    return sum_to_all_avx512(reinterpret_cast<const float* const*>(sources), n, &out, 1, count, op == Reduce::avg, false);
  }
#endif
  switch (dtype) {
    case DType::f32: return reduce_sources_dtype<DType::f32>(op, sources, n, dest, count);
    case DType::f16: return reduce_sources_dtype<DType::f16>(op, sources, n, dest, count);
    case DType::bf16: return reduce_sources_dtype<DType::bf16>(op, sources, n, dest, count);
    case DType::i32: break;  // refused by local_problem()
  }
  throw Error(ErrorKind::unsupported, "porta collectives: i32 reductions are not supported");
}

namespace {

// memcpy, or with non-temporal stores where the platform has them (SSE2 on x86-64).
void copy_out(unsigned char* dest, const unsigned char* source, std::size_t bytes, bool stream) {
#if defined(__x86_64__)
  if (stream) {
    const std::size_t head = std::min(bytes, (16 - reinterpret_cast<std::uintptr_t>(dest) % 16) % 16);
    std::memcpy(dest, source, head);
    std::size_t i = head;
    for (; i + 16 <= bytes; i += 16) {
      _mm_stream_si128(reinterpret_cast<__m128i*>(dest + i), _mm_loadu_si128(reinterpret_cast<const __m128i*>(source + i)));
    }
    std::memcpy(dest + i, source + i, bytes - i);
    return;
  }
#endif
  (void)stream;
  std::memcpy(dest, source, bytes);
}

#if defined(__x86_64__)
// Takes the f32 sum/avg of reduce_to_all on AVX-512 machines; false leaves it to the
// buffered path (other dtypes and ops, other CPUs, outputs whose alignments differ).
bool fused_sum_to_all(DType dtype, Reduce op, const void* const* sources, int n, void* const* outs, std::size_t count,
                      bool stream) {
  if (!use_avx512() || dtype != DType::f32 || (op != Reduce::sum && op != Reduce::avg) || n > 64) return false;
  const auto misalignment = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 64; };
  for (int q = 1; q < n; ++q) {
    if (misalignment(outs[q]) != misalignment(outs[0])) return false;
  }
  std::array<const float*, 64> from{};
  std::array<float*, 64> to{};
  // Scalar up to the first 64-byte boundary of the outputs, then whole lines.
  const std::size_t head = std::min(count, (64 - misalignment(outs[0])) % 64 / sizeof(float));
  for (std::size_t part = 0; part < 2; ++part) {
    const std::size_t begin = part == 0 ? 0 : head;
    for (int q = 0; q < n; ++q) {
      from[q] = static_cast<const float*>(sources[q]) + begin;
      to[q] = static_cast<float*>(outs[q]) + begin;
    }
    sum_to_all_avx512(from.data(), n, to.data(), n, part == 0 ? head : count - head, op == Reduce::avg, stream && part == 1);
  }
  if (stream) _mm_sfence();  // the streamed stores are visible before the ranks' closing barrier
  return true;
}
#endif

}  // namespace

void reduce_to_all(DType dtype, Reduce op, const void* const* sources, int n, void* const* outs, std::size_t count,
                   std::size_t message_bytes) {
  constexpr std::size_t block = 2048;  // elements: 8 KiB of f32
  alignas(64) unsigned char buffer[block * sizeof(float)];
  const std::size_t element = size_of(dtype);
  const bool stream = message_bytes >= streaming_bytes;
#if defined(__x86_64__)
  if (fused_sum_to_all(dtype, op, sources, n, outs, count, stream)) return;
#endif
  std::vector<const void*> at(static_cast<std::size_t>(n));
  for (std::size_t start = 0; start < count; start += block) {
    const std::size_t length = std::min(block, count - start);
    for (int q = 0; q < n; ++q) at[q] = static_cast<const unsigned char*>(sources[q]) + start * element;
    reduce_sources(dtype, op, at.data(), n, buffer, length);
    for (int q = 0; q < n; ++q) {
      copy_out(static_cast<unsigned char*>(outs[q]) + start * element, buffer, length * element, stream);
    }
  }
#if defined(__x86_64__)
  if (stream) _mm_sfence();  // the streamed stores are visible before the ranks' closing barrier
#endif
}

void combine(Reduce op, const float* first, const float* second, float* out, std::size_t count) {
  switch (op) {
    case Reduce::sum:
    case Reduce::avg: return combine_typed<Reduce::sum>(first, second, out, count);
    case Reduce::max: return combine_typed<Reduce::max>(first, second, out, count);
    case Reduce::min: return combine_typed<Reduce::min>(first, second, out, count);
  }
}

void to_f32(DType dtype, const void* source, float* dest, std::size_t count) {
  if (dtype == DType::f32) {
    std::copy_n(static_cast<const float*>(source), count, dest);
    return;
  }
  for (std::size_t i = 0; i < count; ++i) dest[i] = kernels::cpu::load_float(source, static_cast<kernels::uint>(dtype), i);
}

void from_f32(DType dtype, const float* source, void* dest, std::size_t count, float divisor) {
  if (dtype == DType::f32) {
    float* out = static_cast<float*>(dest);
    if (divisor == 1.0f) {
      if (out != source) std::copy_n(source, count, out);
    } else {
      for (std::size_t i = 0; i < count; ++i) out[i] = source[i] / divisor;
    }
    return;
  }
  for (std::size_t i = 0; i < count; ++i) {
    kernels::cpu::store_float(dest, static_cast<kernels::uint>(dtype), i, source[i] / divisor);
  }
}

}  // namespace porta::detail

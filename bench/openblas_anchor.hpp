// openblas_anchor.hpp — makes the OpenBLAS anchor run its best kernels on this cpu, on
// as many threads as porta's cpu device.
#pragma once

#include <cblas.h>

#include <strings.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

extern "C" char* openblas_get_corename(void);

// OpenBLAS 0.3.21 does not know some cpus newer than itself and falls back to its generic
// Prescott kernels (5x slower than it can be); an inherited OPENBLAS_CORETYPE may name
// narrower kernels than the cpu runs (this project's 2-core AVX-512 Zen5 machines set
// Haswell: 180-200 GFLOP/s against 340-390 for its SkylakeX kernels, which made porta
// look 1.8x faster). The anchor is measured at its best: when the kernels OpenBLAS chose
// are narrower than the cpu's widest vectors, name the core its own way (read when the
// library loads: re-exec) and say so in PORTA_BENCH_OPENBLAS_WAS.
inline int openblas_core_bits(const char* core) {
  for (const char* wide : {"SkylakeX", "Cooperlake", "SapphireRapids"}) {
    if (strcasecmp(core, wide) == 0) return 512;
  }
  return strcasecmp(core, "Haswell") == 0 || strcasecmp(core, "Zen") == 0 ? 256 : 128;
}

inline void give_openblas_its_best_kernel(char** argv) {
  __builtin_cpu_init();
  const char* best = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") ? "SkylakeX"
                     : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")      ? "Haswell"
                                                                                            : nullptr;
  const char* chosen = openblas_get_corename();
  const char* named = std::getenv("OPENBLAS_CORETYPE");
  if (best == nullptr || openblas_core_bits(chosen) >= openblas_core_bits(best)) return;
  if (named != nullptr && strcasecmp(named, best) == 0) return;  // named already, and not taken: measure as it is
  ::setenv("PORTA_BENCH_OPENBLAS_WAS", chosen, 1);
  ::setenv("OPENBLAS_CORETYPE", best, 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: then measure as it is
}

// The kernels the anchor runs, and what it would have run unasked: "SkylakeX" or
// "SkylakeX, not Haswell".
inline std::string openblas_kernels() {
  std::string kernels = openblas_get_corename();
  if (const char* was = std::getenv("PORTA_BENCH_OPENBLAS_WAS")) kernels += std::string(", not ") + was;
  return kernels;
}

// The thread count porta's cpu device uses ($PORTA_CPU_THREADS, else every core).
inline int anchor_threads() {
  const char* threads = std::getenv("PORTA_CPU_THREADS");
  return threads != nullptr ? std::atoi(threads) : int(std::thread::hardware_concurrency());
}

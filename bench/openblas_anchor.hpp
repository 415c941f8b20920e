// openblas_anchor.hpp — makes the OpenBLAS anchor run its best kernels on this cpu, on
// as many threads as porta's cpu device.
#pragma once

#include <cblas.h>

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <thread>

extern "C" char* openblas_get_corename(void);

// OpenBLAS 0.3.21 does not recognise some newer cpus and falls back to its generic
// Prescott kernels, 5x slower than it can be: measure the anchor at its best by naming
// the core its own way (OPENBLAS_CORETYPE, read when the library loads: re-exec).
inline void give_openblas_its_best_kernel(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr || std::strcmp(openblas_get_corename(), "Prescott") != 0) return;
  __builtin_cpu_init();
  const char* core = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") ? "SkylakeX"
                     : __builtin_cpu_supports("avx2")                                          ? "Haswell"
                                                                                               : nullptr;
  if (core == nullptr) return;
  ::setenv("OPENBLAS_CORETYPE", core, 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: then measure as it is
}

// The thread count porta's cpu device uses ($PORTA_CPU_THREADS, else every core).
inline int anchor_threads() {
  const char* threads = std::getenv("PORTA_CPU_THREADS");
  return threads != nullptr ? std::atoi(threads) : int(std::thread::hardware_concurrency());
}

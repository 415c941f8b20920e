// gbench_case.hpp — runs one shared benchmark case (bench/*_case.hpp) under Google
// Benchmark: one untimed call (compiles and warms up), then the timed ones, and a
// GFLOP/s counter from the case's flop count.
#pragma once

#include <benchmark/benchmark.h>

#include "porta/porta.hpp"

// A case the device cannot run (a dtype it declines, a buffer beyond its largest
// allocation) is reported as skipped with porta's message, and the run goes on.
template <class Runner, class Case, class... Args>
void bench(benchmark::State& state, Case shape, Args... args) {
  try {
    Runner run(shape, args...);
    run();
    for (auto _ : state) run();
    state.counters["GFLOP/s"] = benchmark::Counter(shape.flops() / 1e9, benchmark::Counter::kIsIterationInvariantRate,
                                                   benchmark::Counter::kIs1000);
  } catch (const porta::Error& error) {
    state.SkipWithError(error.what());
  }
}

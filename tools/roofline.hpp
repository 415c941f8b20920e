// roofline.hpp — this machine's two roofs, measured: the f32 FMA peak of every core and
// the memory bandwidth a streaming triad reaches. porta-bench draws its results under them.
#pragma once

#include <string>

struct Roofline {
  double peak_gflops = 0;     // f32, all cores, fused multiply-add on the widest vectors
  double bandwidth_gbps = 0;  // triad a = b + s c over arrays far larger than the caches
  std::string isa;            // the vector instructions the peak was measured with
};

Roofline measure_roofline(int threads);

// The rate of a loop shaped like porta's cpu microkernel (6 rows of 2 vectors of
// accumulators, on every thread, fed from a 32 KiB panel in L1 and a 144 KiB one in L2),
// as a share of roofline.peak_gflops: near 1 while the cores and their caches are this
// program's own, far lower while another tenant shares the caches (measured at half on
// the 2-core test machine, whose FMA-only peak did not move). porta-bench prints it at
// the start and at the end of a run, so a reader knows the conditions of its ratios.
double measure_cache_fed_share(int threads, const Roofline& roofline);

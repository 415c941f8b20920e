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

// porta_bench.hpp — what porta-bench's parts share: how long to measure, one result, one
// entry of the suite.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_check.hpp"
#include "porta/porta.hpp"

struct Timing {
  double min_time_s;  // keep calling until this much time is spent...
  int min_calls;      // ...and at least this many calls (after the first)
  double max_call_s;  // skip a case predicted to take longer per call
};

struct Result {
  std::string op, case_label, device, impl;
  std::size_t sequence = 0;     // the case's place in the suite, for the table
  double work = 0;    // per call: flops, or for a collective the bytes each rank reduces
  double bytes = 0;   // per call: compulsory memory traffic (the roofline's x axis)
  int ranks = 0;      // collectives only
  double first_call_s = NAN, median_s = NAN, min_s = NAN, max_s = NAN;
  Check check;
  std::string error;  // why it did not run (a porta::Error, or predicted too slow)
  bool ran() const { return error.empty(); }
  bool collective() const { return ranks > 0; }
  // GFLOP/s; for a collective busbw in GB/s, algbw * 2(n-1)/n as NCCL's tests define it.
  double rate() const {
    const double per_second = work / median_s / 1e9;
    return collective() && ranks > 1 ? per_second * 2.0 * (ranks - 1) / ranks : per_second;
  }
};

// One implementation of one case, made ready: its first call (compilation, allocation)
// timed and its output checked; `call` runs it again.
struct Trial {
  std::function<void()> call;
  double first_call_s = NAN;
  Check check;
};

// One implementation of one case on one device, to be run when its turn comes: either
// `start`, whose trials porta-bench calls in turn with the case's other implementations
// so that every ratio is taken under the same conditions, or `run`, which measures
// itself (the all-reduce's batches of threads).
struct Entry {
  std::string op, family, case_label, device, impl;
  std::size_t sequence = 0;
  double work = 0, bytes = 0;
  int ranks = 0;
  std::function<Result(const Timing&)> run;
  std::function<std::unique_ptr<Trial>()> start;
};

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <class... Values>
std::string format(const char* pattern, Values... values) {
  char text[256];
  std::snprintf(text, sizeof text, pattern, values...);
  return text;
}

// Median, min and max of per-call times into `result`.
inline void summarise(std::vector<double> times, Result& result) {
  std::sort(times.begin(), times.end());
  result.median_s = times[times.size() / 2];
  result.min_s = times.front();
  result.max_s = times.back();
}

// One progress line's end: the rate, or why the case did not run.
inline void print_progress(const Result& result) {
  if (!result.ran()) {
    std::fprintf(stderr, "%s\n", result.error.c_str());
    return;
  }
  std::fprintf(stderr, "%8.1f %s  first call %6.2f s  rel_err %.1e%s\n", result.rate(),
               result.collective() ? "GB/s busbw" : "GFLOP/s", result.first_call_s, result.check.rel_err,
               result.check.ok ? "" : "  FAILED CHECK");
}


// A result as porta-bench's JSON holds it, and back (the MPI part hands its results over so).
nlohmann::json result_json(const Result& r);
Result result_from_json(const nlohmann::json& json);

// True when no filter is given or one matches: a device id or its backend ("opencl"
// matches "opencl:0") when `prefix`, else any part of `text`.
bool matches_any(const std::vector<std::string>& filters, const std::string& text, bool prefix);

// All-reduce: local entries (2 ranks on one device, for every device), and the MPI
// part, run by mpirun as separate porta-bench processes (`--mpi-worker`).
std::vector<Entry> allreduce_entries(bool quick, const std::vector<porta::Device>& devices);
bool mpi_available(std::string& why_not);
std::vector<std::size_t> mpi_cases(bool quick, const std::vector<std::string>& shape_filters);  // sizes in bytes
std::vector<Result> run_mpi_allreduce(bool quick, const std::vector<std::string>& device_filters,
                                      const std::vector<std::string>& shape_filters, const Timing& timing);
int mpi_worker_main(const std::string& output, bool quick, const std::vector<std::string>& device_filters,
                    const std::vector<std::string>& shape_filters, const Timing& timing);

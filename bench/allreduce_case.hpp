// allreduce_case.hpp — one all-reduce benchmark case, written once for every tool that
// measures it (bench/allreduce_bench.cpp, bench/allreduce_mpi_bench.cpp, porta-bench):
// the sizes, the byte count, algbw and busbw as NCCL's tests define them, and how one case
// is run, timed and verified. Public API only; no Google Benchmark, no MPI.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <porta/porta.hpp>

namespace porta::bench {

// 4 KiB to 256 MiB per rank, x4 steps.
inline std::vector<std::size_t> all_reduce_sizes() {
  std::vector<std::size_t> sizes;
  for (std::size_t bytes = 4 << 10; bytes <= (std::size_t(256) << 20); bytes *= 4) sizes.push_back(bytes);
  return sizes;
}

// algbw = bytes per rank / time; busbw = algbw * 2(n-1)/n: the bytes each rank's link
// must carry in a bandwidth-optimal all-reduce, so busbw is comparable across rank counts.
inline double algbw_gbs(std::size_t bytes, double seconds) { return static_cast<double>(bytes) / seconds / 1e9; }
inline double busbw_gbs(std::size_t bytes, double seconds, int ranks) {
  return ranks > 1 ? algbw_gbs(bytes, seconds) * 2.0 * (ranks - 1) / ranks : algbw_gbs(bytes, seconds);
}

// Enough repetitions to time small sizes (about 64 MiB moved per measurement), at least 3.
inline int all_reduce_repetitions(std::size_t bytes) {
  return static_cast<int>(std::clamp<std::size_t>((std::size_t(64) << 20) / bytes, 3, 2000));
}

// Rank r's element i: small integers whose f32 sum over any number of ranks below 2^20
// is exact, so the result is checked exactly.
inline float all_reduce_input(int rank, std::size_t index) {
  return static_cast<float>(static_cast<int>((index * 7 + static_cast<std::size_t>(rank) * 13) % 17) - 8);
}

struct AllReduceResult {
  double seconds = 0;  // per all-reduce, measured between two barriers
  std::string error;   // "" when every element was exact
};

// One rank's part of the case: f32 sum out of place (the input stays the same so every
// repetition computes the same result), `repetitions` times after one warm-up, bracketed
// by barriers; then the output is checked against the exact sum. Every rank calls it.
inline AllReduceResult run_all_reduce_rank(const Communicator& comm, std::size_t bytes, int repetitions) {
  const std::size_t count = bytes / sizeof(float);
  std::vector<float> host(count);
  for (std::size_t i = 0; i < count; ++i) host[i] = all_reduce_input(comm.rank(), i);
  Tensor in = Tensor::from_host(std::span<const float>(host), {static_cast<std::int64_t>(count)}, f32, comm.device());
  Tensor out = Tensor::empty({static_cast<std::int64_t>(count)}, f32, comm.device());
  comm.all_reduce(in, out, Reduce::sum);  // warm-up: first-touch pages, staging buffers
  comm.barrier();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < repetitions; ++i) comm.all_reduce(in, out, Reduce::sum);
  comm.barrier();
  AllReduceResult result;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / repetitions;
  std::vector<float> got = out.to_host<float>();
  for (std::size_t i = 0; i < count; ++i) {
    float expected = 0;
    for (int r = 0; r < comm.size(); ++r) expected += all_reduce_input(r, i);
    if (got[i] != expected) {
      result.error = "element " + std::to_string(i) + ": got " + std::to_string(got[i]) + ", expected " +
                     std::to_string(expected);
      break;
    }
  }
  return result;
}

// The local transport: one thread per device; returns rank 0's time and the first error.
inline AllReduceResult run_local_all_reduce(const std::vector<Device>& devices, std::size_t bytes, int repetitions) {
  std::vector<AllReduceResult> results(devices.size());
  run_ranks(Communicator::local(devices), [&](const Communicator& comm) {
    results[static_cast<std::size_t>(comm.rank())] = run_all_reduce_rank(comm, bytes, repetitions);
  });
  AllReduceResult combined = results[0];
  for (const auto& result : results) {
    if (combined.error.empty()) combined.error = result.error;
  }
  return combined;
}

}  // namespace porta::bench

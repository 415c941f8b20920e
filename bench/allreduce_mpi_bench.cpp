// allreduce_mpi_bench.cpp — the MPI transport's all-reduce against MPI_Allreduce in the
// same run: `mpirun -np 2 porta-bench-allreduce-mpi`. porta with cpu tensors (automatic
// choice, ring, doubling, and the hand-over to MPI_Allreduce), with opencl and vulkan
// tensors (host staging), and MPI_Allreduce itself on host memory, every size 4 KiB to
// 256 MiB; rank 0 reports, then prints the ratios to MPI_Allreduce per size.
#include <benchmark/benchmark.h>
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <map>

#include "allreduce_case.hpp"
#include "bench_devices.hpp"

namespace {

std::map<std::string, std::map<std::size_t, double>> busbw_by_case;  // case -> bytes -> GB/s

void record(benchmark::State& state, const std::string& name, std::size_t bytes, int ranks, double seconds) {
  state.SetIterationTime(seconds);
  state.counters["algbw_GB/s"] = porta::bench::algbw_gbs(bytes, seconds);
  state.counters["busbw_GB/s"] = porta::bench::busbw_gbs(bytes, seconds, ranks);
  busbw_by_case[name][bytes] = porta::bench::busbw_gbs(bytes, seconds, ranks);
}

void bench_porta(benchmark::State& state, std::string name, porta::Device device, std::size_t bytes,
                 std::string algorithm) {
  if (algorithm.empty()) {
    unsetenv("PORTA_ALLREDUCE_ALGO");
  } else {
    setenv("PORTA_ALLREDUCE_ALGO", algorithm.c_str(), 1);
  }
  porta::Communicator comm = porta::Communicator::mpi(device);
  for (auto _ : state) {
    porta::bench::AllReduceResult result;
    try {
      result = porta::bench::run_all_reduce_rank(comm, bytes, porta::bench::all_reduce_repetitions(bytes));
    } catch (const porta::Error& error) {
      result.error = error.what();
    }
    if (!result.error.empty()) {
      state.SkipWithError(result.error.c_str());
      break;
    }
    record(state, name, bytes, comm.size(), result.seconds);
  }
  unsetenv("PORTA_ALLREDUCE_ALGO");
}

// The anchor: MPI_Allreduce on host memory, timed and checked the same way.
void bench_mpi_allreduce(benchmark::State& state, std::size_t bytes) {
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const std::size_t count = bytes / sizeof(float);
  std::vector<float> in(count);
  std::vector<float> out(count);
  for (std::size_t i = 0; i < count; ++i) in[i] = porta::bench::all_reduce_input(rank, i);
  const int repetitions = porta::bench::all_reduce_repetitions(bytes);
  for (auto _ : state) {
    MPI_Allreduce(in.data(), out.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    const double start = MPI_Wtime();
    for (int i = 0; i < repetitions; ++i) {
      MPI_Allreduce(in.data(), out.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    const double seconds = (MPI_Wtime() - start) / repetitions;
    for (std::size_t i = 0; i < count; ++i) {
      float expected = 0;
      for (int r = 0; r < size; ++r) expected += porta::bench::all_reduce_input(r, i);
      if (out[i] != expected) {
        state.SkipWithError("MPI_Allreduce gave a wrong sum");
        return;
      }
    }
    record(state, "mpi_allreduce", bytes, size, seconds);
  }
}

// Ranks other than 0 run every benchmark (they are collectives) but report nothing.
class SilentReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

std::string size_name(std::size_t bytes) {
  return bytes >= (1 << 20) ? std::to_string(bytes >> 20) + "MiB" : std::to_string(bytes >> 10) + "KiB";
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  benchmark::Initialize(&argc, argv);
  int ranks = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  benchmark::AddCustomContext("mpi_ranks", std::to_string(ranks));  // read by tools/allreduce-sim
  std::vector<std::pair<std::string, porta::Device>> devices = {{"cpu", porta::Device::get("cpu:0")}};
  for (const porta::Device& device : porta::devices()) {
    if (device.info().backend != porta::BackendKind::cpu && device.info().index == 0 && wanted(device.id())) {
      devices.push_back({std::string(porta::to_string(device.info().backend)), device});
    }
  }
  for (std::size_t bytes : porta::bench::all_reduce_sizes()) {
    auto add = [&](const std::string& name, auto&&... args) {
      benchmark::RegisterBenchmark(("allreduce_f32_sum/" + name + "/" + size_name(bytes)).c_str(), args...)
          ->Iterations(1)
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    };
    add("mpi_allreduce/host", bench_mpi_allreduce, bytes);
    for (const std::string algorithm : {"", "ring", "doubling", "mpi"}) {
      std::string name = "porta_mpi/cpu/" + (algorithm.empty() ? std::string("auto") : algorithm);
      add(name, bench_porta, name, devices[0].second, bytes, algorithm);
    }
    for (std::size_t d = 1; d < devices.size(); ++d) {
      // Every rank skips the same sizes: one rank failing to allocate would leave the
      // others waiting in the collective.
      if (bytes > devices[d].second.info().max_allocation_bytes) continue;
      std::string name = "porta_mpi/" + devices[d].first + "/auto";
      add(name, bench_porta, name, devices[d].second, bytes, std::string());
    }
  }
  SilentReporter silent;
  if (rank == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    benchmark::RunSpecifiedBenchmarks(&silent);
  }
  if (rank == 0 && busbw_by_case.count("mpi_allreduce") != 0) {
    // Ratios within this one run: porta's busbw over MPI_Allreduce's at each size.
    std::printf("\nbusbw ratio to MPI_Allreduce (same run):\n%-10s", "size");
    for (const auto& [name, by_size] : busbw_by_case) {
      if (name != "mpi_allreduce") std::printf(" %22s", name.c_str());
    }
    std::printf("\n");
    for (const auto& [bytes, anchor] : busbw_by_case["mpi_allreduce"]) {
      std::printf("%-10s", size_name(bytes).c_str());
      for (const auto& [name, by_size] : busbw_by_case) {
        if (name == "mpi_allreduce") continue;
        auto found = by_size.find(bytes);
        if (found == by_size.end()) {
          std::printf(" %22s", "-");
        } else {
          std::printf(" %22.2f", found->second / anchor);
        }
      }
      std::printf("\n");
    }
  }
  benchmark::Shutdown();
  MPI_Finalize();
  return 0;
}

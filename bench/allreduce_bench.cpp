// allreduce_bench.cpp — Google Benchmark of the local transport's all-reduce: ranks are
// threads of this process, 2 cpu ranks by default ($PORTA_BENCH_RANKS; the virtual cpu
// devices when $PORTA_CPU_DEVICES exposes them), plus 2 ranks on opencl:0 and on
// vulkan:0 (host staging). algbw and busbw counters as defined in allreduce_case.hpp.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>

#include "allreduce_case.hpp"
#include "bench_devices.hpp"

namespace {

void bench_local(benchmark::State& state, std::vector<porta::Device> devices, std::size_t bytes, std::string algorithm) {
  if (algorithm.empty()) {
    unsetenv("PORTA_ALLREDUCE_ALGO");
  } else {
    setenv("PORTA_ALLREDUCE_ALGO", algorithm.c_str(), 1);
  }
  const int repetitions = porta::bench::all_reduce_repetitions(bytes);
  for (auto _ : state) {
    porta::bench::AllReduceResult result;
    try {
      result = porta::bench::run_local_all_reduce(devices, bytes, repetitions);
    } catch (const porta::Error& error) {
      result.error = error.what();
    }
    if (!result.error.empty()) {
      state.SkipWithError(result.error.c_str());
      break;
    }
    state.SetIterationTime(result.seconds);
    const int ranks = static_cast<int>(devices.size());
    state.counters["algbw_GB/s"] = porta::bench::algbw_gbs(bytes, result.seconds);
    state.counters["busbw_GB/s"] = porta::bench::busbw_gbs(bytes, result.seconds, ranks);
  }
  unsetenv("PORTA_ALLREDUCE_ALGO");
}

std::string size_name(std::size_t bytes) {
  return bytes >= (1 << 20) ? std::to_string(bytes >> 20) + "MiB" : std::to_string(bytes >> 10) + "KiB";
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  // $PORTA_BENCH_RANKS cpu ranks (default 2): cpu:0, cpu:1... while there are virtual
  // devices, then shared ones (each rank still has tensors of its own).
  const char* ranks_text = std::getenv("PORTA_BENCH_RANKS");
  const int ranks = std::max(1, ranks_text != nullptr ? std::atoi(ranks_text) : 2);
  benchmark::AddCustomContext("ranks", std::to_string(ranks));  // read by tools/allreduce-sim
  std::vector<porta::Device> all_cpus;
  for (const porta::Device& device : porta::devices()) {
    if (device.info().backend == porta::BackendKind::cpu) all_cpus.push_back(device);
  }
  std::vector<porta::Device> cpus;
  for (int r = 0; r < ranks; ++r) cpus.push_back(all_cpus[static_cast<std::size_t>(r) % all_cpus.size()]);
  const std::string cpu_group = "cpu_x" + std::to_string(ranks);
  std::vector<std::pair<std::string, std::vector<porta::Device>>> groups;
  if (wanted("cpu:0")) groups.push_back({cpu_group, cpus});
  for (const porta::Device& device : porta::devices()) {
    if (device.info().backend != porta::BackendKind::cpu && device.info().index == 0 && wanted(device.id())) {
      groups.push_back({std::string(porta::to_string(device.info().backend)) + "_x2", {device, device}});
    }
  }
  for (std::size_t bytes : porta::bench::all_reduce_sizes()) {
    for (const auto& [name, devices] : groups) {
      if (bytes > devices[0].info().max_allocation_bytes) continue;
      // Shared memory: the direct algorithm; ring and doubling over in-process messages
      // beside it on cpu show what reading peers' memory saves.
      std::vector<std::string> algorithms = {""};
      if (name == cpu_group) algorithms = {"", "ring", "doubling"};
      for (const std::string& algorithm : algorithms) {
        std::string label = "allreduce_f32_sum/local/" + name + "/" + (algorithm.empty() ? "auto" : algorithm) + "/" + size_name(bytes);
        benchmark::RegisterBenchmark(label.c_str(), bench_local, devices, bytes, algorithm)
            ->Iterations(1)
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

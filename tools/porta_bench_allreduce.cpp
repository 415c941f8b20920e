// porta_bench_allreduce.cpp — porta-bench's all-reduce part: 2 ranks in one process over
// the local transport on every device, and 2 processes over MPI (porta's MPI transport
// with host and device tensors, beside MPI_Allreduce itself), run by mpirun as
// `porta-bench --mpi-worker FILE`. The case (inputs, exact check, repetitions, busbw) is
// bench/allreduce_case.hpp's, which the Google Benchmark binaries use too.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "allreduce_case.hpp"
#include "porta_bench.hpp"

#ifdef PORTA_BENCH_MPI
#include <mpi.h>
#endif

namespace {

constexpr int kRanks = 2;

std::vector<std::size_t> sizes(bool quick) {
  if (quick) return {std::size_t(4) << 10, std::size_t(1) << 20, std::size_t(16) << 20};
  return porta::bench::all_reduce_sizes();
}

std::string label(std::size_t bytes, const char* transport) {
  return std::to_string(bytes) + " bytes " + std::to_string(kRanks) + " ranks " + transport;
}

// Times `batch()` (one batch of all-reduces, returning seconds per all-reduce) after a
// first call, `calls` times or, when `calls` is 0, until the timing's limits.
template <class Batch>
Result time_batches(Batch&& batch, int calls, const Timing& timing) {
  Result result;
  result.ranks = kRanks;
  double start = now_s();
  porta::bench::AllReduceResult first = batch(1);
  result.first_call_s = now_s() - start;
  std::string error = first.error;
  std::vector<double> times;
  const double begin = now_s();
  while (calls > 0 ? int(times.size()) < calls
                   : int(times.size()) < timing.min_calls || (now_s() - begin < timing.min_time_s && times.size() < 100)) {
    porta::bench::AllReduceResult next = batch(0);
    times.push_back(next.seconds);
    if (error.empty()) error = next.error;
  }
  summarise(std::move(times), result);
  result.check.ok = error.empty();  // integer-valued inputs: the sums are exact
  result.check.rel_err = error.empty() ? 0.0 : INFINITY;
  if (!error.empty()) std::fprintf(stderr, "all-reduce check: %s\n", error.c_str());
  return result;
}

int repetitions(std::size_t bytes, int requested) {
  return requested > 0 ? requested : porta::bench::all_reduce_repetitions(bytes);
}

}  // namespace

std::vector<Entry> allreduce_entries(bool quick, const std::vector<porta::Device>& devices) {
  std::vector<Entry> entries;
  for (std::size_t bytes : sizes(quick)) {
    for (const porta::Device& device : devices) {
      auto run = [device, bytes](const Timing& timing) {
        const std::vector<porta::Device> group(kRanks, device);  // one device, two ranks
        return time_batches(
            [&](int count) { return porta::bench::run_local_all_reduce(group, bytes, repetitions(bytes, count)); }, 0,
            timing);
      };
      entries.push_back({"allreduce", "allreduce", label(bytes, "local"), device.id(), "porta", entries.size(),
                         double(bytes), double(bytes), kRanks, run, {}});
    }
  }
  return entries;
}

bool mpi_available(std::string& why_not) {
  if (!porta::Communicator::mpi_built()) {
    why_not = "porta was built without MPI";
    return false;
  }
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) {
    why_not = "no mpirun on the PATH (apt-get install openmpi-bin)";
    return false;
  }
  return true;
}

std::vector<std::size_t> mpi_cases(bool quick, const std::vector<std::string>& shape_filters) {
  std::vector<std::size_t> chosen;
  for (std::size_t bytes : sizes(quick)) {
    if (matches_any(shape_filters, label(bytes, "mpi"), false)) chosen.push_back(bytes);
  }
  return chosen;
}

std::vector<Result> run_mpi_allreduce(bool quick, const std::vector<std::string>& device_filters,
                                      const std::vector<std::string>& shape_filters, const Timing& timing) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe");
  const std::string output = (std::filesystem::temp_directory_path() /
                              ("porta-bench-mpi-" + std::to_string(::getpid()) + ".json")).string();
  std::string command = "mpirun -np " + std::to_string(kRanks) + " --oversubscribe";
  if (::geteuid() == 0) command += " --allow-run-as-root";
  command += " '" + self + "' --mpi-worker '" + output + "'";
  if (quick) command += " --quick";
  auto pass_on = [&](const char* option, const std::vector<std::string>& values) {
    if (values.empty()) return;
    std::string list;
    for (const std::string& value : values) list += (list.empty() ? "" : ",") + value;
    command += std::string(" ") + option + " '" + list + "'";
  };
  pass_on("--device", device_filters);
  pass_on("--shape", shape_filters);
  command += format(" --min-time %g --max-call %g", timing.min_time_s, timing.max_call_s);
  // Shared memory between processes without the kernel's cross-memory attach, which
  // containers often forbid.
  ::setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0);
  std::fprintf(stderr, "all-reduce over MPI: %s\n", command.c_str());
  std::fflush(stderr);
  const int status = std::system(command.c_str());
  std::vector<Result> results;
  std::ifstream file(output);
  if (status != 0 || !file) {
    Result failed;
    failed.op = "allreduce", failed.case_label = label(mpi_cases(quick, shape_filters).front(), "mpi");
    failed.device = "cpu:0";
    failed.impl = "porta", failed.ranks = kRanks;
    failed.error = "mpirun failed (status " + std::to_string(status) + "): " + command;
    results.push_back(failed);
    return results;
  }
  const nlohmann::json json = nlohmann::json::parse(file);
  for (const nlohmann::json& item : json.at("results")) results.push_back(result_from_json(item));
  std::filesystem::remove(output);
  return results;
}

int mpi_worker_main(const std::string& output, bool quick, const std::vector<std::string>& device_filters,
                    const std::vector<std::string>& shape_filters, const Timing& timing) {
  std::vector<porta::Device> devices;
  for (const porta::Device& device : porta::devices()) {
    if (device.info().backend == porta::BackendKind::cpu && device.info().index > 0) continue;
    if (matches_any(device_filters, device.id(), true)) devices.push_back(device);
  }
  // Every rank must make the same calls: a fixed number of batches, not a time limit.
  const int calls = std::max(timing.min_calls, 2);
  std::vector<porta::Communicator> communicators;
  for (const porta::Device& device : devices) communicators.push_back(porta::Communicator::mpi(device));
  const bool report = communicators.empty() || communicators.front().rank() == 0;
  std::vector<Result> results;
  std::size_t sequence = 0;
  std::size_t total = mpi_cases(quick, shape_filters).size() * communicators.size();
#ifdef PORTA_BENCH_MPI
  total += mpi_cases(quick, shape_filters).size();  // the MPI_Allreduce anchor
#endif
  auto record = [&](Result result, std::size_t bytes, const std::string& device, const std::string& impl) {
    result.op = "allreduce", result.case_label = label(bytes, "mpi"), result.device = device, result.impl = impl;
    result.work = result.bytes = double(bytes), result.ranks = kRanks, result.sequence = sequence++;
    if (report) {
      std::fprintf(stderr, "[mpi %3zu/%zu] allreduce %-36s %-9s %-8s ", sequence, total, result.case_label.c_str(),
                   device.c_str(), impl.c_str());
      print_progress(result);
    }
    results.push_back(result);
  };
  for (std::size_t bytes : mpi_cases(quick, shape_filters)) {
#ifdef PORTA_BENCH_MPI
    {  // the anchor: MPI_Allreduce on host memory, the same inputs and check
      int rank = 0, size = 1;
      MPI_Comm_rank(MPI_COMM_WORLD, &rank);
      MPI_Comm_size(MPI_COMM_WORLD, &size);
      const std::size_t count = bytes / sizeof(float);
      std::vector<float> in(count), out(count);
      for (std::size_t i = 0; i < count; ++i) in[i] = porta::bench::all_reduce_input(rank, i);
      auto batch = [&](int requested) {
        const int reps = repetitions(bytes, requested);
        MPI_Barrier(MPI_COMM_WORLD);
        const double start = MPI_Wtime();
        for (int r = 0; r < reps; ++r) MPI_Allreduce(in.data(), out.data(), int(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        MPI_Barrier(MPI_COMM_WORLD);
        porta::bench::AllReduceResult result;
        result.seconds = (MPI_Wtime() - start) / reps;
        for (std::size_t i = 0; i < count && result.error.empty(); ++i) {
          float expected = 0;
          for (int q = 0; q < size; ++q) expected += porta::bench::all_reduce_input(q, i);
          if (out[i] != expected) result.error = "MPI_Allreduce: element " + std::to_string(i) + " differs";
        }
        return result;
      };
      record(time_batches(batch, calls, timing), bytes, "cpu:0", "mpi");
    }
#endif
    for (const porta::Communicator& comm : communicators) {
      Result result;
      try {
        result = time_batches(
            [&](int count) { return porta::bench::run_all_reduce_rank(comm, bytes, repetitions(bytes, count)); }, calls,
            timing);
      } catch (const porta::Error& error) {
        result.error = error.what();
      }
      record(result, bytes, comm.device().id(), "porta");
    }
  }
  if (report) {
    nlohmann::json json = {{"results", nlohmann::json::array()}};
    for (const Result& result : results) json["results"].push_back(result_json(result));
    std::ofstream(output) << json.dump(1) << "\n";
  }
  return 0;
}

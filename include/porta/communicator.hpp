// communicator.hpp — collectives across ranks: all-reduce and friends, in one process
// (one rank per device, ranks driven by threads) or across processes over MPI.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "porta/device.hpp"
#include "porta/export.h"
#include "porta/tensor.hpp"

namespace porta {

// avg is the sum divided by the number of ranks. f16 and bf16 accumulate in f32 and
// round once.
enum class Reduce { sum, avg, max, min };
PORTA_API std::string_view to_string(Reduce op);

namespace detail {
class CommunicatorImpl;
}

// One rank's handle on a group of ranks. Every rank of the group must make the same
// collective calls in the same order, with tensors of the same dtype and element count
// (checked: a disagreement throws porta::Error on every rank, it never hangs). Tensors
// must be contiguous and live on the rank's device(). Results are deterministic: every
// rank gets the same bits, and a rerun gives the same bits again.
//
// Calls block until the rank's part is done; the tensors may be reused on return.
class PORTA_API Communicator {
 public:
  // In one process: rank i drives devices[i] (any mix of cpu, opencl and vulkan; the same
  // device may appear twice). Each handle must be used by one thread at a time; run
  // them with run_ranks() or with threads of your own (then call abort() from a rank
  // that fails, or the others wait for it until $PORTA_COLLECTIVE_TIMEOUT_S).
  static std::vector<Communicator> local(const std::vector<Device>& devices);

  // One rank per process over MPI_COMM_WORLD (MPI initialised here if the program did not,
  // finalised at exit). Throws ErrorKind::unsupported when porta was built without MPI.
  static Communicator mpi(const Device& device);
  static bool mpi_built();

  int rank() const;
  int size() const;
  const Device& device() const;

  // out = op over all ranks of in. in and out may be the same tensor.
  void all_reduce(Tensor& tensor, Reduce op) const { all_reduce(tensor, tensor, op); }
  void all_reduce(const Tensor& in, const Tensor& out, Reduce op) const;
  // in holds size() equal parts; out (numel = in.numel() / size()) gets part rank()
  // reduced over all ranks.
  void reduce_scatter(const Tensor& in, const Tensor& out, Reduce op) const;
  // out (numel = size() * in.numel()) gets every rank's in, rank order.
  void all_gather(const Tensor& in, const Tensor& out) const;
  // Every rank's tensor gets root's.
  void broadcast(const Tensor& tensor, int root) const;
  void barrier() const;

  // Local groups only: makes every rank's pending and later collectives throw
  // porta::Error naming this rank and `reason`. MPI ranks end with the process.
  void abort(const std::string& reason) const;

  // Which all-reduce algorithm this communicator uses for `bytes` per rank ("direct",
  // "ring", "doubling", "mpi"); $PORTA_ALLREDUCE_ALGO overrides the choice. Partial sums
  // travel as f32, so for f16/bf16 tensors pass 4 bytes per element.
  std::string all_reduce_algorithm(std::size_t bytes) const;
  // What the MPI transport's automatic choice is for `ranks` ranks and `bytes` (of f32) per rank:
  // the α–β model fitted on Open MPI here (docs/collectives.md), for planning at scale.
  static std::string mpi_all_reduce_algorithm(int ranks, std::size_t bytes);

  explicit Communicator(std::shared_ptr<detail::CommunicatorImpl> impl);

 private:
  std::shared_ptr<detail::CommunicatorImpl> impl_;
};

// Runs body(communicator) on one thread per rank and waits for all. A rank that throws
// aborts the group (the others fail within a bounded time instead of waiting); the first
// error is then rethrown here.
PORTA_API void run_ranks(const std::vector<Communicator>& ranks, const std::function<void(const Communicator&)>& body);

}  // namespace porta

// collective.hpp — what every transport shares: the call, the header ranks agree on,
// argument checks, host access to tensors and the reduction loops.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "porta/communicator.hpp"
#include "porta/dtype.hpp"
#include "porta/error.hpp"
#include "porta/tensor.hpp"

namespace porta::detail {

enum class CollectiveKind : std::int32_t { all_reduce, reduce_scatter, all_gather, broadcast, barrier };
std::string collective_name(CollectiveKind kind);  // "porta::Communicator::all_reduce"

// One rank's call. in/out are null for barrier; for broadcast both point to the tensor.
struct Call {
  CollectiveKind kind = CollectiveKind::barrier;
  Reduce op = Reduce::sum;
  const Tensor* in = nullptr;
  const Tensor* out = nullptr;
  int root = 0;
};

// What every rank of a call must agree on; exchanged before any data moves.
struct CallHeader {
  std::int64_t kind = 0;
  std::int64_t op = 0;
  std::int64_t dtype = 0;
  std::int64_t root = 0;
  std::int64_t in_count = 0;
  std::int64_t out_count = 0;
  bool operator==(const CallHeader&) const = default;
};
inline constexpr int header_fields = 6;
CallHeader header_of(const Call& call);
std::string describe(const CallHeader& header);  // "f32 x 1024 (sum)"

// Why this rank's call cannot run ("" when it can): undefined, non-contiguous or
// wrongly sized tensors, a tensor on another device, an unsupported dtype, a bad root.
std::string local_problem(const Call& call, int ranks, const Device& device);

// The error every rank throws when the headers disagree; `headers` is indexed by rank.
[[noreturn]] void fail_disagreement(CollectiveKind kind, const std::vector<CallHeader>& headers);

// The bytes of a contiguous tensor as host memory: the device's own memory when it
// keeps tensors in host memory (no copy), else a staging copy read from the device.
class HostView {
 public:
  HostView() = default;
  // load: fill the staging copy from the device (skipped for outputs).
  HostView(const Tensor& tensor, bool load);
  void* data() const { return data_; }
  bool staged() const { return !staging_.empty(); }
  // Writes a staging copy back to the device; nothing for direct views.
  void store(const Tensor& tensor) const { store(tensor, 0, staging_.size()); }
  // Parts of the staging copy, so that transfers can interleave with other ranks' work.
  void load(const Tensor& tensor, std::size_t byte_offset, std::size_t bytes);
  void store(const Tensor& tensor, std::size_t byte_offset, std::size_t bytes) const;

 private:
  void* data_ = nullptr;
  std::vector<unsigned char> staging_;
};

// dest[i] = op over q = 0..n-1 of sources[q][i] for i < count, in rank order with f32
// accumulation, rounded once; avg divides the sum by n at the end.
void reduce_sources(DType dtype, Reduce op, const void* const* sources, int n, void* dest, std::size_t count);
// reduce_sources for one part, stored into every rank's output (outs[q] for q < n): each
// result is computed once and written n times, and no rank reads another's output back
// (f32 sum/avg straight from AVX-512 registers, the rest block by block through a buffer
// in L1). When the whole message is at least streaming_bytes the stores bypass the
// caches: the outputs then outgrow the L2s, and loading each line before overwriting it
// would double the traffic. Measured at 2 ranks on the fused path: streaming gains ~9% at
// 4 MiB and loses ~15% at 1 MiB.
inline constexpr std::size_t streaming_bytes = std::size_t(4) << 20;
void reduce_to_all(DType dtype, Reduce op, const void* const* sources, int n, void* const* outs, std::size_t count,
                   std::size_t message_bytes);
// acc[i] = first[i] op second[i] on f32 partial results (avg accumulates as sum).
void combine(Reduce op, const float* first, const float* second, float* out, std::size_t count);
void to_f32(DType dtype, const void* source, float* dest, std::size_t count);
// Rounds f32 to dtype; divides by `divisor` first (1 for everything but avg).
void from_f32(DType dtype, const float* source, void* dest, std::size_t count, float divisor);

// $PORTA_COLLECTIVE_TIMEOUT_S (default 300): the longest a local rank waits for the others.
double collective_timeout_seconds();
// $PORTA_ALLREDUCE_ALGO: "" when unset.
std::string forced_all_reduce_algorithm();

class CommunicatorImpl {
 public:
  CommunicatorImpl(Device device) : device_(std::move(device)) {}
  virtual ~CommunicatorImpl() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  const Device& device() const { return device_; }
  virtual void run(const Call& call) = 0;
  virtual void abort(const std::string& reason) = 0;
  virtual std::string all_reduce_algorithm(std::size_t bytes) const = 0;

 private:
  Device device_;
};

std::shared_ptr<CommunicatorImpl> make_mpi_communicator(const Device& device);
std::vector<std::shared_ptr<CommunicatorImpl>> make_local_group(const std::vector<Device>& devices);

}  // namespace porta::detail

// communicator.cpp — porta::Communicator: the public calls, their argument checks and
// what the transports share (headers, host views, environment knobs).
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>

#include "backends/backend.hpp"
#include "src/collectives/collective.hpp"
#include "src/collectives/p2p_algorithms.hpp"

namespace porta {

std::string_view to_string(Reduce op) {
  switch (op) {
    case Reduce::sum: return "sum";
    case Reduce::avg: return "avg";
    case Reduce::max: return "max";
    case Reduce::min: return "min";
  }
  return "unknown";
}

namespace detail {

std::string collective_name(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::all_reduce: return "porta::Communicator::all_reduce";
    case CollectiveKind::reduce_scatter: return "porta::Communicator::reduce_scatter";
    case CollectiveKind::all_gather: return "porta::Communicator::all_gather";
    case CollectiveKind::broadcast: return "porta::Communicator::broadcast";
    case CollectiveKind::barrier: return "porta::Communicator::barrier";
  }
  return "porta::Communicator";
}

CallHeader header_of(const Call& call) {
  CallHeader header;
  header.kind = static_cast<std::int64_t>(call.kind);
  if (call.kind == CollectiveKind::all_reduce || call.kind == CollectiveKind::reduce_scatter) {
    header.op = static_cast<std::int64_t>(call.op);
  }
  if (call.kind == CollectiveKind::broadcast) header.root = call.root;
  if (call.in != nullptr && call.in->defined()) {
    header.dtype = static_cast<std::int64_t>(call.in->dtype());
    header.in_count = call.in->numel();
  }
  if (call.out != nullptr && call.out->defined()) header.out_count = call.out->numel();
  return header;
}

std::string describe(const CallHeader& header) {
  auto kind = static_cast<CollectiveKind>(header.kind);
  std::string text = collective_name(kind).substr(std::string("porta::Communicator::").size());
  if (kind == CollectiveKind::barrier) return text;
  text += " of " + std::string(to_string(static_cast<DType>(header.dtype))) + " x " + std::to_string(header.in_count);
  if (kind == CollectiveKind::reduce_scatter || kind == CollectiveKind::all_gather) {
    text += " into " + std::to_string(header.out_count);
  }
  if (kind == CollectiveKind::all_reduce || kind == CollectiveKind::reduce_scatter) {
    text += " (" + std::string(to_string(static_cast<Reduce>(header.op))) + ")";
  }
  if (kind == CollectiveKind::broadcast) text += " from root " + std::to_string(header.root);
  return text;
}

std::string local_problem(const Call& call, int ranks, const Device& device) {
  if (call.kind == CollectiveKind::barrier) return "";
  auto check_tensor = [&](const char* name, const Tensor& tensor) -> std::string {
    if (!tensor.defined()) return std::string("argument ") + name + ": the tensor is undefined";
    if (!(tensor.device() == device)) {
      return std::string("argument ") + name + ": expected a tensor on this rank's device " + device.id() + ", got " +
             tensor.describe();
    }
    if (!tensor.is_contiguous()) {
      return std::string("argument ") + name + ": expected a contiguous tensor (call contiguous() first), got " +
             tensor.describe() + " with strides " + to_string(tensor.strides());
    }
    if (!is_floating(tensor.dtype())) {
      return std::string("argument ") + name + ": expected f32, f16 or bf16, got " + tensor.describe();
    }
    return "";
  };
  if (std::string problem = check_tensor("in", *call.in); !problem.empty()) return problem;
  if (call.kind == CollectiveKind::broadcast) {
    if (call.root < 0 || call.root >= ranks) {
      return "argument root: expected a rank in [0, " + std::to_string(ranks) + "), got " + std::to_string(call.root);
    }
    return "";
  }
  if (std::string problem = check_tensor("out", *call.out); !problem.empty()) return problem;
  const Tensor& in = *call.in;
  const Tensor& out = *call.out;
  if (in.dtype() != out.dtype()) {
    return "argument out: expected dtype " + std::string(to_string(in.dtype())) + " like in, got " + out.describe();
  }
  std::int64_t expected = in.numel();
  if (call.kind == CollectiveKind::reduce_scatter) {
    if (in.numel() % ranks != 0) {
      return "argument in: expected a multiple of " + std::to_string(ranks) + " ranks elements, got " + in.describe();
    }
    expected = in.numel() / ranks;
  }
  if (call.kind == CollectiveKind::all_gather) expected = in.numel() * ranks;
  if (out.numel() != expected) {
    return "argument out: expected " + std::to_string(expected) + " elements, got " + out.describe();
  }
  // Out of place means separate storage: an overlap would be read while written.
  if (in.buffer() == out.buffer() && in.numel() > 0 &&
      !(call.kind == CollectiveKind::all_reduce && in.offset() == out.offset())) {
    return "argument out: expected storage apart from in (or the very same tensor for an in-place all_reduce)";
  }
  return "";
}

void fail_disagreement(CollectiveKind kind, const std::vector<CallHeader>& headers) {
  std::string text = collective_name(kind) + ": the ranks disagree on the call:";
  for (std::size_t rank = 0; rank < headers.size(); ++rank) {
    text += (rank ? "; rank " : " rank ") + std::to_string(rank) + " called " + describe(headers[rank]);
  }
  throw Error(ErrorKind::invalid_argument, text);
}

HostView::HostView(const Tensor& tensor, bool load) {
  if (tensor.numel() == 0) return;
  backend::Device& device = tensor.device().impl();
  const std::uint64_t offset_bytes = static_cast<std::uint64_t>(tensor.offset()) * size_of(tensor.dtype());
  if (void* base = device.host_pointer(*tensor.buffer()); base != nullptr) {
    device.synchronize();  // queued kernels that write the tensor finish first
    data_ = static_cast<unsigned char*>(base) + offset_bytes;
    return;
  }
  staging_.resize(tensor.nbytes());
  data_ = staging_.data();
  if (load) device.read(*tensor.buffer(), offset_bytes, staging_.data(), staging_.size());
}

void HostView::load(const Tensor& tensor, std::size_t byte_offset, std::size_t bytes) {
  if (!staged() || bytes == 0) return;
  const std::uint64_t offset_bytes = static_cast<std::uint64_t>(tensor.offset()) * size_of(tensor.dtype());
  tensor.device().impl().read(*tensor.buffer(), offset_bytes + byte_offset, staging_.data() + byte_offset, bytes);
}

void HostView::store(const Tensor& tensor, std::size_t byte_offset, std::size_t bytes) const {
  if (!staged() || bytes == 0) return;
  const std::uint64_t offset_bytes = static_cast<std::uint64_t>(tensor.offset()) * size_of(tensor.dtype());
  tensor.device().impl().write(*tensor.buffer(), offset_bytes + byte_offset, staging_.data() + byte_offset, bytes);
}

double collective_timeout_seconds() {
  static const double seconds = [] {
    const char* text = std::getenv("PORTA_COLLECTIVE_TIMEOUT_S");
    if (text == nullptr || *text == '\0') return 300.0;
    char* end = nullptr;
    double value = std::strtod(text, &end);
    if (*end != '\0' || !(value > 0)) {
      throw Error(ErrorKind::invalid_argument,
                  std::string("porta collectives: environment variable PORTA_COLLECTIVE_TIMEOUT_S: expected a "
                              "positive number of seconds, got '") + text + "'");
    }
    return value;
  }();
  return seconds;
}

std::string forced_all_reduce_algorithm() {
  const char* text = std::getenv("PORTA_ALLREDUCE_ALGO");
  std::string value = text == nullptr ? std::string() : std::string(text);
  if (value.empty() || value == "auto" || value == "direct" || value == "ring" || value == "doubling" ||
      value == "mpi") {
    return value;
  }
  throw Error(ErrorKind::invalid_argument,
              "porta collectives: environment variable PORTA_ALLREDUCE_ALGO: expected auto, ring, doubling, direct "
              "or mpi, got '" + value + "'");
}

#ifndef PORTA_HAVE_MPI
std::shared_ptr<CommunicatorImpl> make_mpi_communicator(const Device&) {
  throw Error(ErrorKind::unsupported,
              "porta::Communicator::mpi: porta was built without MPI (CMake option PORTA_MPI; apt-get install "
              "libopenmpi-dev openmpi-bin and configure again)");
}
#endif

}  // namespace detail

#ifndef PORTA_HAVE_MPI
bool Communicator::mpi_built() { return false; }
#endif

Communicator::Communicator(std::shared_ptr<detail::CommunicatorImpl> impl) : impl_(std::move(impl)) {}

std::vector<Communicator> Communicator::local(const std::vector<Device>& devices) {
  if (devices.empty()) {
    throw Error(ErrorKind::invalid_argument, "porta::Communicator::local: argument devices: expected at least one device");
  }
  for (std::size_t i = 0; i < devices.size(); ++i) {
    if (!devices[i]) {
      throw Error(ErrorKind::invalid_argument,
                  "porta::Communicator::local: argument devices: device " + std::to_string(i) + " is an empty handle");
    }
  }
  std::vector<Communicator> ranks;
  for (auto& impl : detail::make_local_group(devices)) ranks.emplace_back(std::move(impl));
  return ranks;
}

Communicator Communicator::mpi(const Device& device) {
  if (!device) throw Error(ErrorKind::invalid_argument, "porta::Communicator::mpi: argument device: empty handle");
  return Communicator(detail::make_mpi_communicator(device));
}

int Communicator::rank() const { return impl_->rank(); }
int Communicator::size() const { return impl_->size(); }
const Device& Communicator::device() const { return impl_->device(); }

void Communicator::all_reduce(const Tensor& in, const Tensor& out, Reduce op) const {
  impl_->run({detail::CollectiveKind::all_reduce, op, &in, &out, 0});
}
void Communicator::reduce_scatter(const Tensor& in, const Tensor& out, Reduce op) const {
  impl_->run({detail::CollectiveKind::reduce_scatter, op, &in, &out, 0});
}
void Communicator::all_gather(const Tensor& in, const Tensor& out) const {
  impl_->run({detail::CollectiveKind::all_gather, Reduce::sum, &in, &out, 0});
}
void Communicator::broadcast(const Tensor& tensor, int root) const {
  impl_->run({detail::CollectiveKind::broadcast, Reduce::sum, &tensor, &tensor, root});
}
void Communicator::barrier() const { impl_->run({detail::CollectiveKind::barrier, Reduce::sum, nullptr, nullptr, 0}); }
void Communicator::abort(const std::string& reason) const { impl_->abort(reason); }
std::string Communicator::all_reduce_algorithm(std::size_t bytes) const { return impl_->all_reduce_algorithm(bytes); }

std::string Communicator::mpi_all_reduce_algorithm(int ranks, std::size_t bytes) {
  return detail::cheaper_all_reduce(ranks, bytes);
}

void run_ranks(const std::vector<Communicator>& ranks, const std::function<void(const Communicator&)>& body) {
  std::mutex mutex;
  std::exception_ptr first_error;
  std::vector<std::thread> threads;
  threads.reserve(ranks.size());
  for (const Communicator& rank : ranks) {
    threads.emplace_back([&, rank] {
      try {
        body(rank);
      } catch (...) {
        std::exception_ptr error = std::current_exception();
        std::string what = "an exception";
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        {
          // Recorded before the abort, so the root cause wins over the errors it causes.
          std::lock_guard lock(mutex);
          if (!first_error) first_error = error;
        }
        rank.abort(what);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace porta

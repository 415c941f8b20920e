// mpi_transport.cpp — collectives with one rank per process over MPI. A small header
// exchange comes first so that ranks which disagree all throw instead of hanging; the
// data then moves through porta's own ring or doubling over MPI point-to-point messages,
// or through MPI_Allreduce when $PORTA_ALLREDUCE_ALGO=mpi.
#include <mpi.h>

#include <array>
#include <cstring>
#include <mutex>

#include "src/collectives/collective.hpp"
#include "src/collectives/p2p_algorithms.hpp"

namespace porta::detail {

namespace {

void check(int status, const char* call) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(status, text, &length);
  throw Error(ErrorKind::backend_error, std::string("porta mpi transport: ") + call + " failed: " + std::string(text, static_cast<std::size_t>(length)));
}

// Initialises MPI unless the program did, and then finalises it at exit (Open MPI
// reports a process that exits without MPI_Finalize as failed).
class MpiRuntime {
 public:
  static void ensure() { static MpiRuntime runtime; }
  ~MpiRuntime() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (initialized_here_ && !finalized) MPI_Finalize();
  }

 private:
  MpiRuntime() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
    initialized_here_ = true;
  }
  bool initialized_here_ = false;
};

class MpiPointToPoint final : public PointToPoint {
 public:
  MpiPointToPoint(MPI_Comm comm, int rank, int size) : comm_(comm), rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Request start_send(int to, const float* data, std::size_t count) override {
    MPI_Request request;
    check(MPI_Isend(data, static_cast<int>(count), MPI_FLOAT, to, tag, comm_, &request), "MPI_Isend");
    return keep(request);
  }
  Request start_receive(int from, float* data, std::size_t count) override {
    MPI_Request request;
    check(MPI_Irecv(data, static_cast<int>(count), MPI_FLOAT, from, tag, comm_, &request), "MPI_Irecv");
    return keep(request);
  }
  void wait(Request request) override {
    check(MPI_Wait(&requests_[request % requests_.size()], MPI_STATUS_IGNORE), "MPI_Wait");
  }

 private:
  static constexpr int tag = 7;
  // The algorithms keep at most four requests in flight.
  Request keep(MPI_Request request) {
    Request id = next_++;
    requests_[id % requests_.size()] = request;
    return id;
  }
  MPI_Comm comm_;
  int rank_;
  int size_;
  std::array<MPI_Request, 8> requests_{};
  Request next_ = 0;
};

MPI_Datatype element_type(DType dtype) { return size_of(dtype) == 2 ? MPI_UINT16_T : MPI_FLOAT; }

class MpiRank final : public CommunicatorImpl {
 public:
  explicit MpiRank(const Device& device) : CommunicatorImpl(device) {
    MpiRuntime::ensure();
    // A communicator of porta's own: its messages never match the program's, and its
    // errors come back as codes (turned into porta::Error) instead of aborting the job.
    check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }
  ~MpiRank() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void abort(const std::string&) override {}

  std::string all_reduce_algorithm(std::size_t bytes) const override {
    std::string forced = forced_all_reduce_algorithm();
    if (forced == "ring" || forced == "doubling" || forced == "mpi") return forced;
    return cheaper_all_reduce(size_, bytes);
  }

  void run(const Call& call) override {
    const std::string problem = local_problem(call, size_, device());
    agree(call, problem);
    if (call.kind == CollectiveKind::barrier || call.in->numel() == 0) return;  // the header exchange synchronised
    switch (call.kind) {
      case CollectiveKind::all_reduce: return all_reduce(call);
      case CollectiveKind::reduce_scatter: return reduce_scatter(call);
      case CollectiveKind::all_gather: return all_gather(call);
      case CollectiveKind::broadcast: return broadcast(call);
      case CollectiveKind::barrier: return;
    }
  }

 private:
  // One MPI_Allreduce(MAX) over each field and its negation gives every rank the
  // largest and smallest value of every field: they agree when the two are equal.
  void agree(const Call& call, const std::string& problem) {
    const CallHeader header = header_of(call);
    const std::array<std::int64_t, header_fields> fields = {header.kind,  header.op,       header.dtype,
                                                            header.root, header.in_count, header.out_count};
    std::array<std::int64_t, 2 * header_fields + 1> extremes{};
    for (int i = 0; i < header_fields; ++i) {
      extremes[static_cast<std::size_t>(i)] = fields[static_cast<std::size_t>(i)];
      extremes[static_cast<std::size_t>(header_fields + i)] = -fields[static_cast<std::size_t>(i)];
    }
    extremes.back() = problem.empty() ? 0 : 1;
    check(MPI_Allreduce(MPI_IN_PLACE, extremes.data(), static_cast<int>(extremes.size()), MPI_INT64_T, MPI_MAX, comm_),
          "MPI_Allreduce (header)");
    const std::string name = collective_name(call.kind);
    if (extremes.back() != 0) {
      throw Error(ErrorKind::invalid_argument,
                  name + ": rank " + std::to_string(rank_) + ": " +
                      (problem.empty() ? std::string("another rank's arguments are invalid (its error says which)") : problem));
    }
    bool agreed = true;
    for (int i = 0; i < header_fields; ++i) {
      agreed = agreed && extremes[static_cast<std::size_t>(i)] == -extremes[static_cast<std::size_t>(header_fields + i)];
    }
    if (agreed) return;
    // Every rank saw the disagreement: all of them gather the headers to name it.
    std::vector<std::int64_t> all(static_cast<std::size_t>(size_) * header_fields);
    check(MPI_Allgather(fields.data(), header_fields, MPI_INT64_T, all.data(), header_fields, MPI_INT64_T, comm_),
          "MPI_Allgather (headers)");
    std::vector<CallHeader> headers(static_cast<std::size_t>(size_));
    for (int r = 0; r < size_; ++r) {
      const std::int64_t* f = all.data() + static_cast<std::size_t>(r) * header_fields;
      headers[static_cast<std::size_t>(r)] = {f[0], f[1], f[2], f[3], f[4], f[5]};
    }
    fail_disagreement(call.kind, headers);
  }

  float divisor(Reduce op) const { return op == Reduce::avg ? static_cast<float>(size_) : 1.0f; }

  void all_reduce(const Call& call) {
    const DType dtype = call.in->dtype();
    const std::size_t count = static_cast<std::size_t>(call.in->numel());
    const bool in_place = call.in->buffer() == call.out->buffer() && call.in->offset() == call.out->offset();
    HostView out_view(*call.out, in_place);
    // f32 reduces in the output itself; f16/bf16 partial sums travel as f32.
    float* work = dtype == DType::f32 ? static_cast<float*>(out_view.data()) : buffer(work_, count);
    if (!in_place || dtype != DType::f32) {
      HostView in_view(*call.in, true);
      to_f32(dtype, in_view.data(), work, count);
    }
    const std::string algorithm = all_reduce_algorithm(count * size_of(dtype));
    if (algorithm == "mpi") {
      MPI_Op mpi_op = call.op == Reduce::max ? MPI_MAX : call.op == Reduce::min ? MPI_MIN : MPI_SUM;
      check(MPI_Allreduce(MPI_IN_PLACE, work, static_cast<int>(count), MPI_FLOAT, mpi_op, comm_), "MPI_Allreduce");
    } else {
      MpiPointToPoint p2p(comm_, rank_, size_);
      if (algorithm == "ring") {
        ring_all_reduce(p2p, call.op, work, count, buffer(scratch_, ring_scratch_floats(count, size_)));
      } else {
        doubling_all_reduce(p2p, call.op, work, count, buffer(scratch_, count));
      }
    }
    from_f32(dtype, work, out_view.data(), count, divisor(call.op));
    out_view.store(*call.out);
  }

  void reduce_scatter(const Call& call) {
    const DType dtype = call.in->dtype();
    const std::size_t count = static_cast<std::size_t>(call.in->numel());
    const std::size_t part = static_cast<std::size_t>(call.out->numel());
    float* work = buffer(work_, count);
    {
      HostView in_view(*call.in, true);
      to_f32(dtype, in_view.data(), work, count);
    }
    MpiPointToPoint p2p(comm_, rank_, size_);
    ring_reduce_scatter(p2p, call.op, work, count, buffer(scratch_, ring_scratch_floats(count, size_)));
    HostView out_view(*call.out, false);
    from_f32(dtype, work + part * static_cast<std::size_t>(rank_), out_view.data(), part, divisor(call.op));
    out_view.store(*call.out);
  }

  void all_gather(const Call& call) {
    HostView in_view(*call.in, true);
    HostView out_view(*call.out, false);
    const int part = static_cast<int>(call.in->numel());
    const MPI_Datatype type = element_type(call.in->dtype());
    check(MPI_Allgather(in_view.data(), part, type, out_view.data(), part, type, comm_), "MPI_Allgather");
    out_view.store(*call.out);
  }

  void broadcast(const Call& call) {
    HostView view(*call.in, rank_ == call.root);
    check(MPI_Bcast(view.data(), static_cast<int>(call.in->numel()), element_type(call.in->dtype()), call.root, comm_),
          "MPI_Bcast");
    if (rank_ != call.root) view.store(*call.in);
  }

  // Working memory kept between calls: fresh pages on every call would cost page faults
  // on the order of the transfer itself.
  static float* buffer(std::vector<float>& kept, std::size_t floats) {
    if (kept.size() < floats) kept.resize(floats);
    return kept.data();
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  std::vector<float> work_;
  std::vector<float> scratch_;
};

}  // namespace

std::shared_ptr<CommunicatorImpl> make_mpi_communicator(const Device& device) {
  return std::make_shared<MpiRank>(device);
}

}  // namespace porta::detail

namespace porta {
bool Communicator::mpi_built() { return true; }
}  // namespace porta

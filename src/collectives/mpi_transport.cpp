// mpi_transport.cpp — collectives with one rank per process over MPI. A small header
// exchange comes first so that ranks which disagree all throw instead of hanging (a small
// all-reduce travels with it); the data then moves through porta's own ring or doubling
// over MPI point-to-point messages, or through MPI_Allreduce when $PORTA_ALLREDUCE_ALGO=mpi.
#include <mpi.h>

#include <algorithm>
#include <array>
#include <bit>
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
    std::string problem = local_problem(call, size_, device());
    AllReduceWork work;
    std::size_t payload = 0;
    if (call.kind == CollectiveKind::all_reduce && problem.empty() && call.in->numel() > 0) {
      try {
        work = prepare_all_reduce(call);
      } catch (const std::exception& error) {
        problem = error.what();  // every rank must still take part in the exchange
      }
      if (work.algorithm == "doubling" && work.count <= payload_capacity) payload = work.count;
    }
    exchange_header(call, problem, work.data, payload);
    if (call.kind == CollectiveKind::barrier || call.in->numel() == 0) return;  // the exchange synchronised
    switch (call.kind) {
      case CollectiveKind::all_reduce: return finish_all_reduce(call, work, payload > 0);
      case CollectiveKind::reduce_scatter: return reduce_scatter(call);
      case CollectiveKind::all_gather: return all_gather(call);
      case CollectiveKind::broadcast: return broadcast(call);
      case CollectiveKind::barrier: return;
    }
  }

 private:
  // The header exchange: recursive doubling over point-to-point messages that carry,
  // for every header field, the largest value and the negated smallest seen so far,
  // plus a flag for "some rank's arguments are invalid". Its message pattern depends only
  // on the rank count, so ranks that disagree still all finish it and then all throw.
  // A small all-reduce rides along as the messages' payload, combined exactly as
  // doubling_all_reduce() would: it then costs one exchange, not two.
  static constexpr std::size_t payload_capacity = header_payload_bytes / sizeof(float);
  static constexpr int fields = header_fields + 1;            // + the payload's length
  static constexpr std::size_t words = 2 * fields + 1;        // extremes + invalid flag
  static constexpr int header_tag = 11;  // the payload's tail takes the next tag

  struct Exchange {
    std::array<std::int64_t, words> extremes{};
    float* payload = nullptr;
    std::size_t payload_floats = 0;
  };

  void exchange_header(const Call& call, const std::string& problem, float* payload, std::size_t payload_floats) {
    const CallHeader header = header_of(call);
    const std::array<std::int64_t, fields> values = {header.kind,     header.op,        header.dtype,
                                                     header.root,     header.in_count,  header.out_count,
                                                     static_cast<std::int64_t>(payload_floats)};
    Exchange state;
    for (int i = 0; i < fields; ++i) {
      state.extremes[static_cast<std::size_t>(i)] = values[static_cast<std::size_t>(i)];
      state.extremes[static_cast<std::size_t>(fields + i)] = -values[static_cast<std::size_t>(i)];
    }
    state.extremes.back() = problem.empty() ? 0 : 1;
    state.payload = payload;
    state.payload_floats = payload_floats;
    run_header_doubling(state, call.op);

    const std::string name = collective_name(call.kind);
    if (state.extremes.back() != 0) {
      throw Error(ErrorKind::invalid_argument,
                  name + ": rank " + std::to_string(rank_) + ": " +
                      (problem.empty() ? std::string("another rank's arguments are invalid (its error says which)") : problem));
    }
    bool agreed = true;
    for (int i = 0; i < fields; ++i) {
      agreed = agreed && state.extremes[static_cast<std::size_t>(i)] == -state.extremes[static_cast<std::size_t>(fields + i)];
    }
    if (agreed) return;
    // Every rank saw the disagreement: all of them gather the headers to name it.
    std::vector<std::int64_t> all(static_cast<std::size_t>(size_) * fields);
    check(MPI_Allgather(values.data(), fields, MPI_INT64_T, all.data(), fields, MPI_INT64_T, comm_),
          "MPI_Allgather (headers)");
    std::vector<CallHeader> headers(static_cast<std::size_t>(size_));
    for (int r = 0; r < size_; ++r) {
      const std::int64_t* f = all.data() + static_cast<std::size_t>(r) * fields;
      headers[static_cast<std::size_t>(r)] = {f[0], f[1], f[2], f[3], f[4], f[5]};
    }
    if (std::all_of(headers.begin(), headers.end(), [&](const CallHeader& h) { return h == headers[0]; })) {
      throw Error(ErrorKind::invalid_argument,
                  name + ": the ranks chose different all-reduce algorithms (is $PORTA_ALLREDUCE_ALGO the same on every rank?)");
    }
    fail_disagreement(call.kind, headers);
  }

  // Two messages per exchange: the header with the payload's head, within the size MPI
  // sends eagerly (Open MPI's shared memory sends up to 4 KiB with its own header), and
  // the payload's tail, possibly empty. A 4 KiB all-reduce then pays no rendezvous round
  // trip. Both are always sent, so the message pattern does not depend on what the ranks
  // pass; the receiver leaves room for the largest payload, so nothing truncates.
  static constexpr std::size_t eager_bytes = 4000;
  static constexpr std::size_t header_bytes = words * sizeof(std::int64_t);
  static constexpr std::size_t head_capacity = (eager_bytes - header_bytes) / sizeof(float);

  static std::size_t head_floats(std::size_t payload_floats) { return std::min(payload_floats, head_capacity); }

  void start_sends(const Exchange& state, int to, MPI_Request* requests) {
    const std::size_t head = head_floats(state.payload_floats);
    head_out_.resize(header_bytes + head_capacity * sizeof(float));
    std::memcpy(head_out_.data(), state.extremes.data(), header_bytes);
    std::memcpy(head_out_.data() + header_bytes, state.payload, head * sizeof(float));
    check(MPI_Isend(head_out_.data(), static_cast<int>(header_bytes + head * sizeof(float)), MPI_BYTE, to, header_tag, comm_,
                    &requests[0]),
          "MPI_Isend (header)");
    check(MPI_Isend(state.payload + head, static_cast<int>(state.payload_floats - head), MPI_FLOAT, to, header_tag + 1, comm_,
                    &requests[1]),
          "MPI_Isend (header payload)");
  }

  void send_state(const Exchange& state, int to) {
    MPI_Request requests[2];
    start_sends(state, to, requests);
    check(MPI_Waitall(2, requests, MPI_STATUSES_IGNORE), "MPI_Waitall (header)");
  }

  // Receives a peer's state; `replace` takes it as is (the fold-out), otherwise merges it
  // with ours, the lower rank's payload first.
  void exchange_state(Exchange& state, int peer, bool send, bool replace, bool peer_first, Reduce op) {
    head_in_.resize(header_bytes + head_capacity * sizeof(float));
    tail_in_.resize(payload_capacity - head_capacity);
    MPI_Request requests[4];
    check(MPI_Irecv(head_in_.data(), static_cast<int>(head_in_.size()), MPI_BYTE, peer, header_tag, comm_, &requests[0]),
          "MPI_Irecv (header)");
    check(MPI_Irecv(tail_in_.data(), static_cast<int>(tail_in_.size()), MPI_FLOAT, peer, header_tag + 1, comm_, &requests[1]),
          "MPI_Irecv (header payload)");
    if (send) start_sends(state, peer, requests + 2);
    MPI_Status statuses[4];
    check(MPI_Waitall(send ? 4 : 2, requests, statuses), "MPI_Waitall (header)");
    std::array<std::int64_t, words> theirs{};
    std::memcpy(theirs.data(), head_in_.data(), header_bytes);
    for (std::size_t i = 0; i < words; ++i) {
      state.extremes[i] = replace ? theirs[i] : std::max(state.extremes[i], theirs[i]);
    }
    // Payloads of different lengths are left alone: the extremes already record the
    // disagreement and every rank will throw.
    const std::size_t floats = state.payload_floats;
    const std::size_t head = head_floats(floats);
    int head_received = 0;
    int tail_received = 0;
    MPI_Get_count(&statuses[0], MPI_BYTE, &head_received);
    MPI_Get_count(&statuses[1], MPI_FLOAT, &tail_received);
    if (floats == 0 || static_cast<std::size_t>(head_received) != header_bytes + head * sizeof(float) ||
        static_cast<std::size_t>(tail_received) != floats - head) {
      return;
    }
    // The head's floats sit in a byte buffer behind the header: copied out, not cast.
    float* head_payload = buffer(scratch_, head);
    std::memcpy(head_payload, head_in_.data() + header_bytes, head * sizeof(float));
    merge(op, head_payload, state.payload, head, replace, peer_first);
    merge(op, tail_in_.data(), state.payload + head, floats - head, replace, peer_first);
  }

  static void merge(Reduce op, const float* incoming, float* ours, std::size_t count, bool replace, bool peer_first) {
    if (replace) {
      std::copy_n(incoming, count, ours);
    } else if (peer_first) {
      combine(op, incoming, ours, ours, count);
    } else {
      combine(op, ours, incoming, ours, count);
    }
  }

  // The same pattern as doubling_all_reduce(), on the exchange state.
  void run_header_doubling(Exchange& state, Reduce op) {
    recursive_doubling(
        size_, rank_,
        [&](int even) {
          send_state(state, even);
          exchange_state(state, even, false, true, false, op);
        },
        [&](int odd) { exchange_state(state, odd, false, false, false, op); },
        [&](int partner, bool partner_first) { exchange_state(state, partner, true, false, partner_first, op); },
        [&](int odd) { send_state(state, odd); });
  }

  float divisor(Reduce op) const { return op == Reduce::avg ? static_cast<float>(size_) : 1.0f; }

  // The all-reduce's f32 working copy, made before the header exchange so that a small
  // one can travel with it.
  struct AllReduceWork {
    HostView out_view;
    float* data = nullptr;
    std::size_t count = 0;
    std::string algorithm;
  };

  AllReduceWork prepare_all_reduce(const Call& call) {
    AllReduceWork work;
    const DType dtype = call.in->dtype();
    work.count = static_cast<std::size_t>(call.in->numel());
    const bool in_place = call.in->buffer() == call.out->buffer() && call.in->offset() == call.out->offset();
    work.out_view = HostView(*call.out, in_place);
    // f32 reduces in the output itself; f16/bf16 partial sums travel as f32.
    work.data = dtype == DType::f32 ? static_cast<float*>(work.out_view.data()) : buffer(work_, work.count);
    if (!in_place || dtype != DType::f32) {
      HostView in_view(*call.in, true);
      to_f32(dtype, in_view.data(), work.data, work.count);
    }
    work.algorithm = all_reduce_algorithm(work.count * sizeof(float));  // partial sums travel as f32
    return work;
  }

  void finish_all_reduce(const Call& call, AllReduceWork& work, bool reduced) {
    const std::size_t count = work.count;
    float* data = work.data;
    if (reduced) {
      // done during the header exchange
    } else if (work.algorithm == "mpi") {
      MPI_Op mpi_op = call.op == Reduce::max ? MPI_MAX : call.op == Reduce::min ? MPI_MIN : MPI_SUM;
      check(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_FLOAT, mpi_op, comm_), "MPI_Allreduce");
    } else {
      MpiPointToPoint p2p(comm_, rank_, size_);
      if (work.algorithm == "ring") {
        ring_all_reduce(p2p, call.op, data, count, buffer(scratch_, ring_scratch_floats(count, size_)));
      } else {
        doubling_all_reduce(p2p, call.op, data, count, buffer(scratch_, count));
      }
    }
    from_f32(call.in->dtype(), data, work.out_view.data(), count, divisor(call.op));
    work.out_view.store(*call.out);
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
  std::vector<unsigned char> head_out_;
  std::vector<unsigned char> head_in_;
  std::vector<float> tail_in_;
};

}  // namespace

std::shared_ptr<CommunicatorImpl> make_mpi_communicator(const Device& device) {
  return std::make_shared<MpiRank>(device);
}

}  // namespace porta::detail

namespace porta {
bool Communicator::mpi_built() { return true; }
}  // namespace porta

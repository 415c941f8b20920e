// local_transport.cpp — collectives between ranks that are threads of one process.
// Every rank publishes host addresses of its tensors (the device's own memory for cpu
// devices, a staging copy for the others) and reads its peers' memory directly: a ring's
// n-1 steps collapse into one reduce-scatter pass and one all-gather pass, and no byte
// is copied that the result does not need.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "backends/backend.hpp"
#include "src/collectives/collective.hpp"
#include "src/collectives/p2p_algorithms.hpp"

namespace porta::detail {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// What one rank publishes for the call in progress.
struct Slot {
  CallHeader header;
  std::string problem;  // this rank's argument error, "" when none
  const void* in = nullptr;
  void* out = nullptr;
  const backend::Buffer* in_buffer = nullptr;
  const backend::Buffer* out_buffer = nullptr;
  bool out_in_host_memory = false;  // out is the device's own memory, not a staging copy
};

class LocalGroup {
 public:
  explicit LocalGroup(int size)
      : size_(size),
        // More ranks than cores: the rank waited for may be the one the spinning thread
        // keeps off its core (4000 pauses are ~200 us here), so yield at once.
        spins_(static_cast<unsigned>(size) > std::max(1u, std::thread::hardware_concurrency()) ? 0 : 4000),
        arrivals_(static_cast<std::size_t>(size)) {
    for (auto& slots : slots_) slots.resize(static_cast<std::size_t>(size));
  }
  int size() const { return size_; }

  // Two slot sets used by alternate calls: a rank may start call k+1 while a slower
  // one still reads the slots of call k, never call k+2.
  Slot& slot(std::uint64_t call, int rank) { return slots_[call & 1][static_cast<std::size_t>(rank)]; }

  // Every rank of the call has arrived once this returns.
  void arrive_and_wait(int rank, const std::string& op) {
    check_aborted(op);
    const std::uint64_t generation = generation_.load(std::memory_order_acquire);
    arrivals_[static_cast<std::size_t>(rank)].fetch_add(1, std::memory_order_relaxed);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == size_ - 1) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
      return;
    }
    wait_until(rank, op, [&] { return generation_.load(std::memory_order_acquire) != generation; });
  }

  // Spins briefly (ranks usually arrive within microseconds of each other), then yields,
  // then sleeps; fails when the group is aborted or the timeout passes.
  template <class Done>
  void wait_until(int rank, const std::string& op, Done done) {
    const auto start = std::chrono::steady_clock::now();
    const auto timeout = std::chrono::duration<double>(collective_timeout_seconds());
    for (std::uint64_t spin = 0;; ++spin) {
      if (done()) return;
      check_aborted(op);
      if (spin < spins_) {
        cpu_relax();
        continue;
      }
      if ((spin & 63) == 0) {
        auto waited = std::chrono::steady_clock::now() - start;
        if (waited > timeout) fail_timeout(rank, op);
        if (waited > std::chrono::milliseconds(2)) std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      std::this_thread::yield();
    }
  }

  // Point-to-point messages: a sender queues the address of its data, the receiver
  // copies from it and marks it delivered.
  struct Message {
    const float* data = nullptr;
    std::size_t count = 0;
    std::atomic<bool> delivered{false};
  };
  struct Mailbox {
    std::mutex mutex;
    std::deque<std::shared_ptr<Message>> queue;
  };
  Mailbox& mailbox(int from, int to) { return mailboxes_[static_cast<std::size_t>(from * size_ + to)]; }

  // How many parts of its input a staging rank has read from its device so far (parts
  // in the order staging_order() gives); size() when the input is all there.
  void set_parts_ready(int rank, int parts) {
    parts_ready_[static_cast<std::size_t>(rank)].store(parts, std::memory_order_release);
  }
  void wait_part_ready(int waiter, int owner, int position, const std::string& op) {
    auto& ready = parts_ready_[static_cast<std::size_t>(owner)];
    if (ready.load(std::memory_order_acquire) > position) return;
    wait_until(waiter, op, [&] { return ready.load(std::memory_order_acquire) > position; });
  }

  void abort(int rank, const std::string& reason) {
    std::lock_guard lock(mutex_);
    if (aborted_.load()) return;
    abort_reason_ = "rank " + std::to_string(rank) + " failed: " + reason;
    aborted_.store(true, std::memory_order_release);
  }

  void check_aborted(const std::string& op) {
    if (!aborted_.load(std::memory_order_acquire)) return;
    std::lock_guard lock(mutex_);
    throw Error(ErrorKind::backend_error, op + ": the local group was aborted: " + abort_reason_);
  }

 private:
  [[noreturn]] void fail_timeout(int rank, const std::string& op) {
    const std::uint64_t mine = arrivals_[static_cast<std::size_t>(rank)].load();
    std::string missing;
    for (int peer = 0; peer < size_; ++peer) {
      if (arrivals_[static_cast<std::size_t>(peer)].load() < mine) missing += (missing.empty() ? "" : ", ") + std::to_string(peer);
    }
    std::string reason = "timed out after " + std::to_string(collective_timeout_seconds()) +
                         " s ($PORTA_COLLECTIVE_TIMEOUT_S) waiting for rank(s) " + missing;
    abort(rank, reason);
    throw Error(ErrorKind::backend_error, op + ": rank " + std::to_string(rank) + " " + reason);
  }

  const int size_;
  const std::uint64_t spins_;
  alignas(64) std::atomic<int> arrived_{0};
  alignas(64) std::atomic<std::uint64_t> generation_{0};
  alignas(64) std::atomic<bool> aborted_{false};
  std::vector<std::atomic<std::uint64_t>> arrivals_;  // barriers each rank reached
  std::mutex mutex_;
  std::string abort_reason_;
  std::vector<Slot> slots_[2];
  std::vector<Mailbox> mailboxes_{static_cast<std::size_t>(size_) * static_cast<std::size_t>(size_)};
  std::vector<std::atomic<int>> parts_ready_ = std::vector<std::atomic<int>>(static_cast<std::size_t>(size_));
};

// A staging rank reads the part its right neighbour owns first and its own part last:
// peers start reducing while it still reads, and its own part is there when it needs it.
int staging_position(int rank, int part, int ranks) { return (part - rank - 1 + 2 * ranks) % ranks; }
int staging_part(int rank, int position, int ranks) { return (rank + 1 + position) % ranks; }

// Messages between the threads of one group, for the ring and doubling algorithms
// ($PORTA_ALLREDUCE_ALGO); the direct algorithm needs none.
class LocalPointToPoint final : public PointToPoint {
 public:
  LocalPointToPoint(LocalGroup& group, int rank, std::string op) : group_(group), rank_(rank), op_(std::move(op)) {}
  int rank() const override { return rank_; }
  int size() const override { return group_.size(); }

  Request start_send(int to, const float* data, std::size_t count) override {
    auto message = std::make_shared<LocalGroup::Message>();
    message->data = data;
    message->count = count;
    LocalGroup::Mailbox& box = group_.mailbox(rank_, to);
    {
      std::lock_guard lock(box.mutex);
      box.queue.push_back(message);
    }
    pending_.push_back({next_, true, to, nullptr, count, std::move(message), false});
    return next_++;
  }
  Request start_receive(int from, float* data, std::size_t count) override {
    pending_.push_back({next_, false, from, data, count, nullptr, false});
    return next_++;
  }
  void wait(Request request) override {
    auto found = std::find_if(pending_.begin(), pending_.end(), [&](const Pending& p) { return p.id == request; });
    group_.wait_until(rank_, op_, [&] {
      progress();
      return found->is_send ? found->message->delivered.load(std::memory_order_acquire) : found->done;
    });
    pending_.erase(found);
  }

 private:
  struct Pending {
    Request id;
    bool is_send;
    int peer;
    float* destination;
    std::size_t count;
    std::shared_ptr<LocalGroup::Message> message;
    bool done;
  };

  // Receives complete in the order they were started, each taking the oldest message.
  void progress() {
    std::array<int, 8> waiting_on{};  // sources whose earlier receive found nothing yet
    std::size_t waiting = 0;
    for (Pending& pending : pending_) {
      if (pending.is_send || pending.done) continue;
      if (std::find(waiting_on.begin(), waiting_on.begin() + static_cast<std::ptrdiff_t>(waiting), pending.peer) !=
          waiting_on.begin() + static_cast<std::ptrdiff_t>(waiting)) {
        continue;
      }
      LocalGroup::Mailbox& box = group_.mailbox(pending.peer, rank_);
      std::shared_ptr<LocalGroup::Message> message;
      {
        std::lock_guard lock(box.mutex);
        if (box.queue.empty()) {
          // A message arriving now belongs to this receive, not to a later one.
          if (waiting < waiting_on.size()) waiting_on[waiting++] = pending.peer;
          continue;
        }
        message = std::move(box.queue.front());
        box.queue.pop_front();
      }
      if (message->count != pending.count) {
        throw Error(ErrorKind::backend_error, op_ + ": rank " + std::to_string(rank_) + " expected " +
                                                  std::to_string(pending.count) + " floats from rank " +
                                                  std::to_string(pending.peer) + ", got " + std::to_string(message->count));
      }
      std::copy_n(message->data, message->count, pending.destination);
      message->delivered.store(true, std::memory_order_release);
      pending.done = true;
    }
  }

  LocalGroup& group_;
  const int rank_;
  const std::string op_;
  std::vector<Pending> pending_;  // few: at most four requests are in flight
  Request next_ = 1;
};

const unsigned char* bytes_at(const void* base, std::size_t element, std::size_t element_size) {
  return static_cast<const unsigned char*>(base) + element * element_size;
}
unsigned char* bytes_at(void* base, std::size_t element, std::size_t element_size) {
  return static_cast<unsigned char*>(base) + element * element_size;
}

class LocalRank final : public CommunicatorImpl {
 public:
  LocalRank(std::shared_ptr<LocalGroup> group, int rank, Device device)
      : CommunicatorImpl(std::move(device)), group_(std::move(group)), rank_(rank) {}

  int rank() const override { return rank_; }
  int size() const override { return group_->size(); }
  void abort(const std::string& reason) override { group_->abort(rank_, reason); }
  // Reading peers' memory directly beats every message-based algorithm in one process;
  // ring and doubling stay selectable to test and measure them without MPI.
  std::string all_reduce_algorithm(std::size_t) const override {
    std::string forced = forced_all_reduce_algorithm();
    return forced == "ring" || forced == "doubling" ? forced : "direct";
  }

  void run(const Call& call) override {
    const std::string op = collective_name(call.kind);
    const int n = group_->size();
    const std::uint64_t call_index = calls_++;
    Slot& mine = group_->slot(call_index, rank_);
    mine = Slot{header_of(call), local_problem(call, n, device())};

    HostView in_view;
    HostView out_view;
    const bool moves_data = call.kind != CollectiveKind::barrier && mine.problem.empty() && call.in->numel() > 0;
    // A broadcast reads only the root's tensor; everyone else's is overwritten.
    const bool reads_in = moves_data && (call.kind != CollectiveKind::broadcast || call.root == rank_);
    if (moves_data) {
      try {
        const bool in_place = call.in->buffer() == call.out->buffer() && call.in->offset() == call.out->offset();
        // Staged inputs are read from the device after the agreement, part by part.
        in_view = HostView(*call.in, false);
        group_->set_parts_ready(rank_, in_view.staged() && reads_in ? 0 : n);
        if (!in_place) out_view = HostView(*call.out, false);
        mine.in = in_view.data();
        mine.out = in_place ? in_view.data() : out_view.data();
        mine.out_in_host_memory = !(in_place ? in_view.staged() : out_view.staged());
        mine.in_buffer = call.in->buffer().get();
        mine.out_buffer = call.out->buffer().get();
      } catch (const std::exception& error) {
        mine.problem = error.what();
      }
    }

    group_->arrive_and_wait(rank_, op);  // every slot of this call is published
    check_agreement(call_index, call.kind);
    if (!moves_data) return;

    try {
      const bool in_place = mine.out == mine.in;
      if (in_view.staged() && reads_in) load_staged_input(call, in_view);
      HostView& written = in_place ? in_view : out_view;
      move_data(call, call_index, written);
      if (call.kind != CollectiveKind::all_reduce && !(call.kind == CollectiveKind::broadcast && call.root == rank_)) {
        written.store(*call.out);  // all_reduce stores part by part as they become final
      }
    } catch (const std::exception& error) {
      // Past the agreement the peers count on this rank: tell them it is gone.
      group_->abort(rank_, error.what());
      throw;
    }
  }

 private:
  // Every rank checks the same slots in the same way, so every rank throws or none does.
  void check_agreement(std::uint64_t call_index, CollectiveKind kind) {
    const int n = group_->size();
    for (int rank = 0; rank < n; ++rank) {
      const Slot& slot = group_->slot(call_index, rank);
      if (!slot.problem.empty()) {
        throw Error(ErrorKind::invalid_argument, collective_name(kind) + ": rank " + std::to_string(rank) + ": " + slot.problem);
      }
    }
    std::vector<CallHeader> headers;
    for (int rank = 0; rank < n; ++rank) headers.push_back(group_->slot(call_index, rank).header);
    for (const CallHeader& header : headers) {
      if (!(header == headers[0])) fail_disagreement(kind, headers);
    }
    // Two ranks writing one buffer would race.
    for (int a = 0; a < n; ++a) {
      const Slot& first = group_->slot(call_index, a);
      if (first.out_buffer == nullptr) continue;
      for (int b = 0; b < n; ++b) {
        const Slot& second = group_->slot(call_index, b);
        if (a != b && (first.out_buffer == second.out_buffer || first.out_buffer == second.in_buffer)) {
          throw Error(ErrorKind::invalid_argument, collective_name(kind) + ": ranks " + std::to_string(a) + " and " +
                                                       std::to_string(b) +
                                                       " pass the same storage; each rank needs tensors of its own");
        }
      }
    }
  }

  void load_staged_input(const Call& call, HostView& view) {
    const int n = group_->size();
    const std::size_t element = size_of(call.in->dtype());
    const std::size_t count = static_cast<std::size_t>(call.in->numel());
    if (call.kind != CollectiveKind::all_reduce && call.kind != CollectiveKind::reduce_scatter) {
      view.load(*call.in, 0, count * element);
      group_->set_parts_ready(rank_, n);
      return;
    }
    for (int position = 0; position < n; ++position) {
      const int part = staging_part(rank_, position, n);
      const std::size_t begin = part_begin(count, n, part);
      view.load(*call.in, begin * element, (part_begin(count, n, part + 1) - begin) * element);
      group_->set_parts_ready(rank_, position + 1);
    }
  }

  void move_data(const Call& call, std::uint64_t call_index, HostView& written) {
    const std::string op = collective_name(call.kind);
    const int n = group_->size();
    const DType dtype = call.in->dtype();
    const std::size_t element = size_of(dtype);
    const Slot& mine = group_->slot(call_index, rank_);
    auto peer = [&](int rank) -> const Slot& { return group_->slot(call_index, rank); };
    std::vector<const void*> sources(static_cast<std::size_t>(n));

    switch (call.kind) {
      case CollectiveKind::all_reduce: {
        const std::size_t count = static_cast<std::size_t>(call.in->numel());
        if (std::string algorithm = all_reduce_algorithm(count * element); algorithm != "direct") {
          message_all_reduce(call, mine, algorithm);
          written.store(*call.out);
          break;
        }
        // Reduce-scatter: this rank owns one part and reduces it from every rank's input.
        // Only the owner reads part r of any input, so writing it in place is safe.
        const std::size_t begin = part_begin(count, n, rank_);
        const std::size_t length = part_begin(count, n, rank_ + 1) - begin;
        for (int q = 0; q < n; ++q) {
          group_->wait_part_ready(rank_, q, staging_position(q, rank_, n), op);
          sources[q] = bytes_at(peer(q).in, begin, element);
        }
        bool every_out_in_host_memory = true;
        for (int q = 0; q < n; ++q) every_out_in_host_memory = every_out_in_host_memory && peer(q).out_in_host_memory;
        if (every_out_in_host_memory) {
          // Every output is plain memory: the owner writes its reduced part into all of
          // them while it is still in cache, and nobody reads a peer's output back.
          std::vector<void*> outs(static_cast<std::size_t>(n));
          for (int q = 0; q < n; ++q) outs[q] = bytes_at(peer(q).out, begin, element);
          reduce_to_all(dtype, call.op, sources.data(), n, outs.data(), length, count * element);
          break;
        }
        reduce_sources(dtype, call.op, sources.data(), n, bytes_at(mine.out, begin, element), length);
        written.store(*call.out, begin * element, length * element);  // overlaps the peers' reductions
        group_->arrive_and_wait(rank_, op);
        // All-gather: copy every other owner's finished part.
        for (int q = 0; q < n; ++q) {
          if (q == rank_) continue;
          const std::size_t from = part_begin(count, n, q);
          const std::size_t bytes = (part_begin(count, n, q + 1) - from) * element;
          std::memcpy(bytes_at(mine.out, from, element), bytes_at(peer(q).out, from, element), bytes);
          written.store(*call.out, from * element, bytes);
        }
        break;
      }
      case CollectiveKind::reduce_scatter: {
        const std::size_t part = static_cast<std::size_t>(call.out->numel());
        for (int q = 0; q < n; ++q) {
          group_->wait_part_ready(rank_, q, staging_position(q, rank_, n), op);
          sources[q] = bytes_at(peer(q).in, part * static_cast<std::size_t>(rank_), element);
        }
        reduce_sources(dtype, call.op, sources.data(), n, mine.out, part);
        break;
      }
      case CollectiveKind::all_gather: {
        const std::size_t part = static_cast<std::size_t>(call.in->numel());
        for (int q = 0; q < n; ++q) {
          group_->wait_part_ready(rank_, q, n - 1, op);
          std::memcpy(bytes_at(mine.out, part * static_cast<std::size_t>(q), element), peer(q).in, part * element);
        }
        break;
      }
      case CollectiveKind::broadcast:
        if (rank_ != call.root) {
          group_->wait_part_ready(rank_, call.root, n - 1, op);
          std::memcpy(mine.out, peer(call.root).in, call.in->nbytes());
        }
        break;
      case CollectiveKind::barrier: break;
    }
    // Nobody may reuse its tensors while a peer still reads them.
    group_->arrive_and_wait(rank_, op);
  }

  // Through f32 messages, as the MPI transport does.
  void message_all_reduce(const Call& call, const Slot& mine, const std::string& algorithm) {
    const int n = group_->size();
    const std::size_t count = static_cast<std::size_t>(call.in->numel());
    std::vector<float> work(count);
    to_f32(call.in->dtype(), mine.in, work.data(), count);
    LocalPointToPoint p2p(*group_, rank_, collective_name(call.kind));
    if (algorithm == "ring") {
      std::vector<float> scratch(ring_scratch_floats(count, n));
      ring_all_reduce(p2p, call.op, work.data(), count, scratch.data());
    } else {
      std::vector<float> scratch(count);
      doubling_all_reduce(p2p, call.op, work.data(), count, scratch.data());
    }
    from_f32(call.in->dtype(), work.data(), mine.out, count, call.op == Reduce::avg ? static_cast<float>(n) : 1.0f);
  }

  std::shared_ptr<LocalGroup> group_;
  const int rank_;
  std::uint64_t calls_ = 0;
};

}  // namespace

std::vector<std::shared_ptr<CommunicatorImpl>> make_local_group(const std::vector<Device>& devices) {
  auto group = std::make_shared<LocalGroup>(static_cast<int>(devices.size()));
  std::vector<std::shared_ptr<CommunicatorImpl>> ranks;
  for (std::size_t rank = 0; rank < devices.size(); ++rank) {
    ranks.push_back(std::make_shared<LocalRank>(group, static_cast<int>(rank), devices[rank]));
  }
  return ranks;
}

}  // namespace porta::detail

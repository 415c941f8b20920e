// p2p_algorithms.cpp — ring and recursive-doubling all-reduce over PointToPoint.
#include "src/collectives/p2p_algorithms.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

#include "src/collectives/collective.hpp"

namespace porta::detail {

namespace {

// 1 MiB segments: large enough that each message's rendezvous is amortised, small
// enough that a segment's reduction overlaps the next one's transfer. (Open MPI shared
// memory, 2 processes: 1 MiB segments gave 1.0-1.4x MPI_Allreduce's busbw at 16 MiB
// where 256 KiB gave 0.7x and 64 KiB 0.5-0.7x; noisy, two runs each.)
constexpr std::size_t segment_target_floats = 256 * 1024;

std::size_t segments_per_part(std::size_t count, int ranks) {
  const std::size_t largest = (count + static_cast<std::size_t>(ranks) - 1) / static_cast<std::size_t>(ranks);
  return std::max<std::size_t>(1, (largest + segment_target_floats - 1) / segment_target_floats);
}

struct Range {
  std::size_t begin;
  std::size_t length;
};

Range part(std::size_t count, int parts, int index) {
  std::size_t begin = part_begin(count, parts, index);
  return {begin, part_begin(count, parts, index + 1) - begin};
}

// Segment k of a part: every rank cuts every part into the same number of segments, so
// sender and receiver agree on each message's size.
Range segment(Range whole, std::size_t segments, std::size_t k) {
  std::size_t begin = whole.length * k / segments;
  std::size_t end = whole.length * (k + 1) / segments;
  return {whole.begin + begin, end - begin};
}

}  // namespace

std::size_t ring_scratch_floats(std::size_t count, int ranks) {
  const std::size_t largest = (count + static_cast<std::size_t>(ranks) - 1) / static_cast<std::size_t>(ranks);
  const std::size_t segments = segments_per_part(count, ranks);
  return 2 * ((largest + segments - 1) / segments);
}

void ring_reduce_scatter(PointToPoint& p2p, Reduce op, float* data, std::size_t count, float* scratch) {
  const int n = p2p.size();
  const int r = p2p.rank();
  if (n == 1) return;
  const int right = (r + 1) % n;
  const int left = (r + n - 1) % n;
  const std::size_t segments = segments_per_part(count, n);
  const std::size_t capacity = ring_scratch_floats(count, n) / 2;
  float* incoming[2] = {scratch, scratch + capacity};
  // Step s sends the part finished in step s-1 and adds the left neighbour's partial of
  // the next; after n-1 steps part r has passed through every rank.
  for (int step = 0; step < n - 1; ++step) {
    const Range send_part = part(count, n, (r - step - 1 + 2 * n) % n);
    const Range receive_part = part(count, n, (r - step - 2 + 2 * n) % n);
    PointToPoint::Request sends[2] = {0, 0};
    PointToPoint::Request receives[2] = {0, 0};
    auto start = [&](std::size_t k) {
      Range out = segment(send_part, segments, k);
      Range in = segment(receive_part, segments, k);
      receives[k & 1] = p2p.start_receive(left, incoming[k & 1], in.length);
      sends[k & 1] = p2p.start_send(right, data + out.begin, out.length);
    };
    start(0);
    for (std::size_t k = 0; k < segments; ++k) {
      if (k + 1 < segments) {
        if (k >= 1) p2p.wait(sends[(k + 1) & 1]);  // at most two segments in flight each way
        start(k + 1);
      }
      p2p.wait(receives[k & 1]);
      Range in = segment(receive_part, segments, k);
      combine(op, incoming[k & 1], data + in.begin, data + in.begin, in.length);
    }
    p2p.wait(sends[(segments - 1) & 1]);
    if (segments > 1) p2p.wait(sends[segments & 1]);
  }
}

std::string cheaper_all_reduce(int ranks, std::size_t bytes) {
  if (ranks <= 1) return "doubling";
  // Fitted on Open MPI shared memory, 2 processes (tools/allreduce-sim fit): about 5 us per
  // message, 1 GB/s per link, reductions at 4 GB/s. At 2 ranks doubling wins up to the
  // 64 KiB that ride in the header exchange (measured there: doubling 0.93x MPI_Allreduce,
  // ring 0.88x); at more ranks the crossover moves up as the ring's 2(p-1) messages add up.
  constexpr double alpha = 5e-6;
  constexpr double beta = 1.0 / 1e9;
  constexpr double gamma = 1.0 / 4e9;
  const double p = ranks;
  const double n = static_cast<double>(bytes);
  const double ring = 2 * (p - 1) * alpha + 2 * (p - 1) / p * n * beta + (p - 1) / p * n * gamma;
  const int power = static_cast<int>(std::bit_floor(static_cast<unsigned>(ranks)));
  const double steps = std::log2(static_cast<double>(power)) + (power != ranks ? 2 : 0);
  const double header = steps * alpha;
  const double doubling = steps * (alpha + n * beta + n * gamma) + (bytes > header_payload_bytes ? header : 0);
  return ring + header < doubling ? "ring" : "doubling";
}

void ring_all_reduce(PointToPoint& p2p, Reduce op, float* data, std::size_t count, float* scratch) {
  const int n = p2p.size();
  const int r = p2p.rank();
  if (n == 1) return;
  ring_reduce_scatter(p2p, op, data, count, scratch);
  const int right = (r + 1) % n;
  const int left = (r + n - 1) % n;
  for (int step = 0; step < n - 1; ++step) {
    const Range send_part = part(count, n, (r - step + n) % n);
    const Range receive_part = part(count, n, (r - step - 1 + n) % n);
    auto receive = p2p.start_receive(left, data + receive_part.begin, receive_part.length);
    auto send = p2p.start_send(right, data + send_part.begin, send_part.length);
    p2p.wait(receive);
    p2p.wait(send);
  }
}

void doubling_all_reduce(PointToPoint& p2p, Reduce op, float* data, std::size_t count, float* scratch) {
  recursive_doubling(
      p2p.size(), p2p.rank(),
      [&](int even) {  // hand the data over, get the result back
        p2p.wait(p2p.start_send(even, data, count));
        p2p.wait(p2p.start_receive(even, data, count));
      },
      [&](int odd) {
        p2p.wait(p2p.start_receive(odd, scratch, count));
        combine(op, data, scratch, data, count);  // lower rank first
      },
      [&](int partner, bool partner_first) {
        auto receive = p2p.start_receive(partner, scratch, count);
        auto send = p2p.start_send(partner, data, count);
        p2p.wait(receive);
        p2p.wait(send);
        if (partner_first) {
          combine(op, scratch, data, data, count);
        } else {
          combine(op, data, scratch, data, count);
        }
      },
      [&](int odd) { p2p.wait(p2p.start_send(odd, data, count)); });
}

}  // namespace porta::detail

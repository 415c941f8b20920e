// p2p_algorithms.hpp — all-reduce algorithms over point-to-point messages (ring and
// recursive doubling), shared by the MPI transport and the local one's message mode.
#pragma once

#include <bit>

#include <cstddef>
#include <cstdint>
#include <string>

#include "porta/communicator.hpp"

namespace porta::detail {

// Non-blocking point-to-point messages of f32 between the ranks of one group. Messages
// between two ranks arrive in the order they were started; a buffer may be reused once
// the request that named it has been waited for.
class PointToPoint {
 public:
  using Request = std::uint64_t;
  virtual ~PointToPoint() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual Request start_send(int to, const float* data, std::size_t count) = 0;
  virtual Request start_receive(int from, float* data, std::size_t count) = 0;
  virtual void wait(Request request) = 0;
};

// Ring: reduce-scatter then all-gather in n-1 steps each, every step cut into segments
// so that the reduction of one segment overlaps the transfer of the next. Each part is
// reduced along one fixed path and then copied, so every rank ends with the same bits.
// `scratch` holds 2 * segment_floats(count, n) floats.
void ring_all_reduce(PointToPoint& p2p, Reduce op, float* data, std::size_t count, float* scratch);
// Ring reduce-scatter alone: afterwards part rank() (of n near-equal parts of `count`)
// of `data` holds the reduction; the other parts hold partial sums.
void ring_reduce_scatter(PointToPoint& p2p, Reduce op, float* data, std::size_t count, float* scratch);
std::size_t ring_scratch_floats(std::size_t count, int ranks);

// Recursive doubling's message pattern on any rank count, written once for the data and
// for the MPI transport's header exchange. With `power` the largest power of two <= n and
// extra = n - power, the first 2*extra ranks fold in pairs: the odd one hands its data to
// the even one (hand_over(even)) and gets the result back at the end; the even one takes
// it in (absorb(odd)), joins the power-of-two exchanges (exchange(partner, partner_first):
// the lower half's partial goes first, so both partners compute the same bits), then
// hands the result back (hand_back(odd)).
template <class HandOver, class Absorb, class Exchange, class HandBack>
void recursive_doubling(int n, int r, HandOver&& hand_over, Absorb&& absorb, Exchange&& exchange,
                        HandBack&& hand_back) {
  if (n == 1) return;
  const int power = static_cast<int>(std::bit_floor(static_cast<unsigned>(n)));
  const int extra = n - power;
  int virtual_rank = r - extra;
  if (r < 2 * extra) {
    if (r % 2 == 1) {
      hand_over(r - 1);
      return;
    }
    absorb(r + 1);
    virtual_rank = r / 2;
  }
  auto real_rank = [extra](int v) { return v < extra ? 2 * v : v + extra; };
  for (int mask = 1; mask < power; mask <<= 1) {
    const int partner_virtual = virtual_rank ^ mask;
    exchange(real_rank(partner_virtual), partner_virtual < virtual_rank);
  }
  if (r < 2 * extra) hand_back(r + 1);
}

// Recursive doubling: log2(n) full exchanges (plus one fold in and one out for the ranks
// beyond the largest power of two). Latency-optimal for small messages. Both partners
// combine lower rank first, so they compute the same bits. `scratch` holds `count` floats.
void doubling_all_reduce(PointToPoint& p2p, Reduce op, float* data, std::size_t count, float* scratch);

// "ring" or "doubling", whichever the alpha-beta model (docs/collectives.md) predicts
// faster for `bytes` per rank on `ranks` ranks, with alpha, beta and gamma fitted to
// MPI runs on one host; tools/allreduce-sim evaluates the same formulas, less the
// header term. `bytes` are the f32 bytes that travel. The MPI transport's header exchange
// is counted: it takes
// the doubling's message pattern, and a doubling of up to header_payload_bytes travels
// inside it at no extra round.
std::string cheaper_all_reduce(int ranks, std::size_t bytes);
inline constexpr std::size_t header_payload_bytes = std::size_t(64) << 10;

// Part `part` of `parts` near-equal parts of `count` elements starts here.
inline std::size_t part_begin(std::size_t count, int parts, int part) {
  return count * static_cast<std::size_t>(part) / static_cast<std::size_t>(parts);
}

}  // namespace porta::detail

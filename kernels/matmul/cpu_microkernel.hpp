// cpu_microkernel.hpp — the register-blocked f32 microkernel of the cpu matmul, chosen
// at run time by cpu feature; the cpu attention kernels multiply with it too.
#pragma once

#include <cstddef>

namespace porta::kernels::cpu {

// Where a microkernel puts its MR x NR block of sum over p < kc of a[p][..] x b[p][..]
// (a and b packed sliver by sliver: MR values of A, then NR values of B, per step of k):
// into an f32 C tile directly, c = alpha * acc + c_scale * c (c_scale 0: C is not read)
// + bias (when not null), or, when c is null, into `acc` for the generic store.
// next_b, when not null, is the B sliver the caller will pass next: the SIMD kernels
// fetch it into L1 a row per step, as the rows of this call's sliver fall out of use.
struct TileOutput {
  float* c;
  std::size_t ldc;
  float alpha;
  float c_scale;
  const float* bias;
  float* acc;
  const float* next_b = nullptr;
};
using Microkernel = void (*)(std::size_t kc, const float* a, const float* b, const TileOutput& out);

// A microkernel and the cache blocks that suit it.
struct MicrokernelShape {
  static constexpr std::size_t max_mr = 16, max_nr = 64;  // what packing leaves room for
  std::size_t mr, nr;      // register block
  std::size_t kc, mc, nc;  // cache blocks: mc x kc of A in L2, each kc x nr sliver of B reused by mc / mr microkernels
  std::size_t chunk;       // columns of C per task (a task: mc rows x chunk columns), a multiple of nr,
                           // unless the row blocks alone feed the threads (then a task spans nc)
  Microkernel kernel;
};
// The matmul's microkernel for this cpu and the cache blocks that suit it.
const MicrokernelShape& cpu_microkernel();
// The attention's: the same kernel family with an mr that divides 48 (its query and key
// blocks are multiples of it); 12 rows where the matmul's AVX-512 kernel has 14.
const MicrokernelShape& cpu_attention_microkernel();

}  // namespace porta::kernels::cpu

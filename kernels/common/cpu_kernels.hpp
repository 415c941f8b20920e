// cpu_kernels.hpp — entry points of the cpu kernels (kernels/<op>/cpu.cpp). They see raw
// buffers and the shared params structs; the cpu backend calls them inside its oneTBB
// task_arena, so their parallel loops use that arena's threads.
#pragma once

#include "attention/params.h"
#include "copy_cast/params.h"
#include "elementwise/params.h"
#include "fill/params.h"
#include "matmul/params.h"
#include "random/params.h"
#include "reduce/params.h"
#include "softmax/params.h"

namespace porta::kernels::cpu {

void fill(void* out, const FillParams& params);
void copy_cast(const void* in, void* out, const CopyCastParams& params);
void elementwise(const void* a, const void* b, void* out, const ElementwiseParams& params);
void random(void* out, const RandomParams& params);
void reduce_sum(const void* in, void* out, const ReduceParams& params);

// kernels/matmul/cpu_naive.cpp: the reference loop, kept beside the fast one.
void matmul_naive(const void* a, const void* b, const void* bias, void* c, const MatmulParams& params);
// kernels/matmul/cpu_packed.cpp: packed, cache-blocked, SIMD microkernel chosen at run time.
void matmul_packed(const void* a, const void* b, const void* bias, void* c, const MatmulParams& params);

// kernels/attention/cpu.cpp: fused attention, forward (O and LSE) and backward.
void attention_forward(const void* q, const void* k, const void* v, void* o, void* lse, const AttentionParams& params);
void attention_backward(const void* q, const void* k, const void* v, const void* o, const void* lse,
                        const void* grad_o, void* dq, void* dk, void* dv, const AttentionParams& params);
// The most working memory those use at once (for the device's allocation accounting).
std::size_t attention_scratch_bytes(const AttentionParams& params, bool backward, std::size_t threads);
// kernels/softmax/cpu.cpp: the middle step of unfused attention.
void softmax_rows(const void* in, void* out, void* lse, const SoftmaxParams& params);

}  // namespace porta::kernels::cpu

// cpu_kernels.hpp — entry points of the cpu kernels (kernels/<op>/cpu.cpp). They see raw
// buffers and the shared params structs; the cpu backend calls them inside its oneTBB
// task_arena, so their parallel loops use that arena's threads.
#pragma once

#include "copy_cast/params.h"
#include "elementwise/params.h"
#include "fill/params.h"
#include "matmul/params.h"
#include "random/params.h"
#include "reduce/params.h"

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

}  // namespace porta::kernels::cpu

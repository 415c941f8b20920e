// cpu_naive.cpp — the simple matmul on the cpu: one dot product per output element,
// parallel over rows. The reference the fast kernel is measured against.
#include <tbb/parallel_for.h>

#include "common/cpu_access.hpp"
#include "common/cpu_kernels.hpp"
#include "common/gelu.h"

namespace porta::kernels::cpu {

void matmul_naive(const void* a, const void* b, const void* bias, void* c, const MatmulParams& p) {
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, std::size_t(p.batch) * p.m), [&](const auto& rows) {
    for (std::size_t row = rows.begin(); row != rows.end(); ++row) {
      const std::size_t z = row / p.m;
      const std::size_t i = row % p.m;
      const std::size_t a_base = p.a_offset + z * p.batch_stride_a;
      const std::size_t b_base = p.b_offset + z * p.batch_stride_b;
      const std::size_t c_row = p.c_offset + z * p.batch_stride_c + i * p.ldc;
      for (std::size_t j = 0; j < p.n; ++j) {
        float acc = 0.0f;
        for (std::size_t q = 0; q < p.k; ++q) {
          std::size_t a_index = a_base + (p.trans_a ? q * p.lda + i : i * p.lda + q);
          std::size_t b_index = b_base + (p.trans_b ? j * p.ldb + q : q * p.ldb + j);
          acc += load_float(a, p.ab_dtype, a_index) * load_float(b, p.ab_dtype, b_index);
        }
        float value = p.alpha * acc;
        if (p.beta != 0.0f) value += p.beta * load_float(c, p.c_dtype, c_row + j);
        if (p.has_bias) value += load_float(bias, p.bias_dtype, p.bias_offset + j);
        if (p.epilogue == PORTA_EPILOGUE_GELU) value = porta_gelu(value);
        store_float(c, p.c_dtype, c_row + j, value);
      }
    }
  });
}

}  // namespace porta::kernels::cpu

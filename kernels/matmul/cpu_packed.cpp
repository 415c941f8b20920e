// cpu_packed.cpp — placeholder while the packed kernel is written.
#include "common/cpu_kernels.hpp"

namespace porta::kernels::cpu {
void matmul_packed(const void* a, const void* b, const void* bias, void* c, const MatmulParams& params) {
  matmul_naive(a, b, bias, c, params);
}
}  // namespace porta::kernels::cpu

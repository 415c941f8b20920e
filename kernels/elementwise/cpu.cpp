// cpu.cpp — elementwise add, mul and axpby on the cpu, f32 arithmetic for every dtype.
#include <tbb/parallel_for.h>

#include "common/cpu_access.hpp"
#include "common/cpu_kernels.hpp"

namespace porta::kernels::cpu {

namespace {

template <uint Op>
float apply(float a, float b, float alpha, float beta) {
  if constexpr (Op == PORTA_ELEMENTWISE_ADD) return a + b;
  if constexpr (Op == PORTA_ELEMENTWISE_MUL) return a * b;
  if constexpr (Op == PORTA_ELEMENTWISE_GELU) return porta_gelu(a);
  if constexpr (Op == PORTA_ELEMENTWISE_GELU_BACKWARD) return a * porta_gelu_derivative(b);
  return alpha * a + beta * b;
}

template <uint Op>
void run(const void* a, const void* b, void* out, const ElementwiseParams& p) {
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, p.count, 1 << 14), [&](const auto& range) {
    if (p.dtype == PORTA_DTYPE_F32) {  // the common case, left to the compiler to vectorise
      const float* x = static_cast<const float*>(a) + p.a_offset;
      const float* y = static_cast<const float*>(b) + p.b_offset;
      float* z = static_cast<float*>(out) + p.out_offset;
      for (std::size_t i = range.begin(); i != range.end(); ++i) z[i] = apply<Op>(x[i], y[i], p.alpha, p.beta);
      return;
    }
    for (std::size_t i = range.begin(); i != range.end(); ++i) {
      float value = apply<Op>(load_float(a, p.dtype, p.a_offset + i), load_float(b, p.dtype, p.b_offset + i),
                              p.alpha, p.beta);
      store_float(out, p.dtype, p.out_offset + i, value);
    }
  });
}

}  // namespace

void elementwise(const void* a, const void* b, void* out, const ElementwiseParams& params) {
  switch (params.op) {
    case PORTA_ELEMENTWISE_ADD: return run<PORTA_ELEMENTWISE_ADD>(a, b, out, params);
    case PORTA_ELEMENTWISE_MUL: return run<PORTA_ELEMENTWISE_MUL>(a, b, out, params);
    case PORTA_ELEMENTWISE_GELU: return run<PORTA_ELEMENTWISE_GELU>(a, b, out, params);
    case PORTA_ELEMENTWISE_GELU_BACKWARD: return run<PORTA_ELEMENTWISE_GELU_BACKWARD>(a, b, out, params);
    default: return run<PORTA_ELEMENTWISE_AXPBY>(a, b, out, params);
  }
}

}  // namespace porta::kernels::cpu

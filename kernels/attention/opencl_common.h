// opencl_common.h — masks, row addressing and a vector exp2 shared by the OpenCL attention kernels.
#ifndef PORTA_KERNELS_ATTENTION_OPENCL_COMMON_H
#define PORTA_KERNELS_ATTENTION_OPENCL_COMMON_H
#include "attention/params.h"
#include "common/opencl_access.h"
#include "common/portable.h"

#define PORTA_AT_CAT_(a, b) a##b
#define PORTA_AT_CAT(a, b) PORTA_AT_CAT_(a, b)
#define PORTA_LOG2E 1.4426950408889634f
#define PORTA_LN2 0.6931471805599453f

// The head dimension is a compile-time constant: every accumulator loop unrolls.
#ifndef PORTA_D
#define PORTA_D 64
#endif

// The last key query i may see (bottom-right causal alignment), as a signed index; -1 or
// less: none.
PORTA_FN int porta_at_last_key(struct AttentionParams p, uint i) {
  int last = (int)p.nk - 1;
  if (p.causal != 0u) last = min(last, (int)i + (int)p.nk - (int)p.nq);
  return last;
}

// Where row i of operand `which` (0: q, 1: k, 2: v) of head h of batch b starts.
PORTA_FN size_t porta_at_row(struct AttentionParams p, uint which, uint b, uint h, uint i) {
  if (which == 0u) return (size_t)p.q_offset + (size_t)b * p.q_stride_b + (size_t)h * p.q_stride_h + (size_t)i * p.q_stride_n;
  if (which == 1u) return (size_t)p.k_offset + (size_t)b * p.k_stride_b + (size_t)h * p.k_stride_h + (size_t)i * p.k_stride_n;
  return (size_t)p.v_offset + (size_t)b * p.v_stride_b + (size_t)h * p.v_stride_h + (size_t)i * p.v_stride_n;
}

// 2^x for x <= 0 (or -inf), exactly 0 below -127: a degree-6 fit of 2^f on [0, 1)
// (relative error 2.6e-9) times the exponent built from bits. Plain arithmetic, so it
// stays in vector registers where the builtin exp2 may call a scalar routine per lane.
#define PORTA_AT_EXP2(NAME, T, INT_T, CONVERT, AS_FLOAT)                       \
  PORTA_FN T NAME(T x) {                                                       \
    x = fmax(x, (T)(-127.0f));                                                 \
    T whole = floor(x);                                                        \
    T f = x - whole;                                                           \
    T poly = (T)(2.1877516482e-04f);                                           \
    poly = fma(poly, f, (T)(1.2387831469e-03f));                               \
    poly = fma(poly, f, (T)(9.6845774790e-03f));                               \
    poly = fma(poly, f, (T)(5.5480429144e-02f));                               \
    poly = fma(poly, f, (T)(2.4023050092e-01f));                               \
    poly = fma(poly, f, (T)(6.9314692887e-01f));                               \
    poly = fma(poly, f, (T)(1.0000000026e+00f));                               \
    return AS_FLOAT((CONVERT(whole) + (INT_T)(127)) << 23) * poly;             \
  }

PORTA_AT_EXP2(porta_at_exp2, float, int, convert_int, as_float)

#endif

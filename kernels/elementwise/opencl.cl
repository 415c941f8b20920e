// opencl.cl — elementwise add, mul, axpby, gelu and its backward in OpenCL C, f32 arithmetic for every dtype.
#include "elementwise/params.h"

PORTA_FN float porta_apply(uint op, float a, float b, float alpha, float beta) {
  if (op == PORTA_ELEMENTWISE_ADD) return a + b;
  if (op == PORTA_ELEMENTWISE_MUL) return a * b;
  if (op == PORTA_ELEMENTWISE_GELU) return porta_gelu(a);
  if (op == PORTA_ELEMENTWISE_GELU_BACKWARD) return a * porta_gelu_derivative(b);
  return alpha * a + beta * b;
}

// One element per work-item; op and dtype are uniform branches on the params.
__kernel void porta_elementwise(__global const uchar* a, __global const uchar* b, __global uchar* out,
                                struct ElementwiseParams p) {
  uint i = (uint)get_global_id(0);
  if (i >= p.count) return;
  if (p.dtype == PORTA_DTYPE_F16 || p.dtype == PORTA_DTYPE_BF16) {
    float x = porta_bits_to_float(((__global const ushort*)a)[p.a_offset + i], p.dtype);
    float y = porta_bits_to_float(((__global const ushort*)b)[p.b_offset + i], p.dtype);
    ((__global ushort*)out)[p.out_offset + i] = (ushort)porta_float_to_bits(porta_apply(p.op, x, y, p.alpha, p.beta), p.dtype);
  } else {
    float x = ((__global const float*)a)[p.a_offset + i];
    float y = ((__global const float*)b)[p.b_offset + i];
    ((__global float*)out)[p.out_offset + i] = porta_apply(p.op, x, y, p.alpha, p.beta);
  }
}

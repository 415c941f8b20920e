// opencl.cl — the masked, scaled row softmax with log-sum-exp (the middle step of unfused
// attention): one work-item per row, three passes over it (max, sum, write).
#include "common/portable.h"
#include "softmax/params.h"

__kernel void porta_softmax_rows(__global const float* in, __global float* out, __global float* lse,
                                 struct SoftmaxParams p) {
  uint r = (uint)get_global_id(0);
  if (r >= p.rows) return;
  __global const float* x = in + p.in_offset + (size_t)r * p.n;
  __global float* y = out + p.out_offset + (size_t)r * p.n;
  int last = p.causal != 0u ? (int)(r % p.nq) + (int)p.n - (int)p.nq : (int)p.n - 1;
  uint visible = (uint)clamp(last + 1, 0, (int)p.n);
  float maximum = -INFINITY;
  for (uint j = 0; j < visible; ++j) maximum = fmax(maximum, p.scale * x[j]);
  float total = 0.0f;
  for (uint j = 0; j < visible; ++j) total += exp(p.scale * x[j] - maximum);
  float log_total = visible > 0u ? maximum + log(total) : -INFINITY;
  for (uint j = 0; j < p.n; ++j) y[j] = j < visible ? exp(p.scale * x[j] - log_total) : 0.0f;
  lse[p.lse_offset + r] = log_total;
}

// vulkan.comp — the naive Vulkan matmul: one invocation per element of C, a plain dot
// product in f32; the reference the fast shaders are checked against (handles k == 0).
#version 450
#extension GL_GOOGLE_include_directive : require
#if PORTA_STORAGE16
#extension GL_EXT_shader_16bit_storage : require
#endif
#include "matmul/vulkan_matmul.glsl"

layout(local_size_x_id = 0) in;

void main() {
  // x strides over the m * n elements of one matrix (it fits 32 bits: the front end
  // checks C's last index does), z over the batch.
  const uint count = p.m * p.n;
  const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  for (uint z = gl_WorkGroupID.z; z < p.batch; z += gl_NumWorkGroups.z) {
    const uint a_base = p.a_offset + z * p.batch_stride_a;
    const uint b_base = p.b_offset + z * p.batch_stride_b;
    const uint c_base = p.c_offset + z * p.batch_stride_c;
    for (uint e = gl_GlobalInvocationID.x; e < count; e += stride) {
      const uint i = e / p.n;
      const uint j = e % p.n;
      float acc = 0.0f;
      for (uint q = 0u; q < p.k; ++q) {
        const uint a_index = a_base + (p.trans_a != 0u ? q * p.lda + i : i * p.lda + q);
        const uint b_index = b_base + (p.trans_b != 0u ? j * p.ldb + q : q * p.ldb + j);
        acc += load_a(a_index, p.ab_dtype) * load_b(b_index, p.ab_dtype);
      }
      store_result(c_base + i * p.ldc + j, j, acc);
    }
  }
}

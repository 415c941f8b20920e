// ops.hpp — the operations on tensors. Each returns a new contiguous tensor on the
// device of its inputs and runs asynchronously on that device's queue.
#pragma once

#include <cstdint>

#include "porta/export.h"
#include "porta/tensor.hpp"

namespace porta {

// A tensor of `shape` with every element equal to value (converted to dtype).
PORTA_API Tensor full(const Shape& shape, double value, DType dtype, const Device& device);
PORTA_API Tensor zeros(const Shape& shape, DType dtype, const Device& device);

// Counter-based random tensors: element i is a function of (seed, offset + i) alone, so
// the same arguments give bit-identical tensors on every device. Pass offset + numel
// as the next offset to continue one stream.
PORTA_API Tensor uniform(const Shape& shape, DType dtype, const Device& device, std::uint64_t seed,
               std::uint64_t offset = 0, float low = 0.0f, float high = 1.0f);
PORTA_API Tensor randn(const Shape& shape, DType dtype, const Device& device, std::uint64_t seed,
             std::uint64_t offset = 0, float mean = 0.0f, float stddev = 1.0f);

// Elementwise on two tensors of one shape, dtype and device (f32, f16, bf16; f32 math).
PORTA_API Tensor add(const Tensor& a, const Tensor& b);
PORTA_API Tensor mul(const Tensor& a, const Tensor& b);
PORTA_API Tensor axpby(float alpha, const Tensor& a, float beta, const Tensor& b);  // alpha*a + beta*b
PORTA_API Tensor gelu(const Tensor& x);                                   // GPT-2's tanh approximation
PORTA_API Tensor gelu_backward(const Tensor& grad, const Tensor& x);      // grad * gelu'(x)

// Copy with a change of dtype (f32, f16, bf16), strided input, contiguous output.
PORTA_API Tensor cast(const Tensor& x, DType dtype);

// Sum of all elements (a rank-0 tensor) or along one dimension (removed from the
// shape); f32 accumulation in a fixed order, so repeated runs give the same bits.
PORTA_API Tensor sum(const Tensor& x);
PORTA_API Tensor sum(const Tensor& x, int dim);

}  // namespace porta

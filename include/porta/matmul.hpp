// matmul.hpp — C = epilogue(alpha · op(A) · op(B) + beta · C + bias), batched, and its
// backward for training.
#pragma once

#include <optional>
#include <string>

#include "porta/export.h"
#include "porta/tensor.hpp"

namespace porta {

enum class Epilogue { none, gelu };  // gelu: GPT-2's tanh approximation

struct MatmulOptions {
  bool trans_a = false;  // use A^T: A is [.., K, M]
  bool trans_b = false;  // use B^T: B is [.., N, K]
  float alpha = 1.0f;
  float beta = 0.0f;    // only with matmul_into: scales the output's previous contents
  Tensor bias;          // optional, [N]: one value per output column, added before the epilogue
  Epilogue epilogue = Epilogue::none;
  std::optional<DType> out_dtype;  // f32 or the operands' dtype; default: the operands' dtype
  std::string kernel = "auto";     // "auto" (the device's best), "naive", or a backend's kernel name
};

// Operands are [M, K] / [K, N] (before the transposes), or batched [batch, ., .]; a batch
// of 1 (or a rank-2 operand) is broadcast over the other operand's batch. Any view
// whose last two dimensions have one unit stride works without a copy (a transposed
// view is read as the transpose); others are copied first. f32, f16 and bf16 operands
// (same dtype for A and B) accumulate in f32. Returns a new contiguous [batch?, M, N].
PORTA_API Tensor matmul(const Tensor& a, const Tensor& b, const MatmulOptions& options = {});

// The same into an existing output (its rows may be strided; columns contiguous),
// which beta scales; c must not overlap a, b or the bias.
PORTA_API void matmul_into(Tensor& c, const Tensor& a, const Tensor& b, const MatmulOptions& options = {});

// Names of the matmul kernels `device` offers, its preferred first ("naive" among them).
PORTA_API std::vector<std::string> matmul_kernels(const Device& device);

struct MatmulGradients {
  Tensor da;     // like a (same shape, and transposed layout when trans_a)
  Tensor db;     // like b; summed over the batch when b was broadcast
  Tensor dbias;  // [N] when the forward had a bias, else undefined
};

// Backward of matmul(a, b, options) (beta must be 0) given the gradient of its output:
// recomputes the pre-activation when the epilogue is gelu, then dA, dB and dbias with
// the same matmul kernels and a column-sum reduction. Gradients are in the operands'
// dtype (f32 accumulation).
PORTA_API MatmulGradients matmul_backward(const Tensor& grad_out, const Tensor& a, const Tensor& b,
                                const MatmulOptions& options = {});

}  // namespace porta

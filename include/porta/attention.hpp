// attention.hpp — fused, memory-frugal scaled dot-product attention, forward and
// backward (FlashAttention-2's scheme: tiled online softmax, recomputation backward).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "porta/export.h"
#include "porta/tensor.hpp"

namespace porta {

struct AttentionOptions {
  // Query i sees keys j <= i + Nk - Nq (aligned to the bottom right when Nq != Nk, as
  // FlashAttention 2.1 and later). A query that sees no key (possible when Nq > Nk)
  // gets an output row of zeros, LSE -inf, and zero gradients.
  bool causal = false;
  std::optional<float> scale;  // default 1 / sqrt(D)
  // "auto" (the device's best fused kernel), a backend's kernel name, or "unfused": the
  // three-step reference (scores, softmax, weighted sum) built from porta's matmul,
  // which holds the N x N scores and exists as a baseline.
  std::string kernel = "auto";
};

struct AttentionOutput {
  Tensor out;  // [B, Hq, Nq, D], the dtype of q
  Tensor lse;  // [B, Hq, Nq], f32: log-sum-exp of each row of scaled scores, for the backward
};

// q: [B, Hq, Nq, D]; k, v: [B, Hkv, Nk, D] with Hq a multiple of Hkv (grouped and
// multi-query attention: query head h reads key/value head h / (Hq / Hkv)). Views with a
// unit stride along D work without a copy (a [B, N, H, D] buffer permuted to
// [B, H, N, D]). D is 32, 64, 80, 96 or 128; f32, f16 or bf16 with f32 accumulation.
// Extra memory is O(B * H * N), never the N x N scores (except kernel "unfused").
PORTA_API AttentionOutput attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options = {});

struct AttentionGradients {
  Tensor dq;  // like q
  Tensor dk;  // like k, summed over the query heads that share it
  Tensor dv;  // like v, the same
};

// Gradients given dO and the forward's out and lse; recomputes the probabilities block
// by block.
PORTA_API AttentionGradients attention_backward(const Tensor& grad_out, const Tensor& q, const Tensor& k, const Tensor& v,
                                      const AttentionOutput& forward, const AttentionOptions& options = {});

// The fused attention kernels `device` offers, preferred first ("unfused" always works
// where matmul does).
PORTA_API std::vector<std::string> attention_kernels(const Device& device);

}  // namespace porta

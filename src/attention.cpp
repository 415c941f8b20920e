// attention.cpp — the attention front end: argument checks, strided views handed to the
// kernels without copies, the fused kernels' dispatch, and the unfused baseline built
// from porta's own matmul and row softmax.
#include "porta/attention.hpp"

#include <cmath>
#include <limits>

#include "backends/backend.hpp"
#include "porta/matmul.hpp"
#include "porta/ops.hpp"
#include "src/shape.hpp"

namespace porta {

namespace {

using detail::fail;
using kernels::uint;
constexpr std::string_view forward_op = "porta::attention";
constexpr std::string_view backward_op = "porta::attention_backward";
constexpr std::int64_t head_dims[] = {32, 64, 80, 96, 128};

// A [B, H, N, D] operand whose D stride is 1; others are copied first.
Tensor unit_stride_d(const Tensor& x) { return x.shape()[3] == 1 || x.strides()[3] == 1 ? x : x.contiguous(); }

void check_operands(std::string_view op, const Tensor& q, const Tensor& k, const Tensor& v) {
  for (auto [name, tensor] : {std::pair{"q", &q}, std::pair{"k", &k}, std::pair{"v", &v}}) {
    if (!tensor->defined()) fail(ErrorKind::invalid_argument, op, name, "expected a tensor, got an undefined one");
    if (tensor->rank() != 4) {
      fail(ErrorKind::invalid_argument, op, name, "expected [batch, heads, length, head_dim], got shape " +
                                                      to_string(tensor->shape()));
    }
    if (!(tensor->device() == q.device())) {
      fail(ErrorKind::invalid_argument, op, name, "expected a tensor on " + q.device().id() + " like q, got " +
                                                      tensor->device().id());
    }
    if (tensor->dtype() != q.dtype()) {
      fail(ErrorKind::invalid_argument, op, name, "expected dtype " + std::string(to_string(q.dtype())) +
                                                      " like q, got " + std::string(to_string(tensor->dtype())));
    }
  }
  if (!is_floating(q.dtype())) {
    fail(ErrorKind::unsupported, op, "q", "expected f32, f16 or bf16, got " + std::string(to_string(q.dtype())));
  }
  if (k.shape() != v.shape()) {
    fail(ErrorKind::invalid_argument, op, "v", "expected shape " + to_string(k.shape()) + " like k, got " +
                                                   to_string(v.shape()));
  }
  if (k.shape()[0] != q.shape()[0]) {
    fail(ErrorKind::invalid_argument, op, "k", "expected batch " + std::to_string(q.shape()[0]) + " like q, got " +
                                                   std::to_string(k.shape()[0]));
  }
  if (k.shape()[3] != q.shape()[3]) {
    fail(ErrorKind::invalid_argument, op, "k", "expected head_dim " + std::to_string(q.shape()[3]) + " like q, got " +
                                                   std::to_string(k.shape()[3]));
  }
  if (k.shape()[1] == 0 || q.shape()[1] % k.shape()[1] != 0) {
    fail(ErrorKind::invalid_argument, op, "k", "expected a number of heads dividing q's " +
                                                   std::to_string(q.shape()[1]) + ", got " + std::to_string(k.shape()[1]));
  }
  const std::int64_t d = q.shape()[3];
  if (std::find(std::begin(head_dims), std::end(head_dims), d) == std::end(head_dims)) {
    fail(ErrorKind::unsupported, op, "q", "expected head_dim 32, 64, 80, 96 or 128, got " + std::to_string(d));
  }
}

float scale_of(const Tensor& q, const AttentionOptions& options) {
  return options.scale.value_or(1.0f / std::sqrt(static_cast<float>(q.shape()[3])));
}

kernels::AttentionParams params_of(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
  kernels::AttentionParams p{};
  p.batch = static_cast<uint>(q.shape()[0]);
  p.heads_q = static_cast<uint>(q.shape()[1]);
  p.heads_kv = static_cast<uint>(k.shape()[1]);
  p.nq = static_cast<uint>(q.shape()[2]);
  p.nk = static_cast<uint>(k.shape()[2]);
  p.d = static_cast<uint>(q.shape()[3]);
  p.causal = options.causal ? 1u : 0u;
  p.dtype = static_cast<uint>(q.dtype());
  p.scale = scale_of(q, options);
  auto set = [](const Tensor& x, uint& offset, uint& b, uint& h, uint& n) {
    offset = static_cast<uint>(x.offset());
    b = static_cast<uint>(x.strides()[0]);
    h = static_cast<uint>(x.strides()[1]);
    n = static_cast<uint>(x.strides()[2]);
  };
  set(q, p.q_offset, p.q_stride_b, p.q_stride_h, p.q_stride_n);
  set(k, p.k_offset, p.k_stride_b, p.k_stride_h, p.k_stride_n);
  set(v, p.v_offset, p.v_stride_b, p.v_stride_h, p.v_stride_n);
  return p;
}

std::string fused_kernel(std::string_view op, const Device& device, const std::string& requested) {
  std::vector<std::string> available = device.impl().attention_kernels();
  if (available.empty()) {
    throw Error(ErrorKind::unsupported, std::string(op) + ": " + device.id() + " has no fused attention kernel yet");
  }
  if (requested == "auto") return available.front();
  if (std::find(available.begin(), available.end(), requested) != available.end()) return requested;
  std::string names = "auto, unfused";
  for (const auto& name : available) names += ", " + name;
  fail(ErrorKind::invalid_argument, op, "options.kernel",
       "expected one of " + names + " on " + device.id() + ", got '" + requested + "'");
}

// scores = Q K^T, P = softmax(scale * scores) with the mask, O = P V: three steps, the
// N x N matrices in memory. Query heads of one group share their K/V head by reshaping
// Q to [B * Hkv, G * Nq, D].
AttentionOutput attention_unfused(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
  const Device& device = q.device();
  if (!device.impl().has_softmax_rows()) {
    throw Error(ErrorKind::unsupported, std::string(forward_op) + ": " + device.id() + " has no softmax kernel yet");
  }
  const std::int64_t batch = q.shape()[0], heads_q = q.shape()[1], heads_kv = k.shape()[1];
  const std::int64_t nq = q.shape()[2], nk = k.shape()[2], d = q.shape()[3], group = heads_q / heads_kv;
  Tensor queries = q.contiguous().reshape({batch * heads_kv, group * nq, d});
  Tensor keys = k.contiguous().reshape({batch * heads_kv, nk, d});
  Tensor values = v.contiguous().reshape({batch * heads_kv, nk, d});
  MatmulOptions scores_options;
  scores_options.trans_b = true;
  scores_options.out_dtype = DType::f32;
  Tensor scores = matmul(queries, keys, scores_options);
  Tensor probabilities = Tensor::empty(scores.shape(), DType::f32, device);
  Tensor lse = Tensor::empty({batch, heads_q, nq}, DType::f32, device);
  kernels::SoftmaxParams softmax{};
  softmax.rows = static_cast<uint>(batch * heads_q * nq);
  softmax.n = static_cast<uint>(nk);
  softmax.nq = static_cast<uint>(nq);
  softmax.causal = options.causal ? 1u : 0u;
  softmax.scale = scale_of(q, options);
  device.impl().softmax_rows(*scores.buffer(), *probabilities.buffer(), *lse.buffer(), softmax);
  Tensor out = matmul(probabilities, values.dtype() == DType::f32 ? values : values.to(DType::f32));
  if (q.dtype() != DType::f32) out = out.to(q.dtype());
  return {out.reshape({batch, heads_q, nq, d}), lse};
}

}  // namespace

std::vector<std::string> attention_kernels(const Device& device) {
  std::vector<std::string> names = device.impl().attention_kernels();
  names.push_back("unfused");
  return names;
}

AttentionOutput attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const AttentionOptions& options) {
  check_operands(forward_op, q_in, k_in, v_in);
  const Tensor q = unit_stride_d(q_in), k = unit_stride_d(k_in), v = unit_stride_d(v_in);
  const Device& device = q.device();
  const std::int64_t batch = q.shape()[0], heads_q = q.shape()[1], nq = q.shape()[2], d = q.shape()[3];
  if (options.kernel == "unfused") {
    if (q.numel() == 0 || k.numel() == 0) {
      return {zeros(q.shape(), q.dtype(), device),
              full({batch, heads_q, nq}, -std::numeric_limits<double>::infinity(), DType::f32, device)};
    }
    return attention_unfused(q, k, v, options);
  }
  const std::string kernel = fused_kernel(forward_op, device, options.kernel);
  if (q.numel() == 0 || k.numel() == 0) {  // no query, or no key to see: zeros and -inf
    return {zeros(q.shape(), q.dtype(), device),
            full({batch, heads_q, nq}, -std::numeric_limits<double>::infinity(), DType::f32, device)};
  }
  AttentionOutput result{Tensor::empty({batch, heads_q, nq, d}, q.dtype(), device),
                         Tensor::empty({batch, heads_q, nq}, DType::f32, device)};
  device.impl().attention_forward(*q.buffer(), *k.buffer(), *v.buffer(), *result.out.buffer(), *result.lse.buffer(),
                                  params_of(q, k, v, options), kernel);
  return result;
}

AttentionGradients attention_backward(const Tensor& grad_out, const Tensor& q_in, const Tensor& k_in,
                                      const Tensor& v_in, const AttentionOutput& forward,
                                      const AttentionOptions& options) {
  check_operands(backward_op, q_in, k_in, v_in);
  const Tensor q = unit_stride_d(q_in), k = unit_stride_d(k_in), v = unit_stride_d(v_in);
  const Device& device = q.device();
  for (auto [name, tensor] : {std::pair{"grad_out", &grad_out}, std::pair{"forward.out", &forward.out}}) {
    if (!tensor->defined() || tensor->shape() != q.shape() || tensor->dtype() != q.dtype() ||
        !(tensor->device() == device)) {
      fail(ErrorKind::invalid_argument, backward_op, name,
           "expected " + std::string(to_string(q.dtype())) + to_string(q.shape()) + " on " + device.id() + " like q, got " +
               (tensor->defined() ? tensor->describe() : std::string("an undefined tensor")));
    }
  }
  const Shape lse_shape{q.shape()[0], q.shape()[1], q.shape()[2]};
  if (!forward.lse.defined() || forward.lse.shape() != lse_shape || forward.lse.dtype() != DType::f32 ||
      !(forward.lse.device() == device)) {
    fail(ErrorKind::invalid_argument, backward_op, "forward.lse",
         "expected f32" + to_string(lse_shape) + " on " + device.id() + ", got " +
             (forward.lse.defined() ? forward.lse.describe() : std::string("an undefined tensor")));
  }
  if (options.kernel == "unfused") {
    fail(ErrorKind::unsupported, backward_op, "options.kernel",
         "the unfused baseline has no backward; use auto or a fused kernel");
  }
  const std::string kernel = fused_kernel(backward_op, device, options.kernel);
  if (q.numel() == 0 || k.numel() == 0) {
    return {zeros(q.shape(), q.dtype(), device), zeros(k.shape(), k.dtype(), device), zeros(v.shape(), v.dtype(), device)};
  }
  AttentionGradients gradients{Tensor::empty(q.shape(), q.dtype(), device), Tensor::empty(k.shape(), k.dtype(), device),
                               Tensor::empty(v.shape(), v.dtype(), device)};
  // The kernels read out, grad_out and lse as contiguous tensors starting at element 0.
  auto packed = [](const Tensor& x) { return x.is_contiguous() && x.offset() == 0 ? x : cast(x, x.dtype()); };
  const Tensor out = packed(forward.out), grad = packed(grad_out), lse = packed(forward.lse);
  device.impl().attention_backward(*q.buffer(), *k.buffer(), *v.buffer(), *out.buffer(), *lse.buffer(), *grad.buffer(),
                                   *gradients.dq.buffer(), *gradients.dk.buffer(), *gradients.dv.buffer(),
                                   params_of(q, k, v, options), kernel);
  return gradients;
}

}  // namespace porta

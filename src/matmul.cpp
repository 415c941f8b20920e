// matmul.cpp — the matmul front end: operand layouts (views read without copies),
// batch broadcasting, argument checks, kernel choice, and the backward pass built from
// the same kernels.
#include "porta/matmul.hpp"

#include <algorithm>
#include <limits>

#include "backends/backend.hpp"
#include "porta/ops.hpp"
#include "src/shape.hpp"

namespace porta {

namespace {

using detail::fail;
using kernels::uint;
constexpr std::string_view forward_op = "porta::matmul";

// One operand as the kernel sees it: a row-major matrix (or a batch of them) with a
// leading dimension, transposed or not.
struct Operand {
  Tensor tensor;             // the view actually passed (a copy when the layout needed one)
  bool transposed = false;   // op(X) = X^T
  std::int64_t rows = 0;     // of op(X)
  std::int64_t cols = 0;     // of op(X)
  std::int64_t ld = 0;
  std::int64_t batch = 1;
  std::int64_t batch_stride = 0;  // 0: broadcast
};

// Reads a [.., R, C] view as op(X) = X (trans false) or X^T (trans true). A view whose
// rows are contiguous is used as is; one whose columns are contiguous is the transpose
// of a row-major matrix, so it is used as is with the transpose flag flipped.
Operand resolve(std::string_view argument, const Tensor& x, bool trans) {
  if (x.rank() != 2 && x.rank() != 3) {
    fail(ErrorKind::invalid_argument, forward_op, argument,
         "expected a matrix [rows, cols] or a batch [batch, rows, cols], got shape " + to_string(x.shape()));
  }
  Operand operand;
  const int r = x.rank();
  const std::int64_t R = x.shape()[r - 2], C = x.shape()[r - 1];
  const std::int64_t row_stride = R == 1 ? C : x.strides()[r - 2];
  const std::int64_t col_stride = C == 1 ? 1 : x.strides()[r - 1];
  Tensor view = x;
  bool stored_transposed = false;  // stored matrix is X^T in row-major
  std::int64_t ld = 0;
  if (col_stride == 1 && row_stride >= C) {
    ld = std::max<std::int64_t>(row_stride, 1);
  } else if (R > 1 && C > 1 && x.strides()[r - 2] == 1 && x.strides()[r - 1] >= R) {
    stored_transposed = true;
    ld = x.strides()[r - 1];
  } else {
    view = x.contiguous();
    ld = std::max<std::int64_t>(C, 1);
  }
  operand.tensor = view;
  operand.transposed = trans != stored_transposed;
  operand.ld = ld;
  operand.rows = trans ? C : R;
  operand.cols = trans ? R : C;
  if (r == 3) {
    operand.batch = x.shape()[0];
    operand.batch_stride = operand.batch == 1 ? 0 : view.strides()[0];
  }
  return operand;
}

void check_fits(std::string_view argument, std::int64_t last_index) {
  if (last_index > std::numeric_limits<uint>::max()) {
    fail(ErrorKind::unsupported, forward_op, argument,
         "its last element is at index " + std::to_string(last_index) + ", beyond 32-bit kernel indexing");
  }
}

// Last element index touched by a [batch, rows, cols] matrix with leading dimension ld.
std::int64_t last_index(std::int64_t offset, std::int64_t batch, std::int64_t batch_stride, std::int64_t stored_rows,
                        std::int64_t stored_cols, std::int64_t ld) {
  return offset + (batch - 1) * batch_stride + (stored_rows - 1) * ld + stored_cols - 1;
}

bool overlaps(const Tensor& x, const Tensor& y) {
  if (x.numel() == 0 || y.numel() == 0 || x.buffer() != y.buffer()) return false;
  auto span = [](const Tensor& t) {
    std::int64_t last = t.offset();
    for (int d = 0; d < t.rank(); ++d) last += (t.shape()[d] - 1) * t.strides()[d];
    return std::pair(t.offset(), last);
  };
  auto [x_first, x_last] = span(x);
  auto [y_first, y_last] = span(y);
  return x_first <= y_last && y_first <= x_last;
}

std::string choose_kernel(const Device& device, const std::string& requested) {
  std::vector<std::string> available = device.impl().matmul_kernels();
  if (requested == "auto") return available.front();
  if (std::find(available.begin(), available.end(), requested) != available.end()) return requested;
  std::string names;
  for (const auto& name : available) names += (names.empty() ? "" : ", ") + name;
  fail(ErrorKind::invalid_argument, forward_op, "options.kernel",
       "expected auto or one of " + names + " on " + device.id() + ", got '" + requested + "'");
}

DType output_dtype(const Tensor& a, const MatmulOptions& options) {
  DType out = options.out_dtype.value_or(a.dtype());
  if (out != DType::f32 && out != a.dtype()) {
    fail(ErrorKind::invalid_argument, forward_op, "options.out_dtype",
         "expected f32 or the operands' dtype " + std::string(to_string(a.dtype())) + ", got " +
             std::string(to_string(out)));
  }
  return out;
}

// Shape of op(A) · op(B) for these operands: [batch, M, N], or [M, N] for two matrices.
Shape output_shape(const Tensor& a, const Tensor& b, const Operand& opa, const Operand& opb) {
  std::int64_t batch = std::max(opa.batch, opb.batch);
  if (a.rank() == 3 || b.rank() == 3) return {batch, opa.rows, opb.cols};
  return {opa.rows, opb.cols};
}

}  // namespace

std::vector<std::string> matmul_kernels(const Device& device) { return device.impl().matmul_kernels(); }

void matmul_into(Tensor& c, const Tensor& a, const Tensor& b, const MatmulOptions& options) {
  for (auto [name, tensor] : {std::pair{"a", &a}, std::pair{"b", &b}, std::pair{"c", static_cast<const Tensor*>(&c)}}) {
    if (!tensor->defined()) fail(ErrorKind::invalid_argument, forward_op, name, "expected a tensor, got an undefined one");
    if (!(tensor->device() == a.device())) {
      fail(ErrorKind::invalid_argument, forward_op, name,
           "expected a tensor on " + a.device().id() + " like a, got " + tensor->device().id());
    }
  }
  if (!is_floating(a.dtype())) {
    fail(ErrorKind::unsupported, forward_op, "a", "expected f32, f16 or bf16, got " + std::string(to_string(a.dtype())));
  }
  if (b.dtype() != a.dtype()) {
    fail(ErrorKind::invalid_argument, forward_op, "b",
         "expected dtype " + std::string(to_string(a.dtype())) + " like a, got " + std::string(to_string(b.dtype())));
  }
  const DType out = output_dtype(a, options);
  if (c.dtype() != out) {
    fail(ErrorKind::invalid_argument, forward_op, "c",
         "expected dtype " + std::string(to_string(out)) + ", got " + std::string(to_string(c.dtype())));
  }
  const Device& device = a.device();
  if (auto reason = device.impl().declines(backend::Op::matmul, a.dtype())) {
    throw Error(ErrorKind::unsupported, std::string(forward_op) + ": " + device.id() + " cannot run it on " +
                                            std::string(to_string(a.dtype())) + ": " + *reason);
  }

  Operand opa = resolve("a", a, options.trans_a);
  Operand opb = resolve("b", b, options.trans_b);
  if (opa.cols != opb.rows) {
    fail(ErrorKind::invalid_argument, forward_op, "b",
         "expected op(b) to have " + std::to_string(opa.cols) + " rows, the columns of op(a) " +
             to_string({opa.rows, opa.cols}) + ", got op(b) " + to_string({opb.rows, opb.cols}));
  }
  if (opa.batch != opb.batch && opa.batch != 1 && opb.batch != 1) {
    fail(ErrorKind::invalid_argument, forward_op, "b",
         "expected a batch of " + std::to_string(opa.batch) + " or 1 like a, got " + std::to_string(opb.batch));
  }
  const Shape expected = output_shape(a, b, opa, opb);
  if (c.shape() != expected) {
    fail(ErrorKind::invalid_argument, forward_op, "c",
         "expected shape " + to_string(expected) + ", got " + to_string(c.shape()));
  }
  const std::int64_t batch = std::max(opa.batch, opb.batch);
  const std::int64_t M = opa.rows, N = opb.cols, K = opa.cols;
  const int cr = c.rank();
  if (N > 1 && c.strides()[cr - 1] != 1) {
    fail(ErrorKind::invalid_argument, forward_op, "c",
         "expected contiguous rows (unit column stride), got strides " + to_string(c.strides()));
  }
  const std::int64_t ldc = M == 1 ? N : c.strides()[cr - 2];
  if (ldc < N) {
    fail(ErrorKind::invalid_argument, forward_op, "c", "expected a row stride >= " + std::to_string(N) + ", got " +
                                                            std::to_string(ldc));
  }
  const Tensor& bias = options.bias;
  if (bias.defined()) {
    if (!(bias.device() == device)) {
      fail(ErrorKind::invalid_argument, forward_op, "options.bias",
           "expected a tensor on " + device.id() + ", got " + bias.device().id());
    }
    if (bias.shape() != Shape{N}) {
      fail(ErrorKind::invalid_argument, forward_op, "options.bias",
           "expected shape [" + std::to_string(N) + "] (one value per output column), got " + to_string(bias.shape()));
    }
    if (bias.dtype() != DType::f32 && bias.dtype() != a.dtype()) {
      fail(ErrorKind::invalid_argument, forward_op, "options.bias",
           "expected dtype f32 or " + std::string(to_string(a.dtype())) + ", got " + std::string(to_string(bias.dtype())));
    }
  }
  for (auto [name, input] : {std::pair{"a", &a}, std::pair{"b", &b}, std::pair{"options.bias", &bias}}) {
    if (input->defined() && overlaps(c, *input)) {
      fail(ErrorKind::invalid_argument, forward_op, "c", std::string("the output overlaps input ") + name);
    }
  }
  const std::string kernel = choose_kernel(device, options.kernel);
  if (c.numel() == 0) return;

  const Tensor bias_contiguous = bias.defined() ? bias.contiguous() : Tensor();
  check_fits("a", last_index(opa.tensor.offset(), opa.batch, opa.batch_stride, opa.transposed ? K : M,
                             opa.transposed ? M : K, opa.ld));
  check_fits("b", last_index(opb.tensor.offset(), opb.batch, opb.batch_stride, opb.transposed ? N : K,
                             opb.transposed ? K : N, opb.ld));
  const std::int64_t c_batch_stride = cr == 3 ? c.strides()[0] : 0;
  check_fits("c", last_index(c.offset(), batch, c_batch_stride, M, N, ldc));

  kernels::MatmulParams params{};
  params.m = static_cast<uint>(M);
  params.n = static_cast<uint>(N);
  params.k = static_cast<uint>(K);
  params.batch = static_cast<uint>(batch);
  params.trans_a = opa.transposed ? 1u : 0u;
  params.trans_b = opb.transposed ? 1u : 0u;
  params.lda = static_cast<uint>(opa.ld);
  params.ldb = static_cast<uint>(opb.ld);
  params.ldc = static_cast<uint>(ldc);
  params.a_offset = static_cast<uint>(opa.tensor.offset());
  params.b_offset = static_cast<uint>(opb.tensor.offset());
  params.c_offset = static_cast<uint>(c.offset());
  params.batch_stride_a = static_cast<uint>(opa.batch_stride);
  params.batch_stride_b = static_cast<uint>(opb.batch_stride);
  params.batch_stride_c = static_cast<uint>(c_batch_stride);
  params.ab_dtype = static_cast<uint>(a.dtype());
  params.c_dtype = static_cast<uint>(out);
  params.has_bias = bias.defined() ? 1u : 0u;
  params.bias_dtype = static_cast<uint>(bias.defined() ? bias.dtype() : out);
  params.bias_offset = bias.defined() ? static_cast<uint>(bias_contiguous.offset()) : 0u;
  params.epilogue = options.epilogue == Epilogue::gelu ? PORTA_EPILOGUE_GELU : PORTA_EPILOGUE_NONE;
  params.alpha = options.alpha;
  params.beta = options.beta;
  // K = 0 leaves nothing to multiply: only the naive kernels promise to handle it, and
  // A and B have no storage, so a one-element stand-in is bound that nothing reads.
  const std::string& chosen = K == 0 ? std::string("naive") : kernel;
  const Tensor stand_in = K == 0 ? zeros({1}, a.dtype(), device) : Tensor();
  device.impl().matmul(K == 0 ? *stand_in.buffer() : *opa.tensor.buffer(), K == 0 ? *stand_in.buffer() : *opb.tensor.buffer(),
                       bias.defined() ? bias_contiguous.buffer().get() : nullptr, *c.buffer(), params, chosen);
}


namespace {

// The shape of matmul(a, b, options)'s output, with the checks on the way that decide it
// (ranks, inner dimensions, batches): the backward has no output to take it from, and
// its own products would accept operands or a gradient of the wrong shape.
Shape forward_output_shape(std::string_view op, const Tensor& a, const Tensor& b, const MatmulOptions& options) {
  for (auto [name, tensor] : {std::pair{"a", &a}, std::pair{"b", &b}}) {
    if (!tensor->defined()) fail(ErrorKind::invalid_argument, op, name, "expected a tensor, got an undefined one");
    if (tensor->rank() != 2 && tensor->rank() != 3) {
      fail(ErrorKind::invalid_argument, op, name,
           "expected a matrix [rows, cols] or a batch [batch, rows, cols], got shape " + to_string(tensor->shape()));
    }
  }
  const int ra = a.rank(), rb = b.rank();
  const std::int64_t m = options.trans_a ? a.shape()[ra - 1] : a.shape()[ra - 2];
  const std::int64_t k = options.trans_a ? a.shape()[ra - 2] : a.shape()[ra - 1];
  const std::int64_t b_rows = options.trans_b ? b.shape()[rb - 1] : b.shape()[rb - 2];
  const std::int64_t n = options.trans_b ? b.shape()[rb - 2] : b.shape()[rb - 1];
  if (b_rows != k) {
    fail(ErrorKind::invalid_argument, op, "b",
         "expected op(b) to have " + std::to_string(k) + " rows, the columns of op(a) " + to_string({m, k}) +
             ", got op(b) " + to_string({b_rows, n}));
  }
  const std::int64_t batch_a = ra == 3 ? a.shape()[0] : 1, batch_b = rb == 3 ? b.shape()[0] : 1;
  if (batch_a != batch_b && batch_a != 1 && batch_b != 1) {
    fail(ErrorKind::invalid_argument, op, "b",
         "expected a batch of " + std::to_string(batch_a) + " or 1 like a, got " + std::to_string(batch_b));
  }
  return ra == 3 || rb == 3 ? Shape{std::max(batch_a, batch_b), m, n} : Shape{m, n};
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, const MatmulOptions& options) {
  if (options.beta != 0.0f) {
    fail(ErrorKind::invalid_argument, forward_op, "options.beta",
         "expected 0 for a new output (use matmul_into to scale an existing one), got " + std::to_string(options.beta));
  }
  const Shape shape = forward_output_shape(forward_op, a, b, options);
  Tensor c = Tensor::empty(shape, output_dtype(a, options), a.device());
  matmul_into(c, a, b, options);  // checks the rest: dtypes, devices, bias, kernel
  return c;
}

MatmulGradients matmul_backward(const Tensor& grad_out, const Tensor& a, const Tensor& b, const MatmulOptions& options) {
  constexpr std::string_view op = "porta::matmul_backward";
  if (options.beta != 0.0f) {
    fail(ErrorKind::invalid_argument, op, "options.beta", "expected 0 (the forward of a trained layer), got " +
                                                             std::to_string(options.beta));
  }
  // The forward's output shape, and the gradient's, must agree.
  const Shape output = forward_output_shape(op, a, b, options);
  if (!grad_out.defined()) fail(ErrorKind::invalid_argument, op, "grad_out", "expected a tensor, got an undefined one");
  if (grad_out.shape() != output) {
    fail(ErrorKind::invalid_argument, op, "grad_out",
         "expected shape " + to_string(output) + " like the forward's output, got " + to_string(grad_out.shape()));
  }
  Tensor grad = grad_out;
  if (options.epilogue == Epilogue::gelu) {
    MatmulOptions plain = options;
    plain.epilogue = Epilogue::none;
    plain.out_dtype = grad_out.dtype();
    grad = gelu_backward(grad, matmul(a, b, plain));  // recomputed: the forward saves only its inputs
  }
  const DType dtype = a.dtype();
  if (grad.dtype() != dtype) grad = grad.to(dtype);
  const bool batched = grad.rank() == 3;

  // Gradient of an operand that was broadcast over the batch: per-batch products in
  // f32, summed over the batch, then cast.
  auto reduce_broadcast = [&](const Tensor& operand, Tensor per_batch) {
    if (batched && (operand.rank() == 2 || operand.shape()[0] == 1)) {
      Tensor total = sum(per_batch, 0);
      if (operand.rank() == 3) total = total.reshape({1, total.shape()[0], total.shape()[1]});
      return total.dtype() == dtype ? total : total.to(dtype);
    }
    return per_batch.dtype() == dtype ? per_batch : per_batch.to(dtype);
  };
  auto needs_sum = [&](const Tensor& operand) { return batched && (operand.rank() == 2 || operand.shape()[0] == 1); };

  MatmulGradients gradients;
  MatmulOptions backward;
  backward.alpha = options.alpha;
  backward.kernel = options.kernel;

  // dA = alpha * dZ * op(B)^T, or its transpose when A was used transposed.
  backward.out_dtype = needs_sum(a) ? DType::f32 : dtype;
  if (!options.trans_a) {
    backward.trans_a = false;
    backward.trans_b = !options.trans_b;
    gradients.da = reduce_broadcast(a, matmul(grad, b, backward));
  } else {
    backward.trans_a = options.trans_b;
    backward.trans_b = true;
    gradients.da = reduce_broadcast(a, matmul(b, grad, backward));
  }
  // dB = alpha * op(A)^T * dZ, or its transpose when B was used transposed.
  backward.out_dtype = needs_sum(b) ? DType::f32 : dtype;
  if (!options.trans_b) {
    backward.trans_a = !options.trans_a;
    backward.trans_b = false;
    gradients.db = reduce_broadcast(b, matmul(a, grad, backward));
  } else {
    backward.trans_a = true;
    backward.trans_b = options.trans_a;
    gradients.db = reduce_broadcast(b, matmul(grad, a, backward));
  }
  if (options.bias.defined()) {
    Tensor rows = grad.contiguous().reshape({-1, grad.shape()[grad.rank() - 1]});
    gradients.dbias = sum(rows, 0);
    if (gradients.dbias.dtype() != options.bias.dtype()) gradients.dbias = gradients.dbias.to(options.bias.dtype());
  }
  return gradients;
}

}  // namespace porta

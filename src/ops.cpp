// ops.cpp — the front end of every op: argument checks, output allocation, and the
// launch on the device's backend.
#include "porta/ops.hpp"

#include <cmath>
#include <limits>

#include "backends/backend.hpp"
#include "src/shape.hpp"

namespace porta {

namespace {

using detail::fail;
using kernels::uint;

void check_defined(std::string_view op, std::string_view argument, const Tensor& x) {
  if (!x.defined()) fail(ErrorKind::invalid_argument, op, argument, "expected a tensor, got an undefined one");
}

void check_floating(std::string_view op, std::string_view argument, DType dtype) {
  if (!is_floating(dtype)) {
    fail(ErrorKind::unsupported, op, argument,
         "expected a floating dtype (f32, f16, bf16), got " + std::string(to_string(dtype)));
  }
}

void check_device_accepts(std::string_view op, const Device& device, backend::Op kind, DType dtype) {
  if (auto reason = device.impl().declines(kind, dtype)) {
    throw Error(ErrorKind::unsupported, std::string(op) + ": " + device.id() + " cannot run it on " +
                                            std::string(to_string(dtype)) + ": " + *reason);
  }
}

void check_same(std::string_view op, const Tensor& a, const Tensor& b) {
  if (!(a.device() == b.device())) {
    fail(ErrorKind::invalid_argument, op, "b", "expected a tensor on " + a.device().id() + " like a, got " + b.device().id());
  }
  if (a.dtype() != b.dtype()) {
    fail(ErrorKind::invalid_argument, op, "b",
         "expected dtype " + std::string(to_string(a.dtype())) + " like a, got " + std::string(to_string(b.dtype())));
  }
  if (a.shape() != b.shape()) {
    fail(ErrorKind::invalid_argument, op, "b", "expected shape " + to_string(a.shape()) + " like a, got " + to_string(b.shape()));
  }
}

uint as_uint(std::int64_t value) { return static_cast<uint>(value); }

Tensor elementwise(std::string_view op, uint code, float alpha, const Tensor& a, float beta, const Tensor& b) {
  check_defined(op, "a", a);
  check_defined(op, "b", b);
  check_same(op, a, b);
  check_floating(op, "a", a.dtype());
  check_device_accepts(op, a.device(), backend::Op::elementwise, a.dtype());
  Tensor x = a.contiguous();
  Tensor y = b.contiguous();
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  if (out.numel() == 0) return out;
  kernels::ElementwiseParams params{};
  params.count = as_uint(out.numel());
  params.op = code;
  params.dtype = static_cast<uint>(a.dtype());
  params.a_offset = as_uint(x.offset());
  params.b_offset = as_uint(y.offset());
  params.out_offset = 0;
  params.alpha = alpha;
  params.beta = beta;
  a.device().impl().elementwise(*x.buffer(), *y.buffer(), *out.buffer(), params);
  return out;
}

Tensor random(std::string_view op, const Shape& shape, DType dtype, const Device& device, std::uint64_t seed,
              std::uint64_t offset, uint distribution, float a, float b) {
  check_floating(op, "dtype", dtype);
  check_device_accepts(op, device, backend::Op::random, dtype);
  Tensor out = Tensor::empty(shape, dtype, device);
  if (out.numel() == 0) return out;
  kernels::RandomParams params{};
  params.count = as_uint(out.numel());
  params.dtype = static_cast<uint>(dtype);
  params.distribution = distribution;
  params.seed_lo = static_cast<uint>(seed);
  params.seed_hi = static_cast<uint>(seed >> 32);
  params.counter_lo = static_cast<uint>(offset);
  params.counter_hi = static_cast<uint>(offset >> 32);
  params.a = a;
  params.b = b;
  device.impl().random(*out.buffer(), params);
  return out;
}

// Sums each row of a contiguous [rows, n] tensor into out (rows elements, dtype of out).
// Long rows are cut into pieces summed in parallel, then the pieces are summed.
void sum_rows(const Tensor& in, std::int64_t rows, std::int64_t n, Tensor& out) {
  constexpr std::int64_t piece = 8192;
  backend::Device& device = in.device().impl();
  kernels::ReduceParams params{};
  params.rows = as_uint(rows);
  params.in_dtype = static_cast<uint>(in.dtype());
  params.out_dtype = static_cast<uint>(out.dtype());
  params.in_offset = as_uint(in.offset());
  params.out_offset = 0;
  params.n = as_uint(n);
  if (n <= piece) {
    params.chunk = as_uint(n);
    params.chunks = 1;
    device.reduce_sum(*in.buffer(), *out.buffer(), params);
    return;
  }
  std::int64_t pieces = (n + piece - 1) / piece;
  Tensor partial = Tensor::empty({rows, pieces}, DType::f32, in.device());
  params.chunk = as_uint(piece);
  params.chunks = as_uint(pieces);
  params.out_dtype = static_cast<uint>(DType::f32);
  device.reduce_sum(*in.buffer(), *partial.buffer(), params);
  sum_rows(partial, rows, pieces, out);
}

std::uint32_t value_bits(std::string_view op, double value, DType dtype) {
  switch (dtype) {
    case DType::f32: return porta_as_uint(static_cast<float>(value));
    case DType::f16: return float_to_half_bits(static_cast<float>(value));
    case DType::bf16: return float_to_bfloat16_bits(static_cast<float>(value));
    case DType::i32:
      if (!(value == std::floor(value) && value >= std::numeric_limits<std::int32_t>::min() &&
            value <= std::numeric_limits<std::int32_t>::max())) {
        fail(ErrorKind::invalid_argument, op, "value", "expected an integer in the i32 range, got " + std::to_string(value));
      }
      return static_cast<std::uint32_t>(static_cast<std::int32_t>(value));
  }
  return 0;
}

}  // namespace

Tensor full(const Shape& shape, double value, DType dtype, const Device& device) {
  constexpr std::string_view op = "porta::full";
  std::uint32_t bits = value_bits(op, value, dtype);
  check_device_accepts(op, device, backend::Op::fill, dtype);
  Tensor out = Tensor::empty(shape, dtype, device);
  if (out.numel() == 0) return out;
  kernels::FillParams params{};
  params.count = as_uint(out.numel());
  params.dtype = static_cast<uint>(dtype);
  params.out_offset = 0;
  params.value_bits = bits;
  device.impl().fill(*out.buffer(), params);
  return out;
}

Tensor zeros(const Shape& shape, DType dtype, const Device& device) { return full(shape, 0.0, dtype, device); }

Tensor uniform(const Shape& shape, DType dtype, const Device& device, std::uint64_t seed, std::uint64_t offset,
               float low, float high) {
  if (!(low < high) || !std::isfinite(high - low)) {
    fail(ErrorKind::invalid_argument, "porta::uniform", "low, high",
         "expected finite low < high, got " + std::to_string(low) + ", " + std::to_string(high));
  }
  return random("porta::uniform", shape, dtype, device, seed, offset, PORTA_RANDOM_UNIFORM, low, high);
}

Tensor randn(const Shape& shape, DType dtype, const Device& device, std::uint64_t seed, std::uint64_t offset,
             float mean, float stddev) {
  if (!(stddev >= 0.0f) || !std::isfinite(stddev) || !std::isfinite(mean)) {
    fail(ErrorKind::invalid_argument, "porta::randn", "stddev",
         "expected finite mean and stddev >= 0, got " + std::to_string(mean) + ", " + std::to_string(stddev));
  }
  return random("porta::randn", shape, dtype, device, seed, offset, PORTA_RANDOM_NORMAL, mean, stddev);
}

Tensor add(const Tensor& a, const Tensor& b) { return elementwise("porta::add", PORTA_ELEMENTWISE_ADD, 1, a, 1, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return elementwise("porta::mul", PORTA_ELEMENTWISE_MUL, 1, a, 1, b); }
Tensor axpby(float alpha, const Tensor& a, float beta, const Tensor& b) {
  return elementwise("porta::axpby", PORTA_ELEMENTWISE_AXPBY, alpha, a, beta, b);
}

Tensor gelu(const Tensor& x) { return elementwise("porta::gelu", PORTA_ELEMENTWISE_GELU, 1, x, 0, x); }
Tensor gelu_backward(const Tensor& grad, const Tensor& x) {
  return elementwise("porta::gelu_backward", PORTA_ELEMENTWISE_GELU_BACKWARD, 1, grad, 1, x);
}

Tensor cast(const Tensor& x, DType dtype) {
  constexpr std::string_view op = "porta::cast";
  check_defined(op, "x", x);
  if (x.dtype() != dtype && !(is_floating(x.dtype()) && is_floating(dtype))) {
    fail(ErrorKind::unsupported, op, "dtype",
         "expected a conversion between floating dtypes (f32, f16, bf16), got " + std::string(to_string(x.dtype())) +
             " to " + std::string(to_string(dtype)));
  }
  check_device_accepts(op, x.device(), backend::Op::copy_cast, x.dtype());
  check_device_accepts(op, x.device(), backend::Op::copy_cast, dtype);
  Tensor out = Tensor::empty(x.shape(), dtype, x.device());
  if (out.numel() == 0) return out;
  // Dimensions of size 1 never move the index: dropping them keeps the rank low.
  kernels::CopyCastParams params{};
  uint rank = 0;
  for (int dim = 0; dim < x.rank(); ++dim) {
    if (x.shape()[dim] == 1) continue;
    params.shape[rank] = as_uint(x.shape()[dim]);
    params.in_strides[rank] = static_cast<int>(x.strides()[dim]);
    ++rank;
  }
  params.count = as_uint(out.numel());
  params.in_dtype = static_cast<uint>(x.dtype());
  params.out_dtype = static_cast<uint>(dtype);
  params.rank = rank;
  params.in_offset = as_uint(x.offset());
  params.out_offset = 0;
  x.device().impl().copy_cast(*x.buffer(), *out.buffer(), params);
  return out;
}

Tensor sum(const Tensor& x) {
  check_defined("porta::sum", "x", x);
  return sum(x.contiguous().reshape({1, x.numel()}), 1).reshape({});
}

Tensor sum(const Tensor& x, int dim) {
  constexpr std::string_view op = "porta::sum";
  check_defined(op, "x", x);
  check_floating(op, "x", x.dtype());
  check_device_accepts(op, x.device(), backend::Op::reduce_sum, x.dtype());
  int d = detail::wrap_dim(op, dim, x.rank());
  std::vector<int> order;
  Shape kept;
  for (int i = 0; i < x.rank(); ++i) {
    if (i == d) continue;
    order.push_back(i);
    kept.push_back(x.shape()[i]);
  }
  order.push_back(d);
  Tensor out = Tensor::empty(kept, x.dtype(), x.device());
  const std::int64_t n = x.shape()[d];
  const std::int64_t rows = out.numel();
  if (rows == 0) return out;
  if (n == 0) return zeros(kept, x.dtype(), x.device());
  Tensor rows_last = x.permute(order).contiguous();
  sum_rows(rows_last, rows, n, out);
  return out;
}

}  // namespace porta

// tensor.cpp — porta::Tensor: allocation, host transfer, views and copies.
#include "porta/tensor.hpp"

#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <vector>

#include "backends/backend.hpp"
#include "porta/ops.hpp"
#include "src/shape.hpp"

namespace porta {

std::string to_string(const Shape& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

namespace detail {

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  std::int64_t stride = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= std::max<std::int64_t>(shape[i], 1);
  }
  return strides;
}

std::int64_t checked_numel(std::string_view op, const Shape& shape) {
  if (shape.size() > static_cast<std::size_t>(max_rank)) {
    fail(ErrorKind::invalid_argument, op, "shape",
         "expected at most " + std::to_string(max_rank) + " dimensions, got " + std::to_string(shape.size()));
  }
  std::int64_t count = 1;
  for (std::int64_t extent : shape) {
    if (extent < 0) fail(ErrorKind::invalid_argument, op, "shape", "expected sizes >= 0, got " + to_string(shape));
    if (extent != 0 && count > max_elements / extent) {
      fail(ErrorKind::unsupported, op, "shape",
           "expected at most 2^31-1 elements (32-bit kernel indexing), got " + to_string(shape));
    }
    count *= extent;
  }
  return count;
}

int wrap_dim(std::string_view op, int dim, int rank) {
  int wrapped = dim < 0 ? dim + rank : dim;
  if (wrapped < 0 || wrapped >= std::max(rank, 1) || (rank == 0)) {
    fail(ErrorKind::invalid_argument, op, "dim",
         "expected a dimension in [" + std::to_string(-rank) + ", " + std::to_string(rank) + "), got " +
             std::to_string(dim));
  }
  return wrapped;
}

}  // namespace detail

namespace {
bool poison_new_tensors() {
  static const bool poison = [] {
    const char* value = std::getenv("PORTA_POISON");
    return value != nullptr && std::string_view(value) == "1";
  }();
  return poison;
}
}  // namespace

Tensor::Tensor(std::shared_ptr<backend::Buffer> buffer, Device device, DType dtype, Shape shape, Shape strides,
               std::int64_t offset)
    : buffer_(std::move(buffer)), device_(std::move(device)), dtype_(dtype), shape_(std::move(shape)),
      strides_(std::move(strides)), offset_(offset) {}

Tensor Tensor::empty(const Shape& shape, DType dtype, const Device& device) {
  std::int64_t count = detail::checked_numel("porta::Tensor::empty", shape);
  device.info();  // rejects an empty device handle
  std::shared_ptr<backend::Buffer> buffer;
  if (count > 0) {
    // 16-bit tensors round up to whole 32-bit words: Vulkan addresses storage in words.
    std::uint64_t bytes = (static_cast<std::uint64_t>(count) * size_of(dtype) + 3) & ~std::uint64_t(3);
    buffer = device.impl().allocate(bytes);
    if (poison_new_tensors()) {
      // All ones is NaN in f32, f16 and bf16 (and -1 in i32): a kernel that leaves an
      // element unwritten shows up in the tests. Written from the host, so the poison
      // does not depend on the fill kernel it is meant to check.
      std::vector<unsigned char> poison(bytes, 0xff);
      device.impl().write(*buffer, 0, poison.data(), bytes);
    }
  }
  return Tensor(std::move(buffer), device, dtype, shape, detail::contiguous_strides(shape), 0);
}

Tensor Tensor::from_host(const void* data, std::size_t bytes, const Shape& shape, DType dtype, const Device& device) {
  std::int64_t count = detail::checked_numel("porta::Tensor::from_host", shape);
  std::size_t expected = static_cast<std::size_t>(count) * size_of(dtype);
  if (bytes != expected) {
    detail::fail(ErrorKind::invalid_argument, "porta::Tensor::from_host", "data",
                 "expected " + std::to_string(expected) + " bytes for " + std::string(to_string(dtype)) +
                     to_string(shape) + ", got " + std::to_string(bytes));
  }
  if (count > 0 && data == nullptr) {
    detail::fail(ErrorKind::invalid_argument, "porta::Tensor::from_host", "data", "expected host memory, got null");
  }
  Tensor tensor = empty(shape, dtype, device);
  if (count > 0) device.impl().write(*tensor.buffer_, 0, data, bytes);
  return tensor;
}

std::int64_t Tensor::size(int dim) const { return shape_[detail::wrap_dim("porta::Tensor::size", dim, rank())]; }

std::int64_t Tensor::numel() const {
  std::int64_t count = 1;
  for (std::int64_t extent : shape_) count *= extent;
  return count;
}

bool Tensor::is_contiguous() const { return strides_ == detail::contiguous_strides(shape_) || numel() <= 1; }

std::string Tensor::describe() const {
  return std::string(to_string(dtype_)) + to_string(shape_) + (device_ ? " on " + device_.id() : " (undefined)");
}

Tensor Tensor::reshape(const Shape& shape) const {
  constexpr std::string_view op = "porta::Tensor::reshape";
  Shape resolved = shape;
  auto inferred = std::find(resolved.begin(), resolved.end(), -1);
  if (inferred != resolved.end()) {
    if (std::count(resolved.begin(), resolved.end(), -1) > 1) {
      detail::fail(ErrorKind::invalid_argument, op, "shape", "expected at most one -1, got " + to_string(shape));
    }
    *inferred = 1;
    std::int64_t known = detail::checked_numel(op, resolved);
    if (known == 0 || numel() % known != 0) {
      detail::fail(ErrorKind::invalid_argument, op, "shape",
                   "cannot infer -1 in " + to_string(shape) + " for " + std::to_string(numel()) + " elements");
    }
    *inferred = numel() / known;
  }
  if (detail::checked_numel(op, resolved) != numel()) {
    detail::fail(ErrorKind::invalid_argument, op, "shape",
                 "expected " + std::to_string(numel()) + " elements as in " + to_string(shape_) + ", got " +
                     to_string(shape));
  }
  if (!is_contiguous()) {
    detail::fail(ErrorKind::invalid_argument, op, "self",
                 "expected a contiguous tensor (call contiguous() first), got strides " + to_string(strides_));
  }
  return Tensor(buffer_, device_, dtype_, resolved, detail::contiguous_strides(resolved), offset_);
}

Tensor Tensor::permute(const std::vector<int>& order) const {
  constexpr std::string_view op = "porta::Tensor::permute";
  if (static_cast<int>(order.size()) != rank()) {
    detail::fail(ErrorKind::invalid_argument, op, "order",
                 "expected " + std::to_string(rank()) + " dimensions, got " + std::to_string(order.size()));
  }
  std::vector<bool> seen(order.size(), false);
  Shape shape(order.size());
  Shape strides(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    int dim = detail::wrap_dim(op, order[i], rank());
    if (seen[dim]) detail::fail(ErrorKind::invalid_argument, op, "order", "dimension " + std::to_string(dim) + " repeats");
    seen[dim] = true;
    shape[i] = shape_[dim];
    strides[i] = strides_[dim];
  }
  return Tensor(buffer_, device_, dtype_, shape, strides, offset_);
}

Tensor Tensor::transpose(int dim0, int dim1) const {
  std::vector<int> order(rank());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[detail::wrap_dim("porta::Tensor::transpose", dim0, rank())],
            order[detail::wrap_dim("porta::Tensor::transpose", dim1, rank())]);
  return permute(order);
}

Tensor Tensor::slice(int dim, std::int64_t start, std::int64_t stop, std::int64_t step) const {
  constexpr std::string_view op = "porta::Tensor::slice";
  int d = detail::wrap_dim(op, dim, rank());
  if (step < 1) detail::fail(ErrorKind::invalid_argument, op, "step", "expected >= 1, got " + std::to_string(step));
  std::int64_t extent = shape_[d];
  auto clamp = [extent](std::int64_t index) { return std::clamp(index < 0 ? index + extent : index, std::int64_t(0), extent); };
  start = clamp(start);
  stop = std::max(clamp(stop), start);
  Shape shape = shape_;
  Shape strides = strides_;
  shape[d] = (stop - start + step - 1) / step;
  strides[d] = strides_[d] * step;
  return Tensor(buffer_, device_, dtype_, shape, strides, offset_ + start * strides_[d]);
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : cast(*this, dtype_); }

Tensor Tensor::to(DType dtype) const { return cast(*this, dtype); }

Tensor Tensor::to(const Device& device) const {
  if (device == device_) return *this;
  std::vector<unsigned char> staging(nbytes());
  copy_to_host(staging.data(), staging.size());
  return from_host(staging.data(), staging.size(), shape_, dtype_, device);
}

void Tensor::copy_to_host(void* data, std::size_t bytes) const {
  if (bytes != nbytes()) {
    detail::fail(ErrorKind::invalid_argument, "porta::Tensor::copy_to_host", "bytes",
                 "expected " + std::to_string(nbytes()) + " for " + describe() + ", got " + std::to_string(bytes));
  }
  if (bytes == 0) return;
  if (!is_contiguous()) return contiguous().copy_to_host(data, bytes);
  device_.impl().read(*buffer_, static_cast<std::uint64_t>(offset_) * size_of(dtype_), data, bytes);
}

}  // namespace porta

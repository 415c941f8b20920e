// tensor.hpp — porta::Tensor: a typed, strided view of a device buffer.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "porta/device.hpp"
#include "porta/dtype.hpp"
#include "porta/export.h"

namespace porta {

namespace backend {
class Buffer;
}

inline constexpr int max_rank = 8;
using Shape = std::vector<std::int64_t>;
PORTA_API std::string to_string(const Shape& shape);

// A value type: copies and views (reshape, permute, slice) share the device buffer.
// Strides and offset count elements. A shape with a 0 is a valid, empty tensor.
class PORTA_API Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false, every op rejects it

  static Tensor empty(const Shape& shape, DType dtype, const Device& device);
  // Copies host data laid out contiguously (row-major); `bytes` must match the shape.
  static Tensor from_host(const void* data, std::size_t bytes, const Shape& shape, DType dtype,
                          const Device& device);
  template <class T>
  static Tensor from_host(std::span<const T> values, const Shape& shape, DType dtype, const Device& device) {
    return from_host(values.data(), values.size_bytes(), shape, dtype, device);
  }

  bool defined() const { return static_cast<bool>(device_); }
  DType dtype() const { return dtype_; }
  const Device& device() const { return device_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  std::int64_t offset() const { return offset_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  std::int64_t size(int dim) const;
  std::int64_t numel() const;
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * size_of(dtype_); }
  bool is_contiguous() const;
  std::string describe() const;  // "f32[3, 4] on opencl:0"

  // Views (no copy). reshape needs a contiguous tensor; -1 infers one dimension.
  Tensor reshape(const Shape& shape) const;
  Tensor permute(const std::vector<int>& order) const;
  Tensor transpose(int dim0, int dim1) const;
  Tensor slice(int dim, std::int64_t start, std::int64_t stop, std::int64_t step = 1) const;

  // Copies: the result is contiguous and owns new storage (contiguous() returns *this
  // when already contiguous).
  Tensor contiguous() const;
  Tensor to(const Device& device) const;  // across backends too
  Tensor to(DType dtype) const;           // cast: f32 <-> f16 <-> bf16

  // Waits for the device, then copies the elements out in row-major order.
  void copy_to_host(void* data, std::size_t bytes) const;
  template <class T>
  std::vector<T> to_host() const {
    std::vector<T> values(static_cast<std::size_t>(numel()));
    copy_to_host(values.data(), values.size() * sizeof(T));
    return values;
  }

  // For porta's own front end.
  const std::shared_ptr<backend::Buffer>& buffer() const { return buffer_; }
  Tensor(std::shared_ptr<backend::Buffer> buffer, Device device, DType dtype, Shape shape, Shape strides,
         std::int64_t offset);

 private:
  std::shared_ptr<backend::Buffer> buffer_;
  Device device_{nullptr};
  DType dtype_ = DType::f32;
  Shape shape_;
  Shape strides_;
  std::int64_t offset_ = 0;
};

}  // namespace porta

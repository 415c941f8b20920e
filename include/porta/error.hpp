// error.hpp — porta::Error, the one exception type the library throws.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "porta/export.h"

namespace porta {

enum class ErrorKind {
  invalid_argument,  // the caller passed something the op cannot take
  unsupported,       // valid, but this device or build cannot do it
  out_of_memory,     // an allocation larger than the device (or what is left of it)
  backend_error,     // the OpenCL/Vulkan runtime failed; the message carries its error name
  device_lost,       // the device stopped answering; its tensors are gone
};

PORTA_API std::string_view to_string(ErrorKind kind);

// Messages name the op and the argument and say what was expected and what was given,
// e.g. "porta::add: argument b: expected shape [3, 4], got [4, 3]".
class PORTA_API Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message);
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace porta

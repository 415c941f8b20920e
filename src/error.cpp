// error.cpp — porta::Error and the names of its kinds.
#include "porta/error.hpp"

namespace porta {

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::invalid_argument: return "invalid argument";
    case ErrorKind::unsupported: return "unsupported";
    case ErrorKind::out_of_memory: return "out of memory";
    case ErrorKind::backend_error: return "backend error";
    case ErrorKind::device_lost: return "device lost";
  }
  return "unknown error";
}

Error::Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

}  // namespace porta

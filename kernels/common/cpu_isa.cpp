// cpu_isa.cpp — see cpu_isa.hpp.
#include "common/cpu_isa.hpp"

#include <cstdlib>
#include <string>

#include "porta/error.hpp"

namespace porta::kernels::cpu {

namespace {

CpuIsa capped() {
  const CpuIsa have = cpu_isa_detected();
  const char* text = std::getenv("PORTA_CPU_ISA");
  if (text == nullptr || *text == '\0') return have;
  const std::optional<CpuIsa> cap = cpu_isa_named(text);
  if (!cap) {
    throw Error(ErrorKind::invalid_argument,
                "porta cpu: $PORTA_CPU_ISA is '" + std::string(text) + "'; expected avx512, avx2 or portable");
  }
  return *cap < have ? *cap : have;  // a cap above what the cpu has changes nothing
}

}  // namespace

CpuIsa cpu_isa() {
  static const CpuIsa isa = capped();
  return isa;
}

}  // namespace porta::kernels::cpu

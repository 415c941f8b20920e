// cpu_isa.cpp — see cpu_isa.hpp.
#include "common/cpu_isa.hpp"

#include <cstdlib>
#include <string>

#include "porta/error.hpp"

namespace porta::kernels::cpu {

namespace {

CpuIsa detected() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return CpuIsa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CpuIsa::avx2;
  return CpuIsa::portable;
}

CpuIsa capped() {
  const CpuIsa have = detected();
  const char* text = std::getenv("PORTA_CPU_ISA");
  if (text == nullptr || *text == '\0') return have;
  const std::string wanted = text;
  CpuIsa cap = CpuIsa::portable;
  if (wanted == "avx512") {
    cap = CpuIsa::avx512;
  } else if (wanted == "avx2") {
    cap = CpuIsa::avx2;
  } else if (wanted != "portable") {
    throw Error(ErrorKind::invalid_argument,
                "porta cpu: $PORTA_CPU_ISA is '" + wanted + "'; expected avx512, avx2 or portable");
  }
  return cap < have ? cap : have;  // a cap above what the cpu has changes nothing
}

}  // namespace

CpuIsa cpu_isa() {
  static const CpuIsa isa = capped();
  return isa;
}

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::avx512: return "avx512";
    case CpuIsa::avx2: return "avx2";
    case CpuIsa::portable: break;
  }
  return "portable";
}

}  // namespace porta::kernels::cpu

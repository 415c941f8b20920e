// cpu_isa.hpp — the widest vector instructions porta's cpu kernels may use: what the
// processor has, capped by $PORTA_CPU_ISA (avx512, avx2 or portable). The cap lets the
// narrower kernels be tested, and measured, on a machine that has the wider ones.
#pragma once

#include <optional>
#include <string_view>

namespace porta::kernels::cpu {

enum class CpuIsa { portable, avx2, avx512 };  // avx2 includes FMA

// What the processor has, before any cap.
inline CpuIsa cpu_isa_detected() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return CpuIsa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CpuIsa::avx2;
  return CpuIsa::portable;
}

// The level a $PORTA_CPU_ISA value names; nullopt when it names none.
inline std::optional<CpuIsa> cpu_isa_named(std::string_view name) {
  if (name == "avx512") return CpuIsa::avx512;
  if (name == "avx2") return CpuIsa::avx2;
  if (name == "portable") return CpuIsa::portable;
  return std::nullopt;
}

// Read once; a $PORTA_CPU_ISA that names no level throws porta::Error(invalid_argument).
CpuIsa cpu_isa();

inline const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::avx512: return "avx512";
    case CpuIsa::avx2: return "avx2";
    case CpuIsa::portable: break;
  }
  return "portable";
}

}  // namespace porta::kernels::cpu

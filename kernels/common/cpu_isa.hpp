// cpu_isa.hpp — the widest vector instructions porta's cpu kernels may use: what the
// processor has, capped by $PORTA_CPU_ISA (avx512, avx2 or portable). The cap lets the
// narrower kernels be tested, and measured, on a machine that has the wider ones.
#pragma once

namespace porta::kernels::cpu {

enum class CpuIsa { portable, avx2, avx512 };  // avx2 includes FMA

// Read once; a $PORTA_CPU_ISA that names no level throws porta::Error(invalid_argument).
CpuIsa cpu_isa();
const char* cpu_isa_name(CpuIsa isa);

}  // namespace porta::kernels::cpu

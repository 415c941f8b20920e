// cpu_isa_cap.hpp — the *.cpu.<isa> ctest entries rerun the cpu tests under
// $PORTA_CPU_ISA, so the narrower kernels are tested on a machine that has wider ones. A
// cap at or above the widest level this cpu has changes nothing: the plain *.cpu entry
// has run those very kernels. Such an entry skips every test, with the reason, and ctest
// lists it as skipped (SKIP_REGULAR_EXPRESSION) rather than spend the time twice.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <optional>

#include "common/cpu_isa.hpp"

namespace porta::test {

class CpuIsaCapCheck : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* text = std::getenv("PORTA_CPU_ISA");
    if (text == nullptr) return;
    const std::optional<kernels::cpu::CpuIsa> cap = kernels::cpu::cpu_isa_named(text);
    const kernels::cpu::CpuIsa have = kernels::cpu::cpu_isa_detected();
    if (!cap || *cap < have) return;  // a real cap (or a bad name, which the library refuses)
    std::printf("porta test: PORTA_CPU_ISA=%s changes nothing on this cpu (its widest is %s); "
                "the plain cpu entry ran these kernels\n",
                text, kernels::cpu::cpu_isa_name(have));
    GTEST_SKIP();
  }
};

inline ::testing::Environment* const cpu_isa_cap_check = ::testing::AddGlobalTestEnvironment(new CpuIsaCapCheck);

}  // namespace porta::test

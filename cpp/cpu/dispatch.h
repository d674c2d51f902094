// Run-time choice of the instruction set. The choice is made once, at first
// use, from cpuid (what the CPU and OS support) and GRADSMITH_CPU
// (scalar|avx2|avx512, to force a path); set_isa() changes it later, e.g. for
// tests that run every path on one machine.
#pragma once

#include <string>
#include <vector>

#include "cpu/kernel_table.h"

namespace gradsmith {
namespace cpu {

// The table in use.
const KernelTable& kernels();
// Paths this CPU can run, best last ("scalar", "avx2", "avx512").
std::vector<std::string> supported_isas();
// Switch paths; throws std::invalid_argument for an unknown or unsupported one.
void set_isa(const std::string& name);
// Why GRADSMITH_CPU was not followed at import (an unknown or unsupported path); empty when it was.
std::string isa_note();

}  // namespace cpu
}  // namespace gradsmith

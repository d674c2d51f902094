// How many times gradsmith's own C++ code has called operator new.
//
// The module replaces the global operator new / delete with thin wrappers over
// malloc / free that count (allocation_counter.cpp) and links with
// -Bsymbolic-functions, so these definitions serve the module's own calls and
// nobody else's. Tests use the count to prove that a steady-state training
// step allocates nothing (CpuRunner::last_step_allocations).
#pragma once

#include <stdint.h>

namespace gradsmith {
namespace cpu {

uint64_t allocation_count();
// False in a sanitizer build (GRADSMITH_SANITIZE), where the sanitizer's allocator replaces operator new
// and nothing is counted.
bool counts_allocations();

}  // namespace cpu
}  // namespace gradsmith

// Counting replacements of the global operator new / delete (see
// allocation_counter.h). They forward to malloc / free, as the C++ runtime's
// own do, so memory may be freed by either side. A sanitizer build
// (GRADSMITH_SANITIZE) leaves operator new to the sanitizer's allocator and
// counts nothing.
#include "cpu/allocation_counter.h"

#include <stdlib.h>

#include <atomic>
#include <new>

namespace gradsmith {
namespace cpu {
namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

uint64_t allocation_count() { return g_allocations.load(std::memory_order_relaxed); }

#if defined(GS_SANITIZE)
bool counts_allocations() { return false; }
}  // namespace cpu
}  // namespace gradsmith
#else
bool counts_allocations() { return true; }

namespace {
void* counted_malloc(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return malloc(n ? n : 1);
}
}  // namespace
}  // namespace cpu
}  // namespace gradsmith

void* operator new(size_t n) {
  if (void* p = gradsmith::cpu::counted_malloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) {
  if (void* p = gradsmith::cpu::counted_malloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new(size_t n, const std::nothrow_t&) noexcept { return gradsmith::cpu::counted_malloc(n); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return gradsmith::cpu::counted_malloc(n); }
void operator delete(void* p) noexcept { free(p); }
void operator delete[](void* p) noexcept { free(p); }
void operator delete(void* p, size_t) noexcept { free(p); }
void operator delete[](void* p, size_t) noexcept { free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { free(p); }
#endif  // GS_SANITIZE

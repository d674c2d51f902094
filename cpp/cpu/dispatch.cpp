#include "cpu/dispatch.h"

#include <cctype>

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace gradsmith {
namespace cpu {
namespace {

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  // __builtin_cpu_supports also checks that the OS saves the wider registers.
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

std::string lower(std::string s) {
  for (char& c : s) c = (char)std::tolower((unsigned char)c);
  return s;
}

// Why GRADSMITH_CPU was not followed (empty when it was, or is not set); gradsmith warns with it at import.
std::string g_isa_note;

const KernelTable* table_named(const std::string& given) {
  const std::string name = lower(given);
  if (name == "scalar") return &table_scalar();
  if (name == "avx2" && cpu_has_avx2()) return &table_avx2();
  if (name == "avx512" && cpu_has_avx512()) return &table_avx512();
  return nullptr;
}

const KernelTable* best_table() {
  if (cpu_has_avx512()) return &table_avx512();
  if (cpu_has_avx2()) return &table_avx2();
  return &table_scalar();
}

const KernelTable* initial_table() {
  const char* forced = std::getenv("GRADSMITH_CPU");
  if (forced != nullptr && *forced != '\0') {
    // An unusable request falls back to the best path rather than failing at
    // import; gradsmith warns, and gradsmith.cpu_info() shows what is in use.
    if (const KernelTable* t = table_named(forced)) return t;
    const KernelTable* best = best_table();
    std::string have;
    for (const auto& s : supported_isas()) have += (have.empty() ? "" : ", ") + s;
    g_isa_note = "GRADSMITH_CPU='" + std::string(forced) + "' is not a CPU path this machine supports (" + have +
                 "): using " + best->name;
    return best;
  }
  return best_table();
}

std::atomic<const KernelTable*>& current() {
  static std::atomic<const KernelTable*> table{initial_table()};
  return table;
}

}  // namespace

const KernelTable& kernels() { return *current().load(std::memory_order_relaxed); }

std::string isa_note() {
  current();
  return g_isa_note;
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> out = {"scalar"};
  if (cpu_has_avx2()) out.push_back("avx2");
  if (cpu_has_avx512()) out.push_back("avx512");
  return out;
}

void set_isa(const std::string& name) {
  const KernelTable* t = table_named(name);
  if (t == nullptr) {
    std::string have;
    for (const auto& s : supported_isas()) have += (have.empty() ? "" : ", ") + s;
    throw std::invalid_argument("CPU path '" + name + "' is unknown or not supported by this CPU (supported: " +
                                have + ")");
  }
  current().store(t, std::memory_order_relaxed);
}

}  // namespace cpu
}  // namespace gradsmith

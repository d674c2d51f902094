// Flush-to-zero (FTZ) and denormals-are-zero (DAZ) while gradsmith's kernels run.
//
// Why: Adam's second moments of units that stop receiving gradient decay
// geometrically into the denormal range after a few hundred steps, and on x86
// every operation on a denormal takes a microcode assist (on the order of 100
// cycles), which slows every later step. Values that small (< 1.2e-38) carry no
// information for training.
//
// Where: the training kernels (an optimizer step, the compiled training step)
// run under DenormalsAreZero, a scope guard the bindings put around the call:
// the calling thread sets both bits for the length of the call and gets its own
// MXCSR back on return, so the caller's NumPy keeps IEEE denormals; the pool's
// workers take the caller's state with each parallel region. The other kernels
// keep IEEE denormals, so gradsmith.ops matches NumPy even there.
#pragma once

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define GS_HAVE_MXCSR 1
#endif

namespace gradsmith {
namespace cpu {

// The caller's floating-point control state (MXCSR: FTZ, DAZ, rounding), which
// the thread pool hands to its workers with every parallel region, so a kernel
// computes the same bits on any number of threads.
struct FloatingPointState {
#ifdef GS_HAVE_MXCSR
  unsigned mxcsr = 0x1f80;  // the x86-64 default
  static FloatingPointState of_this_thread() { return {_mm_getcsr()}; }
  void apply_to_this_thread() const { _mm_setcsr(mxcsr); }
#else
  static FloatingPointState of_this_thread() { return {}; }
  void apply_to_this_thread() const {}
#endif
};

class DenormalsAreZero {
 public:
#ifdef GS_HAVE_MXCSR
  DenormalsAreZero() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kBits); }
  ~DenormalsAreZero() { _mm_setcsr(saved_); }

 private:
  static constexpr unsigned kBits = 0x8040;  // MXCSR bit 15 (FTZ) | bit 6 (DAZ)
  unsigned saved_;
#endif
  DenormalsAreZero(const DenormalsAreZero&) = delete;
  DenormalsAreZero& operator=(const DenormalsAreZero&) = delete;
};

}  // namespace cpu
}  // namespace gradsmith

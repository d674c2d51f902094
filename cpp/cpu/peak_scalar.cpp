// FLOP-peak chains for the portable path (baseline x86-64 flags).
//
// Baseline x86-64 has no FMA, but it has SSE: the compiler turns the scalar
// path's loops (its GEMM micro-kernel included) into 4-wide multiplies and
// adds. The roof for that path is therefore 4-wide multiply-then-add chains,
// acc = acc * m + c, 2 FLOPs per lane per step. Each step is two dependent
// operations (about 8 cycles); 12 chains + 2 constants fill 14 of the 16 xmm
// registers. acc tends to c / (1 - m) = 1, so the values stay normal. Other
// targets run the same chains in plain C.
#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "cpu/machine_peak.h"

namespace gradsmith {
namespace cpu {
namespace {
constexpr int kChains = 12, kLanes = 4;
}  // namespace

double peak_chains_scalar(int64_t iters, float* sink) {
  float s = 0.f;
#if defined(__SSE2__)
  const __m128 m = _mm_set1_ps(0.999999f), c = _mm_set1_ps(1e-6f);
  __m128 acc[kChains];
  for (int k = 0; k < kChains; ++k) acc[k] = _mm_set1_ps(*sink + 0.01f * (float)k);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int k = 0; k < kChains; ++k) acc[k] = _mm_add_ps(_mm_mul_ps(acc[k], m), c);
  }
  for (int k = 1; k < kChains; ++k) acc[0] = _mm_add_ps(acc[0], acc[k]);
  float lanes[kLanes];
  _mm_storeu_ps(lanes, acc[0]);
  for (int l = 0; l < kLanes; ++l) s += lanes[l];
#else
  float acc[kChains][kLanes];
  for (int k = 0; k < kChains; ++k)
    for (int l = 0; l < kLanes; ++l) acc[k][l] = *sink + 0.01f * (float)k;
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < kChains; ++k)
      for (int l = 0; l < kLanes; ++l) acc[k][l] = acc[k][l] * 0.999999f + 1e-6f;
  for (int k = 0; k < kChains; ++k)
    for (int l = 0; l < kLanes; ++l) s += acc[k][l];
#endif
  *sink = s;
  return 2.0 * kLanes * kChains * (double)iters;
}

}  // namespace cpu
}  // namespace gradsmith

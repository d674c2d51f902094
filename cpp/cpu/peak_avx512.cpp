// FLOP-peak chains for AVX-512 (compiled with -mavx512f; run only when the
// AVX-512 path is in use, see machine_peak.cpp).
//
// 16 independent chains acc = fma(acc, m, c), one zmm each. An FMA has a
// latency of 4 cycles and two ports on current cores, so 8 chains in flight
// keep both busy every cycle; 16 leave room for slower parts. 16 accumulators
// + 2 constants use 18 of the 32 zmm registers. acc tends to c / (1 - m) = 1,
// so the values stay normal (no denormal slow-down) for any iteration count.
// Only intrinsics (always inlined) are used: this object must export nothing
// but the function below, compiled for AVX-512.
#include <immintrin.h>

#include "cpu/machine_peak.h"

namespace gradsmith {
namespace cpu {
namespace {
constexpr int kChains = 16, kLanes = 16;
}  // namespace

double peak_chains_avx512(int64_t iters, float* sink) {
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
  __m512 acc[kChains];
#pragma GCC unroll 16
  for (int k = 0; k < kChains; ++k) acc[k] = _mm512_set1_ps(*sink + 0.01f * (float)k);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int k = 0; k < kChains; ++k) acc[k] = _mm512_fmadd_ps(acc[k], m, c);
  }
#pragma GCC unroll 16
  for (int k = 1; k < kChains; ++k) acc[0] = _mm512_add_ps(acc[0], acc[k]);
  float lanes[kLanes];
  _mm512_storeu_ps(lanes, acc[0]);
  float s = 0.f;
  for (int l = 0; l < kLanes; ++l) s += lanes[l];
  *sink = s;
  return 2.0 * kLanes * kChains * (double)iters;
}

}  // namespace cpu
}  // namespace gradsmith

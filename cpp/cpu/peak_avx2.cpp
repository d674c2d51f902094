// FLOP-peak chains for AVX2 + FMA (compiled with -mavx2 -mfma; run only when
// the AVX2 path is in use, see machine_peak.cpp).
//
// 12 independent chains acc = fma(acc, m, c), one ymm each: FMA latency 4-5
// cycles x 2 ports needs 8-10 chains in flight; 12 accumulators + 2 constants
// use 14 of the 16 ymm registers, so nothing spills. acc tends to
// c / (1 - m) = 1: the values stay normal for any iteration count. Only
// intrinsics (always inlined) are used: this object exports nothing but the
// function below.
#include <immintrin.h>

#include "cpu/machine_peak.h"

namespace gradsmith {
namespace cpu {
namespace {
constexpr int kChains = 12, kLanes = 8;
}  // namespace

double peak_chains_avx2(int64_t iters, float* sink) {
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
  __m256 acc[kChains];
#pragma GCC unroll 12
  for (int k = 0; k < kChains; ++k) acc[k] = _mm256_set1_ps(*sink + 0.01f * (float)k);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int k = 0; k < kChains; ++k) acc[k] = _mm256_fmadd_ps(acc[k], m, c);
  }
#pragma GCC unroll 12
  for (int k = 1; k < kChains; ++k) acc[0] = _mm256_add_ps(acc[0], acc[k]);
  float lanes[kLanes];
  _mm256_storeu_ps(lanes, acc[0]);
  float s = 0.f;
  for (int l = 0; l < kLanes; ++l) s += lanes[l];
  *sink = s;
  return 2.0 * kLanes * kChains * (double)iters;
}

}  // namespace cpu
}  // namespace gradsmith

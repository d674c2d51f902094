// Int8 peak chains for AVX-512 VNNI (compiled with -mavx512f -mavx512vnni; run only when the int8 path
// in use is avx512_vnni, see machine_peak.cpp).
//
// 16 independent chains acc = vpdpbusd(acc, u, s), one zmm each, as peak_avx512.cpp does for FMA: a
// vpdpbusd adds 16 lanes x 4 byte products, 64 multiply-adds, counted as 128 integer operations. The
// bytes are small (1 x 1), so the int32 lanes grow by 4 a step and never overflow in any run we time
// (2^31 / 4 steps). Only intrinsics: this object exports nothing but the function below.
#include <immintrin.h>

#include "cpu/machine_peak.h"

namespace gradsmith {
namespace cpu {
namespace {
constexpr int kChains = 16, kLanes = 16;
}  // namespace

double peak_chains_vnni(int64_t iters, float* sink) {
  const __m512i u = _mm512_set1_epi8(1), s = _mm512_set1_epi8(1);
  __m512i acc[kChains];
#pragma GCC unroll 16
  for (int k = 0; k < kChains; ++k) acc[k] = _mm512_set1_epi32((int)*sink + k);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int k = 0; k < kChains; ++k) acc[k] = _mm512_dpbusd_epi32(acc[k], u, s);
  }
#pragma GCC unroll 16
  for (int k = 1; k < kChains; ++k) acc[0] = _mm512_add_epi32(acc[0], acc[k]);
  *sink = (float)_mm512_reduce_add_epi32(acc[0]);
  return 2.0 * 4 * kLanes * kChains * (double)iters;
}

}  // namespace cpu
}  // namespace gradsmith

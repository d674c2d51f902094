// AVX-512 path (F, DQ, BW, VL: Skylake-SP and later). Compiled with those
// flags; only reached after dispatch.cpp has seen them in cpuid.
#include <immintrin.h>

#include "cpu/kernel_table.h"

namespace gradsmith {
namespace cpu {
namespace avx512 {
namespace {

#include "cpu/isa_loops.inc"

constexpr const char* kIsaName = "avx512";
// 12 x 32 tile: 24 zmm accumulators + 2 for B; A is broadcast from memory.
constexpr int MR = 12, NR = 32;
constexpr GemmBlocking kBlocking = {MR, NR, 192, 256, 3072};

void gemm_ukr(i64 kc, const float* a, const float* b, float* c, i64 ldc, float alpha, float beta) {
  __m512 acc[MR][2];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (i64 p = 0; p < kc; ++p, a += MR, b += NR) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    __m512 r0 = _mm512_mul_ps(va, acc[i][0]), r1 = _mm512_mul_ps(va, acc[i][1]);
    if (beta != 0.f) {
      r0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci), r0);
      r1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci + 16), r1);
    }
    _mm512_storeu_ps(ci, r0);
    _mm512_storeu_ps(ci + 16, r1);
  }
}

#include "cpu/isa_common_table.inc"

}  // namespace
}  // namespace avx512

const KernelTable& table_avx512() { return avx512::kTable; }

}  // namespace cpu
}  // namespace gradsmith

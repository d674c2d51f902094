// AVX2 + FMA path (Haswell and later). Compiled with -mavx2 -mfma; only
// reached after dispatch.cpp has seen both in cpuid.
#include <immintrin.h>

#include "cpu/kernel_table.h"

namespace gradsmith {
namespace cpu {
namespace avx2 {
namespace {

#include "cpu/isa_loops.inc"

constexpr const char* kIsaName = "avx2";
// 6 x 16 tile: 12 ymm accumulators + 2 for B + 1 broadcast of A = 15 of 16 registers.
constexpr int MR = 6, NR = 16;
constexpr GemmBlocking kBlocking = {MR, NR, 120, 256, 3072};

void gemm_ukr(i64 kc, const float* a, const float* b, float* c, i64 ldc, float alpha, float beta) {
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (i64 p = 0; p < kc; ++p, a += MR, b += NR) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    __m256 r0 = _mm256_mul_ps(va, acc[i][0]), r1 = _mm256_mul_ps(va, acc[i][1]);
    if (beta != 0.f) {
      r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), r0);
      r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8), r1);
    }
    _mm256_storeu_ps(ci, r0);
    _mm256_storeu_ps(ci + 8, r1);
  }
}

#include "cpu/isa_common_table.inc"

}  // namespace
}  // namespace avx2

const KernelTable& table_avx2() { return avx2::kTable; }

}  // namespace cpu
}  // namespace gradsmith

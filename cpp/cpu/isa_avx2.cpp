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

// The small-product tile (kernel_table.h gemm_tile): the 6 x 16 register block
// fed from unpacked operands. A(i, p) is broadcast from a[i*rs_a + p*cs_a];
// B(p, :) is a row of a (K, N) matrix, loaded under a lane mask for the last
// columns (maskload reads nothing outside the mask).
template <int MRt, bool Wide>
void gemm_tile_t(i64 nr, i64 kc, const float* a, i64 rs_a, i64 cs_a, const float* b, i64 ldb, float* c, i64 ldc,
                 float alpha, float beta) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nr), lane);
  const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nr - 8), lane);
  __m256 acc[MRt][2];
#pragma GCC unroll 6
  for (int i = 0; i < MRt; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (i64 p = 0; p < kc; ++p, a += cs_a, b += ldb) {
    const __m256 b0 = _mm256_maskload_ps(b, m0);
    const __m256 b1 = Wide ? _mm256_maskload_ps(b + 8, m1) : _mm256_setzero_ps();
#pragma GCC unroll 6
    for (int i = 0; i < MRt; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i * rs_a);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      if (Wide) acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
  for (int i = 0; i < MRt; ++i) {
    float* ci = c + i * ldc;
    __m256 r0 = _mm256_mul_ps(va, acc[i][0]), r1 = _mm256_mul_ps(va, acc[i][1]);
    if (beta != 0.f) {
      r0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(ci, m0), r0);
      if (Wide) r1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(ci + 8, m1), r1);
    }
    _mm256_maskstore_ps(ci, m0, r0);
    if (Wide) _mm256_maskstore_ps(ci + 8, m1, r1);
  }
}

template <int MRt>
void gemm_tile_rows(i64 nr, i64 kc, const float* a, i64 rs_a, i64 cs_a, const float* b, i64 ldb, float* c, i64 ldc,
                    float alpha, float beta) {
  if (nr > 8) gemm_tile_t<MRt, true>(nr, kc, a, rs_a, cs_a, b, ldb, c, ldc, alpha, beta);
  else gemm_tile_t<MRt, false>(nr, kc, a, rs_a, cs_a, b, ldb, c, ldc, alpha, beta);
}

void gemm_tile(i64 mr, i64 nr, i64 kc, const float* a, i64 rs_a, i64 cs_a, const float* b, i64 ldb, float* c,
               i64 ldc, float alpha, float beta) {
  using Fn = void (*)(i64, i64, const float*, i64, i64, const float*, i64, float*, i64, float, float);
  static constexpr Fn kByRows[MR] = {gemm_tile_rows<1>, gemm_tile_rows<2>, gemm_tile_rows<3>,
                                     gemm_tile_rows<4>, gemm_tile_rows<5>, gemm_tile_rows<6>};
  kByRows[mr - 1](nr, kc, a, rs_a, cs_a, b, ldb, c, ldc, alpha, beta);
}

#include "cpu/isa_transpose_avx.inc"

#include "cpu/isa_common_table.inc"

}  // namespace
}  // namespace avx2

const KernelTable& table_avx2() { return avx2::kTable; }

}  // namespace cpu
}  // namespace gradsmith

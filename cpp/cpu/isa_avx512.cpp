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
constexpr GemmBlocking kBlocking = {MR, NR, 192, 256, 1536};

void gemm_ukr(i64 kc, const float* a, const float* b, float* c, i64 ldc, float alpha, float beta) {
  __m512 acc[MR][2];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    // C's rows are ldc apart, often a multiple of 4 KiB (one L1 set for all 12): fetch them while the
    // k loop runs, not when the tile is written.
    _mm_prefetch((const char*)(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch((const char*)(c + i * ldc + 16), _MM_HINT_T0);
  }
#pragma GCC unroll 4
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

// The small-product tile (kernel_table.h gemm_tile): the same 12 x 32 register
// block, fed straight from unpacked operands. A(i, p) is broadcast from
// a[i*rs_a + p*cs_a] (either layout of A); B(p, :) is a row of a (K, N) matrix,
// loaded under a mask for the last columns. MRt rows are a template argument so
// the accumulators stay in registers; Wide uses both 16-column halves.
template <int MRt, bool Wide>
void gemm_tile_t(i64 nr, i64 kc, const float* a, i64 rs_a, i64 cs_a, const float* b, i64 ldb, float* c, i64 ldc,
                 float alpha, float beta) {
  const __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
  const __mmask16 m1 = !Wide ? (__mmask16)0 : nr >= 32 ? (__mmask16)0xFFFF : (__mmask16)((1u << (nr - 16)) - 1);
  __m512 acc[MRt][2];
#pragma GCC unroll 12
  for (int i = 0; i < MRt; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (i64 p = 0; p < kc; ++p, a += cs_a, b += ldb) {
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, b);
    const __m512 b1 = Wide ? _mm512_maskz_loadu_ps(m1, b + 16) : _mm512_setzero_ps();
#pragma GCC unroll 12
    for (int i = 0; i < MRt; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i * rs_a]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      if (Wide) acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
  for (int i = 0; i < MRt; ++i) {
    float* ci = c + i * ldc;
    __m512 r0 = _mm512_mul_ps(va, acc[i][0]), r1 = _mm512_mul_ps(va, acc[i][1]);
    if (beta != 0.f) {
      r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), r0);
      if (Wide) r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), r1);
    }
    _mm512_mask_storeu_ps(ci, m0, r0);
    if (Wide) _mm512_mask_storeu_ps(ci + 16, m1, r1);
  }
}

template <int MRt>
void gemm_tile_rows(i64 nr, i64 kc, const float* a, i64 rs_a, i64 cs_a, const float* b, i64 ldb, float* c, i64 ldc,
                    float alpha, float beta) {
  if (nr > 16) gemm_tile_t<MRt, true>(nr, kc, a, rs_a, cs_a, b, ldb, c, ldc, alpha, beta);
  else gemm_tile_t<MRt, false>(nr, kc, a, rs_a, cs_a, b, ldb, c, ldc, alpha, beta);
}

void gemm_tile(i64 mr, i64 nr, i64 kc, const float* a, i64 rs_a, i64 cs_a, const float* b, i64 ldb, float* c,
               i64 ldc, float alpha, float beta) {
  using Fn = void (*)(i64, i64, const float*, i64, i64, const float*, i64, float*, i64, float, float);
  static constexpr Fn kByRows[MR] = {gemm_tile_rows<1>, gemm_tile_rows<2>, gemm_tile_rows<3>,  gemm_tile_rows<4>,
                                     gemm_tile_rows<5>, gemm_tile_rows<6>, gemm_tile_rows<7>,  gemm_tile_rows<8>,
                                     gemm_tile_rows<9>, gemm_tile_rows<10>, gemm_tile_rows<11>, gemm_tile_rows<12>};
  kByRows[mr - 1](nr, kc, a, rs_a, cs_a, b, ldb, c, ldc, alpha, beta);
}

#include "cpu/isa_transpose_avx.inc"

#include "cpu/isa_common_table.inc"

}  // namespace
}  // namespace avx512

const KernelTable& table_avx512() { return avx512::kTable; }

}  // namespace cpu
}  // namespace gradsmith

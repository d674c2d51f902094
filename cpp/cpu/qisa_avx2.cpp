// The int8 GEMM on AVX2 (compiled with -mavx2; reached only when the AVX2 path is in use).
//
// AVX2 has no vpdpbusd. vpmaddubsw multiplies unsigned by signed bytes and adds pairs into int16 with
// saturation, which 255 * 127 * 2 would overflow; with |a| (<= 127) as the unsigned operand and b carrying
// a's sign (vpsignb) every pair is at most 2 * 127 * 127 = 32258, so nothing saturates. vpmaddwd by ones
// then adds the pairs of a group of 4 into int32: the exact sum.
#include <immintrin.h>

#include "cpu/qkernel_table.h"

namespace gradsmith {
namespace cpu {
namespace qavx2 {
namespace {

constexpr const char* kIsaName = "avx2";
constexpr int MR = 4, NR = 16;  // 4 x (2 ymm of 8 columns) accumulators
constexpr bool kAShift = false;
static_assert(MR * NR <= kQMaxTile, "the drivers' tile buffer holds kQMaxTile sums");

void ukr(i64 kg, const uint8_t* a, const int8_t* b, int32_t* tile) {
  __m256i acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  for (i64 g = 0; g < kg; ++g, a += 4 * MR, b += 4 * NR) {
    const __m256i b0 = _mm256_loadu_si256((const __m256i*)b);
    const __m256i b1 = _mm256_loadu_si256((const __m256i*)(b + 32));
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      int32_t ai;
      __builtin_memcpy(&ai, a + 4 * i, 4);
      const __m256i av = _mm256_set1_epi32(ai);
      const __m256i aa = _mm256_abs_epi8(av);
      const __m256i p0 = _mm256_maddubs_epi16(aa, _mm256_sign_epi8(b0, av));
      const __m256i p1 = _mm256_maddubs_epi16(aa, _mm256_sign_epi8(b1, av));
      acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(p0, ones));
      acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(p1, ones));
    }
  }
  for (int i = 0; i < MR; ++i) {
    _mm256_storeu_si256((__m256i*)(tile + i * NR), acc[i][0]);
    _mm256_storeu_si256((__m256i*)(tile + i * NR + 8), acc[i][1]);
  }
}

#include "cpu/qisa_loops.inc"

}  // namespace
}  // namespace qavx2

const QKernelTable& qtable_avx2() { return qavx2::kQTable; }

}  // namespace cpu
}  // namespace gradsmith

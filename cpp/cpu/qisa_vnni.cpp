// The int8 GEMM on AVX-512 VNNI (compiled with -mavx512f/bw/vl/vnni; reached only after qgemm.cpp has seen
// avx512vnni in cpuid and the AVX-512 path is in use).
//
// 12 x 32 tile: 24 zmm accumulators of 16 int32 lanes, 2 for the B panel's group, 1 for A's broadcast.
// Each vpdpbusd adds, per lane, the 4 products of unsigned A bytes (q + 128) by signed B bytes:
// 64 multiply-adds an instruction, 4x what one float32 FMA does.
#include <immintrin.h>

#include "cpu/qkernel_table.h"

namespace gradsmith {
namespace cpu {
namespace qvnni {
namespace {

constexpr const char* kIsaName = "avx512_vnni";
constexpr int MR = 12, NR = 32;
constexpr bool kAShift = true;
static_assert(MR * NR <= kQMaxTile, "the drivers' tile buffer holds kQMaxTile sums");

void ukr(i64 kg, const uint8_t* a, const int8_t* b, int32_t* tile) {
  __m512i acc[MR][2];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
#pragma GCC unroll 2
  for (i64 g = 0; g < kg; ++g, a += 4 * MR, b += 4 * NR) {
    const __m512i b0 = _mm512_loadu_si512((const void*)b);
    const __m512i b1 = _mm512_loadu_si512((const void*)(b + 64));
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      int32_t ai;
      __builtin_memcpy(&ai, a + 4 * i, 4);
      const __m512i av = _mm512_set1_epi32(ai);
      acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], av, b0);
      acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], av, b1);
    }
  }
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    _mm512_storeu_si512((void*)(tile + i * NR), acc[i][0]);
    _mm512_storeu_si512((void*)(tile + i * NR + 16), acc[i][1]);
  }
}

#include "cpu/qisa_loops.inc"

}  // namespace
}  // namespace qvnni

const QKernelTable& qtable_vnni() { return qvnni::kQTable; }

}  // namespace cpu
}  // namespace gradsmith

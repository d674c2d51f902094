// The portable path: plain C++ for any x86-64 (and any other) CPU. Its
// micro-kernel is the generic fallback and the first thing to read: every
// faster one computes exactly this.
#include "cpu/kernel_table.h"

namespace gradsmith {
namespace cpu {
namespace scalar {
namespace {

#include "cpu/isa_loops.inc"

constexpr const char* kIsaName = "scalar";
constexpr int MR = 4, NR = 8;
// MC x KC of A stays in L2, KC x NR of B in L1.
constexpr GemmBlocking kBlocking = {MR, NR, 128, 256, 2048};

// c[i, j] = alpha * sum_p a[p*MR + i] * b[p*NR + j] + beta * c[i, j]
void gemm_ukr(i64 kc, const float* a, const float* b, float* c, i64 ldc, float alpha, float beta) {
  float acc[MR][NR] = {};
  for (i64 p = 0; p < kc; ++p, a += MR, b += NR)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j)
      c[i * ldc + j] = beta == 0.f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * c[i * ldc + j];
}

// The small-product tile: the same sum from unpacked operands, A(i, p) at
// a[i*rs_a + p*cs_a] and B(p, j) at b[p*ldb + j], for the first mr x nr.
void gemm_tile(i64 mr, i64 nr, i64 kc, const float* a, i64 rs_a, i64 cs_a, const float* b, i64 ldb, float* c,
               i64 ldc, float alpha, float beta) {
  float acc[MR][NR] = {};
  for (i64 p = 0; p < kc; ++p, a += cs_a, b += ldb)
    for (i64 i = 0; i < mr; ++i)
      for (i64 j = 0; j < nr; ++j) acc[i][j] += a[i * rs_a] * b[j];
  for (i64 i = 0; i < mr; ++i)
    for (i64 j = 0; j < nr; ++j)
      c[i * ldc + j] = beta == 0.f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * c[i * ldc + j];
}

// dst[j * ldd + i] = src[i * lds + j] (the faster paths do 8 x 8 blocks in registers).
void transpose(i64 rows, i64 cols, const float* src, i64 lds, float* dst, i64 ldd) {
  for (i64 i = 0; i < rows; ++i)
    for (i64 j = 0; j < cols; ++j) dst[j * ldd + i] = src[i * lds + j];
}

#include "cpu/isa_common_table.inc"

}  // namespace
}  // namespace scalar

const KernelTable& table_scalar() { return scalar::kTable; }

}  // namespace cpu
}  // namespace gradsmith

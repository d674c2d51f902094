// The int8 GEMM's portable path: the reference every faster micro-kernel must equal bit for bit.
#include "cpu/qkernel_table.h"

namespace gradsmith {
namespace cpu {
namespace qscalar {
namespace {

constexpr const char* kIsaName = "scalar";
constexpr int MR = 4, NR = 16;
constexpr bool kAShift = false;
static_assert(MR * NR <= kQMaxTile, "the drivers' tile buffer holds kQMaxTile sums");

// tile[i * NR + j] = sum over groups g and bytes t of a[(g*MR + i)*4 + t] * b[(g*NR + j)*4 + t], A signed.
void ukr(i64 kg, const uint8_t* a, const int8_t* b, int32_t* tile) {
  int32_t acc[MR][NR] = {};
  for (i64 g = 0; g < kg; ++g, a += 4 * MR, b += 4 * NR)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j)
        for (int t = 0; t < 4; ++t) acc[i][j] += (int32_t)(int8_t)a[i * 4 + t] * (int32_t)b[j * 4 + t];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) tile[i * NR + j] = acc[i][j];
}

#include "cpu/qisa_loops.inc"

}  // namespace
}  // namespace qscalar

const QKernelTable& qtable_scalar() { return qscalar::kQTable; }

}  // namespace cpu
}  // namespace gradsmith

// The per-ISA table of the int8 GEMM (qgemm.cpp): C(s32) = A(s8) @ B(s8), exact.
//
// Operands are symmetric int8 in [-127, 127] (Keras's int8 range). A is packed into MR-tall panels and
// B into NR-wide panels, both in groups of 4 along K (the 4 bytes one vpdpbusd lane sums):
//   A panel: byte t of group g of row i at (g * MR + i) * 4 + t
//   B panel: byte t of group g of column j at (g * NR + j) * 4 + t
// K is padded to a multiple of 4 with zeros in B, so padding adds nothing whatever A holds there.
// vpdpbusd multiplies unsigned by signed bytes: the VNNI path stores A as q + 128 (a_shift) and the
// epilogue subtracts 128 * sum_k B(k, j), exactly (int32 throughout). The AVX2 and scalar paths take A
// as it is. Every path gives the same int32 sums, so the same float32 outputs.
#pragma once

#include <stdint.h>

#include "math/elementwise.h"

namespace gradsmith {
namespace cpu {

using i64 = int64_t;

// The largest register tile of any path (MR x NR int32): the drivers' tile buffer holds one.
constexpr int kQMaxTile = 12 * 32;

struct QKernelTable {
  const char* name;
  int mr, nr;    // register tile
  bool a_shift;  // A panels hold q + 128 (as uint8) and the correction 128 * colsum(B) applies
  // tile[i * nr + j] = sum_g sum_t A(i, 4g + t) * B(4g + t, j) over kg groups, i < MR, j < NR.
  void (*ukr)(i64 kg, const uint8_t* a, const int8_t* b, int32_t* tile);
  // The quantized row of Keras's AbsMaxQuantizer(axis=-1), value_range (-127, 127), in float32:
  //   scale = 127 / (max|x| + 1e-7);  q[k] = clip(round_half_even(x[k] * scale), -127, 127)
  void (*quantize_row)(const float* x, i64 k, int8_t* q, float* scale);
  // c[i, j] = float(tile[i * ldt + j] - corr[j]) / (ws[j] * xs[i]) (+ bias[j]) for i < rows, j < cols:
  // Keras's int8 Dense, x / (kernel_scale * inputs_scale) + bias. corr and bias may be null.
  void (*epilogue)(const int32_t* tile, i64 ldt, i64 rows, i64 cols, const int32_t* corr, const float* ws,
                   const float* xs, const float* bias, float* c, i64 ldc);
};

const QKernelTable& qtable_scalar();
const QKernelTable& qtable_avx2();
const QKernelTable& qtable_vnni();

}  // namespace cpu
}  // namespace gradsmith

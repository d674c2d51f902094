// The per-ISA kernel table.
//
// Each of isa_scalar.cpp, isa_avx2.cpp and isa_avx512.cpp fills one table: a
// hand-written GEMM micro-kernel plus the element-wise loops of isa_loops.inc
// compiled for that instruction set. The portable drivers (gemm.cpp, dense.cpp,
// ...) split work across the thread pool and call through the table chosen
// once at import (dispatch.cpp). Every loop takes a range [begin, end) of an
// index space whose split does not change the result.
#pragma once

#include <stdint.h>

#include "core/optimizer.h"
#include "math/elementwise.h"
#include "math/optimizer.h"
#include "math/rows.h"

namespace gradsmith {
namespace cpu {

using i64 = int64_t;

// GEMM blocking (BLIS names): the micro-kernel computes an MR x NR tile of C
// from an MR x KC panel of A and a KC x NR panel of B; the drivers keep an
// MC x KC block of A in L2 and a KC x NC block of B in L3.
struct GemmBlocking {
  int mr, nr, mc, kc, nc;
};

// What happens to a finished tile of C: z = C + bias; optionally store z; C = act(z).
// Pointers are already offset to the tile.
struct Epilogue {
  const float* bias = nullptr;  // (cols,) or null
  ActParams act = {kLinear, 0.f};
  float* preact = nullptr;      // where z goes (leading dimension ldz), or null
  i64 ldz = 0;
};

struct KernelTable {
  const char* name;
  GemmBlocking gemm;
  // C (MR x NR, leading dim ldc) = alpha * A_panel @ B_panel + beta * C; beta == 0 never reads C.
  void (*gemm_ukr)(i64 kc, const float* a, const float* b, float* c, i64 ldc, float alpha, float beta);
  void (*gemm_epilogue)(float* c, i64 ldc, i64 rows, i64 cols, const Epilogue& ep);
  // Small products skip packing: one tile of at most MR x NR,
  //   c[i, j] = alpha * sum_p A(i, p) B(p, j) + beta * c[i, j]   (i < mr, j < nr, p in order)
  // with A(i, p) at a[i*rs_a + p*cs_a] (A or A^T in place) and B(p, j) at b[p*ldb + j].
  void (*gemm_tile)(i64 mr, i64 nr, i64 kc, const float* a, i64 rs_a, i64 cs_a, const float* b, i64 ldb, float* c,
                    i64 ldc, float alpha, float beta);
  // dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols (op(B) = B^T into rows for the GEMM).
  void (*transpose)(i64 rows, i64 cols, const float* src, i64 lds, float* dst, i64 ldd);
  // One-column products over rows [r0, r1) of y: y[i] = sum_p op(A)(i, p) x[p], A in place
  // (a_cols: op(A) = A^T, read as rows of A), x contiguous; see isa_loops.inc.
  void (*gemv)(bool a_cols, i64 K, const float* A, i64 lda, const float* x, float* y, i64 r0, i64 r1);
  // y[i] = f(z[i]) ; dz[i] = dy[i] * f'(z[i]) over [begin, end)
  void (*act_forward)(ActParams act, const float* z, float* y, i64 begin, i64 end);
  void (*act_backward)(ActParams act, const float* dy, const float* z, float* dz, i64 begin, i64 end);
  // Row-wise over rows [r0, r1) of (rows, cols) matrices.
  void (*softmax_forward)(const float* z, float* y, i64 cols, i64 r0, i64 r1);
  void (*softmax_backward)(const float* dy, const float* y, float* dz, i64 cols, i64 r0, i64 r1);
  // Dense backward's element-wise pass over columns [c0, c1) of all rows:
  // dz = dy * f'(z) and db[j] = sum_i dz[i, j] summed in row order (db may be null).
  void (*dense_dz_colsum)(ActParams act, const float* dy, const float* z, float* dz, float* db,
                          i64 rows, i64 cols, i64 c0, i64 c1);
  // out[j] = sum_i x[i, j] in row order, columns [c0, c1)
  void (*col_sums)(const float* x, float* out, i64 rows, i64 cols, i64 c0, i64 c1);
  // Sum and sum of squares of x[begin, end) in a fixed order, accumulated in double.
  double (*sum)(const float* x, i64 begin, i64 end);
  double (*sum_squares)(const float* x, i64 begin, i64 end);
  // One fused optimizer step (math::optimizer_update) over elements [begin, end) of a's buffers.
  void (*optimizer)(const OptimizerArgs& a, i64 begin, i64 end);
  // y[i] = kept(first + i) ? x[i] / keep : 0 over [begin, end) of the flat index (math::dropout_keep): the coin
  // of element i is that of element first + i of a larger batch (a data-parallel rank's share).
  void (*dropout)(const float* x, float* y, i64 begin, i64 end, uint32_t threshold, float keep,
                  uint64_t seed, uint64_t offset, i64 first);
};

const KernelTable& table_scalar();
const KernelTable& table_avx2();
const KernelTable& table_avx512();

}  // namespace cpu
}  // namespace gradsmith

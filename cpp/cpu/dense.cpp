// Dense layer, forward and backward side by side.
//
//   forward:  z = x @ W + b        x (batch, in), W (in, units), b (units,)
//             y = f(z)             bias and f applied in the GEMM's epilogue
//   backward: dz = dy * f'(z)      one pass that also sums db = sum_rows dz
//             dW = x^T @ dz        (in, units)
//             dx = dz @ W^T        (batch, in)
#include "cpu/dispatch.h"
#include "cpu/ops.h"
#include "cpu/profiler.h"
#include "cpu/thread_pool.h"

namespace gradsmith {
namespace cpu {

void dense_forward(const float* x, const float* W, const float* b, ActParams act, float* y, float* z, i64 batch,
                   i64 in, i64 units) {
  // FLOPs per output: the GEMM's 2 * in, 1 for the bias, f's (prof::act_flops); bytes: x, W, b read, y (and z) written.
  GS_PROFILE_SCOPE("dense_forward", (2.0 * in + (b ? 1 : 0) + prof::act_flops(act, false)) * batch * units,
                   4.0 * (batch * in + in * units + (b ? units : 0) + (z ? 2 : 1) * batch * units), batch, in, units);
  Epilogue ep;
  ep.bias = b;
  ep.act = act.kind == kSoftmax ? ActParams{kLinear, 0.f} : act;
  ep.preact = z;
  ep.ldz = units;
  gemm(false, false, batch, units, in, 1.f, x, in, W, units, 0.f, y, units, &ep);
  // Softmax needs whole rows, which the tile epilogue does not see: one row pass.
  if (act.kind == kSoftmax) activation_forward(act, y, y, batch, units);
}

const float* activation_grad_and_bias_sum(ActParams act, const float* dy, const float* z, float* dz_scratch, float* db,
                                          i64 rows, i64 cols) {
  if (act.kind == kLinear) {
    if (db) col_sums(dy, db, rows, cols);
    return dy;  // f' = 1: no pass needed
  }
  if (act.kind == kSoftmax) {
    activation_backward(act, dy, z, dz_scratch, rows, cols);
    if (db) col_sums(dz_scratch, db, rows, cols);
    return dz_scratch;
  }
  // Columns split among tasks; each column summed over rows in order.
  const KernelTable& kt = kernels();
  constexpr i64 kCols = 64;
  const i64 tasks = (cols + kCols - 1) / kCols;
  parallel_for(tasks, [&](int64_t t, int) {
    i64 c0 = t * kCols, c1 = c0 + kCols < cols ? c0 + kCols : cols;
    kt.dense_dz_colsum(act, dy, z, dz_scratch, db, rows, cols, c0, c1);
  }, threads_for_elements(rows * cols));
  return dz_scratch;
}

void dense_backward(const float* dy, const float* x, const float* W, const float* z, ActParams act, float* dz_scratch,
                    float* dx, float* dW, float* db, i64 batch, i64 in, i64 units) {
  // FLOPs per element of dz: dz = dy f'(z), 1 add for db, 2 * in for dW = x^T dz and as many for dx = dz W^T.
  // Bytes: dy, x read; z read and dz written unless linear; dW written; W read and dx written; db written.
  GS_PROFILE_SCOPE("dense_backward",
                   (prof::act_flops(act, true) + (db ? 1 : 0) + 2.0 * in * (dx ? 2 : 1)) * batch * units,
                   4.0 * (batch * units + batch * in + (act.kind != kLinear ? 2 : 0) * batch * units + in * units +
                          (dx ? in * units + batch * in : 0) + (db ? units : 0)), batch, in, units);
  const float* dz = activation_grad_and_bias_sum(act, dy, z, dz_scratch, db, batch, units);
  gemm(true, false, in, units, batch, 1.f, x, in, dz, units, 0.f, dW, units);
  if (dx) gemm(false, true, batch, in, units, 1.f, dz, units, W, units, 0.f, dx, in);
}

}  // namespace cpu
}  // namespace gradsmith

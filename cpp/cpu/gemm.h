// GEMM: C = alpha * op(A) @ op(B) + beta * C, float32, row-major, with an
// optional epilogue (bias, activation, saved pre-activation) applied to each
// tile of C as it is finished, so a dense layer makes one pass over its output.
//
// op(A) is (M, K): A is (M, K) with leading dimension lda, or (K, M) when ta.
// op(B) is (K, N): B is (K, N) with leading dimension ldb, or (N, K) when tb.
// beta == 0 never reads C. The caller has checked every size and pointer.
#pragma once

#include "cpu/kernel_table.h"

namespace gradsmith {
namespace cpu {

void gemm(bool ta, bool tb, i64 M, i64 N, i64 K, float alpha, const float* A, i64 lda, const float* B, i64 ldb,
          float beta, float* C, i64 ldc, const Epilogue* ep = nullptr);

}  // namespace cpu
}  // namespace gradsmith

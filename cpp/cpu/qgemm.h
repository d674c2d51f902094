// The int8 GEMM and the int8 Dense forward built on it (Keras's `quantize("int8")` numbers).
//
//   qgemm_s32:    C (M, N) int32 = A (M, K) int8 @ B (K, N) int8, exact
//   qdense_forward: Y (M, N) float32 = act(Q(X) @ W / (w_scale * x_scale) + bias), with Q(X) the per-row
//                 abs-max quantization of X (Keras's AbsMaxQuantizer(axis=-1)), in one pass over Y
//
// B is packed once (qgemm_pack_b) into the panels of the int8 path in use; a packing made for another path
// (qgemm_packed_for) is refused. Entries of A and B must lie in [-127, 127] (Keras's symmetric range; the
// AVX2 path relies on it), and K <= kQgemmMaxK keeps every int32 sum exact. The callers check both.
#pragma once

#include <stdint.h>

#include "cpu/qkernel_table.h"

namespace gradsmith {
namespace cpu {

constexpr i64 kQgemmMaxK = 65536;  // 255 * 127 * 65536 < 2^31

// The int8 table in use: avx512_vnni when the AVX-512 path is in use and the CPU has VNNI, else the
// AVX2 or scalar one of the float32 path in use (dispatch.h: GRADSMITH_CPU and set_isa choose both).
const QKernelTable& qkernels();
// Whether this CPU has AVX-512 VNNI (the peak and the benchmark say so).
bool cpu_has_vnni();

// Bytes of B packed for `qk`: ceil(N / NR) panels of NR columns x ceil(K / 4) groups of 4.
i64 qgemm_packed_bytes(const QKernelTable& qk, i64 K, i64 N);
// dst = B (K, N, row-major, ldb) in qk's panels; colsum[j] = sum_k B(k, j).
void qgemm_pack_b(const QKernelTable& qk, i64 K, i64 N, const int8_t* B, i64 ldb, int8_t* dst, int32_t* colsum);

void qgemm_s32(i64 M, i64 N, i64 K, const int8_t* A, i64 lda, const int8_t* packed_b, const int32_t* colsum,
               int32_t* C, i64 ldc);

// x_scale (M,) receives each row's scale. bias may be null.
void qdense_forward(i64 M, i64 N, i64 K, const float* X, i64 ldx, const int8_t* packed_w, const int32_t* colsum,
                    const float* w_scale, const float* bias, ActParams act, float* Y, i64 ldy, float* x_scale);

}  // namespace cpu
}  // namespace gradsmith

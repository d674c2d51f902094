// CUDA kernels over device pointers (launched on the default stream). Each
// computes the formula of its CPU twin from math/ (elementwise.h, optimizer.h), compiled
// __host__ __device__, so both sides run one source.
#pragma once

#include <stdint.h>

#include "core/optimizer.h"
#include "math/rows.h"

namespace gradsmith {
namespace cuda {

using i64 = int64_t;

// y = f(z), dz = dy * f'(z) over n elements (element-wise activations; not softmax).
void activation_forward(ActParams act, const float* z, float* y, i64 n);
void activation_backward(ActParams act, const float* dy, const float* z, float* dz, i64 n);
// y = kept(i) ? x / (1 - rate) : 0 with the CPU's mask: Philox(seed; i / 4, offset)[i % 4].
void dropout(const float* x, float* y, i64 n, double rate, uint64_t seed, uint64_t offset, i64 first = 0);
// One launch over one flat buffer: args.w, g, s0..s2 are device pointers;
// clip by value and weight decay as on the CPU (norm clipping: not yet).
void optimizer_step(const OptimizerArgs& args, i64 n);

}  // namespace cuda
}  // namespace gradsmith

namespace gradsmith {
namespace cuda {

// Products of gemm and dense_forward: 0 plain float32 (default), 1 TF32, 2 BF16 (tensor cores, float32
// sums; used where the device has them, compute capability 8.0+).
void set_matmul_precision(int precision);
int matmul_precision();
bool matmul_uses_tensor_cores();  // the precision asks for them and the device has them
// C (M, N) = alpha op(A) op(B) + beta C, row-major, op = transpose when ta / tb (gemm.cu).
void gemm(bool ta, bool tb, i64 M, i64 N, i64 K, float alpha, const float* A, i64 lda, const float* B, i64 ldb,
          float beta, float* C, i64 ldc);
// z = x W + b (kept when z is not null), y = f(z); x (batch, in), W (in, units).
void dense_forward(const float* x, const float* W, const float* b, ActParams act, float* y, float* z, i64 batch,
                   i64 in, i64 units);
// Keras's int8 Dense (qgemm.cu, the twin of cpu::qdense_forward): x (M, K) quantized per row into a_words
// (M, ceil(K / 4)) int32 scratch and x_scale (M,), then y = act(Q(x) @ W / (w_scale * x_scale) + bias) with W as
// w_words (ceil(K / 4), N): bytes 4g..4g+3 of column j in word (g, j), zero past K. bias may be null.
void qdense_forward(const float* x, const int32_t* w_words, const float* w_scale, const float* bias, ActParams act,
                    float* y, i64 M, i64 K, i64 N, int32_t* a_words, float* x_scale);
// dz = dy * f'(z) into dz_scratch and db = column sums of dz (fixed order), then
// dW = x^T dz and dx = dz W^T (dx, db may be null).
void dense_backward(const float* dy, const float* x, const float* W, const float* z, ActParams act, float* dz_scratch,
                    float* dx, float* dW, float* db, i64 batch, i64 in, i64 units);

}  // namespace cuda
}  // namespace gradsmith

namespace gradsmith {
namespace cuda {

// Row-wise softmax of (rows, cols) and its backward pass dz = y (dy - <dy, y>), y = softmax(z).
void softmax_forward(const float* z, float* y, i64 rows, i64 cols);
void softmax_backward(const float* dy, const float* z, float* dz, i64 rows, i64 cols);
// value = (1/rows) sum_i w_i L_i and grad = d value / d y_pred, as cpu::loss_and_grad; the value comes
// back to the host (one synchronization). Per-row values are summed in a fixed order: same bits every run.
double loss_and_grad(const LossArgs& args, const float* y_true, const int64_t* labels, const float* y_pred,
                     const float* sample_weight, float* grad, i64 rows, i64 cols);
// The same into device memory, with no synchronization: *value = weight * the loss value, and a weight
// other than 1 scales grad too; row_scratch holds `rows` doubles.
void loss_and_grad_into(const LossArgs& args, double weight, const float* y_true, const int64_t* labels,
                        const float* y_pred, const float* sample_weight, float* grad, i64 rows, i64 cols,
                        double* row_scratch, double* value);
// sum x_i^2 over n floats, in double and a fixed order; the value comes back to the host.
double sum_squares(const float* x, i64 n);
// out[j] = sum_i x[i, j], rows in order.
void col_sums(const float* x, float* out, i64 rows, i64 cols);

}  // namespace cuda
}  // namespace gradsmith

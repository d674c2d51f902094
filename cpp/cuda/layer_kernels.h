// CUDA twins of the CPU kernels the layer kinds of model/layers/ call beyond dense and activations
// (cpu/ops.h): batch normalization, Dropout with a noise shape, convolution and pooling. Device pointers,
// default stream; the formulas are the CPU's, from math/normalization.h, math/broadcast.h and math/conv.h.
#pragma once

#include <stdint.h>

#include "math/broadcast.h"
#include "math/conv.h"
#include "math/elementwise.h"
#include "math/recurrent.h"

namespace gradsmith {
namespace cuda {

using i64 = int64_t;

// As cpu::batch_norm_forward / batch_norm_backward / moving_average (cuda/batchnorm.cu): per column of x
// (rows, cols); the column sums run down the rows in order in double, one thread per column. Backward
// through the batch's statistics keeps two floats per column in column_sums (2 * cols).
void batch_norm_forward(const float* x, const float* gamma, const float* beta, float eps, bool training, float* mean,
                        float* var, float* y, i64 rows, i64 cols);
void batch_norm_backward(const float* dy, const float* x, const float* mean, const float* var, const float* gamma,
                         float eps, bool batch_statistics, float* dx, float* dgamma, float* dbeta, i64 rows,
                         i64 cols, float* column_sums);
void moving_average(float* moving, const float* value, double momentum, i64 n);

// As cpu::dropout_mask / dropout_broadcast (cuda/dropout.cu).
void dropout_mask(float* mask, i64 n, double rate, uint64_t seed, uint64_t offset, i64 first = 0);
void dropout_broadcast(const float* x, float* y, const float* mask, const math::NoiseShape& s, i64 batch,
                       double rate);

// As cpu::conv_forward / conv_backward (cuda/conv.cu), NHWC: x (batch, in_h, in_w, in_c), W (k_h, k_w, in_c,
// out_c), y, z, dy (batch, out_h, out_w, out_c). Both take `scratch`, conv_scratch(g, batch) floats of
// device memory (the plan's arena): forward im2col's a fixed number of output pixels at a time into it for
// the GEMM with the bias and activation in its epilogue; backward keeps dz, the partial sums of db and dW and
// the im2col-shaped dx rows there. dx and db may be null; z is y itself when act is linear. Every sum runs in
// an order fixed by the sizes alone: the same bits on every run.
void conv_forward(const math::ConvGeometry& g, const float* x, const float* W, const float* b, ActParams act, float* y,
                  float* z, float* scratch, i64 batch);
void conv_backward(const math::ConvGeometry& g, const float* dy, const float* x, const float* W, const float* z,
                   ActParams act, float* scratch, float* dx, float* dW, float* db, i64 batch);
i64 conv_scratch(const math::ConvGeometry& g, i64 batch);

// As cpu::pool_forward / pool_backward (cuda/pool.cu): one thread per output (math::pool_value) and per
// input element (math::pool_input_grad, a gather: no atomics), so the CPU's bits. arg null in inference.
void pool_forward(const math::PoolGeometry& g, const float* x, float* y, float* arg, i64 batch);
void pool_backward(const math::PoolGeometry& g, const float* dy, const float* arg, float* dx, i64 batch);

// As cpu::embedding_ids / embedding_forward / embedding_backward (cuda/embedding.cu): first_bad (device memory)
// gets the index of the first id that is not a whole number in [0, vocab), or -1; backward is a gather per
// table row (no atomics), summing in the CPU's order, so the CPU's bits.
void embedding_ids(const float* x, int64_t* ids, i64 n, i64 vocab, int64_t* first_bad);
void embedding_forward(const int64_t* ids, const float* table, float* y, i64 n, i64 dim);
void embedding_backward(const int64_t* ids, const float* dy, float* dtable, float* dx, i64 n, i64 vocab, i64 dim);
// As cpu::rnn_forward / rnn_backward (cuda/recurrent.cu): the same buffers and scratch (math/recurrent.h's
// sizes), device memory; the per-step passes are one kernel each over (sample, unit).
void rnn_forward(const math::RnnSpec& s, const float* x, const float* W, const float* U, const float* b,
                 const float* h0, const float* c0, float* hseq, float* extra, float* gates, float* hprev,
                 float* scratch);
void rnn_backward(const math::RnnSpec& s, const float* x, const float* W, const float* U, const float* c0,
                  const float* dy_seq, const float* dy_last, float* gates, const float* hprev, const float* extra,
                  float* scratch, float* dx, float* dW, float* dU, float* db);
// y (batch, u) = hseq[:, steps - 1] of hseq (batch, steps, u).
void rnn_last_step(const float* hseq, float* y, i64 batch, i64 steps, i64 units);

}  // namespace cuda
}  // namespace gradsmith

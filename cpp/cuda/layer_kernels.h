// CUDA twins of the CPU kernels the layer kinds of model/layers/ call beyond dense and activations
// (cpu/ops.h): batch normalization and Dropout with a noise shape. Device pointers, default stream; the
// formulas are the CPU's, from math/normalization.h and math/broadcast.h.
#pragma once

#include <stdint.h>

#include "math/broadcast.h"

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
void dropout_mask(float* mask, i64 n, double rate, uint64_t seed, uint64_t offset);
void dropout_broadcast(const float* x, float* y, const float* mask, const math::NoiseShape& s, i64 batch,
                       double rate);

}  // namespace cuda
}  // namespace gradsmith

// Batch normalization on the GPU: the CPU's formulas (math/normalization.h) and order of summation.
//
//   statistics   one thread per column (grid-stride) runs down the rows in order, summing in double: the
//                CPU's order, the same bits every run (for few columns this uses few threads: simple, not
//                fast); nvcc may fuse the products into the double sums, so bits can differ from the CPU's
//   y, dx        one thread per element
#include <math.h>

#include "cuda/launch.h"
#include "cuda/layer_kernels.h"
#include "math/normalization.h"

namespace gradsmith {
namespace cuda {
namespace {

__global__ void statistics_kernel(const float* x, float* mean, float* var, i64 rows, i64 cols) {
  for (i64 j = blockIdx.x * (i64)blockDim.x + threadIdx.x; j < cols; j += (i64)gridDim.x * blockDim.x) {
    double acc = 0.0;
    for (i64 i = 0; i < rows; ++i) acc += x[i * cols + j];
    const float m = rows ? (float)(acc / (double)rows) : 0.f;
    acc = 0.0;
    for (i64 i = 0; i < rows; ++i) {
      const double d = (double)x[i * cols + j] - (double)m;
      acc += d * d;
    }
    mean[j] = m;
    var[j] = rows ? (float)(acc / (double)rows) : 0.f;
  }
}

__global__ void normalize_kernel(const float* x, const float* mean, const float* var, const float* gamma,
                                 const float* beta, float eps, float* y, i64 rows, i64 cols) {
  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < rows * cols; e += (i64)gridDim.x * blockDim.x) {
    const i64 j = e % cols;
    float s, shift;
    math::bn_scale_shift(mean[j], var[j], gamma, beta, eps, j, &s, &shift);
    y[e] = math::mul_add_rounded(x[e], s, shift);
  }
}

// Per column: dbeta = sum dy, dgamma = sum dy xhat (double, rows in order); the float sums for dx go to
// sums[j] and sums[cols + j].
__global__ void column_grads_kernel(const float* dy, const float* x, const float* mean, const float* var,
                                    float eps, float* dgamma, float* dbeta, float* sums, i64 rows, i64 cols) {
  for (i64 j = blockIdx.x * (i64)blockDim.x + threadIdx.x; j < cols; j += (i64)gridDim.x * blockDim.x) {
    const float rstd = math::bn_rstd(var[j], eps), m = mean[j];
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (i64 i = 0; i < rows; ++i) {
      const float g = dy[i * cols + j], xhat = (x[i * cols + j] - m) * rstd;
      sum_dy += g;
      sum_dy_xhat += (double)g * (double)xhat;
    }
    if (dbeta) dbeta[j] = (float)sum_dy;
    if (dgamma) dgamma[j] = (float)sum_dy_xhat;
    if (sums) sums[j] = (float)sum_dy, sums[cols + j] = (float)sum_dy_xhat;
  }
}

__global__ void input_grad_kernel(const float* dy, const float* x, const float* mean, const float* var,
                                  const float* gamma, float eps, const float* sums, float* dx, i64 rows, i64 cols) {
  const float inv_n = 1.f / (float)rows;
  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < rows * cols; e += (i64)gridDim.x * blockDim.x) {
    const i64 j = e % cols;
    const float rstd = math::bn_rstd(var[j], eps), s = gamma ? rstd * gamma[j] : rstd;
    dx[e] = sums ? math::bn_dx(dy[e], x[e], mean[j], rstd, s, sums[j], sums[cols + j], inv_n) : dy[e] * s;
  }
}

__global__ void moving_average_kernel(float* moving, const float* value, float m, float one_minus, i64 n) {
  for (i64 j = blockIdx.x * (i64)blockDim.x + threadIdx.x; j < n; j += (i64)gridDim.x * blockDim.x)
    moving[j] = math::moving_average(moving[j], value[j], m, one_minus);
}

}  // namespace

void batch_norm_forward(const float* x, const float* gamma, const float* beta, float eps, bool training, float* mean,
                        float* var, float* y, i64 rows, i64 cols) {
  if (training) {
    GS_LAUNCH(statistics_kernel, launch_blocks(cols), kLaunchThreads, 0, 0)(x, mean, var, rows, cols);
    check_launch("batch_norm statistics kernel");
  }
  GS_LAUNCH(normalize_kernel, launch_blocks(rows * cols), kLaunchThreads, 0, 0)(
      x, mean, var, gamma, beta, eps, y, rows, cols);
  check_launch("batch_norm normalize kernel");
}

void batch_norm_backward(const float* dy, const float* x, const float* mean, const float* var, const float* gamma,
                         float eps, bool batch_statistics, float* dx, float* dgamma, float* dbeta, i64 rows,
                         i64 cols, float* column_sums) {
  float* sums = batch_statistics && dx ? column_sums : nullptr;
  GS_LAUNCH(column_grads_kernel, launch_blocks(cols), kLaunchThreads, 0, 0)(
      dy, x, mean, var, eps, dgamma, dbeta, sums, rows, cols);
  check_launch("batch_norm column gradient kernel");
  if (!dx) return;
  GS_LAUNCH(input_grad_kernel, launch_blocks(rows * cols), kLaunchThreads, 0, 0)(
      dy, x, mean, var, gamma, eps, sums, dx, rows, cols);
  check_launch("batch_norm input gradient kernel");
}

void moving_average(float* moving, const float* value, double momentum, i64 n) {
  GS_LAUNCH(moving_average_kernel, launch_blocks(n), kLaunchThreads, 0, 0)(
      moving, value, (float)momentum, (float)(1.0 - momentum), n);
  check_launch("moving average kernel");
}

}  // namespace cuda
}  // namespace gradsmith

// Batch normalization over the rows of x (rows, cols), per column (feature):
//
//   training:  mean_j = (1/N) sum_i x_ij,  var_j = (1/N) sum_i (x_ij - mean_j)^2   (two passes, in double)
//   both:      s_j = gamma_j / sqrt(var_j + eps),  y_ij = x_ij s_j + (beta_j - mean_j s_j)
//              (Keras's ops.batch_normalization: x * inv + (offset - mean * inv))
//   backward (batch statistics), xhat = (x - mean) / sqrt(var + eps):
//              dbeta_j = sum_i dy_ij,  dgamma_j = sum_i dy_ij xhat_ij,
//              dx_ij = s_j (dy_ij - (dbeta_j + xhat_ij dgamma_j) / N)
//
// Tasks are blocks of columns, each running down every row in order, so the
// sums (and the results) are the same for any thread count.
#include <math.h>

#include "cpu/ops.h"
#include "math/normalization.h"
#include "cpu/profiler.h"
#include "cpu/scratch.h"
#include "cpu/thread_pool.h"

namespace gradsmith {
namespace cpu {
namespace {

constexpr i64 kCols = 64;  // columns per task: their double accumulators stay in L1

template <class F>
void by_column_blocks(i64 rows, i64 cols, F&& block) {
  parallel_for(
      (cols + kCols - 1) / kCols,
      [&](int64_t t, int) {
        const i64 c0 = t * kCols, c1 = c0 + kCols < cols ? c0 + kCols : cols;
        block(c0, c1);
      },
      threads_for_elements(rows * cols));
}

}  // namespace

void batch_norm_forward(const float* x, const float* gamma, const float* beta, float eps, bool training, float* mean,
                        float* var, float* y, i64 rows, i64 cols) {
  // FLOPs: training 2 + 3 per element for the statistics, 2 for y; bytes: x read (twice more in training), y written
  GS_PROFILE_SCOPE("batch_norm_forward", (training ? 7.0 : 2.0) * rows * cols,
                   4.0 * rows * cols * (training ? 4 : 2), rows, cols, -1);
  by_column_blocks(rows, cols, [&](i64 c0, i64 c1) {
    if (training) {
      double acc[kCols];
      for (i64 j = c0; j < c1; ++j) acc[j - c0] = 0.0;
      for (i64 i = 0; i < rows; ++i)
        for (i64 j = c0; j < c1; ++j) acc[j - c0] += x[i * cols + j];
      for (i64 j = c0; j < c1; ++j) mean[j] = rows ? (float)(acc[j - c0] / (double)rows) : 0.f, acc[j - c0] = 0.0;
      for (i64 i = 0; i < rows; ++i)
        for (i64 j = c0; j < c1; ++j) {
          const double d = (double)x[i * cols + j] - (double)mean[j];
          acc[j - c0] += d * d;
        }
      for (i64 j = c0; j < c1; ++j) var[j] = rows ? (float)(acc[j - c0] / (double)rows) : 0.f;
    }
    float s[kCols], shift[kCols];
    for (i64 j = c0; j < c1; ++j)
      math::bn_scale_shift(mean[j], var[j], gamma, beta, eps, j, &s[j - c0], &shift[j - c0]);
    for (i64 i = 0; i < rows; ++i)
      for (i64 j = c0; j < c1; ++j)
        y[i * cols + j] = math::mul_add_rounded(x[i * cols + j], s[j - c0], shift[j - c0]);
  });
}

void batch_norm_backward(const float* dy, const float* x, const float* mean, const float* var, const float* gamma,
                         float eps, bool batch_statistics, float* dx, float* dgamma, float* dbeta, i64 rows,
                         i64 cols) {
  // FLOPs: 4 per element for the two column sums, 4 for dx; bytes: dy and x read twice, dx written
  GS_PROFILE_SCOPE("batch_norm_backward", 8.0 * rows * cols, 4.0 * rows * cols * 5, rows, cols, -1);
  by_column_blocks(rows, cols, [&](i64 c0, i64 c1) {
    double sum_dy[kCols], sum_dy_xhat[kCols];
    float rstd[kCols], s[kCols];
    for (i64 j = c0; j < c1; ++j) {
      rstd[j - c0] = math::bn_rstd(var[j], eps);
      s[j - c0] = gamma ? rstd[j - c0] * gamma[j] : rstd[j - c0];
      sum_dy[j - c0] = sum_dy_xhat[j - c0] = 0.0;
    }
    for (i64 i = 0; i < rows; ++i)
      for (i64 j = c0; j < c1; ++j) {
        const float g = dy[i * cols + j], xhat = (x[i * cols + j] - mean[j]) * rstd[j - c0];
        sum_dy[j - c0] += g;
        sum_dy_xhat[j - c0] += (double)g * (double)xhat;
      }
    for (i64 j = c0; j < c1; ++j) {
      if (dbeta) dbeta[j] = (float)sum_dy[j - c0];
      if (dgamma) dgamma[j] = (float)sum_dy_xhat[j - c0];
    }
    if (!dx) return;
    if (!batch_statistics) {  // moving statistics are constants: y is affine in x
      for (i64 i = 0; i < rows; ++i)
        for (i64 j = c0; j < c1; ++j) dx[i * cols + j] = dy[i * cols + j] * s[j - c0];
      return;
    }
    const float inv_n = 1.f / (float)rows;
    for (i64 i = 0; i < rows; ++i)
      for (i64 j = c0; j < c1; ++j) {
        dx[i * cols + j] = math::bn_dx(dy[i * cols + j], x[i * cols + j], mean[j], rstd[j - c0], s[j - c0],
                                       (float)sum_dy[j - c0], (float)sum_dy_xhat[j - c0], inv_n);
      }
  });
}

void batch_norm_column_sums(const float* x, const float* center, double* sums, i64 rows, i64 cols) {
  by_column_blocks(rows, cols, [&](i64 c0, i64 c1) {
    for (i64 j = c0; j < c1; ++j) sums[j] = 0.0;
    for (i64 i = 0; i < rows; ++i)
      for (i64 j = c0; j < c1; ++j) {
        if (!center) {
          sums[j] += x[i * cols + j];
        } else {
          const double d = (double)x[i * cols + j] - (double)center[j];
          sums[j] += d * d;
        }
      }
  });
}

void batch_norm_backward_sums(const float* dy, const float* x, const float* mean, const float* var, float eps,
                              double* sum_dy, double* sum_dy_xhat, i64 rows, i64 cols) {
  by_column_blocks(rows, cols, [&](i64 c0, i64 c1) {
    for (i64 j = c0; j < c1; ++j) sum_dy[j] = sum_dy_xhat[j] = 0.0;
    for (i64 i = 0; i < rows; ++i)
      for (i64 j = c0; j < c1; ++j) {
        const float g = dy[i * cols + j], xhat = (x[i * cols + j] - mean[j]) * math::bn_rstd(var[j], eps);
        sum_dy[j] += g;
        sum_dy_xhat[j] += (double)g * (double)xhat;
      }
  });
}

void batch_norm_backward_dx(const float* dy, const float* x, const float* mean, const float* var, const float* gamma,
                            float eps, const double* sum_dy, const double* sum_dy_xhat, float* dx, i64 rows, i64 cols,
                            i64 total_rows) {
  const float inv_n = 1.f / (float)total_rows;
  by_column_blocks(rows, cols, [&](i64 c0, i64 c1) {
    for (i64 i = 0; i < rows; ++i)
      for (i64 j = c0; j < c1; ++j) {
        const float rstd = math::bn_rstd(var[j], eps), s = gamma ? rstd * gamma[j] : rstd;
        dx[i * cols + j] = math::bn_dx(dy[i * cols + j], x[i * cols + j], mean[j], rstd, s, (float)sum_dy[j],
                                       (float)sum_dy_xhat[j], inv_n);
      }
  });
}

void moving_average(float* moving, const float* value, double momentum, i64 n) {
  const float m = (float)momentum, one_minus = (float)(1.0 - momentum);
  for (i64 j = 0; j < n; ++j) moving[j] = math::moving_average(moving[j], value[j], m, one_minus);
}

}  // namespace cpu
}  // namespace gradsmith

#include "cuda/kernels.h"

#include <cuda_runtime.h>
#include <math.h>

#include <string>

#include "cuda/launch.h"
#include "cuda/runtime.h"
#include "math/elementwise.h"
#include "math/optimizer.h"

namespace gradsmith {
namespace cuda {
namespace {

using namespace ::gradsmith::math;
constexpr int kThreads = 256;

int blocks_for(i64 n) {
  const i64 b = (n + kThreads - 1) / kThreads;
  return (int)(b < 65535 * 32 ? b : 65535 * 32);  // grid-stride loops cover the rest
}

__global__ void activation_forward_kernel(ActParams act, const float* z, float* y, i64 n) {
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
    y[i] = act_forward(act.kind, act.param, z[i]);
}

__global__ void activation_backward_kernel(ActParams act, const float* dy, const float* z, float* dz, i64 n) {
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
    dz[i] = dy[i] * act_derivative(act.kind, act.param, z[i]);
}

// Thread t handles the four coins of Philox block first / 4 + t, as the CPU loop draws them: element i takes
// the coin of index first + i.
__global__ void dropout_kernel(const float* x, float* y, i64 n, uint32_t threshold, float keep, uint64_t seed,
                               uint64_t offset, i64 first) {
  const uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  const i64 b0 = first / 4, blocks = (first + n + 3) / 4 - b0;
  for (i64 t = blockIdx.x * (i64)blockDim.x + threadIdx.x; t < blocks; t += (i64)gridDim.x * blockDim.x) {
    const i64 b = b0 + t;
    U32x4 ctr = {{(uint32_t)b, (uint32_t)((uint64_t)b >> 32), (uint32_t)offset, (uint32_t)(offset >> 32)}};
    const U32x4 r = philox4x32_10(ctr, k0, k1);
    for (int lane = 0; lane < 4; ++lane) {
      const i64 i = b * 4 + lane - first;
      if (i >= 0 && i < n) y[i] = dropout_keep(r.v[lane], threshold) ? x[i] / keep : 0.f;
    }
  }
}

__global__ void optimizer_kernel(OptimizerArgs a, i64 n) {
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
    float w = a.w[i];
    optimizer_update(a.kind, a, &w, a.g[i], a.s0 ? a.s0 + i : nullptr, a.s1 ? a.s1 + i : nullptr,
                     a.s2 ? a.s2 + i : nullptr, a.keep ? a.keep + i : nullptr);
    a.w[i] = w;
  }
}

}  // namespace

void activation_forward(ActParams act, const float* z, float* y, i64 n) {
  if (n <= 0) return;
  GS_LAUNCH(activation_forward_kernel, blocks_for(n), kThreads, 0, 0)(act, z, y, n);
  check_launch("activation_forward kernel");
}

void activation_backward(ActParams act, const float* dy, const float* z, float* dz, i64 n) {
  if (n <= 0) return;
  GS_LAUNCH(activation_backward_kernel, blocks_for(n), kThreads, 0, 0)(act, dy, z, dz, n);
  check_launch("activation_backward kernel");
}

void dropout(const float* x, float* y, i64 n, double rate, uint64_t seed, uint64_t offset, i64 first) {
  if (n <= 0) return;
  const uint32_t threshold = (uint32_t)ceil(rate * 16777216.0);  // as cpu::dropout
  GS_LAUNCH(dropout_kernel, blocks_for((n + 3) / 4 + 1), kThreads, 0, 0)(
      x, y, n, threshold, (float)(1.0 - rate), seed, offset, first);
  check_launch("dropout kernel");
}

void optimizer_step(const OptimizerArgs& args, i64 n) {
  if (n <= 0) return;
  GS_LAUNCH(optimizer_kernel, blocks_for(n), kThreads, 0, 0)(args, n);
  check_launch("optimizer kernel");
}

}  // namespace cuda
}  // namespace gradsmith

namespace gradsmith {
namespace cuda {
namespace {

// One thread per column: dz = dy * f'(z) down the column, and its sum in row
// order, so db has the same bits on every run.
__global__ void dz_colsum_kernel(ActParams act, const float* dy, const float* z, float* dz, float* db, i64 rows,
                                 i64 cols) {
  const i64 j = blockIdx.x * (i64)blockDim.x + threadIdx.x;
  if (j >= cols) return;
  float sum = 0.f;
  for (i64 r = 0; r < rows; ++r) {
    const i64 k = r * cols + j;
    const float v = act.kind == kLinear ? dy[k] : dy[k] * math::act_derivative(act.kind, act.param, z[k]);
    dz[k] = v;
    sum += v;
  }
  if (db) db[j] = sum;
}

}  // namespace

void dense_backward(const float* dy, const float* x, const float* W, const float* z, ActParams act, float* dz_scratch,
                    float* dx, float* dW, float* db, i64 batch, i64 in, i64 units) {
  if (act.kind == kSoftmax) {
    softmax_backward(dy, z, dz_scratch, batch, units);
    if (db) col_sums(dz_scratch, db, batch, units);
  } else if (units > 0) {
    GS_LAUNCH(dz_colsum_kernel, (unsigned)((units + 127) / 128), 128, 0, 0)(act, dy, z, dz_scratch, db, batch, units);
    check_launch("dense backward dz kernel");
  }
  gemm(true, false, in, units, batch, 1.f, x, in, dz_scratch, units, 0.f, dW, units);
  if (dx) gemm(false, true, batch, in, units, 1.f, dz_scratch, units, W, units, 0.f, dx, in);
}

}  // namespace cuda
}  // namespace gradsmith

namespace gradsmith {
namespace cuda {
namespace {

__global__ void softmax_kernel(const float* z, float* y, i64 rows, i64 cols) {
  for (i64 r = blockIdx.x * (i64)blockDim.x + threadIdx.x; r < rows; r += (i64)gridDim.x * blockDim.x)
    math::softmax_row(z + r * cols, y + r * cols, cols);
}

// dz holds y = softmax(z) first, then dz = y (dy - <dy, y>) in place, as the CPU does.
__global__ void softmax_backward_kernel(const float* dy, const float* z, float* dz, i64 rows, i64 cols) {
  for (i64 r = blockIdx.x * (i64)blockDim.x + threadIdx.x; r < rows; r += (i64)gridDim.x * blockDim.x) {
    math::softmax_row(z + r * cols, dz + r * cols, cols);
    math::softmax_backward_row(dy + r * cols, dz + r * cols, dz + r * cols, cols);
  }
}

// One thread per row: its weighted loss w_i L_i into per_row[i], its gradient into grad.
// A loss weight other than 1 then scales the row's gradient, as the CPU plan does.
__global__ void loss_rows_kernel(LossArgs a, float weight, const float* t, const int64_t* labels, const float* p,
                                 const float* w, float* g, double* per_row, i64 rows, i64 cols) {
  for (i64 r = blockIdx.x * (i64)blockDim.x + threadIdx.x; r < rows; r += (i64)gridDim.x * blockDim.x) {
    const float wr = w ? w[r] : 1.f;
    const double L = math::loss_row(a, t ? t + r * cols : nullptr, labels ? labels[r] : -1, p + r * cols,
                                    g + r * cols, cols, wr, rows);
    per_row[r] = (double)wr * L;
    if (weight != 1.f)
      for (i64 j = 0; j < cols; ++j) g[r * cols + j] *= weight;
  }
}

// One block sums n doubles: thread t adds t, t + 256, ... in order, then a fixed tree: the same bits every run.
// *out = sum / divide * weight (weight 1: not multiplied, as the CPU).
__global__ void sum_fixed_order_kernel(const double* x, i64 n, double divide, double weight, double* out) {
  __shared__ double part[256];
  double s = 0.0;
  for (i64 i = threadIdx.x; i < n; i += 256) s += x[i];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int half = 128; half > 0; half /= 2) {
    if ((int)threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    double v = part[0] / divide;
    if (weight != 1.0) v *= weight;
    *out = v;
  }
}

// One block: thread t squares and adds t, t + 256, ... in order, then the fixed tree.
__global__ void sum_squares_kernel(const float* x, i64 n, double* out) {
  __shared__ double part[256];
  double s = 0.0;
  for (i64 i = threadIdx.x; i < n; i += 256) s += (double)x[i] * (double)x[i];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int half = 128; half > 0; half /= 2) {
    if ((int)threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = part[0];
}

__global__ void col_sums_kernel(const float* x, float* out, i64 rows, i64 cols) {
  const i64 j = blockIdx.x * (i64)blockDim.x + threadIdx.x;
  if (j >= cols) return;
  float s = 0.f;
  for (i64 r = 0; r < rows; ++r) s += x[r * cols + j];
  out[j] = s;
}

}  // namespace

void softmax_forward(const float* z, float* y, i64 rows, i64 cols) {
  if (rows <= 0 || cols <= 0) return;
  GS_LAUNCH(softmax_kernel, blocks_for(rows), kThreads, 0, 0)(z, y, rows, cols);
  check_launch("softmax kernel");
}

void softmax_backward(const float* dy, const float* z, float* dz, i64 rows, i64 cols) {
  if (rows <= 0 || cols <= 0) return;
  GS_LAUNCH(softmax_backward_kernel, blocks_for(rows), kThreads, 0, 0)(dy, z, dz, rows, cols);
  check_launch("softmax backward kernel");
}

void loss_and_grad_into(const LossArgs& args, double weight, const float* y_true, const int64_t* labels,
                        const float* y_pred, const float* sample_weight, float* grad, i64 rows, i64 cols,
                        double* row_scratch, double* value) {
  if (rows <= 0) return;
  GS_LAUNCH(loss_rows_kernel, blocks_for(rows), kThreads, 0, 0)(
      args, (float)weight, y_true, labels, y_pred, sample_weight, grad, row_scratch, rows, cols);
  check_launch("loss kernel");
  GS_LAUNCH(sum_fixed_order_kernel, 1, 256, 0, 0)(row_scratch, rows, (double)rows, weight, value);
  check_launch("loss sum kernel");
}

double loss_and_grad(const LossArgs& args, const float* y_true, const int64_t* labels, const float* y_pred,
                     const float* sample_weight, float* grad, i64 rows, i64 cols) {
  if (rows <= 0) return 0.0;
  double* scratch = static_cast<double*>(allocate(sizeof(double) * (size_t)(rows + 1)));
  double total = 0.0;
  try {
    loss_and_grad_into(args, 1.0, y_true, labels, y_pred, sample_weight, grad, rows, cols, scratch, scratch + rows);
    copy_to_host(&total, scratch + rows, sizeof(double));
  } catch (...) {
    release(scratch);
    throw;
  }
  release(scratch);
  return total;
}

double sum_squares(const float* x, i64 n) {
  if (n <= 0) return 0.0;
  double* out = static_cast<double*>(allocate(sizeof(double)));
  double total = 0.0;
  try {
    GS_LAUNCH(sum_squares_kernel, 1, 256, 0, 0)(x, n, out);
    check_launch("sum of squares kernel");
    copy_to_host(&total, out, sizeof(double));
  } catch (...) {
    release(out);
    throw;
  }
  release(out);
  return total;
}

void col_sums(const float* x, float* out, i64 rows, i64 cols) {
  if (cols <= 0) return;
  GS_LAUNCH(col_sums_kernel, (unsigned)((cols + 127) / 128), 128, 0, 0)(x, out, rows, cols);
  check_launch("column sums kernel");
}

}  // namespace cuda
}  // namespace gradsmith

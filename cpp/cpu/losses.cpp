// Losses: value and gradient in one pass over (y_true, y_pred).
//
//   value = (1/N) sum_i w_i L_i          Keras 3 'sum_over_batch_size'; w_i = 1 without weights
//   grad  = d value / d y_pred
//
// L_i is the mean over the row's C entries for the element-wise losses (mse,
// mae, huber, binary cross-entropy) and the sum for the categorical ones. The
// per-element terms come from math/elementwise.h. Rows are summed in fixed
// blocks whose partial sums are added in order: the same bits for any thread
// count.
#include <math.h>

#include <vector>

#include "cpu/ops.h"
#include "cpu/profiler.h"
#include "cpu/scratch.h"
#include "cpu/thread_pool.h"
#include "math/elementwise.h"
#include "math/rows.h"

namespace gradsmith {
namespace cpu {
namespace {

using namespace math;

constexpr i64 kRowsPerTask = 256;

}  // namespace

double loss_and_grad(const LossArgs& args, const float* y_true, const int64_t* labels, const float* y_pred,
                     const float* sample_weight, float* grad, i64 rows, i64 cols) {
  // FLOPs: nominal 5 per element (the loss term, its sum, the gradient); bytes: y_pred, y_true (or int64 labels),
  // sample weights read, grad written.
  GS_PROFILE_SCOPE("loss_and_grad", 5.0 * rows * cols, 4.0 * (2 + (y_true ? 1 : 0)) * rows * cols +
                   (labels ? 8.0 * rows : 0) + (sample_weight ? 4.0 * rows : 0), rows, cols, -1);
  if (rows <= 0) return 0.0;
  const i64 tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
  double* partial = scratch<double, kScratchLossPartials>(tasks);
  parallel_for(
      tasks,
      [&](int64_t task, int) {
        const i64 r0 = task * kRowsPerTask, r1 = r0 + kRowsPerTask < rows ? r0 + kRowsPerTask : rows;
        double acc = 0;
        for (i64 r = r0; r < r1; ++r) {
          const float w = sample_weight ? sample_weight[r] : 1.f;
          const float* t = y_true ? y_true + r * cols : nullptr;
          const float* p = y_pred + r * cols;
          const double L = loss_row(args, t, labels ? labels[r] : -1, p, grad + r * cols, cols, w, rows);
          acc += (double)w * L;
        }
        partial[task] = acc;
      },
      threads_for_elements(rows * cols));
  double total = 0;
  for (i64 t = 0; t < tasks; ++t) total += partial[t];
  return total / (double)rows;
}

}  // namespace cpu
}  // namespace gradsmith

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

namespace gradsmith {
namespace cpu {
namespace {

using namespace math;

constexpr i64 kRowsPerTask = 256;

// Element-wise losses: L = (1/C) sum_j term(t_j, p_j).
double elementwise_row(const LossArgs& a, const float* t, const float* p, float* g, i64 C, float gscale) {
  const float ls = a.label_smoothing;
  double L = 0;
  for (i64 j = 0; j < C; ++j) {
    float d = 0.f, v = 0.f;
    switch (a.kind) {
      case kMse: v = squared_error(t[j], p[j], &d); break;
      case kMae: v = absolute_error(t[j], p[j], &d); break;
      case kHuber: v = huber(t[j], p[j], a.delta, &d); break;
      default: {  // binary cross-entropy; t' = t (1 - ls) + ls / 2
        const float ts = t[j] * (1.f - ls) + 0.5f * ls;
        v = a.from_logits ? binary_xent_logit(ts, p[j], &d) : binary_xent_prob(ts, p[j], &d);
      }
    }
    L += v;
    g[j] = d * gscale;
  }
  return L / (double)C;
}

// Smoothed target of class j: t' = t (1 - ls) + ls / C, t one-hot for sparse labels.
inline float smoothed_target(const LossArgs& a, const float* t, int64_t label, i64 j, i64 C) {
  const float tj = t ? t[j] : (j == label ? 1.f : 0.f);
  return a.label_smoothing == 0.f ? tj : tj * (1.f - a.label_smoothing) + a.label_smoothing / (float)C;
}

// Categorical cross-entropy of one row.
//  logits x:  L = sum_j t'_j (lse(x) - x_j),  dL/dx = softmax(x) sum_j t'_j - t'
//  probs p:   q = p / sum p, q' = clip(q, eps, 1 - eps), L = -sum_j t'_j log q'_j
//             u_j = dL/dq_j = -t'_j / q'_j where q is not clipped (else 0)
//             dL/dp_k = (u_k - sum_j u_j q_j) / sum p
double categorical_row(const LossArgs& a, const float* t, int64_t label, const float* p, float* g, i64 C,
                       float gscale) {
  if (a.from_logits) {
    float m = -INFINITY;
    bool has_nan = false;
    for (i64 j = 0; j < C; ++j) { m = max_f(m, p[j]); has_nan |= p[j] != p[j]; }
    if (has_nan) m = NAN;
    float s = 0.f;
    for (i64 j = 0; j < C; ++j) s += expf(p[j] - m);
    const float lse = m + logf(s), inv = 1.f / s;
    double L = 0;
    float tsum = 0.f;
    for (i64 j = 0; j < C; ++j) tsum += smoothed_target(a, t, label, j, C);
    for (i64 j = 0; j < C; ++j) {
      const float tj = smoothed_target(a, t, label, j, C);
      L += (double)tj * (double)(lse - p[j]);  // 0 * NaN is NaN, as in NumPy
      g[j] = (expf(p[j] - m) * inv * tsum - tj) * gscale;
    }
    return L;
  }
  float s = 0.f;
  for (i64 j = 0; j < C; ++j) s += p[j];
  const float inv = 1.f / s;
  double L = 0, uq = 0;
  for (i64 j = 0; j < C; ++j) {
    const float q = p[j] * inv, qc = clamp_f(q, kProbEpsilon, 1.f - kProbEpsilon);
    const float tj = smoothed_target(a, t, label, j, C);
    L -= (double)tj * (double)logf(qc);
    const bool inside = q >= kProbEpsilon && q <= 1.f - kProbEpsilon;
    const float u = inside ? -tj / qc : (q == q ? 0.f : q);
    g[j] = u;  // dL/dq for now
    uq += (double)u * (double)q;
  }
  for (i64 j = 0; j < C; ++j) g[j] = (g[j] - (float)uq) * inv * gscale;
  return L;
}

}  // namespace

double loss_and_grad(const LossArgs& args, const float* y_true, const int64_t* labels, const float* y_pred,
                     const float* sample_weight, float* grad, i64 rows, i64 cols) {
  // FLOPs: nominal 5 per element (the loss term, its sum, the gradient); bytes: y_pred, y_true (or int64 labels),
  // sample weights read, grad written.
  GS_PROFILE_SCOPE("loss_and_grad", 5.0 * rows * cols, 4.0 * (2 + (y_true ? 1 : 0)) * rows * cols +
                   (labels ? 8.0 * rows : 0) + (sample_weight ? 4.0 * rows : 0), rows, cols, -1);
  if (rows <= 0) return 0.0;
  const bool categorical = args.kind == kCategoricalXent || args.kind == kSparseCategoricalXent;
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
          float* g = grad + r * cols;
          double L;
          if (categorical) {
            L = categorical_row(args, t, labels ? labels[r] : -1, p, g, cols, w / (float)rows);
          } else {
            L = elementwise_row(args, t, p, g, cols, w / ((float)rows * (float)cols));
          }
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

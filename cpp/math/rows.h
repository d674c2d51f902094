// Row-wise math shared by the CPU and CUDA kernels: softmax of one row and its
// backward pass, and the loss of one sample (value and gradient). Like
// elementwise.h, everything has internal linkage and uses only C math, and is
// compiled __host__ __device__ under nvcc, so both sides run one formula.
#pragma once

#include <math.h>
#include <stdint.h>

#include "math/elementwise.h"

namespace gradsmith {

// Loss kinds, one line each: X(enumerator, Keras's name). The numbers are the
// binding's; Python reads names and numbers from _core.kinds.losses.
#define GS_LOSS_KINDS(X)                                            \
  X(kMse, "mean_squared_error")                                     \
  X(kMae, "mean_absolute_error")                                    \
  X(kHuber, "huber")                                                \
  X(kBinaryXent, "binary_crossentropy")                             \
  X(kCategoricalXent, "categorical_crossentropy")                   \
  X(kSparseCategoricalXent, "sparse_categorical_crossentropy")      \
  X(kHinge, "hinge")                                                \
  X(kSquaredHinge, "squared_hinge")                                 \
  X(kLogCosh, "log_cosh")                                           \
  X(kPoisson, "poisson")                                            \
  X(kSquaredLogError, "mean_squared_logarithmic_error")             \
  X(kAbsolutePercentageError, "mean_absolute_percentage_error")     \
  X(kKlDivergence, "kl_divergence")                                 \
  X(kCategoricalHinge, "categorical_hinge")                         \
  X(kCosineSimilarity, "cosine_similarity")

// Counted metrics (cpu::count_correct and the CUDA plan's counts): _core.kinds.counts.
#define GS_COUNT_KINDS(X)                \
  X(kCountBinary, "binary")              \
  X(kCountCategorical, "categorical")    \
  X(kCountSparse, "sparse")

#define GS_KIND_ENUMERATOR(id, name) id,
enum LossKind : int { GS_LOSS_KINDS(GS_KIND_ENUMERATOR) kNumLosses };
enum CountKind : int { GS_COUNT_KINDS(GS_KIND_ENUMERATOR) kNumCountKinds };
#undef GS_KIND_ENUMERATOR

struct LossArgs {
  int kind = kMse;
  bool from_logits = false;
  float label_smoothing = 0.f;
  float delta = 1.f;  // huber
};

namespace math {
namespace {

using i64 = int64_t;

// y = softmax(z) over one row of C: exp(z - max) / sum; a NaN anywhere makes the row NaN (as NumPy).
GS_HD void softmax_row(const float* z, float* y, i64 C) {
  float m = -INFINITY;
  bool has_nan = false;
  for (i64 j = 0; j < C; ++j) {
    m = max_f(m, z[j]);
    has_nan |= z[j] != z[j];
  }
  if (has_nan) m = NAN;
  float s = 0.f;
  for (i64 j = 0; j < C; ++j) {
    y[j] = expf(z[j] - m);
    s += y[j];
  }
  const float inv = 1.f / s;
  for (i64 j = 0; j < C; ++j) y[j] *= inv;
}

// dz = y * (dy - sum_j dy_j y_j) over one row.
GS_HD void softmax_backward_row(const float* dy, const float* y, float* dz, i64 C) {
  float dot = 0.f;
  for (i64 j = 0; j < C; ++j) dot += dy[j] * y[j];
  for (i64 j = 0; j < C; ++j) dz[j] = y[j] * (dy[j] - dot);
}

// Whether a sample's loss sums its row (the cross-entropies, KL divergence) rather than averaging it.
GS_HD bool loss_sums_row(int kind) {
  return kind == kCategoricalXent || kind == kSparseCategoricalXent || kind == kKlDivergence ||
         kind == kCategoricalHinge || kind == kCosineSimilarity;
}

// Element-wise losses: L = (1/C) sum_j term(t_j, p_j) (KL divergence: the sum itself).
GS_HD double elementwise_row(const LossArgs& a, const float* t, const float* p, float* g, i64 C, float gscale) {
  const float ls = a.label_smoothing;
  double L = 0;
  for (i64 j = 0; j < C; ++j) {
    float d = 0.f, v = 0.f;
    switch (a.kind) {
      case kMse: v = squared_error(t[j], p[j], &d); break;
      case kMae: v = absolute_error(t[j], p[j], &d); break;
      case kHuber: v = huber(t[j], p[j], a.delta, &d); break;
      case kHinge: v = hinge_term(t[j], p[j], &d); break;
      case kSquaredHinge: v = squared_hinge_term(t[j], p[j], &d); break;
      case kLogCosh: v = log_cosh_term(t[j], p[j], &d); break;
      case kPoisson: v = poisson_term(t[j], p[j], &d); break;
      case kSquaredLogError: v = squared_log_error_term(t[j], p[j], &d); break;
      case kAbsolutePercentageError: v = absolute_percentage_error_term(t[j], p[j], &d); break;
      case kKlDivergence: v = kl_divergence_term(t[j], p[j], &d); break;
      default: {  // binary cross-entropy; t' = t (1 - ls) + ls / 2
        const float ts = t[j] * (1.f - ls) + 0.5f * ls;
        v = a.from_logits ? binary_xent_logit(ts, p[j], &d) : binary_xent_prob(ts, p[j], &d);
      }
    }
    L += v;
    g[j] = d * gscale;
  }
  return loss_sums_row(a.kind) ? L : L / (double)C;
}

// Smoothed target of class j: t' = t (1 - ls) + ls / C, t one-hot for sparse labels.
GS_HD float smoothed_target(const LossArgs& a, const float* t, int64_t label, i64 j, i64 C) {
  const float tj = t ? t[j] : (j == label ? 1.f : 0.f);
  return a.label_smoothing == 0.f ? tj : tj * (1.f - a.label_smoothing) + a.label_smoothing / (float)C;
}

// Categorical cross-entropy of one row.
//  logits x:  L = sum_j t'_j (lse(x) - x_j),  dL/dx = softmax(x) sum_j t'_j - t'
//  probs p:   q = p / sum p, q' = clip(q, eps, 1 - eps), L = -sum_j t'_j log q'_j
//             u_j = dL/dq_j = -t'_j / q'_j where q is not clipped (else 0)
//             dL/dp_k = (u_k - sum_j u_j q_j) / sum p
GS_HD double categorical_row(const LossArgs& a, const float* t, int64_t label, const float* p, float* g, i64 C,
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

// Sparse categorical cross-entropy of one row on probabilities (TensorFlow's formula, which Keras on
// TensorFlow uses: clip BEFORE normalizing): c_j = clip(p_j, eps, 1 - eps), S = sum_j c_j,
//   L = -log(c_y / S) = log S - log c_y
//   dL/dp_j = 1/S - [j = y] / c_j where eps <= p_j <= 1 - eps (tf.clip_by_value passes the gradient there), else 0
// (the logits form and label smoothing go through categorical_row).
GS_HD double sparse_prob_row(int64_t label, const float* p, float* g, i64 C, float gscale) {
  float s = 0.f;
  bool has_nan = false;
  for (i64 j = 0; j < C; ++j) {
    s += clamp_f(p[j], kProbEpsilon, 1.f - kProbEpsilon);
    has_nan |= p[j] != p[j];
  }
  if (has_nan) s = NAN;
  const float inv = 1.f / s;
  float cy = clamp_f(p[label], kProbEpsilon, 1.f - kProbEpsilon);
  if (p[label] != p[label]) cy = NAN;
  for (i64 j = 0; j < C; ++j) {
    const float c = clamp_f(p[j], kProbEpsilon, 1.f - kProbEpsilon);
    const bool inside = p[j] >= kProbEpsilon && p[j] <= 1.f - kProbEpsilon;
    const float d = j == label ? inv - 1.f / c : inv;
    g[j] = (p[j] != p[j] || s != s) ? NAN : inside ? d * gscale : 0.f;
  }
  return (double)logf(s) - (double)logf(cy);
}

// Categorical hinge of one row: pos = sum_j t_j p_j, neg = max_j (1 - t_j) p_j, L = max(neg - pos + 1, 0);
// where L > 0, dL/dp_j = -t_j + (1 - t_j) [j = the first index of the max].
GS_HD double categorical_hinge_row(const float* t, const float* p, float* g, i64 C, float gscale) {
  float pos = 0.f, neg = -INFINITY;
  i64 at = 0;
  bool has_nan = false;
  for (i64 j = 0; j < C; ++j) {
    pos += t[j] * p[j];
    const float v = (1.f - t[j]) * p[j];
    has_nan |= v != v;
    if (v > neg) neg = v, at = j;
  }
  if (has_nan) neg = NAN;
  const float m = neg - pos + 1.f;
  const bool active = m > 0.f;
  for (i64 j = 0; j < C; ++j)
    g[j] = m != m ? m : active ? (-t[j] + (j == at ? 1.f - t[j] : 0.f)) * gscale : 0.f;
  return m > 0.f || m != m ? (double)m : 0.0;
}

// Cosine similarity of one row, as a loss: L = -<t / max(|t|, eps), p / max(|p|, eps)> (Keras's
// l2-normalize, eps = 1e-7); dL/dp = -(t' - q <t', q>) / |p| with q = p / |p|, or -t' / eps where |p| <= eps.
GS_HD double cosine_similarity_row(const float* t, const float* p, float* g, i64 C, float gscale) {
  double tt = 0, pp = 0, tp = 0;
  for (i64 j = 0; j < C; ++j) {
    tt += (double)t[j] * t[j];
    pp += (double)p[j] * p[j];
    tp += (double)t[j] * p[j];
  }
  const double tn = fmax(sqrt(tt), (double)kProbEpsilon), pn = sqrt(pp), pd = fmax(pn, (double)kProbEpsilon);
  const double cosine = tp / (tn * pd);  // <t', q'>
  for (i64 j = 0; j < C; ++j) {
    const double tj = t[j] / tn;
    const double d = pn > (double)kProbEpsilon ? -(tj - p[j] / pn * cosine) / pn : -tj / pd;
    g[j] = (float)d * gscale;
  }
  return -cosine;
}

// One sample of a loss with Keras's 'sum_over_batch_size' over `rows` rows: returns its loss L_i and writes
// w dL_i/dp / rows to g (the mean over the row's C entries folded in where the loss averages). The CPU and
// CUDA loss kernels both call this.
GS_HD double loss_row(const LossArgs& a, const float* t, int64_t label, const float* p, float* g, i64 C, float w,
                      i64 rows) {
  if (a.kind == kSparseCategoricalXent && !a.from_logits && a.label_smoothing == 0.f)
    return sparse_prob_row(label, p, g, C, w / (float)rows);
  if (a.kind == kCategoricalXent || a.kind == kSparseCategoricalXent)
    return categorical_row(a, t, label, p, g, C, w / (float)rows);
  if (a.kind == kCategoricalHinge) return categorical_hinge_row(t, p, g, C, w / (float)rows);
  if (a.kind == kCosineSimilarity) return cosine_similarity_row(t, p, g, C, w / (float)rows);
  return elementwise_row(a, t, p, g, C, loss_sums_row(a.kind) ? w / (float)rows : w / ((float)rows * (float)C));
}

// The first index of the row's maximum (NumPy's argmax: a NaN wins at its first place).
GS_HD i64 argmax_row(const float* x, i64 n) {
  i64 best = 0;
  for (i64 j = 0; j < n; ++j) {
    if (x[j] != x[j]) return j;
    if (x[j] > x[best]) best = j;
  }
  return best;
}

// Correct predictions in one row of C: binary counts elements with float(p > threshold) == t;
// categorical is argmax p == argmax t; sparse is argmax p == label.
GS_HD int64_t correct_in_row(int kind, const float* t, int64_t label, const float* p, i64 C, float threshold) {
  if (kind == kCountBinary) {
    int64_t n = 0;
    for (i64 j = 0; j < C; ++j) n += (p[j] > threshold ? 1.f : 0.f) == t[j];
    return n;
  }
  const i64 want = kind == kCountSparse ? label : argmax_row(t, C);
  return argmax_row(p, C) == want ? 1 : 0;
}

}  // namespace
}  // namespace math
}  // namespace gradsmith

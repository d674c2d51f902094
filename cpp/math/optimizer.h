// The optimizer's formulas, one element at a time, for the CPU loop
// (cpu/isa_loops.inc) and the CUDA kernels (cuda/kernels.cu, cuda/plan_backend.cu)
// alike: this step's numbers from the Keras configuration, the prologue every
// optimizer shares (gradient scale, clip by value, decoupled weight decay), each
// optimizer's update, and the clip-norm factor.
//
// Internal linkage, C math only and GS_HD, as math/elementwise.h (see the note
// at its top).
#pragma once

#include <math.h>
#include <stdint.h>

#include "core/optimizer.h"
#include "math/elementwise.h"

namespace gradsmith {
namespace math {
namespace {

// ---------------------------------------------------------------------------
// This step's hyperparameters from the configuration, the learning rate and
// Keras's step t (iterations + 1): in double, each rounded once to float. The
// host calls it once per step; the CUDA plan calls it on the device, where lr
// and t live.
// ---------------------------------------------------------------------------
GS_HD void optimizer_hyperparameters(const OptimizerSpec& s, double lr, int64_t step, OptimizerArgs* a) {
  a->kind = s.kind;
  a->lr = (float)lr;
  a->weight_decay = s.weight_decay;
  a->nesterov = s.nesterov;
  const double t = (double)step;
  switch (s.kind) {
    case kSgd:
      a->momentum = (float)s.momentum;
      break;
    case kAdam:
      // Adam's bias corrections folded into the step size
      a->step_size = (float)(lr * sqrt(1.0 - pow(s.beta_2, t)) / (1.0 - pow(s.beta_1, t)));
      a->one_minus_beta_1 = (float)(1.0 - s.beta_1);
      a->one_minus_beta_2 = (float)(1.0 - s.beta_2);
      a->epsilon = (float)s.epsilon;
      break;
    case kRmsprop:
      a->rho = (float)s.rho;
      a->one_minus_rho = (float)(1.0 - s.rho);
      a->momentum = (float)s.momentum;
      a->epsilon = (float)s.epsilon;
      break;
    case kAdamax:
      a->step_size = (float)(lr / (1.0 - pow(s.beta_1, t)));
      a->one_minus_beta_1 = (float)(1.0 - s.beta_1);
      a->beta_2 = (float)s.beta_2;
      a->epsilon = (float)s.epsilon;
      break;
    case kLion:
      a->beta_1 = (float)s.beta_1;
      a->one_minus_beta_1 = (float)(1.0 - s.beta_1);
      a->beta_2 = (float)s.beta_2;
      a->one_minus_beta_2 = (float)(1.0 - s.beta_2);
      break;
    default:  // adagrad
      a->epsilon = (float)s.epsilon;
  }
}

// ---------------------------------------------------------------------------
// Clipping by norm (Keras's clipnorm, global_clipnorm): the gradient is scaled
// by c / max(norm, c), rounded to float, from the sum of its squares (double).
// A NaN norm gives a NaN factor (NumPy's maximum propagates NaN).
// ---------------------------------------------------------------------------
GS_HD float clip_norm_scale(double sum_of_squares, float clip) {
  const double norm = sqrt(sum_of_squares);
  return norm != norm ? NAN : (float)((double)clip / fmax(norm, (double)clip));
}
// global_clipnorm: one factor for all the gradients from the sum of all their squares. Keras adds
// (norm - norm) to it, so an infinite global norm gives NaN too.
GS_HD float global_clip_norm_scale(double sum_of_squares, float clip) {
  const double norm = sqrt(sum_of_squares);
  return clip_norm_scale(sum_of_squares, clip) + (float)(norm - norm);
}

// ---------------------------------------------------------------------------
// What every optimizer does first, in the same pass: g' = g * grad_scale,
// clipped to [-clip_value, clip_value] when clip_value > 0; decoupled weight
// decay w -= w * wd * lr (Keras: variable -= variable * wd * lr). Returns g'.
// ---------------------------------------------------------------------------
GS_HD float optimizer_prologue(const OptimizerArgs& a, float g, float* w) {
  g *= a.grad_scale;
  if (a.clip_value > 0.f) g = clamp_f(g, -a.clip_value, a.clip_value);
  if (a.weight_decay != 0.f) *w -= *w * a.weight_decay * a.lr;
  return g;
}

// ---------------------------------------------------------------------------
// The updates (Keras 3 formulas), one parameter at a time. `g` is the gradient
// after optimizer_prologue (scaled, clipped), and w has had its weight decay.
// ---------------------------------------------------------------------------
// SGD: m = momentum*m - lr*g ; w += nesterov ? momentum*m - lr*g : m   (momentum 0: w -= lr*g)
GS_HD void sgd_update(float* w, float g, float* m, float lr, float momentum, bool nesterov) {
  if (m == nullptr) { *w -= lr * g; return; }
  float mn = momentum * *m - lr * g;
  *m = mn;
  *w += nesterov ? momentum * mn - lr * g : mn;
}

// Adam: m += (g - m)(1 - b1) ; v += (g^2 - v)(1 - b2) ; amsgrad: vh = max(vh, v), v := vh
//       w -= step_size * m / (sqrt(v) + eps),  step_size = lr sqrt(1 - b2^t) / (1 - b1^t)
// (optimizer_hyperparameters folds the step size and rounds 1 - b1, 1 - b2 once from double).
GS_HD void adam_update(float* w, float g, float* m, float* v, float* vhat, float step_size, float one_minus_beta_1,
                       float one_minus_beta_2, float eps) {
  float mn = *m + (g - *m) * one_minus_beta_1;
  float vn = *v + (g * g - *v) * one_minus_beta_2;
  *m = mn;
  *v = vn;
  if (vhat != nullptr) { vn = max_f(*vhat, vn); *vhat = vn; }
  *w -= step_size * mn / (sqrtf(vn) + eps);
}

// Adamax: m += (g - m)(1 - b1) ; u = max(b2 u, |g|) ; w -= step_size m / (u + eps), step_size = lr / (1 - b1^t).
GS_HD void adamax_update(float* w, float g, float* m, float* u, float step_size, float one_minus_beta_1, float beta_2,
                         float eps) {
  const float mn = *m + (g - *m) * one_minus_beta_1;
  const float un = max_f(beta_2 * *u, fabsf(g));
  *m = mn;
  *u = un;
  *w -= step_size * mn / (un + eps);
}

// Lion: w -= lr sign(b1 m + (1 - b1) g) ; m = b2 m + (1 - b2) g.
GS_HD void lion_update(float* w, float g, float* m, float lr, float beta_1, float one_minus_beta_1, float beta_2,
                       float one_minus_beta_2) {
  *w -= lr * sign_f(*m * beta_1 + g * one_minus_beta_1);
  *m = *m * beta_2 + g * one_minus_beta_2;
}

// RMSprop: v = rho v + (1-rho) g^2 ; centered: ag = rho ag + (1-rho) g, den = v - ag^2 + eps
//          else den = v + eps ; inc = lr g / sqrt(den) ; momentum: mb = momentum mb + inc, w -= mb ; else w -= inc
GS_HD void rmsprop_update(float* w, float g, float* v, float* mb, float* ag,
                          float lr, float rho, float one_minus_rho, float momentum, float eps) {
  float vn = rho * *v + one_minus_rho * g * g;
  *v = vn;
  float den = vn + eps;
  if (ag != nullptr) {
    float an = rho * *ag + one_minus_rho * g;
    *ag = an;
    den = vn - an * an + eps;
  }
  float inc = lr * g / sqrtf(den);
  if (mb != nullptr) { float mn = momentum * *mb + inc; *mb = mn; *w -= mn; }
  else *w -= inc;
}

// Adagrad: acc += g^2 ; w -= lr g / sqrt(acc + eps)
GS_HD void adagrad_update(float* w, float g, float* acc, float lr, float eps) {
  float an = *acc + g * g;
  *acc = an;
  *w -= lr * g / sqrtf(an + eps);
}

// ---------------------------------------------------------------------------
// One element of the fused step: the prologue, then the update of `kind`, then the pruning mask.
// w, s0..s2 point at this element (s* null where the optimizer has no such
// state; see OptimizerArgs). The CPU loop passes a compile-time kind and
// compile-time nulls, so the switch and the null tests fold away there.
// ---------------------------------------------------------------------------
GS_HD void optimizer_update(int kind, const OptimizerArgs& a, float* w, float g, float* s0, float* s1, float* s2,
                            const float* keep = nullptr) {
  g = optimizer_prologue(a, g, w);
  switch (kind) {
    case kSgd: sgd_update(w, g, s0, a.lr, a.momentum, a.nesterov); break;
    case kAdam: adam_update(w, g, s0, s1, s2, a.step_size, a.one_minus_beta_1, a.one_minus_beta_2, a.epsilon); break;
    case kRmsprop:
      rmsprop_update(w, g, s0, s1, s2, a.lr, a.rho, a.one_minus_rho, a.momentum, a.epsilon);
      break;
    case kAdamax: adamax_update(w, g, s0, s1, a.step_size, a.one_minus_beta_1, a.beta_2, a.epsilon); break;
    case kLion: lion_update(w, g, s0, a.lr, a.beta_1, a.one_minus_beta_1, a.beta_2, a.one_minus_beta_2); break;
    default: adagrad_update(w, g, s0, a.lr, a.epsilon); break;
  }
  // A pruned weight (keep 0) stays exactly 0: in this same pass, not a second one over memory.
  if (keep != nullptr && *keep == 0.f) *w = 0.f;
}

}  // namespace
}  // namespace math
}  // namespace gradsmith

// The optimizer's vocabulary, shared by cpu/, cuda/, model/ and the bindings:
// which optimizer and which clipping (the enums, whose names Python reads from
// _core.kinds), the Keras configuration a plan is built with (OptimizerSpec),
// and the numbers one fused step runs on (OptimizerArgs).
//
// The formulas over these live in math/optimizer.h.
#pragma once

#include <stdint.h>

namespace gradsmith {

// Optimizer kinds, one line each: X(enumerator, the name Python reads from _core.kinds.optimizers).
#define GS_OPTIMIZER_KINDS(X) \
  X(kSgd, "sgd")              \
  X(kAdam, "adam")            \
  X(kRmsprop, "rmsprop")      \
  X(kAdagrad, "adagrad")      \
  X(kAdamax, "adamax")        \
  X(kLion, "lion")

// Gradient clipping of a whole step, named as Keras's optimizer arguments (_core.kinds.clips).
#define GS_CLIP_KINDS(X)               \
  X(kClipNone, "none")                 \
  X(kClipValue, "clipvalue")           \
  X(kClipNorm, "clipnorm")             \
  X(kClipGlobalNorm, "global_clipnorm")

#define GS_KIND_ENUMERATOR(id, name) id,
enum OptimizerKind : int { GS_OPTIMIZER_KINDS(GS_KIND_ENUMERATOR) kNumOptimizers };
enum ClipKind : int { GS_CLIP_KINDS(GS_KIND_ENUMERATOR) kNumClipKinds };
#undef GS_KIND_ENUMERATOR

// The optimizer's configuration, in Keras's names; the learning rate and the step come per step.
struct OptimizerSpec {
  int kind = kSgd;
  float weight_decay = 0.f;
  double momentum = 0.0, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7, rho = 0.9;
  bool nesterov = false;
  int clip_kind = kClipNone;
  float clip = 0.f;
};

// One fused optimizer step over elements [begin, end) of one buffer: the buffers, and this step's numbers
// as the update formulas take them (math::optimizer_hyperparameters fills them from an OptimizerSpec).
// A field an optimizer does not use stays 0.
struct OptimizerArgs {
  int kind = kSgd;
  float* w = nullptr;
  const float* g = nullptr;
  float* s0 = nullptr;  // sgd: momentum | adam: m | rmsprop: velocity | adagrad: accumulator | adamax, lion: m
  float* s1 = nullptr;  // adam: v | rmsprop: momentum buffer (or null) | adamax: u (the norm)
  float* s2 = nullptr;  // adam: v_hat for amsgrad (or null) | rmsprop: average grad when centered (or null)
  float lr = 0.f;
  float weight_decay = 0.f;  // 0: none
  float grad_scale = 1.f;    // clipnorm / global_clipnorm factor
  float clip_value = 0.f;    // > 0: clip g to [-clip_value, clip_value]
  // The hyperparameters; the differences 1 - beta are computed in double and rounded once, as Keras does
  // (1.f - 0.999f is not float(1 - 0.999)).
  float momentum = 0.f;          // sgd, rmsprop
  float step_size = 0.f;         // adam: lr sqrt(1 - b2^t) / (1 - b1^t) ; adamax: lr / (1 - b1^t)
  float beta_1 = 0.f;            // lion
  float one_minus_beta_1 = 0.f;  // adam, adamax, lion
  float beta_2 = 0.f;            // adamax, lion
  float one_minus_beta_2 = 0.f;  // adam, lion
  float rho = 0.f;               // rmsprop
  float one_minus_rho = 0.f;     // rmsprop
  float epsilon = 0.f;           // adam, adamax, rmsprop, adagrad
  bool nesterov = false;         // sgd
  // Pruning (gradsmith.pruning): where keep[i] is 0, w[i] is 0 after the update (null: nothing pruned).
  const float* keep = nullptr;
};

}  // namespace gradsmith

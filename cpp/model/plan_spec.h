// What a training plan is built from besides its layers (model/layer.h): the optimizer, the runs of
// trainable weights, the counted metrics and the weight penalties. Plain
// structs, shared by the CPU plan and the CUDA plan (model/plan.h).
#pragma once

#include <math.h>
#include <stdint.h>

#include "cpu/kernel_table.h"

namespace gradsmith {
namespace model {

using i64 = int64_t;

// The optimizer's configuration; the learning rate and the step come per step.
struct OptimizerSpec {
  int kind = cpu::kSgd;
  float weight_decay = 0.f;
  double momentum = 0.0, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7, rho = 0.9;
  bool nesterov = false;
  int clip_kind = 0;  // cpu::ClipKind
  float clip = 0.f;
};

// A run of trainable weights: `size` floats at `param` in the parameter and
// gradient buffers, whose optimizer state starts at `slot` in each slot buffer.
struct TrainableRange {
  i64 param, slot, size;
};

// What one step counts for the metrics (see cpu::count_correct).
struct MetricCount {
  int kind = 0;  // cpu::CountKind
  float threshold = 0.5f;
};

// One penalized weight: value l1 * sum|w| + l2 * sum w^2, gradient l1 sign(w) + 2 l2 w.
struct PenaltyTerm {
  i64 offset, size;  // in the parameter and gradient buffers
  double l1, l2;
};

// This step's hyperparameters as the fused update takes them, from the learning
// rate and Keras's step (iterations + 1). The same numbers gradsmith.ops computes
// in Python (ops.sgd_step, adam_step, ...), in double, rounded once. Compiled for
// the host and, in the CUDA plan, for the device, which reads lr and step from
// device memory.
GS_HD void optimizer_hyperparameters(const OptimizerSpec& s, double lr, int64_t step, cpu::OptimizerArgs* a) {
  a->kind = s.kind;
  a->lr = (float)lr;
  a->weight_decay = s.weight_decay;
  a->nesterov = s.nesterov;
  switch (s.kind) {
    case cpu::kSgd:
      a->h0 = (float)s.momentum;
      break;
    case cpu::kAdam: {
      // alpha = lr * sqrt(1 - b2^t) / (1 - b1^t): Adam's bias corrections folded into the step size
      const double t = (double)step;
      a->h0 = (float)(lr * sqrt(1.0 - pow(s.beta_2, t)) / (1.0 - pow(s.beta_1, t)));
      a->h1 = (float)(1.0 - s.beta_1);
      a->h2 = (float)(1.0 - s.beta_2);
      a->h3 = (float)s.epsilon;
      break;
    }
    case cpu::kRmsprop:
      a->h0 = (float)s.rho;
      a->h1 = (float)(1.0 - s.rho);
      a->h2 = (float)s.momentum;
      a->h3 = (float)s.epsilon;
      break;
    case cpu::kAdamax:
      a->h0 = (float)(lr / (1.0 - pow(s.beta_1, (double)step)));
      a->h1 = (float)(1.0 - s.beta_1);
      a->h2 = (float)s.beta_2;
      a->h3 = (float)s.epsilon;
      break;
    case cpu::kLion:
      a->h0 = (float)s.beta_1;
      a->h1 = (float)(1.0 - s.beta_1);
      a->h2 = (float)s.beta_2;
      a->h3 = (float)(1.0 - s.beta_2);
      break;
    default:
      a->h0 = (float)s.epsilon;
  }
}

// Weight buffers of a plan, in the backend's memory.
struct PlanBuffers {
  float* params = nullptr;
  float* grads = nullptr;
  i64 n_params = 0;
  float* slots[3] = {nullptr, nullptr, nullptr};  // optimizer state, or null
  i64 n_slot = 0;
};

}  // namespace model
}  // namespace gradsmith

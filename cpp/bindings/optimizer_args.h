// What the CPU and CUDA optimizer_step bindings share: the optimizer as Keras
// configures it (keyword arguments momentum, beta_1, ... and the step t) turned
// into this step's OptimizerArgs by math::optimizer_hyperparameters, as the
// training plan does. The caller adds the buffers and the clipping.
#pragma once

#include <pybind11/pybind11.h>

#include <stdint.h>

#include <string>

#include "core/optimizer.h"
#include "math/optimizer.h"

namespace gradsmith {
namespace bindings {

namespace py = pybind11;

inline OptimizerArgs optimizer_args(int kind, double lr, float weight_decay, bool nesterov, double momentum,
                                    double beta_1, double beta_2, double epsilon, double rho, int64_t step) {
  if (kind < kSgd || kind >= kNumOptimizers) throw py::value_error("unknown optimizer kind " + std::to_string(kind));
  if (step < 1) throw py::value_error("step must be >= 1, got " + std::to_string(step));
  OptimizerSpec spec;
  spec.kind = kind;
  spec.weight_decay = weight_decay;
  spec.nesterov = nesterov;
  spec.momentum = momentum;
  spec.beta_1 = beta_1;
  spec.beta_2 = beta_2;
  spec.epsilon = epsilon;
  spec.rho = rho;
  OptimizerArgs a;
  math::optimizer_hyperparameters(spec, lr, step, &a);
  return a;
}

}  // namespace bindings
}  // namespace gradsmith

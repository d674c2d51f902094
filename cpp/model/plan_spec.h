// What a training plan is built from besides its layers (model/layer.h) and its optimizer
// (core/optimizer.h): the runs of trainable weights, the counted metrics, the weight penalties and the
// flat buffers. Plain structs, shared by the CPU plan and the CUDA plan (model/plan.h).
#pragma once

#include <stdint.h>

#include "core/optimizer.h"
#include "math/rows.h"  // LossArgs, CountKind

namespace gradsmith {
namespace model {

using i64 = int64_t;

// A run of trainable weights: `size` floats at `param` in the parameter and
// gradient buffers, whose optimizer state starts at `slot` in each slot buffer.
struct TrainableRange {
  i64 param, slot, size;
};

// What one step counts for the metrics (see cpu::count_correct).
struct MetricCount {
  int kind = 0;  // CountKind (math/rows.h)
  float threshold = 0.5f;
};

// One penalized weight: value l1 * sum|w| + l2 * sum w^2, gradient l1 sign(w) + 2 l2 w.
struct PenaltyTerm {
  i64 offset, size;  // in the parameter and gradient buffers
  double l1, l2;
};

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

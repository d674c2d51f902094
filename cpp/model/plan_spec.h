// What a training plan is built from: the layers, the optimizer, the runs of
// trainable weights, the counted metrics and the weight penalties. Plain
// structs, shared by the CPU plan and the CUDA plan (model/plan.h).
#pragma once

#include <math.h>
#include <stdint.h>

#include "core/optimizer.h"
#include "cpu/kernel_table.h"

namespace gradsmith {
namespace model {

using i64 = int64_t;

enum LayerKind : int { kDense = 0, kActivation = 1, kDropout = 2 };

struct LayerSpec {
  int kind = kDense;
  i64 in = 0, out = 0;  // features in and out (Activation, Dropout: equal)
  ActParams act = {kLinear, 0.f};
  // Dense: offsets of kernel (in, out) and bias (out,) in the flat parameter and
  // gradient buffers; bias -1 when use_bias is false.
  i64 kernel = -1, bias = -1;
  // L1 / L2 penalties on kernel and bias (Keras: l1 * sum|w| + l2 * sum w^2).
  double kernel_l1 = 0.0, kernel_l2 = 0.0, bias_l1 = 0.0, bias_l2 = 0.0;
  // Dropout: rate, seed and the layer's call counter (the Philox offset), which
  // the Python layer owns so both paths share one sequence of masks.
  double rate = 0.0;
  uint64_t seed = 0;
  int64_t* calls = nullptr;
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

}  // namespace model
}  // namespace gradsmith

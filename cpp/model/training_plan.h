// A model's training step as one C++ call.
//
// model.fit on a Sequential model of Dense / Activation / Dropout layers builds
// a TrainingPlan once (python/gradsmith/models.py, _training_plan). Each step
// is then one call that runs, with no Python in between and no allocation once
// the arena is sized:
//
//   forward      for each layer: Dense (GEMM + bias + activation epilogue),
//                Activation, Dropout (Philox mask from (seed, call counter))
//   loss         value and dL/dy_pred in one pass (loss_and_grad), scaled by
//                the compile-time loss weight
//   metrics      correct-prediction counts for the accuracy metrics
//   backward     for each layer in reverse: dz = dy * f'(z), db, dW = x^T dz,
//                dx = dz W^T; then the L1/L2 penalty gradients
//   optimizer    one fused pass over every trainable weight (optimizer_step)
//
// Every kernel is the one gradsmith.ops calls, with the same arguments, so a
// step through the plan gives bit-identical weights to the layer-by-layer
// Python path (tests/test_training_plan.py checks this).
//
// Buffers: the weights, gradients and optimizer state belong to the Python
// model and optimizer (one flat float32 buffer each); the plan keeps pointers.
// Activations, pre-activations and the backward scratch live in one arena that
// grows only when a batch larger than any before arrives.
#pragma once

#include <stdint.h>

#include <string>
#include <vector>

#include "cpu/ops.h"

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

// The optimizer's configuration; the learning rate and the step come per call.
struct OptimizerSpec {
  int kind = cpu::kSgd;
  float weight_decay = 0.f;
  double momentum = 0.0, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7, rho = 0.9;
  bool nesterov = false;
  int clip_kind = cpu::kClipNone;
  float clip = 0.f;
};

// A run of trainable weights: `size` floats at `param` in the parameter and
// gradient buffers, whose optimizer state starts at `slot` in each slot buffer.
struct TrainableRange {
  i64 param, slot, size;
};

// What one step counts for the metrics (see cpu::count_correct).
struct MetricCount {
  int kind = cpu::kCountBinary;
  float threshold = 0.5f;
};

class TrainingPlan {
 public:
  TrainingPlan(std::vector<LayerSpec> layers, cpu::LossArgs loss, double loss_weight, OptimizerSpec optimizer,
               float* params, float* grads, i64 n_params, std::vector<TrainableRange> trainable,
               float* slot0, float* slot1, float* slot2, i64 n_slot, std::vector<MetricCount> metrics);

  i64 in_features() const { return layers_.front().in; }
  i64 out_features() const { return layers_.back().out; }
  size_t num_metrics() const { return metrics_.size(); }

  // One optimizer step on a batch: x (batch, in), y_true (batch, out) or
  // labels (batch,) for the sparse loss, sample_weight (batch,) or null.
  // `lr` is this step's learning rate and `step` Keras's iterations + 1.
  // Labels must be in range (the binding checks). Writes the metric counts to
  // `correct` (num_metrics() entries) and returns the loss.
  double train_step(const float* x, const float* y_true, const int64_t* labels, const float* sample_weight,
                    i64 batch, double lr, int64_t step, int64_t* correct);

  // `steps` train_steps over consecutive batches of `batch` rows (the last may be
  // shorter) of x, y_true / labels and sample_weight, which hold `rows` rows;
  // lr[s] is step s's learning rate and first_step + s its Keras step. Writes
  // each step's loss to values[s] and its counts to correct[s * num_metrics()].
  void train_steps(const float* x, const float* y_true, const int64_t* labels, const float* sample_weight,
                   i64 rows, i64 batch, const double* lr, int64_t first_step, double* values, int64_t* correct);

  // evaluate's step: the forward pass without dropout, the loss value (with the
  // loss weight and the weights' penalties, as train_step reports it) and the
  // metric counts; no gradient of the weights is touched.
  double test_step(const float* x, const float* y_true, const int64_t* labels, const float* sample_weight,
                   i64 batch, int64_t* correct);
  // predict's step: the forward pass without dropout; the result is output().
  void predict(const float* x, i64 batch);

  // The last step's predictions, (batch, out), valid until the next step.
  const float* output() const { return out_; }
  // Floats held by the arena: a steady state never changes it.
  i64 arena_size() const { return (i64)arena_.size(); }
  // operator new calls made during the last train_step (the arena growing,
  // first-use scratch); a steady state makes none.
  uint64_t last_step_allocations() const { return last_step_allocations_; }

 private:
  void reserve(i64 batch);
  const float* forward(const float* x, i64 batch, bool training);
  double loss_value(const float* y_true, const int64_t* labels, const float* sample_weight, i64 batch,
                    int64_t* correct);
  double regularize(bool add_gradients);
  cpu::OptimizerArgs optimizer_args(double lr, int64_t step) const;

  std::vector<LayerSpec> layers_;
  cpu::LossArgs loss_;
  double loss_weight_;
  OptimizerSpec opt_;
  float* params_;
  float* grads_;
  std::vector<cpu::ParamBuffer> buffers_;  // the trainable ranges as optimizer buffers
  std::vector<MetricCount> metrics_;

  // Arena: per layer its output y and (Dense with an activation) its
  // pre-activation z; two backward buffers for dy / dx; one dz scratch.
  std::vector<float> arena_;
  i64 capacity_ = 0;  // rows the arena holds
  std::vector<float*> y_, z_;        // each layer's buffers in the arena (y_ null for a pass-through)
  std::vector<const float*> pass_;   // what each layer output in the current pass
  float* dy_[2] = {nullptr, nullptr};
  float* dz_ = nullptr;
  const float* out_ = nullptr;
  uint64_t last_step_allocations_ = 0;
};

}  // namespace model
}  // namespace gradsmith

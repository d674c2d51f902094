// A model's training step as one C++ call, on the CPU.
//
// model.fit on a model whose layers all have a compiled form (model/layers/)
// builds a CpuRunner once (python/gradsmith/compiled_step.py). Each step is then one
// call that runs model::Plan (model/plan.h: forward, loss, metric counts,
// backward, penalties, the fused optimizer) with the CPU backend, with no
// Python in between and no allocation once the arena is sized.
//
// Every kernel is the one gradsmith.ops calls, with the same arguments, so a
// step through the plan gives bit-identical weights to the layer-by-layer
// Python path (tests/test_compiled_step.py checks this).
//
// Buffers: the weights, gradients and optimizer state belong to the Python
// model and optimizer (one flat float32 buffer each); the plan keeps pointers.
#pragma once

#include <stdint.h>

#include <vector>

#include "model/cpu_backend.h"
#include "model/plan.h"

namespace gradsmith {
namespace model {

class CpuRunner {
 public:
  CpuRunner(const std::vector<LayerConfig>& layers, LossArgs loss, double loss_weight, OptimizerSpec optimizer,
            PlanBuffers buffers, const std::vector<TrainableRange>& trainable, std::vector<MetricCount> metrics)
      : plan_(layers, loss, loss_weight, optimizer, buffers, trainable, std::move(metrics)) {}

  i64 in_features() const { return plan_.in_features(); }
  i64 out_features() const { return plan_.out_features(); }
  size_t num_metrics() const { return plan_.num_metrics(); }

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
  void predict(const float* x, i64 batch) { plan_.predict(x, batch); }

  // The last step's predictions, (batch, out), valid until the next step.
  const float* output() const { return plan_.output(); }
  // Floats held by the arena: a steady state never changes it.
  i64 arena_size() const { return plan_.arena_size(); }
  // operator new calls made during the last train_step (the arena growing,
  // first-use scratch); a steady state makes none.
  uint64_t last_step_allocations() const { return last_step_allocations_; }

 private:
  Plan<CpuBackend> plan_;
  uint64_t last_step_allocations_ = 0;
};

}  // namespace model
}  // namespace gradsmith

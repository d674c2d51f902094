// A model's training step on the GPU: model::Plan (model/plan.h) with the CUDA
// backend, plus what only a device needs: the weight, gradient and optimizer
// state buffers mirrored in device memory, batches that reach the device
// through pinned staging buffers (batch i + 1 copies while batch i computes),
// a dataset that can be uploaded once and gathered on the device in each
// epoch's shuffled order, and per-step results fetched once per run.
//
// The host copies of the weights stay the model's own (what get_weights and
// save read): upload() before training on device, download() after; the
// Python side (python/gradsmith/compiled_step.py) does both at the edges of
// fit, evaluate, predict and train_on_batch.
#pragma once

#include <stdint.h>

#include <memory>
#include <vector>

#include "cuda/plan_backend.h"
#include "model/plan.h"

namespace gradsmith {
namespace cuda {

// Rows of a batch or dataset in host memory; y or labels (sparse loss); sample weights or null.
struct HostRows {
  const float* x = nullptr;
  const float* y = nullptr;
  const int64_t* labels = nullptr;
  const float* weights = nullptr;
};

class CudaRunner {
 public:
  CudaRunner(const std::vector<model::LayerConfig>& layers, LossArgs loss, double loss_weight,
             OptimizerSpec optimizer, i64 n_params, const bool has_slot[3], i64 n_slot,
                   const std::vector<model::TrainableRange>& trainable, std::vector<model::MetricCount> metrics);
  ~CudaRunner();
  CudaRunner(const CudaRunner&) = delete;
  CudaRunner& operator=(const CudaRunner&) = delete;

  i64 in_features() const { return plan_->in_features(); }
  i64 out_features() const { return plan_->out_features(); }
  // Labels (and sample weights) per sample: T for the sparse loss over outputs (T, classes), else 1.
  i64 label_width() const { return plan_->label_width(); }
  size_t num_metrics() const { return plan_->num_metrics(); }

  // Host weights and optimizer state (slots[s] null where there is none) to the device and back.
  void upload(const float* params, const float* const slots[3]);
  // The pruning mask (host memory laid out as the parameters; null: none), copied to the device: the fused
  // update keeps each weight whose mask is 0 at exactly 0. Call again after changing it.
  void set_keep(const float* keep);
  void download(float* params, float* const slots[3]);

  // Consecutive training steps over `rows` host rows in batches of `batch`: lr[s] is step s's learning
  // rate, first_step + s its Keras step; values[s] gets its loss (with penalties) and counts[s * metrics]
  // its metric counts. Blocks until the run is done.
  void train_steps(const HostRows& data, i64 rows, i64 batch, const double* lr, int64_t first_step, double* values,
                   int64_t* counts);

  // A dataset kept in device memory (replacing any earlier one) ...
  void set_dataset(const HostRows& data, i64 rows);
  bool has_dataset() const { return dataset_rows_ > 0; }
  // ... and steps over its rows order[0], order[1], ... (n of them, each < the dataset's rows).
  void train_steps_resident(const int64_t* order, i64 n, i64 batch, const double* lr, int64_t first_step,
                            double* values, int64_t* counts);

  // evaluate's step on host rows: returns the loss (with penalties), writes the counts.
  double test_step(const HostRows& data, i64 rows, int64_t* counts);
  // predict's step: out (rows, out_features) in host memory.
  void predict(const float* x, i64 rows, float* out);
  // The last step's predictions, (rows, out_features), copied to host memory; rows of the last step.
  void output(float* out) const;
  i64 last_rows() const { return last_rows_; }

 private:
  struct Slot;  // a staging slot: pinned host and device buffers of one batch, two events
  void ensure_batch(i64 batch);
  void ensure_results(i64 steps);
  void stage(Slot& slot, const HostRows& data, i64 first_row, i64 rows);
  void fetch_results(i64 steps, i64 batch, i64 rows, double* values, int64_t* counts);

  bool sparse_;
  DeviceBuffer params_, grads_, slots_[3], keep_;
  std::unique_ptr<model::Plan<CudaBackend>> plan_;
  std::unique_ptr<Slot> slot_[2];
  i64 batch_capacity_ = 0;
  void* copy_stream_ = nullptr;  // cudaStream_t, non-blocking: staging copies overlap the compute stream
  DeviceBuffer lrs_, records_, counts_, order_;
  i64 result_capacity_ = 0;
  DeviceBuffer data_x_, data_y_, data_w_;
  i64 dataset_rows_ = 0;
  bool dataset_weighted_ = false;
  i64 last_rows_ = 0;
};

}  // namespace cuda
}  // namespace gradsmith

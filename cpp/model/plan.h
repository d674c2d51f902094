// A model's training step, written once for every backend.
//
// Plan<Backend> loops over the model's layers (model/layer.h; one file per kind in model/layers/); the
// backend owns the memory and runs the kernels: CpuBackend (model/cpu_backend.h) calls the CPU kernels on
// host memory, CudaBackend (cuda/plan_backend.h) launches the CUDA kernels on device memory. One step is:
//
//   forward      for each layer: y = layer.forward(x)
//   loss         value and dL/dy_pred in one pass, scaled by the loss weight
//   metrics      correct-prediction counts for the accuracy metrics
//   backward     for each layer in reverse: dx = layer.backward(dy), weight gradients written;
//                then the L1/L2 penalty gradients of the weights the layers declared
//   optimizer    one fused pass over every trainable weight
//
// A step's results go to memory of the backend (so a GPU step never waits for the host): record[0] = loss
// value times the loss weight, record[1] = the penalties of the weights the step starts from (Keras
// reports their sum), and one int64 count per metric. The learning rate is read from backend memory too,
// so a schedule is a table, not a synchronization.
//
// Buffers: weights (with non-trainable state), gradients and optimizer state are flat buffers given at
// construction (in the backend's memory). Each layer's output and saved data, the two backward buffers
// and the shared scratch live in one arena, the sum of what the layers declare, that grows only when a
// batch larger than any before arrives.
#pragma once

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "model/layer.h"
#include "model/plan_spec.h"

namespace gradsmith {
namespace model {

template <class Backend>
class Plan {
 public:
  Plan(const std::vector<LayerConfig>& layers, LossArgs loss, double loss_weight, OptimizerSpec optimizer,
       PlanBuffers buffers, const std::vector<TrainableRange>& trainable, std::vector<MetricCount> metrics,
       Backend backend = Backend())
      : loss_(loss), loss_weight_(loss_weight), opt_(optimizer), buf_(buffers), metrics_(std::move(metrics)),
        be_(std::move(backend)) {
    if (layers.empty()) throw std::invalid_argument("a training plan needs at least one layer");
    for (const LayerConfig& c : layers) {
      if (!layers_.empty() && c.input.dims != layers_.back()->output_shape().dims)
        throw std::invalid_argument(c.where() + "its input shape " + c.input.str() + " is not the output shape " +
                                    layers_.back()->output_shape().str() + " of the layer before");
      layers_.push_back(make_layer<Backend>(c));
      for (const WeightDecl& w : layers_.back()->weights()) {
        if (!within(w.offset, w.size, buf_.n_params))
          throw std::invalid_argument(c.where() + "a weight lies outside the parameter buffer");
        if (w.l1 != 0.0 || w.l2 != 0.0) penalties_.push_back({w.offset, w.size, w.l1, w.l2});
      }
    }
    for (const TrainableRange& r : trainable) {
      const bool has_state = buf_.slots[0] || buf_.slots[1] || buf_.slots[2];
      if (!within(r.param, r.size, buf_.n_params) || (has_state && !within(r.slot, r.size, buf_.n_slot)))
        throw std::invalid_argument("a trainable range lies outside its buffers");
    }
    be_.prepare(opt_, buf_, trainable, penalties_);
    in_features_ = layers_.front()->input_shape().size();
    out_features_ = layers_.back()->output_shape().size();
    // The sparse loss over a time axis: outputs (T, classes) per sample take T labels, one per step, and the
    // loss and counts run over batch * T rows of `classes` (Keras: the mean over batch and time).
    if (loss_.kind == kSparseCategoricalXent && out_features_ > 0)
      label_width_ = out_features_ / layers_.back()->output_shape().last();
    for (const auto& l : layers_)
      if (l->has_end_step()) stepped_.push_back(l.get());
    const size_t n = layers_.size();
    y_.assign(n, nullptr);
    saved_.assign(n, nullptr);
    pass_.assign(n, nullptr);
  }

  i64 in_features() const { return in_features_; }
  i64 out_features() const { return out_features_; }
  // Labels per sample of the sparse loss (T for outputs (T, classes), else 1); the sample weights of such a
  // plan are per label (batch * T).
  i64 label_width() const { return label_width_; }
  size_t num_metrics() const { return metrics_.size(); }
  Backend& backend() { return be_; }

  // One optimizer step on a batch: x (batch, in), y_true (batch, out) or labels (batch,) for the sparse
  // loss, sample_weight (batch,) or null; all in backend memory, labels already checked to lie in range.
  // lr points at this step's learning rate (backend memory) and step is Keras's iterations + 1.
  void train_step(const float* x, const float* y_true, const int64_t* labels, const float* sample_weight, i64 batch,
                  const double* lr, int64_t step, double* record, int64_t* counts) {
    gradient_step(x, y_true, labels, sample_weight, batch, record, counts);
    apply_gradients(lr, step);
  }

  // train_step in two halves, for data-parallel training (gradsmith.distribution), where the gradient
  // buffer is all-reduced between them: gradient_step leaves the batch's gradients (the penalties' added)
  // in the gradient buffer and the record and counts as train_step makes them; apply_gradients is the
  // fused optimizer update over whatever the gradient buffer then holds. The two in a row are train_step.
  void gradient_step(const float* x, const float* y_true, const int64_t* labels, const float* sample_weight,
                     i64 batch, double* record, int64_t* counts) {
    reserve(batch);
    forward(x, batch, true);
    loss_and_counts(y_true, labels, sample_weight, batch, record, counts);
    backward(x, batch);
    for (Layer<Backend>* l : stepped_) l->end_step();
    // penalties of the weights before the update (Keras), their gradients added
    be_.penalties(buf_, penalties_, true, record + 1);
  }
  void apply_gradients(const double* lr, int64_t step) { be_.optimizer_step(opt_, lr, step); }

  // The pruning mask, laid out as the parameters (backend memory; null: none): the fused update keeps each
  // weight whose mask is 0 at exactly 0 (gradsmith.pruning).
  void set_keep(const float* keep) { be_.set_keep(keep); }

  // gradient_step with every gradient times `scale` (a rank's rows over the global batch's, so that the sum
  // over ranks is the global mean): dL/dy_pred (batch x out floats) is scaled before backward, which is
  // linear in it, so the weight gradients come out scaled with no pass over the gradient buffer; the
  // penalties' gradients are added scaled. The record and counts are not scaled. Needs Backend::scale and
  // a scale argument to Backend::penalties (the CPU backend's).
  // `first_row` is the batch's first row in the global batch: Dropout draws the masks of those rows; `ranks`
  // (or null) sums over the job's ranks for the layers that need the global batch (BatchNormalization).
  void scaled_gradient_step(const float* x, const float* y_true, const int64_t* labels, const float* sample_weight,
                            i64 batch, float scale, i64 first_row, const RankSums* ranks, double* record,
                            int64_t* counts) {
    first_row_ = first_row;
    ranks_ = ranks;
    reserve(batch);
    forward(x, batch, true);
    loss_and_counts(y_true, labels, sample_weight, batch, record, counts);
    be_.scale(dy_[0], batch * out_features(), scale);
    backward(x, batch);
    for (Layer<Backend>* l : stepped_) l->end_step();
    be_.penalties(buf_, penalties_, true, record + 1, scale);
    first_row_ = 0;
    ranks_ = nullptr;
  }

  // evaluate's step: the forward pass without dropout, the record and counts as train_step makes them; no
  // gradient or weight is touched.
  void test_step(const float* x, const float* y_true, const int64_t* labels, const float* sample_weight, i64 batch,
                 double* record, int64_t* counts) {
    reserve(batch);
    forward(x, batch, false);
    loss_and_counts(y_true, labels, sample_weight, batch, record, counts);
    be_.penalties(buf_, penalties_, false, record + 1);
  }

  // predict's step: the forward pass without dropout; the result is output().
  void predict(const float* x, i64 batch) {
    reserve(batch);
    forward(x, batch, false);
  }

  // The last step's predictions, (batch, out) in backend memory, valid until the next step.
  const float* output() const { return out_; }
  i64 arena_size() const { return be_.arena_size(); }

 private:
  // Arena layout: per layer its output and saved data, as declared; two backward buffers for dy / dx, as
  // wide as the widest activation; one scratch, as large as the largest any layer declares.
  void reserve(i64 batch) {
    if (batch <= capacity_) return;
    constexpr i64 kAlign = 16;  // floats: every buffer starts on a 64-byte line
    auto aligned = [](i64 n) { return (n + kAlign - 1) / kAlign * kAlign; };
    // Every size below is batch times a per-sample size: first make sure none can overflow.
    double floats = 0.0;
    for (const auto& l : layers_)
      floats += (double)batch * (3.0 * (double)l->input_shape().size() + 4.0 * (double)l->output_shape().size());
    if (floats > 4.0e15)
      throw std::length_error("a batch of " + std::to_string(batch) + " rows needs more activation memory than exists");
    i64 widest = 0, scratch = 0, total = 0;
    for (const auto& l : layers_) {
      widest = std::max(widest, std::max(batch * l->input_shape().size(), batch * l->output_shape().size()));
      scratch = std::max(scratch, l->scratch_floats(batch));
      total += aligned(l->output_floats(batch)) + aligned(l->saved_floats(batch));
    }
    total += 2 * aligned(widest) + aligned(scratch);
    capacity_ = 0;  // if growing fails, the old buffers may be gone: the next step sizes the arena again
    float* p = be_.arena(total, batch * label_width_);  // 64-byte aligned; rows: the loss's rows
    auto take = [&](i64 n) { float* q = n ? p : nullptr; p += aligned(n); return q; };
    for (size_t i = 0; i < layers_.size(); ++i) {
      y_[i] = take(layers_[i]->output_floats(batch));
      saved_[i] = take(layers_[i]->saved_floats(batch));
    }
    dy_[0] = take(widest);
    dy_[1] = take(widest);
    scratch_ = take(scratch);
    capacity_ = batch;
  }

  // Layer i's buffers: it reads what layer i - 1 returned (x for the first), its own buffer or its input
  // passed on.
  void point_at(LayerIO& a, size_t i, const float* x) const {
    a.x = i == 0 ? x : pass_[i - 1];
    a.y = y_[i];
    a.saved = saved_[i];
  }

  LayerIO io(i64 batch, bool training) const {
    LayerIO a;
    a.batch = batch;
    a.training = training;
    a.first_row = first_row_;
    a.ranks = ranks_;
    a.scratch = scratch_;
    a.params = buf_.params;
    a.grads = buf_.grads;
    return a;
  }

  void forward(const float* x, i64 batch, bool training) {
    LayerIO a = io(batch, training);
    for (size_t i = 0; i < layers_.size(); ++i) {
      point_at(a, i, x);
      pass_[i] = layers_[i]->forward(be_, a);
    }
    out_ = pass_.back();
  }

  // record[0] = loss value times the loss weight, its gradient in dy_[0]; the counts.
  void loss_and_counts(const float* y_true, const int64_t* labels, const float* sample_weight, i64 batch,
                       double* record, int64_t* counts) {
    const i64 rows = batch * label_width_, cols = out_features() / label_width_;
    be_.loss_and_grad(loss_, loss_weight_, y_true, labels, out_, sample_weight, dy_[0], rows, cols, record);
    for (size_t m = 0; m < metrics_.size(); ++m)
      be_.count_correct(metrics_[m].kind, metrics_[m].threshold, y_true, labels, out_, rows, cols, counts + m);
  }

  // Layer k turns dy into dx, in whichever backward buffer dy is not in (a pass-through hands dy back);
  // layer 0's dx is not needed.
  void backward(const float* x, i64 batch) {
    const float* dy = dy_[0];
    LayerIO a = io(batch, true);
    for (size_t k = layers_.size(); k-- > 0;) {
      point_at(a, k, x);
      a.dy = dy;
      a.out = pass_[k];
      a.dx = k == 0 ? nullptr : (dy == dy_[0] ? dy_[1] : dy_[0]);
      dy = layers_[k]->backward(be_, a);
    }
  }

  std::vector<std::unique_ptr<Layer<Backend>>> layers_;
  LossArgs loss_;
  double loss_weight_;
  OptimizerSpec opt_;
  PlanBuffers buf_;
  std::vector<MetricCount> metrics_;
  std::vector<PenaltyTerm> penalties_;
  Backend be_;

  std::vector<Layer<Backend>*> stepped_;  // the layers with an end_step (Dropout's counter)
  i64 in_features_ = 0, out_features_ = 0, label_width_ = 1;
  i64 capacity_ = 0;  // rows the arena holds
  i64 first_row_ = 0;  // scaled_gradient_step's first row while it runs, else 0
  const RankSums* ranks_ = nullptr;  // and its sums over ranks
  std::vector<float*> y_, saved_;   // each layer's buffers in the arena (null where it declared none)
  std::vector<const float*> pass_;  // what each layer output in the current pass
  float* dy_[2] = {nullptr, nullptr};
  float* scratch_ = nullptr;
  const float* out_ = nullptr;
};

}  // namespace model
}  // namespace gradsmith

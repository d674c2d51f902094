// A model's training step, written once for every backend.
//
// Plan<Backend> walks the layers; the backend owns the memory and runs the
// kernels: CpuBackend (model/cpu_backend.h) calls the CPU kernels on host
// memory, CudaBackend (cuda/plan_backend.h) launches the CUDA kernels on device
// memory. One step is:
//
//   forward      for each layer: Dense (GEMM + bias + activation epilogue),
//                Activation, Dropout (Philox mask from (seed, call counter))
//   loss         value and dL/dy_pred in one pass, scaled by the loss weight
//   metrics      correct-prediction counts for the accuracy metrics
//   backward     for each layer in reverse: dz = dy * f'(z), db, dW = x^T dz,
//                dx = dz W^T; then the L1/L2 penalty gradients
//   optimizer    one fused pass over every trainable weight
//
// A step's results go to memory of the backend (so a GPU step never waits for
// the host): record[0] = loss value times the loss weight, record[1] = the
// penalties of the weights the step starts from (Keras reports their sum), and
// one int64 count per metric. The learning rate is read from backend memory
// too, so a schedule is a table, not a synchronization.
//
// Buffers: weights, gradients and optimizer state are flat buffers given at
// construction (in the backend's memory). Activations, pre-activations and the
// backward scratch live in one arena that grows only when a batch larger than
// any before arrives.
#pragma once

#include <stdexcept>
#include <utility>
#include <vector>

#include "model/plan_spec.h"

namespace gradsmith {
namespace model {

// Weight buffers of a plan, in the backend's memory.
struct PlanBuffers {
  float* params = nullptr;
  float* grads = nullptr;
  i64 n_params = 0;
  float* slots[3] = {nullptr, nullptr, nullptr};  // optimizer state, or null
  i64 n_slot = 0;
};

template <class Backend>
class Plan {
 public:
  Plan(std::vector<LayerSpec> layers, LossArgs loss, double loss_weight, OptimizerSpec optimizer, PlanBuffers buffers,
       const std::vector<TrainableRange>& trainable, std::vector<MetricCount> metrics, Backend backend = Backend())
      : layers_(std::move(layers)),
        loss_(loss),
        loss_weight_(loss_weight),
        opt_(optimizer),
        buf_(buffers),
        metrics_(std::move(metrics)),
        be_(std::move(backend)) {
    check_layers();
    for (const TrainableRange& r : trainable) {
      const bool has_state = buf_.slots[0] || buf_.slots[1] || buf_.slots[2];
      if (r.size < 0 || r.param < 0 || r.param + r.size > buf_.n_params ||
          (has_state && (r.slot < 0 || r.slot + r.size > buf_.n_slot)))
        throw std::invalid_argument("a trainable range lies outside its buffers");
    }
    for (const LayerSpec& l : layers_) {
      if (l.kind != kDense) continue;
      if (l.kernel_l1 != 0.0 || l.kernel_l2 != 0.0) penalties_.push_back({l.kernel, l.in * l.out, l.kernel_l1, l.kernel_l2});
      if (l.bias >= 0 && (l.bias_l1 != 0.0 || l.bias_l2 != 0.0)) penalties_.push_back({l.bias, l.out, l.bias_l1, l.bias_l2});
    }
    be_.prepare(opt_, buf_, trainable, penalties_);
    y_.assign(layers_.size(), nullptr);
    z_.assign(layers_.size(), nullptr);
    pass_.assign(layers_.size(), nullptr);
  }

  i64 in_features() const { return layers_.front().in; }
  i64 out_features() const { return layers_.back().out; }
  size_t num_metrics() const { return metrics_.size(); }
  Backend& backend() { return be_; }

  // One optimizer step on a batch: x (batch, in), y_true (batch, out) or labels
  // (batch,) for the sparse loss, sample_weight (batch,) or null; all in backend
  // memory, labels already checked to lie in range. lr points at this step's
  // learning rate (backend memory) and step is Keras's iterations + 1.
  void train_step(const float* x, const float* y_true, const int64_t* labels, const float* sample_weight, i64 batch,
                  const double* lr, int64_t step, double* record, int64_t* counts) {
    reserve(batch);
    forward(x, batch, true);
    loss_and_counts(y_true, labels, sample_weight, batch, record, counts);
    backward(x, batch);
    for (LayerSpec& l : layers_)
      if (l.kind == kDropout && !is_identity(l)) ++*l.calls;
    // penalties of the weights before the update (Keras), their gradients added, then the update
    be_.penalties(buf_, penalties_, true, record + 1);
    be_.optimizer_step(opt_, lr, step);
  }

  // evaluate's step: the forward pass without dropout, the record and counts as
  // train_step makes them; no gradient or weight is touched.
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
  static bool keeps_preactivation(const LayerSpec& l) { return l.kind == kDense && l.act.kind != kLinear; }
  // A Dropout of rate 0 passes its input through: no buffer, no pass.
  static bool is_identity(const LayerSpec& l) { return l.kind == kDropout && l.rate == 0.0; }

  void check_layers() const {
    if (layers_.empty()) throw std::invalid_argument("a training plan needs at least one layer");
    for (size_t i = 0; i < layers_.size(); ++i) {
      const LayerSpec& l = layers_[i];
      if (l.in < 1 || l.out < 1) throw std::invalid_argument("layer sizes must be >= 1");
      if (i > 0 && l.in != layers_[i - 1].out) throw std::invalid_argument("layer sizes do not chain");
      if (l.kind == kDense) {
        if (l.kernel < 0 || l.kernel + l.in * l.out > buf_.n_params || l.bias + l.out > buf_.n_params)
          throw std::invalid_argument("a Dense weight lies outside the parameter buffer");
      } else if (l.in != l.out) {
        throw std::invalid_argument("Activation and Dropout keep their width");
      }
      if (l.kind == kDropout && (!(l.rate >= 0.0 && l.rate < 1.0) || l.calls == nullptr))
        throw std::invalid_argument("Dropout needs a rate in [0, 1) and a call counter");
    }
  }

  // Arena layout: per layer its output y and (Dense with an activation) its
  // pre-activation z; two backward buffers for dy / dx; one dz scratch.
  void reserve(i64 batch) {
    if (batch <= capacity_) return;
    constexpr i64 kAlign = 16;  // floats: every buffer starts on a 64-byte line
    auto aligned = [](i64 n) { return (n + kAlign - 1) / kAlign * kAlign; };
    i64 widest = 0;
    for (const LayerSpec& l : layers_) widest = l.in > widest ? l.in : widest, widest = l.out > widest ? l.out : widest;
    i64 total = 3 * aligned(batch * widest);
    for (const LayerSpec& l : layers_) {
      if (!is_identity(l)) total += aligned(batch * l.out);
      if (keeps_preactivation(l)) total += aligned(batch * l.out);
    }
    capacity_ = 0;  // if growing fails, the old buffers may be gone: the next step sizes the arena again
    float* p = be_.arena(total, batch);  // 64-byte aligned
    auto take = [&](i64 n) { float* q = p; p += aligned(n); return q; };
    for (size_t i = 0; i < layers_.size(); ++i) {
      y_[i] = is_identity(layers_[i]) ? nullptr : take(batch * layers_[i].out);
      z_[i] = keeps_preactivation(layers_[i]) ? take(batch * layers_[i].out) : nullptr;
    }
    dy_[0] = take(batch * widest);
    dy_[1] = take(batch * widest);
    dz_ = take(batch * widest);
    capacity_ = batch;
  }

  void forward(const float* x, i64 batch, bool training) {
    // Layer i reads pass_[i - 1] (x for the first) and writes its buffer; a Dropout outside training and
    // one of rate 0 pass their input on.
    for (size_t i = 0; i < layers_.size(); ++i) {
      const LayerSpec& l = layers_[i];
      const float* in = i == 0 ? x : pass_[i - 1];
      if (l.kind == kDropout && (!training || is_identity(l))) {
        pass_[i] = in;
        continue;
      }
      switch (l.kind) {
        case kDense:
          // z is kept only for training's backward pass; inference writes y alone.
          be_.dense_forward(in, buf_.params + l.kernel, l.bias >= 0 ? buf_.params + l.bias : nullptr, l.act, y_[i],
                            training ? z_[i] : nullptr, batch, l.in, l.out);
          break;
        case kActivation:
          be_.activation_forward(l.act, in, y_[i], batch, l.in);
          break;
        default:  // Dropout: this call's mask is Philox(seed; element, counter)
          be_.dropout(in, y_[i], batch * l.in, l.rate, l.seed, (uint64_t)*l.calls);
          break;
      }
      pass_[i] = y_[i];
    }
    out_ = pass_.back();
  }

  // record[0] = loss value times the loss weight, its gradient in dy_[0]; the counts.
  void loss_and_counts(const float* y_true, const int64_t* labels, const float* sample_weight, i64 batch,
                       double* record, int64_t* counts) {
    const i64 out = out_features();
    be_.loss_and_grad(loss_, loss_weight_, y_true, labels, out_, sample_weight, dy_[0], batch, out, record);
    for (size_t m = 0; m < metrics_.size(); ++m)
      be_.count_correct(metrics_[m].kind, metrics_[m].threshold, y_true, labels, out_, batch, out, counts + m);
  }

  // Layer k turns dy (batch, out) into dx (batch, in); layer 0 needs no dx.
  void backward(const float* x, i64 batch) {
    float* dy = dy_[0];
    for (size_t k = layers_.size(); k-- > 0;) {
      const LayerSpec& l = layers_[k];
      if (is_identity(l)) continue;
      float* dx = dy == dy_[0] ? dy_[1] : dy_[0];
      const bool need_dx = k > 0;
      const float* in = k == 0 ? x : pass_[k - 1];
      switch (l.kind) {
        case kDense: {
          float* dW = buf_.grads + l.kernel;
          float* db = l.bias >= 0 ? buf_.grads + l.bias : nullptr;
          // With no activation z is y itself (f' = 1 never reads it).
          const float* z = z_[k] ? z_[k] : y_[k];
          be_.dense_backward(dy, in, buf_.params + l.kernel, z, l.act, dz_, need_dx ? dx : nullptr, dW, db, batch,
                             l.in, l.out);
          break;
        }
        case kActivation:
          if (need_dx) be_.activation_backward(l.act, dy, in, dx, batch, l.in);
          break;
        default:
          if (need_dx) be_.dropout(dy, dx, batch * l.in, l.rate, l.seed, (uint64_t)*l.calls);
          break;
      }
      if (need_dx) dy = dx;
    }
  }

  std::vector<LayerSpec> layers_;
  LossArgs loss_;
  double loss_weight_;
  OptimizerSpec opt_;
  PlanBuffers buf_;
  std::vector<MetricCount> metrics_;
  std::vector<PenaltyTerm> penalties_;
  Backend be_;

  i64 capacity_ = 0;  // rows the arena holds
  std::vector<float*> y_, z_;       // each layer's buffers in the arena (y_ null for a pass-through)
  std::vector<const float*> pass_;  // what each layer output in the current pass
  float* dy_[2] = {nullptr, nullptr};
  float* dz_ = nullptr;
  const float* out_ = nullptr;
};

}  // namespace model
}  // namespace gradsmith

#include "model/training_plan.h"

#include <math.h>

#include <stdexcept>

#include "cpu/allocation_counter.h"
#include "cpu/profiler.h"
#include "cpu/thread_pool.h"

namespace gradsmith {
namespace model {
namespace {

constexpr i64 kAlign = 16;  // floats: every arena buffer starts on a 64-byte line
i64 aligned(i64 n) { return (n + kAlign - 1) / kAlign * kAlign; }

bool keeps_preactivation(const LayerSpec& l) { return l.kind == kDense && l.act.kind != kLinear; }
// A Dropout of rate 0 passes its input through: no buffer, no pass.
bool is_identity(const LayerSpec& l) { return l.kind == kDropout && l.rate == 0.0; }

// g += l1 * sign(w) + 2 * l2 * w over one weight (g null: value only); returns l1 * sum|w| + l2 * sum w^2.
double add_penalty(const float* w, float* g, i64 n, double l1, double l2) {
  if (l1 == 0.0 && l2 == 0.0) return 0.0;
  const float l1f = (float)l1, two_l2 = (float)(2.0 * l2);
  double abs_sum = 0.0;
  for (i64 i = 0; i < n; ++i) {
    abs_sum += fabs((double)w[i]);
    if (g) g[i] += math::penalty_grad(w[i], l1f, two_l2);
  }
  double value = 0.0;
  if (l1 != 0.0) value += l1 * abs_sum;
  if (l2 != 0.0) value += l2 * cpu::sum_squares(w, n);
  return value;
}

}  // namespace

TrainingPlan::TrainingPlan(std::vector<LayerSpec> layers, cpu::LossArgs loss, double loss_weight,
                           OptimizerSpec optimizer, float* params, float* grads, i64 n_params,
                           std::vector<TrainableRange> trainable, float* slot0, float* slot1, float* slot2,
                           i64 n_slot, std::vector<MetricCount> metrics)
    : layers_(std::move(layers)),
      loss_(loss),
      loss_weight_(loss_weight),
      opt_(optimizer),
      params_(params),
      grads_(grads),
      metrics_(std::move(metrics)) {
  if (layers_.empty()) throw std::invalid_argument("a training plan needs at least one layer");
  for (size_t i = 0; i < layers_.size(); ++i) {
    const LayerSpec& l = layers_[i];
    if (l.in < 1 || l.out < 1) throw std::invalid_argument("layer sizes must be >= 1");
    if (i > 0 && l.in != layers_[i - 1].out) throw std::invalid_argument("layer sizes do not chain");
    if (l.kind == kDense) {
      if (l.kernel < 0 || l.kernel + l.in * l.out > n_params || l.bias + l.out > n_params)
        throw std::invalid_argument("a Dense weight lies outside the parameter buffer");
    } else if (l.in != l.out) {
      throw std::invalid_argument("Activation and Dropout keep their width");
    }
    if (l.kind == kDropout && (!(l.rate >= 0.0 && l.rate < 1.0) || l.calls == nullptr))
      throw std::invalid_argument("Dropout needs a rate in [0, 1) and a call counter");
  }
  for (const TrainableRange& r : trainable) {
    const bool has_state = slot0 || slot1 || slot2;
    if (r.size < 0 || r.param < 0 || r.param + r.size > n_params ||
        (has_state && (r.slot < 0 || r.slot + r.size > n_slot)))
      throw std::invalid_argument("a trainable range lies outside its buffers");
    auto at = [&](float* s) { return s ? s + r.slot : nullptr; };
    buffers_.push_back({params + r.param, grads + r.param, at(slot0), at(slot1), at(slot2), r.size});
  }
  y_.assign(layers_.size(), nullptr);
  z_.assign(layers_.size(), nullptr);
  pass_.assign(layers_.size(), nullptr);
}

void TrainingPlan::reserve(i64 batch) {
  if (batch <= capacity_) return;
  i64 widest = 0;
  for (const LayerSpec& l : layers_) widest = l.in > widest ? l.in : widest, widest = l.out > widest ? l.out : widest;
  i64 total = 3 * aligned(batch * widest);  // dy_[0], dy_[1], dz_
  for (const LayerSpec& l : layers_) {
    if (!is_identity(l)) total += aligned(batch * l.out);
    if (keeps_preactivation(l)) total += aligned(batch * l.out);
  }
  arena_.assign(total + kAlign, 0.f);
  // Start on a 64-byte boundary (the vector guarantees only 16).
  float* p = arena_.data();
  p += (kAlign - ((uintptr_t)p / sizeof(float)) % kAlign) % kAlign;
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

cpu::OptimizerArgs TrainingPlan::optimizer_args(double lr, int64_t step) const {
  // The same numbers gradsmith.ops computes in Python (ops.sgd_step, adam_step, ...), in double, rounded once.
  cpu::OptimizerArgs a;
  a.kind = opt_.kind;
  a.lr = (float)lr;
  a.weight_decay = opt_.weight_decay;
  a.nesterov = opt_.nesterov;
  switch (opt_.kind) {
    case cpu::kSgd:
      a.h0 = (float)opt_.momentum;
      break;
    case cpu::kAdam: {
      // alpha = lr * sqrt(1 - b2^t) / (1 - b1^t): Adam's bias corrections folded into the step size
      const double t = (double)step;
      a.h0 = (float)(lr * sqrt(1.0 - pow(opt_.beta_2, t)) / (1.0 - pow(opt_.beta_1, t)));
      a.h1 = (float)(1.0 - opt_.beta_1);
      a.h2 = (float)(1.0 - opt_.beta_2);
      a.h3 = (float)opt_.epsilon;
      break;
    }
    case cpu::kRmsprop:
      a.h0 = (float)opt_.rho;
      a.h1 = (float)(1.0 - opt_.rho);
      a.h2 = (float)opt_.momentum;
      a.h3 = (float)opt_.epsilon;
      break;
    default:
      a.h0 = (float)opt_.epsilon;
  }
  return a;
}

const float* TrainingPlan::forward(const float* x, i64 batch, bool training) {
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
        cpu::dense_forward(in, params_ + l.kernel, l.bias >= 0 ? params_ + l.bias : nullptr, l.act, y_[i],
                           training ? z_[i] : nullptr, batch, l.in, l.out);
        break;
      case kActivation:
        cpu::activation_forward(l.act, in, y_[i], batch, l.in);
        break;
      default:  // Dropout: this call's mask is Philox(seed; element, counter)
        cpu::dropout(in, y_[i], batch * l.in, l.rate, l.seed, (uint64_t)*l.calls);
        break;
    }
    pass_[i] = y_[i];
  }
  out_ = pass_.back();
  return out_;
}

// The loss value (times the loss weight) of the last forward pass, its gradient in dy_[0], and the counts.
double TrainingPlan::loss_value(const float* y_true, const int64_t* labels, const float* sample_weight, i64 batch,
                                int64_t* correct) {
  const i64 out = layers_.back().out;
  double value = cpu::loss_and_grad(loss_, y_true, labels, out_, sample_weight, dy_[0], batch, out);
  if (loss_weight_ != 1.0) {
    value *= loss_weight_;
    const float w = (float)loss_weight_;
    for (i64 i = 0; i < batch * out; ++i) dy_[0][i] *= w;
  }
  for (size_t m = 0; m < metrics_.size(); ++m)
    correct[m] = cpu::count_correct(metrics_[m].kind, y_true, labels, out_, batch, out, metrics_[m].threshold);
  return value;
}

double TrainingPlan::train_step(const float* x, const float* y_true, const int64_t* labels,
                                const float* sample_weight, i64 batch, double lr, int64_t step, int64_t* correct) {
  const uint64_t allocations_before = cpu::allocation_count();
  // The step is a span in the profiler's trace, with its kernels inside.
  const int64_t span = prof::enabled() ? prof::span_begin("train_step") : -1;
  reserve(batch);
  forward(x, batch, true);
  double value = loss_value(y_true, labels, sample_weight, batch, correct);

  // ---- backward: layer k turns dy (batch, out) into dx (batch, in); layer 0 needs no dx
  float* dy = dy_[0];
  for (size_t k = layers_.size(); k-- > 0;) {
    const LayerSpec& l = layers_[k];
    if (is_identity(l)) continue;
    float* dx = dy == dy_[0] ? dy_[1] : dy_[0];
    const bool need_dx = k > 0;
    const float* in = k == 0 ? x : pass_[k - 1];
    switch (l.kind) {
      case kDense: {
        float* dW = grads_ + l.kernel;
        float* db = l.bias >= 0 ? grads_ + l.bias : nullptr;
        // With no activation z is y itself (f' = 1 never reads it).
        const float* z = z_[k] ? z_[k] : y_[k];
        cpu::dense_backward(dy, in, params_ + l.kernel, z, l.act, dz_, need_dx ? dx : nullptr, dW, db, batch, l.in,
                            l.out);
        break;
      }
      case kActivation:
        if (need_dx) cpu::activation_backward(l.act, dy, in, dx, batch, l.in);
        break;
      default:
        if (need_dx) cpu::dropout(dy, dx, batch * l.in, l.rate, l.seed, (uint64_t)*l.calls);
        break;
    }
    if (need_dx) dy = dx;
  }
  for (LayerSpec& l : layers_)
    if (l.kind == kDropout && !is_identity(l)) ++*l.calls;

  // ---- penalties (value on the weights before the update, as Keras), then the update
  value += regularize(true);
  if (!buffers_.empty()) cpu::optimizer_step(optimizer_args(lr, step), buffers_, opt_.clip_kind, opt_.clip);
  if (span >= 0) prof::span_end(span);
  last_step_allocations_ = cpu::allocation_count() - allocations_before;
  return value;
}

void TrainingPlan::train_steps(const float* x, const float* y_true, const int64_t* labels,
                               const float* sample_weight, i64 rows, i64 batch, const double* lr, int64_t first_step,
                               double* values, int64_t* correct) {
  const i64 in = in_features(), out = out_features();
  for (i64 s = 0, r = 0; r < rows; ++s, r += batch) {
    const i64 n = r + batch < rows ? batch : rows - r;
    values[s] = train_step(x + r * in, y_true ? y_true + r * out : nullptr, labels ? labels + r : nullptr,
                           sample_weight ? sample_weight + r : nullptr, n, lr[s], first_step + s,
                           correct + s * (i64)metrics_.size());
  }
}

double TrainingPlan::test_step(const float* x, const float* y_true, const int64_t* labels,
                               const float* sample_weight, i64 batch, int64_t* correct) {
  const int64_t span = prof::enabled() ? prof::span_begin("test_step") : -1;
  reserve(batch);
  forward(x, batch, false);
  const double value = loss_value(y_true, labels, sample_weight, batch, correct) + regularize(false);
  if (span >= 0) prof::span_end(span);
  return value;
}

void TrainingPlan::predict(const float* x, i64 batch) {
  reserve(batch);
  forward(x, batch, false);
}

double TrainingPlan::regularize(bool add_gradients) {
  double value = 0.0;
  for (const LayerSpec& l : layers_) {
    if (l.kind != kDense) continue;
    value += add_penalty(params_ + l.kernel, add_gradients ? grads_ + l.kernel : nullptr, l.in * l.out, l.kernel_l1,
                         l.kernel_l2);
    if (l.bias >= 0)
      value += add_penalty(params_ + l.bias, add_gradients ? grads_ + l.bias : nullptr, l.out, l.bias_l1, l.bias_l2);
  }
  return value;
}

}  // namespace model
}  // namespace gradsmith

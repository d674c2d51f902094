// The CPU backend of model::Plan (model/plan.h): host memory, the kernels of cpu/ops.h.
#pragma once

#include <math.h>

#include <vector>

#include "cpu/ops.h"
#include "math/elementwise.h"
#include "math/optimizer.h"
#include "model/plan_spec.h"

namespace gradsmith {
namespace model {

class CpuBackend {
 public:
  // Layers may sum over a data-parallel job's ranks in the middle of a pass (LayerIO::ranks), host memory.
  static constexpr bool kRankSums = true;

  // At least `floats` floats of arena for batches of up to `rows` rows, 64-byte aligned; contents are not kept.
  float* arena(i64 floats, i64 /*rows*/) {
    constexpr i64 kAlign = 16;
    arena_.assign(floats + kAlign, 0.f);
    float* p = arena_.data();  // the vector guarantees only 16 bytes
    return p + (kAlign - ((uintptr_t)p / sizeof(float)) % kAlign) % kAlign;
  }
  i64 arena_size() const { return (i64)arena_.size(); }

  void prepare(const OptimizerSpec&, const PlanBuffers& b, const std::vector<TrainableRange>& trainable,
               const std::vector<PenaltyTerm>&) {
    auto at = [](float* s, i64 off) { return s ? s + off : nullptr; };
    params_ = b.params;
    for (const TrainableRange& r : trainable)
      buffers_.push_back({b.params + r.param, b.grads + r.param, at(b.slots[0], r.slot), at(b.slots[1], r.slot),
                          at(b.slots[2], r.slot), r.size, nullptr});
  }

  // The pruning mask laid out as the parameters (null: none): the fused update keeps w at 0 where it is 0.
  void set_keep(const float* keep) {
    for (cpu::ParamBuffer& buf : buffers_) buf.keep = keep ? keep + (buf.w - params_) : nullptr;
  }

  // The layers' kernels are the CPU kernels themselves (cpu/ops.h), named as the layers call them: no
  // wrapper between a layer and its kernel.
  static constexpr auto& dense_forward = cpu::dense_forward;
  static constexpr auto& dense_backward = cpu::dense_backward;
  static constexpr auto& activation_forward = cpu::activation_forward;
  static constexpr auto& activation_backward = cpu::activation_backward;
  static constexpr auto& dropout = cpu::dropout;
  static constexpr auto& dropout_mask = cpu::dropout_mask;
  static constexpr auto& dropout_broadcast = cpu::dropout_broadcast;
  static constexpr auto& batch_norm_forward = cpu::batch_norm_forward;
  static constexpr auto& batch_norm_backward = cpu::batch_norm_backward;
  static constexpr auto& moving_average = cpu::moving_average;
  static constexpr auto& batch_norm_column_sums = cpu::batch_norm_column_sums;
  static constexpr auto& batch_norm_backward_sums = cpu::batch_norm_backward_sums;
  static constexpr auto& batch_norm_backward_dx = cpu::batch_norm_backward_dx;
  // The CPU's forward takes its im2col tiles from each thread's own scratch (cpu/scratch.h), not the arena's:
  // the layer's scratch is what backward needs.
  static void conv_forward(const math::ConvGeometry& g, const float* x, const float* W, const float* b, ActParams act,
                           float* y, float* z, float* /*scratch*/, i64 batch) {
    cpu::conv_forward(g, x, W, b, act, y, z, batch);
  }
  static constexpr auto& conv_backward = cpu::conv_backward;
  static constexpr auto& conv_scratch = cpu::conv_backward_scratch;
  static constexpr auto& rnn_forward = cpu::rnn_forward;
  static constexpr auto& rnn_backward = cpu::rnn_backward;
  // y (batch, u) = hseq[:, steps - 1] (batch, steps, u): a recurrent layer's last h.
  static void rnn_last_step(const float* hseq, float* y, i64 batch, i64 steps, i64 units) {
    for (i64 n = 0; n < batch; ++n)
      for (i64 j = 0; j < units; ++j) y[n * units + j] = hseq[(n * steps + steps - 1) * units + j];
  }
  static constexpr auto& pool_forward = cpu::pool_forward;
  static constexpr auto& pool_backward = cpu::pool_backward;
  static constexpr auto& embedding_ids = cpu::embedding_ids;
  static constexpr auto& embedding_forward = cpu::embedding_forward;
  static constexpr auto& embedding_backward = cpu::embedding_backward;

  // *value = loss * weight (weight != 1 also scales the gradient, as the Python path does).
  void loss_and_grad(const LossArgs& loss, double weight, const float* y_true, const int64_t* labels,
                     const float* y_pred, const float* sample_weight, float* grad, i64 rows, i64 cols,
                     double* value) {
    double v = cpu::loss_and_grad(loss, y_true, labels, y_pred, sample_weight, grad, rows, cols);
    if (weight != 1.0) {
      v *= weight;
      const float w = (float)weight;
      for (i64 i = 0; i < rows * cols; ++i) grad[i] *= w;
    }
    *value = v;
  }
  void count_correct(int kind, float threshold, const float* y_true, const int64_t* labels, const float* y_pred,
                     i64 rows, i64 cols, int64_t* count) {
    *count = cpu::count_correct(kind, y_true, labels, y_pred, rows, cols, threshold);
  }

  // x *= s, n floats (data-parallel training's scaled loss gradient).
  static void scale(float* x, i64 n, float s) {
    for (i64 i = 0; i < n; ++i) x[i] *= s;
  }

  // *value = sum over the terms of l1 * sum|w| + l2 * sum w^2; with add_gradients, g += grad_scale * (l1 sign(w)
  // + 2 l2 w) (grad_scale 1: the product is exact, the same bits as without it).
  void penalties(const PlanBuffers& b, const std::vector<PenaltyTerm>& terms, bool add_gradients, double* value,
                 float grad_scale = 1.f) {
    double total = 0.0;
    for (const PenaltyTerm& t : terms) {
      const float* w = b.params + t.offset;
      float* g = add_gradients ? b.grads + t.offset : nullptr;
      const math::PenaltyFactors factors = math::penalty_factors(t.l1, t.l2);
      double abs_sum = 0.0;
      for (i64 i = 0; i < t.size; ++i) {
        abs_sum += fabs((double)w[i]);
        if (g) g[i] += grad_scale * math::penalty_grad(w[i], factors);
      }
      total += math::penalty_value(t.l1, t.l2, abs_sum, t.l2 != 0.0 ? cpu::sum_squares(w, t.size) : 0.0);
    }
    *value = total;
  }

  void optimizer_step(const OptimizerSpec& spec, const double* lr, int64_t step) {
    if (buffers_.empty()) return;
    OptimizerArgs a;
    math::optimizer_hyperparameters(spec, *lr, step, &a);
    cpu::optimizer_step(a, buffers_, spec.clip_kind, spec.clip);
  }

 private:
  std::vector<float> arena_;
  std::vector<cpu::ParamBuffer> buffers_;  // the trainable ranges as optimizer buffers
  float* params_ = nullptr;
};

}  // namespace model
}  // namespace gradsmith

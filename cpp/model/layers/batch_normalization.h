// BatchNormalization over the last axis (Keras 3): C features, rows = every other position of the batch.
//
//   training (and trainable):  mean, var = the batch's statistics (biased variance), saved for backward;
//                              moving = moving * momentum + batch * (1 - momentum)   (the layer's state)
//   otherwise:                 mean, var = moving_mean, moving_variance
//   forward    y = x s + (beta - mean s),  s = gamma / sqrt(var + epsilon)
//   backward   dbeta = sum dy, dgamma = sum dy xhat; dx through the batch statistics when they were used,
//              else dx = dy s
//
// On a data-parallel rank (io.ranks, the CPU backend: Backend::kRankSums) the statistics are the global batch's:
// forward sums the columns, sums them over the ranks (io.ranks->sum), takes the mean, then likewise the squared
// deviations from it, and normalizes by those; backward sums dy and dy xhat over the ranks for dx (dgamma and
// dbeta stay this rank's sums: the gradient all-reduce adds them). Three sums over ranks per layer and step, of
// C, C and 2C doubles, in that order on every rank.
//
// gamma and beta are trainable weights (absent with scale=False / center=False); moving_mean and
// moving_variance are non-trainable weights in the same flat buffer, outside the optimizer's segments.
#pragma once

#include "model/layer.h"

namespace gradsmith {
namespace model {

template <class Backend>
class BatchNormalization : public Layer<Backend> {
  using Layer<Backend>::in_;

 public:
  explicit BatchNormalization(const LayerConfig& c)
      : Layer<Backend>(c),
        epsilon_((float)c.number("epsilon")),
        momentum_(c.number("momentum")),
        batch_statistics_(c.number("batch_statistics") != 0.0),
        gamma_(c.weight("gamma")),
        beta_(c.weight("beta")),
        moving_mean_(c.weight("moving_mean")),
        moving_variance_(c.weight("moving_variance")),
        gamma_penalty_(c.penalty("gamma")),
        beta_penalty_(c.penalty("beta")) {
    if (in_.dims.empty() || moving_mean_ < 0 || moving_variance_ < 0 || !(epsilon_ > 0.f))
      throw std::invalid_argument(c.where() + "needs a last axis, the moving statistics and epsilon > 0");
  }

  std::vector<WeightDecl> weights() const override {
    const i64 C = in_.last();
    std::vector<WeightDecl> w;
    if (gamma_ >= 0) w.push_back({gamma_, C, gamma_penalty_.first, gamma_penalty_.second});
    if (beta_ >= 0) w.push_back({beta_, C, beta_penalty_.first, beta_penalty_.second});
    w.push_back({moving_mean_, C});
    w.push_back({moving_variance_, C});
    return w;
  }
  i64 saved_floats(i64) const override { return 2 * in_.last(); }  // the batch's mean and variance
  i64 scratch_floats(i64) const override { return Backend::kRankSums ? 4 * in_.last() : 0; }  // 2C doubles

  const float* forward(Backend& be, const LayerIO& io) override {
    const i64 C = in_.last();
    const bool batch_statistics = io.training && batch_statistics_;
    if constexpr (Backend::kRankSums) {
      if (batch_statistics && io.ranks) return forward_across_ranks(be, io);
    }
    float* mean = batch_statistics ? io.saved : io.params + moving_mean_;
    float* var = batch_statistics ? io.saved + C : io.params + moving_variance_;
    be.batch_norm_forward(io.x, weight(io.params, gamma_), weight(io.params, beta_), epsilon_, batch_statistics,
                          mean, var, io.y, rows(io.batch), C);
    if (batch_statistics) {
      be.moving_average(io.params + moving_mean_, mean, momentum_, C);
      be.moving_average(io.params + moving_variance_, var, momentum_, C);
    }
    return io.y;
  }

  const float* backward(Backend& be, const LayerIO& io) override {
    const i64 C = in_.last();
    if constexpr (Backend::kRankSums) {
      if (batch_statistics_ && io.ranks) return backward_across_ranks(be, io);
    }
    const float* mean = batch_statistics_ ? io.saved : io.params + moving_mean_;
    const float* var = batch_statistics_ ? io.saved + C : io.params + moving_variance_;
    be.batch_norm_backward(io.dy, io.x, mean, var, weight(io.params, gamma_), epsilon_, batch_statistics_, io.dx,
                           gamma_ >= 0 ? io.grads + gamma_ : nullptr, beta_ >= 0 ? io.grads + beta_ : nullptr,
                           rows(io.batch), C);
    return io.dx;
  }

 private:
  // forward and backward with the global batch's statistics (see the top of the file); host memory.
  const float* forward_across_ranks(Backend& be, const LayerIO& io) {
    const i64 C = in_.last(), n = rows(io.batch), total = rows(io.ranks->rows);
    double* sums = reinterpret_cast<double*>(io.scratch);  // C doubles in the scratch (64-byte aligned)
    float* mean = io.saved;
    float* var = io.saved + C;
    be.batch_norm_column_sums(io.x, nullptr, sums, n, C);
    io.ranks->sum(sums, C);
    for (i64 j = 0; j < C; ++j) mean[j] = (float)(sums[j] / (double)total);
    be.batch_norm_column_sums(io.x, mean, sums, n, C);
    io.ranks->sum(sums, C);
    for (i64 j = 0; j < C; ++j) var[j] = (float)(sums[j] / (double)total);
    be.batch_norm_forward(io.x, weight(io.params, gamma_), weight(io.params, beta_), epsilon_, false, mean, var,
                          io.y, n, C);
    be.moving_average(io.params + moving_mean_, mean, momentum_, C);
    be.moving_average(io.params + moving_variance_, var, momentum_, C);
    return io.y;
  }

  const float* backward_across_ranks(Backend& be, const LayerIO& io) {
    const i64 C = in_.last(), n = rows(io.batch);
    const float* mean = io.saved;
    const float* var = io.saved + C;
    double* sum_dy = reinterpret_cast<double*>(io.scratch);
    double* sum_dy_xhat = sum_dy + C;
    be.batch_norm_backward_sums(io.dy, io.x, mean, var, epsilon_, sum_dy, sum_dy_xhat, n, C);
    for (i64 j = 0; j < C; ++j) {
      if (beta_ >= 0) io.grads[beta_ + j] = (float)sum_dy[j];
      if (gamma_ >= 0) io.grads[gamma_ + j] = (float)sum_dy_xhat[j];
    }
    io.ranks->sum(sum_dy, 2 * C);  // both sums in one
    if (io.dx)
      be.batch_norm_backward_dx(io.dy, io.x, mean, var, weight(io.params, gamma_), epsilon_, sum_dy, sum_dy_xhat,
                                io.dx, n, C, rows(io.ranks->rows));
    return io.dx;
  }

  i64 rows(i64 batch) const { return batch * (in_.size() / in_.last()); }
  static const float* weight(const float* params, i64 offset) { return offset >= 0 ? params + offset : nullptr; }

  float epsilon_;
  double momentum_;
  bool batch_statistics_;  // the layer is trainable: training uses (and moves toward) the batch's statistics
  i64 gamma_, beta_, moving_mean_, moving_variance_;
  std::pair<double, double> gamma_penalty_, beta_penalty_;
};

}  // namespace model
}  // namespace gradsmith

GS_REGISTER_LAYER(BatchNormalization, "BatchNormalization")

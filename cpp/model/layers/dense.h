// Dense: y = f(x W + b) along the last axis (Keras: kernel (in, units), bias (units,)).
//
//   forward   z = x W + b; y = f(z)        (bias and f in the GEMM's epilogue; z saved when f is not linear)
//   backward  dz = dy * f'(z); db = sum_rows dz; dW = x^T dz; dx = dz W^T
//
// Inputs of rank > 2 are rows of their last axis: x is (batch * lead, in), y (batch * lead, units).
#pragma once

#include "model/layer.h"

namespace gradsmith {
namespace model {

template <class Backend>
class Dense : public Layer<Backend> {
  using Layer<Backend>::in_;
  using Layer<Backend>::out_;

 public:
  explicit Dense(const LayerConfig& c)
      : Layer<Backend>(c),
        units_(c.size("units")),
        act_(c.activation()),
        kernel_(c.weight("kernel")),
        bias_(c.weight("bias")) {
    if (in_.dims.empty()) throw std::invalid_argument(c.where() + "needs inputs with a last axis");
    if (kernel_ < 0) throw std::invalid_argument(c.where() + "has no kernel");
    in_width_ = in_.last();
    kernel_size_ = size_product(in_width_, units_, c.where() + "kernel");
    size_product(in_.size() / in_width_, units_, c.where() + "output");
    out_.dims.back() = units_;
    kernel_penalty_ = c.penalty("kernel");
    bias_penalty_ = c.penalty("bias");
  }

  std::vector<WeightDecl> weights() const override {
    std::vector<WeightDecl> w = {{kernel_, kernel_size_, kernel_penalty_.first, kernel_penalty_.second}};
    if (bias_ >= 0) w.push_back({bias_, units_, bias_penalty_.first, bias_penalty_.second});
    return w;
  }
  // The pre-activation z, kept for f'(z) unless f' can be read from y (linear, relu).
  i64 saved_floats(i64 batch) const override { return derivative_from_output(act_) ? 0 : batch * out_.size(); }
  i64 scratch_floats(i64 batch) const override { return batch * out_.size(); }  // dz

  const float* forward(Backend& be, const LayerIO& io) override {
    // z is kept only for training's backward pass; inference writes y alone.
    be.dense_forward(io.x, io.params + kernel_, bias_ >= 0 ? io.params + bias_ : nullptr, act_, io.y,
                     io.training ? io.saved : nullptr, rows(io.batch), in_width_, units_);
    return io.y;
  }

  const float* backward(Backend& be, const LayerIO& io) override {
    const float* z = io.saved ? io.saved : io.out;  // linear, relu: f' from y itself
    be.dense_backward(io.dy, io.x, io.params + kernel_, z, act_, io.scratch, io.dx, io.grads + kernel_,
                      bias_ >= 0 ? io.grads + bias_ : nullptr, rows(io.batch), in_width_, units_);
    return io.dx;
  }

 private:
  i64 rows(i64 batch) const { return batch * (in_.size() / in_width_); }

  i64 units_;
  ActParams act_;
  i64 kernel_, bias_;
  i64 in_width_ = 0, kernel_size_ = 0;
  std::pair<double, double> kernel_penalty_, bias_penalty_;
};

}  // namespace model
}  // namespace gradsmith

GS_REGISTER_LAYER(Dense, "Dense")

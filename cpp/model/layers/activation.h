// Activation: y = f(x) element by element, or along the last axis for softmax.
//
//   forward   y = f(x)
//   backward  dx = dy * f'(x)   (softmax: dx = y (dy - <dy, y>) per row of the last axis)
#pragma once

#include "model/layer.h"

namespace gradsmith {
namespace model {

template <class Backend>
class Activation : public Layer<Backend> {
  using Layer<Backend>::in_;

 public:
  explicit Activation(const LayerConfig& c)
      : Layer<Backend>(c), act_(c.activation()) {}

  const float* forward(Backend& be, const LayerIO& io) override {
    be.activation_forward(act_, io.x, io.y, rows(io.batch), in_.last());
    return io.y;
  }

  const float* backward(Backend& be, const LayerIO& io) override {
    if (io.dx) be.activation_backward(act_, io.dy, io.x, io.dx, rows(io.batch), in_.last());
    return io.dx;
  }

 private:
  i64 rows(i64 batch) const { return batch * (in_.size() / in_.last()); }
  ActParams act_;
};

}  // namespace model
}  // namespace gradsmith

GS_REGISTER_LAYER(Activation, "Activation")

// Reshape: (batch, ...) -> (batch, target_shape...), the same elements in the same (C) order, so the data does
// not move: forward passes x on and backward passes dy back. The Python layer resolves a -1 in target_shape.
#pragma once

#include "model/layer.h"

namespace gradsmith {
namespace model {

template <class Backend>
class Reshape : public Layer<Backend> {
 public:
  explicit Reshape(const LayerConfig& c) : Layer<Backend>(c) {
    const std::vector<i64>* target = c.list("target_shape");
    if (!target || target->empty()) throw std::invalid_argument(c.where() + "needs a target_shape");
    i64 n = 1;
    for (i64 d : *target) {
      if (d < 1) throw std::invalid_argument(c.where() + "target_shape sizes must be positive");
      n = size_product(n, d, c.where() + "target_shape");
    }
    if (n != c.input.size())
      throw std::invalid_argument(c.where() + "cannot reshape " + c.input.str() + " into " + Shape{*target}.str());
    this->out_.dims = *target;
  }

  i64 output_floats(i64) const override { return 0; }
  const float* forward(Backend&, const LayerIO& io) override { return io.x; }
  const float* backward(Backend&, const LayerIO& io) override { return io.dy; }
};

}  // namespace model
}  // namespace gradsmith

GS_REGISTER_LAYER(Reshape, "Reshape")

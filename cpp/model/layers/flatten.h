// Flatten: (batch, d1, d2, ...) -> (batch, d1 * d2 * ...). Rows are C-ordered (channels last, as Keras),
// so the data does not move: forward passes x on and backward passes dy back.
#pragma once

#include "model/layer.h"

namespace gradsmith {
namespace model {

template <class Backend>
class Flatten : public Layer<Backend> {
 public:
  explicit Flatten(const LayerConfig& c) : Layer<Backend>(c) { this->out_.dims = {c.input.size()}; }

  i64 output_floats(i64) const override { return 0; }
  const float* forward(Backend&, const LayerIO& io) override { return io.x; }
  const float* backward(Backend&, const LayerIO& io) override { return io.dy; }
};

}  // namespace model
}  // namespace gradsmith

GS_REGISTER_LAYER(Flatten, "Flatten")

// Pooling over windows of each channel, channels last: MaxPooling2D / AveragePooling2D (and their 1D forms,
// one row of pixels), and GlobalMaxPooling / GlobalAveragePooling (one window the size of the image).
//
//   forward   y = max or mean of each window (cpu/pool.cpp, math::pool_pixel); max keeps the input pixel of
//             each maximum for backward
//   backward  dx[i] = sum of dy over the windows holding i (max: those whose maximum is i; average: dy / the
//             window's pixels inside the image)
//
// The Python layer sends mode (0 max, 1 average), and either global = 1 (with keepdims) or pool_size and
// strides as lists of the layer's rank with padding 0 'valid' / 1 'same'.
#pragma once

#include "math/conv.h"
#include "model/layer.h"
#include "model/layers/conv.h"

namespace gradsmith {
namespace model {

template <class Backend>
class Pooling : public Layer<Backend> {
  using Layer<Backend>::in_;
  using Layer<Backend>::out_;

 public:
  explicit Pooling(const LayerConfig& c) : Layer<Backend>(c) {
    i64 h, w, ch;
    image_shape(c, &h, &w, &ch);
    const size_t rank = in_.dims.size() - 1;
    const int mode = c.choice_or("mode", 2, -1), padding = c.choice_or("padding", 2, 0);
    const bool global = c.number_or("global", 0.0) != 0.0;
    std::pair<i64, i64> pool{1, 1}, strides{1, 1};
    if (!global) {
      pool = window_pair(c, "pool_size", rank);
      strides = window_pair(c, "strides", rank);
    }
    const std::string why =
        math::pool_geometry(h, w, ch, mode, global, pool.first, pool.second,
                            strides.first, strides.second, padding, &g_);
    if (!why.empty()) throw std::invalid_argument(c.where() + why + " (input " + in_.str() + ")");
    const math::PoolGeometry& g = g_;
    if (!global)
      out_.dims = rank == 1 ? std::vector<i64>{g.out_w, g.channels} : std::vector<i64>{g.out_h, g.out_w, g.channels};
    else if (c.number_or("keepdims", 0.0) != 0.0)
      out_.dims = rank == 1 ? std::vector<i64>{1, g.channels} : std::vector<i64>{1, 1, g.channels};
    else
      out_.dims = {g.channels};
  }

  // The max's input pixel per output, for backward (training only).
  i64 saved_floats(i64 batch) const override { return g_.mode == math::kPoolMax ? batch * out_.size() : 0; }

  const float* forward(Backend& be, const LayerIO& io) override {
    be.pool_forward(g_, io.x, io.y, io.training ? io.saved : nullptr, io.batch);
    return io.y;
  }
  const float* backward(Backend& be, const LayerIO& io) override {
    if (io.dx) be.pool_backward(g_, io.dy, io.saved, io.dx, io.batch);
    return io.dx;
  }

 private:
  math::PoolGeometry g_{};
};

}  // namespace model
}  // namespace gradsmith

GS_REGISTER_LAYER(Pooling, "Pooling")

// Dropout: while training, y = kept ? x / (1 - rate) : 0 with the mask from Philox(seed; element, counter),
// so backward regenerates it rather than storing it; outside training (and at rate 0) y = x.
//
// With a noise shape (Keras's noise_shape: None entries take the input's size, the others are 1 or the
// input's size), one mask of that shape is drawn, kept in the layer's saved memory for backward, and
// broadcast over the input: (None, 1) drops whole samples.
//
// The counter is the Python layer's, so the compiled step and the layer-by-layer path draw one sequence of
// masks: it advances once per training step. Element e of row r draws the coin of row io.first_row + r, so a
// data-parallel rank's share of a batch (gradsmith.distribution) drops what one process would drop there.
#pragma once

#include <math.h>

#include "math/broadcast.h"
#include "model/layer.h"

namespace gradsmith {
namespace model {

template <class Backend>
class Dropout : public Layer<Backend> {
  using Layer<Backend>::in_;

 public:
  explicit Dropout(const LayerConfig& c)
      : Layer<Backend>(c), rate_(c.number("rate")), seed_((uint64_t)c.integer("seed")), counter_(c.counter) {
    if (!(rate_ >= 0.0 && rate_ < 1.0) || counter_ == nullptr)
      throw std::invalid_argument(c.where() + "needs a rate in [0, 1) and a call counter");
    if (const std::vector<i64>* noise = c.list("noise_shape")) {
      // noise[0] is the batch axis: -1 (None) for the batch's size, or 1; the others -1, 1 or the input's size.
      const int rank = (int)in_.dims.size();
      if ((int)noise->size() != rank + 1 || rank > math::NoiseShape::kMaxRank ||
          !((*noise)[0] == -1 || (*noise)[0] == 1))
        throw std::invalid_argument(c.where() + "noise_shape does not match the input's rank");
      mask_.rank = rank;
      mask_.batch_broadcast = (*noise)[0] == 1;
      for (int d = 0; d < rank; ++d) {
        const i64 n = (*noise)[d + 1];
        if (!(n == -1 || n == 1 || n == in_.dims[d]))
          throw std::invalid_argument(c.where() + "noise_shape does not broadcast to the input");
        mask_.dims[d] = in_.dims[d];
        mask_.broadcast[d] = n == 1 && in_.dims[d] != 1;
      }
      noise_ = true;
    }
  }

  // The pass-through (rate 0) needs no buffer; the broadcast mask is kept for backward.
  i64 output_floats(i64 batch) const override { return rate_ == 0.0 ? 0 : batch * in_.size(); }
  i64 saved_floats(i64 batch) const override { return noise_ && rate_ > 0.0 ? mask_.mask_size(batch) : 0; }

  const float* forward(Backend& be, const LayerIO& io) override {
    if (!io.training || rate_ == 0.0) return io.x;
    if (!noise_) {
      be.dropout(io.x, io.y, io.batch * in_.size(), rate_, seed_, (uint64_t)*counter_, io.first_row * in_.size());
      return io.y;
    }
    // A mask row per sample starts at the global row's; one for the whole batch (noise (1, ...)) is shared.
    const i64 first = mask_.batch_broadcast ? 0 : io.first_row * mask_.mask_size(1);
    be.dropout_mask(io.saved, mask_.mask_size(io.batch), rate_, seed_, (uint64_t)*counter_, first);
    be.dropout_broadcast(io.x, io.y, io.saved, mask_, io.batch, rate_);
    return io.y;
  }

  const float* backward(Backend& be, const LayerIO& io) override {
    if (rate_ == 0.0) return io.dy;
    if (!io.dx) return nullptr;
    if (!noise_)
      be.dropout(io.dy, io.dx, io.batch * in_.size(), rate_, seed_, (uint64_t)*counter_, io.first_row * in_.size());
    else be.dropout_broadcast(io.dy, io.dx, io.saved, mask_, io.batch, rate_);
    return io.dx;
  }

  bool has_end_step() const override { return rate_ > 0.0; }
  void end_step() override { ++*counter_; }

 private:
  double rate_;
  uint64_t seed_;
  int64_t* counter_;
  bool noise_ = false;
  math::NoiseShape mask_;
};

}  // namespace model
}  // namespace gradsmith

GS_REGISTER_LAYER(Dropout, "Dropout")

// Embedding: y = table[ids] (Keras: embeddings (input_dim, output_dim)). The input is ids of any per-sample
// shape; the output appends output_dim to it.
//
//   forward   the ids arrive as the plan's float32 rows: each is checked (a whole number in [0, input_dim),
//             exact in float32 because input_dim <= 2^24) and kept as int64 in the saved buffer; an id that
//             fails stops the step with invalid_argument before anything is gathered or written, so the model
//             is left as it was. Then y[i] = table[ids[i]] (a gather).
//   backward  dtable[v] = sum of dy[i] over ids[i] == v, in increasing i (a deterministic per-row gather, no
//             float atomics); every row is written (0 where no id names it). No dx: ids have no gradient.
#pragma once

#include <math.h>

#include "model/layer.h"

namespace gradsmith {
namespace model {

// float32 holds every whole number up to 2^24 exactly: the largest vocabulary whose ids survive the plan's
// float32 input rows.
constexpr i64 kMaxExactFloatId = i64(1) << 24;

template <class Backend>
class Embedding : public Layer<Backend> {
  using Layer<Backend>::in_;
  using Layer<Backend>::out_;

 public:
  explicit Embedding(const LayerConfig& c)
      : Layer<Backend>(c), vocab_(c.size("input_dim")), dim_(c.size("output_dim")), table_(c.weight("embeddings")),
        where_(c.where()) {
    if (table_ < 0) throw std::invalid_argument(c.where() + "has no embeddings");
    if (vocab_ > kMaxExactFloatId)
      throw std::invalid_argument(c.where() + "input_dim " + std::to_string(vocab_) +
                                  " is above 2^24: the compiled step's float32 input rows hold ids exactly only "
                                  "below 2^24");
    table_size_ = size_product(vocab_, dim_, c.where() + "embeddings");
    size_product(in_.size(), dim_, c.where() + "output");
    out_.dims.push_back(dim_);
    penalty_ = c.penalty("embeddings");
  }

  std::vector<WeightDecl> weights() const override {
    return {{table_, table_size_, penalty_.first, penalty_.second}};
  }
  // The ids as int64 (two floats each), for the gather and for backward.
  i64 saved_floats(i64 batch) const override { return 2 * batch * in_.size(); }

  const float* forward(Backend& be, const LayerIO& io) override {
    const i64 n = io.batch * in_.size();
    int64_t* ids = reinterpret_cast<int64_t*>(io.saved);
    float value = 0.f;
    const i64 bad = be.embedding_ids(io.x, ids, n, vocab_, &value);
    if (bad >= 0) throw std::invalid_argument(bad_id_message(value, bad));
    be.embedding_forward(ids, io.params + table_, io.y, n, dim_);
    return io.y;
  }

  const float* backward(Backend& be, const LayerIO& io) override {
    // dx (when a layer before needs it) is 0: ids have no gradient
    be.embedding_backward(reinterpret_cast<const int64_t*>(io.saved), io.dy, io.grads + table_, io.dx,
                          io.batch * in_.size(), vocab_, dim_);
    return io.dx;
  }

 private:
  std::string bad_id_message(float v, i64 bad) const {
    const i64 per = in_.size() > 0 ? in_.size() : 1;
    std::string value = v != v ? std::string("nan") : std::to_string((double)v);
    if (v == v && v == floorf(v) && fabsf(v) < 9.0e15f) value = std::to_string((long long)v);
    std::string msg = where_ + "input id " + value + " (sample " + std::to_string(bad / per) + ", position " +
                      std::to_string(bad % per) + ") is ";
    if (v == v && v == floorf(v) && fabsf(v) < INFINITY)
      return msg + "outside the vocabulary [0, " + std::to_string(vocab_) + ")";
    return msg + "not a whole number; ids must be whole numbers in [0, " + std::to_string(vocab_) + ")";
  }

  i64 vocab_, dim_, table_;
  std::string where_;
  i64 table_size_ = 0;
  std::pair<double, double> penalty_;
};

}  // namespace model
}  // namespace gradsmith

GS_REGISTER_LAYER(Embedding, "Embedding")

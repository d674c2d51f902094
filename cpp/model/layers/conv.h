// Conv2D and Conv1D: y = f(conv(x, W) + b), channels last (Keras: kernel (kh, kw, cin, filters), bias
// (filters,); Conv1D's kernel (k, cin, filters) is the same memory with kh = 1).
//
//   forward   z = col(x) W + b; y = f(z)    (cpu/conv.cpp: im2col tiles into the GEMM, bias and f in its epilogue)
//   backward  dz = dy f'(z); db = sum dz; dW = sum_n col(x_n)^T dz_n; dx = col2im(dz W^T)
//
// Inputs are (height, width, channels) for Conv2D and (steps, channels) for Conv1D (one row of pixels).
// The Python layer sends kernel_size, strides and dilation_rate as lists of the layer's rank, and padding as
// 0 'valid', 1 'same' or 2 'causal' (Conv1D: the input padded on the left by (k - 1) * dilation).
#pragma once

#include "math/conv.h"
#include "model/layer.h"

namespace gradsmith {
namespace model {

// The (height, width) pair of a per-axis list of the layer's rank (1: the height is 1), each in [1, 2^20].
inline std::pair<i64, i64> window_pair(const LayerConfig& c, const char* key, size_t rank) {
  const std::vector<i64>* v = c.list(key);
  if (!v || v->size() != rank) throw std::invalid_argument(c.where() + "'" + key + "' needs one value per axis");
  for (i64 e : *v)
    if (e < 1 || e > (i64)1 << 20) throw std::invalid_argument(c.where() + "'" + key + "' values must be in [1, 2^20]");
  return rank == 1 ? std::pair<i64, i64>{1, (*v)[0]} : std::pair<i64, i64>{(*v)[0], (*v)[1]};
}

// Checks a per-sample image shape of rank 1 or 2 (plus channels) and returns its (height, width, channels).
inline void image_shape(const LayerConfig& c, i64* h, i64* w, i64* ch) {
  const std::vector<i64>& d = c.input.dims;
  if (d.size() != 2 && d.size() != 3)
    throw std::invalid_argument(c.where() + "needs inputs (height, width, channels) or (steps, channels), got " +
                                c.input.str());
  *h = d.size() == 3 ? d[0] : 1;
  *w = d[d.size() - 2];
  *ch = d.back();
}

template <class Backend>
class Conv : public Layer<Backend> {
  using Layer<Backend>::in_;
  using Layer<Backend>::out_;

 public:
  explicit Conv(const LayerConfig& c)
      : Layer<Backend>(c), act_(c.activation()), kernel_(c.weight("kernel")), bias_(c.weight("bias")) {
    if (kernel_ < 0) throw std::invalid_argument(c.where() + "has no kernel");
    i64 h, w, ch;
    image_shape(c, &h, &w, &ch);
    const size_t rank = in_.dims.size() - 1;
    const auto k = window_pair(c, "kernel_size", rank), s = window_pair(c, "strides", rank),
               d = window_pair(c, "dilation_rate", rank);
    const int padding = c.choice_or("padding", 3, -1);
    const std::string why = math::conv_geometry(h, w, ch, c.size("filters"), k.first, k.second, s.first, s.second,
                                                d.first, d.second, padding, &g_);
    if (!why.empty()) throw std::invalid_argument(c.where() + why + " (input " + in_.str() + ")");
    const math::ConvGeometry& g = g_;
    kernel_size_ = g.patch() * g.out_c;
    out_.dims = rank == 1 ? std::vector<i64>{g.out_w, g.out_c} : std::vector<i64>{g.out_h, g.out_w, g.out_c};
    kernel_penalty_ = c.penalty("kernel");
    bias_penalty_ = c.penalty("bias");
  }

  std::vector<WeightDecl> weights() const override {
    std::vector<WeightDecl> w = {{kernel_, kernel_size_, kernel_penalty_.first, kernel_penalty_.second}};
    if (bias_ >= 0) w.push_back({bias_, g_.out_c, bias_penalty_.first, bias_penalty_.second});
    return w;
  }
  // The pre-activation z, kept for f'(z) unless f' can be read from y (linear, relu).
  i64 saved_floats(i64 batch) const override { return derivative_from_output(act_) ? 0 : batch * out_.size(); }
  // What forward and backward need inside one call (the backend says: dz and the partial sums of dW; the GPU's
  // im2col chunks too).
  i64 scratch_floats(i64 batch) const override { return Backend::conv_scratch(g_, batch); }

  const float* forward(Backend& be, const LayerIO& io) override {
    be.conv_forward(g_, io.x, io.params + kernel_, bias_ >= 0 ? io.params + bias_ : nullptr, act_, io.y,
                    io.training ? io.saved : nullptr, io.scratch, io.batch);
    return io.y;
  }

  const float* backward(Backend& be, const LayerIO& io) override {
    const float* z = io.saved ? io.saved : io.out;  // linear, relu: f' from y itself
    be.conv_backward(g_, io.dy, io.x, io.params + kernel_, z, act_, io.scratch, io.dx, io.grads + kernel_,
                     bias_ >= 0 ? io.grads + bias_ : nullptr, io.batch);
    return io.dx;
  }

 private:
  math::ConvGeometry g_{};
  ActParams act_;
  i64 kernel_, bias_;
  i64 kernel_size_ = 0;
  std::pair<double, double> kernel_penalty_, bias_penalty_;
};

}  // namespace model
}  // namespace gradsmith

GS_REGISTER_LAYER(Conv, "Conv")

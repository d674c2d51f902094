// SimpleRNN, GRU and LSTM (Keras 3: kernel (in, G u), recurrent_kernel (u, G u), bias (G u,) or GRU with
// reset_after (2, G u); gates in Keras's column order; tanh and sigmoid), over inputs (steps, features).
//
//   forward   the backend's rnn_forward (cpu/recurrent.cpp, cuda/recurrent.cu): the input projection of every
//             step in one GEMM, then per step the recurrent product and one gate pass (math/recurrent.h)
//   backward  rnn_backward: through time, one GEMM per step for dh, then dW, dU, dx and the biases' sums
//
// The Python layer sends cell (0 SimpleRNN, 1 GRU, 2 LSTM), units, reset_after, go_backwards and
// return_sequences. The state starts at zero; the output is h at every step (processing order) or the last h.
#pragma once

#include "math/recurrent.h"
#include "model/layer.h"

namespace gradsmith {
namespace model {

template <class Backend>
class Recurrent : public Layer<Backend> {
  using Layer<Backend>::in_;
  using Layer<Backend>::out_;

 public:
  explicit Recurrent(const LayerConfig& c)
      : Layer<Backend>(c),
        kernel_(c.weight("kernel")),
        recurrent_(c.weight("recurrent_kernel")),
        bias_(c.weight("bias")) {
    if (kernel_ < 0 || recurrent_ < 0) throw std::invalid_argument(c.where() + "needs kernel and recurrent_kernel");
    if (in_.dims.size() != 2)
      throw std::invalid_argument(c.where() + "needs inputs (steps, features), got " + in_.str());
    const int cell = c.choice_or("cell", 3, -1);
    if (cell < 0) throw std::invalid_argument(c.where() + "unknown cell");
    spec_.cell = cell;
    spec_.units = c.size("units");
    spec_.reset_after = cell == math::kCellGRU && c.number_or("reset_after", 0.0) != 0.0;
    spec_.go_backwards = c.number_or("go_backwards", 0.0) != 0.0;
    spec_.steps = in_.dims[0];
    spec_.in = in_.dims[1];
    if (spec_.steps < 1 || spec_.in < 1) throw std::invalid_argument(c.where() + "empty input " + in_.str());
    sequences_ = c.number_or("return_sequences", 0.0) != 0.0;
    gu_ = size_product(math::cell_gates(cell), spec_.units, c.where() + "units");
    out_.dims = sequences_ ? std::vector<i64>{spec_.steps, spec_.units} : std::vector<i64>{spec_.units};
    kernel_penalty_ = c.penalty("kernel");
    recurrent_penalty_ = c.penalty("recurrent_kernel");
    bias_penalty_ = c.penalty("bias");
  }

  std::vector<WeightDecl> weights() const override {
    std::vector<WeightDecl> w = {
        {kernel_, spec_.in * gu_, kernel_penalty_.first, kernel_penalty_.second},
        {recurrent_, spec_.units * gu_, recurrent_penalty_.first, recurrent_penalty_.second}};
    if (bias_ >= 0) w.push_back({bias_, (spec_.reset_after ? 2 : 1) * gu_, bias_penalty_.first, bias_penalty_.second});
    return w;
  }
  // The gates (B, T, G u), h before each step and the cell's per-step values (B, T, u) each, and h after each
  // step when the output is the last h only.
  i64 saved_floats(i64 batch) const override {
    const i64 bt = batch * spec_.steps;
    return bt * gu_ + 2 * bt * spec_.units + (sequences_ ? 0 : bt * spec_.units);
  }
  i64 scratch_floats(i64 batch) const override {
    const math::RnnSpec s = spec(batch);
    const i64 f = math::rnn_forward_scratch(s), b = math::rnn_backward_scratch(s);
    return f > b ? f : b;
  }

  const float* forward(Backend& be, const LayerIO& io) override {
    const math::RnnSpec s = spec(io.batch);
    const i64 bt = io.batch * spec_.steps;
    float* gates = io.saved;
    float* hprev = gates + bt * gu_;
    float* extra = hprev + bt * spec_.units;
    float* hseq = sequences_ ? io.y : extra + bt * spec_.units;
    be.rnn_forward(s, io.x, io.params + kernel_, io.params + recurrent_, bias_ >= 0 ? io.params + bias_ : nullptr,
                   nullptr, nullptr, hseq, extra, gates, io.training ? hprev : nullptr, io.scratch);
    if (!sequences_) be.rnn_last_step(hseq, io.y, io.batch, spec_.steps, spec_.units);
    return io.y;
  }

  const float* backward(Backend& be, const LayerIO& io) override {
    const math::RnnSpec s = spec(io.batch);
    const i64 bt = io.batch * spec_.steps;
    float* gates = io.saved;
    const float* hprev = gates + bt * gu_;
    const float* extra = hprev + bt * spec_.units;
    be.rnn_backward(s, io.x, io.params + kernel_, io.params + recurrent_, nullptr, sequences_ ? io.dy : nullptr,
                    sequences_ ? nullptr : io.dy, gates, hprev, extra, io.scratch, io.dx, io.grads + kernel_,
                    io.grads + recurrent_, bias_ >= 0 ? io.grads + bias_ : nullptr);
    return io.dx;
  }

 private:
  math::RnnSpec spec(i64 batch) const {
    math::RnnSpec s = spec_;
    s.batch = batch;
    return s;
  }

  math::RnnSpec spec_{};
  bool sequences_ = false;
  i64 kernel_, recurrent_, bias_;
  i64 gu_ = 0;
  std::pair<double, double> kernel_penalty_, recurrent_penalty_, bias_penalty_;
};

}  // namespace model
}  // namespace gradsmith

GS_REGISTER_LAYER(Recurrent, "Recurrent")

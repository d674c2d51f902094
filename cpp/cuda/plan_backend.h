// The CUDA backend of model::Plan (model/plan.h): every buffer is device memory
// and every kernel is launched on the default stream, so a step queues its
// kernels and returns without waiting for the GPU. The loss value, the penalty
// sum and the metric counts are written to device memory, summed in a fixed
// order (the same bits on every run); the learning rate is read from device
// memory.
#pragma once

#include <stddef.h>

#include <vector>

#include "math/broadcast.h"
#include "math/conv.h"
#include "math/recurrent.h"
#include "model/plan_spec.h"

namespace gradsmith {
namespace cuda {

using i64 = int64_t;

// A block of the caching allocator (cuda/runtime.h), released on destruction.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) { resize(bytes); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr, o.bytes_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  ~DeviceBuffer();
  // At least `bytes`; contents are not kept when it grows.
  void resize(size_t bytes);
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// A run of trainable weights in the fused update: `size` floats at `param`, state at `slot`, and
// `start`, its first index in the concatenation of all runs (the update's index space).
struct Segment {
  i64 param, slot, size, start;
};

class CudaBackend {
 public:
  // No sums over data-parallel ranks inside a pass (model::LayerIO::ranks): DataParallel across processes
  // trains on the CPU (docs/distribution.md: the GPU path).
  static constexpr bool kRankSums = false;

  // At least `floats` floats of arena for batches of up to `rows` rows; contents are not kept.
  float* arena(i64 floats, i64 rows);
  i64 arena_size() const { return (i64)(arena_.bytes() / sizeof(float)); }

  void prepare(const OptimizerSpec& spec, const model::PlanBuffers& b,
               const std::vector<model::TrainableRange>& trainable, const std::vector<model::PenaltyTerm>& penalties);

  void dense_forward(const float* x, const float* W, const float* b, ActParams act, float* y, float* z, i64 batch,
                     i64 in, i64 units);
  void activation_forward(ActParams act, const float* x, float* y, i64 rows, i64 cols);
  void dropout(const float* x, float* y, i64 n, double rate, uint64_t seed, uint64_t offset, i64 first);
  void dropout_mask(float* mask, i64 n, double rate, uint64_t seed, uint64_t offset, i64 first);
  void dropout_broadcast(const float* x, float* y, const float* mask, const math::NoiseShape& s, i64 batch,
                         double rate);
  void batch_norm_forward(const float* x, const float* gamma, const float* beta, float eps, bool training,
                          float* mean, float* var, float* y, i64 rows, i64 cols);
  void batch_norm_backward(const float* dy, const float* x, const float* mean, const float* var,
                           const float* gamma, float eps, bool batch_statistics, float* dx, float* dgamma,
                           float* dbeta, i64 rows, i64 cols);
  void moving_average(float* moving, const float* value, double momentum, i64 n);
  void dense_backward(const float* dy, const float* x, const float* W, const float* z, ActParams act, float* dz,
                      float* dx, float* dW, float* db, i64 batch, i64 in, i64 units);
  void activation_backward(ActParams act, const float* dy, const float* x, float* dx, i64 rows, i64 cols);
  // Convolution and pooling (cuda/conv.cu, cuda/pool.cu); scratch: conv_scratch(g, batch) floats of the arena.
  void conv_forward(const math::ConvGeometry& g, const float* x, const float* W, const float* b, ActParams act,
                    float* y, float* z, float* scratch, i64 batch);
  void conv_backward(const math::ConvGeometry& g, const float* dy, const float* x, const float* W, const float* z,
                     ActParams act, float* scratch, float* dx, float* dW, float* db, i64 batch);
  static i64 conv_scratch(const math::ConvGeometry& g, i64 batch);
  // SimpleRNN, GRU, LSTM (cuda/recurrent.cu); scratch: math::rnn_forward_scratch / rnn_backward_scratch floats.
  void rnn_forward(const math::RnnSpec& s, const float* x, const float* W, const float* U, const float* b,
                   const float* h0, const float* c0, float* hseq, float* extra, float* gates, float* hprev,
                   float* scratch);
  void rnn_backward(const math::RnnSpec& s, const float* x, const float* W, const float* U, const float* c0,
                    const float* dy_seq, const float* dy_last, float* gates, const float* hprev, const float* extra,
                    float* scratch, float* dx, float* dW, float* dU, float* db);
  void rnn_last_step(const float* hseq, float* y, i64 batch, i64 steps, i64 units);
  void pool_forward(const math::PoolGeometry& g, const float* x, float* y, float* arg, i64 batch);
  void pool_backward(const math::PoolGeometry& g, const float* dy, const float* arg, float* dx, i64 batch);
  // Embedding (cuda/embedding.cu). embedding_ids waits for the GPU: the host must know of a bad id before the
  // gather (it returns the index of the first, its value in *bad_value, or -1).
  i64 embedding_ids(const float* x, int64_t* ids, i64 n, i64 vocab, float* bad_value);
  void embedding_forward(const int64_t* ids, const float* table, float* y, i64 n, i64 dim);
  void embedding_backward(const int64_t* ids, const float* dy, float* dtable, float* dx, i64 n, i64 vocab, i64 dim);
  void loss_and_grad(const LossArgs& loss, double weight, const float* y_true, const int64_t* labels,
                     const float* y_pred, const float* sample_weight, float* grad, i64 rows, i64 cols,
                     double* value);
  void count_correct(int kind, float threshold, const float* y_true, const int64_t* labels, const float* y_pred,
                     i64 rows, i64 cols, int64_t* count);
  void penalties(const model::PlanBuffers& b, const std::vector<model::PenaltyTerm>& terms, bool add_gradients,
                 double* value);
  // The pruning mask in device memory, laid out as the parameters (null: none).
  void set_keep(const float* keep) { keep_ = keep; }
  void optimizer_step(const OptimizerSpec& spec, const double* lr, int64_t step);

 private:
  model::PlanBuffers buf_;
  DeviceBuffer arena_;
  DeviceBuffer loss_rows_;     // one double per batch row
  DeviceBuffer segments_;      // Segment table of the fused update
  DeviceBuffer clip_scale_;    // one float per segment (norm clipping)
  DeviceBuffer clip_squares_;  // one double per segment: its sum of squared gradients
  DeviceBuffer penalty_terms_; // PenaltyTerm table
  DeviceBuffer penalty_values_;
  DeviceBuffer column_sums_;
  DeviceBuffer first_bad_;     // embedding_ids's answer   // batch normalization's per-column sums in backward
  int n_segments_ = 0;
  i64 n_trainable_ = 0;
  const float* keep_ = nullptr;  // the pruning mask (set_keep), device memory
};

}  // namespace cuda
}  // namespace gradsmith

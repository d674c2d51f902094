#include "cuda/plan_backend.h"

#include <cuda_runtime.h>
#include <string.h>

#include <string>

#include "cuda/kernels.h"
#include "cuda/layer_kernels.h"
#include "cuda/launch.h"
#include "cuda/runtime.h"
#include "math/elementwise.h"
#include "math/optimizer.h"
#include "math/rows.h"

namespace gradsmith {
namespace cuda {
namespace {

constexpr int kThreads = 256;

// Block-wide sum of one value per thread, in a fixed tree: the same bits every run. All threads get it.
template <class T>
__device__ T block_sum(T v, T* part) {
  part[threadIdx.x] = v;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if ((int)threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  const T total = part[0];
  __syncthreads();
  return total;
}

// One block: correct predictions of `rows` rows (math::correct_in_row), rows t, t + 256, ... per thread.
__global__ void count_kernel(int kind, float threshold, const float* t, const int64_t* labels, const float* p,
                             i64 rows, i64 cols, int64_t* out) {
  __shared__ int64_t part[kThreads];
  int64_t n = 0;
  for (i64 r = threadIdx.x; r < rows; r += kThreads)
    n += math::correct_in_row(kind, t ? t + r * cols : nullptr, labels ? labels[r] : -1, p + r * cols, cols,
                              threshold);
  n = block_sum(n, part);
  if (threadIdx.x == 0) *out = n;
}

// One block per penalized weight: l1 * sum|w| + l2 * sum w^2 into values[b] (sums in double, fixed order),
// and with add_gradients g += l1 sign(w) + 2 l2 w.
__global__ void penalty_kernel(const model::PenaltyTerm* terms, float* params, float* grads, bool add_gradients,
                               double* values) {
  __shared__ double part[kThreads];
  const model::PenaltyTerm t = terms[blockIdx.x];
  const float* w = params + t.offset;
  float* g = grads + t.offset;
  const math::PenaltyFactors factors = math::penalty_factors(t.l1, t.l2);
  double abs_sum = 0.0, sq_sum = 0.0;
  for (i64 i = threadIdx.x; i < t.size; i += kThreads) {
    const float wi = w[i];
    abs_sum += fabs((double)wi);
    sq_sum += (double)wi * (double)wi;
    if (add_gradients) g[i] += math::penalty_grad(wi, factors);
  }
  abs_sum = block_sum(abs_sum, part);
  sq_sum = block_sum(sq_sum, part);
  if (threadIdx.x == 0) values[blockIdx.x] = math::penalty_value(t.l1, t.l2, abs_sum, sq_sum);
}

// *out = values[0] + values[1] + ... in order (0 for none).
__global__ void sum_in_order_kernel(const double* values, int n, double* out) {
  double total = 0.0;
  for (int i = 0; i < n; ++i) total += values[i];
  *out = total;
}

// One block per segment: scale[s] = c / max(||g_s||, c) (clipnorm, math::clip_norm_scale); for global_clipnorm
// the squares go to `squares` for global_scale_kernel to combine.
__global__ void segment_norm_kernel(const Segment* segs, const float* grads, bool global, float clip, float* scale,
                                    double* squares) {
  __shared__ double part[kThreads];
  const Segment s = segs[blockIdx.x];
  double sq = 0.0;
  for (i64 i = threadIdx.x; i < s.size; i += kThreads) {
    const double g = grads[s.param + i];
    sq += g * g;
  }
  sq = block_sum(sq, part);
  if (threadIdx.x != 0) return;
  squares[blockIdx.x] = sq;
  if (!global) scale[blockIdx.x] = math::clip_norm_scale(sq, clip);
}

// global_clipnorm: one factor c / max(||(g_1, g_2, ...)||, c) for every segment (math::global_clip_norm_scale).
__global__ void global_scale_kernel(const double* squares, int n, float clip, float* scale) {
  double total = 0.0;
  for (int i = 0; i < n; ++i) total += squares[i];
  const float s = math::global_clip_norm_scale(total, clip);
  for (int i = 0; i < n; ++i) scale[i] = s;
}

// The fused update: ONE launch over every trainable element of the model. Thread i finds its segment by
// binary search on the segments' starts; the block's first thread turns the learning rate and step (read
// from device memory) into the update's arguments (math::optimizer_hyperparameters, two pow calls), once
// per block, and hands them to the others through shared memory.
__global__ void fused_update_kernel(OptimizerSpec spec, const double* lr, int64_t step, const Segment* segs,
                                    int n_segs, i64 total, float* params, const float* grads, float* s0, float* s1,
                                    float* s2, const float* scale, const float* keep) {
  // Raw bytes: a __shared__ variable cannot have a constructor, and OptimizerArgs has default member values.
  __shared__ __align__(alignof(OptimizerArgs)) unsigned char block_args[sizeof(OptimizerArgs)];
  if (threadIdx.x == 0) {
    OptimizerArgs t;
    math::optimizer_hyperparameters(spec, *lr, step, &t);
    t.clip_value = spec.clip_kind == kClipValue ? spec.clip : 0.f;
    memcpy(block_args, &t, sizeof t);
  }
  __syncthreads();
  OptimizerArgs a;
  memcpy(&a, block_args, sizeof a);
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {
    int lo = 0, hi = n_segs - 1;
    while (lo < hi) {  // the last segment whose start <= i
      const int mid = (lo + hi + 1) / 2;
      if (segs[mid].start <= i) lo = mid; else hi = mid - 1;
    }
    const Segment s = segs[lo];
    const i64 k = i - s.start, p = s.param + k, q = s.slot + k;
    a.grad_scale = scale ? scale[lo] : 1.f;
    float w = params[p];
    math::optimizer_update(a.kind, a, &w, grads[p], s0 ? s0 + q : nullptr, s1 ? s1 + q : nullptr,
                           s2 ? s2 + q : nullptr, keep ? keep + p : nullptr);
    params[p] = w;
  }
}

}  // namespace

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    release(ptr_);
    ptr_ = o.ptr_, bytes_ = o.bytes_;
    o.ptr_ = nullptr, o.bytes_ = 0;
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() {
  try {
    release(ptr_);
  } catch (...) {  // a destructor must not throw; the block stays with the allocator
  }
}

void DeviceBuffer::resize(size_t bytes) {
  if (bytes <= bytes_ && ptr_) return;
  void* p = allocate(bytes);  // first, so a failure leaves the old block in place
  release(ptr_);
  ptr_ = p;
  bytes_ = bytes;
}

float* CudaBackend::arena(i64 floats, i64 rows) {
  // Kernels still queued may read the old arena: wait for them before its block is reused.
  synchronize();
  loss_rows_.resize(sizeof(double) * (size_t)rows);
  arena_.resize(sizeof(float) * (size_t)floats);
  return arena_.as<float>();
}

void CudaBackend::prepare(const OptimizerSpec& spec, const model::PlanBuffers& b,
                          const std::vector<model::TrainableRange>& trainable,
                          const std::vector<model::PenaltyTerm>& penalties) {
  buf_ = b;
  std::vector<Segment> segs;
  for (const model::TrainableRange& r : trainable) {
    if (r.size == 0) continue;
    segs.push_back({r.param, r.slot, r.size, n_trainable_});
    n_trainable_ += r.size;
  }
  n_segments_ = (int)segs.size();
  if (!segs.empty()) {
    segments_.resize(sizeof(Segment) * segs.size());
    copy_to_device(segments_.as<void>(), segs.data(), sizeof(Segment) * segs.size());
    if (spec.clip_kind == kClipNorm || spec.clip_kind == kClipGlobalNorm) {
      clip_scale_.resize(sizeof(float) * segs.size());
      clip_squares_.resize(sizeof(double) * segs.size());
    }
  }
  penalty_values_.resize(sizeof(double) * (penalties.size() + 1));
  if (!penalties.empty()) {
    penalty_terms_.resize(sizeof(model::PenaltyTerm) * penalties.size());
    copy_to_device(penalty_terms_.as<void>(), penalties.data(), sizeof(model::PenaltyTerm) * penalties.size());
  }
}

void CudaBackend::dense_forward(const float* x, const float* W, const float* b, ActParams act, float* y, float* z,
                                i64 batch, i64 in, i64 units) {
  cuda::dense_forward(x, W, b, act, y, z, batch, in, units);
}

void CudaBackend::activation_forward(ActParams act, const float* x, float* y, i64 rows, i64 cols) {
  if (act.kind == kSoftmax) softmax_forward(x, y, rows, cols);
  else cuda::activation_forward(act, x, y, rows * cols);
}

void CudaBackend::dropout(const float* x, float* y, i64 n, double rate, uint64_t seed, uint64_t offset,
                          i64 first) {
  cuda::dropout(x, y, n, rate, seed, offset, first);
}

void CudaBackend::dropout_mask(float* mask, i64 n, double rate, uint64_t seed, uint64_t offset, i64 first) {
  cuda::dropout_mask(mask, n, rate, seed, offset, first);
}

void CudaBackend::dropout_broadcast(const float* x, float* y, const float* mask, const math::NoiseShape& s,
                                    i64 batch, double rate) {
  cuda::dropout_broadcast(x, y, mask, s, batch, rate);
}

void CudaBackend::batch_norm_forward(const float* x, const float* gamma, const float* beta, float eps, bool training,
                                     float* mean, float* var, float* y, i64 rows, i64 cols) {
  cuda::batch_norm_forward(x, gamma, beta, eps, training, mean, var, y, rows, cols);
}

void CudaBackend::batch_norm_backward(const float* dy, const float* x, const float* mean, const float* var,
                                      const float* gamma, float eps, bool batch_statistics, float* dx, float* dgamma,
                                      float* dbeta, i64 rows, i64 cols) {
  column_sums_.resize(sizeof(float) * 2 * (size_t)cols);  // grows once; kernels on one stream keep their order
  cuda::batch_norm_backward(dy, x, mean, var, gamma, eps, batch_statistics, dx, dgamma, dbeta, rows, cols,
                            column_sums_.as<float>());
}

void CudaBackend::moving_average(float* moving, const float* value, double momentum, i64 n) {
  cuda::moving_average(moving, value, momentum, n);
}

void CudaBackend::dense_backward(const float* dy, const float* x, const float* W, const float* z, ActParams act,
                                 float* dz, float* dx, float* dW, float* db, i64 batch, i64 in, i64 units) {
  cuda::dense_backward(dy, x, W, z, act, dz, dx, dW, db, batch, in, units);
}

void CudaBackend::activation_backward(ActParams act, const float* dy, const float* x, float* dx, i64 rows, i64 cols) {
  if (act.kind == kSoftmax) softmax_backward(dy, x, dx, rows, cols);
  else cuda::activation_backward(act, dy, x, dx, rows * cols);
}

void CudaBackend::conv_forward(const math::ConvGeometry& g, const float* x, const float* W, const float* b,
                               ActParams act, float* y, float* z, float* scratch, i64 batch) {
  cuda::conv_forward(g, x, W, b, act, y, z, scratch, batch);
}

void CudaBackend::conv_backward(const math::ConvGeometry& g, const float* dy, const float* x, const float* W,
                                const float* z, ActParams act, float* scratch, float* dx, float* dW, float* db,
                                i64 batch) {
  cuda::conv_backward(g, dy, x, W, z, act, scratch, dx, dW, db, batch);
}

i64 CudaBackend::conv_scratch(const math::ConvGeometry& g, i64 batch) { return cuda::conv_scratch(g, batch); }

void CudaBackend::rnn_forward(const math::RnnSpec& s, const float* x, const float* W, const float* U, const float* b,
                              const float* h0, const float* c0, float* hseq, float* extra, float* gates,
                              float* hprev, float* scratch) {
  cuda::rnn_forward(s, x, W, U, b, h0, c0, hseq, extra, gates, hprev, scratch);
}

void CudaBackend::rnn_backward(const math::RnnSpec& s, const float* x, const float* W, const float* U,
                               const float* c0, const float* dy_seq, const float* dy_last, float* gates,
                               const float* hprev, const float* extra, float* scratch, float* dx, float* dW,
                               float* dU, float* db) {
  cuda::rnn_backward(s, x, W, U, c0, dy_seq, dy_last, gates, hprev, extra, scratch, dx, dW, dU, db);
}

void CudaBackend::rnn_last_step(const float* hseq, float* y, i64 batch, i64 steps, i64 units) {
  cuda::rnn_last_step(hseq, y, batch, steps, units);
}

void CudaBackend::pool_forward(const math::PoolGeometry& g, const float* x, float* y, float* arg, i64 batch) {
  cuda::pool_forward(g, x, y, arg, batch);
}

void CudaBackend::pool_backward(const math::PoolGeometry& g, const float* dy, const float* arg, float* dx,
                                i64 batch) {
  cuda::pool_backward(g, dy, arg, dx, batch);
}

i64 CudaBackend::embedding_ids(const float* x, int64_t* ids, i64 n, i64 vocab, float* bad_value) {
  if (n <= 0) return -1;
  first_bad_.resize(sizeof(int64_t));
  cuda::embedding_ids(x, ids, n, vocab, first_bad_.as<int64_t>());
  int64_t bad = -1;
  copy_to_host(&bad, first_bad_.as<void>(), sizeof bad);
  if (bad >= 0 && bad_value) copy_to_host(bad_value, x + bad, sizeof(float));
  return bad;
}

void CudaBackend::embedding_forward(const int64_t* ids, const float* table, float* y, i64 n, i64 dim) {
  cuda::embedding_forward(ids, table, y, n, dim);
}

void CudaBackend::embedding_backward(const int64_t* ids, const float* dy, float* dtable, float* dx, i64 n, i64 vocab,
                                     i64 dim) {
  cuda::embedding_backward(ids, dy, dtable, dx, n, vocab, dim);
}

void CudaBackend::loss_and_grad(const LossArgs& loss, double weight, const float* y_true, const int64_t* labels,
                                const float* y_pred, const float* sample_weight, float* grad, i64 rows, i64 cols,
                                double* value) {
  loss_and_grad_into(loss, weight, y_true, labels, y_pred, sample_weight, grad, rows, cols, loss_rows_.as<double>(),
                     value);
}

void CudaBackend::count_correct(int kind, float threshold, const float* y_true, const int64_t* labels,
                                const float* y_pred, i64 rows, i64 cols, int64_t* count) {
  GS_LAUNCH(count_kernel, 1, kThreads, 0, 0)(kind, threshold, y_true, labels, y_pred, rows, cols, count);
  check_launch("metric count kernel");
}

void CudaBackend::penalties(const model::PlanBuffers& b, const std::vector<model::PenaltyTerm>& terms,
                            bool add_gradients, double* value) {
  double* values = penalty_values_.as<double>();
  if (!terms.empty()) {
    GS_LAUNCH(penalty_kernel, (unsigned)terms.size(), kThreads, 0, 0)(
        penalty_terms_.as<model::PenaltyTerm>(), b.params, b.grads, add_gradients, values);
    check_launch("penalty kernel");
  }
  GS_LAUNCH(sum_in_order_kernel, 1, 1, 0, 0)(values, (int)terms.size(), value);
  check_launch("penalty sum kernel");
}

void CudaBackend::optimizer_step(const OptimizerSpec& spec, const double* lr, int64_t step) {
  if (n_trainable_ == 0) return;
  const Segment* segs = segments_.as<Segment>();
  float* scale = nullptr;
  if (spec.clip_kind == kClipNorm || spec.clip_kind == kClipGlobalNorm) {
    scale = clip_scale_.as<float>();
    double* squares = clip_squares_.as<double>();
    const bool global = spec.clip_kind == kClipGlobalNorm;
    GS_LAUNCH(segment_norm_kernel, (unsigned)n_segments_, kThreads, 0, 0)(
        segs, buf_.grads, global, spec.clip, scale, squares);
    check_launch("clip norm kernel");
    if (global) {
      GS_LAUNCH(global_scale_kernel, 1, 1, 0, 0)(squares, n_segments_, spec.clip, scale);
      check_launch("global clip kernel");
    }
  }
  i64 blocks = (n_trainable_ + kThreads - 1) / kThreads;
  if (blocks > 65535 * 16) blocks = 65535 * 16;  // a grid-stride loop covers the rest
  GS_LAUNCH(fused_update_kernel, (unsigned)blocks, kThreads, 0, 0)(
      spec, lr, step, segs, n_segments_, n_trainable_, buf_.params, buf_.grads, buf_.slots[0], buf_.slots[1],
      buf_.slots[2], scale, keep_);
  check_launch("fused optimizer kernel");
}

}  // namespace cuda
}  // namespace gradsmith

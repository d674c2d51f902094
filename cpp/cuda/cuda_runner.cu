#include "cuda/cuda_runner.h"

#include <cuda_runtime.h>
#include <string.h>

#include <string>

#include "cuda/launch.h"
#include "cuda/runtime.h"

// Every layer kind of model/layers/, registered for the CUDA backend.
#define GS_LAYER_BACKEND ::gradsmith::cuda::CudaBackend
#include "model/all_layers.h"

namespace gradsmith {
namespace cuda {
namespace {

void check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  cudaGetLastError();
  throw Error(std::string(what) + ": " + cudaGetErrorString(err));
}

cudaStream_t stream_of(void* s) { return static_cast<cudaStream_t>(s); }

// dst[r, :] = src[order[r], :] for r < n: one thread per element.
template <class T>
__global__ void gather_rows_kernel(const T* src, const int64_t* order, i64 n, i64 cols, T* dst) {
  const i64 total = n * cols;
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {
    const i64 r = i / cols, c = i - r * cols;
    dst[i] = src[order[r] * cols + c];
  }
}

template <class T>
void gather_rows(const T* src, const int64_t* order, i64 n, i64 cols, T* dst) {
  const i64 total = n * cols;
  if (total <= 0) return;
  i64 blocks = (total + 255) / 256;
  if (blocks > 65535 * 16) blocks = 65535 * 16;
  GS_LAUNCH(gather_rows_kernel<T>, (unsigned)blocks, 256, 0, 0)(src, order, n, cols, dst);
  check(cudaGetLastError(), "gather kernel");
}

// Pinned host memory (page-locked, so copies from it run asynchronously at full speed).
struct PinnedBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  PinnedBuffer() = default;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  void resize(size_t n) {
    if (n <= bytes && ptr) return;
    void* p = nullptr;
    check(cudaHostAlloc(&p, n, cudaHostAllocDefault), "cudaHostAlloc (pinned staging buffer)");
    if (ptr) cudaFreeHost(ptr);
    ptr = p;
    bytes = n;
  }
  ~PinnedBuffer() {
    if (ptr) cudaFreeHost(ptr);
  }
  template <class T>
  T* as() const { return static_cast<T*>(ptr); }
};

}  // namespace

// One batch's staging: the host writes its rows into pinned memory, the copy stream moves them to the
// device buffers, `copied` marks that copy done and `consumed` the step that read the device buffers.
struct CudaRunner::Slot {
  PinnedBuffer hx, hy, hw;
  DeviceBuffer dx, dy, dw;
  cudaEvent_t copied = nullptr, consumed = nullptr;
  Slot() {
    check(cudaEventCreateWithFlags(&copied, cudaEventDisableTiming), "cudaEventCreate");
    const cudaError_t err = cudaEventCreateWithFlags(&consumed, cudaEventDisableTiming);
    if (err != cudaSuccess) {
      cudaEventDestroy(copied);
      check(err, "cudaEventCreate");
    }
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  ~Slot() {
    cudaEventDestroy(copied);
    cudaEventDestroy(consumed);
  }
};

CudaRunner::CudaRunner(const std::vector<model::LayerConfig>& layers, LossArgs loss, double loss_weight,
                       OptimizerSpec optimizer, i64 n_params, const bool has_slot[3], i64 n_slot,
                                   const std::vector<model::TrainableRange>& trainable,
                                   std::vector<model::MetricCount> metrics)
    : sparse_(loss.kind == kSparseCategoricalXent) {
  if (!available()) throw Error("CUDA is not available: " + unavailable_reason());
  model::PlanBuffers b;
  params_.resize(sizeof(float) * (size_t)(n_params > 0 ? n_params : 1));
  grads_.resize(sizeof(float) * (size_t)(n_params > 0 ? n_params : 1));
  // Gradients start at zero: a frozen weight's gradient is never written, and the update never reads it.
  check(cudaMemset(grads_.as<void>(), 0, grads_.bytes()), "cudaMemset");
  b.params = params_.as<float>();
  b.grads = grads_.as<float>();
  b.n_params = n_params;
  b.n_slot = n_slot;
  for (int s = 0; s < 3; ++s) {
    if (!has_slot[s]) continue;
    slots_[s].resize(sizeof(float) * (size_t)(n_slot > 0 ? n_slot : 1));
    b.slots[s] = slots_[s].as<float>();
  }
  plan_ = std::make_unique<model::Plan<CudaBackend>>(layers, loss, loss_weight, optimizer, b, trainable,
                                                     std::move(metrics));
  slot_[0] = std::make_unique<Slot>();
  slot_[1] = std::make_unique<Slot>();
  cudaStream_t s = nullptr;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  copy_stream_ = s;
}

CudaRunner::~CudaRunner() {
  cudaDeviceSynchronize();  // nothing queued may still use the buffers released below
  if (copy_stream_) cudaStreamDestroy(stream_of(copy_stream_));
}

void CudaRunner::upload(const float* params, const float* const slots[3]) {
  check(cudaDeviceSynchronize(), "synchronize before upload");
  copy_to_device(params_.as<void>(), params, params_.bytes());
  for (int s = 0; s < 3; ++s)
    if (slots[s] && slots_[s].bytes()) copy_to_device(slots_[s].as<void>(), slots[s], slots_[s].bytes());
}

void CudaRunner::set_keep(const float* keep) {
  check(cudaDeviceSynchronize(), "synchronize before setting the pruning mask");
  if (keep == nullptr) {
    plan_->set_keep(nullptr);
    return;
  }
  keep_.resize(params_.bytes());
  copy_to_device(keep_.as<void>(), keep, params_.bytes());
  plan_->set_keep(keep_.as<float>());
}

void CudaRunner::download(float* params, float* const slots[3]) {
  check(cudaDeviceSynchronize(), "synchronize before download");
  copy_to_host(params, params_.as<void>(), params_.bytes());
  for (int s = 0; s < 3; ++s)
    if (slots[s] && slots_[s].bytes()) copy_to_host(slots[s], slots_[s].as<void>(), slots_[s].bytes());
}

void CudaRunner::ensure_batch(i64 batch) {
  if (batch <= batch_capacity_) return;
  check(cudaDeviceSynchronize(), "synchronize before growing the staging buffers");
  const i64 in = in_features(), out = out_features();
  for (auto& slot : slot_) {
    slot->hx.resize(sizeof(float) * (size_t)(batch * in));
    slot->dx.resize(sizeof(float) * (size_t)(batch * in));
    const i64 lw = label_width();
    const size_t ybytes = sparse_ ? sizeof(int64_t) * (size_t)(batch * lw) : sizeof(float) * (size_t)(batch * out);
    slot->hy.resize(ybytes);
    slot->dy.resize(ybytes);
    slot->hw.resize(sizeof(float) * (size_t)(batch * lw));
    slot->dw.resize(sizeof(float) * (size_t)(batch * lw));
  }
  batch_capacity_ = batch;
}

void CudaRunner::ensure_results(i64 steps) {
  if (steps <= result_capacity_) return;
  check(cudaDeviceSynchronize(), "synchronize before growing the result buffers");
  lrs_.resize(sizeof(double) * (size_t)steps);
  records_.resize(2 * sizeof(double) * (size_t)steps);
  counts_.resize(sizeof(int64_t) * (size_t)(steps * (i64)(num_metrics() ? num_metrics() : 1)));
  result_capacity_ = steps;
}

// Rows [first_row, first_row + rows) of the host data into the slot's device buffers, asynchronously.
void CudaRunner::stage(Slot& slot, const HostRows& data, i64 first_row, i64 rows) {
  const i64 in = in_features(), out = out_features();
  cudaStream_t cs = stream_of(copy_stream_);
  // The pinned buffers are free once this slot's last copy is done; the device buffers once the step
  // that read them is (the copy stream waits for that on the GPU, not here).
  check(cudaEventSynchronize(slot.copied), "waiting for a staging copy");
  check(cudaStreamWaitEvent(cs, slot.consumed, 0), "cudaStreamWaitEvent");
  const size_t xb = sizeof(float) * (size_t)(rows * in);
  memcpy(slot.hx.ptr, data.x + first_row * in, xb);
  check(cudaMemcpyAsync(slot.dx.as<void>(), slot.hx.ptr, xb, cudaMemcpyHostToDevice, cs), "staging copy of x");
  const i64 lw = label_width();
  const size_t yb = sparse_ ? sizeof(int64_t) * (size_t)(rows * lw) : sizeof(float) * (size_t)(rows * out);
  const void* ysrc = sparse_ ? (const void*)(data.labels + first_row * lw) : (const void*)(data.y + first_row * out);
  memcpy(slot.hy.ptr, ysrc, yb);
  check(cudaMemcpyAsync(slot.dy.as<void>(), slot.hy.ptr, yb, cudaMemcpyHostToDevice, cs), "staging copy of y");
  if (data.weights) {
    const size_t wb = sizeof(float) * (size_t)(rows * lw);
    memcpy(slot.hw.ptr, data.weights + first_row * lw, wb);
    check(cudaMemcpyAsync(slot.dw.as<void>(), slot.hw.ptr, wb, cudaMemcpyHostToDevice, cs), "staging copy of weights");
  }
  check(cudaEventRecord(slot.copied, cs), "cudaEventRecord");
}

// One copy of the run's records and counts back to the host (this waits for the run to finish).
void CudaRunner::fetch_results(i64 steps, i64 batch, i64 rows, double* values, int64_t* counts) {
  std::vector<double> rec((size_t)(2 * steps));
  copy_to_host(rec.data(), records_.as<void>(), sizeof(double) * rec.size());
  for (i64 s = 0; s < steps; ++s) values[s] = rec[2 * s] + rec[2 * s + 1];
  const size_t m = num_metrics();
  if (m) copy_to_host(counts, counts_.as<void>(), sizeof(int64_t) * (size_t)steps * m);
  last_rows_ = rows - (steps - 1) * batch;
}

void CudaRunner::train_steps(const HostRows& data, i64 rows, i64 batch, const double* lr, int64_t first_step,
                                   double* values, int64_t* counts) {
  if (rows <= 0) return;
  const i64 steps = (rows + batch - 1) / batch;
  ensure_batch(batch < rows ? batch : rows);
  ensure_results(steps);
  copy_to_device(lrs_.as<void>(), lr, sizeof(double) * (size_t)steps);
  const size_t m = num_metrics();
  auto rows_of = [&](i64 s) { return s * batch + batch < rows ? batch : rows - s * batch; };
  stage(*slot_[0], data, 0, rows_of(0));
  for (i64 s = 0; s < steps; ++s) {
    Slot& slot = *slot_[s & 1];
    if (s + 1 < steps) stage(*slot_[(s + 1) & 1], data, (s + 1) * batch, rows_of(s + 1));  // overlaps step s
    check(cudaStreamWaitEvent(0, slot.copied, 0), "cudaStreamWaitEvent");
    plan_->train_step(slot.dx.as<float>(), sparse_ ? nullptr : slot.dy.as<float>(),
                      sparse_ ? slot.dy.as<int64_t>() : nullptr, data.weights ? slot.dw.as<float>() : nullptr,
                      rows_of(s), lrs_.as<double>() + s, first_step + s, records_.as<double>() + 2 * s,
                      counts_.as<int64_t>() + s * (i64)m);
    check(cudaEventRecord(slot.consumed, 0), "cudaEventRecord");
  }
  fetch_results(steps, batch, rows, values, counts);
}

void CudaRunner::set_dataset(const HostRows& data, i64 rows) {
  dataset_rows_ = 0;
  const i64 in = in_features(), out = out_features(), lw = label_width();
  try {
    data_x_.resize(sizeof(float) * (size_t)(rows * in));
    copy_to_device(data_x_.as<void>(), data.x, sizeof(float) * (size_t)(rows * in));
    if (sparse_) {
      data_y_.resize(sizeof(int64_t) * (size_t)(rows * lw));
      copy_to_device(data_y_.as<void>(), data.labels, sizeof(int64_t) * (size_t)(rows * lw));
    } else {
      data_y_.resize(sizeof(float) * (size_t)(rows * out));
      copy_to_device(data_y_.as<void>(), data.y, sizeof(float) * (size_t)(rows * out));
    }
    dataset_weighted_ = data.weights != nullptr;
    if (dataset_weighted_) {
      data_w_.resize(sizeof(float) * (size_t)(rows * lw));
      copy_to_device(data_w_.as<void>(), data.weights, sizeof(float) * (size_t)(rows * lw));
    }
  } catch (...) {  // too large (or a copy failed): hold nothing, the caller stages batches instead
    data_x_ = DeviceBuffer();
    data_y_ = DeviceBuffer();
    data_w_ = DeviceBuffer();
    throw;
  }
  dataset_rows_ = rows;
}

void CudaRunner::train_steps_resident(const int64_t* order, i64 n, i64 batch, const double* lr,
                                            int64_t first_step, double* values, int64_t* counts) {
  if (n <= 0) return;
  if (dataset_rows_ <= 0) throw Error("no dataset on the device (set_dataset first)");
  const i64 steps = (n + batch - 1) / batch, in = in_features(), out = out_features();
  ensure_batch(batch < n ? batch : n);
  ensure_results(steps);
  check(cudaDeviceSynchronize(), "synchronize before a resident run");
  order_.resize(sizeof(int64_t) * (size_t)n);
  copy_to_device(order_.as<void>(), order, sizeof(int64_t) * (size_t)n);
  copy_to_device(lrs_.as<void>(), lr, sizeof(double) * (size_t)steps);
  const size_t m = num_metrics();
  Slot& slot = *slot_[0];  // gathers and steps share the compute stream: one slot is enough
  for (i64 s = 0; s < steps; ++s) {
    const i64 r0 = s * batch, rows = r0 + batch < n ? batch : n - r0;
    const int64_t* idx = order_.as<int64_t>() + r0;
    gather_rows(data_x_.as<float>(), idx, rows, in, slot.dx.as<float>());
    if (sparse_) gather_rows(data_y_.as<int64_t>(), idx, rows, label_width(), slot.dy.as<int64_t>());
    else gather_rows(data_y_.as<float>(), idx, rows, out, slot.dy.as<float>());
    if (dataset_weighted_) gather_rows(data_w_.as<float>(), idx, rows, label_width(), slot.dw.as<float>());
    plan_->train_step(slot.dx.as<float>(), sparse_ ? nullptr : slot.dy.as<float>(),
                      sparse_ ? slot.dy.as<int64_t>() : nullptr, dataset_weighted_ ? slot.dw.as<float>() : nullptr,
                      rows, lrs_.as<double>() + s, first_step + s, records_.as<double>() + 2 * s,
                      counts_.as<int64_t>() + s * (i64)m);
  }
  check(cudaEventRecord(slot.consumed, 0), "cudaEventRecord");  // a later staged copy into slot 0 waits for this
  fetch_results(steps, batch, n, values, counts);
}

double CudaRunner::test_step(const HostRows& data, i64 rows, int64_t* counts) {
  ensure_batch(rows);
  ensure_results(1);
  check(cudaDeviceSynchronize(), "synchronize before evaluate");
  Slot& slot = *slot_[0];
  const i64 in = in_features(), out = out_features();
  copy_to_device(slot.dx.as<void>(), data.x, sizeof(float) * (size_t)(rows * in));
  const i64 lw = label_width();
  if (sparse_) copy_to_device(slot.dy.as<void>(), data.labels, sizeof(int64_t) * (size_t)(rows * lw));
  else copy_to_device(slot.dy.as<void>(), data.y, sizeof(float) * (size_t)(rows * out));
  if (data.weights) copy_to_device(slot.dw.as<void>(), data.weights, sizeof(float) * (size_t)(rows * lw));
  plan_->test_step(slot.dx.as<float>(), sparse_ ? nullptr : slot.dy.as<float>(),
                   sparse_ ? slot.dy.as<int64_t>() : nullptr, data.weights ? slot.dw.as<float>() : nullptr, rows,
                   records_.as<double>(), counts_.as<int64_t>());
  check(cudaEventRecord(slot.consumed, 0), "cudaEventRecord");
  double value = 0.0;
  fetch_results(1, rows, rows, &value, counts);
  return value;
}

void CudaRunner::predict(const float* x, i64 rows, float* out) {
  ensure_batch(rows);
  check(cudaDeviceSynchronize(), "synchronize before predict");
  Slot& slot = *slot_[0];
  copy_to_device(slot.dx.as<void>(), x, sizeof(float) * (size_t)(rows * in_features()));
  plan_->predict(slot.dx.as<float>(), rows);
  check(cudaEventRecord(slot.consumed, 0), "cudaEventRecord");
  last_rows_ = rows;
  output(out);
}

void CudaRunner::output(float* out) const {
  if (last_rows_ == 0 || plan_->output() == nullptr) return;
  copy_to_host(out, plan_->output(), sizeof(float) * (size_t)(last_rows_ * out_features()));
}

}  // namespace cuda
}  // namespace gradsmith

// Kernels with planted bugs, built only in the emulated build (GRADSMITH_CUDA=EMULATE), for
// tests/cuda/test_emulator.py: each shows that one of the emulator's checks catches its kind of bug.
#include <cuda_runtime.h>

#include <string.h>

#include <string>

#include "cuda/launch.h"
#include "cuda/runtime.h"
#include "emulator_tests.h"

namespace gradsmith {
namespace cuda {
namespace {

// A block-wide tree sum of x[0 .. 255] into out[0]; without the barrier inside the loop, threads read partial
// sums that others have not written yet (a race the shuffled thread order makes vary from seed to seed).
__global__ void tree_sum_kernel(const float* x, float* out, bool barrier) {
  __shared__ float part[256];
  const int t = threadIdx.x;
  part[t] = x[t];
  __syncthreads();
  for (int half = 128; half > 0; half /= 2) {
    if (t < half) part[t] += part[t + half];
    if (barrier) __syncthreads();
  }
  if (t == 0) out[0] = part[0];
}

// An off-by-one bound (i <= n): the thread of i = n writes one float past the end.
__global__ void write_past_end_kernel(float* y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i <= n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = 1.f;
}

// Half the block returns before a barrier the other half waits at.
__global__ void early_return_kernel(float* y) {
  if (threadIdx.x >= 128) return;
  __syncthreads();
  y[threadIdx.x] = 1.f;
}

// Odd threads read shared memory only even threads wrote: NaN.
__global__ void unwritten_shared_kernel(float* y) {
  __shared__ float s[256];
  if (threadIdx.x % 2 == 0) s[threadIdx.x] = 1.f;
  __syncthreads();
  y[threadIdx.x] = s[threadIdx.x];
}

__global__ void copy_kernel(const float* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = x[i];
}

// A float4 load from x + 1: 4 bytes past a 16-byte boundary.
__global__ void misaligned_load_kernel(const float* x, float* y) {
  const float4 v = __ldg(reinterpret_cast<const float4*>(x + 1));
  y[threadIdx.x] = v.x;
}

void check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  cudaGetLastError();
  throw Error(std::string(what) + ": " + cudaGetErrorString(err));
}

// x staged through pinned memory on a non-blocking copy stream, then read by a kernel on the default stream
// that waits for the copy's event, or (missing_wait) does not.
std::vector<float> staged_copy(const std::vector<float>& x, bool missing_wait) {
  const size_t n = x.size(), bytes = sizeof(float) * (n ? n : 1);
  cudaStream_t cs = nullptr;
  cudaEvent_t copied = nullptr;
  void* pinned = nullptr;
  float* staged = static_cast<float*>(allocate(bytes));
  float* out = static_cast<float*>(allocate(bytes));
  std::vector<float> y(n);
  check(cudaStreamCreateWithFlags(&cs, cudaStreamNonBlocking), "cudaStreamCreate");
  check(cudaEventCreateWithFlags(&copied, cudaEventDisableTiming), "cudaEventCreate");
  check(cudaHostAlloc(&pinned, bytes, cudaHostAllocDefault), "cudaHostAlloc");
  memcpy(pinned, x.data(), sizeof(float) * n);
  check(cudaMemcpyAsync(staged, pinned, sizeof(float) * n, cudaMemcpyHostToDevice, cs), "cudaMemcpyAsync");
  check(cudaEventRecord(copied, cs), "cudaEventRecord");
  if (!missing_wait) check(cudaStreamWaitEvent(0, copied, 0), "cudaStreamWaitEvent");
  GS_LAUNCH(copy_kernel, 1, 64, 0, 0)(staged, out, (int64_t)n);
  check_launch("copy_kernel");
  copy_to_host(y.data(), out, sizeof(float) * n);
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  cudaFreeHost(pinned);
  cudaEventDestroy(copied);
  cudaStreamDestroy(cs);
  release(staged);
  release(out);
  return y;
}

}  // namespace

std::vector<float> run_emulator_test_kernel(const std::string& name, const std::vector<float>& x) {
  if (name == "staged_copy" || name == "staged_copy_missing_wait") return staged_copy(x, name != "staged_copy");
  const size_t n = x.size(), bytes = sizeof(float) * (n ? n : 1);
  float* dx = static_cast<float*>(allocate(bytes));
  float* dy = static_cast<float*>(allocate(bytes));
  std::vector<float> y(n);
  try {
    copy_to_device(dx, x.data(), sizeof(float) * n);
    copy_to_device(dy, x.data(), sizeof(float) * n);
    if (name == "tree_sum" || name == "tree_sum_no_barrier") {
      if (n != 256) throw Error("tree_sum: 256 values");
      GS_LAUNCH(tree_sum_kernel, 1, 256, 0, 0)(dx, dy, name == "tree_sum");
    } else if (name == "write_past_end") {
      GS_LAUNCH(write_past_end_kernel, 2, 64, 0, 0)(dy, (int64_t)n);
    } else if (name == "early_return") {
      if (n != 256) throw Error("early_return: 256 values");
      GS_LAUNCH(early_return_kernel, 1, 256, 0, 0)(dy);
    } else if (name == "misaligned_load") {
      GS_LAUNCH(misaligned_load_kernel, 1, 32, 0, 0)(dx, dy);
    } else if (name == "host_pointer") {  // the host vector where the device copy belongs
      GS_LAUNCH(copy_kernel, 1, 64, 0, 0)(x.data(), dy, (int64_t)n);
    } else if (name == "unwritten_shared") {
      if (n != 256) throw Error("unwritten_shared: 256 values");
      GS_LAUNCH(unwritten_shared_kernel, 1, 256, 0, 0)(dy);
    } else {
      throw Error("no test kernel " + name);
    }
    check_launch(name.c_str());
    copy_to_host(y.data(), dy, sizeof(float) * n);
  } catch (...) {
    release(dx);
    release(dy);
    throw;
  }
  release(dx);
  release(dy);
  return y;
}

}  // namespace cuda
}  // namespace gradsmith

// Embedding on the GPU: the CPU's kernels (cpu/embedding.cpp) as gathers, so the results are the CPU's bits.
//
//   ids       one block converts the float ids to int64 and finds the first one that is not a whole number in
//             [0, vocab) (a fixed min tree: the same index every run), for the host to check before the gather
//   forward   one thread per output element: y[i, c] = table[ids[i], c]
//   backward  one block per table row v: its threads (one per column) walk the ids in increasing order, 256
//             at a time through shared memory, and add dy[i, c] where ids[i] == v. Each row's sum runs in the
//             CPU's order, no two blocks write one row and there are no float atomics; a chunk of ids with no
//             match for the row is skipped after one look.
#include "cuda/launch.h"
#include "cuda/layer_kernels.h"

namespace gradsmith {
namespace cuda {
namespace {

constexpr int kIdThreads = 256;

__global__ void embedding_ids_kernel(const float* x, int64_t* ids, i64 n, i64 vocab, int64_t* first_bad) {
  __shared__ int64_t part[kIdThreads];
  int64_t bad = n;
  for (i64 i = threadIdx.x; i < n; i += kIdThreads) {
    const float v = x[i];
    if (!(v >= 0.f && v < (float)vocab) || v != (float)(int64_t)v) {
      if (i < bad) bad = i;
    } else {
      ids[i] = (int64_t)v;
    }
  }
  part[threadIdx.x] = bad;
  __syncthreads();
  for (int half = kIdThreads / 2; half > 0; half /= 2) {
    if ((int)threadIdx.x < half && part[threadIdx.x + half] < part[threadIdx.x])
      part[threadIdx.x] = part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) *first_bad = part[0] < n ? part[0] : -1;
}

__global__ void embedding_gather_kernel(const int64_t* ids, const float* table, float* y, i64 n, i64 dim) {
  const i64 total = n * dim;
  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < total; e += (i64)gridDim.x * blockDim.x) {
    const i64 i = e / dim, c = e - i * dim;
    y[e] = table[ids[i] * dim + c];
  }
}

__global__ void embedding_row_grad_kernel(const int64_t* ids, const float* dy, float* dtable, i64 n, i64 vocab,
                                          i64 dim) {
  __shared__ unsigned char match[kIdThreads];
  __shared__ int any;
  for (i64 v = blockIdx.x; v < vocab; v += gridDim.x) {
    for (i64 c0 = 0; c0 < dim; c0 += kIdThreads) {
      const i64 c = c0 + threadIdx.x;
      float acc = 0.f;
      for (i64 p0 = 0; p0 < n; p0 += kIdThreads) {
        if (threadIdx.x == 0) any = 0;
        __syncthreads();
        const i64 p = p0 + threadIdx.x;
        const bool hit = p < n && ids[p] == v;
        match[threadIdx.x] = hit ? 1 : 0;
        if (hit) any = 1;  // every writer writes 1
        __syncthreads();
        if (any && c < dim) {
          const i64 k1 = n - p0 < kIdThreads ? n - p0 : kIdThreads;
          for (i64 k = 0; k < k1; ++k)
            if (match[k]) acc += dy[(p0 + k) * dim + c];
        }
        __syncthreads();
      }
      if (c < dim) dtable[v * dim + c] = acc;
    }
  }
}

__global__ void zero_kernel(float* x, i64 n) {
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) x[i] = 0.f;
}

}  // namespace

void embedding_ids(const float* x, int64_t* ids, i64 n, i64 vocab, int64_t* first_bad) {
  GS_LAUNCH(embedding_ids_kernel, 1, kIdThreads, 0, 0)(x, ids, n, vocab, first_bad);
  check_launch("embedding ids kernel");
}

void embedding_forward(const int64_t* ids, const float* table, float* y, i64 n, i64 dim) {
  const i64 total = n * dim;
  if (total <= 0) return;
  GS_LAUNCH(embedding_gather_kernel, launch_blocks(total), kLaunchThreads, 0, 0)(ids, table, y, n, dim);
  check_launch("embedding gather kernel");
}

void embedding_backward(const int64_t* ids, const float* dy, float* dtable, float* dx, i64 n, i64 vocab, i64 dim) {
  if (dx && n > 0) {
    GS_LAUNCH(zero_kernel, launch_blocks(n), kLaunchThreads, 0, 0)(dx, n);
    check_launch("embedding dx kernel");
  }
  if (vocab <= 0 || dim <= 0) return;
  const unsigned blocks = vocab < 65535 * 16 ? (unsigned)vocab : 65535u * 16u;
  GS_LAUNCH(embedding_row_grad_kernel, blocks, kIdThreads, 0, 0)(ids, dy, dtable, n, vocab, dim);
  check_launch("embedding row gradient kernel");
}

}  // namespace cuda
}  // namespace gradsmith

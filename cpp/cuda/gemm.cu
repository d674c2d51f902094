// Float32 GEMM on the GPU: C = alpha op(A) op(B) + beta C, row-major, with the
// dense layer's epilogue (bias, stored pre-activation, activation).
//
// A block of 256 threads computes a 128 x 128 tile of C, stepping over K by 8:
// each step stages op(A)[128 x 8] and op(B)[8 x 128] in shared memory (A
// transposed, so both are read along rows; each thread loads one float4 of
// each, along whichever axis is contiguous in memory), then every thread accumulates an
// 8 x 8 register block, reading 8 + 8 values per 64 multiply-adds. Every
// element of C is summed over K in order, by one thread: results are the same
// on every run.
//
// With set_matmul_precision('tf32' | 'bf16') on a device with tensor cores
// the products go to gemm_tensor.cu instead.
#include <cuda_runtime.h>

#include <atomic>
#include <string>

#include "cuda/gemm_internal.h"
#include "cuda/kernels.h"
#include "cuda/launch.h"
#include "cuda/runtime.h"
#include "math/elementwise.h"

namespace gradsmith {
namespace cuda {
namespace {

using namespace ::gradsmith::math;
constexpr int BM = 128, BN = 128, BK = 8, TM = 8, TN = 8, kThreads = 256;

std::atomic<int> g_precision{kPrecisionHighest};

// Four consecutive floats p[at .. at + 3], of which the first `valid` lie inside the matrix (the rest read
// as 0): one 16-byte load when all four do and the address is aligned.
__device__ __forceinline__ float4 load4(const float* __restrict__ p, i64 at, i64 valid, bool aligned) {
  if (valid >= 4 && aligned) return __ldg(reinterpret_cast<const float4*>(p + at));
  float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
  if (valid > 0) v.x = p[at];
  if (valid > 1) v.y = p[at + 1];
  if (valid > 2) v.z = p[at + 2];
  if (valid > 3) v.w = p[at + 3];
  return v;
}

__global__ void __launch_bounds__(kThreads)
    sgemm_kernel(bool ta, bool tb, i64 M, i64 N, i64 K, float alpha, const float* __restrict__ A, i64 lda,
                 const float* __restrict__ B, i64 ldb, float beta, float* __restrict__ C, i64 ldc,
                 EpilogueArgs ep) {
  __shared__ float As[BK][BM];
  __shared__ float Bs[BK][BN];
  const i64 row0 = (i64)blockIdx.x * BM, col0 = ((i64)blockIdx.z * gridDim.y + blockIdx.y) * BN;  // gemm_grid
  if (col0 >= N) return;  // past the last column tile: the whole block, before any barrier
  const int tid = threadIdx.x;
  const int ty = tid / (BN / TN), tx = tid % (BN / TN);  // 16 x 16 threads, each TM x TN outputs
  float acc[TM][TN] = {};
  // float4 loads need 16-byte aligned rows: a leading dimension that is a multiple of 4 and an aligned base.
  const bool a_vec = lda % 4 == 0 && (uintptr_t)A % 16 == 0, b_vec = ldb % 4 == 0 && (uintptr_t)B % 16 == 0;
  for (i64 k0 = 0; k0 < K; k0 += BK) {
    // Stage 128 x 8 of op(A) and 8 x 128 of op(B): 1024 values each, one run of 4 consecutive addresses
    // per thread (a float4 load when aligned and inside the matrix), zeros past the edges.
    {
      const int i = ta ? (tid % 32) * 4 : tid / 2, k = ta ? tid / 32 : (tid % 2) * 4;
      const i64 gi = row0 + i, gk = k0 + k;
      const float4 v = ta ? load4(A, gk * lda + gi, gk < K ? M - gi : 0, a_vec)
                          : load4(A, gi * lda + gk, gi < M ? K - gk : 0, a_vec);
      if (ta) As[k][i] = v.x, As[k][i + 1] = v.y, As[k][i + 2] = v.z, As[k][i + 3] = v.w;
      else As[k][i] = v.x, As[k + 1][i] = v.y, As[k + 2][i] = v.z, As[k + 3][i] = v.w;
    }
    {
      const int k = tb ? (tid % 2) * 4 : tid / 32, j = tb ? tid / 2 : (tid % 32) * 4;
      const i64 gk = k0 + k, gj = col0 + j;
      const float4 v = tb ? load4(B, gj * ldb + gk, gj < N ? K - gk : 0, b_vec)
                          : load4(B, gk * ldb + gj, gk < K ? N - gj : 0, b_vec);
      if (tb) Bs[k][j] = v.x, Bs[k + 1][j] = v.y, Bs[k + 2][j] = v.z, Bs[k + 3][j] = v.w;
      else Bs[k][j] = v.x, Bs[k][j + 1] = v.y, Bs[k][j + 2] = v.z, Bs[k][j + 3] = v.w;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      float a[TM], b[TN];
#pragma unroll
      for (int m = 0; m < TM; ++m) a[m] = As[k][ty * TM + m];
#pragma unroll
      for (int n = 0; n < TN; ++n) b[n] = Bs[k][tx * TN + n];
#pragma unroll
      for (int m = 0; m < TM; ++m)
#pragma unroll
        for (int n = 0; n < TN; ++n) acc[m][n] = fmaf(a[m], b[n], acc[m][n]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int m = 0; m < TM; ++m) {
    const i64 i = row0 + ty * TM + m;
    if (i >= M) break;
#pragma unroll
    for (int n = 0; n < TN; ++n) {
      const i64 j = col0 + tx * TN + n;
      if (j >= N) break;
      float* c = C + i * ldc + j;
      float v = alpha * acc[m][n];
      if (beta != 0.f) v += beta * *c;
      if (ep.bias) v += ep.bias[j];
      if (ep.preact) ep.preact[i * N + j] = v;
      *c = act_forward(ep.act.kind, ep.act.param, v);
    }
  }
}

void launch(bool ta, bool tb, i64 M, i64 N, i64 K, float alpha, const float* A, i64 lda, const float* B, i64 ldb,
            float beta, float* C, i64 ldc, EpilogueArgs ep) {
  if (M <= 0 || N <= 0) return;
  const int precision = g_precision.load(std::memory_order_relaxed);
  if (precision != kPrecisionHighest && tensor_cores_supported()) {
    launch_tensor_gemm(precision, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
    return;
  }
  const dim3 grid = gemm_grid(M, N, BM, BN);
  GS_LAUNCH(sgemm_kernel, grid, kThreads, 0, 0)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw Error(std::string("gemm kernel: ") + cudaGetErrorString(err));
}

}  // namespace

void set_matmul_precision(int precision) {
  if (precision < kPrecisionHighest || precision >= kNumMatmulPrecisions) throw Error("unknown matmul precision");
  g_precision.store(precision, std::memory_order_relaxed);
}
int matmul_precision() { return g_precision.load(std::memory_order_relaxed); }
bool matmul_uses_tensor_cores() { return matmul_precision() != kPrecisionHighest && tensor_cores_supported(); }

void gemm(bool ta, bool tb, i64 M, i64 N, i64 K, float alpha, const float* A, i64 lda, const float* B, i64 ldb,
          float beta, float* C, i64 ldc) {
  launch(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, {nullptr, nullptr, {kLinear, 0.f}});
}

void dense_forward(const float* x, const float* W, const float* b, ActParams act, float* y, float* z, i64 batch,
                   i64 in, i64 units) {
  // Softmax needs whole rows, which the tile epilogue does not see: a row pass after it (as on the CPU).
  const bool softmax = act.kind == kSoftmax;
  launch(false, false, batch, units, in, 1.f, x, in, W, units, 0.f, y, units,
         {b, z, softmax ? ActParams{kLinear, 0.f} : act});
  if (softmax) softmax_forward(y, y, batch, units);
}

}  // namespace cuda
}  // namespace gradsmith

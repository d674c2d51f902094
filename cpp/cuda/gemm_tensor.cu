// Tensor-core GEMM (sm_80 and newer): C = alpha op(A) op(B) + beta C with the
// dense epilogue, its inputs rounded to TF32 or BF16 and its products summed
// in float32 (gradsmith.config.set_matmul_precision('tf32' | 'bf16')).
//
// A block of 256 threads (8 warps, 2 x 4) computes a 128 x 128 tile of C,
// stepping over K by 32: it stages op(A)[128 x 32] and op(B)[32 x 128] in
// shared memory, already rounded (TF32 kept in float, BF16 as bfloat16), and
// each warp multiplies its 64 x 32 part as 4 x 2 wmma fragments of 16 x 16.
// The epilogue goes fragment by fragment through a 16 x 16 scratch of the
// warp. Each element of C is summed over K in a fixed order by one warp: the
// same bits on every run.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <string>

#include "cuda/gemm_internal.h"
#include "cuda/launch.h"
#include "cuda/runtime.h"
#include "math/elementwise.h"

namespace gradsmith {
namespace cuda {
namespace {

using namespace ::gradsmith::math;
constexpr int BM = 128, BN = 128, kThreads = 256;

struct Tf32 {};
struct Bf16 {};

#if (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800) || defined(GRADSMITH_CUDA_EMULATOR)
template <class P> struct Wmma;
template <> struct Wmma<Tf32> {
  using Stored = float;
  using Input = nvcuda::wmma::precision::tf32;
  static constexpr int K = 8;
  static __device__ Stored round(float v) { return nvcuda::wmma::__float_to_tf32(v); }
};
template <> struct Wmma<Bf16> {
  using Stored = __nv_bfloat16;
  using Input = __nv_bfloat16;
  static constexpr int K = 16;
  static __device__ Stored round(float v) { return __float2bfloat16_rn(v); }
};
#endif

template <class P>
__global__ void __launch_bounds__(kThreads, 2)  // two blocks per SM: at most 128 registers a thread
    tensor_gemm_kernel(bool ta, bool tb, i64 M, i64 N, i64 K, float alpha, const float* __restrict__ A, i64 lda,
                       const float* __restrict__ B, i64 ldb, float beta, float* __restrict__ C, i64 ldc,
                       EpilogueArgs ep) {
#if (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800) || defined(GRADSMITH_CUDA_EMULATOR)
  using namespace nvcuda;
  using W = Wmma<P>;
  using S = typename W::Stored;
  constexpr int BK = 32, KK = W::K;
  constexpr int PA = BK + 8, PB = BN + 8;  // padded row lengths of the staged tiles (fewer bank conflicts)
  __shared__ __align__(128) S As[BM * PA];  // op(A) tile, row-major (m, k)
  __shared__ __align__(128) S Bs[BK * PB];  // op(B) tile, row-major (k, n)
  __shared__ __align__(128) float Cs[kThreads / 32][16 * 16];
  const i64 row0 = (i64)blockIdx.x * BM, col0 = ((i64)blockIdx.z * gridDim.y + blockIdx.y) * BN;  // gemm_grid
  if (col0 >= N) return;  // past the last column tile: the whole block, before any barrier
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int wm = warp / 4, wn = warp % 4;  // the warp's 64 x 32 part: rows wm * 64, columns wn * 32

  wmma::fragment<wmma::accumulator, 16, 16, KK, float> acc[4][2];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.f);

  for (i64 k0 = 0; k0 < K; k0 += BK) {
    // Stage the tiles; consecutive threads read consecutive addresses of whichever layout A and B have.
    for (int l = tid; l < BM * BK; l += kThreads) {
      const int i = ta ? l % BM : l / BK, k = ta ? l / BM : l % BK;
      const i64 gi = row0 + i, gk = k0 + k;
      const float v = (gi < M && gk < K) ? (ta ? A[gk * lda + gi] : A[gi * lda + gk]) : 0.f;
      As[i * PA + k] = W::round(v);
    }
    for (int l = tid; l < BK * BN; l += kThreads) {
      const int k = tb ? l % BK : l / BN, j = tb ? l / BK : l % BN;
      const i64 gk = k0 + k, gj = col0 + j;
      const float v = (gk < K && gj < N) ? (tb ? B[gj * ldb + gk] : B[gk * ldb + gj]) : 0.f;
      Bs[k * PB + j] = W::round(v);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; kk += KK) {
      wmma::fragment<wmma::matrix_a, 16, 16, KK, typename W::Input, wmma::row_major> a[4];
      wmma::fragment<wmma::matrix_b, 16, 16, KK, typename W::Input, wmma::row_major> b[2];
#pragma unroll
      for (int i = 0; i < 4; ++i) wmma::load_matrix_sync(a[i], As + (wm * 64 + i * 16) * PA + kk, PA);
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(b[j], Bs + kk * PB + wn * 32 + j * 16, PB);
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }

  // Epilogue: each fragment through the warp's scratch, then alpha, beta, bias, pre-activation, activation.
  float* scratch = Cs[warp];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      wmma::store_matrix_sync(scratch, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      for (int e = lane; e < 256; e += 32) {
        const i64 gi = row0 + wm * 64 + i * 16 + e / 16, gj = col0 + wn * 32 + j * 16 + e % 16;
        if (gi >= M || gj >= N) continue;
        float* c = C + gi * ldc + gj;
        float v = alpha * scratch[e];
        if (beta != 0.f) v += beta * *c;
        if (ep.bias) v += ep.bias[gj];
        if (ep.preact) ep.preact[gi * N + gj] = v;
        *c = act_forward(ep.act.kind, ep.act.param, v);
      }
      __syncwarp();
    }
  }
#endif
}

}  // namespace

bool tensor_cores_supported() {
  static const bool ok = [] {
    int device = 0, major = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return major >= 8;
  }();
  return ok;
}

void launch_tensor_gemm(int precision, bool ta, bool tb, i64 M, i64 N, i64 K, float alpha, const float* A, i64 lda,
                        const float* B, i64 ldb, float beta, float* C, i64 ldc, EpilogueArgs ep) {
  const dim3 grid = gemm_grid(M, N, BM, BN);
  if (precision == kPrecisionBf16)
    GS_LAUNCH(tensor_gemm_kernel<Bf16>, grid, kThreads, 0, 0)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
  else
    GS_LAUNCH(tensor_gemm_kernel<Tf32>, grid, kThreads, 0, 0)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw Error(std::string("tensor-core gemm kernel: ") + cudaGetErrorString(err));
}

}  // namespace cuda
}  // namespace gradsmith

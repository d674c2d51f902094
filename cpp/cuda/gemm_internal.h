// What the GEMM kernels share (gemm.cu: float32 SIMT; gemm_tensor.cu: tensor cores).
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#include "core/matmul_precision.h"
#include "math/elementwise.h"

namespace gradsmith {
namespace cuda {

using i64 = int64_t;

// After the products: z = alpha acc + beta C + bias; z stored to preact (leading dimension N) when
// asked; C = act(z).
struct EpilogueArgs {
  const float* bias;  // (N,) or null
  float* preact;      // (M, N) or null
  ActParams act;
};


// The grid of a GEMM over C (M, N) in tiles of bm x bn: row tiles on x (up to 2^31 - 1 of them), column
// tiles on y and z, because y alone counts at most 65535 (N up to 8,388,480 with 128 columns a tile). A
// block's column tile is blockIdx.z * gridDim.y + blockIdx.y; the blocks past the last one (the rest of the
// last z-slice) return at once, the whole block together.
inline dim3 gemm_grid(i64 M, i64 N, int bm, int bn) {
  const i64 col_tiles = (N + bn - 1) / bn, y = col_tiles < 65535 ? col_tiles : 65535;
  return dim3((unsigned)((M + bm - 1) / bm), (unsigned)y, (unsigned)((col_tiles + y - 1) / y));
}

// Whether the current device has TF32 / BF16 tensor cores (compute capability 8.0 or newer).
bool tensor_cores_supported();
void launch_tensor_gemm(int precision, bool ta, bool tb, i64 M, i64 N, i64 K, float alpha, const float* A, i64 lda,
                        const float* B, i64 ldb, float beta, float* C, i64 ldc, EpilogueArgs ep);

}  // namespace cuda
}  // namespace gradsmith

// What the GEMM kernels share (gemm.cu: float32 SIMT; gemm_tensor.cu: tensor cores).
#pragma once

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


// Whether the current device has TF32 / BF16 tensor cores (compute capability 8.0 or newer).
bool tensor_cores_supported();
void launch_tensor_gemm(int precision, bool ta, bool tb, i64 M, i64 N, i64 K, float alpha, const float* A, i64 lda,
                        const float* B, i64 ldb, float beta, float* C, i64 ldc, EpilogueArgs ep);

}  // namespace cuda
}  // namespace gradsmith

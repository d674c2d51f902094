// Matmul precision on the GPU (gradsmith.config.set_matmul_precision): plain
// float32, or tensor cores with TF32 / BF16 inputs and float32 accumulation
// (cuda/gemm_tensor.cu). Here rather than in cuda/ so that a CPU-only build
// exports the same names (_core.kinds.matmul_precisions).
#pragma once

// One line each: X(enumerator, name).
#define GS_MATMUL_PRECISIONS(X)      \
  X(kPrecisionHighest, "highest")    \
  X(kPrecisionTf32, "tf32")          \
  X(kPrecisionBf16, "bf16")

namespace gradsmith {

#define GS_KIND_ENUMERATOR(id, name) id,
enum MatmulPrecision : int { GS_MATMUL_PRECISIONS(GS_KIND_ENUMERATOR) kNumMatmulPrecisions };
#undef GS_KIND_ENUMERATOR

}  // namespace gradsmith

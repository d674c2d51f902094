// Batch normalization's per-element formulas, shared by the CPU loops (cpu/batchnorm.cpp) and the CUDA
// kernels (cuda/batchnorm.cu), in float32 with every product rounded on its own (never fused into an FMA,
// which the host baseline does not have and nvcc would otherwise make), so both sides give the same bits.
//
//   s = gamma / sqrt(var + eps),  shift = beta - mean s,  y = x s + shift   (Keras's ops.batch_normalization)
//   xhat = (x - mean) / sqrt(var + eps)
//   dx = s (dy - (sum dy + xhat sum dy xhat) / N)        through the batch's statistics
//   moving = moving * momentum + value * (1 - momentum)   (the moving statistics)
#pragma once

#include "math/elementwise.h"

namespace gradsmith {
namespace math {
namespace {

// a * b + c with the product rounded first.
GS_HD float mul_add_rounded(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(__fmul_rn(a, b), c);
#else
  return a * b + c;  // the baseline x86-64 build has no FMA to contract into
#endif
}

GS_HD float bn_rstd(float var, float eps) { return 1.f / sqrtf(var + eps); }

// s_j and shift_j from the statistics; gamma and beta may be null (1 and 0).
GS_HD void bn_scale_shift(float mean, float var, const float* gamma, const float* beta, float eps, int64_t j,
                          float* s, float* shift) {
  float inv = bn_rstd(var, eps);
  if (gamma) inv *= gamma[j];
  *s = inv;
  *shift = mul_add_rounded(-mean, inv, beta ? beta[j] : 0.f);
}

// dx of one element through the batch's statistics (sums in float, as rounded from their double sums).
GS_HD float bn_dx(float dy, float x, float mean, float rstd, float s, float sum_dy, float sum_dy_xhat,
                  float inv_n) {
  const float xhat = (x - mean) * rstd;
  const float correction = mul_add_rounded(xhat, sum_dy_xhat, sum_dy) * inv_n;
  return s * (dy - correction);
}

GS_HD float moving_average(float moving, float value, float momentum, float one_minus_momentum) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(__fmul_rn(moving, momentum), __fmul_rn(value, one_minus_momentum));
#else
  // volatile: each product is rounded to float, never contracted into an FMA, whatever the host compiler
  const volatile float a = moving * momentum, b = value * one_minus_momentum;
  return a + b;
#endif
}

}  // namespace
}  // namespace math
}  // namespace gradsmith

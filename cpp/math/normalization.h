// The moving statistics of BatchNormalization (Keras 3): moving = moving * momentum + value * (1 - momentum),
// in float32 with each product rounded (never fused into an FMA), as Keras and NumPy compute it. Shared by
// the CPU loop and the CUDA kernel.
#pragma once

#include "math/elementwise.h"

namespace gradsmith {
namespace math {

GS_HD float moving_average(float moving, float value, float momentum, float one_minus_momentum) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(__fmul_rn(moving, momentum), __fmul_rn(value, one_minus_momentum));
#else
  // volatile: each product is rounded to float, never contracted into an FMA, whatever the host compiler
  const volatile float a = moving * momentum, b = value * one_minus_momentum;
  return a + b;
#endif
}

}  // namespace math
}  // namespace gradsmith

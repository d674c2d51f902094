// The gradsmith CUDA emulator's <cuda_bf16.h>: bfloat16 storage and the conversions the kernels use.
#pragma once

#include <stdint.h>
#include <string.h>

struct __nv_bfloat16 {
  uint16_t __x;
};

// Round to nearest, ties to even; NaN stays a (quiet) NaN.
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  __nv_bfloat16 h;
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    h.__x = (uint16_t)((u >> 16) | 0x40u);
  } else {
    u += 0x7fffu + ((u >> 16) & 1u);
    h.__x = (uint16_t)(u >> 16);
  }
  return h;
}

inline float __bfloat162float(__nv_bfloat16 h) {
  const uint32_t u = (uint32_t)h.__x << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

// The int8 Dense on the GPU: the twin of cpu::qdense_forward (cpu/qgemm.cpp), Keras's int8 numbers with
// __dp4a (four int8 products summed into an int32, sm_61 and later). A reference twin, not tuned: it gives
// the CPU's int32 sums exactly, so the same outputs (the activations are math/elementwise.h's on both sides).
//
//   quantize  one block per row of x (M, K): max|x| over the bit patterns with the sign cleared (a fixed
//             tree; a NaN stays the largest, as on the CPU), scale = 127 / (max + 1e-7),
//             q = clip(rint(x * scale), -127, 127); four bytes to an int32 word (byte t = column 4g + t),
//             groups past K zero:                                           a_words (M, kg), x_scale (M,)
//   product   16 x 16 outputs a block, one a thread; groups of 4 columns through shared memory in tiles of
//             16: acc = sum_g dp4a(a_words[i, g], w_words[g, j]), exact (|acc| <= 127 * 127 * K)
//   epilogue  y[i, j] = act(float(acc) / (kernel_scale[j] * x_scale[i]) + bias[j]) in the same thread;
//             softmax, which needs whole rows, runs after as a row pass (cuda::softmax_forward)
#include "cuda/kernels.h"
#include "cuda/launch.h"
#include "math/elementwise.h"

namespace gradsmith {
namespace cuda {
namespace {

constexpr int kQuantizeThreads = 256;
constexpr int kTile = 16;

__device__ __forceinline__ int dp4a_s8(int a, int b, int c) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 610
  return __dp4a(a, b, c);
#else
  for (int t = 0; t < 4; ++t) c += (int)(signed char)(a >> (8 * t)) * (int)(signed char)(b >> (8 * t));
  return c;
#endif
}

__global__ void quantize_rows_kernel(const float* x, int32_t* a_words, float* x_scale, i64 M, i64 K, i64 kg) {
  __shared__ unsigned part[kQuantizeThreads];
  for (i64 i = blockIdx.x; i < M; i += gridDim.x) {
    const float* row = x + i * K;
    unsigned m = 0;
    for (i64 k = threadIdx.x; k < K; k += kQuantizeThreads) {
      const unsigned bits = __float_as_uint(row[k]) & 0x7fffffffu;
      m = bits > m ? bits : m;
    }
    part[threadIdx.x] = m;
    __syncthreads();
    for (int half = kQuantizeThreads / 2; half > 0; half /= 2) {
      if ((int)threadIdx.x < half && part[threadIdx.x + half] > part[threadIdx.x])
        part[threadIdx.x] = part[threadIdx.x + half];
      __syncthreads();
    }
    const float s = 127.f / (__uint_as_float(part[0]) + 1e-7f);
    if (threadIdx.x == 0) x_scale[i] = s;
    for (i64 g = threadIdx.x; g < kg; g += kQuantizeThreads) {
      unsigned word = 0;
      for (int t = 0; t < 4; ++t) {
        const i64 k = 4 * g + t;
        int v = 0;
        if (k < K) {
          v = (int)rintf(row[k] * s);  // round half to even, as np.round
          v = v < -127 ? -127 : v;
          v = v > 127 ? 127 : v;
        }
        word |= (unsigned)(v & 0xff) << (8 * t);
      }
      a_words[i * kg + g] = (int32_t)word;
    }
    __syncthreads();  // part[] is read above before the next row writes it
  }
}

__global__ void qdense_kernel(const int32_t* a_words, const int32_t* w_words, const float* w_scale,
                              const float* x_scale, const float* bias, ActParams act, float* y, i64 M, i64 N,
                              i64 kg) {
  __shared__ int32_t as[kTile][kTile];
  __shared__ int32_t ws[kTile][kTile];
  const i64 i = blockIdx.y * (i64)kTile + threadIdx.y, j = blockIdx.x * (i64)kTile + threadIdx.x;
  int acc = 0;
  for (i64 g0 = 0; g0 < kg; g0 += kTile) {
    const i64 ga = g0 + threadIdx.x, gw = g0 + threadIdx.y;
    as[threadIdx.y][threadIdx.x] = i < M && ga < kg ? a_words[i * kg + ga] : 0;
    ws[threadIdx.y][threadIdx.x] = j < N && gw < kg ? w_words[gw * N + j] : 0;
    __syncthreads();
#pragma unroll
    for (int g = 0; g < kTile; ++g) acc = dp4a_s8(as[threadIdx.y][g], ws[g][threadIdx.x], acc);
    __syncthreads();
  }
  if (i < M && j < N) {
    float v = (float)acc / (w_scale[j] * x_scale[i]);
    if (bias != nullptr) v += bias[j];
    if (act.kind != kLinear && act.kind != kSoftmax) v = math::act_forward(act.kind, act.param, v);
    y[i * N + j] = v;
  }
}

}  // namespace

void qdense_forward(const float* x, const int32_t* w_words, const float* w_scale, const float* bias, ActParams act,
                    float* y, i64 M, i64 K, i64 N, int32_t* a_words, float* x_scale) {
  if (M <= 0 || N <= 0) return;
  const i64 kg = (K + 3) / 4;
  const unsigned rows = M < 65535 * 16 ? (unsigned)M : 65535u * 16u;
  GS_LAUNCH(quantize_rows_kernel, rows, kQuantizeThreads, 0, 0)(x, a_words, x_scale, M, K, kg);
  check_launch("int8 row quantization kernel");
  const dim3 grid((unsigned)((N + kTile - 1) / kTile), (unsigned)((M + kTile - 1) / kTile));
  GS_LAUNCH(qdense_kernel, grid, dim3(kTile, kTile), 0, 0)(a_words, w_words, w_scale, x_scale, bias, act, y, M, N, kg);
  check_launch("int8 dense kernel");
  if (act.kind == kSoftmax) softmax_forward(y, y, M, N);
}

}  // namespace cuda
}  // namespace gradsmith

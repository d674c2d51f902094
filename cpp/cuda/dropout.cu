// Dropout with a noise shape on the GPU: the CPU's mask (math::dropout_kept, the same coins dropout draws)
// and broadcast (math::NoiseShape::mask_index), one thread per element.
#include <math.h>

#include "cuda/launch.h"
#include "cuda/layer_kernels.h"

namespace gradsmith {
namespace cuda {
namespace {

__global__ void mask_kernel(float* mask, i64 n, uint32_t threshold, uint64_t seed, uint64_t offset, i64 first) {
  for (i64 j = blockIdx.x * (i64)blockDim.x + threadIdx.x; j < n; j += (i64)gridDim.x * blockDim.x)
    mask[j] = math::dropout_kept(seed, offset, first + j, threshold) ? 1.f : 0.f;
}

__global__ void broadcast_kernel(const float* x, float* y, const float* mask, math::NoiseShape s, i64 n,
                                 float keep) {
  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < n; e += (i64)gridDim.x * blockDim.x)
    y[e] = mask[s.mask_index(e)] != 0.f ? x[e] / keep : 0.f;
}

}  // namespace

void dropout_mask(float* mask, i64 n, double rate, uint64_t seed, uint64_t offset, i64 first) {
  const uint32_t threshold = (uint32_t)ceil(rate * 16777216.0);  // as cpu::dropout: u >= rate, exactly
  GS_LAUNCH(mask_kernel, launch_blocks(n), kLaunchThreads, 0, 0)(mask, n, threshold, seed, offset, first);
  check_launch("dropout mask kernel");
}

void dropout_broadcast(const float* x, float* y, const float* mask, const math::NoiseShape& s, i64 batch,
                       double rate) {
  i64 n = batch;
  for (int d = 0; d < s.rank; ++d) n *= s.dims[d];
  GS_LAUNCH(broadcast_kernel, launch_blocks(n), kLaunchThreads, 0, 0)(x, y, mask, s, n, (float)(1.0 - rate));
  check_launch("dropout broadcast kernel");
}

}  // namespace cuda
}  // namespace gradsmith

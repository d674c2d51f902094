// Pooling on the GPU, NHWC, per channel: the CPU's formulas (math::pool_value, math::pool_input_grad, compiled
// for both), one thread per element, so the results are the CPU's bits.
//
//   forward   one thread per output: the window's max (and the input pixel of its first occurrence, as a
//             float, for backward) or mean
//   backward  one thread per input element: the sum of dy over the windows that hold it, in window order (a
//             gather: no two threads write one element, no atomics)
#include "cuda/launch.h"
#include "cuda/layer_kernels.h"

namespace gradsmith {
namespace cuda {
namespace {

using math::PoolGeometry;

// Output element i of the batch (n, oy, ox, c).
__global__ void pool_forward_kernel(PoolGeometry g, const float* x, float* y, float* arg, i64 total) {
  const i64 out = g.out_size(), in = g.in_size();
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {
    const i64 n = i / out, r = i - n * out, pixel = r / g.channels, c = r - pixel * g.channels;
    const i64 oy = pixel / g.out_w, ox = pixel - oy * g.out_w;
    int64_t at = 0;
    y[i] = math::pool_value(g, x + n * in, oy, ox, c, &at);
    if (arg) arg[i] = (float)at;
  }
}

// Input element i of the batch (n, iy, ix, c).
__global__ void pool_backward_kernel(PoolGeometry g, const float* dy, const float* arg, float* dx, i64 total) {
  const i64 out = g.out_size(), in = g.in_size();
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {
    const i64 n = i / in, r = i - n * in, pixel = r / g.channels, c = r - pixel * g.channels;
    const i64 iy = pixel / g.in_w, ix = pixel - iy * g.in_w;
    dx[i] = math::pool_input_grad(g, dy + n * out, arg ? arg + n * out : nullptr, iy, ix, c);
  }
}

}  // namespace

void pool_forward(const math::PoolGeometry& g, const float* x, float* y, float* arg, i64 batch) {
  const i64 total = batch * g.out_size();
  if (total <= 0) return;
  GS_LAUNCH(pool_forward_kernel, launch_blocks(total), kLaunchThreads, 0, 0)(g, x, y, arg, total);
  check_launch("pool forward kernel");
}

void pool_backward(const math::PoolGeometry& g, const float* dy, const float* arg, float* dx, i64 batch) {
  const i64 total = batch * g.in_size();
  if (total <= 0) return;
  GS_LAUNCH(pool_backward_kernel, launch_blocks(total), kLaunchThreads, 0, 0)(g, dy, arg, dx, total);
  check_launch("pool backward kernel");
}

}  // namespace cuda
}  // namespace gradsmith

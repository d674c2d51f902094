// Pooling, NHWC, per channel: max and average over windows (MaxPooling2D, AveragePooling2D) and over whole
// images (the global poolings). The per-element formulas are math::pool_pixel and math::pool_pixel_grad,
// which the CUDA kernels call too.
//
//   forward   y = max or mean of each window; for max, arg = the input pixel of the first maximum (a NaN in
//             the window is the result), kept for backward as a float (exact: pixels < 2^24, checked by the
//             layer)
//   backward  dx gathered per input element from every window holding it, in window order: no two tasks
//             write one element, so the bits do not depend on the split
#include "cpu/ops.h"
#include "cpu/profiler.h"
#include "cpu/thread_pool.h"

namespace gradsmith {
namespace cpu {

void pool_forward(const math::PoolGeometry& g, const float* x, float* y, float* arg, i64 batch) {
  const i64 window = g.pool_h * g.pool_w, in = g.in_size(), out = g.out_size();
  // About one compare or add per window element; x read, y (and arg) written.
  GS_PROFILE_SCOPE("pool_forward", 1.0 * batch * out * window, 4.0 * batch * (in + (arg ? 2 : 1) * out), batch,
                   g.out_h * g.out_w, g.channels);
  parallel_for(batch * g.out_h, [&](int64_t task, int) {
    const i64 n = task / g.out_h, oy = task % g.out_h;
    for (i64 ox = 0; ox < g.out_w; ++ox) {
      const i64 o = n * out + (oy * g.out_w + ox) * g.channels;
      math::pool_pixel(g, x + n * in, oy, ox, g.channels, y + o, arg ? arg + o : nullptr);
    }
  }, threads_for_elements(batch * out * window));
}

void pool_backward(const math::PoolGeometry& g, const float* dy, const float* arg, float* dx, i64 batch) {
  const i64 in = g.in_size(), out = g.out_size();
  const double windows_per_input =
      (double)((g.pool_h + g.stride_h - 1) / g.stride_h) * ((g.pool_w + g.stride_w - 1) / g.stride_w);
  GS_PROFILE_SCOPE("pool_backward", windows_per_input * batch * in,
                   4.0 * batch * (in + (g.mode == math::kPoolMax ? 2 : 1) * out), batch, g.in_h * g.in_w,
                   g.channels);
  parallel_for(batch * g.in_h, [&](int64_t task, int) {
    const i64 n = task / g.in_h, iy = task % g.in_h;
    const float* dyn = dy + n * out;
    const float* argn = arg ? arg + n * out : nullptr;
    float* row = dx + n * in + iy * g.in_w * g.channels;
    for (i64 ix = 0; ix < g.in_w; ++ix) math::pool_pixel_grad(g, dyn, argn, iy, ix, g.channels, row + ix * g.channels);
  }, threads_for_elements(batch * in));
}

}  // namespace cpu
}  // namespace gradsmith

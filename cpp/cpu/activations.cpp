#include "cpu/dispatch.h"
#include "cpu/ops.h"
#include "cpu/profiler.h"
#include "cpu/thread_pool.h"

namespace gradsmith {
namespace cpu {
namespace {
constexpr i64 kChunk = 1 << 14;  // elements per task
i64 rows_per_task(i64 cols) { return cols > 0 && cols < kChunk ? kChunk / cols : 1; }
}  // namespace

void activation_forward(ActParams act, const float* z, float* y, i64 rows, i64 cols) {
  // FLOPs: f per element (prof::act_flops); bytes: z read, y written.
  GS_PROFILE_SCOPE("activation_forward", prof::act_flops(act, false) * rows * cols, 8.0 * rows * cols, rows, cols, -1);
  const KernelTable& kt = kernels();
  if (act.kind == kSoftmax) {
    const i64 step = rows_per_task(cols), tasks = (rows + step - 1) / step;
    parallel_for(tasks, [&](int64_t t, int) {
      i64 r0 = t * step, r1 = r0 + step < rows ? r0 + step : rows;
      kt.softmax_forward(z, y, cols, r0, r1);
    }, threads_for_elements(rows * cols));
    return;
  }
  const i64 n = rows * cols, tasks = (n + kChunk - 1) / kChunk;
  parallel_for(tasks, [&](int64_t t, int) {
    i64 b = t * kChunk, e = b + kChunk < n ? b + kChunk : n;
    kt.act_forward(act, z, y, b, e);
  }, threads_for_elements(n));
}

void activation_backward(ActParams act, const float* dy, const float* z, float* dz, i64 rows, i64 cols) {
  // FLOPs: dy * f'(z) per element (prof::act_flops); bytes: dy and z read, dz written.
  GS_PROFILE_SCOPE("activation_backward", prof::act_flops(act, true) * rows * cols, 12.0 * rows * cols, rows, cols, -1);
  const KernelTable& kt = kernels();
  if (act.kind == kSoftmax) {
    // y = softmax(z) goes into dz, then dz = y * (dy - <dy, y>) in place, row by row.
    const i64 step = rows_per_task(cols), tasks = (rows + step - 1) / step;
    parallel_for(tasks, [&](int64_t t, int) {
      i64 r0 = t * step, r1 = r0 + step < rows ? r0 + step : rows;
      kt.softmax_forward(z, dz, cols, r0, r1);
      kt.softmax_backward(dy, dz, dz, cols, r0, r1);
    }, threads_for_elements(rows * cols));
    return;
  }
  const i64 n = rows * cols, tasks = (n + kChunk - 1) / kChunk;
  parallel_for(tasks, [&](int64_t t, int) {
    i64 b = t * kChunk, e = b + kChunk < n ? b + kChunk : n;
    kt.act_backward(act, dy, z, dz, b, e);
  }, threads_for_elements(n));
}

}  // namespace cpu
}  // namespace gradsmith

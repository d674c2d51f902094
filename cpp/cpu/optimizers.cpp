// Fused optimizer step over a list of buffers (a model's flat parameter
// buffer is a list of one). One pass reads w, g and the state and writes w and
// the state; clipping by value and weight decay happen inside that pass. Norm
// clipping needs the norms first: one read of the gradients, summed in fixed
// chunks so the result is the same for any thread count.
//
// The formulas are in math/optimizer.h (optimizer_update, clip_norm_scale, ...).

#include "cpu/dispatch.h"
#include "cpu/ops.h"
#include "cpu/profiler.h"
#include "cpu/scratch.h"
#include "cpu/thread_pool.h"

namespace gradsmith {
namespace cpu {
namespace {
constexpr i64 kChunk = 1 << 15;
}

void optimizer_step(const OptimizerArgs& args, const std::vector<ParamBuffer>& buffers, int clip_kind, float clip) {
  // FLOPs and bytes per element of the update and the norm clip: see prof::optimizer_flops, optimizer_bytes.
  GS_PROFILE_SCOPE("optimizer_step",
                   prof::optimizer_flops(args, buffers, clip_kind == kClipNorm || clip_kind == kClipGlobalNorm),
                   prof::optimizer_bytes(buffers, clip_kind == kClipNorm || clip_kind == kClipGlobalNorm),
                   prof::total_elements(buffers), -1, -1);
  const KernelTable& kt = kernels();
  // Clip factor per buffer (math::clip_norm_scale): clipnorm scales each gradient by c / max(||g||, c),
  // global_clipnorm all of them by c / max(||(g_1, g_2, ...)||, c).
  float* scale = scratch<float, kScratchClipScale>(buffers.size());
  for (size_t b = 0; b < buffers.size(); ++b) scale[b] = 1.f;
  if (clip_kind == kClipNorm || clip_kind == kClipGlobalNorm) {
    double all_squares = 0;
    for (size_t b = 0; b < buffers.size(); ++b) {
      const double squares = sum_squares(buffers[b].g, buffers[b].n);
      all_squares += squares;
      if (clip_kind == kClipNorm) scale[b] = math::clip_norm_scale(squares, clip);
    }
    if (clip_kind == kClipGlobalNorm) {
      const float s = math::global_clip_norm_scale(all_squares, clip);
      for (size_t b = 0; b < buffers.size(); ++b) scale[b] = s;
    }
  }
  // Tasks are (buffer, chunk) pairs.
  i64* first_task = scratch<i64, kScratchTaskBounds>(buffers.size() + 1);
  first_task[0] = 0;
  for (size_t b = 0; b < buffers.size(); ++b)
    first_task[b + 1] = first_task[b] + (buffers[b].n + kChunk - 1) / kChunk;
  i64 total = 0;
  for (const auto& b : buffers) total += b.n;
  parallel_for(
      first_task[buffers.size()],
      [&](int64_t task, int) {
        size_t b = 0;
        while (first_task[b + 1] <= task) ++b;
        const ParamBuffer& buf = buffers[b];
        OptimizerArgs a = args;
        a.w = buf.w;
        a.g = buf.g;
        a.s0 = buf.s0;
        a.s1 = buf.s1;
        a.s2 = buf.s2;
        a.keep = buf.keep;
        a.grad_scale = scale[b];
        a.clip_value = clip_kind == kClipValue ? clip : 0.f;
        const i64 begin = (task - first_task[b]) * kChunk;
        const i64 end = begin + kChunk < buf.n ? begin + kChunk : buf.n;
        kt.optimizer(a, begin, end);
      },
      threads_for_elements(total));
}

}  // namespace cpu
}  // namespace gradsmith

// One element of the fused optimizer update on the GPU: the CPU's formula
// (math/elementwise.h), with clipping by value, the norm-clip factor and
// decoupled weight decay applied as the CPU loop applies them.
#pragma once

#include "cpu/kernel_table.h"
#include "math/elementwise.h"

namespace gradsmith {
namespace cuda {

// w, g, s0..s2 point at this element (s* null when the optimizer has no such state).
__device__ __forceinline__ void update_element(const cpu::OptimizerArgs& a, float* w_at, float g, float* s0,
                                               float* s1, float* s2) {
  using namespace ::gradsmith::math;
  g *= a.grad_scale;
  if (a.clip_value > 0.f) g = clamp_f(g, -a.clip_value, a.clip_value);
  float w = *w_at;
  if (a.weight_decay != 0.f) w -= w * a.weight_decay * a.lr;  // Keras: variable -= variable * wd * lr
  switch (a.kind) {
    case cpu::kSgd: sgd_update(&w, g, s0, a.lr, a.h0, a.nesterov); break;
    case cpu::kAdam: adam_update(&w, g, s0, s1, s2, a.h0, a.h1, a.h2, a.h3); break;
    case cpu::kRmsprop: rmsprop_update(&w, g, s0, s1, s2, a.lr, a.h0, a.h1, a.h2, a.h3); break;
    case cpu::kAdamax: adamax_update(&w, g, s0, s1, a.h0, a.h1, a.h2, a.h3); break;
    case cpu::kLion: lion_update(&w, g, s0, a.lr, a.h0, a.h1, a.h2, a.h3); break;
    default: adagrad_update(&w, g, s0, a.lr, a.h0); break;
  }
  *w_at = w;
}

}  // namespace cuda
}  // namespace gradsmith

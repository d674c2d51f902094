// CUDA kernels over device pointers (launched on the default stream). Each
// computes the formula of its CPU twin from math/elementwise.h, compiled
// __host__ __device__, so both sides run one source.
#pragma once

#include <stdint.h>

#include "cpu/kernel_table.h"

namespace gradsmith {
namespace cuda {

using i64 = int64_t;

// y = f(z), dz = dy * f'(z) over n elements (element-wise activations; not softmax).
void activation_forward(ActParams act, const float* z, float* y, i64 n);
void activation_backward(ActParams act, const float* dy, const float* z, float* dz, i64 n);
// y = kept(i) ? x / (1 - rate) : 0 with the CPU's mask: Philox(seed; i / 4, offset)[i % 4].
void dropout(const float* x, float* y, i64 n, double rate, uint64_t seed, uint64_t offset);
// One launch over one flat buffer: args.w, g, s0..s2 are device pointers;
// clip by value and weight decay as on the CPU (norm clipping: not yet).
void optimizer_step(const cpu::OptimizerArgs& args, i64 n);

}  // namespace cuda
}  // namespace gradsmith

// SimpleRNN, GRU and LSTM on the GPU, forward and backward: the CPU's plan (cpu/recurrent.cpp) with the GPU's
// GEMM, and the per-unit step formulas of math/recurrent.h in one element-wise kernel per pass (a thread per
// (sample, unit)). Every product is a GEMM of gemm.cu and every sum runs in a fixed order: the same bits on
// every run.
#include <cuda_runtime.h>
#include <stdint.h>

#include "cuda/kernels.h"
#include "cuda/launch.h"
#include "cuda/layer_kernels.h"
#include "math/recurrent.h"

namespace gradsmith {
namespace cuda {
namespace {

__global__ void rnn_forward_step_kernel(math::RnnStepArgs a, i64 total) {
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x)
    math::rnn_forward_unit(a, i / a.u, i % a.u);
}

__global__ void gru_v1_forward_kernel(math::RnnStepArgs a, i64 total) {
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x)
    math::gru_v1_forward_unit(a, i / a.u, i % a.u);
}

__global__ void rnn_backward_step_kernel(math::RnnBackArgs a, i64 total) {
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x)
    math::rnn_backward_unit(a, i / a.u, i % a.u);
}

__global__ void gru_v1_backward_kernel(math::RnnBackArgs a, const float* drh, i64 total) {
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x)
    math::gru_v1_backward_unit(a, drh, i / a.u, i % a.u);
}

// y (batch, u) = hseq[:, steps - 1]; zero fills.
__global__ void last_step_kernel(const float* hseq, float* y, i64 steps, i64 units, i64 total) {
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {
    const i64 n = i / units, j = i - n * units;
    y[i] = hseq[(n * steps + steps - 1) * units + j];
  }
}

__global__ void zero_kernel(float* p, i64 total) {
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) p[i] = 0.f;
}

}  // namespace

void rnn_forward(const math::RnnSpec& s, const float* x, const float* W, const float* U, const float* b,
                 const float* h0, const float* c0, float* hseq, float* extra, float* gates, float* hprev,
                 float* scratch) {
  const i64 B = s.batch, T = s.steps, I = s.in, u = s.units, GU = math::rnn_gate_columns(s), units = B * u;
  const bool gru_v1 = s.cell == math::kCellGRU && !s.reset_after;
  dense_forward(x, W, b, ActParams{kLinear, 0.f}, gates, nullptr, B * T, I, GU);  // XP = x W + b_in
  math::RnnStepArgs a{s.cell, s.reset_after, T, u, GU, 0, 0, gates, nullptr,
                      s.cell == math::kCellGRU && s.reset_after && b ? b + GU : nullptr,
                      nullptr, 0, nullptr, 0, hseq, extra, hprev};
  for (i64 t = 0; t < T; ++t) {
    a.t = t;
    a.st = s.go_backwards ? T - 1 - t : t;
    a.hp = t == 0 ? h0 : hseq + (t - 1) * u;
    a.ldh = t == 0 ? u : T * u;
    a.cp = t == 0 ? c0 : (extra ? extra + (t - 1) * u : nullptr);
    a.ldc = a.ldh;
    a.rp = a.hp ? scratch : nullptr;
    if (a.hp) gemm(false, false, B, gru_v1 ? 2 * u : GU, u, 1.f, a.hp, a.ldh, U, GU, 0.f, scratch, GU);
    GS_LAUNCH(rnn_forward_step_kernel, launch_blocks(units), kLaunchThreads, 0, 0)(a, units);
    check_launch("rnn forward step kernel");
    if (gru_v1) {
      if (a.hp) gemm(false, false, B, u, u, 1.f, extra + t * u, T * u, U + 2 * u, GU, 0.f, scratch + 2 * u, GU);
      GS_LAUNCH(gru_v1_forward_kernel, launch_blocks(units), kLaunchThreads, 0, 0)(a, units);
      check_launch("gru forward candidate kernel");
    }
  }
}

void rnn_backward(const math::RnnSpec& s, const float* x, const float* W, const float* U, const float* c0,
                  const float* dy_seq, const float* dy_last, float* gates, const float* hprev, const float* extra,
                  float* scratch, float* dx, float* dW, float* dU, float* db) {
  const i64 B = s.batch, T = s.steps, I = s.in, u = s.units, GU = math::rnn_gate_columns(s), units = B * u;
  const bool gru_v1 = s.cell == math::kCellGRU && !s.reset_after;
  float* dR = scratch;
  float* dh_next = dR + B * T * GU;
  float* dc = dh_next + B * u;
  float* drh = dc + B * u;
  GS_LAUNCH(zero_kernel, launch_blocks(2 * units), kLaunchThreads, 0, 0)(dh_next, 2 * units);  // dh_next, dc
  check_launch("rnn zero kernel");
  math::RnnBackArgs a{s.cell, s.reset_after, T, u, GU, 0, 0, gates, dR, dh_next, dc, hprev, extra, c0, dy_seq,
                      dy_last};
  for (i64 t = T - 1; t >= 0; --t) {
    a.t = t;
    a.st = s.go_backwards ? T - 1 - t : t;
    GS_LAUNCH(rnn_backward_step_kernel, launch_blocks(units), kLaunchThreads, 0, 0)(a, units);
    check_launch("rnn backward step kernel");
    const float* dRt = dR + t * GU;
    if (gru_v1) {
      gemm(false, true, B, u, u, 1.f, dRt + 2 * u, T * GU, U + 2 * u, GU, 0.f, drh, u);
      GS_LAUNCH(gru_v1_backward_kernel, launch_blocks(units), kLaunchThreads, 0, 0)(a, drh, units);
      check_launch("gru backward reset kernel");
    }
    if (t > 0) gemm(false, true, B, u, gru_v1 ? 2 * u : GU, 1.f, dRt, T * GU, U, GU, 1.f, dh_next, u);
  }
  gemm(true, false, I, GU, B * T, 1.f, x, I, gates, GU, 0.f, dW, GU);
  if (gru_v1) {
    gemm(true, false, u, 2 * u, B * T, 1.f, hprev, u, dR, GU, 0.f, dU, GU);
    gemm(true, false, u, u, B * T, 1.f, extra, u, dR + 2 * u, GU, 0.f, dU + 2 * u, GU);
  } else {
    gemm(true, false, u, GU, B * T, 1.f, hprev, u, dR, GU, 0.f, dU, GU);
  }
  if (db) {
    col_sums(gates, db, B * T, GU);
    if (s.cell == math::kCellGRU && s.reset_after) col_sums(dR, db + GU, B * T, GU);
  }
  if (dx) gemm(false, true, B * T, I, GU, 1.f, gates, GU, W, GU, 0.f, dx, I);
}

void rnn_last_step(const float* hseq, float* y, i64 batch, i64 steps, i64 units) {
  const i64 total = batch * units;
  GS_LAUNCH(last_step_kernel, launch_blocks(total), kLaunchThreads, 0, 0)(hseq, y, steps, units, total);
  check_launch("rnn last step kernel");
}

}  // namespace cuda
}  // namespace gradsmith

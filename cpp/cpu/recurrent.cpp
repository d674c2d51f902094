// Recurrent layers (SimpleRNN, GRU, LSTM) over (batch, steps, features), gate formulas in math/recurrent.h.
//
//   forward   XP = x W + b for every step at once (one GEMM, bias in its epilogue); then per step
//             RP = h_prev U (one small GEMM; GRU without reset_after: two, the second after r) and one
//             element-wise pass that makes the gates and h (the gates overwrite XP's step in place).
//   backward  per step one element-wise pass (the pre-activation gradients dP, into the gates' place, and dR,
//             what reaches U) and one GEMM for dh_prev = dR U^T (+ the direct term); after the loop one GEMM
//             each for dW = x^T dP, dU = Hprev^T dR and dx = dP W^T, and column sums for the biases.
//
// Step t (processing order) reads input step s = go_backwards ? T-1-t : t; outputs, hprev and the per-step
// saved values are stored at t, the gates (and dP) at s so the big GEMMs pair them with x's rows. Every pass
// is in a fixed order and the GEMM's result does not depend on the thread count, so neither does this one.
#include <string.h>

#include <vector>

#include "cpu/ops.h"
#include "cpu/profiler.h"
#include "cpu/thread_pool.h"
#include "math/recurrent.h"

namespace gradsmith {
namespace cpu {

namespace {
using namespace ::gradsmith::math;

// The per-step element-wise passes: B x u independent units (each writes only its own elements), a few
// transcendental functions each. Small steps (generation's batch of 1, B u < kSerialUnits) run on the calling
// thread, where a pool wake-up would cost more than the pass; larger ones in fixed chunks across the pool
// (measured on 2 shared cores, GRU(256), batch 32 x 50 steps: forward 32 ms on 1 thread, 16 ms on 2; forward and
// backward 56 ms, 29 ms). Either way each unit computes the
// same formula on the same inputs: the bits do not depend on the thread count.
constexpr i64 kSerialUnits = 2048;
constexpr i64 kChunkUnits = 512;

template <class F>
void for_units(i64 B, i64 u, F&& f) {
  const i64 total = B * u;
  if (total < kSerialUnits) {
    for (i64 n = 0; n < B; ++n)
      for (i64 j = 0; j < u; ++j) f(n, j);
    return;
  }
  parallel_for((total + kChunkUnits - 1) / kChunkUnits, [&](int64_t task, int) {
    const i64 end = (task + 1) * kChunkUnits < total ? (task + 1) * kChunkUnits : total;
    for (i64 i = task * kChunkUnits; i < end; ++i) f(i / u, i % u);
  });
}
}  // namespace

void rnn_forward(const RnnSpec& s, const float* x, const float* W, const float* U, const float* b, const float* h0,
                 const float* c0, float* hseq, float* extra, float* gates, float* hprev, float* scratch) {
  const i64 B = s.batch, T = s.steps, I = s.in, u = s.units, GU = rnn_gate_columns(s);
  GS_PROFILE_SCOPE("rnn_forward", 2.0 * B * T * GU * (I + u), 4.0 * (B * T * (I + 2 * GU + 2 * u) + GU * (I + u)),
                   B * T, I, GU);
  const bool gru_v1 = s.cell == kCellGRU && !s.reset_after;
  // XP = x W + b_in for every step at once (rows n*T + s).
  Epilogue ep;
  ep.bias = b;
  gemm(false, false, B * T, GU, I, 1.f, x, I, W, GU, 0.f, gates, GU, b ? &ep : nullptr);
  RnnStepArgs a{s.cell, s.reset_after, T, u, GU, 0, 0, gates, nullptr,
                s.cell == kCellGRU && s.reset_after && b ? b + GU : nullptr,
                nullptr, 0, nullptr, 0, hseq, extra, hprev};
  for (i64 t = 0; t < T; ++t) {
    a.t = t;
    a.st = s.go_backwards ? T - 1 - t : t;
    a.hp = t == 0 ? h0 : hseq + (t - 1) * u;
    a.ldh = t == 0 ? u : T * u;
    a.cp = t == 0 ? c0 : (extra ? extra + (t - 1) * u : nullptr);
    a.ldc = a.ldh;
    a.rp = a.hp ? scratch : nullptr;  // from a zero state the product is zero: none is made
    if (a.hp) gemm(false, false, B, gru_v1 ? 2 * u : GU, u, 1.f, a.hp, a.ldh, U, GU, 0.f, scratch, GU);
    for_units(B, u, [&](i64 n, i64 j) { rnn_forward_unit(a, n, j); });
    if (gru_v1) {
      // rp_h = (r h_prev) U_h, then the candidate and h.
      if (a.hp) gemm(false, false, B, u, u, 1.f, extra + t * u, T * u, U + 2 * u, GU, 0.f, scratch + 2 * u, GU);
      for_units(B, u, [&](i64 n, i64 j) { gru_v1_forward_unit(a, n, j); });
    }
  }
}

void rnn_backward(const RnnSpec& s, const float* x, const float* W, const float* U, const float* c0,
                  const float* dy_seq, const float* dy_last, float* gates, const float* hprev, const float* extra,
                  float* scratch, float* dx, float* dW, float* dU, float* db) {
  const i64 B = s.batch, T = s.steps, I = s.in, u = s.units, GU = rnn_gate_columns(s);
  GS_PROFILE_SCOPE("rnn_backward", 4.0 * B * T * GU * (I + u),
                   4.0 * (B * T * (2 * I + 3 * GU + 3 * u) + 2 * GU * (I + u)), B * T, I, GU);
  const bool gru_v1 = s.cell == kCellGRU && !s.reset_after;
  float* dR = scratch;               // (B, T, GU), rows at t
  float* dh_next = dR + B * T * GU;  // (B, u): what reaches h_prev from the later steps
  float* dc = dh_next + B * u;       // (B, u): LSTM's cell gradient
  float* drh = dc + B * u;           // (B, u): GRU without reset_after: d(r h_prev)
  memset(dh_next, 0, sizeof(float) * B * u);
  memset(dc, 0, sizeof(float) * B * u);
  RnnBackArgs a{s.cell, s.reset_after, T, u, GU, 0, 0, gates, dR, dh_next, dc, hprev, extra, c0, dy_seq, dy_last};
  for (i64 t = T - 1; t >= 0; --t) {
    a.t = t;
    a.st = s.go_backwards ? T - 1 - t : t;
    for_units(B, u, [&](i64 n, i64 j) { rnn_backward_unit(a, n, j); });
    const float* dRt = dR + t * GU;
    if (gru_v1) {
      gemm(false, true, B, u, u, 1.f, dRt + 2 * u, T * GU, U + 2 * u, GU, 0.f, drh, u);
      for_units(B, u, [&](i64 n, i64 j) { gru_v1_backward_unit(a, drh, n, j); });
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
    if (s.cell == kCellGRU && s.reset_after) col_sums(dR, db + GU, B * T, GU);
  }
  if (dx) gemm(false, true, B * T, I, GU, 1.f, gates, GU, W, GU, 0.f, dx, I);
}

}  // namespace cpu
}  // namespace gradsmith

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
#include "math/recurrent.h"

namespace gradsmith {
namespace cpu {

namespace {
using namespace ::gradsmith::math;

struct Dims {
  i64 B, T, I, u, G, GU;
  explicit Dims(const RnnSpec& s)
      : B(s.batch), T(s.steps), I(s.in), u(s.units), G(cell_gates(s.cell)), GU(cell_gates(s.cell) * s.units) {}
  i64 step_of(const RnnSpec& s, i64 t) const { return s.go_backwards ? T - 1 - t : t; }
};
}  // namespace

i64 rnn_forward_scratch(const RnnSpec& s) { return s.batch * cell_gates(s.cell) * s.units; }
i64 rnn_backward_scratch(const RnnSpec& s) {
  const i64 GU = cell_gates(s.cell) * s.units;
  return s.batch * s.steps * GU + 4 * s.batch * s.units;
}

void rnn_forward(const RnnSpec& s, const float* x, const float* W, const float* U, const float* b, const float* h0,
                 const float* c0, float* hseq, float* extra, float* gates, float* hprev, float* scratch) {
  const Dims d(s);
  GS_PROFILE_SCOPE("rnn_forward", 2.0 * d.B * d.T * d.GU * (d.I + d.u),
                   4.0 * (d.B * d.T * (d.I + 2 * d.GU + 2 * d.u) + d.GU * (d.I + d.u)), d.B * d.T, d.I, d.GU);
  const i64 B = d.B, T = d.T, u = d.u, GU = d.GU;
  const bool gru = s.cell == kCellGRU, lstm = s.cell == kCellLSTM;
  // XP = x W + b_in (for every step; rows b*T + s).
  Epilogue ep;
  ep.bias = b;
  gemm(false, false, B * T, GU, d.I, 1.f, x, d.I, W, GU, 0.f, gates, GU, b ? &ep : nullptr);
  const float* b_rec = (gru && s.reset_after && b) ? b + GU : nullptr;
  float* rp = scratch;  // (B, GU)
  for (i64 t = 0; t < T; ++t) {
    const i64 st = d.step_of(s, t);
    const float* hp = t == 0 ? h0 : hseq + (t - 1) * u;
    const i64 ldh = t == 0 ? u : T * u;
    if (hprev)
      for (i64 n = 0; n < B; ++n) memcpy(hprev + (n * T + t) * u, hp + n * ldh, sizeof(float) * u);
    const i64 rp_cols = gru && !s.reset_after ? 2 * u : GU;
    gemm(false, false, B, rp_cols, u, 1.f, hp, ldh, U, GU, 0.f, rp, GU);
    for (i64 n = 0; n < B; ++n) {
      float* g = gates + (n * T + st) * GU;
      const float* r = rp + n * GU;
      const float* h_prev = hp + n * ldh;
      float* h = hseq + (n * T + t) * u;
      float* e = extra ? extra + (n * T + t) * u : nullptr;
      if (s.cell == kCellSimpleRNN) {
        for (i64 j = 0; j < u; ++j) h[j] = g[j] = simple_rnn_h(g[j], r[j]);
      } else if (lstm) {
        const float* cp = t == 0 ? c0 + n * u : extra + (n * T + t - 1) * u;
        for (i64 j = 0; j < u; ++j) {
          const float i = sigmoid(rnn_add(g[j], r[j]));
          const float f = sigmoid(rnn_add(g[u + j], r[u + j]));
          const float gg = tanhf(rnn_add(g[2 * u + j], r[2 * u + j]));
          const float o = sigmoid(rnn_add(g[3 * u + j], r[3 * u + j]));
          const float c = lstm_c(f, cp[j], i, gg);
          g[j] = i, g[u + j] = f, g[2 * u + j] = gg, g[3 * u + j] = o;
          e[j] = c;
          h[j] = lstm_h(o, c);
        }
      } else if (s.reset_after) {
        for (i64 j = 0; j < u; ++j) {
          const float z = gru_gate(g[j], b_rec ? rnn_add(r[j], b_rec[j]) : r[j]);
          const float rr = gru_gate(g[u + j], b_rec ? rnn_add(r[u + j], b_rec[u + j]) : r[u + j]);
          const float rh = b_rec ? rnn_add(r[2 * u + j], b_rec[2 * u + j]) : r[2 * u + j];
          const float hh = gru_candidate(g[2 * u + j], rr, rh, true);
          g[j] = z, g[u + j] = rr, g[2 * u + j] = hh;
          e[j] = rh;
          h[j] = gru_h(z, h_prev[j], hh);
        }
      } else {
        for (i64 j = 0; j < u; ++j) {
          g[j] = gru_gate(g[j], r[j]);
          g[u + j] = gru_gate(g[u + j], r[u + j]);
          e[j] = rnn_mul(g[u + j], h_prev[j]);  // r * h_prev, the second product's input
        }
      }
    }
    if (gru && !s.reset_after) {
      // RP_h = (r h_prev) U_h, then the candidate and h.
      gemm(false, false, B, u, u, 1.f, extra + t * u, T * u, U + 2 * u, GU, 0.f, rp + 2 * u, GU);
      for (i64 n = 0; n < B; ++n) {
        float* g = gates + (n * T + st) * GU;
        const float* r = rp + n * GU;
        const float* h_prev = hp + n * ldh;
        float* h = hseq + (n * T + t) * u;
        for (i64 j = 0; j < u; ++j) {
          const float hh = gru_candidate(g[2 * u + j], g[u + j], r[2 * u + j], false);
          g[2 * u + j] = hh;
          h[j] = gru_h(g[j], h_prev[j], hh);
        }
      }
    }
  }
}

void rnn_backward(const RnnSpec& s, const float* x, const float* W, const float* U, const float* c0,
                  const float* dy_seq, const float* dy_last, float* gates, const float* hprev, const float* extra,
                  float* scratch, float* dx, float* dW, float* dU, float* db) {
  const Dims d(s);
  GS_PROFILE_SCOPE("rnn_backward", 2.0 * d.B * d.T * d.GU * (2 * d.I + 2 * d.u),
                   4.0 * (d.B * d.T * (2 * d.I + 3 * d.GU + 3 * d.u) + 2 * d.GU * (d.I + d.u)), d.B * d.T, d.I,
                   d.GU);
  const i64 B = d.B, T = d.T, u = d.u, GU = d.GU;
  const bool gru = s.cell == kCellGRU, lstm = s.cell == kCellLSTM;
  float* dR = scratch;                 // (B, T, GU), rows at t
  float* dh_next = dR + B * T * GU;    // (B, u): what reaches h_prev from the later steps
  float* dc = dh_next + B * u;         // (B, u): LSTM's cell gradient
  float* drh = dc + B * u;             // (B, u): GRU without reset_after: d(r h_prev)
  memset(dh_next, 0, sizeof(float) * B * u);
  memset(dc, 0, sizeof(float) * B * u);
  for (i64 t = T - 1; t >= 0; --t) {
    const i64 st = d.step_of(s, t);
    for (i64 n = 0; n < B; ++n) {
      float* g = gates + (n * T + st) * GU;  // the gates in, dP out
      float* r = dR + (n * T + t) * GU;
      float* dn = dh_next + n * u;
      const float* hp = hprev + (n * T + t) * u;
      const float* ys = dy_seq ? dy_seq + (n * T + t) * u : nullptr;
      const float* yl = dy_last && t == T - 1 ? dy_last + n * u : nullptr;
      for (i64 j = 0; j < u; ++j) {
        float dh = dn[j];
        if (ys) dh = rnn_add(dh, ys[j]);
        if (yl) dh = rnn_add(dh, yl[j]);
        if (s.cell == kCellSimpleRNN) {
          r[j] = g[j] = simple_rnn_dpre(dh, g[j]);
          dn[j] = 0.f;
        } else if (lstm) {
          const float* e = extra + (n * T + t) * u;
          const float cp = t == 0 ? c0[n * u + j] : extra[(n * T + t - 1) * u + j];
          float di, df, dg, d_o;
          dc[n * u + j] = lstm_backward(dh, dc[n * u + j], g[j], g[u + j], g[2 * u + j], g[3 * u + j], e[j], cp,
                                        &di, &df, &dg, &d_o);
          r[j] = g[j] = di, r[u + j] = g[u + j] = df, r[2 * u + j] = g[2 * u + j] = dg;
          r[3 * u + j] = g[3 * u + j] = d_o;
          dn[j] = 0.f;
        } else {
          const float z = g[j], rr = g[u + j], hh = g[2 * u + j];
          const float dz = gru_dz(dh, z, hp[j], hh), dhh = gru_dhh(dh, z, hh);
          g[j] = r[j] = dz;
          g[2 * u + j] = dhh;
          dn[j] = rnn_mul(dh, z);
          if (s.reset_after) {
            const float rh = extra[(n * T + t) * u + j];
            g[u + j] = r[u + j] = gru_dr(dhh, rh, rr);
            r[2 * u + j] = rnn_mul(dhh, rr);
          } else {
            r[2 * u + j] = dhh;
            r[u + j] = rr;  // r kept here until d(r h_prev) is known
          }
        }
      }
    }
    float* dRt = dR + t * GU;
    if (gru && !s.reset_after) {
      gemm(false, true, B, u, u, 1.f, dRt + 2 * u, T * GU, U + 2 * u, GU, 0.f, drh, u);
      for (i64 n = 0; n < B; ++n) {
        float* g = gates + (n * T + st) * GU;
        float* r = dR + (n * T + t) * GU;
        const float* hp = hprev + (n * T + t) * u;
        for (i64 j = 0; j < u; ++j) {
          const float rr = r[u + j], dv = drh[n * u + j];
          g[u + j] = r[u + j] = gru_dr(dv, hp[j], rr);
          dh_next[n * u + j] = rnn_add(dh_next[n * u + j], rnn_mul(dv, rr));
        }
      }
      gemm(false, true, B, u, 2 * u, 1.f, dRt, T * GU, U, GU, 1.f, dh_next, u);
    } else {
      gemm(false, true, B, u, GU, 1.f, dRt, T * GU, U, GU, 1.f, dh_next, u);
    }
  }
  gemm(true, false, d.I, GU, B * T, 1.f, x, d.I, gates, GU, 0.f, dW, GU);
  if (gru && !s.reset_after) {
    gemm(true, false, u, 2 * u, B * T, 1.f, hprev, u, dR, GU, 0.f, dU, GU);
    gemm(true, false, u, u, B * T, 1.f, extra, u, dR + 2 * u, GU, 0.f, dU + 2 * u, GU);
  } else {
    gemm(true, false, u, GU, B * T, 1.f, hprev, u, dR, GU, 0.f, dU, GU);
  }
  if (db) {
    col_sums(gates, db, B * T, GU);
    if (gru && s.reset_after) col_sums(dR, db + GU, B * T, GU);
  }
  if (dx) gemm(false, true, B * T, d.I, GU, 1.f, gates, GU, W, GU, 0.f, dx, d.I);
}

}  // namespace cpu
}  // namespace gradsmith

// The recurrent cells' per-unit gate formulas (Keras 3's SimpleRNNCell, GRUCell, LSTMCell with tanh and
// sigmoid), shared by the CPU loops (cpu/recurrent.cpp) and the CUDA kernels (cuda/recurrent.cu).
//
// A cell's products are computed outside: xp = x W + b (all steps at once) and rp = h_prev U (+ the
// recurrent bias for GRU with reset_after). Gate order in the columns is Keras's:
//   SimpleRNN  h = tanh(xp + rp)
//   GRU        z = sig(xp_z + rp_z), r = sig(xp_r + rp_r)
//              reset_after:  hh = tanh(xp_h + r * rp_h)          rp_h = h_prev U_h + b_rec_h
//              else:         hh = tanh(xp_h + (r * h_prev) U_h)  (the product is made after r)
//              h = z * h_prev + (1 - z) * hh
//   LSTM       i = sig(.), f = sig(.), g = tanh(.), o = sig(.)  (pre-activations xp + rp)
//              c = f * c_prev + i * g, h = o * tanh(c)
// Backward formulas give the pre-activation gradients from dh (and dc) and the saved gate values. Every
// product is rounded on its own (math::mul_add_rounded on the device), so both sides give the same bits.
#pragma once

#include <stdint.h>

#include "math/elementwise.h"

namespace gradsmith {
namespace math {

enum RecurrentCell { kCellSimpleRNN = 0, kCellGRU = 1, kCellLSTM = 2 };

// Gates per unit: the width of the kernel's columns is gates * units.
GS_HD int cell_gates(int cell) { return cell == kCellGRU ? 3 : (cell == kCellLSTM ? 4 : 1); }

GS_HD float rnn_mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
GS_HD float rnn_add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

// ---- SimpleRNN
GS_HD float simple_rnn_h(float xp, float rp) { return tanhf(rnn_add(xp, rp)); }
// d pre-activation from dh and h = tanh(pre).
GS_HD float simple_rnn_dpre(float dh, float h) { return rnn_mul(dh, 1.f - rnn_mul(h, h)); }

// ---- GRU
// z and r from their pre-activation parts.
GS_HD float gru_gate(float xp, float rp) { return sigmoid(rnn_add(xp, rp)); }
// hh with reset_after (rp_h includes the recurrent bias) or without (rp_h = (r h_prev) U_h: r not applied).
GS_HD float gru_candidate(float xp_h, float r, float rp_h, bool reset_after) {
  return tanhf(rnn_add(xp_h, reset_after ? rnn_mul(r, rp_h) : rp_h));
}
GS_HD float gru_h(float z, float h_prev, float hh) { return rnn_add(rnn_mul(z, h_prev), rnn_mul(1.f - z, hh)); }
// Pre-activation gradients of z and hh, from dh.
GS_HD float gru_dz(float dh, float z, float h_prev, float hh) {
  return rnn_mul(rnn_mul(dh, h_prev - hh), rnn_mul(z, 1.f - z));
}
GS_HD float gru_dhh(float dh, float z, float hh) { return rnn_mul(rnn_mul(dh, 1.f - z), 1.f - rnn_mul(hh, hh)); }
// Pre-activation gradient of r from d(r * v): v = rp_h (reset_after) or h_prev (not).
GS_HD float gru_dr(float d_rv, float v, float r) { return rnn_mul(rnn_mul(d_rv, v), rnn_mul(r, 1.f - r)); }

// ---- LSTM
GS_HD float lstm_c(float f, float c_prev, float i, float g) { return rnn_add(rnn_mul(f, c_prev), rnn_mul(i, g)); }
GS_HD float lstm_h(float o, float c) { return rnn_mul(o, tanhf(c)); }
// One unit's backward: from dh, dc (from the next step), the gates and c, c_prev; writes the four
// pre-activation gradients and returns dc_prev.
GS_HD float lstm_backward(float dh, float dc_next, float i, float f, float g, float o, float c, float c_prev,
                          float* di, float* df, float* dg, float* d_o) {
  const float tc = tanhf(c);
  const float dc = rnn_add(dc_next, rnn_mul(rnn_mul(dh, o), 1.f - rnn_mul(tc, tc)));
  *d_o = rnn_mul(rnn_mul(dh, tc), rnn_mul(o, 1.f - o));
  *di = rnn_mul(rnn_mul(dc, g), rnn_mul(i, 1.f - i));
  *df = rnn_mul(rnn_mul(dc, c_prev), rnn_mul(f, 1.f - f));
  *dg = rnn_mul(rnn_mul(dc, i), 1.f - rnn_mul(g, g));
  return rnn_mul(dc, f);
}

// ---- the shapes of one recurrent layer's call, and the scratch its kernels need (CPU and CUDA alike)
struct RnnSpec {
  int cell;  // RecurrentCell
  bool reset_after, go_backwards;
  int64_t batch, steps, in, units;
};
GS_HD int64_t rnn_gate_columns(const RnnSpec& s) { return cell_gates(s.cell) * s.units; }
GS_HD int64_t rnn_forward_scratch(const RnnSpec& s) { return s.batch * rnn_gate_columns(s); }
GS_HD int64_t rnn_backward_scratch(const RnnSpec& s) {
  return s.batch * s.steps * rnn_gate_columns(s) + 4 * s.batch * s.units;
}

// ---- one unit (n, j) of one step: what the CPU loop and the CUDA kernel both run, element by element.
// Step t reads the gates' row n*T + st (st = t, or T-1-t going backwards); a null rp (the recurrent product)
// or hp / cp (the previous state) is zero: the first step from a zero state makes no product.
struct RnnStepArgs {
  int cell;
  bool reset_after;
  int64_t T, u, GU, t, st;
  float* gates;        // (B, T, GU): XP in, the activated gates out
  const float* rp;     // (B, GU) row stride GU, or null
  const float* b_rec;  // GRU reset_after's recurrent bias (GU), or null
  const float* hp;     // h_prev rows, stride ldh, or null
  int64_t ldh;
  const float* cp;  // LSTM's c_prev rows, stride ldc, or null
  int64_t ldc;
  float* hseq;   // (B, T, u)
  float* extra;  // (B, T, u): LSTM c, GRU rp_h (reset_after) or r h_prev
  float* hprev;  // (B, T, u), or null (inference)
};

GS_HD float rnn_at(const float* p, int64_t i) { return p ? p[i] : 0.f; }

// The step's first pass: everything but GRU-without-reset_after's candidate (second pass).
GS_HD void rnn_forward_unit(const RnnStepArgs& a, int64_t n, int64_t j) {
  const int64_t u = a.u;
  float* g = a.gates + (n * a.T + a.st) * a.GU;
  const float* r = a.rp ? a.rp + n * a.GU : nullptr;
  const float h_prev = a.hp ? a.hp[n * a.ldh + j] : 0.f;
  const int64_t o = (n * a.T + a.t) * u + j;
  if (a.hprev) a.hprev[o] = h_prev;
  if (a.cell == kCellSimpleRNN) {
    const float h = simple_rnn_h(g[j], rnn_at(r, j));
    g[j] = h;
    a.hseq[o] = h;
  } else if (a.cell == kCellLSTM) {
    const float i = sigmoid(rnn_add(g[j], rnn_at(r, j)));
    const float f = sigmoid(rnn_add(g[u + j], rnn_at(r, u + j)));
    const float gg = tanhf(rnn_add(g[2 * u + j], rnn_at(r, 2 * u + j)));
    const float og = sigmoid(rnn_add(g[3 * u + j], rnn_at(r, 3 * u + j)));
    const float c = lstm_c(f, a.cp ? a.cp[n * a.ldc + j] : 0.f, i, gg);
    g[j] = i, g[u + j] = f, g[2 * u + j] = gg, g[3 * u + j] = og;
    a.extra[o] = c;
    a.hseq[o] = lstm_h(og, c);
  } else if (a.reset_after) {
    const float* b = a.b_rec;
    const float rz = b ? rnn_add(rnn_at(r, j), b[j]) : rnn_at(r, j);
    const float rr = b ? rnn_add(rnn_at(r, u + j), b[u + j]) : rnn_at(r, u + j);
    const float rh = b ? rnn_add(rnn_at(r, 2 * u + j), b[2 * u + j]) : rnn_at(r, 2 * u + j);
    const float z = gru_gate(g[j], rz), rg = gru_gate(g[u + j], rr);
    const float hh = gru_candidate(g[2 * u + j], rg, rh, true);
    g[j] = z, g[u + j] = rg, g[2 * u + j] = hh;
    a.extra[o] = rh;
    a.hseq[o] = gru_h(z, h_prev, hh);
  } else {
    g[j] = gru_gate(g[j], rnn_at(r, j));
    g[u + j] = gru_gate(g[u + j], rnn_at(r, u + j));
    a.extra[o] = rnn_mul(g[u + j], h_prev);  // r h_prev, the second product's input
  }
}

// GRU without reset_after, after rp_h = (r h_prev) U_h (in rp's last u columns; null rp: zero).
GS_HD void gru_v1_forward_unit(const RnnStepArgs& a, int64_t n, int64_t j) {
  const int64_t u = a.u;
  float* g = a.gates + (n * a.T + a.st) * a.GU;
  const float rh = a.rp ? a.rp[n * a.GU + 2 * u + j] : 0.f;
  const float hh = gru_candidate(g[2 * u + j], g[u + j], rh, false);
  g[2 * u + j] = hh;
  a.hseq[(n * a.T + a.t) * u + j] = gru_h(g[j], a.hp ? a.hp[n * a.ldh + j] : 0.f, hh);
}

struct RnnBackArgs {
  int cell;
  bool reset_after;
  int64_t T, u, GU, t, st;
  float* gates;          // the gates in, dP out (rows n*T + st)
  float* dR;             // (B, T, GU): what reaches U (rows n*T + t)
  float* dh_next;        // (B, u): in, the gradient from later steps; out, the direct part of dh_prev
  float* dc;             // (B, u): LSTM's dc, carried
  const float* hprev;    // (B, T, u)
  const float* extra;    // (B, T, u)
  const float* c0;       // (B, u) or null (zero)
  const float* dy_seq;   // (B, T, u) or null
  const float* dy_last;  // (B, u) or null (added at the last step)
};

GS_HD void rnn_backward_unit(const RnnBackArgs& a, int64_t n, int64_t j) {
  const int64_t u = a.u;
  float* g = a.gates + (n * a.T + a.st) * a.GU;
  float* r = a.dR + (n * a.T + a.t) * a.GU;
  const int64_t o = (n * a.T + a.t) * u + j;
  float dh = a.dh_next[n * u + j];
  if (a.dy_seq) dh = rnn_add(dh, a.dy_seq[o]);
  if (a.dy_last && a.t == a.T - 1) dh = rnn_add(dh, a.dy_last[n * u + j]);
  if (a.cell == kCellSimpleRNN) {
    const float d = simple_rnn_dpre(dh, g[j]);
    g[j] = d, r[j] = d;
    a.dh_next[n * u + j] = 0.f;
  } else if (a.cell == kCellLSTM) {
    const float cp = a.t == 0 ? (a.c0 ? a.c0[n * u + j] : 0.f) : a.extra[o - u];
    float di, df, dg, d_o;
    a.dc[n * u + j] = lstm_backward(dh, a.dc[n * u + j], g[j], g[u + j], g[2 * u + j], g[3 * u + j], a.extra[o], cp,
                                    &di, &df, &dg, &d_o);
    g[j] = di, g[u + j] = df, g[2 * u + j] = dg, g[3 * u + j] = d_o;
    r[j] = di, r[u + j] = df, r[2 * u + j] = dg, r[3 * u + j] = d_o;
    a.dh_next[n * u + j] = 0.f;
  } else {
    const float z = g[j], rg = g[u + j], hh = g[2 * u + j];
    const float dz = gru_dz(dh, z, a.hprev[o], hh), dhh = gru_dhh(dh, z, hh);
    g[j] = dz, r[j] = dz;
    g[2 * u + j] = dhh;
    a.dh_next[n * u + j] = rnn_mul(dh, z);
    if (a.reset_after) {
      const float dr = gru_dr(dhh, a.extra[o], rg);
      g[u + j] = dr, r[u + j] = dr;
      r[2 * u + j] = rnn_mul(dhh, rg);
    } else {
      r[2 * u + j] = dhh;
      r[u + j] = rg;  // r kept here until d(r h_prev) is known
    }
  }
}

// GRU without reset_after, after drh = d(r h_prev) = dhh U_h^T: r's gradient and r's share of dh_prev.
GS_HD void gru_v1_backward_unit(const RnnBackArgs& a, const float* drh, int64_t n, int64_t j) {
  const int64_t u = a.u;
  float* g = a.gates + (n * a.T + a.st) * a.GU;
  float* r = a.dR + (n * a.T + a.t) * a.GU;
  const float rg = r[u + j], dv = drh[n * u + j];
  const float dr = gru_dr(dv, a.hprev[(n * a.T + a.t) * u + j], rg);
  g[u + j] = dr, r[u + j] = dr;
  a.dh_next[n * u + j] = rnn_add(a.dh_next[n * u + j], rnn_mul(dv, rg));
}

}  // namespace math
}  // namespace gradsmith

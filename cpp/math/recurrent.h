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

}  // namespace math
}  // namespace gradsmith

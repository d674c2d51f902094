"""Recurrent layers in float64, a plain per-step loop written from Keras 3's cell formulas (gate order as Keras
stores the columns; activation tanh, recurrent activation sigmoid):

    SimpleRNN  h = tanh(x W + b + h_prev U)
    GRU        z = sig(x W_z + b_z + h U_z (+ b'_z)), r likewise; reset_after: hh = tanh(x W_h + b_h + r (h U_h + b'_h))
               else hh = tanh(x W_h + b_h + (r h) U_h); h = z h_prev + (1 - z) hh
    LSTM       i, f, o = sig(.), g = tanh(.) of x W + h U + b; c = f c_prev + i g; h = o tanh(c)

Gradients by reverse-mode through the same loop, written out per step.
"""
import numpy as np


def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def _split_bias(cell, bias, gu, reset_after):
    if bias is None:
        return np.zeros(gu), np.zeros(gu)
    bias = np.asarray(bias, np.float64)
    if cell == "GRU" and reset_after:
        return bias[0], bias[1]
    return bias, np.zeros(gu)


def rnn_forward(cell, x, W, U, bias=None, h0=None, c0=None, reset_after=True, go_backwards=False):
    """(hseq (batch, steps, u) in processing order, h_last, c_last or None) and the tape for rnn_backward."""
    x, W, U = (np.asarray(a, np.float64) for a in (x, W, U))
    B, T, _ = x.shape
    u = U.shape[0]
    b_in, b_rec = _split_bias(cell, bias, U.shape[1], reset_after)
    h = np.zeros((B, u)) if h0 is None else np.asarray(h0, np.float64)
    c = np.zeros((B, u)) if c0 is None else np.asarray(c0, np.float64)
    order = range(T - 1, -1, -1) if go_backwards else range(T)
    hs, tape = [], []
    for s in order:
        xp = x[:, s] @ W + b_in
        if cell == "SimpleRNN":
            hn = np.tanh(xp + h @ U)
            tape.append((s, h, hn))
        elif cell == "LSTM":
            zz = xp + h @ U + b_rec
            i, f, g, o = _sig(zz[:, :u]), _sig(zz[:, u:2 * u]), np.tanh(zz[:, 2 * u:3 * u]), _sig(zz[:, 3 * u:])
            cn = f * c + i * g
            hn = o * np.tanh(cn)
            tape.append((s, h, c, i, f, g, o, cn))
            c = cn
        else:
            rp = h @ U[:, :2 * u] + b_rec[:2 * u]
            z = _sig(xp[:, :u] + rp[:, :u])
            r = _sig(xp[:, u:2 * u] + rp[:, u:])
            if reset_after:
                rh = h @ U[:, 2 * u:] + b_rec[2 * u:]
                hh = np.tanh(xp[:, 2 * u:] + r * rh)
            else:
                rh = (r * h) @ U[:, 2 * u:]
                hh = np.tanh(xp[:, 2 * u:] + rh)
            hn = z * h + (1 - z) * hh
            tape.append((s, h, z, r, hh, rh))
        h = hn
        hs.append(h)
    hseq = np.stack(hs, axis=1)
    return hseq, h, (c if cell == "LSTM" else None), tape


def rnn_backward(cell, x, W, U, tape, dy_seq=None, dy_last=None, reset_after=True, use_bias=True):
    """(dx, dW, dU, db or None) through the loop of rnn_forward."""
    x, W, U = (np.asarray(a, np.float64) for a in (x, W, U))
    B, T, _ = x.shape
    u = U.shape[0]
    dx, dW, dU = np.zeros_like(x), np.zeros_like(W), np.zeros_like(U)
    db_in, db_rec = np.zeros(U.shape[1]), np.zeros(U.shape[1])
    dh_next, dc_next = np.zeros((B, u)), np.zeros((B, u))
    for t in range(T - 1, -1, -1):
        dh = dh_next.copy()
        if dy_seq is not None:
            dh += np.asarray(dy_seq, np.float64)[:, t]
        if dy_last is not None and t == T - 1:
            dh += np.asarray(dy_last, np.float64)
        entry = tape[t]
        s, hp = entry[0], entry[1]
        if cell == "SimpleRNN":
            hn = entry[2]
            dp = dh * (1 - hn ** 2)
            dxp, drp = dp, dp
            dh_next = dp @ U.T
            dU += hp.T @ drp
        elif cell == "LSTM":
            _, _, cp, i, f, g, o, cn = entry
            tc = np.tanh(cn)
            dc = dc_next + dh * o * (1 - tc ** 2)
            dp = np.concatenate([dc * g * i * (1 - i), dc * cp * f * (1 - f), dc * i * (1 - g ** 2),
                                 dh * tc * o * (1 - o)], axis=1)
            dc_next = dc * f
            dxp, drp = dp, dp
            dh_next = dp @ U.T
            dU += hp.T @ drp
        else:
            _, _, z, r, hh, rh = entry
            dz = dh * (hp - hh) * z * (1 - z)
            dhh = dh * (1 - z) * (1 - hh ** 2)
            if reset_after:
                dr = dhh * rh * r * (1 - r)
                dxp = np.concatenate([dz, dr, dhh], axis=1)
                drp = np.concatenate([dz, dr, dhh * r], axis=1)
                dh_next = dh * z + drp @ U.T
                dU += hp.T @ drp
            else:
                d_rh = dhh @ U[:, 2 * u:].T
                dr = d_rh * hp * r * (1 - r)
                dxp = np.concatenate([dz, dr, dhh], axis=1)
                drp = dxp
                dh_next = dh * z + d_rh * r + dxp[:, :2 * u] @ U[:, :2 * u].T
                dU[:, :2 * u] += hp.T @ dxp[:, :2 * u]
                dU[:, 2 * u:] += (r * hp).T @ dhh
        dW += x[:, s].T @ dxp
        dx[:, s] = dxp @ W.T
        db_in += dxp.sum(0)
        db_rec += drp.sum(0)
    if not use_bias:
        db = None
    elif cell == "GRU" and reset_after:
        db = np.stack([db_in, db_rec])
    else:
        db = db_in
    return dx, dW, dU, db

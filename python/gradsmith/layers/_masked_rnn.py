"""The recurrent layers over a masked sequence, in NumPy float32 one step at a time (Keras 3's masked RNN).

The compiled kernels (``ops.rnn_forward`` / ``ops.rnn_backward``) run a whole sequence from one state and
return no gradient for that state, so a mask, which carries the state across masked steps, cannot be laid
over them. This module does the same math per step: at a masked step the state (h, and c for the LSTM) is
carried unchanged and the output repeats the previous step's output (zeros before the first valid step), as
``keras.src.backend.jax.rnn`` does; the backward pass sends the carried copies' gradients back to the step
they were copied from. It is plain NumPy: correct first, and several times slower than the kernels.
"""
import numpy as np

_F32 = np.float32


def _sigmoid(v):
    return (1.0 / (1.0 + np.exp(-v))).astype(_F32)


def _proj(v, M, masks):
    """v @ M; with dropout ``masks`` (G arrays shaped like v), gate g's columns see v * masks[g] (Keras's
    implementation 1: each gate its own mask)."""
    if masks is None:
        return v @ M
    cols = M.shape[1] // len(masks)
    return np.concatenate([(v * m) @ M[:, g * cols:(g + 1) * cols] for g, m in enumerate(masks)], axis=1)


def _proj_back(v, M, masks, dz, dM):
    """The gradients of ``_proj``: adds d/dM into dM (float64) and returns d/dv."""
    if masks is None:
        dM += v.T @ dz
        return dz @ M.T
    cols = M.shape[1] // len(masks)
    dv = np.zeros(v.shape, _F32)
    for g, m in enumerate(masks):
        block = slice(g * cols, (g + 1) * cols)
        dM[:, block] += (v * m).T @ dz[:, block]
        dv += (dz[:, block] @ M[:, block].T) * m
    return dv


def _cell_forward(cell, x_t, h, c, W, U, b, reset_after, xm=None, hm=None):
    """One step: (h_new, c_new, saved) from x_t (B, in), h (B, u), c (B, u) or None. ``xm`` / ``hm``: the
    dropout masks of the input and of the recurrent state, one per gate (or None); the state the GRU mixes
    with its candidate and the LSTM's c are not dropped, as in Keras."""
    u = U.shape[0]
    if cell == "SimpleRNN":
        a = _proj(x_t, W, xm) + _proj(h, U, hm)
        if b is not None:
            a = a + b
        h_new = np.tanh(a).astype(_F32)
        return h_new, None, (x_t, h, h_new)
    if cell == "LSTM":
        z = _proj(x_t, W, xm) + _proj(h, U, hm)
        if b is not None:
            z = z + b
        i, f, g, o = _sigmoid(z[:, :u]), _sigmoid(z[:, u:2 * u]), np.tanh(z[:, 2 * u:3 * u]), _sigmoid(z[:, 3 * u:])
        c_new = (f * c + i * g).astype(_F32)
        tc = np.tanh(c_new)
        h_new = (o * tc).astype(_F32)
        return h_new, c_new, (x_t, h, c, i, f, g, o, tc)
    # GRU
    if reset_after:
        bi, br = (b[0], b[1]) if b is not None else (0.0, 0.0)
        mx = _proj(x_t, W, xm) + bi
        mi = _proj(h, U, hm) + br
        zr = _sigmoid(mx[:, :2 * u] + mi[:, :2 * u])
        zg, rg = zr[:, :u], zr[:, u:]
        rec_h = mi[:, 2 * u:]
        hh = np.tanh(mx[:, 2 * u:] + rg * rec_h).astype(_F32)
        hd = h
    else:
        mx = _proj(x_t, W, xm) + (b if b is not None else 0.0)
        zr = _sigmoid(mx[:, :2 * u] + _proj(h, U[:, :2 * u], None if hm is None else hm[:2]))
        zg, rg = zr[:, :u], zr[:, u:]
        hd = h if hm is None else h * hm[2]
        rec_h = (rg * hd) @ U[:, 2 * u:]
        hh = np.tanh(mx[:, 2 * u:] + rec_h).astype(_F32)
    h_new = (zg * h + (1 - zg) * hh).astype(_F32)
    return h_new, None, (x_t, h, zg, rg, hh, rec_h, hd)


def _cell_backward(cell, saved, dh, dc, W, U, dW, dU, db, reset_after, xm=None, hm=None):
    """Gradients of one step: adds into dW, dU, db (float64); returns (dx_t, dh_prev, dc_prev)."""
    u = U.shape[0]
    if cell == "SimpleRNN":
        x_t, h, h_new = saved
        da = dh * (1 - h_new * h_new)
        if db is not None:
            db += da.sum(0)
        return _proj_back(x_t, W, xm, da, dW), _proj_back(h, U, hm, da, dU), None
    if cell == "LSTM":
        x_t, h, c, i, f, g, o, tc = saved
        do = dh * tc
        dc = dc + dh * o * (1 - tc * tc)
        di, df, dg = dc * g, dc * c, dc * i
        dz = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g), do * o * (1 - o)], axis=1)
        if db is not None:
            db += dz.sum(0)
        return _proj_back(x_t, W, xm, dz, dW), _proj_back(h, U, hm, dz, dU), dc * f
    x_t, h, zg, rg, hh, rec_h, hd = saved
    dzg = dh * (h - hh)
    dhh = dh * (1 - zg)
    dh_prev = dh * zg
    da_h = dhh * (1 - hh * hh)
    if reset_after:
        drg = da_h * rec_h
        dzr = np.concatenate([dzg * zg * (1 - zg), drg * rg * (1 - rg)], axis=1)
        dmx = np.concatenate([dzr, da_h], axis=1)
        dmi = np.concatenate([dzr, da_h * rg], axis=1)
        if db is not None:
            db[0] += dmx.sum(0)
            db[1] += dmi.sum(0)
        return _proj_back(x_t, W, xm, dmx, dW), dh_prev + _proj_back(h, U, hm, dmi, dU), None
    drh = da_h @ U[:, 2 * u:].T  # d(rg * hd)
    drg = drh * hd
    dh_prev = dh_prev + (drh * rg if hm is None else drh * rg * hm[2])
    dzr = np.concatenate([dzg * zg * (1 - zg), drg * rg * (1 - rg)], axis=1)
    dmx = np.concatenate([dzr, da_h], axis=1)
    dU[:, 2 * u:] += (rg * hd).T @ da_h
    if db is not None:
        db += dmx.sum(0)
    dh_prev = dh_prev + _proj_back(h, U[:, :2 * u], None if hm is None else hm[:2], dzr, dU[:, :2 * u])
    return _proj_back(x_t, W, xm, dmx, dW), dh_prev, None


def forward(cell, x, mask, W, U, b, h0, c0, reset_after, go_backwards, training, drop=None):
    """(outputs (B, T, u) in processing order, h_last, c_last or None, cache or None). ``mask`` (B, T) or None
    (every step valid); ``drop``: {"x": G masks (B, in) or None, "h": G masks (B, u) or None}, the dropout
    masks (scaled by 1 / (1 - rate)) used at every step of this call."""
    B, T, _ = x.shape
    u = U.shape[0]
    x = np.asarray(x, _F32)
    m = np.ones((B, T), bool) if mask is None else np.asarray(mask, bool).reshape(B, T)
    if go_backwards:
        x, m = x[:, ::-1], m[:, ::-1]
    xm, hm = (drop or {}).get("x"), (drop or {}).get("h")
    h = np.zeros((B, u), _F32) if h0 is None else np.asarray(h0, _F32)
    c = (np.zeros((B, u), _F32) if c0 is None else np.asarray(c0, _F32)) if cell == "LSTM" else None
    out = np.zeros((B, u), _F32)
    outs = np.empty((B, T, u), _F32)
    saved = []
    for t in range(T):
        h_new, c_new, s = _cell_forward(cell, x[:, t], h, c, W, U, b, reset_after, xm, hm)
        mt = m[:, t:t + 1]
        h = np.where(mt, h_new, h)
        if c is not None:
            c = np.where(mt, c_new, c)
        out = np.where(mt, h_new, out)
        outs[:, t] = out
        if training:
            saved.append(s)
    cache = {"cell": cell, "saved": saved, "mask": m, "go_backwards": go_backwards, "reset_after": reset_after,
             "in": x.shape[2], "xm": xm, "hm": hm} if training else None
    return outs, h, c, cache


def backward(cache, W, U, use_bias, dy_seq, dy_last, need_dx, dh_last=None, dc_last=None):
    """(dx or None, dW, dU, db or None, dh0, dc0 or None) of ``forward``: dy_seq (B, T, u) in processing order
    or dy_last (B, u), the gradients of the outputs; dh_last / dc_last those of the returned states; dh0 / dc0
    the gradients of the initial state."""
    cell, saved, m, reset_after = cache["cell"], cache["saved"], cache["mask"], cache["reset_after"]
    xm, hm = cache["xm"], cache["hm"]
    B, T = m.shape
    u = U.shape[0]
    W32, U32 = np.asarray(W, _F32), np.asarray(U, _F32)
    dW = np.zeros(W.shape, np.float64)
    dU = np.zeros(U.shape, np.float64)
    db = (np.zeros((2, U.shape[1]) if reset_after and cell == "GRU" else (U.shape[1],), np.float64)
          if use_bias else None)
    dx = np.zeros((B, T, cache["in"]), _F32) if need_dx else None
    # the gradient of the carried state h (and c) after step t
    dh = np.zeros((B, u), _F32) if dh_last is None else np.array(dh_last, _F32)
    dc = (np.zeros((B, u), _F32) if dc_last is None else np.array(dc_last, _F32)) if cell == "LSTM" else None
    dout = np.zeros((B, u), _F32) if dy_last is None else np.asarray(dy_last, _F32).copy()  # of the output chain
    for t in range(T - 1, -1, -1):
        if dy_seq is not None:
            dout = dout + dy_seq[:, t]
        mt = m[:, t:t + 1].astype(_F32)
        dh_new = mt * (dout + dh)
        dc_new = mt * dc if dc is not None else None
        dx_t, dhp, dcp = _cell_backward(cell, saved[t], dh_new.astype(_F32),
                                        None if dc_new is None else dc_new.astype(_F32), W32, U32, dW, dU, db,
                                        reset_after, xm, hm)
        dh = ((1 - mt) * dh + dhp).astype(_F32)
        if dc is not None:
            dc = ((1 - mt) * dc + dcp).astype(_F32)
        dout = ((1 - mt) * dout).astype(_F32)
        if need_dx:
            dx[:, t] = dx_t
    if need_dx and cache["go_backwards"]:
        dx = np.ascontiguousarray(dx[:, ::-1])
    return dx, dW.astype(_F32), dU.astype(_F32), None if db is None else db.astype(_F32), dh, dc

"""Optimizer reference: one Keras 3 step, on float64 copies (inputs are never mutated).

params / grads / state are one array or a list of arrays; results come back the same way.
Order of one step (Keras 3 `apply`): clip the gradients, apply weight decay, then the update.
"""
import numpy as np


def _copies(arrays):
    """(list of float64 copies, was_single)."""
    single = not isinstance(arrays, (list, tuple))
    return [np.array(a, dtype=np.float64) for a in ([arrays] if single else arrays)], single


def _state(arrays, params):
    """float64 copies of an optimizer state, or zeros like params when it is None."""
    return [np.zeros_like(w) for w in params] if arrays is None else _copies(arrays)[0]


def _back(arrays, single):
    return arrays[0] if single else arrays


# --- gradient clipping ------------------------------------------------------------------------

def global_norm(arrays):
    # global_norm = sqrt(sum over all arrays of sum(g^2))
    arrays, _ = _copies(arrays)
    return float(np.sqrt(sum(np.sum(g * g) for g in arrays)))


def clip_by_value(grads, clipvalue):
    # g = clip(g, -v, v)
    grads, single = _copies(grads)
    return _back([np.clip(g, -clipvalue, clipvalue) for g in grads], single)


def clip_by_norm(grads, clipnorm):
    # per array: g = g * clipnorm / max(||g||, clipnorm)
    grads, single = _copies(grads)
    return _back([g * clipnorm / max(global_norm(g), clipnorm) for g in grads], single)


def clip_by_global_norm(grads, global_clipnorm):
    # all arrays: g = g * c / max(global_norm, c); Keras adds (norm - norm) to the scale, so a
    # NaN or infinite global norm makes every clipped gradient NaN
    grads, single = _copies(grads)
    norm = global_norm(grads)
    scale = global_clipnorm / max(norm, global_clipnorm) + (norm - norm)
    return _back([g * scale for g in grads], single)


def clip_gradients(grads, clipvalue=None, clipnorm=None, global_clipnorm=None):
    """At most one of clipvalue / clipnorm / global_clipnorm; returns float64 copies (list)."""
    if sum(option is not None for option in (clipvalue, clipnorm, global_clipnorm)) > 1:
        raise ValueError("at most one of clipvalue, clipnorm, global_clipnorm may be set")
    grads, _ = _copies(grads)
    if clipvalue is not None:
        return clip_by_value(grads, clipvalue)
    if clipnorm is not None:
        return clip_by_norm(grads, clipnorm)
    if global_clipnorm is not None:
        return clip_by_global_norm(grads, global_clipnorm)
    return grads


def _apply_weight_decay(w, learning_rate, weight_decay):
    # w -= w * weight_decay * lr
    if weight_decay is not None:
        w -= w * weight_decay * learning_rate


# --- optimizers -------------------------------------------------------------------------------

def sgd(params, grads, momentums=None, *, learning_rate=0.01, momentum=0.0, nesterov=False,
        weight_decay=None, clipvalue=None, clipnorm=None, global_clipnorm=None):
    """Returns (params, momentums); momentums stays None when it is None and momentum == 0."""
    ws, single = _copies(params)
    gs = clip_gradients(grads, clipvalue, clipnorm, global_clipnorm)
    ms = _state(momentums, ws)
    for w, g, m in zip(ws, gs, ms):
        _apply_weight_decay(w, learning_rate, weight_decay)
        if momentum == 0:
            # w -= lr g
            w -= learning_rate * g
        else:
            # m = momentum m - lr g ; w += (momentum m - lr g) if nesterov else m
            m[...] = momentum * m - learning_rate * g
            w += (momentum * m - learning_rate * g) if nesterov else m
    return _back(ws, single), (None if momentums is None and momentum == 0 else _back(ms, single))


def adam(params, grads, m, v, *, step, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
         amsgrad=False, v_hat=None, weight_decay=None, clipvalue=None, clipnorm=None, global_clipnorm=None):
    """step = t >= 1 (Keras iterations + 1).  Returns (params, m, v, v_hat); v_hat is None unless amsgrad."""
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    ws, single = _copies(params)
    gs = clip_gradients(grads, clipvalue, clipnorm, global_clipnorm)
    ms, vs, vhs = _state(m, ws), _state(v, ws), _state(v_hat, ws)
    # a = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)
    a = learning_rate * np.sqrt(1.0 - beta_2**step) / (1.0 - beta_1**step)
    for w, g, m_, v_, vh in zip(ws, gs, ms, vs, vhs):
        _apply_weight_decay(w, learning_rate, weight_decay)
        m_ += (g - m_) * (1.0 - beta_1)  # m += (g - m)(1 - beta_1)
        v_ += (g * g - v_) * (1.0 - beta_2)  # v += (g^2 - v)(1 - beta_2)
        if amsgrad:
            vh[...] = np.maximum(vh, v_)  # v_hat = max(v_hat, v), used in place of v
        w -= a * m_ / (np.sqrt(vh if amsgrad else v_) + epsilon)  # w -= a m / (sqrt(v) + eps)
    return _back(ws, single), _back(ms, single), _back(vs, single), (_back(vhs, single) if amsgrad else None)


def adamw(params, grads, m, v, *, step, weight_decay=0.004, **kwargs):
    """Adam with decoupled weight decay (Keras 3 AdamW default weight_decay=0.004)."""
    return adam(params, grads, m, v, step=step, weight_decay=weight_decay, **kwargs)


def adamax(params, grads, m, u, *, step, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
           weight_decay=None, clipvalue=None, clipnorm=None, global_clipnorm=None):
    """step = t >= 1.  Returns (params, m, u)."""
    ws, single = _copies(params)
    gs = clip_gradients(grads, clipvalue, clipnorm, global_clipnorm)
    ms, us = _state(m, ws), _state(u, ws)
    for w, g, m_, u_ in zip(ws, gs, ms, us):
        _apply_weight_decay(w, learning_rate, weight_decay)
        m_ += (g - m_) * (1.0 - beta_1)  # m += (g - m)(1 - beta_1)
        u_[...] = np.maximum(beta_2 * u_, np.abs(g))  # u = max(beta_2 u, |g|)
        w -= learning_rate * m_ / ((1.0 - beta_1**step) * (u_ + epsilon))  # w -= lr m / ((1 - b1^t)(u + eps))
    return _back(ws, single), _back(ms, single), _back(us, single)


def lion(params, grads, m, *, learning_rate=0.001, beta_1=0.9, beta_2=0.99, weight_decay=None, clipvalue=None,
         clipnorm=None, global_clipnorm=None):
    """Returns (params, m)."""
    ws, single = _copies(params)
    gs = clip_gradients(grads, clipvalue, clipnorm, global_clipnorm)
    ms = _state(m, ws)
    for w, g, m_ in zip(ws, gs, ms):
        _apply_weight_decay(w, learning_rate, weight_decay)
        w -= learning_rate * np.sign(beta_1 * m_ + (1.0 - beta_1) * g)  # w -= lr sign(b1 m + (1 - b1) g)
        m_[...] = beta_2 * m_ + (1.0 - beta_2) * g  # m = b2 m + (1 - b2) g
    return _back(ws, single), _back(ms, single)


def rmsprop(params, grads, velocities, *, momentums=None, average_grads=None, learning_rate=0.001, rho=0.9,
            momentum=0.0, epsilon=1e-7, centered=False, weight_decay=None,
            clipvalue=None, clipnorm=None, global_clipnorm=None):
    """Returns (params, velocities, momentums, average_grads); unused state stays as given (None stays None)."""
    ws, single = _copies(params)
    gs = clip_gradients(grads, clipvalue, clipnorm, global_clipnorm)
    vs, mbs, ags = _state(velocities, ws), _state(momentums, ws), _state(average_grads, ws)
    for w, g, v, mb, ag in zip(ws, gs, vs, mbs, ags):
        _apply_weight_decay(w, learning_rate, weight_decay)
        v[...] = rho * v + (1.0 - rho) * g * g  # v = rho v + (1 - rho) g^2
        if centered:
            ag[...] = rho * ag + (1.0 - rho) * g  # ag = rho ag + (1 - rho) g
            denominator = v - ag * ag + epsilon  # den = v - ag^2 + eps
        else:
            denominator = v + epsilon  # den = v + eps
        increment = learning_rate * g / np.sqrt(denominator)  # inc = lr g / sqrt(den)
        if momentum > 0:
            mb[...] = momentum * mb + increment  # mb = momentum mb + inc ; w -= mb
            w -= mb
        else:
            w -= increment  # w -= inc
    keep_m = momentum > 0 or momentums is not None
    keep_ag = centered or average_grads is not None
    return (_back(ws, single), _back(vs, single),
            _back(mbs, single) if keep_m else None, _back(ags, single) if keep_ag else None)


def adagrad(params, grads, accumulators, *, learning_rate=0.001, epsilon=1e-7, weight_decay=None,
            clipvalue=None, clipnorm=None, global_clipnorm=None):
    """Returns (params, accumulators).  Keras initial_accumulator_value=0.1 is the caller's init."""
    ws, single = _copies(params)
    gs = clip_gradients(grads, clipvalue, clipnorm, global_clipnorm)
    accs = _copies(accumulators)[0]
    for w, g, acc in zip(ws, gs, accs):
        _apply_weight_decay(w, learning_rate, weight_decay)
        acc += g * g  # acc += g^2
        w -= learning_rate * g / np.sqrt(acc + epsilon)  # w -= lr g / sqrt(acc + eps)
    return _back(ws, single), _back(accs, single)

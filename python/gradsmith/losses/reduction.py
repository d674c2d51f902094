"""Arrays, shapes and Keras's reduction of per-sample losses (keras/src/losses/loss.py).

``squeeze_or_expand_to_same_rank`` and the shape rules every loss applies to
``y_true`` / ``y_pred`` before its formula; ``_Plan``, Keras's
``apply_mask`` + ``reduce_weighted_values`` written as ``sum(W * L) / divisor``
so that the kernel path and the NumPy path reduce alike.
"""
import contextlib
import contextvars

import numpy as np

from gradsmith import ops

__all__ = ["EPSILON", "squeeze_or_expand_to_same_rank", "standardize_reduction"]

EPSILON = 1e-7  # keras.backend.epsilon()
_F32 = np.float32
_REDUCTIONS = ("sum_over_batch_size", "sum", None, "none", "mean", "mean_with_sample_weight")

# x as a float32 array (Keras ``convert_to_tensor(x, 'float32')``); TypeError naming x for non-numbers.
_f32 = ops._as_f32


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """Keras: squeeze or expand the last axis when the ranks differ by exactly 1."""
    x1 = np.asarray(x1)
    x2 = np.asarray(x2)
    if x1.ndim == x2.ndim:
        return x1, x2
    if x1.ndim == x2.ndim + 1 and x1.shape[-1] == 1:
        if x2.ndim == 1 and expand_rank_1:
            x2 = x2[..., None]
        else:
            x1 = x1[..., 0]
    if x2.ndim == x1.ndim + 1 and x2.shape[-1] == 1:
        if x1.ndim == 1 and expand_rank_1:
            x1 = x1[..., None]
        else:
            x2 = x2[..., 0]
    return x1, x2


def _same_shape(y_true, y_pred, what, broadcast=True):
    """Keras's rank rule, then y_true must have y_pred's shape (the regression losses, which Keras computes
    with broadcasting arithmetic, also take a y_true that broadcasts to it)."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    if y_true.shape != y_pred.shape:
        try:
            if not broadcast:
                raise ValueError
            y_true = np.broadcast_to(y_true, y_pred.shape)
        except ValueError:
            raise ValueError(f"{what}: y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}") from None
    return y_true, y_pred


def _broadcast_pair(y_true, y_pred, what):
    """float32 y_true and y_pred for a function that Keras writes as plain arithmetic, with no rank rule:
    the shapes broadcast against each other (labels (N,) with predictions (N, 1) give an (N, N) grid, as
    in Keras). The Loss classes apply the rank rule before they call the function."""
    y_true, y_pred = _f32(y_true, "y_true"), _f32(y_pred, "y_pred")
    try:
        np.broadcast_shapes(y_true.shape, y_pred.shape)
    except ValueError:
        raise ValueError(f"{what}: y_true of shape {y_true.shape} and y_pred of shape {y_pred.shape} do not "
                         "broadcast") from None
    return y_true, y_pred


def _regression_pair(y_true, y_pred, name):
    return _same_shape(_f32(y_true, "y_true"), _f32(y_pred, "y_pred"), name)


def _sparse_labels(y_true, y_pred):
    """Keras's sparse rule: labels of shape y_pred.shape[:-1], or that plus a trailing 1."""
    labels = np.asarray(y_true)
    if labels.dtype.kind not in "biuf":
        raise TypeError(f"y_true: expected integer class labels, got dtype {labels.dtype}")
    if y_pred.ndim < 1:
        raise ValueError(f"y_pred: expected class scores on the last axis, got shape {y_pred.shape}")
    if labels.ndim == y_pred.ndim and labels.shape[-1:] == (1,):
        labels = labels[..., 0]
    if labels.shape != y_pred.shape[:-1]:
        raise ValueError(f"y_true: expected labels of shape {y_pred.shape[:-1]} (or with a trailing 1) for y_pred of "
                         f"shape {y_pred.shape}, got shape {np.shape(y_true)}")
    return labels


def _check_labels(labels, num_classes):
    flat = labels.reshape(-1)
    if flat.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(flat) | (flat != np.floor(flat)))
        if bad.size:
            raise ValueError(f"y_true: label {flat[bad[0]]} at index {int(bad[0])} is not an integer class index")
    bad = np.flatnonzero((flat < 0) | (flat >= num_classes))
    if bad.size:
        raise ValueError(f"y_true: label {flat[bad[0]]} at index {int(bad[0])} is outside [0, {num_classes})")
    return labels.astype(np.int64)


def _check_axis(axis, what):
    if axis not in (-1, None):
        raise NotImplementedError(f"{what}: only axis=-1 (the last axis) is supported, got axis={axis}")


# Reduction (keras/src/losses/loss.py: apply_mask, reduce_weighted_values)
# The Keras mask of y_pred (Keras reads ``y_pred._keras_mask``; a NumPy array has no such attribute, so the model
# sets it here around its loss call): every reduction planned meanwhile skips its False entries.
_Y_PRED_MASK = contextvars.ContextVar("gradsmith_y_pred_mask", default=None)


@contextlib.contextmanager
def y_pred_mask(mask):
    """Within: the losses reduce as Keras does for a y_pred carrying ``mask`` (None: no mask)."""
    token = _Y_PRED_MASK.set(None if mask is None else np.asarray(mask, bool))
    try:
        yield
    finally:
        _Y_PRED_MASK.reset(token)


def _with_y_pred_mask(S, mask):
    """Keras Loss.__call__: the loss's own mask (ignore_class) and y_pred's mask, ANDed, on the losses' shape."""
    in_mask = _Y_PRED_MASK.get()
    if in_mask is None:
        return mask
    if in_mask.shape != tuple(S):
        in_mask = np.asarray(squeeze_or_expand_to_same_rank(in_mask, np.empty(S, bool))[0])
        if in_mask.shape != tuple(S):
            raise ValueError(f"the mask of y_pred has shape {in_mask.shape}, which does not fit the per-sample "
                             f"losses of shape {tuple(S)}")
    return in_mask if mask is None else (np.asarray(mask, bool) & in_mask)
def standardize_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"Invalid value for argument `reduction`. Expected one of {set(_REDUCTIONS)}. Received: "
                         f"reduction={reduction}")
    return reduction


def _shape_squeeze_or_expand(values_shape, sw):
    """squeeze_or_expand_to_same_rank(values, sw) on values' shape only: (new values shape, new sw)."""
    vnd = len(values_shape)
    if vnd == sw.ndim:
        return values_shape, sw
    if vnd == sw.ndim + 1 and values_shape[-1:] == (1,):
        if sw.ndim == 1:
            sw = sw[..., None]
        else:
            values_shape = values_shape[:-1]
    if sw.ndim == vnd + 1 and sw.shape[-1] == 1:
        if vnd == 1:
            values_shape = values_shape + (1,)
        else:
            sw = sw[..., 0]
    return values_shape, sw


class _Plan:
    """Keras's reduction of per-sample losses L of shape S, written as ``value = sum(W * L) / divisor``.

    ``W``: per-loss weights of shape S (None: all 1); ``divisor``: 1 ('sum'), the number of weighted
    values ('sum_over_batch_size', 'mean'), or the sum of the sample weights ('mean_with_sample_weight');
    ``inf`` stands for Keras's divide_no_nan by 0. ``none(L)`` gives reduction='none''s array.
    """

    def __init__(self, S, sample_weight, mask, reduction):
        self.S = tuple(S)
        reduction = "sum" if reduction in (None, "none") else reduction
        sw = None if sample_weight is None else _f32(sample_weight, "sample_weight")
        mask = _with_y_pred_mask(self.S, mask)
        if mask is not None:
            # Keras apply_mask: for 'mean' / 'sum_over_batch_size' the valid entries weigh total / valid
            m = mask.astype(_F32)
            if reduction in ("mean", "sum_over_batch_size"):
                valid = m.sum(dtype=np.float64)
                m = m * _F32(m.size / valid if valid else 0.0)
            if sw is not None:
                m, sw = squeeze_or_expand_to_same_rank(m, sw)
                sw = sw * m
            else:
                sw = m
        self.values_shape, self.sw = self.S, sw
        size = int(np.prod(self.S, dtype=np.int64))
        if sw is None:
            self.W = None
            # Keras returns a scalar loss unreduced; otherwise sum, or sum / count
            self.divisor = 1.0 if (self.S == () or reduction == "sum") else float(size)
            return
        vshape, sw2 = _shape_squeeze_or_expand(self.S, sw)
        try:
            full_shape = np.broadcast_shapes(vshape, sw2.shape)
        except ValueError:
            # Leniency: per-sample weights (N,) against per-sample losses (N, T) weigh every t alike.
            if sw2.ndim < len(vshape) and vshape[:sw2.ndim] == sw2.shape:
                sw2 = sw2.reshape(sw2.shape + (1,) * (len(vshape) - sw2.ndim))
                full_shape = np.broadcast_shapes(vshape, sw2.shape)
            else:
                raise ValueError(f"sample_weight of shape {np.shape(sample_weight)} does not fit the per-sample "
                                 f"losses of shape {self.S}") from None
        self.values_shape, self.sw = vshape, sw2
        full = np.broadcast_to(sw2, full_shape)
        padded = (1,) * (len(full_shape) - len(vshape)) + tuple(vshape)
        axes = tuple(a for a in range(len(full_shape)) if padded[a] == 1 and full_shape[a] != 1)
        W = full.sum(axis=axes, keepdims=True, dtype=np.float64) if axes else full.astype(np.float64)
        self.W = W.reshape(self.S)
        if full_shape == ():
            self.divisor = 1.0  # a scalar weighted loss is returned unreduced
        elif reduction == "sum":
            self.divisor = 1.0
        elif reduction == "mean_with_sample_weight":
            total = float(np.sum(sw2, dtype=np.float64))
            self.divisor = total if total != 0.0 else np.inf
        else:
            count = int(np.prod(full_shape, dtype=np.int64))
            self.divisor = float(count) if count else np.inf

    def value(self, L):
        L = np.asarray(L, dtype=np.float64)
        total = np.sum(L) if self.W is None else np.sum(self.W * L)
        return float(total / self.divisor) if np.isfinite(self.divisor) else 0.0

    def none(self, L):
        """reduction='none': the weighted per-sample losses, float32."""
        L = np.asarray(L, dtype=_F32)
        if self.sw is None:
            return L
        return np.asarray(L.reshape(self.values_shape) * self.sw, dtype=_F32)

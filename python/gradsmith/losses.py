"""gradsmith.losses: Keras 3 losses.

Loss objects (``MeanSquaredError()``, ``BinaryCrossentropy(from_logits=True)``,
...) return a Python float from ``loss(y_true, y_pred, sample_weight=None)``
and ``(value, grad)`` from ``loss.value_and_grad(...)``, with ``grad`` the
float32 gradient of the value with respect to ``y_pred``. For the six losses
with a kernel both come from ONE ``ops.loss_and_grad`` call (Keras's
'sum_over_batch_size' value); the other reductions rescale it exactly as
Keras's ``reduce_weighted_values`` reduces the per-sample losses.

Functions (``mean_squared_error(y_true, y_pred)``, ...) return the per-sample
loss array as Keras's do, computed with NumPy in float32.

Keras 3 rules kept here (keras/src/losses/loss.py, losses.py):
 - ``y_true`` and ``y_pred`` are first brought to the same rank by
   ``squeeze_or_expand_to_same_rank`` (labels (N,) against predictions (N, 1)
   become (N, 1));
 - a per-sample loss is the mean (the sum for the categorical cross-entropies)
   over the last axis, so (N, C) predictions give N losses, (N, T, C) give
   N*T, and 1-D predictions give ONE (scalar) loss, as in Keras;
 - reductions: 'sum_over_batch_size' / 'mean' divide the weighted sum by the
   number of weighted values, 'sum' does not divide, 'mean_with_sample_weight'
   divides by the sum of the sample weights, 'none' / None returns the
   weighted per-sample array (``value_and_grad`` then differentiates its sum).
"""
import collections
import inspect
import re
import warnings

import numpy as np

from gradsmith import ops

__all__ = [
    "Loss", "LossFunctionWrapper", "MeanSquaredError", "MeanAbsoluteError", "Huber", "BinaryCrossentropy",
    "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "mean_squared_error", "mean_absolute_error", "huber",
    "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy", "mse", "mae", "MSE", "MAE",
    "Hinge", "SquaredHinge", "LogCosh", "Poisson", "MeanSquaredLogarithmicError", "MeanAbsolutePercentageError",
    "KLDivergence", "CategoricalHinge", "CosineSimilarity", "categorical_hinge", "cosine_similarity", "hinge", "squared_hinge", "log_cosh", "poisson", "mean_squared_logarithmic_error",
    "mean_absolute_percentage_error", "kl_divergence", "msle", "mape", "kld", "MSLE", "MAPE", "KLD",
    "get", "serialize", "deserialize", "squeeze_or_expand_to_same_rank",
]

EPSILON = 1e-7  # keras.backend.epsilon()
_F32 = np.float32
_REDUCTIONS = ("sum_over_batch_size", "sum", None, "none", "mean", "mean_with_sample_weight")


# --------------------------------------------------------------------------- #
# Names (keras/src/utils/naming.py): auto_name = uniquify(to_snake_case(class name))
# --------------------------------------------------------------------------- #
_NAME_UIDS = collections.defaultdict(int)


def _to_snake_case(name):
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def _auto_name(prefix):
    """Keras ``auto_name``: 'precision', then 'precision_1', 'precision_2', ... for later objects."""
    name = _to_snake_case(prefix)
    unique = f"{name}_{_NAME_UIDS[name]}" if name in _NAME_UIDS else name
    _NAME_UIDS[name] += 1
    return unique


def _clear_names():
    """Forget the names handed out (what ``keras.backend.clear_session()`` does to them)."""
    _NAME_UIDS.clear()


# --------------------------------------------------------------------------- #
# Arrays and shapes
# --------------------------------------------------------------------------- #
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


# --------------------------------------------------------------------------- #
# Per-sample loss functions (Keras 3 formulas, NumPy float32)
# --------------------------------------------------------------------------- #
def mean_squared_error(y_true, y_pred):
    """Per-sample ``mean(square(y_true - y_pred), axis=-1)``."""
    y_true, y_pred = _same_shape(_f32(y_true, "y_true"), _f32(y_pred, "y_pred"), "mean_squared_error")
    # Keras: mean(square(y_true - y_pred), axis=-1)
    return np.asarray(np.mean(np.square(y_true - y_pred), axis=-1), dtype=_F32)


def mean_absolute_error(y_true, y_pred):
    """Per-sample ``mean(abs(y_true - y_pred), axis=-1)``."""
    y_true, y_pred = _same_shape(_f32(y_true, "y_true"), _f32(y_pred, "y_pred"), "mean_absolute_error")
    # Keras: mean(abs(y_true - y_pred), axis=-1)
    return np.asarray(np.mean(np.abs(y_true - y_pred), axis=-1), dtype=_F32)


def huber(y_true, y_pred, delta=1.0):
    """Per-sample Huber loss: ``mean(0.5 e^2 if |e| <= delta else delta |e| - 0.5 delta^2, axis=-1)``,
    ``e = y_pred - y_true``."""
    y_true, y_pred = _same_shape(_f32(y_true, "y_true"), _f32(y_pred, "y_pred"), "huber")
    delta = _F32(delta)
    half = _F32(0.5)
    # Keras: e = y_pred - y_true; mean(where(|e| <= delta, 0.5 e^2, delta |e| - 0.5 delta^2), axis=-1)
    error = y_pred - y_true
    abs_error = np.abs(error)
    per_elem = np.where(abs_error <= delta, half * np.square(error), delta * abs_error - half * np.square(delta))
    return np.asarray(np.mean(per_elem, axis=-1), dtype=_F32)


def _regression_pair(y_true, y_pred, name):
    return _same_shape(_f32(y_true, "y_true"), _f32(y_pred, "y_pred"), name)


def hinge(y_true, y_pred):
    """Per-sample ``mean(maximum(1 - y_true * y_pred, 0), axis=-1)``; 0/1 targets become -1/1 (Keras 3)."""
    y_true, y_pred = _regression_pair(y_true, y_pred, "hinge")
    y_true = ops.hinge_labels(y_true)
    return np.asarray(np.mean(np.maximum(_F32(1.0) - y_true * y_pred, _F32(0.0)), axis=-1), dtype=_F32)


def squared_hinge(y_true, y_pred):
    """Per-sample ``mean(square(maximum(1 - y_true * y_pred, 0)), axis=-1)``; 0/1 targets become -1/1."""
    y_true, y_pred = _regression_pair(y_true, y_pred, "squared_hinge")
    y_true = ops.hinge_labels(y_true)
    return np.asarray(np.mean(np.square(np.maximum(_F32(1.0) - y_true * y_pred, _F32(0.0))), axis=-1), dtype=_F32)


def log_cosh(y_true, y_pred):
    """Per-sample ``mean(log(cosh(y_pred - y_true)), axis=-1)``."""
    y_true, y_pred = _regression_pair(y_true, y_pred, "log_cosh")
    x = (y_pred - y_true).astype(np.float64)
    # Keras: x + softplus(-2x) - log(2); the same function, without its cancellation near 0
    per_elem = np.abs(x) + np.log1p(np.exp(-2.0 * np.abs(x))) - np.log(2.0)
    small = np.abs(x) < 10.0
    per_elem = np.where(small, np.log1p(2.0 * np.sinh(0.5 * np.where(small, x, 0.0)) ** 2), per_elem)
    return np.asarray(np.mean(per_elem, axis=-1), dtype=_F32)


def poisson(y_true, y_pred):
    """Per-sample ``mean(y_pred - y_true * log(y_pred + eps), axis=-1)``."""
    y_true, y_pred = _regression_pair(y_true, y_pred, "poisson")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.mean(y_pred - y_true * np.log(y_pred + _F32(EPSILON)), axis=-1), dtype=_F32)


def mean_squared_logarithmic_error(y_true, y_pred):
    """Per-sample ``mean(square(log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1)), axis=-1)``."""
    y_true, y_pred = _regression_pair(y_true, y_pred, "mean_squared_logarithmic_error")
    eps = _F32(EPSILON)
    d = np.log(np.maximum(y_pred, eps) + _F32(1.0)) - np.log(np.maximum(y_true, eps) + _F32(1.0))
    return np.asarray(np.mean(np.square(d), axis=-1), dtype=_F32)


def mean_absolute_percentage_error(y_true, y_pred):
    """Per-sample ``100 * mean(abs((y_true - y_pred) / max(abs(y_true), eps)), axis=-1)``."""
    y_true, y_pred = _regression_pair(y_true, y_pred, "mean_absolute_percentage_error")
    diff = np.abs((y_true - y_pred) / np.maximum(np.abs(y_true), _F32(EPSILON)))
    return np.asarray(_F32(100.0) * np.mean(diff, axis=-1), dtype=_F32)


def kl_divergence(y_true, y_pred):
    """Per-sample ``sum(t * log(t / p), axis=-1)`` with t and p clipped to [eps, 1] (Keras 3)."""
    y_true, y_pred = _regression_pair(y_true, y_pred, "kl_divergence")
    t = np.clip(y_true, _F32(EPSILON), _F32(1.0))
    p = np.clip(y_pred, _F32(EPSILON), _F32(1.0))
    return np.asarray(np.sum(t * np.log(t / p), axis=-1), dtype=_F32)


def categorical_hinge(y_true, y_pred):
    """Per-sample ``maximum(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`` (Keras 3)."""
    y_true, y_pred = _regression_pair(y_true, y_pred, "categorical_hinge")
    pos = np.sum(y_true * y_pred, axis=-1)
    neg = np.max((_F32(1.0) - y_true) * y_pred, axis=-1)
    return np.asarray(np.maximum(neg - pos + _F32(1.0), _F32(0.0)), dtype=_F32)


def _l2_normalize(x):
    """x / max(||x||, eps) along the last axis (Keras's ops.normalize)."""
    norm = np.sqrt(np.sum(np.square(x.astype(np.float64)), axis=-1, keepdims=True))
    return (x / np.maximum(norm, EPSILON)).astype(_F32)


def cosine_similarity(y_true, y_pred, axis=-1):
    """Per-sample ``-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis=-1)`` (Keras 3's loss)."""
    _check_axis(axis, "cosine_similarity")
    y_true, y_pred = _regression_pair(y_true, y_pred, "cosine_similarity")
    return np.asarray(-np.sum(_l2_normalize(y_true) * _l2_normalize(y_pred), axis=-1), dtype=_F32)


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return np.where(x >= 0, _F32(1.0) / (_F32(1.0) + np.exp(-x)), np.exp(x) / (_F32(1.0) + np.exp(x)))


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample binary cross-entropy, ``mean(..., axis=-1)``.

    Probabilities are clipped to ``[eps, 1 - eps]`` (eps = 1e-7, in float32);
    logits use ``max(x, 0) - x t + log1p(exp(-|x|))``.
    """
    _check_axis(axis, "binary_crossentropy")
    y_pred = _f32(y_pred, "y_pred")
    y_true = _f32(y_true, "y_true")
    if label_smoothing:
        # Keras: y_true = y_true * (1 - label_smoothing) + 0.5 * label_smoothing
        y_true = y_true * _F32(1.0 - label_smoothing) + _F32(0.5 * label_smoothing)
    y_true, y_pred = _same_shape(y_true, y_pred, "binary_crossentropy", broadcast=False)
    if from_logits:
        # Keras (sigmoid_cross_entropy_with_logits): max(x, 0) - x t + log(1 + exp(-|x|))
        per_elem = np.maximum(y_pred, _F32(0.0)) - y_pred * y_true + np.log1p(np.exp(-np.abs(y_pred)))
    else:
        # Keras: p = clip(p, eps, 1 - eps); -(t log p + (1 - t) log(1 - p))
        p = np.clip(y_pred, _F32(EPSILON), _F32(1.0 - EPSILON))
        per_elem = -(y_true * np.log(p) + (_F32(1.0) - y_true) * np.log(_F32(1.0) - p))
    return np.asarray(np.mean(per_elem, axis=-1), dtype=_F32)


def _log_softmax(x):
    m = np.max(x, axis=-1, keepdims=True)
    shifted = x - m
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample categorical cross-entropy, ``-sum(t log q, axis=-1)``.

    Probabilities are renormalized (``q = p / sum(p)``) and clipped to
    ``[eps, 1 - eps]``; logits use ``log_softmax``.
    """
    if isinstance(axis, bool):
        raise ValueError(f"`axis` must be of type `int`. Received: axis={axis} of type {type(axis)}")
    _check_axis(axis, "categorical_crossentropy")
    y_pred = _f32(y_pred, "y_pred")
    y_true = _f32(y_true, "y_true")
    if y_pred.ndim >= 1 and y_pred.shape[-1] == 1:
        warnings.warn("In loss categorical_crossentropy, expected y_pred.shape to be (batch_size, num_classes) with "
                      f"num_classes > 1. Received: y_pred.shape={y_pred.shape}. Consider using 'binary_crossentropy' "
                      "if you only have 2 classes.", SyntaxWarning, stacklevel=2)
    if label_smoothing:
        # Keras: y_true = y_true * (1 - label_smoothing) + label_smoothing / num_classes
        num_classes = _F32(y_true.shape[-1])
        y_true = y_true * _F32(1.0 - label_smoothing) + _F32(label_smoothing) / num_classes
    if y_true.shape != y_pred.shape:
        raise ValueError(f"Arguments `target` and `output` must have the same shape. Received: "
                         f"target.shape={y_true.shape}, output.shape={y_pred.shape}")
    return _categorical_from_onehot(y_true, y_pred, from_logits)


def _categorical_from_onehot(target, output, from_logits):
    if from_logits:
        # Keras (softmax_cross_entropy_with_logits): -sum(t * log_softmax(x))
        return np.asarray(-np.sum(target * _log_softmax(output), axis=-1), dtype=_F32)
    # Keras: q = p / sum(p); q = clip(q, eps, 1 - eps); -sum(t log q)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = output / np.sum(output, axis=-1, keepdims=True)
    q = np.clip(q, _F32(EPSILON), _F32(1.0 - EPSILON))
    return np.asarray(-np.sum(target * np.log(q), axis=-1), dtype=_F32)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    """Per-sample cross-entropy against integer labels (``-log q[label]``); labels equal to
    ``ignore_class`` give 0."""
    _check_axis(axis, "sparse_categorical_crossentropy")
    y_pred = _f32(y_pred, "y_pred")
    labels = _sparse_labels(y_true, y_pred)
    valid = None
    if ignore_class is not None:
        # Keras: labels == ignore_class give a 0 loss (and are masked out of the reduction)
        valid = labels != ignore_class
        labels = np.where(valid, labels, 0)
    labels = _check_labels(labels, y_pred.shape[-1])
    onehot = (labels[..., None] == np.arange(y_pred.shape[-1])).astype(_F32)
    res = _categorical_from_onehot(onehot, y_pred, from_logits)
    if valid is not None:
        res = np.where(valid, res, _F32(0.0)).astype(_F32)
    return res


def _check_axis(axis, what):
    if axis not in (-1, None):
        raise NotImplementedError(f"{what}: only axis=-1 (the last axis) is supported, got axis={axis}")


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
msle = MSLE = mean_squared_logarithmic_error
mape = MAPE = mean_absolute_percentage_error
kld = KLD = kl_divergence


# --------------------------------------------------------------------------- #
# Reduction (keras/src/losses/loss.py: apply_mask, reduce_weighted_values)
# --------------------------------------------------------------------------- #
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


# --------------------------------------------------------------------------- #
# Loss classes
# --------------------------------------------------------------------------- #
class Loss:
    """Keras 3 loss base: subclasses implement ``call(y_true, y_pred)`` returning per-sample losses.

    ``__call__`` reduces them (a float; reduction 'none' gives the array);
    ``value_and_grad`` also returns d value / d y_pred (float32, shaped like
    y_pred). Built-in losses compute both in the ``ops.loss_and_grad`` kernel;
    a custom ``call`` is differentiated numerically (central differences in
    float64, one pair of calls per column when each sample's loss depends on
    its own row only).
    """

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        self.name = name or _auto_name(self.__class__.__name__)
        self.reduction = standardize_reduction(reduction)
        self._dtype = dtype or "float32"

    @property
    def dtype(self):
        return self._dtype

    def call(self, y_true, y_pred):
        raise NotImplementedError

    # -- kernel hook: (kernel name, kernel kwargs) or None
    def _kernel_spec(self):
        return None

    def __call__(self, y_true, y_pred, sample_weight=None):
        if self.reduction in (None, "none"):
            L, mask = self._per_sample(y_true, y_pred)
            return _Plan(L.shape, sample_weight, mask, self.reduction).none(L)
        if self._kernel_spec() is not None:
            return self._kernel_value_and_grad(y_true, y_pred, sample_weight)[0]
        L, mask = self._per_sample(y_true, y_pred)
        return _Plan(L.shape, sample_weight, mask, self.reduction).value(L)

    def value_and_grad(self, y_true, y_pred, sample_weight=None):
        """(value, dvalue/dy_pred). Reduction 'none' differentiates the sum of the per-sample losses."""
        if self._kernel_spec() is not None:
            return self._kernel_value_and_grad(y_true, y_pred, sample_weight)
        return self._numeric_value_and_grad(y_true, y_pred, sample_weight)

    def _per_sample(self, y_true, y_pred):
        """(per-sample losses, mask or None), float32, as Keras's ``call``."""
        return np.asarray(self.call(_f32(y_true, "y_true"), _f32(y_pred, "y_pred")), dtype=_F32), None

    # -- the kernel path
    def _kernel_value_and_grad(self, y_true, y_pred, sample_weight):
        kernel, kwargs = self._kernel_spec()
        pred = _f32(y_pred, "y_pred")
        mask = None
        if kernel == "sparse_categorical_crossentropy":
            true, p = squeeze_or_expand_to_same_rank(np.asarray(y_true), pred)
            if p.ndim < 2:
                raise ValueError(f"{self.name}: y_pred must have a class axis, got shape {pred.shape}")
            labels = _sparse_labels(true, p)
            ignore_class = kwargs.pop("ignore_class", None)
            if ignore_class is not None:
                mask = labels != ignore_class
                labels = np.where(mask, labels, 0)
            S = p.shape[:-1]
            t2 = labels.reshape(-1)
        else:
            true, p = _same_shape(_f32(y_true, "y_true"), pred, self.name, broadcast=not kernel.endswith("entropy"))
            if p.ndim == 0:
                raise ValueError(f"{self.name}: y_pred must be at least 1-D, got a scalar")
            S = p.shape[:-1] if p.ndim >= 2 else ()  # 1-D predictions: ONE loss over all entries (Keras)
            t2 = true.reshape(-1, p.shape[-1])
        p2 = p.reshape(-1, p.shape[-1])
        plan = _Plan(S, sample_weight, mask, self.reduction)
        rows = p2.shape[0]
        if rows == 0 or p2.shape[1] == 0:
            return 0.0, np.zeros(pred.shape, dtype=_F32)
        weights = None
        if plan.W is not None and S != ():
            weights = plan.W.reshape(-1).astype(_F32)
        # ops.loss_and_grad: value_k = sum_i w_i L_i / rows, grad_k = w_i dL_i/dp / rows (sum_over_batch_size)
        value, grad = ops.loss_and_grad(kernel, t2, p2, sample_weight=weights, **kwargs)
        # Keras: value = sum(W L) / divisor  =>  value_k * rows / divisor (a scalar loss: times its weight)
        scale = (rows / plan.divisor) if np.isfinite(plan.divisor) else 0.0
        if S == () and plan.W is not None:
            scale *= float(plan.W)
        if scale != 1.0:
            value = value * scale
            grad *= _F32(scale)
        return float(value), grad.reshape(pred.shape)

    # -- the numeric path (custom losses)
    def _numeric_value_and_grad(self, y_true, y_pred, sample_weight):
        pred = _f32(y_pred, "y_pred")
        L32, mask = self._per_sample(y_true, pred)
        plan = _Plan(L32.shape, sample_weight, mask, self.reduction)
        value = plan.value(L32)
        true64 = np.asarray(y_true, dtype=np.float64)
        p64 = pred.astype(np.float64)

        def per_sample(p):
            return np.asarray(self.call(true64, p), dtype=np.float64)

        grad = np.zeros(p64.shape, dtype=np.float64)
        S = L32.shape
        if len(S) >= 1 and p64.shape[:len(S)] == S and p64.size:
            # each loss depends on its own row only: perturb one column of every row at once
            rows = int(np.prod(S, dtype=np.int64))
            pr = p64.reshape(rows, -1)
            g = grad.reshape(rows, -1)
            for j in range(pr.shape[1]):
                h = 1e-4 * np.maximum(1.0, np.abs(pr[:, j]))
                up, down = pr.copy(), pr.copy()
                up[:, j] += h
                down[:, j] -= h
                d = (per_sample(up.reshape(p64.shape)).reshape(rows)
                     - per_sample(down.reshape(p64.shape)).reshape(rows)) / (2.0 * h)
                g[:, j] = d if plan.W is None else plan.W.reshape(rows) * d
            grad = g.reshape(p64.shape) / plan.divisor if np.isfinite(plan.divisor) else np.zeros_like(p64)
        else:
            flat = p64.reshape(-1)
            for k in range(flat.size):
                h = 1e-4 * max(1.0, abs(flat[k]))
                up, down = flat.copy(), flat.copy()
                up[k] += h
                down[k] -= h
                grad.reshape(-1)[k] = (plan.value(per_sample(up.reshape(p64.shape)))
                                       - plan.value(per_sample(down.reshape(p64.shape)))) / (2.0 * h)
        return value, grad.astype(_F32)

    # -- config
    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{self.__class__.__name__} name={self.name!r} reduction={self.reduction!r}>"


class LossFunctionWrapper(Loss):
    """A per-sample loss function ``fn(y_true, y_pred, **kwargs)`` as a Loss (Keras 3).

    Wrapping one of this module's functions uses its kernel; any other
    function is differentiated numerically.
    """

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true, y_pred):
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def _per_sample(self, y_true, y_pred):
        if self.fn is sparse_categorical_crossentropy and self._fn_kwargs.get("ignore_class") is not None:
            pred = _f32(y_pred, "y_pred")
            true, pred = squeeze_or_expand_to_same_rank(np.asarray(y_true), pred)
            mask = _sparse_labels(true, pred) != self._fn_kwargs["ignore_class"]
            return np.asarray(self.call(true, pred), dtype=_F32), mask
        return super()._per_sample(y_true, y_pred)

    def _kernel_spec(self):
        kernel = _KERNELS.get(self.fn)
        if kernel is None:
            return None
        allowed = {"from_logits", "label_smoothing", "delta", "ignore_class"}
        kwargs = {k: v for k, v in self._fn_kwargs.items() if k != "axis"}
        if set(kwargs) - allowed:
            return None
        return kernel, kwargs

    def get_config(self):
        config = super().get_config()
        config["fn"] = _serialize_function(self.fn)
        config.update(self._fn_kwargs)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "fn" in config and not callable(config["fn"]):
            config["fn"] = _deserialize_function(config["fn"])
        return cls(**config)

    def __repr__(self):
        return f"<LossFunctionWrapper({getattr(self.fn, '__name__', self.fn)}, kwargs={self._fn_kwargs})>"


class MeanSquaredError(LossFunctionWrapper):
    """``mean(square(y_true - y_pred), axis=-1)`` per sample (Keras 3)."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, name=name, reduction=reduction, dtype=dtype)

    def get_config(self):
        return Loss.get_config(self)

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class MeanAbsoluteError(LossFunctionWrapper):
    """``mean(abs(y_true - y_pred), axis=-1)`` per sample (Keras 3)."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, name=name, reduction=reduction, dtype=dtype)

    def get_config(self):
        return Loss.get_config(self)

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Huber(LossFunctionWrapper):
    """Huber loss with threshold ``delta`` (Keras 3)."""

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss", dtype=None):
        super().__init__(huber, name=name, reduction=reduction, dtype=dtype, delta=delta)
        self.delta = delta

    def get_config(self):
        config = Loss.get_config(self)
        config["delta"] = self.delta  # (Keras 3 omits it, so its round trip loses delta; kept here)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class BinaryCrossentropy(LossFunctionWrapper):
    """Binary cross-entropy (Keras 3): ``from_logits``, ``label_smoothing`` (targets become
    ``t (1 - ls) + 0.5 ls``)."""

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="binary_crossentropy", dtype=None):
        _check_axis(axis, "BinaryCrossentropy")
        super().__init__(binary_crossentropy, name=name, reduction=reduction, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis

    def get_config(self):
        config = Loss.get_config(self)
        config.update({"from_logits": self.from_logits, "label_smoothing": self.label_smoothing, "axis": self.axis})
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class CategoricalCrossentropy(LossFunctionWrapper):
    """Categorical cross-entropy on one-hot targets (Keras 3): ``from_logits``,
    ``label_smoothing`` (targets become ``t (1 - ls) + ls / C``)."""

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="categorical_crossentropy", dtype=None):
        _check_axis(axis, "CategoricalCrossentropy")
        super().__init__(categorical_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis

    def get_config(self):
        config = Loss.get_config(self)
        config.update({"from_logits": self.from_logits, "label_smoothing": self.label_smoothing, "axis": self.axis})
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class SparseCategoricalCrossentropy(LossFunctionWrapper):
    """Categorical cross-entropy on integer labels (Keras 3): ``from_logits``, ``ignore_class``."""

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(sparse_categorical_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         from_logits=from_logits, ignore_class=ignore_class)
        self.from_logits = from_logits
        self.ignore_class = ignore_class

    def get_config(self):
        config = Loss.get_config(self)
        config.update({"from_logits": self.from_logits, "ignore_class": self.ignore_class})
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _simple_loss_class(fn, class_name, default_name, doc):
    """A Keras 3 loss class over one of this module's functions, with no arguments of its own."""

    def __init__(self, reduction="sum_over_batch_size", name=default_name, dtype=None):
        LossFunctionWrapper.__init__(self, fn, name=name, reduction=reduction, dtype=dtype)

    def get_config(self):
        return Loss.get_config(self)

    return type(class_name, (LossFunctionWrapper,), {
        "__init__": __init__, "get_config": get_config, "from_config": classmethod(lambda cls, c: cls(**c)),
        "__doc__": doc, "__module__": __name__})


Hinge = _simple_loss_class(hinge, "Hinge", "hinge", "``mean(maximum(1 - y_true * y_pred, 0))`` (Keras 3).")
SquaredHinge = _simple_loss_class(squared_hinge, "SquaredHinge", "squared_hinge",
                                  "``mean(square(maximum(1 - y_true * y_pred, 0)))`` (Keras 3).")
LogCosh = _simple_loss_class(log_cosh, "LogCosh", "log_cosh", "``mean(log(cosh(y_pred - y_true)))`` (Keras 3).")
Poisson = _simple_loss_class(poisson, "Poisson", "poisson", "``mean(y_pred - y_true * log(y_pred + eps))``.")
MeanSquaredLogarithmicError = _simple_loss_class(
    mean_squared_logarithmic_error, "MeanSquaredLogarithmicError", "mean_squared_logarithmic_error",
    "``mean(square(log(y_pred + 1) - log(y_true + 1)))`` (Keras 3, values below eps taken as eps).")
MeanAbsolutePercentageError = _simple_loss_class(
    mean_absolute_percentage_error, "MeanAbsolutePercentageError", "mean_absolute_percentage_error",
    "``100 * mean(abs((y_true - y_pred) / y_true))`` (Keras 3, |y_true| at least eps).")
CategoricalHinge = _simple_loss_class(
    categorical_hinge, "CategoricalHinge", "categorical_hinge",
    "``maximum(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`` (Keras 3).")


class CosineSimilarity(LossFunctionWrapper):
    """``-sum(l2_normalize(y_true) * l2_normalize(y_pred))`` over the last axis (Keras 3): -1 for the same
    direction, 0 orthogonal."""

    def __init__(self, axis=-1, reduction="sum_over_batch_size", name="cosine_similarity", dtype=None):
        _check_axis(axis, "CosineSimilarity")
        super().__init__(cosine_similarity, name=name, reduction=reduction, dtype=dtype, axis=axis)
        self.axis = axis

    def get_config(self):
        config = Loss.get_config(self)
        config["axis"] = self.axis
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


KLDivergence = _simple_loss_class(kl_divergence, "KLDivergence", "kl_divergence",
                                  "``sum(y_true * log(y_true / y_pred))`` with both clipped to [eps, 1] (Keras 3).")


_KERNELS = {
    mean_squared_error: "mean_squared_error",
    mean_absolute_error: "mean_absolute_error",
    huber: "huber",
    binary_crossentropy: "binary_crossentropy",
    categorical_crossentropy: "categorical_crossentropy",
    sparse_categorical_crossentropy: "sparse_categorical_crossentropy",
    hinge: "hinge",
    squared_hinge: "squared_hinge",
    log_cosh: "log_cosh",
    poisson: "poisson",
    mean_squared_logarithmic_error: "mean_squared_logarithmic_error",
    mean_absolute_percentage_error: "mean_absolute_percentage_error",
    kl_divergence: "kl_divergence",
    categorical_hinge: "categorical_hinge",
    cosine_similarity: "cosine_similarity",
}

# Which Loss class computes a given function (get() returns instances: the model needs value_and_grad).
_CLASS_OF = {
    mean_squared_error: MeanSquaredError,
    mean_absolute_error: MeanAbsoluteError,
    huber: Huber,
    binary_crossentropy: BinaryCrossentropy,
    categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
    hinge: Hinge,
    squared_hinge: SquaredHinge,
    log_cosh: LogCosh,
    poisson: Poisson,
    mean_squared_logarithmic_error: MeanSquaredLogarithmicError,
    mean_absolute_percentage_error: MeanAbsolutePercentageError,
    kl_divergence: KLDivergence,
    categorical_hinge: CategoricalHinge,
    cosine_similarity: CosineSimilarity,
}

ALL_OBJECTS = {Loss, LossFunctionWrapper, *_CLASS_OF.values(), *_KERNELS}
ALL_OBJECTS_DICT = {obj.__name__: obj for obj in ALL_OBJECTS}
ALL_OBJECTS_DICT.update({"bce": binary_crossentropy, "BCE": binary_crossentropy, "mae": mean_absolute_error,
                         "MAE": mean_absolute_error, "mse": mean_squared_error, "MSE": mean_squared_error,
                         "kld": kl_divergence, "KLD": kl_divergence, "mape": mean_absolute_percentage_error,
                         "MAPE": mean_absolute_percentage_error, "msle": mean_squared_logarithmic_error,
                         "MSLE": mean_squared_logarithmic_error})


def _serialize_function(fn):
    if fn in _KERNELS:
        return {"module": "keras.losses", "class_name": "function", "config": fn.__name__,
                "registered_name": "function"}
    return fn  # get_config keeps another callable as is (serialize() names it)


def _function_by_name(fn):
    """A custom function in serialize()'s JSON form: its name (give it back through custom_objects)."""
    return {"module": getattr(fn, "__module__", None), "class_name": "function",
            "config": getattr(fn, "__name__", type(fn).__name__), "registered_name": "function"}


def _deserialize_function(config, custom_objects=None):
    name = config.get("config") if isinstance(config, dict) else config
    fn = (custom_objects or {}).get(name) or ALL_OBJECTS_DICT.get(name)
    if fn is None or inspect.isclass(fn):
        raise ValueError(f"Could not interpret loss function: {config!r} (pass custom functions in custom_objects)")
    return fn


def serialize(loss):
    """A Loss as ``{'module', 'class_name', 'config', 'registered_name'}``; a loss function as
    ``{'class_name': 'function', 'config': name, ...}`` (Keras's format)."""
    if isinstance(loss, Loss):
        cls = type(loss)
        builtin = ALL_OBJECTS_DICT.get(cls.__name__) is cls
        config = loss.get_config()
        if callable(config.get("fn")):
            config["fn"] = _function_by_name(config["fn"])
        return {"module": "keras.losses" if builtin else cls.__module__, "class_name": cls.__name__,
                "config": config, "registered_name": None if builtin else cls.__name__}
    if callable(loss):
        return _serialize_function(loss) if loss in _KERNELS else _function_by_name(loss)
    raise ValueError(f"Could not serialize loss {loss!r}")


def deserialize(name, custom_objects=None):
    """A Loss instance or loss function from ``serialize``'s dict (or a name)."""
    objects = dict(ALL_OBJECTS_DICT)
    objects.update(custom_objects or {})
    if isinstance(name, str):
        if name not in objects:
            raise ValueError(f"Could not interpret loss identifier: {name}")
        return objects[name]
    if not isinstance(name, dict) or "class_name" not in name:
        raise ValueError(f"Could not interpret loss config: {name!r}")
    class_name = name["class_name"]
    if class_name == "function":
        return _deserialize_function(name, custom_objects)
    cls = objects.get(class_name) or objects.get(name.get("registered_name") or "")
    if cls is None or not inspect.isclass(cls):
        raise ValueError(f"Could not interpret loss identifier: unknown class_name {class_name!r}")
    config = dict(name.get("config") or {})
    if isinstance(config.get("fn"), dict):
        config["fn"] = _deserialize_function(config["fn"], custom_objects)
    return cls.from_config(config)


def get(identifier):
    """A Loss instance from a name ('mse', 'binary_crossentropy', 'CategoricalCrossentropy', ...), a
    serialized dict, a Loss class or instance, or a loss function.

    Unlike ``keras.losses.get`` (which returns a function for a function's
    name), a function's name or a function gives a Loss named after it, as
    Keras's ``compile`` wraps it: the model needs ``value_and_grad``.
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = ALL_OBJECTS_DICT.get(identifier)
        if obj is None:
            raise ValueError(f"Could not interpret loss identifier: {identifier!r}; valid names are "
                             f"{', '.join(sorted(ALL_OBJECTS_DICT))}")
    else:
        obj = identifier
    if inspect.isclass(obj) and issubclass(obj, Loss):
        obj = obj()
    if isinstance(obj, Loss):
        return obj
    if callable(obj):
        name = identifier if isinstance(identifier, str) else getattr(obj, "__name__", None)
        cls = _CLASS_OF.get(obj)
        return cls(name=name) if cls is not None else LossFunctionWrapper(obj, name=name)
    raise ValueError(f"Could not interpret loss identifier: {identifier}")

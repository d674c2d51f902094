"""Probabilistic losses: the binary, categorical and sparse categorical cross-entropies, the
Kullback-Leibler divergence and the Poisson loss (per-sample functions in Keras 3's formulas, NumPy
float32, and their Loss classes)."""
import warnings

import numpy as np

from gradsmith.losses.base import Loss, LossFunctionWrapper, _kernel_function, _simple_loss_class
from gradsmith.losses.reduction import EPSILON, _F32, _broadcast_pair, _check_axis, _check_labels, _f32, _sparse_labels

__all__ = ["binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy", "kl_divergence",
           "poisson", "kld", "KLD", "BinaryCrossentropy", "CategoricalCrossentropy",
           "SparseCategoricalCrossentropy", "KLDivergence", "Poisson"]


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return np.where(x >= 0, _F32(1.0) / (_F32(1.0) + np.exp(-x)), np.exp(x) / (_F32(1.0) + np.exp(x)))


@_kernel_function('bce', 'BCE')
def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample binary cross-entropy, ``mean(..., axis=-1)``.

    Probabilities are clipped to ``[eps, 1 - eps]`` (eps = 1e-7, in float32);
    logits use ``max(x, 0) - x t + log1p(exp(-|x|))``. As in Keras, y_true and y_pred must have the same
    shape (no rank rule here: the BinaryCrossentropy loss class squeezes (N, 1) against (N,) first).
    """
    _check_axis(axis, "binary_crossentropy")
    y_pred = _f32(y_pred, "y_pred")
    y_true = _f32(y_true, "y_true")
    if label_smoothing:
        # Keras: y_true = y_true * (1 - label_smoothing) + 0.5 * label_smoothing
        y_true = y_true * _F32(1.0 - label_smoothing) + _F32(0.5 * label_smoothing)
    if y_true.shape != y_pred.shape:
        raise ValueError("Arguments `target` and `output` must have the same shape. Received: "
                         f"target.shape={y_true.shape}, output.shape={y_pred.shape}")
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


@_kernel_function()
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


@_kernel_function()
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
    if from_logits:
        onehot = (labels[..., None] == np.arange(y_pred.shape[-1])).astype(_F32)
        res = _categorical_from_onehot(onehot, y_pred, from_logits)
    else:
        res = _sparse_from_probabilities(labels, y_pred)
    if valid is not None:
        res = np.where(valid, res, _F32(0.0)).astype(_F32)
    return res


def _sparse_from_probabilities(labels, output):
    """TensorFlow's sparse cross-entropy on probabilities (Keras's tensorflow backend): the probabilities
    are clipped to [eps, 1 - eps] FIRST, their logs are the logits of ``sparse_softmax_cross_entropy_with_logits``:
    ``-log(clip(p_y) / sum_j clip(p_j))``. (Keras on JAX normalizes first, then clips; the two agree on rows
    that sum to 1 with no entry below eps.)"""
    c = np.clip(output, _F32(EPSILON), _F32(1.0 - EPSILON))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log(c)
        if z.shape[-1] == 0:
            return np.zeros(z.shape[:-1], dtype=_F32)
        m = np.max(z, axis=-1, keepdims=True)
        lse = m[..., 0] + np.log(np.sum(np.exp(z - m), axis=-1))
        zy = np.take_along_axis(z, labels[..., None].astype(np.int64), axis=-1)[..., 0]
    return np.asarray(lse - zy, dtype=_F32)


@_kernel_function('kld', 'KLD')
def kl_divergence(y_true, y_pred):
    """Per-sample ``sum(t * log(t / p), axis=-1)`` with t and p clipped to [eps, 1] (Keras 3); the shapes
    broadcast, as in Keras's function."""
    y_true, y_pred = _broadcast_pair(y_true, y_pred, "kl_divergence")
    t = np.clip(y_true, _F32(EPSILON), _F32(1.0))
    p = np.clip(y_pred, _F32(EPSILON), _F32(1.0))
    return np.asarray(np.sum(t * np.log(t / p), axis=-1), dtype=_F32)


@_kernel_function()
def poisson(y_true, y_pred):
    """Per-sample ``mean(y_pred - y_true * log(y_pred + eps), axis=-1)``; the shapes broadcast, as in
    Keras's function."""
    y_true, y_pred = _broadcast_pair(y_true, y_pred, "poisson")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.mean(y_pred - y_true * np.log(y_pred + _F32(EPSILON)), axis=-1), dtype=_F32)


kld = KLD = kl_divergence


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


KLDivergence = _simple_loss_class(
    kl_divergence, "KLDivergence", "kl_divergence",
    "``sum(y_true * log(y_true / y_pred))`` with both clipped to [eps, 1] (Keras 3).", __name__)
Poisson = _simple_loss_class(poisson, "Poisson", "poisson", "``mean(y_pred - y_true * log(y_pred + eps))``.",
                             __name__)

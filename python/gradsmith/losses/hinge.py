"""Hinge losses for -1/1 (or 0/1) targets: hinge, squared hinge and categorical hinge (per-sample
functions in Keras 3's formulas, NumPy float32, and their Loss classes)."""
import numpy as np

from gradsmith import ops
from gradsmith.losses.base import _kernel_function, _simple_loss_class
from gradsmith.losses.reduction import _F32, _broadcast_pair

__all__ = ["hinge", "squared_hinge", "categorical_hinge", "Hinge", "SquaredHinge", "CategoricalHinge"]


@_kernel_function()
def hinge(y_true, y_pred):
    """Per-sample ``mean(maximum(1 - y_true * y_pred, 0), axis=-1)``; 0/1 targets become -1/1 (Keras 3).
    Like Keras's function, no rank rule: the shapes broadcast (the Hinge loss class squeezes first)."""
    y_true, y_pred = _broadcast_pair(y_true, y_pred, "hinge")
    y_true = ops.hinge_labels(y_true)
    return np.asarray(np.mean(np.maximum(_F32(1.0) - y_true * y_pred, _F32(0.0)), axis=-1), dtype=_F32)


@_kernel_function()
def squared_hinge(y_true, y_pred):
    """Per-sample ``mean(square(maximum(1 - y_true * y_pred, 0)), axis=-1)``; 0/1 targets become -1/1.
    The shapes broadcast, as in Keras's function."""
    y_true, y_pred = _broadcast_pair(y_true, y_pred, "squared_hinge")
    y_true = ops.hinge_labels(y_true)
    return np.asarray(np.mean(np.square(np.maximum(_F32(1.0) - y_true * y_pred, _F32(0.0))), axis=-1), dtype=_F32)


@_kernel_function()
def categorical_hinge(y_true, y_pred):
    """Per-sample ``maximum(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`` (Keras 3); the shapes
    broadcast, as in Keras's function."""
    y_true, y_pred = _broadcast_pair(y_true, y_pred, "categorical_hinge")
    pos = np.sum(y_true * y_pred, axis=-1)
    neg = np.max((_F32(1.0) - y_true) * y_pred, axis=-1)
    return np.asarray(np.maximum(neg - pos + _F32(1.0), _F32(0.0)), dtype=_F32)


Hinge = _simple_loss_class(hinge, "Hinge", "hinge", "``mean(maximum(1 - y_true * y_pred, 0))`` (Keras 3).", __name__)
SquaredHinge = _simple_loss_class(squared_hinge, "SquaredHinge", "squared_hinge",
                                  "``mean(square(maximum(1 - y_true * y_pred, 0)))`` (Keras 3).", __name__)
CategoricalHinge = _simple_loss_class(
    categorical_hinge, "CategoricalHinge", "categorical_hinge",
    "``maximum(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`` (Keras 3).", __name__)

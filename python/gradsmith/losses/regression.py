"""Regression losses: squared, absolute, Huber, log-cosh, squared-log and percentage errors, and the
cosine similarity (per-sample functions in Keras 3's formulas, NumPy float32, and their Loss classes)."""
import numpy as np

from gradsmith.losses.base import Loss, LossFunctionWrapper, _kernel_function, _simple_loss_class
from gradsmith.losses.reduction import EPSILON, _F32, _check_axis, _f32, _regression_pair, _same_shape

__all__ = ["mean_squared_error", "mean_absolute_error", "huber", "log_cosh", "mean_squared_logarithmic_error",
           "mean_absolute_percentage_error", "cosine_similarity", "mse", "mae", "msle", "mape", "MSE", "MAE",
           "MSLE", "MAPE", "MeanSquaredError", "MeanAbsoluteError", "Huber", "LogCosh",
           "MeanSquaredLogarithmicError", "MeanAbsolutePercentageError", "CosineSimilarity"]


@_kernel_function('mse', 'MSE')
def mean_squared_error(y_true, y_pred):
    """Per-sample ``mean(square(y_true - y_pred), axis=-1)``."""
    y_true, y_pred = _same_shape(_f32(y_true, "y_true"), _f32(y_pred, "y_pred"), "mean_squared_error")
    # Keras: mean(square(y_true - y_pred), axis=-1)
    return np.asarray(np.mean(np.square(y_true - y_pred), axis=-1), dtype=_F32)


@_kernel_function('mae', 'MAE')
def mean_absolute_error(y_true, y_pred):
    """Per-sample ``mean(abs(y_true - y_pred), axis=-1)``."""
    y_true, y_pred = _same_shape(_f32(y_true, "y_true"), _f32(y_pred, "y_pred"), "mean_absolute_error")
    # Keras: mean(abs(y_true - y_pred), axis=-1)
    return np.asarray(np.mean(np.abs(y_true - y_pred), axis=-1), dtype=_F32)


@_kernel_function()
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


@_kernel_function()
def log_cosh(y_true, y_pred):
    """Per-sample ``mean(log(cosh(y_pred - y_true)), axis=-1)``."""
    y_true, y_pred = _regression_pair(y_true, y_pred, "log_cosh")
    x = (y_pred - y_true).astype(np.float64)
    # Keras: x + softplus(-2x) - log(2); the same function, without its cancellation near 0
    per_elem = np.abs(x) + np.log1p(np.exp(-2.0 * np.abs(x))) - np.log(2.0)
    small = np.abs(x) < 10.0
    per_elem = np.where(small, np.log1p(2.0 * np.sinh(0.5 * np.where(small, x, 0.0)) ** 2), per_elem)
    return np.asarray(np.mean(per_elem, axis=-1), dtype=_F32)


@_kernel_function('msle', 'MSLE')
def mean_squared_logarithmic_error(y_true, y_pred):
    """Per-sample ``mean(square(log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1)), axis=-1)``."""
    y_true, y_pred = _regression_pair(y_true, y_pred, "mean_squared_logarithmic_error")
    eps = _F32(EPSILON)
    d = np.log(np.maximum(y_pred, eps) + _F32(1.0)) - np.log(np.maximum(y_true, eps) + _F32(1.0))
    return np.asarray(np.mean(np.square(d), axis=-1), dtype=_F32)


@_kernel_function('mape', 'MAPE')
def mean_absolute_percentage_error(y_true, y_pred):
    """Per-sample ``100 * mean(abs((y_true - y_pred) / max(abs(y_true), eps)), axis=-1)``."""
    y_true, y_pred = _regression_pair(y_true, y_pred, "mean_absolute_percentage_error")
    diff = np.abs((y_true - y_pred) / np.maximum(np.abs(y_true), _F32(EPSILON)))
    return np.asarray(_F32(100.0) * np.mean(diff, axis=-1), dtype=_F32)


def _l2_normalize(x):
    """x / max(||x||, eps) along the last axis (Keras's ops.normalize)."""
    norm = np.sqrt(np.sum(np.square(x.astype(np.float64)), axis=-1, keepdims=True))
    return (x / np.maximum(norm, EPSILON)).astype(_F32)


@_kernel_function()
def cosine_similarity(y_true, y_pred, axis=-1):
    """Per-sample ``-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis=-1)`` (Keras 3's loss)."""
    _check_axis(axis, "cosine_similarity")
    y_true, y_pred = _regression_pair(y_true, y_pred, "cosine_similarity")
    return np.asarray(-np.sum(_l2_normalize(y_true) * _l2_normalize(y_pred), axis=-1), dtype=_F32)


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
msle = MSLE = mean_squared_logarithmic_error
mape = MAPE = mean_absolute_percentage_error


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


LogCosh = _simple_loss_class(log_cosh, "LogCosh", "log_cosh", "``mean(log(cosh(y_pred - y_true)))`` (Keras 3).",
                             __name__)
MeanSquaredLogarithmicError = _simple_loss_class(
    mean_squared_logarithmic_error, "MeanSquaredLogarithmicError", "mean_squared_logarithmic_error",
    "``mean(square(log(y_pred + 1) - log(y_true + 1)))`` (Keras 3, values below eps taken as eps).", __name__)
MeanAbsolutePercentageError = _simple_loss_class(
    mean_absolute_percentage_error, "MeanAbsolutePercentageError", "mean_absolute_percentage_error",
    "``100 * mean(abs((y_true - y_pred) / y_true))`` (Keras 3, |y_true| at least eps).", __name__)


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

"""Regression metrics: the means of the regression losses (squared, absolute, squared-log,
percentage and log-cosh errors), the root mean squared error and the cosine similarity."""
import numpy as np

from gradsmith import losses
from gradsmith.losses import EPSILON, squeeze_or_expand_to_same_rank
from gradsmith.losses.reduction import _f32
from gradsmith.metrics.base import _F32, Mean, _FnMetric, _divide_no_nan

__all__ = ["MeanSquaredError", "MeanAbsoluteError", "MeanSquaredLogarithmicError", "MeanAbsolutePercentageError",
           "LogCoshError", "RootMeanSquaredError", "CosineSimilarity"]


class MeanSquaredError(_FnMetric):
    """Mean of ``mean(square(y_true - y_pred), axis=-1)``."""

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(losses.mean_squared_error, name=name, dtype=dtype)


class MeanAbsoluteError(_FnMetric):
    """Mean of ``mean(abs(y_true - y_pred), axis=-1)``."""

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(losses.mean_absolute_error, name=name, dtype=dtype)


class MeanSquaredLogarithmicError(_FnMetric):
    """Mean of ``mean(square(log(y_pred + 1) - log(y_true + 1)), axis=-1)``."""

    def __init__(self, name="mean_squared_logarithmic_error", dtype=None):
        super().__init__(losses.mean_squared_logarithmic_error, name=name, dtype=dtype)


class MeanAbsolutePercentageError(_FnMetric):
    """Mean of ``100 * mean(abs((y_true - y_pred) / y_true), axis=-1)``."""

    def __init__(self, name="mean_absolute_percentage_error", dtype=None):
        super().__init__(losses.mean_absolute_percentage_error, name=name, dtype=dtype)


class LogCoshError(_FnMetric):
    """Mean of ``mean(log(cosh(y_pred - y_true)), axis=-1)``."""

    def __init__(self, name="logcosh", dtype=None):
        super().__init__(losses.log_cosh, name=name, dtype=dtype)


class RootMeanSquaredError(Mean):
    """``sqrt(mean(square(y_pred - y_true)))``."""

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = squeeze_or_expand_to_same_rank(_f32(y_true, "y_true"), _f32(y_pred, "y_pred"))
        # Keras: Mean of square(y_pred - y_true); result = sqrt(mean)
        return super().update_state(np.square(y_pred - y_true), sample_weight=sample_weight)

    def result(self):
        return float(np.sqrt(_divide_no_nan(self.total, self.count)))


def cosine_similarity(y_true, y_pred, axis=-1):
    """Per-sample ``sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)`` (the metric: +1 for the same
    direction; the loss is its negative). ``axis`` other than the last normalizes and sums along that axis,
    as Keras's metric function does (``axis=0`` on (n, k) gives k values)."""
    t, p = squeeze_or_expand_to_same_rank(_f32(y_true, "y_true"), _f32(y_pred, "y_pred"))
    if axis in (-1, p.ndim - 1) or p.ndim == 0:
        return -losses.cosine_similarity(y_true, y_pred)

    def normalize(x):  # Keras ops.normalize: x / max(||x||, eps) along the axis
        norm = np.sqrt(np.sum(np.square(x.astype(np.float64)), axis=axis, keepdims=True))
        return (x / np.maximum(norm, EPSILON)).astype(_F32)

    return np.asarray(np.sum(normalize(t) * normalize(p), axis=axis), dtype=_F32)


class CosineSimilarity(_FnMetric):
    """Mean cosine similarity between targets and predictions, along ``axis`` (the last by default)."""

    _config_keys = ("axis",)

    def __init__(self, name="cosine_similarity", dtype=None, axis=-1):
        super().__init__(cosine_similarity, name=name, dtype=dtype, axis=axis)
        self.axis = axis

    def get_config(self):
        # Keras's config is only name and dtype; a non-default axis is kept so that from_config rebuilds it
        # (Keras's constructor takes it too).
        config = super().get_config()
        if self.axis == -1:
            del config["axis"]
        return config

"""Correlation metrics (keras/src/metrics/correlation_metrics.py): the means of the per-sample Pearson and
concordance correlations along ``axis``."""
import numpy as np

from gradsmith.losses import EPSILON, squeeze_or_expand_to_same_rank
from gradsmith.losses.reduction import _f32
from gradsmith.metrics.base import _F32, _FnMetric

__all__ = ["pearson_correlation", "concordance_correlation", "PearsonCorrelation", "ConcordanceCorrelation"]


def _pair(y_true, y_pred):
    y_pred = _f32(y_pred, "y_pred")
    return squeeze_or_expand_to_same_rank(_f32(y_true, "y_true"), y_pred)


def pearson_correlation(y_true, y_pred, axis=-1):
    """Per-sample Pearson correlation along ``axis``: the mean of the product of the standardized values
    (population standard deviation; a constant sample gives NaN, as in Keras)."""
    y_true, y_pred = _pair(y_true, y_pred)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = y_true - np.mean(y_true, axis=axis, keepdims=True)
        p = y_pred - np.mean(y_pred, axis=axis, keepdims=True)
        t = t / np.std(t, axis=axis, keepdims=True)
        p = p / np.std(p, axis=axis, keepdims=True)
        return np.asarray(np.mean(t * p, axis=axis), dtype=_F32)


def concordance_correlation(y_true, y_pred, axis=-1):
    """Per-sample concordance correlation along ``axis``, in Keras 3.15's formula:
    ``mean(2 (t - mean(p)) (p - mean(p)) / (var(t) + var(p) + (mean(t) - mean(p))^2 + eps))``
    (Keras centres t on the mean of p in the covariance term; kept so that the numbers agree)."""
    y_true, y_pred = _pair(y_true, y_pred)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_mean = np.mean(y_true, axis=axis, keepdims=True)
        p_mean = np.mean(y_pred, axis=axis, keepdims=True)
        t_var = np.var(y_true - t_mean, axis=axis, keepdims=True)
        p_var = np.var(y_pred - p_mean, axis=axis, keepdims=True)
        covar = (y_true - p_mean) * (y_pred - p_mean)
        norm = t_var + p_var + np.square(t_mean - p_mean)
        return np.asarray(np.mean(_F32(2.0) * covar / (norm + _F32(EPSILON)), axis=axis), dtype=_F32)


class PearsonCorrelation(_FnMetric):
    """Mean Pearson correlation of the samples, along ``axis``."""

    _config_keys = ("axis",)

    def __init__(self, name="pearson_correlation", dtype=None, axis=-1):
        super().__init__(pearson_correlation, name=name, dtype=dtype, axis=axis)
        self.axis = axis


class ConcordanceCorrelation(_FnMetric):
    """Mean concordance correlation of the samples, along ``axis``."""

    _config_keys = ("axis",)

    def __init__(self, name="concordance_correlation", dtype=None, axis=-1):
        super().__init__(concordance_correlation, name=name, dtype=dtype, axis=axis)
        self.axis = axis

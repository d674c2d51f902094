"""Regression metrics: the means of the regression losses (squared, absolute, squared-log,
percentage and log-cosh errors), the root mean squared error, the cosine similarity and R2Score."""
import warnings

import numpy as np

from gradsmith import losses
from gradsmith.losses import EPSILON, squeeze_or_expand_to_same_rank
from gradsmith.losses.reduction import _f32
from gradsmith.metrics.base import _F32, Mean, Metric, _FnMetric, _divide_no_nan, _out

__all__ = ["MeanSquaredError", "MeanAbsoluteError", "MeanSquaredLogarithmicError", "MeanAbsolutePercentageError",
           "LogCoshError", "RootMeanSquaredError", "CosineSimilarity", "R2Score"]


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


class R2Score(Metric):
    """Coefficient of determination per output column of (batch, outputs) data, aggregated with
    ``class_aggregation`` ('uniform_average', 'variance_weighted_average' or None: one score per column);
    ``num_regressors`` > 0 gives the adjusted score (Keras 3)."""

    _AGGREGATIONS = (None, "uniform_average", "variance_weighted_average")

    def __init__(self, class_aggregation="uniform_average", num_regressors=0, name="r2_score", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if class_aggregation not in self._AGGREGATIONS:
            raise ValueError("Invalid value for argument `class_aggregation`. Expected one of "
                             f"{self._AGGREGATIONS}. Received: class_aggregation={class_aggregation}")
        if num_regressors < 0:
            raise ValueError("Invalid value for argument `num_regressors`. Expected a value >= 0. "
                             f"Received: num_regressors={num_regressors}")
        self.class_aggregation = class_aggregation
        self.num_regressors = num_regressors
        self.num_samples = np.zeros((), dtype=_F32)
        self._built = False

    def _build(self, y_true_shape, y_pred_shape):
        if len(y_pred_shape) != 2 or len(y_true_shape) != 2:
            raise ValueError("R2Score expects 2D inputs with shape (batch_size, output_dim). Received input "
                             f"shapes: y_pred.shape={y_pred_shape} and y_true.shape={y_true_shape}.")
        n = y_pred_shape[-1]
        self.squared_sum, self.sum, self.total_mse, self.count = (np.zeros(n, dtype=_F32) for _ in range(4))
        self._built = True

    @property
    def variables(self):
        state = [self.num_samples]
        if self._built:
            state += [self.squared_sum, self.sum, self.total_mse, self.count]
        return state

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = squeeze_or_expand_to_same_rank(_f32(y_true, "y_true"), _f32(y_pred, "y_pred"))
        if not self._built:
            self._build(y_true.shape, y_pred.shape)
        w = _F32(1.0) if sample_weight is None else _f32(sample_weight, "sample_weight")
        if w.ndim == 1:
            w = w[:, None]  # Keras: (N,) weights weigh rows
        w = np.broadcast_to(w, y_true.shape)
        weighted = y_true * w
        # Keras: sum += sum(w t); squared_sum += sum(w t^2); total_mse += sum(w (t - p)^2); count += sum(w)
        self.sum += np.sum(weighted, axis=0, dtype=_F32)
        self.squared_sum += np.sum(y_true * weighted, axis=0, dtype=_F32)
        self.total_mse += np.sum(np.square(y_true - y_pred) * w, axis=0, dtype=_F32)
        self.count += np.sum(w, axis=0, dtype=_F32)
        self.num_samples += _F32(y_true.size)

    def result(self):
        if not self._built:
            raise ValueError("R2Score has seen no data: call update_state first")
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = self.sum / self.count
            total = self.squared_sum - self.sum * mean
            raw = _F32(1.0) - self.total_mse / total
        raw = np.where(np.isinf(raw), _F32(0.0), raw).astype(_F32)  # Keras: a constant column scores 0
        if self.class_aggregation == "uniform_average":
            score = np.mean(raw, dtype=_F32)
        elif self.class_aggregation == "variance_weighted_average":
            with np.errstate(divide="ignore", invalid="ignore"):
                score = np.sum(total * raw, dtype=_F32) / np.sum(total, dtype=_F32)
        else:
            score = raw
        if self.num_regressors != 0:
            n, p = float(self.num_samples), float(self.num_regressors)
            if p > n - 1:
                warnings.warn("More independent predictors than datapoints in adjusted R2 score. Falling back "
                              "to standard R2 score.", stacklevel=2)
            elif p == n - 1:
                warnings.warn("Division by zero in Adjusted R2 score. Falling back to standard R2 score.",
                              stacklevel=2)
            else:
                # Keras: 1 - (1 - r2) (n - 1) / (n - p - 1)
                score = _F32(1.0) - (_F32(1.0) - score) * _F32(n - 1.0) / _F32(n - p - 1.0)
        return _out(score)

    def reset_state(self):
        for v in self.variables:
            v[...] = 0.0

    def get_config(self):
        config = super().get_config()
        config.update({"class_aggregation": self.class_aggregation, "num_regressors": self.num_regressors})
        return config

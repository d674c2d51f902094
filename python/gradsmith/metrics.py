"""gradsmith.metrics: Keras 3 metrics.

Stateful metrics: ``update_state(y_true, y_pred, sample_weight=None)`` adds a
batch, ``result()`` reads the value (a Python float, or a float32 array where
Keras returns a vector: ``F1Score(average=None)``, ``Precision`` with several
thresholds), ``reset_state()`` starts over. State is kept in float32 as
Keras's variables are. Unweighted accuracy counts use ``ops.count_correct``
and unweighted confusion counts at a few thresholds ``ops.binary_confusion``;
the rest (weights, AUC's 200 thresholds, top-k) is NumPy.

Keras 3 definitions kept (keras/src/metrics/*.py):
 - mean metrics (accuracies, errors, cross-entropies) average per-sample
   values: ``total += sum(w * v)``, ``count += sum(w)`` (N without weights; a
   1-D prediction is one sample, as in Keras);
 - confusion metrics count ``y_pred > threshold`` against ``bool(y_true)``;
   AUC uses ``num_thresholds`` thresholds ``[-eps, 1/(n-1), ..., 1 + eps]``,
   buckets the (clipped) predictions as Keras's optimized path does, and sums
   trapezoids ('interpolation'), or interpolates precision for PR;
 - F1Score / FBetaScore: per-class scores (average=None), or micro / macro /
   weighted averages; threshold None takes each row's maximum as positive.
"""
import inspect

import numpy as np

from gradsmith import losses, ops
from gradsmith.losses import EPSILON, _auto_name, _f32, squeeze_or_expand_to_same_rank

__all__ = [
    "Metric", "Mean", "Sum", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy", "CategoricalAccuracy",
    "SparseCategoricalAccuracy", "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "Precision", "Recall",
    "AUC", "TruePositives", "FalsePositives", "TrueNegatives", "FalseNegatives", "F1Score", "FBetaScore",
    "MeanSquaredError", "MeanAbsoluteError", "RootMeanSquaredError", "BinaryCrossentropy",
    "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "accuracy", "binary_accuracy",
    "categorical_accuracy", "sparse_categorical_accuracy", "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy", "get", "resolve", "serialize", "deserialize",
]

_F32 = np.float32
NEG_INF = -1e10  # keras metrics_utils.NEG_INF


def _divide_no_nan(a, b):
    """a / b, 0 where b == 0 (float32)."""
    a = np.asarray(a, dtype=_F32)
    b = np.asarray(b, dtype=_F32)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(b == 0, _F32(0.0), a / np.where(b == 0, _F32(1.0), b))
    return np.asarray(out, dtype=_F32)


def _out(x):
    """A result as Keras gives it: a float for a scalar, a float32 array otherwise."""
    x = np.asarray(x, dtype=_F32)
    return float(x) if x.ndim == 0 else x


# --------------------------------------------------------------------------- #
# Base and reduction metrics
# --------------------------------------------------------------------------- #
class Metric:
    """Keras 3 metric base: ``update_state``, ``result``, ``reset_state``, ``get_config``."""

    def __init__(self, dtype=None, name=None):
        self.name = name or _auto_name(self.__class__.__name__)
        self._dtype = dtype or "float32"

    @property
    def dtype(self):
        return self._dtype

    def update_state(self, *args, **kwargs):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def reset_state(self):
        raise NotImplementedError

    @property
    def variables(self):
        """The state arrays (float32)."""
        return [np.asarray(getattr(self, n)) for n in getattr(self, "_state_names", ())]

    def __call__(self, *args, **kwargs):
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{self.__class__.__name__} name={self.name!r}>"


def _reduce_to_samplewise_values(values, sample_weight, reduce_fn):
    """Keras reduce_to_samplewise_values: weight, then reduce every axis after the first."""
    values = _f32(values, "values")
    if sample_weight is not None:
        sample_weight = _f32(sample_weight, "sample_weight")
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        weight_ndim, values_ndim = sample_weight.ndim, values.ndim
        if values_ndim > weight_ndim:
            values = reduce_fn(values, axis=tuple(range(weight_ndim, values_ndim)))
        sample_weight = np.broadcast_to(sample_weight, values.shape)
        values = values * sample_weight
        if weight_ndim > 1:
            sample_weight = reduce_fn(sample_weight, axis=tuple(range(1, weight_ndim)))
    if values.ndim > 1:
        values = reduce_fn(values, axis=tuple(range(1, values.ndim)))
    return np.asarray(values, dtype=_F32), sample_weight


class Sum(Metric):
    """The (weighted) sum of the values."""

    _state_names = ("total",)

    def __init__(self, name="sum", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = _F32(0.0)

    def update_state(self, values, sample_weight=None):
        # Keras: total += sum(w * v)
        values, _ = _reduce_to_samplewise_values(values, sample_weight, np.sum)
        self.total = _F32(self.total + np.sum(values, dtype=_F32))

    def reset_state(self):
        self.total = _F32(0.0)

    def result(self):
        return _out(self.total)


class Mean(Metric):
    """The (weighted) mean of the values: ``sum(w * v) / sum(w)``."""

    _state_names = ("total", "count")

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = _F32(0.0)
        self.count = _F32(0.0)

    def update_state(self, values, sample_weight=None):
        scalar_weight = isinstance(sample_weight, (int, float)) and not isinstance(sample_weight, bool)
        if scalar_weight and np.ndim(values) == 0:
            # Keras's fast path: a scalar value with a Python-number weight
            v = _f32(values, "values")
            self.total = _F32(self.total + v * _F32(sample_weight))
            self.count = _F32(self.count + _F32(sample_weight))
            return
        # Keras: total += sum(w * v); count += sum(w), or the number of samples
        values, sample_weight = _reduce_to_samplewise_values(values, sample_weight, np.mean)
        self.total = _F32(self.total + np.sum(values, dtype=_F32))
        if sample_weight is not None:
            num = np.sum(sample_weight, dtype=_F32)
        elif values.ndim >= 1:
            num = values.shape[0]
        else:
            num = 1
        self.count = _F32(self.count + _F32(num))

    def _add_counts(self, total, count):
        self.total = _F32(self.total + _F32(total))
        self.count = _F32(self.count + _F32(count))

    def reset_state(self):
        self.total = _F32(0.0)
        self.count = _F32(0.0)

    def result(self):
        # Keras: divide_no_nan(total, count)
        return _out(_divide_no_nan(self.total, self.count))


class MeanMetricWrapper(Mean):
    """The mean of a per-sample function ``fn(y_true, y_pred, **kwargs)``."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        mask = None
        if self._fn is losses.sparse_categorical_crossentropy and self._fn_kwargs.get("ignore_class") is not None:
            labels = losses._sparse_labels(*squeeze_or_expand_to_same_rank(np.asarray(y_true), _f32(y_pred, "y_pred")))
            mask = (labels != self._fn_kwargs["ignore_class"]).astype(_F32)
        if mask is not None:  # Keras apply_mask(reduction='sum'): the mask multiplies the weights
            sample_weight = mask if sample_weight is None else \
                (lambda m, w: w * m)(*squeeze_or_expand_to_same_rank(mask, _f32(sample_weight, "sample_weight")))
        return super().update_state(values, sample_weight=sample_weight)

    def get_config(self):
        config = super().get_config()
        fn = self._fn
        config["fn"] = losses._serialize_function(fn) if fn in losses._KERNELS else fn
        config.update(self._fn_kwargs)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "fn" in config and not callable(config["fn"]):
            config["fn"] = losses._deserialize_function(config["fn"])
        return cls(**config)


class _FnMetric(MeanMetricWrapper):
    """A MeanMetricWrapper whose config is ``name``, ``dtype`` and its own arguments (Keras's metric classes)."""

    _fn_default = None
    _config_keys = ()

    def get_config(self):
        config = Metric.get_config(self)
        config.update({k: getattr(self, k) for k in self._config_keys})
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


# --------------------------------------------------------------------------- #
# Accuracy
# --------------------------------------------------------------------------- #
def accuracy(y_true, y_pred):
    """Per-sample ``mean(y_true == y_pred, axis=-1)``."""
    y_pred = _f32(y_pred, "y_pred")
    y_true = _f32(y_true, "y_true")
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    # Keras: mean(equal(y_true, y_pred), axis=-1)
    return np.asarray(np.mean((y_true == y_pred).astype(_F32), axis=-1), dtype=_F32)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Per-sample ``mean(y_true == float(y_pred > threshold), axis=-1)``."""
    y_pred = _f32(y_pred, "y_pred")
    y_true = _f32(y_true, "y_true")
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    # Keras: y_pred = cast(y_pred > threshold); mean(equal(y_true, y_pred), axis=-1)
    y_pred = (y_pred > _F32(threshold)).astype(_F32)
    return np.asarray(np.mean((y_true == y_pred).astype(_F32), axis=-1), dtype=_F32)


def categorical_accuracy(y_true, y_pred):
    """Per-sample ``argmax(y_true) == argmax(y_pred)``."""
    y_true = np.argmax(np.asarray(y_true), axis=-1)
    y_pred = _f32(y_pred, "y_pred")
    org_shape = y_true.shape
    reshape = False
    if y_true.ndim == y_pred.ndim:
        y_true = y_true[..., 0] if y_true.shape[-1:] == (1,) else np.squeeze(y_true, -1)
        reshape = True
    # Keras: equal(argmax(y_true), argmax(y_pred))
    matches = (y_true == np.argmax(y_pred, axis=-1)).astype(_F32)
    return matches.reshape(org_shape) if reshape else matches


def sparse_categorical_accuracy(y_true, y_pred):
    """Per-sample ``y_true == argmax(y_pred)`` (labels (N,) or (N, 1))."""
    y_pred = _f32(y_pred, "y_pred")
    y_true = _f32(y_true, "y_true")
    org_shape = y_true.shape
    reshape = False
    if y_true.ndim == y_pred.ndim and y_true.shape[-1:] == (1,):
        y_true = y_true[..., 0]
        reshape = True
    # Keras: equal(y_true, argmax(y_pred))
    matches = (y_true == np.argmax(y_pred, axis=-1).astype(_F32)).astype(_F32)
    if reshape:
        matches = matches.reshape(org_shape)
    if matches.ndim > 1 and matches.shape[-1] == 1:
        matches = matches[..., 0]
    return matches


def _in_top_k(targets, predictions, k):
    """TF in_top_k: the target's score is among the k largest (ties at the boundary count as in)."""
    targets = np.asarray(targets).astype(np.int64)
    n, c = predictions.shape
    ok = (targets >= 0) & (targets < c)
    t = np.where(ok, targets, 0)
    target_score = predictions[np.arange(n), t]
    larger = np.sum(predictions > target_score[:, None], axis=-1)
    return ok & np.isfinite(target_score) & (larger < k)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """Per-sample: ``argmax(y_true)`` is among the ``k`` largest predictions."""
    y_pred = _f32(y_pred, "y_pred")
    y_true = np.argmax(np.asarray(y_true), axis=-1)
    org_shape = y_true.shape
    if y_pred.ndim > 2:
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    reshape = y_true.ndim > 1
    matches = _in_top_k(y_true.reshape(-1), y_pred, k).astype(_F32)
    return matches.reshape(org_shape) if reshape else matches


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5, from_sorted_ids=False):
    """Per-sample: the label is among the ``k`` largest predictions (or, ``from_sorted_ids``, among
    the first ``k`` ids of ``y_pred``)."""
    y_pred = np.asarray(y_pred) if from_sorted_ids else _f32(y_pred, "y_pred")
    y_true = np.asarray(y_true)
    org_shape = y_true.shape
    if y_pred.ndim > 2:
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    reshape = y_true.ndim > 1
    y_true = y_true.reshape(-1)
    if from_sorted_ids:
        matches = np.any(y_true[:, None] == y_pred[:, :k], axis=1)
    else:
        matches = _in_top_k(y_true.astype(np.int64), y_pred, k)
    matches = matches.astype(_F32)
    return matches.reshape(org_shape) if reshape else matches


class Accuracy(_FnMetric):
    """How often ``y_pred == y_true``."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(_FnMetric):
    """How often ``float(y_pred > threshold) == y_true``."""

    _config_keys = ("threshold",)

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        if threshold is not None and (threshold <= 0 or threshold >= 1):
            raise ValueError("Invalid value for argument `threshold`. Expected a value in interval (0, 1). "
                             f"Received: threshold={threshold}")
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None:
            t, p = squeeze_or_expand_to_same_rank(_f32(y_true, "y_true"), _f32(y_pred, "y_pred"))
            if p.ndim == 2 and t.shape == p.shape:
                # Keras: total += sum over rows of mean_j [float(p > threshold) == t]; count += rows
                correct = ops.count_correct(t, p, "binary", threshold=float(_F32(self.threshold)))
                self._add_counts(correct / p.shape[1] if p.shape[1] else 0.0, p.shape[0])
                return
        super().update_state(y_true, y_pred, sample_weight)


class CategoricalAccuracy(_FnMetric):
    """How often ``argmax(y_pred) == argmax(y_true)`` (one-hot labels)."""

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None:
            t, p = np.asarray(y_true), _f32(y_pred, "y_pred")
            if p.ndim == 2 and t.shape == p.shape and p.shape[1] > 0 and t.dtype.kind in "biuf":
                # Keras: total += #[argmax(y_true) == argmax(y_pred)]; count += rows
                self._add_counts(ops.count_correct(t, p, "categorical"), p.shape[0])
                return
        super().update_state(y_true, y_pred, sample_weight)


class SparseCategoricalAccuracy(_FnMetric):
    """How often ``argmax(y_pred) == y_true`` (integer labels)."""

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None:
            t, p = np.asarray(y_true), _f32(y_pred, "y_pred")
            if p.ndim == 2 and p.shape[1] > 1 and t.shape in ((p.shape[0],), (p.shape[0], 1)) \
                    and t.dtype.kind in "biuf":
                try:
                    correct = ops.count_correct(t, p, "sparse")
                except ValueError:
                    correct = None  # labels outside [0, C) or not integral: Keras simply counts no match
                if correct is not None:
                    # Keras: total += #[y_true == argmax(y_pred)]; count += rows
                    self._add_counts(correct, p.shape[0])
                    return
        super().update_state(y_true, y_pred, sample_weight)


class TopKCategoricalAccuracy(_FnMetric):
    """How often ``argmax(y_true)`` is among the ``k`` top predictions."""

    _config_keys = ("k",)

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k


class SparseTopKCategoricalAccuracy(_FnMetric):
    """How often the integer label is among the ``k`` top predictions."""

    _config_keys = ("k", "from_sorted_ids")

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None, from_sorted_ids=False):
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k,
                         from_sorted_ids=from_sorted_ids)
        self.k = k
        self.from_sorted_ids = from_sorted_ids


# --------------------------------------------------------------------------- #
# Regression and probabilistic metrics (means of the loss functions)
# --------------------------------------------------------------------------- #
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


class Hinge(_FnMetric):
    """Mean hinge loss (0/1 targets become -1/1)."""

    def __init__(self, name="hinge", dtype=None):
        super().__init__(losses.hinge, name=name, dtype=dtype)


class SquaredHinge(_FnMetric):
    """Mean squared hinge loss (0/1 targets become -1/1)."""

    def __init__(self, name="squared_hinge", dtype=None):
        super().__init__(losses.squared_hinge, name=name, dtype=dtype)


class Poisson(_FnMetric):
    """Mean Poisson loss ``mean(y_pred - y_true * log(y_pred + eps), axis=-1)``."""

    def __init__(self, name="poisson", dtype=None):
        super().__init__(losses.poisson, name=name, dtype=dtype)


class KLDivergence(_FnMetric):
    """Mean Kullback-Leibler divergence ``sum(y_true * log(y_true / y_pred), axis=-1)``."""

    def __init__(self, name="kl_divergence", dtype=None):
        super().__init__(losses.kl_divergence, name=name, dtype=dtype)


class CategoricalHinge(_FnMetric):
    """Mean categorical hinge loss."""

    def __init__(self, name="categorical_hinge", dtype=None):
        super().__init__(losses.categorical_hinge, name=name, dtype=dtype)


def cosine_similarity(y_true, y_pred, axis=-1):
    """Per-sample ``sum(l2_normalize(y_true) * l2_normalize(y_pred), axis=-1)`` (the metric: +1 for the same
    direction; the loss is its negative)."""
    return -losses.cosine_similarity(y_true, y_pred, axis=axis)


class CosineSimilarity(_FnMetric):
    """Mean cosine similarity between targets and predictions, along the last axis."""

    _config_keys = ("axis",)

    def __init__(self, name="cosine_similarity", dtype=None, axis=-1):
        super().__init__(cosine_similarity, name=name, dtype=dtype, axis=axis)
        self.axis = axis


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


class BinaryCrossentropy(_FnMetric):
    """Mean binary cross-entropy."""

    _config_keys = ("from_logits", "label_smoothing")

    def __init__(self, name="binary_crossentropy", dtype=None, from_logits=False, label_smoothing=0):
        super().__init__(losses.binary_crossentropy, name=name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing


class CategoricalCrossentropy(_FnMetric):
    """Mean categorical cross-entropy."""

    _config_keys = ("from_logits", "label_smoothing", "axis")

    def __init__(self, name="categorical_crossentropy", dtype=None, from_logits=False, label_smoothing=0, axis=-1):
        super().__init__(losses.categorical_crossentropy, name=name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis


class SparseCategoricalCrossentropy(_FnMetric):
    """Mean sparse categorical cross-entropy."""

    _config_keys = ("from_logits", "axis")

    def __init__(self, name="sparse_categorical_crossentropy", dtype=None, from_logits=False, axis=-1):
        super().__init__(losses.sparse_categorical_crossentropy, name=name, dtype=dtype, from_logits=from_logits,
                         axis=axis)
        self.from_logits = from_logits
        self.axis = axis


# --------------------------------------------------------------------------- #
# Confusion-matrix metrics (keras/src/metrics/metrics_utils.py)
# --------------------------------------------------------------------------- #
def _to_list(x):
    if isinstance(x, (list, tuple)):
        return list(x)
    if isinstance(x, np.ndarray):
        return x.tolist() if x.ndim else [x.item()]
    return [x]


def _parse_init_thresholds(thresholds, default_threshold=0.5):
    if thresholds is not None:
        invalid = [t for t in _to_list(thresholds) if t is None or t < 0 or t > 1]
        if invalid:
            raise ValueError(f"Threshold values must be in [0, 1]. Received: {invalid}")
    return _to_list(default_threshold if thresholds is None else thresholds)


def _is_evenly_distributed_thresholds(thresholds):
    num = len(thresholds)
    if num < 3:
        return False
    even = np.arange(num, dtype=np.float32) / (num - 1)
    return bool(np.allclose(thresholds, even, atol=EPSILON))


def _filter_top_k(x, k):
    """Keep the top-k values on the last axis (lowest index first among ties), the rest NEG_INF."""
    order = np.argsort(-x, axis=-1, kind="stable")[..., :k]
    mask = np.zeros(x.shape, dtype=_F32)
    np.put_along_axis(mask, order, 1.0, axis=-1)
    return (x * mask + _F32(NEG_INF) * (_F32(1.0) - mask)).astype(_F32)


def _update_confusion(state, y_true, y_pred, thresholds, thresholds_distributed_evenly=False, top_k=None,
                      class_id=None, sample_weight=None, multi_label=False, label_weights=None):
    """Keras update_confusion_matrix_variables: add weighted tp / fp / tn / fn counts at each threshold.

    ``state``: dict with some of 'tp', 'fp', 'tn', 'fn' -> float32 arrays of shape (T,) or (T, labels).
    Positive prediction: ``y_pred > threshold``; positive label: ``bool(y_true)``.
    """
    y_true = _f32(y_true, "y_true")
    y_pred = _f32(y_pred, "y_pred")
    thr = np.asarray(thresholds, dtype=np.float64)
    with_epsilon = bool(thresholds_distributed_evenly and (thr[0] < 0.0 or thr[-1] > 1.0))
    thr32 = thr.astype(_F32)
    y_pred, y_true = squeeze_or_expand_to_same_rank(y_pred, y_true)
    if sample_weight is not None:
        sample_weight = _f32(sample_weight, "sample_weight")[..., None]
        _, sample_weight = squeeze_or_expand_to_same_rank(y_true, sample_weight, expand_rank_1=False)
    if top_k is not None:
        y_pred = _filter_top_k(y_pred, top_k)
    if class_id is not None:
        if y_pred.ndim == 1:
            raise ValueError("When class_id is provided, y_pred must be a 2D array with shape (num_samples, "
                             f"num_classes), found shape: {y_pred.shape}")
        y_true = y_true[..., class_id, None]
        y_pred = y_pred[..., class_id, None]
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    weights = None
    if sample_weight is not None:
        weights = np.broadcast_to(sample_weight, y_pred.shape).astype(np.float64)
    if label_weights is not None and not multi_label:
        lw = np.broadcast_to(np.asarray(label_weights, dtype=np.float64)[None], y_pred.shape)
        weights = lw if weights is None else weights * lw

    if (not thresholds_distributed_evenly and weights is None and not multi_label and len(thr32) <= 8
            and y_pred.size):
        # Few thresholds, no weights: the binary_confusion kernel, once per threshold.
        counts = np.array([ops.binary_confusion(y_true, y_pred, threshold=float(t)) for t in thr32], dtype=np.float64)
        found = {"tp": counts[:, 0], "fp": counts[:, 1], "tn": counts[:, 2], "fn": counts[:, 3]}
    else:
        label = y_true != 0  # Keras casts y_true to bool
        if multi_label:
            if y_pred.ndim != 2:
                raise ValueError(f"`y_pred` must have rank 2 when `multi_label=True`. Found shape {y_pred.shape}")
        else:
            label = label.reshape(-1)
            y_pred = y_pred.reshape(-1)
            weights = None if weights is None else weights.reshape(-1)
        w = np.ones(y_pred.shape) if weights is None else weights
        true_w = label * w
        false_w = (~label) * w
        if thresholds_distributed_evenly:
            found = _bucket_counts(y_pred, true_w, false_w, len(thr32), with_epsilon)
        else:
            pos = y_pred[None] > thr32.reshape((-1,) + (1,) * y_pred.ndim)  # (T, ...) predicted positive
            tp = np.sum(pos * true_w, axis=1)
            fp = np.sum(pos * false_w, axis=1)
            found = {"tp": tp, "fp": fp, "tn": np.sum(false_w, axis=0) - fp, "fn": np.sum(true_w, axis=0) - tp}
    for kind in state:
        state[kind] += np.asarray(found[kind], dtype=_F32).reshape(state[kind].shape)


def _bucket_counts(y_pred, true_w, false_w, num_thresholds, with_epsilon):
    """Keras's optimized path for evenly spaced thresholds: bucket ``ceil(p (T - 1)) - 1`` of the clipped
    prediction, then reversed cumulative sums."""
    p = np.clip(y_pred, _F32(0.0), _F32(1.0))
    bucket = np.ceil(p * _F32(num_thresholds - 1)) - _F32(1.0)
    if with_epsilon:
        bucket = np.maximum(bucket, _F32(0.0))  # relu: predictions in [0, 1] pass the -eps threshold
    valid = np.isfinite(bucket) & (bucket >= 0)
    index = np.where(valid, bucket, 0).astype(np.int64)

    def cumulative(w):
        if w.ndim == 1:
            sums = np.bincount(index[valid], weights=w[valid], minlength=num_thresholds)
            return np.cumsum(sums[::-1])[::-1]
        out = np.empty((num_thresholds, w.shape[1]))
        for j in range(w.shape[1]):
            v = valid[:, j]
            sums = np.bincount(index[v, j], weights=w[v, j], minlength=num_thresholds)
            out[:, j] = np.cumsum(sums[::-1])[::-1]
        return out

    tp = cumulative(true_w)
    fp = cumulative(false_w)
    return {"tp": tp, "fp": fp, "tn": np.sum(false_w, axis=0) - fp, "fn": np.sum(true_w, axis=0) - tp}


class _ConfusionMatrixConditionCount(Metric):
    _kind = None
    _state_names = ("accumulator",)

    def __init__(self, thresholds=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.thresholds = _parse_init_thresholds(thresholds, default_threshold=0.5)
        self._thresholds_distributed_evenly = _is_evenly_distributed_thresholds(self.thresholds)
        self.accumulator = np.zeros(len(self.thresholds), dtype=_F32)

    def update_state(self, y_true, y_pred, sample_weight=None):
        _update_confusion({self._kind: self.accumulator}, y_true, y_pred, self.thresholds,
                          thresholds_distributed_evenly=self._thresholds_distributed_evenly,
                          sample_weight=sample_weight)

    def result(self):
        return _out(self.accumulator[0] if len(self.thresholds) == 1 else self.accumulator)

    def reset_state(self):
        self.accumulator[...] = 0.0

    def get_config(self):
        config = super().get_config()
        config["thresholds"] = self.init_thresholds
        return config


class TruePositives(_ConfusionMatrixConditionCount):
    """Weighted count of ``y_pred > threshold`` where ``y_true`` is true."""
    _kind = "tp"


class FalsePositives(_ConfusionMatrixConditionCount):
    """Weighted count of ``y_pred > threshold`` where ``y_true`` is false."""
    _kind = "fp"


class TrueNegatives(_ConfusionMatrixConditionCount):
    """Weighted count of ``y_pred <= threshold`` where ``y_true`` is false."""
    _kind = "tn"


class FalseNegatives(_ConfusionMatrixConditionCount):
    """Weighted count of ``y_pred <= threshold`` where ``y_true`` is true."""
    _kind = "fn"


class _PrecisionRecall(Metric):
    _other = None  # 'fp' for precision, 'fn' for recall
    _state_names = ("true_positives",)

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        default_threshold = 0.5 if top_k is None else NEG_INF
        self.thresholds = _parse_init_thresholds(thresholds, default_threshold=default_threshold)
        self._thresholds_distributed_evenly = _is_evenly_distributed_thresholds(self.thresholds)
        self.reset_state()

    def reset_state(self):
        self.true_positives = np.zeros(len(self.thresholds), dtype=_F32)
        setattr(self, self._other_name, np.zeros(len(self.thresholds), dtype=_F32))

    def update_state(self, y_true, y_pred, sample_weight=None):
        _update_confusion({"tp": self.true_positives, self._other: getattr(self, self._other_name)}, y_true, y_pred,
                          self.thresholds, thresholds_distributed_evenly=self._thresholds_distributed_evenly,
                          top_k=self.top_k, class_id=self.class_id, sample_weight=sample_weight)

    def result(self):
        # Precision: tp / (tp + fp); Recall: tp / (tp + fn) (divide_no_nan)
        tp = self.true_positives
        r = _divide_no_nan(tp, tp + getattr(self, self._other_name))
        return _out(r[0] if len(self.thresholds) == 1 else r)

    @property
    def variables(self):
        return [self.true_positives, getattr(self, self._other_name)]

    def get_config(self):
        config = super().get_config()
        config.update({"thresholds": self.init_thresholds, "top_k": self.top_k, "class_id": self.class_id})
        return config


class Precision(_PrecisionRecall):
    """``tp / (tp + fp)`` at ``thresholds`` (default 0.5), optionally over the ``top_k`` predictions or
    one ``class_id``."""
    _other, _other_name = "fp", "false_positives"


class Recall(_PrecisionRecall):
    """``tp / (tp + fn)`` at ``thresholds`` (default 0.5), optionally over the ``top_k`` predictions or
    one ``class_id``."""
    _other, _other_name = "fn", "false_negatives"


_CURVES = {"roc": "ROC", "pr": "PR", "prgain": "PRGAIN"}
_SUMMATIONS = {"interpolation": "interpolation", "majoring": "majoring", "minoring": "minoring"}


class AUC(Metric):
    """Area under the ROC (default) or PR curve, approximated over ``num_thresholds`` thresholds (Keras 3)."""

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name=None, dtype=None,
                 thresholds=None, multi_label=False, num_labels=None, label_weights=None, from_logits=False):
        if str(curve).lower() not in _CURVES:
            raise ValueError(f'Invalid AUC curve value: "{curve}". Expected values are ["PR", "ROC", "PRGAIN"]')
        if str(summation_method).lower() not in _SUMMATIONS:
            raise ValueError(f'Invalid AUC summation method value: "{summation_method}". '
                             'Expected values are ["interpolation", "majoring", "minoring"]')
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            self.num_thresholds = len(thresholds) + 2
            thresholds = sorted(_to_list(thresholds))
            self._thresholds_distributed_evenly = _is_evenly_distributed_thresholds(
                np.array([0.0] + thresholds + [1.0]))
        else:
            if num_thresholds <= 1:
                raise ValueError(f"Argument `num_thresholds` must be an integer > 1. Received: "
                                 f"num_thresholds={num_thresholds}")
            self.num_thresholds = num_thresholds
            # Keras: (num_thresholds - 2) thresholds evenly inside (0, 1)
            thresholds = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._thresholds_distributed_evenly = True
        # Keras: endpoints -eps and 1 + eps catch predictions of exactly 0 and 1
        self._thresholds = np.array([0.0 - EPSILON] + thresholds + [1.0 + EPSILON])
        self.curve = _CURVES[str(curve).lower()]
        self.summation_method = _SUMMATIONS[str(summation_method).lower()]
        super().__init__(name=name, dtype=dtype)
        self.multi_label = multi_label
        self.num_labels = num_labels
        self.label_weights = None if label_weights is None else np.asarray(label_weights, dtype=_F32)
        self._from_logits = from_logits
        self._built = False
        if self.multi_label:
            if num_labels:
                self._build((None, num_labels))
        else:
            if num_labels:
                raise ValueError("`num_labels` is needed only when `multi_label` is True.")
            self._build(None)

    @property
    def thresholds(self):
        return list(self._thresholds)

    def _build(self, shape):
        if self.multi_label:
            if len(shape) != 2:
                raise ValueError(f"`y_pred` must have rank 2 when `multi_label=True`. Found rank {len(shape)}. "
                                 f"Full shape received for `y_pred`: {shape}")
            self._num_labels = shape[1]
            variable_shape = (self.num_thresholds, self._num_labels)
        else:
            variable_shape = (self.num_thresholds,)
        self._variable_shape = variable_shape
        self.true_positives = np.zeros(variable_shape, dtype=_F32)
        self.false_positives = np.zeros(variable_shape, dtype=_F32)
        self.true_negatives = np.zeros(variable_shape, dtype=_F32)
        self.false_negatives = np.zeros(variable_shape, dtype=_F32)
        self._built = True

    @property
    def variables(self):
        if not self._built:
            return []
        return [self.true_positives, self.false_positives, self.true_negatives, self.false_negatives]

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = _f32(y_pred, "y_pred")
        if not self._built:
            self._build(y_pred.shape)
        if self._from_logits:
            y_pred = losses._sigmoid(y_pred).astype(_F32)
        _update_confusion({"tp": self.true_positives, "tn": self.true_negatives, "fp": self.false_positives,
                           "fn": self.false_negatives}, y_true, y_pred, self._thresholds,
                          thresholds_distributed_evenly=self._thresholds_distributed_evenly,
                          sample_weight=sample_weight, multi_label=self.multi_label,
                          label_weights=None if self.multi_label else self.label_weights)

    def _average(self, by_label):
        if self.label_weights is None:
            return np.mean(by_label, dtype=_F32)
        return _divide_no_nan(np.sum(by_label * self.label_weights, dtype=_F32), np.sum(self.label_weights))

    def interpolate_pr_auc(self):
        """Keras (Davis & Goadrich): precision interpolated along the predicted-positive count."""
        n = self.num_thresholds
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[:n - 1] - tp[1:]
        p = tp + fp
        dp = p[:n - 1] - p[1:]
        prec_slope = _divide_no_nan(dtp, np.maximum(dp, _F32(0.0)))
        intercept = tp[1:] - prec_slope * p[1:]
        safe_p_ratio = np.where((p[:n - 1] > 0) & (p[1:] > 0),
                                _divide_no_nan(p[:n - 1], np.maximum(p[1:], _F32(0.0))), _F32(1.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = np.log(safe_p_ratio).astype(_F32)
        # Keras: sum(slope * (dtp + intercept * log(p_A / p_B)) / (tp_B + fn_B))
        pr_auc_increment = _divide_no_nan(prec_slope * (dtp + intercept * log_ratio),
                                          np.maximum(tp[1:] + fn[1:], _F32(0.0)))
        if self.multi_label:
            return self._average(np.sum(pr_auc_increment, axis=0, dtype=_F32))
        return np.sum(pr_auc_increment, dtype=_F32)

    def result(self):
        if not self._built:
            return 0.0
        n = self.num_thresholds
        if self.curve == "PR" and self.summation_method == "interpolation":
            return _out(self.interpolate_pr_auc())
        tp, fp, tn, fn = self.true_positives, self.false_positives, self.true_negatives, self.false_negatives
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x = _divide_no_nan(fp, fp + tn)  # false positive rate
            y = recall
        elif self.curve == "PR":
            x = recall
            y = _divide_no_nan(tp, tp + fp)  # precision
        else:  # PRGAIN
            scaling = _divide_no_nan(tp + fn, tn + fp)
            recall_gain = _F32(1.0) - scaling * _divide_no_nan(fn, tp)
            precision_gain = _F32(1.0) - scaling * _divide_no_nan(fp, tp)
            recall_gain = np.where(tp == 0, _F32(0.0), recall_gain)
            precision_gain = np.where(tp == 0, _F32(1.0), precision_gain)
            x = np.maximum(recall_gain, _F32(0.0))
            y = precision_gain
        if self.summation_method == "interpolation":
            heights = (y[:n - 1] + y[1:]) / _F32(2.0)  # Keras: trapezoids
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:n - 1], y[1:])
        else:
            heights = np.maximum(y[:n - 1], y[1:])
        # Keras: auc = sum((x[i] - x[i+1]) * heights[i])
        riemann_terms = (x[:n - 1] - x[1:]) * heights
        if self.multi_label:
            return _out(self._average(np.sum(riemann_terms, axis=0, dtype=_F32)))
        return _out(np.sum(riemann_terms, dtype=_F32))

    def reset_state(self):
        if self._built:
            for arr in self.variables:
                arr[...] = 0.0

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
            "from_logits": self._from_logits,
        })
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config


# --------------------------------------------------------------------------- #
# F-scores (keras/src/metrics/f_score_metrics.py)
# --------------------------------------------------------------------------- #
class FBetaScore(Metric):
    """F-beta score per class (``average=None``) or averaged ('micro', 'macro', 'weighted')."""

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError("Invalid `average` argument value. Expected one of: {None, 'micro', 'macro', "
                             f"'weighted'}}. Received: average={average}")
        if not isinstance(beta, float):
            raise ValueError(f"Invalid `beta` argument value. It should be a Python float. Received: beta={beta} of "
                             f"type '{type(beta)}'")
        if beta <= 0.0:
            raise ValueError(f"Invalid `beta` argument value. It should be > 0. Received: beta={beta}")
        if threshold is not None:
            if not isinstance(threshold, float):
                raise ValueError("Invalid `threshold` argument value. It should be a Python float. Received: "
                                 f"threshold={threshold} of type '{type(threshold)}'")
            if threshold > 1.0 or threshold <= 0.0:
                raise ValueError("Invalid `threshold` argument value. It should verify 0 < threshold <= 1. "
                                 f"Received: threshold={threshold}")
        self.average = average
        self.beta = beta
        self.threshold = threshold
        self.axis = None if average == "micro" else 0
        self._built = False

    def _build(self, y_true_shape, y_pred_shape):
        if len(y_pred_shape) != 2 or len(y_true_shape) != 2:
            raise ValueError("FBetaScore expects 2D inputs with shape (batch_size, output_dim). Received input "
                             f"shapes: y_pred.shape={y_pred_shape} and y_true.shape={y_true_shape}.")
        num_classes = y_pred_shape[-1]
        shape = () if self.average == "micro" else (num_classes,)
        self.true_positives = np.zeros(shape, dtype=_F32)
        self.false_positives = np.zeros(shape, dtype=_F32)
        self.false_negatives = np.zeros(shape, dtype=_F32)
        self.intermediate_weights = np.zeros(shape, dtype=_F32)
        self._built = True

    @property
    def variables(self):
        if not self._built:
            return []
        return [self.true_positives, self.false_positives, self.false_negatives, self.intermediate_weights]

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = _f32(y_true, "y_true")
        y_pred = _f32(y_pred, "y_pred")
        if not self._built:
            self._build(y_true.shape, y_pred.shape)
        if self.threshold is None:
            # Keras: the row maximum is the positive class (an all-zero row has none)
            threshold = np.max(y_pred, axis=-1, keepdims=True)
            y_pred = (y_pred >= threshold) & (np.abs(y_pred) > 1e-9)
        else:
            y_pred = y_pred > _F32(self.threshold)
        y_pred = y_pred.astype(_F32)
        w = None if sample_weight is None else _f32(sample_weight, "sample_weight").reshape(-1, 1)

        def weighted_sum(val):
            if w is not None:
                val = val * w
            return np.sum(val, axis=self.axis, dtype=_F32)

        one = _F32(1.0)
        # Keras: tp += sum(p t), fp += sum(p (1 - t)), fn += sum((1 - p) t), weights += sum(t)
        self.true_positives = (self.true_positives + weighted_sum(y_pred * y_true)).astype(_F32)
        self.false_positives = (self.false_positives + weighted_sum(y_pred * (one - y_true))).astype(_F32)
        self.false_negatives = (self.false_negatives + weighted_sum((one - y_pred) * y_true)).astype(_F32)
        self.intermediate_weights = (self.intermediate_weights + weighted_sum(y_true)).astype(_F32)

    def result(self):
        if not self._built:
            return 0.0
        eps = _F32(EPSILON)
        tp = self.true_positives
        # Keras: precision = tp / (tp + fp + eps); recall = tp / (tp + fn + eps)
        precision = tp / (tp + self.false_positives + eps)
        recall = tp / (tp + self.false_negatives + eps)
        beta2 = _F32(self.beta ** 2)
        # Keras: f = (1 + beta^2) * p * r / (beta^2 p + r + eps)
        f_score = (precision * recall) / (beta2 * precision + recall + eps) * (_F32(1.0) + beta2)
        if self.average == "weighted":
            weights = self.intermediate_weights / (np.sum(self.intermediate_weights, dtype=_F32) + eps)
            f_score = np.sum(f_score * weights, dtype=_F32)
        elif self.average is not None:  # micro, macro
            f_score = np.mean(f_score, dtype=_F32)
        return _out(f_score)

    def reset_state(self):
        if self._built:
            for arr in self.variables:
                arr[...] = 0.0

    def get_config(self):
        config = super().get_config()
        config.update({"average": self.average, "beta": self.beta, "threshold": self.threshold})
        return config


class F1Score(FBetaScore):
    """F1 score: FBetaScore with ``beta=1``."""

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        del config["beta"]
        return config


# --------------------------------------------------------------------------- #
# Lookup
# --------------------------------------------------------------------------- #
ALL_OBJECTS = {Metric, Mean, Sum, MeanMetricWrapper, MeanSquaredError, RootMeanSquaredError, MeanAbsoluteError,
               AUC, FalseNegatives, FalsePositives, Precision, Recall, TrueNegatives, TruePositives,
               BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy, Accuracy, BinaryAccuracy,
               CategoricalAccuracy, SparseCategoricalAccuracy, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy,
               F1Score, FBetaScore, MeanSquaredLogarithmicError, MeanAbsolutePercentageError, LogCoshError, Hinge,
               SquaredHinge, Poisson, KLDivergence, CategoricalHinge, CosineSimilarity}
ALL_OBJECTS_DICT = {cls.__name__: cls for cls in ALL_OBJECTS}
ALL_OBJECTS_DICT.update({losses._to_snake_case(cls.__name__): cls for cls in ALL_OBJECTS})
ALL_OBJECTS_DICT.update({"bce": BinaryCrossentropy, "BCE": BinaryCrossentropy, "mse": MeanSquaredError,
                         "MSE": MeanSquaredError, "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
                         "mape": MeanAbsolutePercentageError, "MAPE": MeanAbsolutePercentageError,
                         "msle": MeanSquaredLogarithmicError, "MSLE": MeanSquaredLogarithmicError})


def serialize(metric):
    """``{'module': 'keras.metrics', 'class_name', 'config', 'registered_name'}``."""
    if isinstance(metric, Metric):
        cls = type(metric)
        builtin = ALL_OBJECTS_DICT.get(cls.__name__) is cls
        config = metric.get_config()
        if callable(config.get("fn")):
            config["fn"] = losses._function_by_name(config["fn"])
        return {"module": "keras.metrics" if builtin else cls.__module__, "class_name": cls.__name__,
                "config": config, "registered_name": None if builtin else cls.__name__}
    if callable(metric):
        return losses._serialize_function(metric) if metric in losses._KERNELS else losses._function_by_name(metric)
    raise ValueError(f"Could not serialize metric {metric!r}")


def deserialize(config, custom_objects=None):
    """A metric from ``serialize``'s dict (or a name)."""
    objects = dict(ALL_OBJECTS_DICT)
    objects.update(custom_objects or {})
    if isinstance(config, str):
        if config not in objects:
            raise ValueError(f"Could not interpret metric identifier: {config}")
        return objects[config]
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Could not interpret metric config: {config!r}")
    if config["class_name"] == "function":
        return losses._deserialize_function(config, custom_objects)
    cls = objects.get(config["class_name"]) or objects.get(config.get("registered_name") or "")
    if cls is None or not inspect.isclass(cls):
        raise ValueError(f"Could not interpret metric identifier: unknown class_name {config['class_name']!r}")
    inner = dict(config.get("config") or {})
    if isinstance(inner.get("fn"), dict):
        inner["fn"] = losses._deserialize_function(inner["fn"], custom_objects)
    return cls.from_config(inner)


def get(identifier):
    """A metric from a name ('accuracy', 'AUC', 'auc', 'mse', ...: an instance of the class), a
    serialized dict, a class, an instance, or a function (returned as is), as ``keras.metrics.get``."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = ALL_OBJECTS_DICT.get(identifier)
        if obj is None:
            raise ValueError(f"Could not interpret metric identifier: {identifier!r}; valid names are "
                             f"{', '.join(sorted(ALL_OBJECTS_DICT))}")
    else:
        obj = identifier
    if callable(obj):
        if inspect.isclass(obj):
            obj = obj()
        return obj
    raise ValueError(f"Could not interpret metric identifier: {identifier}")


def _loss_kind(loss):
    """'binary', 'sparse', 'categorical' or None for a loss given to compile."""
    if isinstance(loss, str):
        try:
            loss = losses.get(loss)
        except ValueError:
            return None
    if isinstance(loss, losses.LossFunctionWrapper):
        loss = loss.fn
    return {losses.binary_crossentropy: "binary", losses.sparse_categorical_crossentropy: "sparse",
            losses.categorical_crossentropy: "categorical"}.get(loss)


def _accuracy_class(loss, output_shape, y_true_shape):
    out = None if output_shape is None else tuple(output_shape)
    units = out[-1] if out else None
    if out is not None and y_true_shape is not None:
        # Keras 3 (compile_utils.is_binary_or_sparse_categorical) on the actual shapes
        t = tuple(y_true_shape)
        if units == 1:
            return BinaryAccuracy
        t_last = t[-1] if t else None
        if len(t) < len(out) or (t_last == 1 and units is not None and units > 1):
            return SparseCategoricalAccuracy
        return CategoricalAccuracy
    kind = _loss_kind(loss)
    if units == 1:
        return BinaryAccuracy
    if kind == "sparse":
        return SparseCategoricalAccuracy
    if units is None and kind == "binary":
        return BinaryAccuracy
    return CategoricalAccuracy


def resolve(identifier, loss=None, output_shape=None, y_true_shape=None):
    """The metric object ``model.compile(metrics=[identifier])`` uses (Keras 3 ``get_metric``).

    'accuracy' / 'acc' become BinaryAccuracy when the model has one output
    unit, SparseCategoricalAccuracy when the labels are sparse, otherwise
    CategoricalAccuracy. Keras decides from the shapes of y_true and y_pred;
    pass ``y_true_shape`` for that exact rule, otherwise the loss stands for
    the labels' form (a sparse categorical loss means sparse labels; with no
    output shape, binary cross-entropy means one unit). A string identifier
    also names the metric (history keys use the string given); a function is
    wrapped in MeanMetricWrapper named after it.
    """
    if identifier is None:
        return None
    if isinstance(identifier, str) and identifier.lower() in ("accuracy", "acc"):
        return _accuracy_class(loss, output_shape, y_true_shape)(name=identifier)
    obj = get(identifier)
    if isinstance(identifier, str):
        name = identifier
    elif isinstance(obj, Metric):
        name = obj.name
    else:
        name = getattr(obj, "name", None) or getattr(obj, "__name__", None) or type(obj).__name__
    if not isinstance(obj, Metric):
        obj = MeanMetricWrapper(obj)
    obj.name = name
    return obj

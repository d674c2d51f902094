"""The Metric base class and the reduction metrics: Sum, Mean, MeanMetricWrapper.

A metric keeps float32 state as Keras's variables: ``update_state`` adds a
batch, ``result`` reads it, ``reset_state`` starts over. Mean metrics average
per-sample values: ``total += sum(w * v)``, ``count += sum(w)`` (N without
weights; a 1-D prediction is one sample, as in Keras).
"""
import numpy as np

from gradsmith import losses
from gradsmith.losses import squeeze_or_expand_to_same_rank
from gradsmith.losses.base import _auto_name, _deserialize_function, _serialize_function, _KERNELS
from gradsmith.losses.reduction import _f32, _sparse_labels

__all__ = ["Metric", "Sum", "Mean", "MeanMetricWrapper"]

_F32 = np.float32


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
        if sample_weight is not None and self._fn is losses.sparse_categorical_crossentropy \
                and self._fn_kwargs.get("ignore_class") is not None:
            # Keras: the loss masks the ignored labels, and Mean folds that mask into the sample weights
            # (apply_mask, reduction 'sum': w * mask) only when there are weights. Without weights the ignored
            # samples add 0 to the total and still count, as in Keras 3.15.
            labels = _sparse_labels(*squeeze_or_expand_to_same_rank(np.asarray(y_true), _f32(y_pred, "y_pred")))
            mask = (labels != self._fn_kwargs["ignore_class"]).astype(_F32)
            mask, sample_weight = squeeze_or_expand_to_same_rank(mask, _f32(sample_weight, "sample_weight"))
            sample_weight = sample_weight * mask
        return super().update_state(values, sample_weight=sample_weight)

    def get_config(self):
        config = super().get_config()
        fn = self._fn
        config["fn"] = _serialize_function(fn) if fn in _KERNELS else fn
        config.update(self._fn_kwargs)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "fn" in config and not callable(config["fn"]):
            config["fn"] = _deserialize_function(config["fn"])
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

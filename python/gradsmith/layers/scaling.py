"""Keras 3's numeric preprocessing layers: Rescaling (``x * scale + offset``) and Normalization (``(x - mean) /
max(sqrt(variance), 1e-7)``, its statistics from ``adapt``).

Both are fixed functions of their input while training. At the start of a model (right after its Input)
they are *input transforms*: the compiled step applies them to each batch before the C++ plan, which then
starts at the next layer, so a model such as ``Sequential([Rescaling(1/255), Conv2D(...), ...])`` keeps
its compiled step. Elsewhere in a model they run layer by layer.
"""
import numpy as np

from gradsmith.layers.base import Layer, NoCompiledForm

__all__ = ["Normalization", "Rescaling"]

_EPSILON = np.float32(1e-7)  # Keras's backend.epsilon()


def _scalar_or_array(value, what):
    a = np.asarray(value, np.float64)
    if a.dtype.kind not in "iuf" or not np.all(np.isfinite(a)):
        raise ValueError(f"{what} must be finite numbers, got {value!r:.100}")
    return a


class Rescaling(Layer):
    """``x * scale + offset`` (e.g. ``Rescaling(1./255)`` for pixels; ``scale`` and ``offset`` a number or an
    array broadcast against the input)."""

    supports_masking = True
    _input_transform = True  # a fixed function of the input: the compiled step applies it before the plan
    _steps_pointwise = True

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = scale, offset
        self._scale = _scalar_or_array(scale, "Rescaling: scale").astype(np.float32)
        self._offset = _scalar_or_array(offset, "Rescaling: offset").astype(np.float32)

    def compute_output_shape(self, input_shape):
        try:
            shape = np.broadcast_shapes(tuple(1 if d is None else d for d in input_shape), self._scale.shape,
                                        self._offset.shape)
        except ValueError:
            raise ValueError(f"Rescaling {self.name!r}: scale {self._scale.shape} and offset {self._offset.shape} do "
                             f"not broadcast against inputs of shape {tuple(input_shape)}") from None
        if len(shape) != len(input_shape):
            raise ValueError(f"Rescaling {self.name!r}: scale and offset have more axes than the input")
        return tuple(input_shape)

    def forward(self, x, training=False):
        x = np.asarray(x, np.float32)
        return (x * self._scale + self._offset).astype(np.float32)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        dx = np.asarray(dy, np.float32) * self._scale
        return np.ascontiguousarray(np.broadcast_to(dx, np.shape(dy)), dtype=np.float32)

    def _compiled_config(self, input_shape, offset):
        raise NoCompiledForm(f"Rescaling {self.name!r} runs in the compiled step only at the start of the model")

    def get_config(self):
        def plain(v):
            return v.tolist() if isinstance(v, np.ndarray) else v
        return {**super().get_config(), "scale": plain(self.scale), "offset": plain(self.offset)}


class Normalization(Layer):
    """``(x - mean) / max(sqrt(variance), 1e-7)`` per feature along ``axis`` (default the last; ``None``: one
    mean and variance for everything), ``invert=True`` for the inverse. The statistics are given, or learned by
    ``adapt(data)`` (the mean and the population variance over every other axis); they are the layer's
    non-trainable weights ``mean``, ``variance`` and ``count``, as Keras saves them."""

    supports_masking = True
    _input_transform = True

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            axis = (int(axis),)
        elif isinstance(axis, (list, tuple)) and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                                                     for a in axis):
            axis = tuple(int(a) for a in axis)
        else:
            raise ValueError(f"Normalization: axis must be an integer, a list of them or None, got {axis!r}")
        self.axis = axis
        if (mean is None) != (variance is None):
            raise ValueError("Normalization: give both mean and variance, or neither (and call adapt)")
        self.input_mean = None if mean is None else _scalar_or_array(mean, "Normalization: mean")
        self.input_variance = None if variance is None else _scalar_or_array(variance, "Normalization: variance")
        self.invert = bool(invert)
        self._mean = self._variance = None

    def _keep(self, ndim):
        keep = []
        for a in self.axis:
            if not -ndim <= a < ndim or a % ndim == 0:
                raise ValueError(f"Normalization {self.name!r}: axis {a} is not a feature axis of inputs of rank "
                                 f"{ndim}")
            keep.append(a % ndim)
        return tuple(sorted(set(keep)))

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        keep = self._keep(len(input_shape))
        if any(input_shape[d] is None for d in keep):
            raise ValueError(f"Normalization {self.name!r}: the kept axes {keep} of inputs {input_shape} must be known")
        self._keep_axes = keep
        self._broadcast = tuple(input_shape[d] if d in keep else 1 for d in range(len(input_shape)))[1:]
        shape = tuple(input_shape[d] for d in keep)
        if self.input_mean is None:
            self._mean = self.add_weight("mean", shape, "zeros", trainable=False)
            self._variance = self.add_weight("variance", shape, "ones", trainable=False)
            self._count = self.add_weight("count", (), "zeros", trainable=False)
            self._count.h5_dtype = np.int32  # Keras's count is an int32 variable
        super().build(input_shape)

    def _statistics(self):
        """(mean, variance) broadcastable against a batch."""
        if self.input_mean is not None:
            mean, var = self.input_mean.astype(np.float32), self.input_variance.astype(np.float32)
            if mean.ndim == 0:
                return mean, var
            return mean.reshape(self._broadcast), var.reshape(self._broadcast)
        return self._mean.value.reshape(self._broadcast), self._variance.value.reshape(self._broadcast)

    def adapt(self, data, batch_size=None, steps=None):
        """The mean and population variance of ``data`` (an array, or batches of arrays) over every axis but
        the kept ones."""
        if isinstance(data, np.ndarray) or not hasattr(data, "__iter__"):
            data = np.asarray(data, np.float64)
        else:
            parts = [np.asarray(b[0] if isinstance(b, (tuple, list)) else b, np.float64) for b in data]
            data = np.concatenate(parts, axis=0)
        if data.dtype.kind not in "biuf" or data.ndim < 1 or not np.all(np.isfinite(data)):
            raise ValueError(f"Normalization {self.name!r}: adapt needs finite numbers with a batch axis")
        if len(data) == 0:
            raise ValueError(f"Normalization {self.name!r}: adapt needs at least one sample")
        if data.ndim == 1:
            data = data[:, None]
        if not self.built:
            self.build((None,) + data.shape[1:])
        if self.input_mean is not None:
            raise ValueError(f"Normalization {self.name!r} was given its mean and variance; it does not adapt")
        reduce = tuple(d for d in range(data.ndim) if d not in self._keep_axes)
        self._mean.value[...] = data.mean(axis=reduce).reshape(self._mean.shape)
        self._variance.value[...] = data.var(axis=reduce).reshape(self._variance.shape)

    def forward(self, x, training=False):
        x = np.asarray(x, np.float32)
        mean, var = self._statistics()
        scale = np.maximum(np.sqrt(var), _EPSILON)
        if self.invert:
            return (mean + x * scale).astype(np.float32)
        return ((x - mean) / scale).astype(np.float32)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        _, var = self._statistics()
        scale = np.maximum(np.sqrt(var), _EPSILON)
        dy = np.asarray(dy, np.float32)
        return (dy * scale if self.invert else dy / scale).astype(np.float32)

    def _compiled_config(self, input_shape, offset):
        raise NoCompiledForm(f"Normalization {self.name!r} runs in the compiled step only at the start of the model")

    def get_config(self):
        def plain(v):
            return None if v is None else (v.tolist() if v.ndim else float(v))
        return {**super().get_config(), "axis": list(self.axis), "invert": self.invert,
                "mean": plain(self.input_mean), "variance": plain(self.input_variance)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        axis = config.pop("axis", -1)
        if isinstance(axis, list):
            axis = tuple(axis)
        return super().from_config({**config, "axis": axis})

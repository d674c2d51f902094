"""Keras 3's activation layers: ReLU, LeakyReLU, ELU and Softmax. Each is an ``Activation`` with its
parameter, and runs on the activation kernels (compiled step included). ``ReLU`` with ``max_value`` or
``threshold`` (ReLU6, a thresholded ReLU) has no kernel: it is NumPy, layer by layer, with Keras's formula."""
import numpy as np

from gradsmith.layers.base import NoCompiledForm
from gradsmith.layers.core import Activation

__all__ = ["ELU", "LeakyReLU", "ReLU", "Softmax"]


def _number(value, what, low=0.0):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or \
            not np.isfinite(value) or value < low:
        raise ValueError(f"{what} must be a number >= {low}, got {value!r}")
    return float(value)


class ReLU(Activation):
    """``max(x, 0)``; with Keras's ``negative_slope``, ``max_value`` and ``threshold``: ``y = min(max_value, x)``
    for x > threshold, else ``negative_slope * (x - threshold)``."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        self.max_value = None if max_value is None else _number(max_value, "ReLU: max_value")
        self.negative_slope = _number(negative_slope, "ReLU: negative_slope")
        self.threshold = _number(threshold, "ReLU: threshold")
        plain = self.max_value is None and self.threshold == 0.0
        super().__init__("leaky_relu" if plain and self.negative_slope else "relu", **kwargs)
        self._plain = plain
        self._negative_slope = self.negative_slope

    def forward(self, x, training=False):
        if self._plain:
            return super().forward(x, training)
        x = np.asarray(x, np.float32)
        if training:
            self._x = x
        above = x > self.threshold
        y = np.where(above, x, np.float32(self.negative_slope) * (x - np.float32(self.threshold)))
        if self.max_value is not None:
            y = np.minimum(y, np.float32(self.max_value))
        return y.astype(np.float32)

    def backward(self, dy, need_dx=True):
        if self._plain:
            return super().backward(dy, need_dx)
        x, self._x = self._x, None
        slope = np.where(x > self.threshold, np.float32(1),
                         np.where(x < self.threshold, np.float32(self.negative_slope), np.float32(0)))
        if self.max_value is not None:
            slope = np.where((x > self.threshold) & (x >= self.max_value), np.float32(0), slope)
        return (dy * slope).astype(np.float32)

    def _compiled_config(self, input_shape, offset):
        if not self._plain:
            raise NoCompiledForm(f"ReLU {self.name!r} with max_value or threshold runs layer by layer")
        return super()._compiled_config(input_shape, offset)

    def get_config(self):
        config = super().get_config()
        config.pop("activation")
        return {**config, "max_value": self.max_value, "negative_slope": self.negative_slope,
                "threshold": self.threshold}


class LeakyReLU(Activation):
    """``x`` for x >= 0, else ``negative_slope * x`` (Keras 3's default slope 0.3)."""

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:  # Keras 2's name
            negative_slope = kwargs.pop("alpha")
        self.negative_slope = _number(negative_slope, "LeakyReLU: negative_slope")
        super().__init__("leaky_relu", **kwargs)
        self._negative_slope = self.negative_slope

    def get_config(self):
        config = super().get_config()
        config.pop("activation")
        return {**config, "negative_slope": self.negative_slope}


class ELU(Activation):
    """``x`` for x > 0, else ``alpha * (exp(x) - 1)``."""

    def __init__(self, alpha=1.0, **kwargs):
        self.alpha = _number(alpha, "ELU: alpha", low=-np.inf)
        super().__init__("elu", **kwargs)
        self._alpha = self.alpha

    def get_config(self):
        config = super().get_config()
        config.pop("activation")
        return {**config, "alpha": self.alpha}


class Softmax(Activation):
    """Softmax along ``axis`` (the last axis only)."""

    def __init__(self, axis=-1, **kwargs):
        if axis not in (-1, [-1]):
            raise NotImplementedError(f"Softmax: only axis=-1 is supported, got {axis!r}")
        self.axis = -1
        super().__init__("softmax", **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("activation")
        return {**config, "axis": self.axis}

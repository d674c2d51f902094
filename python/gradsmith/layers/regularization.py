"""Keras 3's noise and spatial-dropout layers: GaussianNoise, GaussianDropout, SpatialDropout1D / 2D, and
Identity. The spatial dropouts are ``Dropout`` with Keras's noise shape (a whole channel dropped per sample),
so they run in the compiled step; the Gaussian layers are NumPy, layer by layer, and act only while
training."""
import numpy as np

from gradsmith import utils
from gradsmith.layers.base import Layer
from gradsmith.layers.core import Dropout

__all__ = ["GaussianDropout", "GaussianNoise", "Identity", "SpatialDropout1D", "SpatialDropout2D"]


class _Gaussian(Layer):
    supports_masking = True
    _steps_pointwise = True

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"{type(self).__name__}: seed must be an integer or None, got {seed!r}")
        self.seed = seed
        self._rng = np.random.default_rng(seed if seed is not None else int(utils.global_rng().integers(0, 2**63)))
        self._factor = None

    def backward(self, dy, need_dx=True):
        factor, self._factor = self._factor, None
        return dy if factor is None else (dy * factor).astype(np.float32)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class GaussianNoise(_Gaussian):
    """Adds zero-mean Gaussian noise of standard deviation ``stddev`` while training."""

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(stddev, bool) or not isinstance(stddev, (int, float, np.integer, np.floating)) or stddev < 0:
            raise ValueError(f"GaussianNoise: stddev must be a number >= 0, got {stddev!r}")
        self.stddev = float(stddev)

    def forward(self, x, training=False):
        x = np.asarray(x, np.float32)
        if not training or self.stddev == 0:
            return x
        return (x + self._rng.normal(0.0, self.stddev, x.shape).astype(np.float32)).astype(np.float32)

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}


class GaussianDropout(_Gaussian):
    """Multiplies by Gaussian noise of mean 1 and standard deviation sqrt(rate / (1 - rate)) while training."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) or \
                not 0 <= rate < 1:
            raise ValueError(f"GaussianDropout: rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)

    def forward(self, x, training=False):
        x = np.asarray(x, np.float32)
        if not training or self.rate == 0:
            return x
        std = np.sqrt(self.rate / (1.0 - self.rate))
        self._factor = self._rng.normal(1.0, std, x.shape).astype(np.float32)
        return (x * self._factor).astype(np.float32)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


class SpatialDropout1D(Dropout):
    """Drops whole channels of (batch, steps, channels) inputs: Dropout with noise shape (batch, 1, channels)."""

    _rank = 3

    def __init__(self, rate, seed=None, **kwargs):
        kwargs.pop("noise_shape", None)
        super().__init__(rate, noise_shape=(None,) + (1,) * (self._rank - 2) + (None,), seed=seed, **kwargs)

    def build(self, input_shape):
        if len(input_shape) != self._rank:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected inputs of rank {self._rank}, got "
                             f"{tuple(input_shape)}")
        super().build(input_shape)

    def get_config(self):
        """Keras's: rate, seed, name and dtype (no trainable, no noise shape)."""
        config = super().get_config()
        for key in ("noise_shape", "trainable"):
            config.pop(key, None)
        return config


class SpatialDropout2D(SpatialDropout1D):
    """Drops whole channels of (batch, rows, cols, channels) images."""

    _rank = 4

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        if data_format not in (None, "channels_last"):
            raise NotImplementedError("SpatialDropout2D: only data_format='channels_last' is supported")
        super().__init__(rate, seed=seed, **kwargs)

    def get_config(self):
        return {**super().get_config(), "data_format": "channels_last"}


class Identity(Layer):
    """Passes its input on unchanged."""

    supports_masking = True
    _steps_pointwise = True

    def forward(self, x, training=False):
        return x

    def backward(self, dy, need_dx=True):
        return dy

    def _compiled_config(self, input_shape, offset):
        return {"kind": "Reshape", "numbers": {}, "lists": {"target_shape": list(input_shape)}}

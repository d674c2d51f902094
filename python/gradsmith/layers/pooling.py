"""Pooling layers, channels last (Keras 3's names, arguments and numbers): max and average over windows, and
over whole images or sequences (the global poolings). 1-D pooling runs as 2-D pooling over images one pixel
high: the same kernels (``ops.pool2d_forward`` / ``pool2d_backward``, cpp/cpu/pool.cpp) and the same compiled
layer (cpp/model/layers/pooling.h).

Max pooling takes the first maximum of each window and propagates NaN; its gradient goes to that pixel.
Average pooling with 'same' padding divides by the pixels inside the image, as TensorFlow does.
"""
import numpy as np

from gradsmith import _core, ops
from gradsmith.layers.base import Layer
from gradsmith.layers.convolutional import as_tuple, check_data_format, padding_name, window_output

__all__ = ["MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "GlobalMaxPooling1D",
           "GlobalMaxPooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "MaxPool1D", "MaxPool2D",
           "AvgPool1D", "AvgPool2D", "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalAvgPool1D", "GlobalAvgPool2D"]


def _check_rank(layer, input_shape):
    if len(input_shape) != layer.rank + 2:
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: expected inputs of rank {layer.rank + 2}, got "
                         f"{tuple(input_shape)}")


class _Pooling(Layer):
    rank = 2
    mode = "max"

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        what = type(self).__name__
        check_data_format(data_format, what)
        self.pool_size = as_tuple(pool_size, self.rank, f"{what}: pool_size")
        self.strides = self.pool_size if strides is None else as_tuple(strides, self.rank, f"{what}: strides")
        self.padding = padding_name(padding, ("valid", "same"), what)
        self._cache = None

    def _pair(self, values):
        return (1,) + tuple(values) if self.rank == 1 else tuple(values)

    def build(self, input_shape):
        _check_rank(self, input_shape)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        try:
            sides = tuple(window_output(s, p, st, 1, self.padding)
                          for s, p, st in zip(input_shape[1:-1], self.pool_size, self.strides))
        except ValueError as e:
            raise ValueError(f"{type(self).__name__} {self.name!r}: {e} (inputs {tuple(input_shape)}, pool_size "
                             f"{self.pool_size})") from None
        return (input_shape[0],) + sides + (input_shape[-1],)

    def _images(self, x):
        _check_rank(self, x.shape)
        x = np.ascontiguousarray(x, dtype=np.float32)
        return x.reshape(x.shape[0], 1, x.shape[1], x.shape[2]) if self.rank == 1 else x

    def _window(self):
        return dict(pool_size=self._pair(self.pool_size), strides=self._pair(self.strides), padding=self.padding,
                    mode=self.mode)

    def forward(self, x, training=False):
        images = self._images(x)
        out = ops.pool2d_forward(images, **self._window(), return_argmax=training)
        y, arg = out if training else (out, None)
        if training:
            self._cache = (images.shape, arg, x.shape)
        return self._unimages(y)

    def _unimages(self, y):
        return y.reshape((y.shape[0],) + y.shape[2:]) if self.rank == 1 else y

    def backward(self, dy, need_dx=True):
        shape, arg, x_shape = self._cache
        self._cache = None
        if not need_dx:
            return None
        dy = np.ascontiguousarray(dy, dtype=np.float32).reshape((shape[0],) + self._out_images(shape))
        return ops.pool2d_backward(dy, shape, arg, **self._window()).reshape(x_shape)

    def _out_images(self, shape):
        w = self._window()
        return tuple(window_output(s, p, st, 1, self.padding)
                     for s, p, st in zip(shape[1:3], w["pool_size"], w["strides"])) + (shape[3],)

    def _compiled_config(self, input_shape, offset):
        return {"kind": "Pooling",
                "numbers": {"mode": _core.kinds.pool_modes[self.mode], "padding": _core.kinds.paddings[self.padding]},
                "lists": {"pool_size": list(self.pool_size), "strides": list(self.strides)}}

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "padding": self.padding,
                "strides": self.strides, "data_format": "channels_last"}


class MaxPooling2D(_Pooling):
    """Max over (pool_size) windows of each channel, moved by strides (default: pool_size)."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling2D(_Pooling):
    """Mean over (pool_size) windows of each channel, moved by strides (default: pool_size)."""

    mode = "average"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class MaxPooling1D(_Pooling):
    rank = 1

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling1D(_Pooling):
    rank = 1
    mode = "average"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class _GlobalPooling(Layer):
    """Max or mean over every pixel (or step) of each channel: (batch, ..., channels) -> (batch, channels),
    or with ``keepdims`` (batch, 1, ..., 1, channels)."""

    rank = 2
    mode = "max"

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        check_data_format(data_format, type(self).__name__)
        self.keepdims = bool(keepdims)
        self._cache = None

    def build(self, input_shape):
        _check_rank(self, input_shape)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        if self.keepdims:
            return (input_shape[0],) + (1,) * self.rank + (input_shape[-1],)
        return (input_shape[0], input_shape[-1])

    def forward(self, x, training=False):
        _check_rank(self, x.shape)
        x = np.ascontiguousarray(x, dtype=np.float32)
        images = x.reshape(x.shape[0], 1, x.shape[1], x.shape[2]) if self.rank == 1 else x
        out = ops.pool2d_forward(images, mode=self.mode, global_pool=True, return_argmax=training)
        y, arg = out if training else (out, None)
        if training:
            self._cache = (images.shape, arg, x.shape)
        return y.reshape(self.compute_output_shape(x.shape))

    def backward(self, dy, need_dx=True):
        shape, arg, x_shape = self._cache
        self._cache = None
        if not need_dx:
            return None
        dy = np.ascontiguousarray(dy, dtype=np.float32).reshape(shape[0], 1, 1, shape[3])
        return ops.pool2d_backward(dy, shape, arg, mode=self.mode, global_pool=True).reshape(x_shape)

    def _compiled_config(self, input_shape, offset):
        return {"kind": "Pooling", "numbers": {"mode": _core.kinds.pool_modes[self.mode], "global": 1.0,
                                               "keepdims": float(self.keepdims)}}

    def get_config(self):
        return {**super().get_config(), "data_format": "channels_last", "keepdims": self.keepdims}


class GlobalMaxPooling2D(_GlobalPooling):
    pass


class GlobalAveragePooling2D(_GlobalPooling):
    mode = "average"


class GlobalMaxPooling1D(_GlobalPooling):
    rank = 1


class GlobalAveragePooling1D(_GlobalPooling):
    """The mean over the steps; with Keras's mask (Embedding(mask_zero=True)) the mean of the valid steps only,
    ``sum(x * m) / sum(m)`` as Keras computes it (a row with no valid step gives NaN there too); the mask
    stops here."""

    rank = 1
    mode = "average"
    supports_masking = True

    def compute_mask(self, inputs, mask=None):
        return None

    def forward(self, x, training=False):
        mask = self._input_mask
        if mask is None:
            self._mask_cache = None
            return super().forward(x, training=training)
        _check_rank(self, x.shape)
        m = np.asarray(mask, np.float32)[:, :, None]
        count = m.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            y = ((np.asarray(x, np.float32) * m).sum(axis=1, keepdims=True) / count).astype(np.float32)
        self._mask_cache = (m, count) if training else None
        return y if self.keepdims else np.ascontiguousarray(y[:, 0])

    def backward(self, dy, need_dx=True):
        if getattr(self, "_mask_cache", None) is None:
            return super().backward(dy, need_dx)
        (m, count), self._mask_cache = self._mask_cache, None
        if not need_dx:
            return None
        dy = np.asarray(dy, np.float32).reshape(m.shape[0], 1, -1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (dy * m / count).astype(np.float32)


MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D = MaxPooling1D, MaxPooling2D, AveragePooling1D, AveragePooling2D
GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D

"""Keras 3's random image augmentation layers: RandomFlip, RandomRotation, RandomZoom, RandomTranslation,
RandomContrast and RandomBrightness, on (batch, height, width, channels) images (channels last).

They change images while training and pass them through otherwise. The geometric ones resample the images
as Keras 3's ``image.affine_transform`` does (``affine_sample``: Keras's transform matrices, 'reflect', 'wrap',
'constant' or 'nearest' outside the image, bilinear or nearest interpolation), vectorized in NumPy. Each layer draws from its own generator (``seed``,
else gradsmith's global seed), the values of one image together, so the draws do not depend on how the
samples are split into batches. At the start of a model they are input transforms (see layers/scaling.py):
the compiled step applies them to each training batch before the plan. Keras's random draws differ from
these (another generator); the distributions are Keras's.
"""
import numpy as np

from gradsmith import utils
from gradsmith.layers.base import Layer, NoCompiledForm

__all__ = ["RandomBrightness", "RandomContrast", "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom"]

_FILL_MODES = ("reflect", "wrap", "constant", "nearest")
_INTERPOLATIONS = {"bilinear": 1, "nearest": 0}


def _range(factor, what, symmetric_low=None):
    """(low, high) from a number f (-f, f) or a pair, as Keras reads its factors."""
    if isinstance(factor, (list, tuple)):
        if len(factor) != 2:
            raise ValueError(f"{what} must be a number or a pair (low, high), got {factor!r}")
        low, high = factor
    else:
        low, high = (-factor if symmetric_low is None else symmetric_low), factor
    for v in (low, high):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
            raise ValueError(f"{what} must be finite numbers, got {factor!r}")
    if low > high:
        raise ValueError(f"{what}: the low end {low} is above the high end {high}")
    return float(low), float(high)


class _RandomImage(Layer):
    """What the augmentation layers share: images in, a generator, training-only."""

    supports_masking = False
    _input_transform = True

    def __init__(self, seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise NotImplementedError(f"{type(self).__name__}: only data_format='channels_last' is supported")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"{type(self).__name__}: seed must be an integer or None, got {seed!r}")
        self.seed = seed
        self._rng = np.random.default_rng(seed if seed is not None else int(utils.global_rng().integers(0, 2**63)))

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected images (batch, height, width, channels), "
                             f"got inputs of shape {tuple(input_shape)}")
        super().build(input_shape)

    def _draw(self, n, k):
        """(n, k) uniform [0, 1) values: the k values of each image in a row (batch splits do not change them)."""
        return self._rng.random((n, k))

    def forward(self, x, training=False):
        x = np.asarray(x, np.float32)
        if not training or len(x) == 0:
            return x
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected images (batch, height, width, "
                             f"channels), got shape {x.shape}")
        return np.ascontiguousarray(self._augment(x), dtype=np.float32)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        raise NotImplementedError(f"{type(self).__name__} {self.name!r}: gradients through a random augmentation are "
                                  "not supported; put it first in the model (an input transform)")

    def _compiled_config(self, input_shape, offset):
        raise NoCompiledForm(f"{type(self).__name__} {self.name!r} runs in the compiled step only at the start of the "
                             "model")

    def get_config(self):
        return {**super().get_config(), "seed": self.seed, "data_format": "channels_last"}


def _fix_index(i, size, mode):
    """Integer sample positions outside [0, size) for ``mode`` (None where 'constant' fills)."""
    if mode == "nearest":
        return np.clip(i, 0, size - 1)
    if mode == "wrap":
        return np.mod(i, size)
    if mode == "reflect":  # (d c b a | a b c d | d c b a)
        i = np.mod(i, 2 * size)
        return np.where(i >= size, 2 * size - 1 - i, i)
    return None


def affine_sample(images, transforms, order, mode, fill_value):
    """Keras 3's ``image.affine_transform`` (the JAX backend's): output pixel (row y, column x) of image n reads
    the input at column ``a0 x + a1 y + a2`` and row ``b0 x + b1 y + b2`` (``transforms[n]`` = a0, a1, a2, b0,
    b1, b2), nearest (``order`` 0, rounding half up) or bilinear (1), positions outside the image taken by
    ``mode`` ('constant' reads ``fill_value`` there, corner by corner)."""
    n, h, w, c = images.shape
    t = np.asarray(transforms, np.float64)
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    cols = t[:, 0, None, None] * xx + t[:, 1, None, None] * yy + t[:, 2, None, None]
    rows = t[:, 3, None, None] * xx + t[:, 4, None, None] * yy + t[:, 5, None, None]
    batch = np.arange(n)[:, None, None]

    def read(r, q):
        fr, fq = _fix_index(r, h, mode), _fix_index(q, w, mode)
        if fr is None:  # constant: inside or the fill value
            inside = (r >= 0) & (r < h) & (q >= 0) & (q < w)
            vals = images[batch, np.clip(r, 0, h - 1), np.clip(q, 0, w - 1)]
            return np.where(inside[..., None], vals, np.float32(fill_value))
        return images[batch, fr, fq]

    if order == 0:
        return read(np.floor(rows + 0.5).astype(np.int64), np.floor(cols + 0.5).astype(np.int64))
    r0, q0 = np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)
    fr, fq = (rows - r0)[..., None], (cols - q0)[..., None]
    out = (read(r0, q0) * ((1 - fr) * (1 - fq)) + read(r0, q0 + 1) * ((1 - fr) * fq) +
           read(r0 + 1, q0) * (fr * (1 - fq)) + read(r0 + 1, q0 + 1) * (fr * fq))
    return out.astype(np.float32)


class _Geometric(_RandomImage):
    """Rotation, zoom and translation: one affine resampling per image (``affine_sample``), Keras's transforms."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", fill_value=0.0, **kwargs):
        super().__init__(**kwargs)
        if fill_mode not in _FILL_MODES:
            raise ValueError(f"{type(self).__name__}: fill_mode must be one of {_FILL_MODES}, got {fill_mode!r}")
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"{type(self).__name__}: interpolation must be one of {tuple(_INTERPOLATIONS)}, got "
                             f"{interpolation!r}")
        self.fill_mode, self.interpolation, self.fill_value = fill_mode, interpolation, float(fill_value)

    def _augment(self, x):
        return affine_sample(x, self._transforms(x), _INTERPOLATIONS[self.interpolation], self.fill_mode,
                             self.fill_value)

    def get_config(self):
        return {**super().get_config(), "fill_mode": self.fill_mode, "interpolation": self.interpolation,
                "fill_value": self.fill_value}


class RandomFlip(_RandomImage):
    """Flips each image left-right and / or upside down, each with probability 1/2 (``mode``:
    'horizontal', 'vertical' or 'horizontal_and_vertical')."""

    _MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(self, mode="horizontal_and_vertical", seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if mode not in self._MODES:
            raise ValueError(f"RandomFlip: mode must be one of {self._MODES}, got {mode!r}")
        self.mode = mode

    def _augment(self, x):
        u = self._draw(len(x), 2)
        out = x.copy()
        if self.mode != "vertical":
            flip = u[:, 0] < 0.5
            out[flip] = out[flip, :, ::-1]
        if self.mode != "horizontal":
            flip = u[:, 1] < 0.5
            out[flip] = out[flip, ::-1]
        return out

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


class RandomRotation(_Geometric):
    """Rotates each image by a random angle: ``factor`` f turns by up to f * 360 degrees either way (a pair:
    between its two ends)."""

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        kwargs.pop("value_range", None)
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, fill_value=fill_value, seed=seed, **kwargs)
        self.factor = factor
        self._low, self._high = _range(factor, "RandomRotation: factor")

    def _transforms(self, x):
        u = self._draw(len(x), 1)[:, 0]
        theta = np.deg2rad((self._low + (self._high - self._low) * u) * 360.0)
        h, w = x.shape[1:3]
        cx, cy = 0.5 * (w - 1), 0.5 * (h - 1)  # about the image's centre
        cos, sin = np.cos(theta), np.sin(theta)
        return np.stack([cos, -sin, cx - cx * cos + cy * sin, sin, cos, cy - cx * sin - cy * cos], axis=1)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class RandomZoom(_Geometric):
    """Zooms each image: ``height_factor`` f draws a zoom in [1 - ..., 1 + ...] (positive values zoom out);
    ``width_factor`` None keeps the aspect ratio."""

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, fill_value=fill_value, seed=seed, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height = _range(height_factor, "RandomZoom: height_factor")
        self._width = None if width_factor is None else _range(width_factor, "RandomZoom: width_factor")
        if self._height[0] < -1 or (self._width is not None and self._width[0] < -1):
            raise ValueError("RandomZoom: a factor below -1 would zoom by a negative amount")

    def _transforms(self, x):
        u = self._draw(len(x), 2)
        zy = 1.0 + self._height[0] + (self._height[1] - self._height[0]) * u[:, 0]
        zx = zy if self._width is None else 1.0 + self._width[0] + (self._width[1] - self._width[0]) * u[:, 1]
        h, w = x.shape[1:3]
        zero = np.zeros_like(zx)
        return np.stack([zx, zero, (w - 1) / 2.0 * (1.0 - zx), zero, zy, (h - 1) / 2.0 * (1.0 - zy)], axis=1)

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}


class RandomTranslation(_Geometric):
    """Shifts each image by a random fraction of its height and width (``height_factor``, ``width_factor``:
    a number f for [-f, f], or a pair)."""

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, fill_value=fill_value, seed=seed, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height = _range(height_factor, "RandomTranslation: height_factor")
        self._width = _range(width_factor, "RandomTranslation: width_factor")

    def _transforms(self, x):
        u = self._draw(len(x), 2)
        h, w = x.shape[1:3]
        dy = (self._height[0] + (self._height[1] - self._height[0]) * u[:, 0]) * h
        dx = (self._width[0] + (self._width[1] - self._width[0]) * u[:, 1]) * w
        one, zero = np.ones_like(dx), np.zeros_like(dx)
        return np.stack([one, zero, -dx, zero, one, -dy], axis=1)

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}


class RandomContrast(_RandomImage):
    """``(x - mean) * c + mean`` per image and channel (the mean over height and width), c drawn in
    [1 - low, 1 + high], then clipped to ``value_range``."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = factor
        low, high = _range(factor, "RandomContrast: factor", symmetric_low=factor if not isinstance(
            factor, (list, tuple)) else None)
        if low < 0 or high < 0 or low > 1:
            raise ValueError(f"RandomContrast: factor must be in [0, 1] (a pair of such), got {factor!r}")
        self._low, self._high = low, high
        self.value_range = tuple(value_range)

    def _augment(self, x):
        u = self._draw(len(x), 1)[:, 0]
        c = (1.0 - self._low + (self._high + self._low) * u).astype(np.float32).reshape(-1, 1, 1, 1)
        mean = x.mean(axis=(1, 2), keepdims=True)
        return np.clip((x - mean) * c + mean, self.value_range[0], self.value_range[1])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": list(self.value_range)}


class RandomBrightness(_RandomImage):
    """Adds one random amount to each image: a fraction in [low, high] of the ``value_range``'s width, then
    clips to that range."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = factor
        self._low, self._high = _range(factor, "RandomBrightness: factor")
        if self._low < -1 or self._high > 1:
            raise ValueError(f"RandomBrightness: factor must be within [-1, 1], got {factor!r}")
        self.value_range = tuple(value_range)

    def _augment(self, x):
        u = self._draw(len(x), 1)[:, 0]
        delta = (self._low + (self._high - self._low) * u) * (self.value_range[1] - self.value_range[0])
        return np.clip(x + delta.astype(np.float32).reshape(-1, 1, 1, 1), self.value_range[0], self.value_range[1])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": list(self.value_range)}

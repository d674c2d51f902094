"""Layers that move elements without computing (Keras 3): Reshape ((batch, ...) -> (batch, *target_shape), the
elements in the same order; one entry may be -1), RepeatVector, Permute, UpSampling1D/2D (nearest),
ZeroPadding1D/2D and Cropping1D/2D (channels last). Reshape runs in the compiled step; the others are NumPy,
layer by layer."""
import numpy as np

from gradsmith.layers.base import Layer

__all__ = ["Reshape", "RepeatVector", "Permute", "UpSampling1D", "UpSampling2D", "ZeroPadding1D", "ZeroPadding2D",
           "Cropping1D", "Cropping2D"]


class Reshape(Layer):
    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        try:
            shape = tuple(target_shape)
        except TypeError:
            raise ValueError(f"Reshape: target_shape must be a tuple of integers, got {target_shape!r}") from None
        if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and (d >= 1 or d == -1)
                   for d in shape) or sum(d == -1 for d in shape) > 1:
            raise ValueError(f"Reshape: target_shape must be positive integers with at most one -1, got "
                             f"{target_shape!r}")
        self.target_shape = tuple(int(d) for d in shape)

    def _resolved(self, input_shape):
        """target_shape with its -1 worked out from the per-sample input_shape (None when unknown)."""
        if any(d is None for d in input_shape):
            return None if -1 in self.target_shape else self.target_shape
        size = int(np.prod(input_shape, dtype=np.int64))
        known = int(np.prod([d for d in self.target_shape if d != -1], dtype=np.int64))
        shape = tuple(size // known if d == -1 else d for d in self.target_shape)
        if int(np.prod(shape, dtype=np.int64)) != size:
            raise ValueError(f"Reshape {self.name!r}: cannot reshape inputs of shape {tuple(input_shape)} (size "
                             f"{size}) into {self.target_shape}")
        return shape

    def compute_output_shape(self, input_shape):
        shape = self._resolved(tuple(input_shape[1:]))
        if shape is None:
            return (input_shape[0],) + tuple(None if d == -1 else d for d in self.target_shape)
        return (input_shape[0],) + shape

    def forward(self, x, training=False):
        self._shape = x.shape
        return x.reshape((x.shape[0],) + self._resolved(x.shape[1:]))

    def backward(self, dy, need_dx=True):
        return dy.reshape(self._shape)

    def _compiled_config(self, input_shape, offset):
        return {"kind": "Reshape", "numbers": {}, "lists": {"target_shape": list(self._resolved(tuple(input_shape)))}}

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}


def _pairs(value, n, what):
    """Keras's padding / cropping argument: an int, n ints, or n (before, after) pairs -> n pairs."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pairs = [(int(value), int(value))] * n
    elif isinstance(value, (list, tuple)) and len(value) == n and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        pairs = [(int(v), int(v)) for v in value]
    elif isinstance(value, (list, tuple)) and len(value) == n and all(
            isinstance(v, (list, tuple)) and len(v) == 2 and all(
                isinstance(u, (int, np.integer)) and not isinstance(u, bool) for u in v) for v in value):
        pairs = [(int(a), int(b)) for a, b in value]
    elif n == 1 and isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        pairs = [(int(value[0]), int(value[1]))]
    else:
        raise ValueError(f"{what} must be an int, {n} ints or {n} pairs of ints, got {value!r}")
    if any(a < 0 or b < 0 for a, b in pairs):
        raise ValueError(f"{what} cannot be negative, got {value!r}")
    return tuple(pairs)


def _channels_last(data_format, what):
    if data_format not in (None, "channels_last"):
        raise NotImplementedError(f"{what}: only data_format='channels_last' is supported")


class RepeatVector(Layer):
    """(batch, features) -> (batch, n, features): the input repeated n times."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"RepeatVector: n must be a positive integer, got {n!r}")
        self.n = int(n)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"RepeatVector {self.name!r}: expected inputs (batch, features), got {tuple(input_shape)}")
        return (input_shape[0], self.n, input_shape[1])

    def forward(self, x, training=False):
        return np.ascontiguousarray(np.repeat(np.asarray(x, np.float32)[:, None, :], self.n, axis=1))

    def backward(self, dy, need_dx=True):
        return np.ascontiguousarray(dy.sum(axis=1), dtype=np.float32)

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class Permute(Layer):
    """Permutes the axes after the batch's: ``dims`` (1-based), e.g. ``(2, 1)`` swaps the two."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        dims = tuple(dims) if isinstance(dims, (list, tuple)) else None
        if not dims or sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f"Permute: dims must be a permutation of 1..n, got {dims!r}")
        self.dims = tuple(int(d) for d in dims)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != len(self.dims) + 1:
            raise ValueError(f"Permute {self.name!r}: dims {self.dims} do not fit inputs of shape {tuple(input_shape)}")
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def forward(self, x, training=False):
        return np.ascontiguousarray(np.transpose(x, (0,) + self.dims))

    def backward(self, dy, need_dx=True):
        return np.ascontiguousarray(np.transpose(dy, np.argsort((0,) + self.dims)))

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class _Spatial(Layer):
    """What UpSampling, ZeroPadding and Cropping in 1-D and 2-D share: ``_rank`` spatial axes after the batch."""

    _rank = 1

    def _check(self, shape):
        if len(shape) != self._rank + 2:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected inputs of rank {self._rank + 2} (batch, "
                             f"{'steps' if self._rank == 1 else 'rows, cols'}, channels), got {tuple(shape)}")


class _UpSampling(_Spatial):
    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        sizes = (size,) * self._rank if isinstance(size, (int, np.integer)) and not isinstance(size, bool) else size
        if not isinstance(sizes, (list, tuple)) or len(sizes) != self._rank or not all(
                isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in sizes):
            raise ValueError(f"{type(self).__name__}: size must be {self._rank} positive integer(s), got {size!r}")
        self._sizes = tuple(int(s) for s in sizes)

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        return (input_shape[0],) + tuple(None if d is None else d * s for d, s in
                                         zip(input_shape[1:-1], self._sizes)) + (input_shape[-1],)

    def forward(self, x, training=False):
        y = np.asarray(x, np.float32)
        for axis, s in enumerate(self._sizes, start=1):
            y = np.repeat(y, s, axis=axis)
        return np.ascontiguousarray(y)

    def backward(self, dy, need_dx=True):
        shape = dy.shape
        split = [shape[0]]
        for d, s in zip(shape[1:-1], self._sizes):
            split += [d // s, s]
        g = dy.reshape(split + [shape[-1]])
        return np.ascontiguousarray(g.sum(axis=tuple(range(2, 2 * self._rank + 1, 2))), dtype=np.float32)


class UpSampling1D(_UpSampling):
    """Repeats each step ``size`` times."""

    def __init__(self, size=2, **kwargs):
        super().__init__(size, **kwargs)
        self.size = self._sizes[0]

    def get_config(self):
        return {**super().get_config(), "size": self.size}


class UpSampling2D(_UpSampling):
    """Repeats each row and column ``size`` times (nearest-neighbour interpolation)."""

    _rank = 2

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        _channels_last(data_format, "UpSampling2D")
        if interpolation != "nearest":
            raise NotImplementedError(f"UpSampling2D: only interpolation='nearest' is supported, got {interpolation!r}")
        super().__init__(size, **kwargs)
        self.size = self._sizes

    def get_config(self):
        return {**super().get_config(), "size": list(self.size), "data_format": "channels_last",
                "interpolation": "nearest"}


class _Padding(_Spatial):
    """ZeroPadding (``_sign`` +1) and Cropping (-1): (before, after) per spatial axis."""

    _sign = 1

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        out = []
        for d, (a, b) in zip(input_shape[1:-1], self._pairs):
            n = None if d is None else d + self._sign * (a + b)
            if n is not None and n < 1:
                raise ValueError(f"{type(self).__name__} {self.name!r}: cropping {self._pairs} leaves nothing of "
                                 f"inputs of shape {tuple(input_shape)}")
            out.append(n)
        return (input_shape[0],) + tuple(out) + (input_shape[-1],)

    def _inner(self, shape):
        return (slice(None),) + tuple(slice(a, d - b) for d, (a, b) in zip(shape[1:-1], self._pairs)) + (slice(None),)

    def forward(self, x, training=False):
        x = np.asarray(x, np.float32)
        self.compute_output_shape((None,) + x.shape[1:])
        if self._sign > 0:
            return np.pad(x, ((0, 0),) + self._pairs + ((0, 0),))
        return np.ascontiguousarray(x[self._inner(x.shape)])

    def backward(self, dy, need_dx=True):
        if self._sign > 0:
            return np.ascontiguousarray(dy[self._inner(dy.shape)])
        return np.pad(dy, ((0, 0),) + self._pairs + ((0, 0),)).astype(np.float32)


class ZeroPadding1D(_Padding):
    """Zeros before and after the steps: ``padding`` an int or (before, after)."""

    def __init__(self, padding=1, data_format=None, **kwargs):
        _channels_last(data_format, "ZeroPadding1D")
        super().__init__(**kwargs)
        self._pairs = _pairs(padding, 1, "ZeroPadding1D: padding")
        self.padding = self._pairs[0]

    def get_config(self):
        return {**super().get_config(), "padding": list(self.padding), "data_format": "channels_last"}


class ZeroPadding2D(_Padding):
    """Zeros around the rows and columns: an int, (rows, cols) or ((top, bottom), (left, right))."""

    _rank = 2

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        _channels_last(data_format, "ZeroPadding2D")
        super().__init__(**kwargs)
        self._pairs = _pairs(padding, 2, "ZeroPadding2D: padding")
        self.padding = self._pairs

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding], "data_format": "channels_last"}


class Cropping1D(_Padding):
    """Drops steps at the start and end: ``cropping`` an int or (start, end)."""

    _sign = -1

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self._pairs = _pairs(cropping, 1, "Cropping1D: cropping")
        self.cropping = self._pairs[0]

    def get_config(self):
        return {**super().get_config(), "cropping": list(self.cropping)}


class Cropping2D(_Padding):
    """Drops rows and columns at the edges: an int, (rows, cols) or ((top, bottom), (left, right))."""

    _sign = -1
    _rank = 2

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        _channels_last(data_format, "Cropping2D")
        super().__init__(**kwargs)
        self._pairs = _pairs(cropping, 2, "Cropping2D: cropping")
        self.cropping = self._pairs

    def get_config(self):
        return {**super().get_config(), "cropping": [list(p) for p in self.cropping], "data_format": "channels_last"}

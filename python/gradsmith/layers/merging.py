"""Layers that merge several inputs, with Keras 3's names and configs: Add, Subtract, Multiply, Average,
Maximum, Minimum (element-wise, NumPy broadcasting as Keras's ops) and Concatenate. They take a list of
tensors, in functional models: ``Add()([x, Dense(8)(x)])``. The math is plain NumPy float32; a gradient
that was broadcast is summed back to its input's shape."""
import numpy as np

from gradsmith.layers.base import Layer

__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "add", "subtract",
           "multiply", "average", "maximum", "minimum", "concatenate"]


def _unbroadcast(grad, shape):
    """``grad`` summed over the axes along which an input of ``shape`` was broadcast to it."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    axes = tuple(i for i, (g, s) in enumerate(zip(grad.shape, shape)) if s == 1 and g != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return np.ascontiguousarray(grad, dtype=np.float32)


class _Merge(Layer):
    """An element-wise merge of two or more inputs of broadcastable shapes."""

    supports_masking = True
    _min_inputs, _max_inputs = 2, None

    def _check_shapes(self, shapes):
        what = f"{type(self).__name__} {self.name!r}"
        if not isinstance(shapes, (list, tuple)) or not shapes or not isinstance(shapes[0], (list, tuple)):
            raise ValueError(f"{what}: expected a list of inputs, got one input of shape {shapes}")
        n = len(shapes)
        if n < self._min_inputs or (self._max_inputs is not None and n > self._max_inputs):
            want = f"exactly {self._min_inputs}" if self._max_inputs == self._min_inputs else \
                f"at least {self._min_inputs}"
            raise ValueError(f"{what}: expected {want} inputs, got {n}")
        return [tuple(s) for s in shapes]

    def build(self, input_shape):
        self.compute_output_shape(input_shape)
        self.input_shape = [tuple(s) for s in input_shape]
        self.output_shape = self.compute_output_shape(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        shapes = self._check_shapes(input_shape)
        rank = max(len(s) for s in shapes)
        out = []
        for axis in range(rank):
            dims = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0} - {1}
            known = dims - {None}
            if len(known) > 1:
                raise ValueError(f"{type(self).__name__} {self.name!r}: inputs of shapes {shapes} do not broadcast "
                                 "together")
            out.append(known.pop() if known else (None if None in dims else 1))
        return tuple(out)

    def compute_mask(self, inputs, mask=None):
        """Keras's Merge: the AND of the inputs' masks (None when none has one)."""
        if mask is None or all(m is None for m in mask):
            return None
        masks = [np.asarray(m, bool) for m in mask if m is not None]
        return np.logical_and.reduce(np.broadcast_arrays(*masks)) if len(masks) > 1 else masks[0]

    def _inputs(self, x):
        if not isinstance(x, (list, tuple)):
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected a list of inputs")
        self._check_shapes([np.shape(v) for v in x])
        return [np.asarray(v, np.float32) for v in x]

    def forward(self, x, training=False):
        x = self._inputs(x)
        self._saved = x if training else None
        self._shapes = [v.shape for v in x]
        return np.ascontiguousarray(self._merge(x), dtype=np.float32)

    def backward(self, dy, need_dx=True):
        dy = np.asarray(dy, np.float32)
        return [_unbroadcast(g, s) for g, s in zip(self._grads(dy), self._shapes)]


class Add(_Merge):
    """The sum of the inputs."""

    def _merge(self, x):
        out = x[0]
        for v in x[1:]:
            out = out + v
        return out

    def _grads(self, dy):
        return [dy] * len(self._shapes)


class Subtract(_Merge):
    """The first input minus the second."""

    _max_inputs = 2

    def _merge(self, x):
        return x[0] - x[1]

    def _grads(self, dy):
        return [dy, -dy]


class Average(_Merge):
    """The mean of the inputs."""

    def _merge(self, x):
        return Add._merge(self, x) / np.float32(len(x))

    def _grads(self, dy):
        return [dy / np.float32(len(self._shapes))] * len(self._shapes)


class Multiply(_Merge):
    """The element-wise product of the inputs."""

    def _merge(self, x):
        out = x[0]
        for v in x[1:]:
            out = out * v
        return out

    def _grads(self, dy):
        x = self._saved
        out = []
        for i in range(len(x)):
            g = dy
            for j, v in enumerate(x):
                if j != i:
                    g = g * v
            out.append(g)
        return out


class _Extremum(_Merge):
    """Maximum / Minimum: the gradient goes to the input holding the extremum (the first one on ties)."""

    def _merge(self, x):
        out = x[0]
        for v in x[1:]:
            out = self._pick(out, v)
        return out

    def _grads(self, dy):
        x = self._saved
        out_shape = np.broadcast_shapes(*self._shapes)
        best = np.broadcast_to(x[0], out_shape)
        winner = np.zeros(out_shape, np.int64)
        for i, v in enumerate(x[1:], start=1):
            v = np.broadcast_to(v, out_shape)
            better = self._better(v, best)
            winner = np.where(better, i, winner)
            best = np.where(better, v, best)
        return [np.where(winner == i, dy, np.float32(0)) for i in range(len(x))]


class Maximum(_Extremum):
    """The element-wise maximum of the inputs."""

    _pick = staticmethod(np.maximum)

    @staticmethod
    def _better(v, best):
        return v > best


class Minimum(_Extremum):
    """The element-wise minimum of the inputs."""

    _pick = staticmethod(np.minimum)

    @staticmethod
    def _better(v, best):
        return v < best


class Concatenate(_Merge):
    """The inputs joined along ``axis`` (default the last); the other axes must agree."""

    _min_inputs = 1

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"Concatenate: axis must be an integer, got {axis!r}")
        self.axis = int(axis)

    def compute_output_shape(self, input_shape):
        shapes = self._check_shapes(input_shape)
        rank = len(shapes[0])
        what = f"Concatenate {self.name!r}"
        if any(len(s) != rank for s in shapes):
            raise ValueError(f"{what}: the inputs must have the same rank, got shapes {shapes}")
        axis = self.axis % rank if -rank <= self.axis < rank else None
        if axis is None or axis == 0:
            raise ValueError(f"{what}: axis {self.axis} is not a feature axis of inputs of rank {rank}")
        out = []
        for i in range(rank):
            dims = [s[i] for s in shapes]
            if i == axis:
                out.append(None if None in dims else sum(dims))
                continue
            known = {d for d in dims if d is not None}
            if len(known) > 1:
                raise ValueError(f"{what}: the inputs' shapes {shapes} differ outside the concatenation axis")
            out.append(known.pop() if known else None)
        return tuple(out)

    def compute_mask(self, inputs, mask=None):
        """Keras: along the last axis, the AND of the inputs' masks; a mask along a concatenated time axis
        is not supported."""
        if mask is None or all(m is None for m in mask):
            return None
        if self.axis in (-1, np.ndim(inputs[0]) - 1):
            return _Merge.compute_mask(self, inputs, mask)
        raise NotImplementedError(f"Concatenate {self.name!r}: masks of inputs joined along axis {self.axis} are "
                                  "not supported")

    def _merge(self, x):
        return np.concatenate(x, axis=self.axis)

    def _grads(self, dy):
        cuts = np.cumsum([s[self.axis] for s in self._shapes])[:-1]
        return np.split(dy, cuts, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


# Keras's functional shorthands: ``add([a, b])`` is ``Add()([a, b])``.
def add(inputs, **kwargs):
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)

"""Reshape (Keras 3): (batch, ...) -> (batch, *target_shape), the elements in the same order. One entry of
target_shape may be -1, inferred from the input's size."""
import numpy as np

from gradsmith.layers.base import Layer

__all__ = ["Reshape"]


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

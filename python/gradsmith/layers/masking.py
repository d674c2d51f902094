"""Masking (Keras 3): the time steps whose features all equal ``mask_value`` are masked for the layers after
it (recurrent layers carry their state over them, the loss and metrics skip them) and set to 0."""
import numpy as np

from gradsmith.layers.base import Layer, NoCompiledForm

__all__ = ["Masking"]


class Masking(Layer):
    """``Masking(mask_value=0.0)`` over (batch, timesteps, features): a step is kept when any feature differs
    from ``mask_value``."""

    supports_masking = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float, np.integer, np.floating)):
            raise ValueError(f"Masking: mask_value must be a number, got {mask_value!r}")
        self.mask_value = float(mask_value)

    def _keep(self, x):
        return np.any(np.asarray(x) != np.float32(self.mask_value), axis=-1)

    def compute_mask(self, inputs, mask=None):
        return self._keep(inputs)

    def forward(self, x, training=False):
        x = np.asarray(x, np.float32)
        keep = self._keep(x)[..., None]
        if training:
            self._keep_saved = keep
        return np.where(keep, x, np.float32(0)).astype(np.float32)

    def backward(self, dy, need_dx=True):
        keep, self._keep_saved = self._keep_saved, None
        return np.where(keep, dy, np.float32(0)).astype(np.float32)

    def _compiled_config(self, input_shape, offset):
        raise NoCompiledForm(f"Masking {self.name!r} makes a mask: the model runs layer by layer")

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}

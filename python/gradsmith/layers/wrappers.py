"""Layers that wrap another layer, with Keras 3's names, configs and weight layouts: Bidirectional (a
recurrent layer run forwards and backwards, the two outputs merged) and TimeDistributed (a layer applied to
every time step). Their weights are the wrapped layers' own; a .keras file keeps them under
``<wrapper>/forward_layer``, ``<wrapper>/backward_layer`` or ``<wrapper>/layer``, as Keras writes them
(``_h5_sublayers``). Both run layer by layer (no compiled form)."""
import numpy as np

from gradsmith.layers.base import Layer, NoCompiledForm, deserialize, serialize

__all__ = ["Bidirectional", "TimeDistributed"]


class _Wrapper(Layer):
    """What both wrappers share: the wrapped layers' weights as their own, in Keras's order."""

    supports_masking = True

    def _inner(self):
        raise NotImplementedError

    def _collect_weights(self):
        self._weights = [w for layer in self._inner() for w in layer._weights]

    @property
    def trainable(self):
        return self._is_trainable

    @trainable.setter
    def trainable(self, value):  # as Keras: a wrapper's flag is its layers' flag
        self._is_trainable = bool(value)
        for layer in getattr(self, "_wrapped", ()):
            layer.trainable = self._is_trainable

    def regularization_loss(self):
        return sum(layer.regularization_loss() for layer in self._inner())

    def flops(self, batch=1):
        return sum(layer.flops(batch) for layer in self._inner())

    def _compiled_config(self, input_shape, offset):
        raise NoCompiledForm(f"layer {self.name!r} ({type(self).__name__}) runs layer by layer")


def _checked_layer(layer, what):
    if not isinstance(layer, Layer) or getattr(layer, "_is_model", False):
        raise ValueError(f"{what}: expected a layer instance, got {layer!r:.100}")
    if layer.built:
        raise ValueError(f"{what}: the wrapped layer {layer.name!r} is already built; wrap a new layer")
    return layer


class Bidirectional(_Wrapper):
    """``Bidirectional(LSTM(64, return_sequences=True))``: the layer over the sequence, a copy of it over the
    reversed sequence, the outputs merged by ``merge_mode`` ('concat', 'sum', 'mul', 'ave', or None for
    the list [forward, backward]). With ``return_sequences`` the backward outputs are put back in time
    order, as in Keras."""

    _MERGE_MODES = ("concat", "sum", "mul", "ave", None)

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        super().__init__(**kwargs)
        layer = _checked_layer(layer, "Bidirectional")
        if not hasattr(layer, "go_backwards") or not hasattr(layer, "return_sequences"):
            raise ValueError(f"Bidirectional: expected a recurrent layer (SimpleRNN, GRU, LSTM), got "
                             f"{type(layer).__name__}")
        if merge_mode not in self._MERGE_MODES:
            raise ValueError(f"Bidirectional: merge_mode must be one of {self._MERGE_MODES}, got {merge_mode!r}")
        if weights is not None:
            raise NotImplementedError("Bidirectional: weights= is not supported; call set_weights after building")
        if getattr(layer, "return_state", False):
            raise NotImplementedError("Bidirectional: a wrapped layer with return_state=True is not supported yet")
        if backward_layer is None:
            entry = serialize(layer)
            entry["config"] = {**entry["config"], "name": "backward_" + _strip(layer.name, "forward_"),
                               "go_backwards": not layer.go_backwards}
            backward_layer = deserialize(entry)
        else:
            backward_layer = _checked_layer(backward_layer, "Bidirectional: backward_layer")
            if backward_layer.go_backwards == layer.go_backwards:
                raise ValueError("Bidirectional: backward_layer must have go_backwards different from the layer's")
            if backward_layer.return_sequences != layer.return_sequences:
                raise ValueError("Bidirectional: the forward and backward layers must agree on return_sequences")
        layer.name = "forward_" + _strip(layer.name, "forward_")
        for inner in (layer, backward_layer):
            inner.zero_output_for_mask = True  # as Keras's Bidirectional sets it
        self.forward_layer, self.backward_layer = layer, backward_layer
        self._wrapped = (layer, backward_layer)
        self.trainable = self.trainable
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self._h5_sublayers = (("forward_layer", layer), ("backward_layer", backward_layer))

    def _inner(self):
        return self._wrapped

    def build(self, input_shape):
        for layer in self._wrapped:
            if not layer.built:
                layer.build(input_shape)
        self._collect_weights()
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        if self.merge_mode == "concat":
            return tuple(shape[:-1]) + (None if shape[-1] is None else 2 * shape[-1],)
        if self.merge_mode is None:
            return [tuple(shape), tuple(shape)]
        return tuple(shape)

    def compute_mask(self, inputs, mask=None):
        if mask is None or not self.return_sequences:
            return None
        return [mask, mask] if self.merge_mode is None else mask

    def _run(self, layer, x, training, fn, *args):
        layer._input_mask = self._input_mask
        try:
            return fn(x, *args) if fn is not None else layer.forward(x, training=training)
        finally:
            layer._input_mask = None

    def forward(self, x, training=False):
        y_f = self._run(self.forward_layer, x, training, None)
        y_b = self._run(self.backward_layer, x, training, None)
        if self.return_sequences:
            y_b = np.ascontiguousarray(y_b[:, ::-1])  # the backward layer's outputs in time order
        self._outputs = (y_f, y_b) if training and self.merge_mode == "mul" else None
        if self.merge_mode == "concat":
            return np.concatenate([y_f, y_b], axis=-1)
        if self.merge_mode == "sum":
            return y_f + y_b
        if self.merge_mode == "ave":
            return ((y_f + y_b) * np.float32(0.5)).astype(np.float32)
        if self.merge_mode == "mul":
            return y_f * y_b
        return [y_f, y_b]

    def backward(self, dy, need_dx=True):
        if self.merge_mode == "concat":
            u = self.forward_layer.units
            d_f, d_b = dy[..., :u], dy[..., u:]
        elif self.merge_mode == "sum":
            d_f = d_b = dy
        elif self.merge_mode == "ave":
            d_f = d_b = (np.asarray(dy, np.float32) * np.float32(0.5)).astype(np.float32)
        elif self.merge_mode == "mul":
            y_f, y_b = self._outputs
            d_f, d_b = dy * y_b, dy * y_f
        else:
            d_f, d_b = dy
            d_f = np.zeros_like(d_b) if d_f is None else d_f
            d_b = np.zeros_like(d_f) if d_b is None else d_b
        if self.return_sequences:
            d_b = d_b[:, ::-1]  # back into the backward layer's processing order
        dx_f = self.forward_layer.backward(np.ascontiguousarray(d_f, dtype=np.float32), need_dx)
        dx_b = self.backward_layer.backward(np.ascontiguousarray(d_b, dtype=np.float32), need_dx)
        return None if dx_f is None or dx_b is None else (dx_f + dx_b).astype(np.float32)

    def get_config(self):
        return {**super().get_config(), "merge_mode": self.merge_mode, "layer": serialize(self.forward_layer),
                "backward_layer": serialize(self.backward_layer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        layer = deserialize(config.pop("layer"))
        backward = config.pop("backward_layer", None)
        backward = deserialize(backward) if backward is not None else None
        return super().from_config({**config, "layer": layer, "backward_layer": backward})


def _strip(name, prefix):
    return name[len(prefix):] if name.startswith(prefix) else name


class TimeDistributed(_Wrapper):
    """``TimeDistributed(Dense(8))``: the layer applied to every time step of (batch, timesteps, ...) inputs,
    with one set of weights (the steps are folded into the batch)."""

    _steps_pointwise = True

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        self.layer = _checked_layer(layer, "TimeDistributed")
        self._wrapped = (self.layer,)
        self.trainable = self.trainable
        self._h5_sublayers = (("layer", self.layer),)

    def _inner(self):
        return self._wrapped

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"TimeDistributed {self.name!r}: expected inputs of rank 3 or more (batch, timesteps, "
                             f"...), got {tuple(input_shape)}")
        if not self.layer.built:
            self.layer.build((None,) + tuple(input_shape[2:]))
        self._collect_weights()
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((None,) + tuple(input_shape[2:]))
        return (input_shape[0], input_shape[1]) + tuple(inner[1:])

    def forward(self, x, training=False):
        x = np.asarray(x)
        if x.ndim < 3:
            raise ValueError(f"TimeDistributed {self.name!r}: expected inputs of rank 3 or more, got shape {x.shape}")
        b, t = x.shape[:2]
        y = self.layer.forward(np.ascontiguousarray(x.reshape((b * t,) + x.shape[2:])), training=training)
        return y.reshape((b, t) + y.shape[1:])

    def backward(self, dy, need_dx=True):
        b, t = dy.shape[:2]
        dx = self.layer.backward(np.ascontiguousarray(dy.reshape((b * t,) + dy.shape[2:]), dtype=np.float32),
                                 need_dx)
        return None if dx is None else dx.reshape((b, t) + dx.shape[1:])

    def get_config(self):
        return {**super().get_config(), "layer": serialize(self.layer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return super().from_config({**config, "layer": deserialize(config.pop("layer"))})

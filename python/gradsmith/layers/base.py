"""The Layer base class, its weights, and the registry of layer classes by name.

A layer is ``__init__`` (configuration), ``build`` (weights, from the input
shape), ``forward``/``backward`` (the math, through gradsmith.ops) and
``get_config`` (configuration back out). Forward keeps exactly what backward
needs; backward writes the weights' gradients into ``weight.grad`` (overwrite,
not accumulate) and returns dL/dx.

Weights are float32 NumPy arrays. Inside a model they are views of the model's
one flat parameter buffer, and their gradients views of its flat gradient
buffer, so an optimizer updates every weight with one fused kernel call.

Every subclass is registered under its class name when it is defined, so
``deserialize`` (and loading a saved model) finds it with no list to edit.
"""
import numpy as np

from gradsmith import initializers, regularizers

__all__ = ["Layer", "Weight", "assign_weights", "serialize", "deserialize", "get", "NoCompiledForm"]


class NoCompiledForm(Exception):
    """Raised by a layer's ``_compiled_config`` when the compiled step (cpp/model/layers/) cannot run it
    as configured; the message says why, and the model trains layer by layer instead."""


def compiled_penalties(**regularizers_by_weight):
    """{weight name: (l1, l2)} of built-in L1 / L2 / L1L2 regularizers, for the compiled step's penalty
    kernel; a regularizer of another kind has no kernel."""
    out = {}
    for name, reg in regularizers_by_weight.items():
        if reg is None:
            continue
        if not isinstance(reg, regularizers.L1L2) or type(reg).__call__ is not regularizers.L1L2.__call__ \
                or type(reg).gradient is not regularizers.L1L2.gradient:
            raise NoCompiledForm(f"regularizer {type(reg).__name__} has no kernel")
        out[name] = (float(reg.l1), float(reg.l2))
    return out

_name_counters = {}


def _unique_name(base):
    n = _name_counters.get(base, 0)
    _name_counters[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def _snake(name):
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


class Weight:
    """One weight: its value (a float32 array) and its gradient, plus how to make and penalise it."""

    def __init__(self, name, shape, initializer, regularizer=None, trainable=True):
        self.name = name
        self.shape = tuple(int(d) for d in shape)
        self.regularizer = regularizer
        self.trainable = trainable
        self.value = np.asarray(initializer(self.shape), dtype=np.float32).reshape(self.shape)
        self.grad = np.zeros(self.shape, np.float32)

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    def numpy(self):
        return self.value.copy()

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.value, dtype=dtype)


def assign_weights(targets, arrays, owner):
    """Copy ``arrays`` into the Weight records ``targets``, after checking every count, dtype and
    shape: a bad list raises and changes nothing."""
    arrays = list(arrays)
    if len(arrays) != len(targets):
        raise ValueError(f"{owner} has {len(targets)} weights, got a list of {len(arrays)}")
    checked = []
    for w, new in zip(targets, arrays):
        a = np.asarray(new)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"weight {w.name!r}: expected a numeric array, got dtype {a.dtype}")
        if a.shape != w.shape:
            raise ValueError(f"weight {w.name!r} has shape {w.shape}, got an array of shape {a.shape}")
        checked.append(a)
    for w, a in zip(targets, checked):
        w.value[...] = a


class Layer:
    """Base class. Accepts Keras's ``input_shape=`` (and ``input_dim=``) on the first layer."""

    _is_graph_input = False  # an InputLayer starts a functional graph

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _register(cls)

    def __init__(self, trainable=True, name=None, input_shape=None, input_dim=None, batch_input_shape=None,
                 dtype=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"{type(self).__name__}: only float32 is supported, got dtype={dtype!r}")
        self.name = name if name is not None else _unique_name(_snake(type(self).__name__))
        self.trainable = bool(trainable)
        self.built = False
        self._weights = []
        self.input_shape = None
        self.output_shape = None
        if batch_input_shape is not None:
            self._declared_input_shape = tuple(batch_input_shape)
        elif input_shape is not None:
            self._declared_input_shape = (None,) + tuple(input_shape)
        elif input_dim is not None:
            self._declared_input_shape = (None, int(input_dim))
        else:
            self._declared_input_shape = None

    # -- weights ---------------------------------------------------------------
    def add_weight(self, name, shape, initializer="zeros", regularizer=None, trainable=True):
        w = Weight(f"{self.name}/{name}", shape, initializers.get(initializer), regularizer, trainable)
        self._weights.append(w)
        return w

    @property
    def weights(self):
        return [w.value for w in self._weights]

    @property
    def trainable_weights(self):
        return [w.value for w in self._weights if w.trainable and self.trainable]

    @property
    def non_trainable_weights(self):
        return [w.value for w in self._weights if not (w.trainable and self.trainable)]

    def get_weights(self):
        return [w.value.copy() for w in self._weights]

    def set_weights(self, weights):
        """Copy values into the weights; checks every shape first, so a bad list changes nothing."""
        assign_weights(self._weights, weights, f"layer {self.name!r}")

    def count_params(self):
        return sum(w.size for w in self._weights)

    def regularization_loss(self):
        return sum(w.regularizer(w.value) for w in self._weights if w.regularizer is not None)

    def _add_regularization_grads(self):
        for w in self._weights:
            if w.regularizer is not None:
                w.grad += w.regularizer.gradient(w.value)

    # -- shapes and math -------------------------------------------------------
    def build(self, input_shape):
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def flops(self, batch=1):
        """Floating-point operations of one forward pass over ``batch`` samples."""
        return 0

    def forward(self, x, training=False):
        raise NotImplementedError

    def _compiled_config(self, input_shape, offset):
        """How the compiled step runs this layer: ``{"kind": <a kind of cpp/model/layers/>, "numbers": {...},
        "weights": {name: offset(array)}, "penalties": {...}, "lists": {...}, "counter": array}`` for
        inputs of per-sample shape ``input_shape``, ``offset(array)`` giving a weight's place in the flat
        buffer. Raises NoCompiledForm where there is none (a user's own layer, an option without a
        kernel): the model then trains layer by layer, through ``forward`` / ``backward``."""
        raise NoCompiledForm(f"layer {self.name!r} ({type(self).__name__}) has no compiled form")

    def backward(self, dy, need_dx=True):
        raise NotImplementedError

    def __call__(self, x, training=False):
        if isinstance(x, KerasTensor) or getattr(x, "_is_graph_input", False):  # functional API: record only
            shape = tuple(x.shape)
            if not self.built:
                self.build(shape)
            return KerasTensor(self.compute_output_shape(shape), self, x)
        x = np.asarray(x, dtype=np.float32)
        if not self.built:
            self.build((None,) + x.shape[1:])
        return self.forward(x, training=training)

    # -- configuration ---------------------------------------------------------
    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable, "dtype": "float32"}
        if self._declared_input_shape is not None:
            config["batch_input_shape"] = list(self._declared_input_shape)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


class KerasTensor:
    """A symbolic tensor of the functional API: ``Dense(8)(Input(shape=(4,)))`` returns one. It knows
    its shape (batch axis None), the layer that made it and that layer's input, which is all
    ``gradsmith.Model(inputs, outputs)`` needs to find the layers from one to the other."""

    def __init__(self, shape, layer, parent):
        self.shape = tuple(shape)
        self.layer = layer
        self.parent = parent  # a KerasTensor, or the InputLayer the graph starts from

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, from layer {self.layer.name!r}>"


_REGISTRY = {}


def _register(cls):
    """Called for every Layer subclass as it is defined: ``deserialize`` finds gradsmith's own layers by
    class name (a user's subclass is not registered, so it cannot shadow a built-in one by its name)."""
    if cls.__module__.startswith("gradsmith."):
        _REGISTRY[cls.__name__] = cls


def serialize(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config):
    """A layer from ``{"class_name": ..., "config": ...}``: the class by its registered name, then
    ``cls.from_config``; serialized initializers and regularizers inside the config are rebuilt first."""
    cls = _REGISTRY.get(config.get("class_name"))
    if cls is None:
        raise ValueError(f"unknown layer class {config.get('class_name')!r}")
    cfg = dict(config.get("config", {}))
    for key in list(cfg):
        module = initializers if key.endswith("_initializer") else regularizers if key.endswith("_regularizer") \
            else None
        if module is not None and isinstance(cfg[key], dict):
            cfg[key] = module.deserialize(cfg[key])
        if key.endswith("_initializer") and cfg[key] is None:
            cfg.pop(key)
    cfg.pop("dtype", None)
    return cls.from_config(cfg)


def get(identifier):
    if isinstance(identifier, Layer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(f"cannot interpret {identifier!r} as a layer")

"""The Layer base class, its weights, and the registry of layer classes by name.

A layer is ``__init__`` (configuration), ``build`` (weights, from the input
shape), ``forward``/``backward`` (the math, through gradsmith.ops) and
``get_config`` / ``from_config`` (configuration out and back in, in Keras 3's
format: the only description of a layer that saving needs). Forward keeps exactly what backward
needs; backward writes the weights' gradients into ``weight.grad`` (overwrite,
not accumulate) and returns dL/dx.

Weights are float32 NumPy arrays. Inside a model they are views of the model's
one flat parameter buffer, and their gradients views of its flat gradient
buffer, so an optimizer updates every weight with one fused kernel call.

Every subclass is registered under its class name when it is defined, so
``deserialize`` (and loading a saved model) finds it with no list to edit.
"""
import contextvars
import re
import inspect
import math
import warnings

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
    """Keras's to_snake_case: 'BatchNormalization' -> 'batch_normalization', 'Conv2D' -> 'conv2d',
    'MaxPooling2D' -> 'max_pooling2d'."""
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


# True while ``implied_weights`` builds a layer for its weights' shapes only: a Weight made then
# allocates nothing (value and grad stay None) and draws nothing from its initializer.
_SHAPES_ONLY = contextvars.ContextVar("gradsmith_shapes_only", default=False)


def as_dim(value, what):
    """A shape entry or a count from a config: an integer >= 0 (an integral float such as 4.0 is taken
    as 4; 4.5, a bool, a string... raise ValueError rather than being truncated)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise ValueError(f"{what}: expected a non-negative integer, got {value!r}")
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value) or value != math.floor(value):
            raise ValueError(f"{what}: expected a non-negative integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{what}: expected a non-negative integer, got {value!r}")
    return int(value)


def as_shape(shape, what):
    """A shape from a config (a list or tuple of integers >= 0 or None) as a tuple; anything else raises
    ValueError."""
    if isinstance(shape, (str, bytes, dict)) or not hasattr(shape, "__iter__"):
        raise ValueError(f"{what}: expected a list of dimensions, got {shape!r}")
    return tuple(None if d is None else as_dim(d, what) for d in shape)


class Weight:
    """One weight: its value (a float32 array) and its gradient, plus how to make and penalise it."""

    h5_dtype = None  # the dtype a .keras file stores it in, when not its value's (Normalization's int32 count)

    def __init__(self, name, shape, initializer, regularizer=None, trainable=True, dtype=np.float32):
        self.name = name
        self.shape = tuple(as_dim(d, f"the shape of weight {name!r}") for d in shape)
        self.regularizer = regularizer
        self.trainable = trainable
        # float32 (in the model's flat buffer), or int8 (a quantized layer's frozen kernel: its own array,
        # read-only except through assign_weights, whose every write bumps ``version`` so that a packing of
        # it knows when to pack again)
        self.dtype = np.dtype(dtype)
        self.version = 0
        if _SHAPES_ONLY.get():
            self.value = self.grad = None
            return
        from gradsmith import config  # the caller's limit; imported here: config imports the extension

        limit = config.get_max_weights()
        if self.size > limit:
            raise ValueError(f"weight {name!r} of shape {self.shape} has {self.size:,} values, more than the limit "
                             f"of {limit:,} (raise it with gradsmith.config.set_max_weights)")
        if self.dtype == np.int8:
            self.value = np.zeros(self.shape, np.int8)
            self.value.flags.writeable = False
            self.grad = None  # never trained (Keras: trainable=False)
            self._home = None
            return
        self.value = np.asarray(initializer(self.shape), dtype=np.float32).reshape(self.shape)
        self.grad = np.zeros(self.shape, np.float32)
        self._home = None  # the flat buffer of the model whose views value and grad are (models.py)

    @property
    def size(self):
        return math.prod(self.shape)  # a Python int: no int64 overflow for absurd shapes

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
        if w.dtype == np.int8 and (a.dtype.kind not in "biu" and not np.array_equal(a, np.round(a))
                                   or a.size and (a.min() < -128 or a.max() > 127)):
            raise ValueError(f"weight {w.name!r} is int8: expected whole numbers in [-128, 127]")
        checked.append(a)
    for w, a in zip(targets, checked):
        if w.dtype == np.int8:
            w.value.flags.writeable = True
            w.value[...] = a
            w.value.flags.writeable = False
        else:
            w.value[...] = a
        w.version += 1


class Layer:
    """Base class. Accepts Keras's ``input_shape=`` (and ``input_dim=``) on the first layer."""

    _is_graph_input = False  # an InputLayer starts a functional graph
    # Acts on each time step of a sequence on its own (Dense on the last axis, Embedding, Activation, ...):
    # Sequential.generate steps it through its forward on one step (recurrent layers have step() instead).
    _steps_pointwise = False
    # Keras's masking: a layer that supports masking passes the mask of its input on (``compute_mask``); one
    # that does not drops it. A model sets ``_input_mask`` (batch, timesteps) for the call of ``forward``.
    supports_masking = False
    _input_mask = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _register(cls)

    def __init__(self, trainable=True, name=None, input_shape=None, input_dim=None, batch_input_shape=None,
                 dtype=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"{type(self).__name__}: only float32 is supported, got dtype={dtype!r}")
        if name is not None and not isinstance(name, str):
            raise ValueError(f"{type(self).__name__}: name must be a string, got {name!r}")
        self.name = name if name is not None else _unique_name(_snake(type(self).__name__))
        self.trainable = bool(trainable)
        self.built = False
        self._weights = []
        self.input_shape = None
        self.output_shape = None
        what = f"{type(self).__name__} {self.name!r}"
        if batch_input_shape is not None:
            self._declared_input_shape = as_shape(batch_input_shape, f"{what}: batch_input_shape")
        elif input_shape is not None:
            self._declared_input_shape = (None,) + as_shape(input_shape, f"{what}: input_shape")
        elif input_dim is not None:
            self._declared_input_shape = (None, as_dim(input_dim, f"{what}: input_dim"))
        else:
            self._declared_input_shape = None

    # -- weights ---------------------------------------------------------------
    def add_weight(self, name, shape, initializer="zeros", regularizer=None, trainable=True, dtype="float32"):
        w = Weight(f"{self.name}/{name}", shape, initializers.get(initializer), regularizer, trainable, dtype)
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

    def compute_mask(self, inputs, mask=None):
        """The mask of the output (Keras): the input's mask where the layer supports masking, else None."""
        return mask if self.supports_masking else None

    def _compiled_config(self, input_shape, offset):
        """How the compiled step runs this layer: ``{"kind": <a kind of cpp/model/layers/>, "numbers": {...},
        "weights": {name: offset(array)}, "penalties": {...}, "lists": {...}, "counter": array}`` for
        inputs of per-sample shape ``input_shape``, ``offset(array)`` giving a weight's place in the flat
        buffer. Raises NoCompiledForm where there is none (a user's own layer, an option without a
        kernel): the model then trains layer by layer, through ``forward`` / ``backward``."""
        raise NoCompiledForm(f"layer {self.name!r} ({type(self).__name__}) has no compiled form")

    def backward(self, dy, need_dx=True):
        raise NotImplementedError

    def __call__(self, x, training=False, **kwargs):
        if is_symbolic(x):  # functional API: record the call only
            return record_call(self, x, kwargs)
        if isinstance(x, (list, tuple)):  # a layer of several inputs (the merge layers)
            x = [np.asarray(v, dtype=np.float32) for v in x]
            if not self.built:
                self.build([(None,) + v.shape[1:] for v in x])
            return self.forward(x, training=training)
        x = np.asarray(x, dtype=np.float32)
        if not self.built:
            self.build((None,) + x.shape[1:])
        return self.forward(x, training=training, **kwargs)

    # -- configuration ---------------------------------------------------------
    def get_config(self):
        """The layer's arguments as Keras 3 writes them (a subclass adds its own): JSON-ready, with
        initializers and regularizers as Keras objects and the dtype as Keras's DTypePolicy."""
        return {"name": self.name, "trainable": self.trainable, "dtype": _dtype_policy()}

    @classmethod
    def from_config(cls, config):
        """The layer from ``get_config``'s dict, written by gradsmith or by Keras 3: the dtype must be
        float32, Keras options gradsmith lacks must be unset, initializers and regularizers come back from
        their Keras objects and an activation from its name."""
        config = dict(config)
        what = f"layer {config.get('name')!r}"
        _check_float32(config.pop("dtype", None), what)
        for key in _UNSUPPORTED_WHEN_SET:
            value = config.pop(key, None)
            if value not in (None, 0, False):
                raise ValueError(f"{what} sets {key}={value!r}, which gradsmith does not support")
        for key in list(config):
            if key.endswith("_initializer"):
                config[key] = _sub_object(config[key], initializers, "initializer")
                if config[key] is None:
                    del config[key]  # the argument's default
            elif key.endswith("_regularizer"):
                config[key] = _sub_object(config[key], regularizers, "regularizer")
        if "activation" in config:
            config["activation"] = _activation_of(config["activation"])
        if "trainable" in config:
            config["trainable"] = bool(config["trainable"])
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


class KernelBias:
    """The kernel and optional bias of Dense, the convolutions and the recurrent layers, as Keras names them:
    their values, and their offsets in the compiled step's description of the layer."""

    @property
    def kernel(self):
        return self._kernel.value

    @property
    def bias(self):
        return self._bias.value if self._bias is not None else None

    def _kernel_bias_arguments(self, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                               bias_regularizer):
        """The constructor arguments of the kernel and bias, as Keras takes them (names or objects)."""
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def _add_kernel_and_bias(self, kernel_shape, bias_shape):
        """kernel, then bias when ``use_bias`` (Keras's order), from the layer's initializers and regularizers."""
        self._kernel = self.add_weight("kernel", kernel_shape, self.kernel_initializer, self.kernel_regularizer)
        self._bias = (self.add_weight("bias", bias_shape, self.bias_initializer, self.bias_regularizer)
                      if self.use_bias else None)

    def _kernel_bias_offsets(self, offset, **more):
        """{"kernel": .., **more, "bias": ..} (no bias without ``use_bias``) for ``_compiled_config``."""
        weights = {"kernel": offset(self.kernel), **{k: offset(v) for k, v in more.items()}}
        if self.use_bias:
            weights["bias"] = offset(self.bias)
        return weights


def implied_weights(layer, input_shape):
    """(the sizes of the weights ``layer.build(input_shape)`` would make, the layer's output shape),
    found by building the unbuilt layer with shapes only (nothing allocated, no initializer drawn)
    and putting it back as it was: so a model can check its total size before allocating any of it."""
    touched = [layer, *getattr(layer, "_wrapped", ())]  # a wrapper builds the layers it wraps too
    saved = [dict(each.__dict__, _weights=list(each._weights)) for each in touched]
    token = _SHAPES_ONLY.set(True)
    try:
        layer.build(tuple(input_shape))
        sizes = [w.size for w in layer._weights[len(saved[0]["_weights"]):]]
        output_shape = layer.compute_output_shape(tuple(input_shape))
    finally:
        _SHAPES_ONLY.reset(token)
        for each, state in zip(touched, saved):
            each.__dict__.clear()
            each.__dict__.update(state)
    return sizes, output_shape


def is_builtin(layer):
    """True for an instance of one of gradsmith's own layer classes (not a user's subclass)."""
    return _REGISTRY.get(type(layer).__name__) is type(layer)


class KerasTensor:
    """A symbolic tensor of the functional API: ``Dense(8)(Input(shape=(4,)))`` returns one. It knows
    its shape (batch axis None), the layer that made it and the call (``node``) it is output ``index`` of,
    which is all ``gradsmith.Model(inputs, outputs)`` needs to find the layers from one to the other."""

    def __init__(self, shape, layer, parent, node=None, index=0):
        self.shape = tuple(shape)
        self.layer = layer
        self.parent = parent  # the one input of the call (a KerasTensor or an InputLayer), None for several
        self.node = node
        self.index = index

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, from layer {self.layer.name!r}>"


class Node:
    """One call of a layer in a functional graph: ``args`` is what the layer was called on (a symbolic
    tensor, or a list of them for a merge layer), ``initial_state`` a recurrent layer's list of symbolic
    states (or None); ``inputs`` all of them in that order and ``outputs`` the tensors the call made."""

    def __init__(self, layer, args, initial_state):
        self.layer, self.args, self.initial_state = layer, args, initial_state
        self.inputs = (list(args) if isinstance(args, (list, tuple)) else [args]) + list(initial_state or [])
        self.outputs = []


def is_symbolic(x):
    """A functional API tensor (a KerasTensor or an Input), or a list of them."""
    if isinstance(x, (list, tuple)):
        return len(x) > 0 and all(is_symbolic(v) for v in x)
    return isinstance(x, KerasTensor) or getattr(x, "_is_graph_input", False)


def record_call(layer, x, kwargs):
    """``layer(x, **kwargs)`` on symbolic tensors: builds the layer from their shapes and returns the
    symbolic output (a list of them for a layer with several outputs: a recurrent layer's states)."""
    state = kwargs.pop("initial_state", None)
    kwargs.pop("mask", None)
    if kwargs:
        raise TypeError(f"layer {layer.name!r}: unexpected argument(s) {', '.join(sorted(kwargs))} in a functional "
                        "call")
    if state is not None:
        state = list(state) if isinstance(state, (list, tuple)) else [state]
        if not is_symbolic(state):
            raise TypeError(f"layer {layer.name!r}: initial_state must be symbolic tensors in a functional model")
    if isinstance(x, (list, tuple)):
        x = list(x)
        shape = [tuple(v.shape) for v in x]
    else:
        shape = tuple(x.shape)
    if not layer.built:
        layer.build(shape)
    out_shape = layer.compute_output_shape(shape)
    node = Node(layer, x, state)
    parent = x if not isinstance(x, list) else None
    if isinstance(out_shape, list):
        node.outputs = [KerasTensor(s, layer, parent, node, i) for i, s in enumerate(out_shape)]
        return list(node.outputs)
    node.outputs = [KerasTensor(out_shape, layer, parent, node, 0)]
    return node.outputs[0]


_REGISTRY = {}


def _register(cls):
    """Called for every Layer subclass as it is defined: ``deserialize`` finds gradsmith's own layers by
    class name (a user's subclass is not registered, so it cannot shadow a built-in one by its name)."""
    if cls.__module__.startswith("gradsmith.") and not getattr(cls, "_is_model", False):
        _REGISTRY[cls.__name__] = cls


# Models used as layers (``Sequential([base_model, Dense(1)])``), by the class name Keras writes for them
# ("Sequential", "Functional"): {class name: a function from the layer entry to the model}, filled by
# gradsmith.models. A model serializes itself (``_serialize_as_layer``): Keras's module is not keras.layers.
_MODEL_LAYERS = {}


def serialize(layer):
    """A layer as Keras 3 serializes it: ``{"module": "keras.layers", "class_name", "config",
    "registered_name": None}``, plus ``build_config`` (the input shape) for a built layer with weights.
    A class that is not one of gradsmith's layers gets its own module and ``registered_name``."""
    if getattr(layer, "_is_model", False):
        return layer._serialize_as_layer()
    cls = type(layer)
    builtin = _REGISTRY.get(cls.__name__) is cls
    out = {"module": "keras.layers" if builtin else cls.__module__, "class_name": cls.__name__,
           "config": layer.get_config(), "registered_name": None if builtin else cls.__name__}
    if layer._weights and layer.input_shape is not None:
        out["build_config"] = {"input_shape": _shape_list(layer.input_shape)}
    return out


def deserialize(config):
    """A layer from ``serialize``'s dict (or Keras 3's): the class by its registered name, then
    ``cls.from_config``."""
    if not isinstance(config, dict) or not isinstance(config.get("config", {}), dict):
        raise ValueError(f"not a layer configuration: {config!r}")
    class_name, module = config.get("class_name"), config.get("module")
    if not isinstance(class_name, str) or not isinstance(module, (str, type(None))):
        raise ValueError(f"not a layer configuration: class_name={class_name!r}, module={module!r}")
    if class_name in _MODEL_LAYERS and (module is None or module == "keras" or module.startswith("keras.")):
        return _MODEL_LAYERS[class_name](config)
    cls = _REGISTRY.get(class_name)
    if cls is None or module not in (None, "keras.layers", "keras"):
        name = (config.get("config") or {}).get("name")
        raise ValueError(f"layer {name!r} is a {class_name!r} (module {module!r}), which gradsmith cannot build; "
                         f"gradsmith's layers: {', '.join(sorted(_REGISTRY))}")
    try:
        return cls.from_config(config.get("config") or {})
    except TypeError as e:  # a missing or unknown argument: say which layer
        name = (config.get("config") or {}).get("name")
        raise TypeError(f"layer {name!r} ({class_name}): {e}") from None


def get(identifier):
    if isinstance(identifier, Layer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(f"cannot interpret {identifier!r} as a layer")


# --------------------------------------------------------------------------- Keras's config format
# Keras options that gradsmith's layers lack: a config may carry them only unset.
_UNSUPPORTED_WHEN_SET = ("kernel_constraint", "bias_constraint", "activity_regularizer", "quantization_config",
                         "lora_rank", "lora_alpha", "beta_constraint", "gamma_constraint", "renorm",
                         "renorm_clipping", "embeddings_constraint")


def _keras_object(module, class_name, config):
    """keras.saving.serialize_keras_object's layout for a built-in object."""
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def _dtype_policy():
    return _keras_object("keras", "DTypePolicy", {"name": "float32"})


def _shape_list(shape):
    return [None if d is None else int(d) for d in shape]


def _check_float32(dtype, what):
    """A config's dtype (a name or a Keras DTypePolicy) must be float32; None means the default."""
    if dtype is None:
        return
    name = (dtype.get("config") or {}).get("name") if isinstance(dtype, dict) else dtype
    if name != "float32":
        raise ValueError(f"{what} uses dtype {name!r}; gradsmith supports float32 only")


def _initializer_config(init, default):
    """An initializer as a Keras object; one with no Keras form is written as Keras's ``default`` (a
    warning says so: only the initial values it would draw differ)."""
    if isinstance(init, initializers.Initializer) and type(init).__name__ in initializers._BY_CLASS:
        return _keras_object("keras.initializers", type(init).__name__, init.get_config())
    warnings.warn(f"initializer {init!r} has no Keras form; the config names Keras's default {default} instead "
                  "(saved weights are unaffected)")
    return _keras_object("keras.initializers", default, {"seed": None} if default != "Zeros" else {})


def _regularizer_config(reg, layer):
    if reg is None:
        return None
    if not (isinstance(reg, regularizers.Regularizer) and type(reg).__name__ in ("L1", "L2", "L1L2")):
        raise ValueError(f"cannot describe layer {layer.name!r} in Keras's format: its regularizer {reg!r} has no "
                         "Keras form")
    return _keras_object("keras.regularizers", type(reg).__name__, reg.get_config())


def _sub_object(value, module, what):
    """A Keras initializer / regularizer object (or a name, or None) -> the gradsmith object, taking
    only the keys its class accepts (Keras adds keys across releases)."""
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, dict) or not isinstance(value.get("class_name"), str) or \
            not isinstance(value.get("config") or {}, dict):
        raise ValueError(f"cannot read {what} {value!r}")
    table = module._BY_CLASS if hasattr(module, "_BY_CLASS") else module._BY_NAME
    cls = table.get(value["class_name"])
    if cls is None:
        raise ValueError(f"{what} {value['class_name']!r} is not supported by gradsmith")
    params = inspect.signature(cls.__init__).parameters
    try:
        return cls(**{k: v for k, v in (value.get("config") or {}).items() if k in params})
    except (TypeError, AttributeError) as e:  # a value of the wrong type for the class's argument
        raise ValueError(f"cannot read {what} {value!r}: {e}") from None


def _activation_of(value):
    """Keras writes a built-in activation as its name; older files as {'class_name': 'function', ...}."""
    if isinstance(value, dict):
        inner = value.get("config")
        if value.get("class_name") == "function" and isinstance(inner, str):
            return inner
        raise ValueError(f"activation {value!r} is not a built-in activation")
    return value

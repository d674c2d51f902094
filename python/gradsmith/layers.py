"""Layers with Keras 3's names and arguments: Input, Dense, Activation, Dropout, Flatten, BatchNormalization.

A layer is ``__init__`` (configuration), ``build`` (weights, from the input
shape), ``forward``/``backward`` (the math, through gradsmith.ops) and
``get_config`` (configuration back out). Forward keeps exactly what backward
needs; backward writes the weights' gradients into ``weight.grad`` (overwrite,
not accumulate) and returns dL/dx.

Weights are float32 NumPy arrays. Inside a model they are views of the model's
one flat parameter buffer, and their gradients views of its flat gradient
buffer, so an optimizer updates every weight with one fused kernel call.
"""
import numpy as np

from gradsmith import initializers, ops, regularizers, utils

__all__ = ["Layer", "InputLayer", "Input", "KerasTensor", "Dense", "Activation", "Dropout", "Flatten",
           "BatchNormalization", "get", "serialize", "deserialize"]

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

    def backward(self, dy, need_dx=True):
        raise NotImplementedError

    def __call__(self, x, training=False):
        if isinstance(x, (KerasTensor, InputLayer)):  # the functional API: record, compute nothing
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


class InputLayer(Layer):
    """The input of a Sequential model: its shape, without the batch axis, is ``shape``."""

    def __init__(self, shape=None, batch_size=None, name=None, input_shape=None, batch_shape=None, **kwargs):
        if shape is None and input_shape is not None:
            shape = input_shape
        if batch_shape is not None:
            batch_size, shape = batch_shape[0], tuple(batch_shape[1:])
        if shape is None:
            raise ValueError("Input needs shape=, e.g. Input(shape=(20,))")
        if isinstance(shape, int):
            shape = (shape,)
        super().__init__(name=name if name is not None else _unique_name("input_layer"), **kwargs)
        self.shape = (batch_size,) + tuple(shape)
        self._declared_input_shape = self.shape

    def forward(self, x, training=False):
        return x

    def backward(self, dy, need_dx=True):
        return dy

    def get_config(self):
        return {"batch_shape": list(self.shape), "name": self.name}


def Input(shape=None, batch_size=None, name=None, batch_shape=None):  # noqa: N802 - Keras's name
    """``Input(shape=(20,))``: the input of a Sequential model, or the start of a functional one
    (``Dense(8)(Input(shape=(4,)))``)."""
    return InputLayer(shape=shape, batch_size=batch_size, name=name, batch_shape=batch_shape)


class Dense(Layer):
    """``y = activation(x @ kernel + bias)``, kernel of shape (in, units) as Keras.

    Inputs of rank > 2 are applied along the last axis. Bias and activation run
    in the GEMM's epilogue; backward applies the activation's derivative in the
    same pass that sums the bias gradient.
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"Dense: units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = _activation_name(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self._cache = None

    def build(self, input_shape):
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(f"Dense {self.name!r}: the last axis of the input must be known, got {input_shape}")
        self._kernel = self.add_weight("kernel", (in_dim, self.units), self.kernel_initializer,
                                       self.kernel_regularizer)
        self._bias = (self.add_weight("bias", (self.units,), self.bias_initializer, self.bias_regularizer)
                      if self.use_bias else None)
        super().build(input_shape)

    @property
    def kernel(self):
        return self._kernel.value

    @property
    def bias(self):
        return self._bias.value if self._bias is not None else None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def flops(self, batch=1):
        in_dim = self._kernel.shape[0]
        return 2 * batch * in_dim * self.units + (batch * self.units if self.use_bias else 0)

    def forward(self, x, training=False):
        lead = x.shape[:-1]
        if x.shape[-1] != self._kernel.shape[0]:
            raise ValueError(f"Dense {self.name!r}: expected inputs with last axis {self._kernel.shape[0]}, "
                             f"got shape {x.shape}")
        x2 = x.reshape(-1, x.shape[-1])
        bias = self.bias
        if training:
            if self.activation == "linear":
                y = ops.dense_forward(x2, self.kernel, bias)
                z = y
            else:
                y, z = ops.dense_forward(x2, self.kernel, bias, self.activation, return_preactivation=True,
                                         **_KERAS_ACTIVATION)
            self._cache = (x2, z, lead)
        else:
            y = ops.dense_forward(x2, self.kernel, bias, self.activation, **_KERAS_ACTIVATION)
        return y.reshape(lead + (self.units,))

    def backward(self, dy, need_dx=True):
        x2, z, lead = self._cache
        dx, _, _ = ops.dense_backward(
            dy.reshape(-1, self.units), x2, self.kernel, z, self.activation, use_bias=self.use_bias,
            need_dx=need_dx, dkernel_out=self._kernel.grad, dbias_out=self._bias.grad if self.use_bias else None,
            **_KERAS_ACTIVATION)
        self._add_regularization_grads()
        self._cache = None
        return None if dx is None else dx.reshape(lead + (x2.shape[1],))

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer)
                if isinstance(self.kernel_initializer, initializers.Initializer) else None,
                "bias_initializer": initializers.serialize(self.bias_initializer)
                if isinstance(self.bias_initializer, initializers.Initializer) else None,
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer)
                if self.kernel_regularizer else None,
                "bias_regularizer": regularizers.serialize(self.bias_regularizer)
                if self.bias_regularizer else None}


# What an activation *name* means in a Keras layer: keras.activations.gelu defaults to the exact erf
# form (approximate=False), while keras.ops.gelu, and so gradsmith.ops, default to the tanh form.
_KERAS_ACTIVATION = {"approximate": False}


def _activation_name(activation):
    """Keras activation identifier -> the kernel's name (None -> 'linear')."""
    if activation is None:
        return "linear"
    if not isinstance(activation, str):
        name = getattr(activation, "__name__", None)
        if name is None:
            raise TypeError(f"activation must be a name such as 'relu', got {activation!r}")
        activation = name
    ops._activation(activation, 0.2, 1.0, True)  # raises ValueError for unknown names
    return activation.lower()


class Activation(Layer):
    """Applies an activation: ``Activation('relu')``."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = _activation_name(activation)
        self._x = None

    def forward(self, x, training=False):
        if training:
            self._x = x
        return ops.activation_forward(x, self.activation, **_KERAS_ACTIVATION)

    def backward(self, dy, need_dx=True):
        dx = ops.activation_backward(dy, self._x, self.activation, **_KERAS_ACTIVATION)
        self._x = None
        return dx

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


class Dropout(Layer):
    """Zeroes a fraction ``rate`` of inputs while training and scales the rest by 1 / (1 - rate).

    The mask comes from Philox(seed; element, call counter): reproducible for a
    seed, independent of the thread count, and regenerated in backward rather
    than stored. With ``noise_shape`` (Keras's: None entries take the input's
    size) one mask of that shape is drawn and broadcast over the input, e.g.
    ``(None, 1)`` drops whole samples.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        rate = float(rate)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        if noise_shape is not None:
            noise_shape = tuple(None if d is None else int(d) for d in noise_shape)
        self.noise_shape = noise_shape
        self.rate = rate
        self.seed = seed
        self._seed = int(seed) if seed is not None else int(utils.global_rng().integers(0, 2**63))
        # Training calls so far: the Philox offset of the next mask. An array, so the compiled
        # training step (training_plan.py) advances the same counter.
        self._calls = np.zeros(1, np.int64)
        self._offset = None

    def forward(self, x, training=False):
        if not training or self.rate == 0.0:
            self._offset = None
            return x
        self._offset = int(self._calls[0])
        self._calls[0] += 1
        if self.noise_shape is not None:
            return self._broadcast_dropout(x)
        return ops.dropout_forward(x, self.rate, self._seed, self._offset)

    def backward(self, dy, need_dx=True):
        if self._offset is None:
            return dy
        if self.noise_shape is not None:
            return self._broadcast_dropout(dy)
        return ops.dropout_backward(dy, self.rate, self._seed, self._offset)

    def _broadcast_dropout(self, x):
        """x / (1 - rate) where the broadcast mask keeps, else 0 (Keras's dropout with a noise shape)."""
        if len(self.noise_shape) != x.ndim:
            raise ValueError(f"Dropout {self.name!r}: noise_shape {self.noise_shape} does not match inputs of shape "
                             f"{x.shape}")
        shape = tuple(n if d is None else d for d, n in zip(self.noise_shape, x.shape))
        mask = ops.dropout_mask(shape, self.rate, self._seed, self._offset)
        try:
            mask = np.broadcast_to(mask, x.shape)
        except ValueError:
            raise ValueError(f"Dropout {self.name!r}: noise_shape {self.noise_shape} does not broadcast to inputs "
                             f"of shape {x.shape}") from None
        return np.where(mask, x / np.float32(1.0 - self.rate), np.float32(0.0)).astype(np.float32)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape)}


class Flatten(Layer):
    """Reshapes (batch, d1, d2, ...) to (batch, d1 * d2 * ...)."""

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        return (input_shape[0], None if any(d is None for d in rest) else int(np.prod(rest, dtype=np.int64)))

    def forward(self, x, training=False):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy, need_dx=True):
        return dy.reshape(self._shape)


class BatchNormalization(Layer):
    """Normalizes each feature (the last axis) to zero mean and unit variance, then scales by ``gamma``
    and shifts by ``beta`` (Keras 3).

    While training (and trainable) it uses the batch's mean and biased variance and moves
    ``moving_mean`` / ``moving_variance`` toward them: ``moving = moving * momentum + batch * (1 -
    momentum)``; otherwise, and when not trainable, it uses the moving statistics. The kernels are
    ``ops.batch_norm_forward`` / ``batch_norm_backward``; the gradient flows through the batch's
    statistics as Keras's does.
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 synchronized=False, **kwargs):
        super().__init__(**kwargs)
        if beta_constraint is not None or gamma_constraint is not None:
            raise NotImplementedError("BatchNormalization: weight constraints are not supported")
        if isinstance(axis, (list, tuple)):
            if len(axis) != 1:
                raise NotImplementedError("BatchNormalization: one axis (the last) is supported")
            axis = axis[0]
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        if not self.epsilon > 0:
            raise ValueError(f"BatchNormalization: epsilon must be > 0, got {epsilon}")
        self.center, self.scale = bool(center), bool(scale)
        self.synchronized = bool(synchronized)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self._cache = None

    def build(self, input_shape):
        rank = len(input_shape)
        if self.axis not in (-1, rank - 1):
            raise NotImplementedError(f"BatchNormalization {self.name!r}: only the last axis can be normalized "
                                      f"(axis=-1), got axis={self.axis} for inputs of rank {rank}")
        c = input_shape[-1]
        if c is None:
            raise ValueError(f"BatchNormalization {self.name!r}: the last axis must be known, got {input_shape}")
        # Keras's order of weights: gamma, beta, moving_mean, moving_variance
        self._gamma = (self.add_weight("gamma", (c,), self.gamma_initializer, self.gamma_regularizer)
                       if self.scale else None)
        self._beta = (self.add_weight("beta", (c,), self.beta_initializer, self.beta_regularizer)
                      if self.center else None)
        self._moving_mean = self.add_weight("moving_mean", (c,), self.moving_mean_initializer, trainable=False)
        self._moving_variance = self.add_weight("moving_variance", (c,), self.moving_variance_initializer,
                                                trainable=False)
        super().build(input_shape)

    @property
    def gamma(self):
        return None if self._gamma is None else self._gamma.value

    @property
    def beta(self):
        return None if self._beta is None else self._beta.value

    @property
    def moving_mean(self):
        return self._moving_mean.value

    @property
    def moving_variance(self):
        return self._moving_variance.value

    def flops(self, batch=1):
        return 2 * batch * self._moving_mean.size  # y = x s + shift

    def forward(self, x, training=False):
        c = self._moving_mean.size
        if x.shape[-1] != c:
            raise ValueError(f"BatchNormalization {self.name!r}: expected inputs with last axis {c}, got shape "
                             f"{x.shape}")
        x2 = x.reshape(-1, c)
        if training and self.trainable and len(x2):
            y, mean, var = ops.batch_norm_forward(x2, self.gamma, self.beta, epsilon=self.epsilon)
            m = np.float32(self.momentum)
            one_minus = np.float32(1.0 - self.momentum)
            self.moving_mean[...] = self.moving_mean * m + mean * one_minus
            self.moving_variance[...] = self.moving_variance * m + var * one_minus
            self._cache = (x2, mean, var, True)
        else:
            mean, var = self.moving_mean.copy(), self.moving_variance.copy()
            y = ops.batch_norm_forward(x2, self.gamma, self.beta, epsilon=self.epsilon, mean=mean, variance=var)
            self._cache = (x2, mean, var, False) if training else None
        return y.reshape(x.shape)

    def backward(self, dy, need_dx=True):
        x2, mean, var, batch_statistics = self._cache
        dx, dgamma, dbeta = ops.batch_norm_backward(dy.reshape(x2.shape), x2, mean, var, self.gamma,
                                                    epsilon=self.epsilon, batch_statistics=batch_statistics,
                                                    need_dx=need_dx)
        if self._gamma is not None:
            self._gamma.grad[...] = dgamma
        if self._beta is not None:
            self._beta.grad[...] = dbeta
        self._add_regularization_grads()
        self._cache = None
        return None if dx is None else dx.reshape(dy.shape)

    def get_config(self):
        def ser(obj, module):
            return module.serialize(obj) if obj is not None and hasattr(module, "serialize") else None

        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                "beta_initializer": ser(self.beta_initializer, initializers),
                "gamma_initializer": ser(self.gamma_initializer, initializers),
                "moving_mean_initializer": ser(self.moving_mean_initializer, initializers),
                "moving_variance_initializer": ser(self.moving_variance_initializer, initializers),
                "beta_regularizer": ser(self.beta_regularizer, regularizers),
                "gamma_regularizer": ser(self.gamma_regularizer, regularizers),
                "synchronized": self.synchronized}


_LAYERS = {cls.__name__: cls for cls in (InputLayer, Dense, Activation, Dropout, Flatten, BatchNormalization)}


def serialize(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config):
    cls = _LAYERS.get(config.get("class_name"))
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

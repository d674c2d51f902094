"""The core layers: Dense, Activation, Dropout and Flatten (Keras 3's names, arguments and numbers)."""
import numpy as np

from gradsmith import ops, quantizers, utils
from gradsmith.layers.base import (KernelBias, Layer, NoCompiledForm, _initializer_config, _regularizer_config, as_shape,
                                   compiled_penalties)
from gradsmith.layers.quantized import Int8Quantizable

__all__ = ["Dense", "Activation", "Dropout", "Flatten"]


class Dense(Int8Quantizable, KernelBias, Layer):
    """``y = activation(x @ kernel + bias)``, kernel of shape (in, units) as Keras.

    Inputs of rank > 2 are applied along the last axis. Bias and activation run
    in the GEMM's epilogue; backward applies the activation's derivative in the
    same pass that sums the bias gradient.

    ``quantize("int8")`` (Keras 3's): the kernel becomes int8 with one scale per output column,
    ``kernel_scale = 127 / (max|kernel[:, j]| + 1e-7)``; each call quantizes its inputs per row the same
    way and computes ``activation(Q(x) @ kernel / (kernel_scale * x_scale) + bias)`` on the int8 GEMM
    (cpp/cpu/qgemm.cpp). Its weights are then ``kernel`` (int8, frozen), ``bias``, ``kernel_scale`` (frozen),
    Keras's saved order; training updates the bias and passes gradients to the inputs through the
    dequantized kernel, as Keras's custom gradient does.
    """

    _steps_pointwise = True

    supports_masking = True  # passes the mask of a (batch, timesteps, ...) input on, as in Keras

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"Dense: units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = _activation_name(activation)
        self._kernel_bias_arguments(use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                                    bias_regularizer)
        self._cache = None

    def build(self, input_shape):
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(f"Dense {self.name!r}: the last axis of the input must be known, got {input_shape}")
        if self.quantization_mode == "int8":
            self._int8_build((in_dim, self.units))
        else:
            self._add_kernel_and_bias((in_dim, self.units), (self.units,))
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def flops(self, batch=1):
        in_dim = self._kernel.shape[0]
        # inputs (batch, ..., in): one row per position of the middle axes (every step of a sequence)
        rows = batch * int(np.prod([d or 1 for d in (self.input_shape or (None, in_dim))[1:-1]], dtype=np.int64))
        return 2 * rows * in_dim * self.units + (rows * self.units if self.use_bias else 0)

    def forward(self, x, training=False):
        lead = x.shape[:-1]
        if x.shape[-1] != self._kernel.shape[0]:
            raise ValueError(f"Dense {self.name!r}: expected inputs with last axis {self._kernel.shape[0]}, "
                             f"got shape {x.shape}")
        x2 = x.reshape(-1, x.shape[-1])
        bias = self.bias
        if self.quantization_mode == "int8":
            return self._int8_forward(x2, training).reshape(lead + (self.units,))
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
        if self.quantization_mode == "int8":
            return self._int8_backward(dy, need_dx)
        x2, z, lead = self._cache
        dx, _, _ = ops.dense_backward(
            dy.reshape(-1, self.units), x2, self.kernel, z, self.activation, use_bias=self.use_bias,
            need_dx=need_dx, dkernel_out=self._kernel.grad, dbias_out=self._bias.grad if self.use_bias else None,
            **_KERAS_ACTIVATION)
        self._add_regularization_grads()
        self._cache = None
        return None if dx is None else dx.reshape(lead + (x2.shape[1],))

    # -- int8 (Keras's quantize("int8")) ----------------------------------------------------------------
    def quantize(self, mode=None, type_check=True, config=None):
        """Keras's ``Dense.quantize``: the float32 kernel -> int8 with per-output-column scales."""
        self._check_quantize(mode, config, type_check, Dense)
        kernel = np.array(self.kernel, np.float32)
        bias = None if self.bias is None else np.array(self.bias, np.float32)
        q, scale = quantizers.abs_max_quantize(kernel, axis=0)
        self._weights = []
        self._quantization_mode = mode
        self._int8_build(kernel.shape)
        self._set_quantized(self._kernel, q)
        self._set_quantized(self.kernel_scale_weight, scale.reshape(-1))
        if bias is not None:
            self._bias.value[...] = bias

    def _int8_kernel(self):
        """The kernel packed for the int8 GEMM, packed again after any write to it (Weight.version)."""
        key = (id(self._kernel.value), self._kernel.version)
        if self._packed is None or self._packed[0] != key:
            self._packed = (key, ops.QuantizedKernel(self._kernel.value))
        return self._packed[1]

    def _int8_forward(self, x2, training):
        if not training:
            return ops.quantized_dense_forward(x2, self._int8_kernel(), self.kernel_scale, self.bias,
                                               self.activation, **_KERAS_ACTIVATION)
        z = ops.quantized_dense_forward(x2, self._int8_kernel(), self.kernel_scale, self.bias)
        self._cache = (x2.shape, z, None)
        return ops.activation_forward(z, self.activation, **_KERAS_ACTIVATION)

    def _int8_backward(self, dy, need_dx):
        """Keras's custom gradient: dz = dy * f'(z); dbias = sum_rows(dz); dx = dz @ (kernel / kernel_scale)^T
        (the input quantization passes gradients straight through); the int8 kernel gets none."""
        x_shape, z, _ = self._cache
        dz = ops.activation_backward(dy.reshape(-1, self.units), z, self.activation, **_KERAS_ACTIVATION)
        if self.use_bias:
            ops.sum_rows(dz, out=self._bias.grad)
        self._add_regularization_grads()
        self._cache = None
        if not need_dx:
            return None
        float_kernel = np.divide(self._kernel.value.astype(np.float32), self.kernel_scale, dtype=np.float32)
        dx = ops.matmul(dz, float_kernel, transpose_b=True)
        return dx.reshape(dy.shape[:-1] + (x_shape[1],))

    def _compiled_config(self, input_shape, offset):
        if self.quantization_mode is not None:
            raise NoCompiledForm(f"Dense {self.name!r} is quantized ({self.quantization_mode}): it runs layer by "
                                 "layer, on the int8 GEMM")
        return {"kind": "Dense", "numbers": {"units": self.units, **_activation_numbers(self.activation)},
                "weights": self._kernel_bias_offsets(offset),
                "penalties": compiled_penalties(kernel=self.kernel_regularizer,
                                                bias=self.bias_regularizer if self.use_bias else None)}

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias,
                "kernel_initializer": _initializer_config(self.kernel_initializer, "GlorotUniform"),
                "bias_initializer": _initializer_config(self.bias_initializer, "Zeros"),
                "kernel_regularizer": _regularizer_config(self.kernel_regularizer, self),
                "bias_regularizer": _regularizer_config(self.bias_regularizer, self),
                "kernel_constraint": None, "bias_constraint": None, **self._quantization_entries()}


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


def _activation_numbers(name):
    """The activation as the compiled step's kernels take it: its kind and its one parameter."""
    kind, param = ops._activation(name, 0.2, 1.0, _KERAS_ACTIVATION["approximate"])
    return {"activation": kind, "activation_param": float(param)}
class Activation(Layer):
    """Applies an activation: ``Activation('relu')``."""

    _steps_pointwise = True

    supports_masking = True  # passes the mask of a (batch, timesteps, ...) input on, as in Keras

    # The kernels' parameters of leaky_relu and elu (the activation layers of layers/activations.py set them).
    _negative_slope, _alpha = 0.2, 1.0

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = _activation_name(activation)
        self._x = None

    def _params(self):
        return {**_KERAS_ACTIVATION, "negative_slope": self._negative_slope, "alpha": self._alpha}

    def forward(self, x, training=False):
        if training:
            self._x = x
        return ops.activation_forward(x, self.activation, **self._params())

    def backward(self, dy, need_dx=True):
        dx = ops.activation_backward(dy, self._x, self.activation, **self._params())
        self._x = None
        return dx

    def _compiled_config(self, input_shape, offset):
        kind, param = ops._activation(self.activation, self._negative_slope, self._alpha,
                                      _KERAS_ACTIVATION["approximate"])
        return {"kind": "Activation", "numbers": {"activation": kind, "activation_param": float(param)}}

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

    _steps_pointwise = True

    supports_masking = True  # passes the mask of a (batch, timesteps, ...) input on, as in Keras

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        rate = float(rate)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        if noise_shape is not None:
            noise_shape = as_shape(noise_shape, "Dropout: noise_shape")
        self.noise_shape = noise_shape
        self.rate = rate
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"Dropout: seed must be an integer or None, got {seed!r}")
        self.seed = seed
        self._seed = int(seed) if seed is not None else int(utils.global_rng().integers(0, 2**63))
        # Training calls so far: the Philox offset of the next mask. An array, so the compiled
        # training step (compiled_step.py) advances the same counter.
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

    def _compiled_config(self, input_shape, offset):
        if not 0 <= self._seed < 2**64:
            raise NoCompiledForm(f"Dropout {self.name!r}: the seed {self._seed} is not a 64-bit word")
        config = {"kind": "Dropout", "numbers": {"rate": self.rate},
                  "integers": {"seed": (self._seed + 2**63) % 2**64 - 2**63},  # the word, as int64
                  "counter": self._calls}
        if self.noise_shape is not None:
            # -1 for None (the input's size); the batch entry must be None or 1, the others None, 1 or the
            # input's size: other shapes take the Python path, which explains what is wrong with them.
            noise = [-1 if d is None else d for d in self.noise_shape]
            if len(noise) != len(input_shape) + 1 or noise[0] not in (-1, 1) \
                    or any(n not in (-1, 1, d) for n, d in zip(noise[1:], input_shape)):
                raise NoCompiledForm(f"Dropout {self.name!r}: noise_shape {self.noise_shape} does not broadcast "
                                     f"to inputs of shape {(None, *input_shape)}")
            config["lists"] = {"noise_shape": noise}
        return config

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape)}
class Flatten(Layer):
    """Reshapes (batch, d1, d2, ...) to (batch, d1 * d2 * ...)."""

    def get_config(self):
        return {**super().get_config(), "data_format": "channels_last"}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        data_format = config.pop("data_format", None)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"layer {config.get('name')!r} is a Flatten with data_format={data_format!r}; gradsmith "
                             "supports channels_last")
        return super().from_config(config)

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        return (input_shape[0], None if any(d is None for d in rest) else int(np.prod(rest, dtype=np.int64)))

    def forward(self, x, training=False):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy, need_dx=True):
        return dy.reshape(self._shape)

    def _compiled_config(self, input_shape, offset):
        return {"kind": "Flatten", "numbers": {}}

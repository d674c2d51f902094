"""More 2-D convolutions with Keras 3's arguments, weights and numbers (channels last), layer by layer:

- ``DepthwiseConv2D``: each input channel convolved with its own ``depth_multiplier`` filters, kernel
  (kh, kw, channels, depth_multiplier); output channel ``c * depth_multiplier + m``. NumPy over strided
  windows of the padded input.
- ``SeparableConv2D``: a depthwise convolution, then a 1x1 convolution to ``filters`` (weights
  ``depthwise_kernel``, ``pointwise_kernel``, ``bias``), then the activation.
- ``Conv2DTranspose``: the adjoint of Conv2D with kernel (kh, kw, filters, channels): its forward is
  Conv2D's input gradient and its input gradient is a Conv2D, both on the convolution kernels
  (``ops.conv2d_backward`` / ``conv2d_forward``). Output size as Keras: 'same' ``n * stride``, 'valid'
  ``n * stride + max(kernel - stride, 0)``.

'same' padding is TensorFlow's (the extra row or column after), as in Conv2D.
"""
import numpy as np

from gradsmith import initializers, ops, regularizers
from gradsmith.layers.base import KernelBias, Layer, NoCompiledForm, _initializer_config, _regularizer_config
from gradsmith.layers.convolutional import as_tuple, check_data_format, padding_name, window_output
from gradsmith.layers.core import _KERAS_ACTIVATION, _activation_name

__all__ = ["Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D"]


def _same_padding(size, k, stride, dilation):
    """(before, after) of TensorFlow's 'same' padding along one axis."""
    span = (k - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


class _Depthwise:
    """The depthwise convolution's math (NumPy): forward keeps the windows for backward."""

    def _pads(self, shape):
        if self.padding == "valid":
            return ((0, 0), (0, 0))
        return tuple(_same_padding(s, k, st, d) for s, k, st, d in
                     zip(shape[1:3], self.kernel_size, self.strides, self.dilation_rate))

    def _depthwise_forward(self, x, kernel):
        pads = self._pads(x.shape)
        xp = np.pad(x, ((0, 0),) + pads + ((0, 0),))
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.strides, self.dilation_rate
        spans = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
        win = np.lib.stride_tricks.sliding_window_view(xp, spans, axis=(1, 2))[:, ::sh, ::sw, :, ::dh, ::dw]
        y = np.einsum("nhwcij,ijcm->nhwcm", win, kernel, optimize=True)
        return y.reshape(y.shape[:3] + (kernel.shape[2] * kernel.shape[3],)).astype(np.float32), (win, xp.shape, pads)

    def _depthwise_backward(self, dz, kernel, saved, need_dx):
        win, padded_shape, pads = saved
        n, ho, wo = dz.shape[:3]
        dz = dz.reshape(n, ho, wo, kernel.shape[2], kernel.shape[3])
        dkernel = np.einsum("nhwcij,nhwcm->ijcm", win, dz, optimize=True).astype(np.float32)
        if not need_dx:
            return None, dkernel
        dwin = np.einsum("nhwcm,ijcm->nhwcij", dz, kernel, optimize=True)
        dxp = np.zeros(padded_shape, np.float32)
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.strides, self.dilation_rate
        for i in range(kh):
            for j in range(kw):
                dxp[:, i * dh:i * dh + (ho - 1) * sh + 1:sh, j * dw:j * dw + (wo - 1) * sw + 1:sw] += dwin[..., i, j]
        (t, b), (l, r) = pads
        return np.ascontiguousarray(dxp[:, t:padded_shape[1] - b, l:padded_shape[2] - r]), dkernel


class _Conv2DBase(Layer):
    """Arguments every variant shares (Keras's BaseConv / BaseDepthwiseConv)."""

    def _common(self, kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                activity_regularizer, constraints):
        what = type(self).__name__
        check_data_format(data_format, what)
        if activity_regularizer is not None or any(c is not None for c in constraints):
            raise NotImplementedError(f"{what}: activity regularizers and weight constraints are not supported")
        self.kernel_size = as_tuple(kernel_size, 2, f"{what}: kernel_size")
        self.strides = as_tuple(strides, 2, f"{what}: strides")
        self.dilation_rate = as_tuple(dilation_rate, 2, f"{what}: dilation_rate")
        self.padding = padding_name(padding, ("valid", "same"), what)
        if self.strides != (1, 1) and self.dilation_rate != (1, 1):
            raise ValueError(f"{what}: strides > 1 and dilation_rate > 1 cannot be combined (as in Keras)")
        self.activation = _activation_name(activation)
        self.use_bias = bool(use_bias)

    def _check_input(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected images (batch, height, width, channels) "
                             f"with known channels, got {tuple(input_shape)}")

    def _spatial(self, input_shape):
        try:
            return tuple(window_output(s, k, st, d, self.padding) for s, k, st, d in
                         zip(input_shape[1:3], self.kernel_size, self.strides, self.dilation_rate))
        except ValueError as e:
            raise ValueError(f"{type(self).__name__} {self.name!r}: {e} (inputs {tuple(input_shape)})") from None

    def _activate(self, z, training):
        y = ops.activation_forward(z, self.activation, **_KERAS_ACTIVATION)
        return y

    def _dz(self, dy, z):
        return ops.activation_backward(np.ascontiguousarray(dy, dtype=np.float32), z, self.activation,
                                       **_KERAS_ACTIVATION)

    def _compiled_config(self, input_shape, offset):
        raise NoCompiledForm(f"{type(self).__name__} {self.name!r} runs layer by layer")

    def _geometry_config(self):
        return {"kernel_size": self.kernel_size, "strides": self.strides, "padding": self.padding,
                "data_format": "channels_last", "dilation_rate": self.dilation_rate, "activation": self.activation,
                "use_bias": self.use_bias}


class DepthwiseConv2D(_Depthwise, _Conv2DBase):
    """Each channel convolved with its own ``depth_multiplier`` filters: ``activation(depthwise(x) + bias)``."""

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self._common(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                     activity_regularizer, (depthwise_constraint, bias_constraint))
        if isinstance(depth_multiplier, bool) or not isinstance(depth_multiplier, (int, np.integer)) or \
                depth_multiplier < 1:
            raise ValueError(f"DepthwiseConv2D: depth_multiplier must be a positive integer, got {depth_multiplier!r}")
        self.depth_multiplier = int(depth_multiplier)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape):
        self._check_input(input_shape)
        self.compute_output_shape(input_shape)
        c = input_shape[-1]
        self._kernel = self.add_weight("kernel", self.kernel_size + (c, self.depth_multiplier),
                                       self.depthwise_initializer, self.depthwise_regularizer)
        self._bias = self.add_weight("bias", (c * self.depth_multiplier,), self.bias_initializer,
                                     self.bias_regularizer) if self.use_bias else None
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        self._check_input(input_shape)
        return (input_shape[0],) + self._spatial(input_shape) + (input_shape[-1] * self.depth_multiplier,)

    def forward(self, x, training=False):
        x = np.ascontiguousarray(x, dtype=np.float32)
        z, saved = self._depthwise_forward(x, self._kernel.value)
        if self.use_bias:
            z = z + self._bias.value
        if training:
            self._cache = (saved, z)
        return self._activate(z, training)

    def backward(self, dy, need_dx=True):
        saved, z = self._cache
        self._cache = None
        dz = self._dz(dy, z)
        if self.use_bias:
            self._bias.grad[...] = dz.sum(axis=(0, 1, 2), dtype=np.float64)
        dx, dkernel = self._depthwise_backward(dz, self._kernel.value, saved, need_dx)
        self._kernel.grad[...] = dkernel
        self._add_regularization_grads()
        return dx

    def get_config(self):
        return {**super().get_config(), **self._geometry_config(), "depth_multiplier": self.depth_multiplier,
                "depthwise_initializer": _initializer_config(self.depthwise_initializer, "GlorotUniform"),
                "bias_initializer": _initializer_config(self.bias_initializer, "Zeros"),
                "depthwise_regularizer": _regularizer_config(self.depthwise_regularizer, self),
                "bias_regularizer": _regularizer_config(self.bias_regularizer, self),
                "activity_regularizer": None, "depthwise_constraint": None, "bias_constraint": None}


class SeparableConv2D(_Depthwise, _Conv2DBase):
    """A depthwise convolution (``depth_multiplier`` filters per channel), then a 1x1 convolution to
    ``filters``, plus bias and activation."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None, dilation_rate=(1, 1),
                 depth_multiplier=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self._common(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                     activity_regularizer, (depthwise_constraint, pointwise_constraint, bias_constraint))
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"SeparableConv2D: filters must be a positive integer, got {filters!r}")
        if isinstance(depth_multiplier, bool) or not isinstance(depth_multiplier, (int, np.integer)) or \
                depth_multiplier < 1:
            raise ValueError(f"SeparableConv2D: depth_multiplier must be a positive integer, got {depth_multiplier!r}")
        self.filters, self.depth_multiplier = int(filters), int(depth_multiplier)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape):
        self._check_input(input_shape)
        self.compute_output_shape(input_shape)
        c, m = input_shape[-1], self.depth_multiplier
        self._depthwise = self.add_weight("depthwise_kernel", self.kernel_size + (c, m), self.depthwise_initializer,
                                          self.depthwise_regularizer)
        self._pointwise = self.add_weight("pointwise_kernel", (1, 1, c * m, self.filters), self.pointwise_initializer,
                                          self.pointwise_regularizer)
        self._bias = self.add_weight("bias", (self.filters,), self.bias_initializer, self.bias_regularizer) \
            if self.use_bias else None
        super().build(input_shape)

    @property
    def depthwise_kernel(self):
        return self._depthwise.value

    @property
    def pointwise_kernel(self):
        return self._pointwise.value

    def compute_output_shape(self, input_shape):
        self._check_input(input_shape)
        return (input_shape[0],) + self._spatial(input_shape) + (self.filters,)

    def forward(self, x, training=False):
        x = np.ascontiguousarray(x, dtype=np.float32)
        h, saved = self._depthwise_forward(x, self._depthwise.value)
        w = self._pointwise.value.reshape(self._pointwise.shape[2:])
        z = (h @ w).astype(np.float32)
        if self.use_bias:
            z = z + self._bias.value
        if training:
            self._cache = (saved, h, z)
        return self._activate(z, training)

    def backward(self, dy, need_dx=True):
        saved, h, z = self._cache
        self._cache = None
        dz = self._dz(dy, z)
        w = self._pointwise.value.reshape(self._pointwise.shape[2:])
        if self.use_bias:
            self._bias.grad[...] = dz.sum(axis=(0, 1, 2), dtype=np.float64)
        flat_h, flat_dz = h.reshape(-1, h.shape[-1]), dz.reshape(-1, dz.shape[-1])
        self._pointwise.grad[...] = (flat_h.T @ flat_dz).reshape(self._pointwise.shape)
        dh = (dz @ w.T).astype(np.float32)
        dx, dkernel = self._depthwise_backward(dh, self._depthwise.value, saved, need_dx)
        self._depthwise.grad[...] = dkernel
        self._add_regularization_grads()
        return dx

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, **self._geometry_config(),
                "depth_multiplier": self.depth_multiplier,
                "depthwise_initializer": _initializer_config(self.depthwise_initializer, "GlorotUniform"),
                "pointwise_initializer": _initializer_config(self.pointwise_initializer, "GlorotUniform"),
                "bias_initializer": _initializer_config(self.bias_initializer, "Zeros"),
                "depthwise_regularizer": _regularizer_config(self.depthwise_regularizer, self),
                "pointwise_regularizer": _regularizer_config(self.pointwise_regularizer, self),
                "bias_regularizer": _regularizer_config(self.bias_regularizer, self),
                "activity_regularizer": None, "depthwise_constraint": None, "pointwise_constraint": None,
                "bias_constraint": None}


class Conv2DTranspose(KernelBias, _Conv2DBase):
    """The transposed convolution (Conv2D's adjoint), kernel (kh, kw, filters, channels)."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self._common(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                     activity_regularizer, (kernel_constraint, bias_constraint))
        if output_padding is not None:
            raise NotImplementedError("Conv2DTranspose: output_padding is not supported (only None)")
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"Conv2DTranspose: filters must be a positive integer, got {filters!r}")
        self.filters = int(filters)
        self._kernel_bias_arguments(use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                                    bias_regularizer)

    def build(self, input_shape):
        self._check_input(input_shape)
        self._add_kernel_and_bias(self.kernel_size + (self.filters, input_shape[-1]), (self.filters,))
        Layer.build(self, input_shape)

    def compute_output_shape(self, input_shape):
        self._check_input(input_shape)
        sides = []
        for n, k, s, d in zip(input_shape[1:3], self.kernel_size, self.strides, self.dilation_rate):
            span = (k - 1) * d + 1
            sides.append(None if n is None else n * s if self.padding == "same" else n * s + max(span - s, 0))
        return (input_shape[0],) + tuple(sides) + (self.filters,)

    def _geometry(self):
        return dict(strides=self.strides, padding=self.padding, dilation_rate=self.dilation_rate)

    def forward(self, x, training=False):
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = self.compute_output_shape((None,) + x.shape[1:])
        shape = (len(x),) + out[1:]
        kernel = self.kernel
        # y = the input gradient of Conv2D(y-shaped input; kernel) at output gradient x
        z, _, _ = ops.conv2d_backward(x, np.zeros(shape, np.float32), kernel, None, use_bias=False,
                                      dkernel_out=np.empty(kernel.shape, np.float32), **self._geometry())
        if self.use_bias:
            z = z + self.bias
        if training:
            self._cache = (x, z)
        return self._activate(z, training)

    def backward(self, dy, need_dx=True):
        x, z = self._cache
        self._cache = None
        dz = np.ascontiguousarray(self._dz(dy, z), dtype=np.float32)
        if self.use_bias:
            self._bias.grad[...] = dz.sum(axis=(0, 1, 2), dtype=np.float64)
        # <T(x; K), dz> = <x, Conv2D(dz; K)>: the kernel gradient of that convolution, and its output for dx
        ops.conv2d_backward(x, dz, self.kernel, None, use_bias=False, need_dx=False, dkernel_out=self._kernel.grad,
                            **self._geometry())
        self._add_regularization_grads()
        if not need_dx:
            return None
        return ops.conv2d_forward(dz, self.kernel, None, **self._geometry())

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, **self._geometry_config(),
                "output_padding": None,
                "kernel_initializer": _initializer_config(self.kernel_initializer, "GlorotUniform"),
                "bias_initializer": _initializer_config(self.bias_initializer, "Zeros"),
                "kernel_regularizer": _regularizer_config(self.kernel_regularizer, self),
                "bias_regularizer": _regularizer_config(self.bias_regularizer, self),
                "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}

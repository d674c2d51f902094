"""Convolution layers, channels last: Conv2D and Conv1D (Keras 3's arguments, weight shapes and numbers).

Conv2D's kernel is (kh, kw, in, filters) and Conv1D's (k, in, filters), as Keras stores them; a Conv1D is a
Conv2D over images one pixel high, so both run the same kernels (``ops.conv2d_forward`` / ``conv2d_backward``,
cpp/cpu/conv.cpp) and the same compiled layer (cpp/model/layers/conv.h).
"""
import numpy as np

from gradsmith import _core, ops, quantizers
from gradsmith.layers.base import (KernelBias, Layer, NoCompiledForm, _initializer_config, _regularizer_config,
                                   compiled_penalties)
from gradsmith.layers.core import _KERAS_ACTIVATION, _activation_name, _activation_numbers
from gradsmith.layers.quantized import Int8Quantizable

__all__ = ["Conv1D", "Conv2D", "Convolution1D", "Convolution2D", "window_output", "as_tuple"]


def as_tuple(value, rank, what, minimum=1):
    """An int or a sequence of ``rank`` ints as a tuple (Keras's standardize_tuple)."""
    items = (value,) * rank if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        items = tuple(items)
    except TypeError:
        raise ValueError(f"{what} must be an integer or a tuple of {rank} integers, got {value!r}") from None
    if len(items) != rank or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
        raise ValueError(f"{what} must be an integer or a tuple of {rank} integers, got {value!r}")
    if not all(minimum <= v <= 2 ** 20 for v in items):
        raise ValueError(f"{what} values must be in [{minimum}, 2^20], got {value!r}")
    return tuple(int(v) for v in items)


def window_output(size, k, stride, dilation, padding):
    """Output length along one axis (Keras / TensorFlow's rule; None stays None): 'valid' floor((size - span) /
    stride) + 1, 'same' ceil(size / stride), 'causal' as 'valid' after (k - 1) * dilation of left padding."""
    if size is None:
        return None
    span = (k - 1) * dilation + 1
    if padding == "same":
        return -(-size // stride)
    if padding == "causal":
        size += span - 1
    if size < span:
        raise ValueError(f"the window ({span}) is larger than the input ({size})")
    return (size - span) // stride + 1


def padding_name(padding, allowed, what):
    if not isinstance(padding, str) or padding.lower() not in allowed:
        raise ValueError(f"{what}: padding must be one of {', '.join(map(repr, allowed))}, got {padding!r}")
    return padding.lower()


def check_data_format(data_format, what):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{what}: data_format={data_format!r} is not supported; gradsmith is channels_last")


class _Conv(Int8Quantizable, KernelBias, Layer):
    """The convolution of rank 1 or 2 (Keras's BaseConv).

    ``quantize("int8")`` is a gradsmith extension (Keras 3 quantizes no convolution), opted into with
    ``model.quantize("int8", convolutions=True)`` or by calling the layer's own ``quantize``: the kernel
    becomes int8 with one scale per filter (Keras's abs-max formula over kh x kw x in), each output pixel's
    input patch is quantized on the fly as a Dense row is, and the product runs on the int8 GEMM (patches
    gathered in NumPy). Inference only: training such a layer raises NotImplementedError. Its file keeps
    Keras's layout but Keras cannot build it.
    """

    rank = 2
    _quantize_opt_in = True  # model.quantize leaves it float32 unless asked (convolutions=True)

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1, groups=1,
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        what = type(self).__name__
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or not 1 <= filters <= 2 ** 20:
            raise ValueError(f"{what}: filters must be a positive integer, got {filters!r}")
        check_data_format(data_format, what)
        if groups != 1:
            raise NotImplementedError(f"{what}: grouped convolutions (groups={groups!r}) are not supported")
        if activity_regularizer is not None or kernel_constraint is not None or bias_constraint is not None:
            raise NotImplementedError(f"{what}: activity regularizers and weight constraints are not supported")
        self.filters = int(filters)
        self.kernel_size = as_tuple(kernel_size, self.rank, f"{what}: kernel_size")
        self.strides = as_tuple(strides, self.rank, f"{what}: strides")
        self.dilation_rate = as_tuple(dilation_rate, self.rank, f"{what}: dilation_rate")
        allowed = ("valid", "same", "causal") if self.rank == 1 else ("valid", "same")
        self.padding = padding_name(padding, allowed, what)
        if self.strides != (1,) * self.rank and self.dilation_rate != (1,) * self.rank:
            raise ValueError(f"{what}: strides > 1 and dilation_rate > 1 cannot be combined (as in Keras)")
        self.activation = _activation_name(activation)
        self._kernel_bias_arguments(use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                                    bias_regularizer)
        self._cache = None

    # Conv1D runs as a Conv2D one pixel high: these give the 2-D view of its arguments.
    def _pair(self, values):
        return (1,) + tuple(values) if self.rank == 1 else tuple(values)

    def build(self, input_shape):
        what = f"{type(self).__name__} {self.name!r}"
        if len(input_shape) != self.rank + 2:
            raise ValueError(f"{what}: expected inputs of rank {self.rank + 2} (batch, "
                             f"{'steps' if self.rank == 1 else 'height, width'}, channels), got {input_shape}")
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"{what}: the channel axis of the input must be known, got {input_shape}")
        self.compute_output_shape(input_shape)  # raises when the kernel does not fit
        if self.quantization_mode == "int8":
            self._int8_build(self.kernel_size + (channels, self.filters))
        else:
            self._add_kernel_and_bias(self.kernel_size + (channels, self.filters), (self.filters,))
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        try:
            sides = tuple(window_output(s, k, st, d, self.padding) for s, k, st, d in
                          zip(input_shape[1:-1], self.kernel_size, self.strides, self.dilation_rate))
        except ValueError as e:
            raise ValueError(f"{type(self).__name__} {self.name!r}: {e} (inputs {tuple(input_shape)}, kernel_size "
                             f"{self.kernel_size}, dilation_rate {self.dilation_rate})") from None
        return (input_shape[0],) + sides + (self.filters,)

    def flops(self, batch=1):
        out = self.output_shape
        if out is None or any(d is None for d in out[1:-1]):
            return 0  # image size unknown until called (a fully convolutional model)
        pixels = int(np.prod(out[1:-1]))
        patch = int(np.prod(self._kernel.shape[:-1]))
        return batch * pixels * self.filters * (2 * patch + (1 if self.use_bias else 0))

    def _as_images(self, x):
        return x.reshape(x.shape[0], 1, x.shape[1], x.shape[2]) if self.rank == 1 else x

    def _geometry(self):
        return dict(strides=self._pair(self.strides), padding=self.padding, dilation_rate=self._pair(self.dilation_rate))

    def forward(self, x, training=False):
        if x.ndim != self.rank + 2 or x.shape[-1] != self._kernel.shape[-2]:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected inputs of rank {self.rank + 2} with "
                             f"{self._kernel.shape[-2]} channels, got shape {x.shape}")
        images = self._as_images(np.ascontiguousarray(x, dtype=np.float32))
        if self.quantization_mode == "int8":
            y = self._int8_forward(images, training)
            return y.reshape((y.shape[0],) + y.shape[2:]) if self.rank == 1 else y
        kernel = self.kernel.reshape(self._pair(self.kernel.shape[:-2]) + self.kernel.shape[-2:])
        y, z = ops.conv2d_forward(images, kernel, self.bias, activation=self.activation,
                                  return_preactivation=True, **self._geometry(), **_KERAS_ACTIVATION)
        if training:
            self._cache = (images, z, x.shape)
        return y.reshape((y.shape[0],) + y.shape[2:]) if self.rank == 1 else y

    def backward(self, dy, need_dx=True):
        images, z, x_shape = self._cache
        dy = np.ascontiguousarray(dy, dtype=np.float32).reshape(z.shape)
        kernel = self.kernel.reshape(self._pair(self.kernel.shape[:-2]) + self.kernel.shape[-2:])
        dx, _, _ = ops.conv2d_backward(
            dy, images, kernel, z, activation=self.activation, use_bias=self.use_bias, need_dx=need_dx,
            dkernel_out=self._kernel.grad.reshape(kernel.shape), dbias_out=self._bias.grad if self.use_bias else None,
            **self._geometry(), **_KERAS_ACTIVATION)
        self._add_regularization_grads()
        self._cache = None
        return None if dx is None else dx.reshape(x_shape)

    # -- int8 (a gradsmith extension) -------------------------------------------------------------------
    def quantize(self, mode=None, type_check=True, config=None):
        """The kernel as (kh * kw * in, filters) -> int8 with Keras's per-column abs-max scales."""
        self._check_quantize(mode, config, False, _Conv)
        kernel = np.array(self.kernel, np.float32)
        bias = None if self.bias is None else np.array(self.bias, np.float32)
        q, scale = quantizers.abs_max_quantize(kernel.reshape(-1, self.filters), axis=0)
        self._weights = []
        self._quantization_mode = mode
        self._int8_build(kernel.shape)
        self._set_quantized(self._kernel, q.reshape(kernel.shape))
        self._set_quantized(self.kernel_scale_weight, scale.reshape(-1))
        if bias is not None:
            self._bias.value[...] = bias

    def _int8_kernel(self):
        key = (id(self._kernel.value), self._kernel.version)
        if self._packed is None or self._packed[0] != key:
            self._packed = (key, ops.QuantizedKernel(self._kernel.value.reshape(-1, self.filters)))
        return self._packed[1]

    def _patches(self, images):
        """(n * oh * ow, kh * kw * c): each output pixel's input patch, taps in the kernel's (ky, kx, c) order,
        zero padding as the float32 convolution ('same': TensorFlow's split, the extra pixel after)."""
        n, h, w, c = images.shape
        (kh, kw), (sh, sw), (dh, dw) = self._pair(self.kernel_size), self._pair(self.strides), \
            self._pair(self.dilation_rate)
        pads, outs = [], []
        for size, k, st, d in ((h, kh, sh, dh), (w, kw, sw, dw)):
            span = (k - 1) * d + 1
            if self.padding == "same":
                out = -(-size // st)
                total = max((out - 1) * st + span - size, 0)
                pads.append((total // 2, total - total // 2))
            elif self.padding == "causal":
                out = (size - 1) // st + 1
                pads.append((span - 1, 0))
            else:
                out = (size - span) // st + 1
                pads.append((0, 0))
            outs.append(out)
        oh, ow = outs
        xp = np.pad(images, ((0, 0), pads[0], pads[1], (0, 0))) if any(sum(p) for p in pads) else images
        taps = [xp[:, ky * dh:ky * dh + (oh - 1) * sh + 1:sh, kx * dw:kx * dw + (ow - 1) * sw + 1:sw, :]
                for ky in range(kh) for kx in range(kw)]
        return np.stack(taps, axis=3).reshape(n * oh * ow, kh * kw * c), (n, oh, ow)

    def _int8_forward(self, images, training):
        if training:
            raise NotImplementedError(f"{type(self).__name__} {self.name!r} is quantized to int8, which gradsmith "
                                      "runs for inference only (Keras has no int8 convolution to train like)")
        patches, (n, oh, ow) = self._patches(images)
        y = ops.quantized_dense_forward(patches, self._int8_kernel(), self.kernel_scale, self.bias,
                                        self.activation, **_KERAS_ACTIVATION)
        return y.reshape(n, oh, ow, self.filters)

    def _compiled_config(self, input_shape, offset):
        if self.quantization_mode is not None:
            raise NoCompiledForm(f"{type(self).__name__} {self.name!r} is quantized ({self.quantization_mode}): "
                                 "it runs layer by layer, for inference only")
        return {"kind": "Conv",
                "numbers": {"filters": self.filters, "padding": _core.kinds.paddings[self.padding],
                            **_activation_numbers(self.activation)},
                "lists": {"kernel_size": list(self.kernel_size), "strides": list(self.strides),
                          "dilation_rate": list(self.dilation_rate)},
                "weights": self._kernel_bias_offsets(offset),
                "penalties": compiled_penalties(kernel=self.kernel_regularizer,
                                                bias=self.bias_regularizer if self.use_bias else None)}

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "data_format": "channels_last",
                "dilation_rate": self.dilation_rate, "groups": 1, "activation": self.activation,
                "use_bias": self.use_bias,
                "kernel_initializer": _initializer_config(self.kernel_initializer, "GlorotUniform"),
                "bias_initializer": _initializer_config(self.bias_initializer, "Zeros"),
                "kernel_regularizer": _regularizer_config(self.kernel_regularizer, self),
                "bias_regularizer": _regularizer_config(self.bias_regularizer, self),
                "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None,
                **self._quantization_entries()}


class Conv2D(_Conv):
    """2-D convolution over (batch, height, width, channels): ``y = activation(conv(x, kernel) + bias)``."""

    rank = 2


class Conv1D(_Conv):
    """1-D convolution over (batch, steps, channels); ``padding='causal'`` pads on the left only."""

    rank = 1


Convolution1D = Conv1D
Convolution2D = Conv2D

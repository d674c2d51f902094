"""Keras 3's int8 quantization (``layer.quantize("int8")``), the oracle for gradsmith's int8 layers.

Quantization is a choice of integers, so it is done here in float32 exactly as Keras does it (the rounding of
``x * scale`` decides each integer, and that product is a float32 one in Keras); everything after it is
float64:

    scale(v)  = 127 / (max|v| + 1e-7)                       per output column of a kernel, per row of inputs
    q(v)      = clip(round_half_even(v * scale(v)), -127, 127)
    y         = act(float64(q(x) @ q(W)) / (kernel_scale * x_scale) + bias)    (the int64 product is exact)
"""
import numpy as np

from .activations import activation_forward


def abs_max_quantize(x, axis):
    x = np.asarray(x, np.float32)
    scale = np.float32(127) / (np.max(np.abs(x), axis=axis, keepdims=True) + np.float32(1e-7))
    q = np.clip(np.round(x * scale.astype(np.float32)), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def quantized_dense_forward(x, kernel_q, kernel_scale, bias=None, activation="linear", **params):
    """x (..., in) float32, kernel_q (in, units) int8, kernel_scale (units,): Keras's int8 Dense, in float64."""
    lead = x.shape[:-1]
    x2 = np.asarray(x, np.float32).reshape(-1, x.shape[-1])
    xq, xs = abs_max_quantize(x2, axis=-1)
    acc = xq.astype(np.int64) @ kernel_q.astype(np.int64)
    y = acc.astype(np.float64) / (np.asarray(kernel_scale, np.float64)[None, :] * xs.astype(np.float64))
    if bias is not None:
        y = y + np.asarray(bias, np.float64)
    y = activation_forward(y, activation, **params)
    return y.reshape(lead + (kernel_q.shape[1],))


def quantized_embedding_forward(ids, table_q, scale):
    return table_q[ids].astype(np.float64) / np.asarray(scale, np.float64)[ids][..., None]


def quantized_conv2d_forward(x, kernel_q, kernel_scale, bias=None, strides=(1, 1), padding="valid",
                             dilation_rate=(1, 1), activation="linear", **params):
    """gradsmith's int8 Conv2D (an extension; Keras has none): each output pixel's patch (n, oh, ow, kh * kw * c,
    taps in the kernel's (ky, kx, c) order) through the int8 Dense above, kernel (kh, kw, c, f) as (kh*kw*c, f)."""
    from .conv import _geometry, _tap

    kh, kw, c, f = kernel_q.shape
    oh, ow, (top, bottom), (left, right) = _geometry(x.shape, (kh, kw), strides, dilation_rate, padding)
    xpad = np.pad(np.asarray(x, np.float32), ((0, 0), (top, bottom), (left, right), (0, 0)))
    patches = np.stack([_tap(xpad, ky, kx, oh, ow, strides, dilation_rate) for ky in range(kh) for kx in range(kw)],
                       axis=3).reshape(x.shape[0], oh, ow, kh * kw * c)
    return quantized_dense_forward(patches, kernel_q.reshape(-1, f), kernel_scale, bias, activation, **params)

"""Convolution and pooling references, NHWC (Keras: channels last, kernel (kh, kw, cin, cout)), in float64.

Written directly, tap by tap (a shifted, strided view of the zero-padded input per kernel tap, contracted over
channels with einsum), not through im2col, so the kernels' im2col / col2im is checked by different math:

    z[n, oy, ox, f] = sum_{ky, kx, c} xpad[n, oy*sh + ky*dh, ox*sw + kx*dw, c] * W[ky, kx, c, f] + b[f]

Padding (Keras / TensorFlow): 'valid' none; 'same' out = ceil(in / stride), total = max((out - 1) * stride +
(k - 1) * dilation + 1 - in, 0), top/left = total // 2, the rest at the bottom/right; 'causal' (1-D) all of
(k - 1) * dilation on the left.
"""
import numpy as np

from .activations import activation_backward, activation_forward


def _pads(size, k, stride, dilation, padding):
    span = (k - 1) * dilation + 1
    if padding == "valid":
        if size < span:
            raise ValueError("window larger than the input")
        return (size - span) // stride + 1, 0, 0
    if padding == "causal":
        return (size + span - 1 - span) // stride + 1, span - 1, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return out, total // 2, total - total // 2


def _geometry(x_shape, k, strides, dilation, padding):
    (oh, top, bottom), (ow, left, right) = (_pads(x_shape[1], k[0], strides[0], dilation[0], padding),
                                            _pads(x_shape[2], k[1], strides[1], dilation[1], padding))
    return oh, ow, (top, bottom), (left, right)


def _tap(xpad, ky, kx, oh, ow, strides, dilation):
    """The input pixels tap (ky, kx) meets at every output pixel: (n, oh, ow, c)."""
    y0, x0 = ky * dilation[0], kx * dilation[1]
    return xpad[:, y0:y0 + (oh - 1) * strides[0] + 1:strides[0], x0:x0 + (ow - 1) * strides[1] + 1:strides[1], :]


def conv2d_forward(x, kernel, bias=None, strides=(1, 1), padding="valid", dilation_rate=(1, 1),
                   activation="linear", **params):
    """Returns (y, z) with z = conv(x, kernel) + bias, y = act(z)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(kernel, np.float64)
    oh, ow, ph, pw = _geometry(x.shape, w.shape[:2], strides, dilation_rate, padding)
    xpad = np.pad(x, ((0, 0), ph, pw, (0, 0)))
    z = np.zeros((x.shape[0], oh, ow, w.shape[3]))
    for ky in range(w.shape[0]):
        for kx in range(w.shape[1]):
            z += np.einsum("nhwc,cf->nhwf", _tap(xpad, ky, kx, oh, ow, strides, dilation_rate), w[ky, kx])
    if bias is not None:
        z = z + np.asarray(bias, np.float64)
    return activation_forward(z, activation, **params), z


def conv2d_backward(dy, x, kernel, z, strides=(1, 1), padding="valid", dilation_rate=(1, 1), activation="linear",
                    **params):
    """Returns (dx, dkernel, dbias): the adjoint of each tap's contraction, summed over the taps."""
    x = np.asarray(x, np.float64)
    w = np.asarray(kernel, np.float64)
    dz = activation_backward(np.asarray(dy, np.float64), z, activation, **params)
    oh, ow, ph, pw = _geometry(x.shape, w.shape[:2], strides, dilation_rate, padding)
    xpad = np.pad(x, ((0, 0), ph, pw, (0, 0)))
    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(w)
    for ky in range(w.shape[0]):
        for kx in range(w.shape[1]):
            dw[ky, kx] = np.einsum("nhwc,nhwf->cf", _tap(xpad, ky, kx, oh, ow, strides, dilation_rate), dz)
            _tap(dxpad, ky, kx, oh, ow, strides, dilation_rate)[...] += np.einsum("nhwf,cf->nhwc", dz, w[ky, kx])
    dx = dxpad[:, ph[0]:ph[0] + x.shape[1], pw[0]:pw[0] + x.shape[2], :]
    return dx, dw, dz.sum(axis=(0, 1, 2))


def pool2d_forward(x, pool_size=(2, 2), strides=None, padding="valid", mode="max"):
    """Max or average over each window; pixels in the padding are left out of the window (max: -inf;
    average: divides by the pixels inside, as TensorFlow). Max: the first maximum, NaN wins.
    Returns (y, argmax) with argmax the input pixel (iy * w + ix) of each max (None for average)."""
    x = np.asarray(x, np.float64)
    strides = tuple(strides or pool_size)
    n, h, w, c = x.shape
    oh, top, _ = _pads(h, pool_size[0], strides[0], 1, padding)
    ow, left, _ = _pads(w, pool_size[1], strides[1], 1, padding)
    y = np.zeros((n, oh, ow, c))
    arg = np.zeros((n, oh, ow, c), np.int64)
    for oy in range(oh):
        y0, y1 = max(oy * strides[0] - top, 0), min(oy * strides[0] - top + pool_size[0], h)
        for ox in range(ow):
            x0, x1 = max(ox * strides[1] - left, 0), min(ox * strides[1] - left + pool_size[1], w)
            win = x[:, y0:y1, x0:x1, :].reshape(n, -1, c)
            pix = (np.arange(y0, y1)[:, None] * w + np.arange(x0, x1)[None, :]).reshape(-1)
            if mode == "average":
                y[:, oy, ox] = win.mean(axis=1)
                continue
            nan = np.isnan(win)
            first = np.where(nan.any(axis=1), nan.argmax(axis=1), np.argmax(np.where(nan, -np.inf, win), axis=1))
            y[:, oy, ox] = np.take_along_axis(win, first[:, None, :], axis=1)[:, 0]
            arg[:, oy, ox] = pix[first]
    return y, (arg if mode == "max" else None)


def pool2d_backward(dy, x_shape, argmax, pool_size=(2, 2), strides=None, padding="valid", mode="max"):
    """dx: each output's gradient sent to its max's pixel, or spread evenly over its window's pixels."""
    dy = np.asarray(dy, np.float64)
    strides = tuple(strides or pool_size)
    n, h, w, c = x_shape
    oh, top, _ = _pads(h, pool_size[0], strides[0], 1, padding)
    ow, left, _ = _pads(w, pool_size[1], strides[1], 1, padding)
    dx = np.zeros((n, h * w, c))
    rows, chans = np.arange(n)[:, None], np.arange(c)[None, :]
    for oy in range(oh):
        y0, y1 = max(oy * strides[0] - top, 0), min(oy * strides[0] - top + pool_size[0], h)
        for ox in range(ow):
            x0, x1 = max(ox * strides[1] - left, 0), min(ox * strides[1] - left + pool_size[1], w)
            if mode == "max":
                np.add.at(dx, (rows, argmax[:, oy, ox], chans), dy[:, oy, ox])
            else:
                d = dx.reshape(n, h, w, c)
                d[:, y0:y1, x0:x1, :] += dy[:, oy, ox][:, None, None, :] / ((y1 - y0) * (x1 - x0))
    return dx.reshape(n, h, w, c)

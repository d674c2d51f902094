"""gradsmith.cuda: is a GPU there, which one, and its memory.

A wheel built with a CUDA toolkit carries the CUDA kernels (cpp/cuda/) with
the runtime linked in statically, so it imports on a machine with no GPU and
no driver; ``is_available()`` is then False and ``unavailable_reason()`` says
why. A build without a toolkit has no CUDA kernels at all, and says so.

    import gradsmith
    if gradsmith.cuda.is_available():
        print(gradsmith.cuda.get_device_name())
        x = gradsmith.cuda.DeviceArray.from_numpy(np.ones((3, 4), np.float32))
        cupy.asarray(x)            # CuPy sees the same memory (__cuda_array_interface__)

Models train on the GPU with ``model.compile(..., device='cuda')``
(gradsmith.compiled_step: the whole step on the device, one fused optimizer
launch). The kernels are also there one by one: the GEMM
(``gradsmith.ops.matmul`` takes DeviceArrays or CuPy arrays and returns a
DeviceArray), dense forward and backward, activations, softmax, losses,
dropout (the CPU's mask for the same seed), the int8 Dense of ``model.quantize("int8")`` (a __dp4a twin of
the CPU's) and the fused optimizer update
(``_core.cuda_*``, exercised by tests/cuda). DeviceArray speaks both
``__cuda_array_interface__`` and DLPack (``__dlpack__``), so CuPy and PyTorch
see gradsmith's memory without a copy, and ``DeviceArray.view`` does the same
the other way.
"""
import numpy as np

from gradsmith import _core

_CLIP_KINDS = _core.kinds.clips

__all__ = ["is_available", "unavailable_reason", "is_built", "device_count", "get_device_name", "synchronize",
           "memory_allocated", "memory_cached", "empty_cache", "mem_get_info", "DeviceArray", "is_device_array", "as_device_array",
           "matmul"]


def is_built():
    """Whether this gradsmith was built with the CUDA backend."""
    return bool(_core.cuda_built)


def is_available():
    """Whether a CUDA device can be used now."""
    return bool(_core.cuda_available())


def unavailable_reason():
    """Why CUDA cannot be used ('' when it can)."""
    return "" if is_available() else _core.cuda_unavailable_reason()


def _require():
    if not is_available():
        raise RuntimeError(f"CUDA is not available: {unavailable_reason()}")


def device_count():
    """The number of CUDA devices (0 when CUDA is unavailable)."""
    return int(_core.cuda_device_count())


def get_device_name(device=0):
    """The name of a device, e.g. 'NVIDIA H100 80GB HBM3'."""
    _require()
    return _core.cuda_device_name(int(device))


def synchronize():
    """Wait for every kernel launched so far to finish."""
    _require()
    _core.cuda_synchronize()


def memory_allocated():
    """Bytes of device memory held by live DeviceArrays (0 without CUDA)."""
    return int(_core.cuda_memory_allocated()) if is_built() else 0


def memory_cached():
    """Bytes of device memory kept by the caching allocator for reuse."""
    return int(_core.cuda_memory_cached()) if is_built() else 0


def empty_cache():
    """Give the allocator's kept blocks back to the driver."""
    if is_built():
        _core.cuda_empty_cache()


def mem_get_info():
    """(free, total) bytes of the device's memory."""
    _require()
    return tuple(int(v) for v in _core.cuda_mem_get_info())


DeviceArray = getattr(_core, "DeviceArray", None)


def is_device_array(x):
    """Whether x lives in CUDA memory: a DeviceArray, or any object with ``__cuda_array_interface__``
    (CuPy, PyTorch CUDA tensors, Numba)."""
    return (DeviceArray is not None and isinstance(x, DeviceArray)) or hasattr(x, "__cuda_array_interface__")


def as_device_array(x, name="array"):
    """x as a DeviceArray: itself, or a view (no copy) of another library's float32 C-order device
    memory."""
    if DeviceArray is not None and isinstance(x, DeviceArray):
        return x
    if not is_built():
        raise RuntimeError(f"{name}: a CUDA array, but {unavailable_reason()}")
    return DeviceArray.view(x)


def matmul(a, b, transpose_a=False, transpose_b=False, alpha=1.0, beta=0.0, out=None):
    """gradsmith.ops.matmul on device arrays: the result is a DeviceArray (``out`` when given)."""
    _require()
    a, b = as_device_array(a, "a"), as_device_array(b, "b")
    if len(a.shape) != 2 or len(b.shape) != 2:
        raise ValueError(f"matmul: expected 2-D arrays, got shapes {a.shape} and {b.shape}")
    m = a.shape[1] if transpose_a else a.shape[0]
    n = b.shape[0] if transpose_b else b.shape[1]
    if out is None:
        if beta != 0.0:
            raise ValueError("matmul: beta != 0 reads C from out=, which is missing")
        out = DeviceArray([m, n])
    out = as_device_array(out, "out")
    _core.cuda_gemm(a, b, out, bool(transpose_a), bool(transpose_b), float(alpha), float(beta))
    return out


# --------------------------------------------------------------------------- the ops on device arrays
# gradsmith.ops sends a call here when an argument lives in CUDA memory; names and activation kinds are
# already checked there. Results are DeviceArrays (``out`` when given); nothing is copied to the host.
_SOFTMAX = 4  # ops._ACTIVATION_KINDS["softmax"]


def _output(out, shape, name="out"):
    if out is None:
        return DeviceArray(list(shape))
    out = as_device_array(out, name)
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(out.shape)}")
    return out


def _matrix(x, name):
    x = as_device_array(x, name)
    if len(x.shape) != 2:
        raise ValueError(f"{name}: on the GPU this takes a 2-D array, got shape {tuple(x.shape)}")
    return x


def activation_forward(x, kind, param, out=None):
    _require()
    x = _matrix(x, "x") if kind == _SOFTMAX else as_device_array(x, "x")
    out = _output(out, x.shape)
    if kind == _SOFTMAX:
        _core.cuda_softmax_forward(x, out)
    else:
        _core.cuda_activation_forward(x, out, kind, param)
    return out


def activation_backward(dy, x, kind, param, out=None):
    _require()
    x = _matrix(x, "x") if kind == _SOFTMAX else as_device_array(x, "x")
    dy = as_device_array(dy, "dy")
    out = _output(out, x.shape)
    if kind == _SOFTMAX:
        _core.cuda_softmax_backward(dy, x, out)
    else:
        _core.cuda_activation_backward(dy, x, out, kind, param)
    return out


def dense_forward(x, kernel, bias, kind, param, out=None, return_preactivation=False):
    _require()
    x, kernel = _matrix(x, "x"), _matrix(kernel, "kernel")
    bias = None if bias is None else as_device_array(bias, "bias")
    shape = (x.shape[0], kernel.shape[1])
    out = _output(out, shape)
    z = DeviceArray(list(shape)) if return_preactivation else None
    _core.cuda_dense_forward(x, kernel, bias, out, z, kind, param)
    return (out, z) if return_preactivation else out


def dense_backward(dy, x, kernel, preactivation, kind, param, use_bias=True, need_dx=True, dx_out=None,
                   dkernel_out=None, dbias_out=None):
    _require()
    dy, x, kernel = _matrix(dy, "dy"), _matrix(x, "x"), _matrix(kernel, "kernel")
    z = _matrix(preactivation, "preactivation")
    dx = _output(dx_out, x.shape, "dx_out") if need_dx else None
    dkernel = _output(dkernel_out, kernel.shape, "dkernel_out")
    dbias = _output(dbias_out, (kernel.shape[1],), "dbias_out") if use_bias else None
    _core.cuda_dense_backward(dy, x, kernel, z, kind, param, DeviceArray(list(dy.shape)), dx, dkernel, dbias)
    return dx, dkernel, dbias


def quantized_dense_forward(x, kernel, kernel_scale, bias, kind, param, out=None):
    """gradsmith.ops.quantized_dense_forward with x on the device (cpp/cuda/qgemm.cu, __dp4a): ``kernel`` a
    gradsmith.ops.QuantizedKernel, ``kernel_scale`` and ``bias`` host float32 arrays (copied up per call)."""
    _require()
    x = _matrix(x, "x")
    if x.shape[1] != kernel.shape[0]:
        raise ValueError(f"x: expected {kernel.shape[0]} features (the kernel's rows), got shape {tuple(x.shape)}")
    if tuple(kernel_scale.shape) != (kernel.shape[1],):
        raise ValueError(f"kernel_scale: expected shape {(kernel.shape[1],)}, got {kernel_scale.shape}")
    out = _output(out, (x.shape[0], kernel.shape[1]))
    _core.cuda_quantized_dense_forward(x, kernel.dp4a_words(), kernel_scale, bias, kind, param, out)
    return out


def dropout(x, rate, seed, offset, out=None):
    _require()
    x = as_device_array(x, "x")
    out = _output(out, x.shape)
    _core.cuda_dropout(x, out, rate, seed, offset)
    return out


def loss_and_grad(kind, y_true, y_pred, sample_weight, from_logits, label_smoothing, delta, sparse, grad_out=None):
    """Sparse labels stay on the host (int64); everything else on the device."""
    _require()
    pred = _matrix(y_pred, "y_pred")
    grad = _output(grad_out, pred.shape, "grad_out")
    weights = None if sample_weight is None else as_device_array(sample_weight, "sample_weight")
    if sparse:
        labels = y_true.numpy() if is_device_array(y_true) and hasattr(y_true, "numpy") else np.asarray(y_true)
        labels = np.ascontiguousarray(labels.reshape(-1), dtype=np.int64)
        value = _core.cuda_loss(kind, from_logits, label_smoothing, delta, None, labels, pred, weights, grad)
    else:
        value = _core.cuda_loss(kind, from_logits, label_smoothing, delta, _matrix(y_true, "y_true"), None, pred,
                                weights, grad)
    return float(value), grad


def sum_rows(x, out=None):
    _require()
    x = _matrix(x, "x")
    out = _output(out, (x.shape[1],))
    _core.cuda_col_sums(x, out)
    return out


def optimizer_step(kind, params, grads, states, lr, weight_decay, config, nesterov, clip_kind, clip):
    """The fused update on device buffers, one launch per (param, grad, state...) set, in place; ``config``
    is the optimizer's Keras arguments by name (gradsmith.ops._step). Norm clipping first sums each
    gradient's squares on the device (fixed order, in double) and brings them back: clipnorm scales each
    gradient by c / max(||g||, c), global_clipnorm all of them by c / max(||(g_1, g_2, ...)||, c), with the
    CPU kernel's formula (_core.clip_norm_scale, global_clip_norm_scale)."""
    _require()
    plist, glist = list(params), list(grads)
    slists = [None if s is None else list(s) for s in states]
    if len(glist) != len(plist) or any(s is not None and len(s) != len(plist) for s in slists):
        raise ValueError("optimizer step: give one gradient and one state buffer per parameter")
    pairs = [(as_device_array(p, f"params[{i}]"), as_device_array(g, f"grads[{i}]"))
             for i, (p, g) in enumerate(zip(plist, glist))]
    scales = [1.0] * len(pairs)
    if clip_kind in (_CLIP_KINDS["clipnorm"], _CLIP_KINDS["global_clipnorm"]):
        squares = [float(_core.cuda_sum_squares(g)) for _, g in pairs]
        if clip_kind == _CLIP_KINDS["clipnorm"]:
            scales = [_core.clip_norm_scale(sq, clip) for sq in squares]
        else:
            scales = [_core.global_clip_norm_scale(sum(squares), clip)] * len(pairs)
    clip_value = clip if clip_kind == _CLIP_KINDS["clipvalue"] else 0.0
    for i, (p, g) in enumerate(pairs):
        s = [None if sl is None else as_device_array(sl[i], "state") for sl in slists]
        _core.cuda_optimizer_step(kind, p, g, s[0], s[1], s[2], lr, weight_decay, nesterov, clip_value, scales[i],
                                  **config)

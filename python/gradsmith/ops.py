"""gradsmith.ops: the compiled kernels, called with NumPy arrays.

Every function takes array-likes, converts them to float32 C-contiguous arrays
where NumPy would (bool, int and float dtypes; lists), and rejects the rest
with a ``TypeError`` naming the argument. Shapes that do not fit raise
``ValueError`` naming both shapes. ``out=`` buffers must be float32,
C-contiguous, writeable and of the result's exact shape. NaN and Inf flow
through the arithmetic as they would in NumPy.

Kernels run in C++ with the GIL released, on the thread pool sized by
``gradsmith.set_num_threads``, on the SIMD path shown by
``gradsmith.cpu_info()``. Every reduction (sums, norms, bias gradients, loss
values) adds in a fixed order, so results are identical for any thread count.
"""

import contextlib
import contextvars
import numbers

import numpy as np

from gradsmith import _core, cuda

__all__ = [
    "matmul",
    "activation_forward",
    "activation_backward",
    "dense_forward",
    "dense_backward",
    "QuantizedKernel",
    "quantized_matmul",
    "quantized_dense_forward",
    "loss_and_grad",
    "sgd_step",
    "adam_step",
    "adamw_step",
    "rmsprop_step",
    "adagrad_step",
    "batch_norm_forward",
    "batch_norm_backward",
    "conv2d_forward",
    "conv2d_backward",
    "rnn_forward",
    "rnn_backward",
    "pool2d_forward",
    "pool2d_backward",
    "embedding_ids",
    "embedding_forward",
    "embedding_backward",
    "adamax_step",
    "lion_step",
    "global_norm",
    "dropout_forward",
    "dropout_backward",
    "dropout_mask",
    "philox4x32",
    "sum",
    "sum_squares",
    "sum_rows",
    "count_correct",
    "binary_confusion",
    "ACTIVATIONS",
    "LOSSES",
]

# --------------------------------------------------------------------------- #
# Conversion and checks: the one place NumPy inputs are turned into kernel inputs.
# --------------------------------------------------------------------------- #
_CONVERTIBLE_KINDS = "biuf"  # bool, signed, unsigned, float: NumPy casts these to float32
_F32 = np.dtype(np.float32)


def _on_device(*arrays):
    """Whether an argument lives in CUDA memory (a gradsmith.cuda.DeviceArray, a CuPy array, ...):
    then the call runs on the GPU (gradsmith.cuda) and its result stays there."""
    return any(a is not None and hasattr(a, "__cuda_array_interface__") for a in arrays)


def _as_f32(x, name):
    """x as a float32 C-contiguous array, or TypeError naming ``name``."""
    if type(x) is np.ndarray and x.dtype == _F32 and x.flags.c_contiguous:
        return x  # the common case, kept cheap: small kernels take microseconds
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError) as e:
            raise TypeError(f"{name}: cannot be read as a numeric array ({e})") from None
    if arr.dtype.kind not in _CONVERTIBLE_KINDS:
        raise TypeError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    return np.asarray(arr, dtype=np.float32, order="C")  # keeps 0-d arrays 0-d


def _as_2d(x, name):
    arr = _as_f32(x, name)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array, got shape {arr.shape}")
    return arr


def _check_out(out, shape, name="out"):
    """Validate a caller's output buffer, or allocate one."""
    if out is None:
        return np.empty(shape, dtype=np.float32)
    if not isinstance(out, np.ndarray):
        raise ValueError(f"{name}: expected a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != np.float32:
        raise ValueError(f"{name}: expected dtype float32, got {out.dtype}")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name}: must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{name}: is read-only")
    return out


def _same_memory(a, b):
    """True when a and b are the very same C-contiguous elements (an exact in-place call)."""
    return (a.shape == b.shape and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.flags.c_contiguous and b.flags.c_contiguous)


def _unaliased(arr, out, elementwise=False):
    """Input ``arr``, or a copy of it if it overlaps the caller's ``out``.

    The kernels read inputs while writing ``out``; an overlap would let them
    read what they already wrote. An element-wise kernel may run exactly in
    place (``out`` the same elements as ``arr``): each element is read before
    it is written.
    """
    if out is None or arr is None or not np.may_share_memory(arr, out):
        return arr
    if elementwise and _same_memory(arr, out):
        return arr
    return arr.copy() if np.shares_memory(arr, out) else arr


def _float(x, name):
    if type(x) is float:  # the common case, without the ABC checks below (a few microseconds a call)
        return x
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(x).__name__}")
    return float(x)


def _inplace(x, name):
    """An array updated in place: must already be float32, C-contiguous and writeable."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a float32 numpy.ndarray, got {type(x).__name__}")
    if x.dtype != np.float32:
        raise TypeError(f"{name}: expected dtype float32 (updated in place), got {x.dtype}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{name}: must be C-contiguous (updated in place)")
    if not x.flags.writeable:
        raise ValueError(f"{name}: is read-only")
    return x


# --------------------------------------------------------------------------- #
# GEMM
# --------------------------------------------------------------------------- #
def matmul(a, b, transpose_a=False, transpose_b=False, alpha=1.0, beta=0.0, out=None):
    """``C = alpha * op(a) @ op(b) + beta * C`` in float32.

    ``op(a)`` is ``a.T`` when ``transpose_a`` (likewise ``b``), shapes (M, K)
    and (K, N). ``beta != 0`` reads C from ``out``, which is then required;
    ``beta == 0`` never reads ``out`` (NaN there is ignored, as in BLAS).
    Returns ``out`` (or a new (M, N) array).
    """
    # The common call (float32 C-contiguous arrays, out given) goes straight to the kernel: a small
    # product takes about a microsecond, so the checks are made in C++; anything else is converted,
    # copied or explained below.
    if (out is not None and type(transpose_a) is bool and type(transpose_b) is bool and type(alpha) is float
            and type(beta) is float and _core.gemm_if_plain(a, b, out, transpose_a, transpose_b, alpha, beta)):
        return out
    if _on_device(a, b, out):
        return cuda.matmul(a, b, transpose_a, transpose_b, alpha, beta, out)  # on the GPU, result there too
    a = _as_2d(a, "a")
    b = _as_2d(b, "b")
    alpha = _float(alpha, "alpha")
    beta = _float(beta, "beta")
    opa = a.shape[::-1] if transpose_a else a.shape
    opb = b.shape[::-1] if transpose_b else b.shape
    if opa[1] != opb[0]:
        raise ValueError(f"matmul: op(a) has shape {opa} and op(b) has shape {opb}: inner dimensions differ")
    if beta != 0.0 and out is None:
        raise ValueError("matmul: beta != 0 reads C from out=, which is missing")
    if out is not None:
        out = _check_out(out, (opa[0], opb[1]))
        a, b = _unaliased(a, out), _unaliased(b, out)
    else:
        out = np.empty((opa[0], opb[1]), dtype=np.float32)
    _core.gemm(a, b, out, bool(transpose_a), bool(transpose_b), alpha, beta)
    return out


# --------------------------------------------------------------------------- #
# Activations
# --------------------------------------------------------------------------- #
# The kind numbers come from the C++ enums (_core.kinds): name -> int.
_ACTIVATION_KINDS = _core.kinds.activations
ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "selu", "gelu", "silu",
               "swish", "softplus", "softsign", "hard_sigmoid", "exponential")


def _activation(activation, negative_slope, alpha, approximate):
    """(kind, param) for the kernels from a Keras activation name and its parameters."""
    if activation is None:
        activation = "linear"
    if not isinstance(activation, str):
        raise TypeError(f"activation: expected a name such as 'relu', got {type(activation).__name__}")
    name = activation.lower()
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: unknown activation {activation!r}; expected one of {', '.join(ACTIVATIONS)}")
    if name == "swish":
        name = "silu"
    if name == "gelu":
        name = "gelu_tanh" if approximate else "gelu_erf"
    param = 0.0
    if name == "leaky_relu":
        param = _float(negative_slope, "negative_slope")
    elif name == "elu":
        param = _float(alpha, "alpha")
    return _ACTIVATION_KINDS[name], param


def activation_forward(x, activation, *, negative_slope=0.2, alpha=1.0, approximate=True, out=None):
    """``y = f(x)`` element-wise (softmax: row-wise over the last axis, stable).

    ``activation`` is a Keras name: linear, relu, sigmoid, tanh, softmax,
    leaky_relu (``negative_slope``, default 0.2), elu (``alpha``, default 1),
    selu, gelu (``approximate=True``: tanh form, as Keras; False: exact erf
    form), silu / swish, softplus, softsign, hard_sigmoid (Keras 3:
    ``relu6(x + 3) / 6``), exponential.
    """
    kind, param = _activation(activation, negative_slope, alpha, approximate)
    if _on_device(x, out):
        return cuda.activation_forward(x, kind, param, out)
    x = _as_f32(x, "x")
    out = _check_out(out, x.shape)
    x = _unaliased(x, out, elementwise=kind != _ACTIVATION_KINDS["softmax"])
    _core.activation_forward(x, out, kind, param)
    return out


def activation_backward(dy, x, activation, *, negative_slope=0.2, alpha=1.0, approximate=True, out=None):
    """``dx = dy * f'(x)``, where ``x`` is the forward's input.

    For softmax, ``dx = y * (dy - sum(dy * y))`` row-wise with ``y = softmax(x)``.
    """
    kind, param = _activation(activation, negative_slope, alpha, approximate)
    if _on_device(dy, x, out):
        return cuda.activation_backward(dy, x, kind, param, out)
    x = _as_f32(x, "x")
    dy = _as_f32(dy, "dy")
    if dy.shape != x.shape:
        raise ValueError(f"activation_backward: dy has shape {dy.shape} but x has shape {x.shape}")
    out = _check_out(out, x.shape)
    elementwise = kind != _ACTIVATION_KINDS["softmax"]
    x, dy = _unaliased(x, out, elementwise), _unaliased(dy, out, elementwise)
    _core.activation_backward(dy, x, out, kind, param)
    return out


# --------------------------------------------------------------------------- #
# Dense layer
# --------------------------------------------------------------------------- #
def _dense_shapes(x, kernel, bias):
    if x.shape[1] != kernel.shape[0]:
        raise ValueError(f"dense: x has shape {x.shape} but kernel has shape {kernel.shape} "
                         f"(expected kernel ({x.shape[1]}, units))")
    if bias is not None and bias.shape != (kernel.shape[1],):
        raise ValueError(f"dense: bias has shape {bias.shape} but kernel has shape {kernel.shape} "
                         f"(expected bias ({kernel.shape[1]},))")


def dense_forward(x, kernel, bias=None, activation="linear", *, negative_slope=0.2, alpha=1.0, approximate=True,
                  out=None, return_preactivation=False):
    """``z = x @ kernel + bias``; ``y = f(z)``, bias and activation applied in the GEMM's epilogue.

    ``x`` (batch, in), ``kernel`` (in, units) as in Keras, ``bias`` (units,) or
    None. Returns ``y``, or ``(y, z)`` when ``return_preactivation`` (what
    ``dense_backward`` needs).
    """
    kind, param = _activation(activation, negative_slope, alpha, approximate)
    if _on_device(x, kernel, bias, out):
        return cuda.dense_forward(x, kernel, bias, kind, param, out, return_preactivation)
    x = _as_2d(x, "x")
    kernel = _as_2d(kernel, "kernel")
    bias = None if bias is None else _as_f32(bias, "bias")
    _dense_shapes(x, kernel, bias)
    shape = (x.shape[0], kernel.shape[1])
    out = _check_out(out, shape)
    x, kernel = _unaliased(x, out), _unaliased(kernel, out)
    bias = None if bias is None else _unaliased(bias, out)
    z = np.empty(shape, dtype=np.float32) if return_preactivation else None
    _core.dense_forward(x, kernel, bias, out, z, kind, param)
    return (out, z) if return_preactivation else out


def dense_backward(dy, x, kernel, preactivation, activation="linear", *, use_bias=True, need_dx=True,
                   negative_slope=0.2, alpha=1.0, approximate=True, dx_out=None, dkernel_out=None, dbias_out=None):
    """Gradients of the dense layer from ``dy = dL/dy`` and what forward saved.

    ``dz = dy * f'(z)`` (softmax: the row-wise rule), in one pass that also
    sums ``dbias = sum_rows(dz)``; ``dkernel = x.T @ dz``; ``dx = dz @ kernel.T``.
    Returns ``(dx, dkernel, dbias)``; ``dx`` is None when not ``need_dx``,
    ``dbias`` None when not ``use_bias``. ``dx_out``, ``dkernel_out`` and
    ``dbias_out`` are optional output buffers (a model passes views of its
    flat gradient buffer); they must not overlap the inputs.
    """
    kind, param = _activation(activation, negative_slope, alpha, approximate)
    if _on_device(dy, x, kernel, preactivation, dx_out, dkernel_out, dbias_out):
        return cuda.dense_backward(dy, x, kernel, preactivation, kind, param, use_bias, need_dx, dx_out,
                                      dkernel_out, dbias_out)
    x = _as_2d(x, "x")
    kernel = _as_2d(kernel, "kernel")
    _dense_shapes(x, kernel, None)
    shape = (x.shape[0], kernel.shape[1])
    dy = _as_2d(dy, "dy")
    z = _as_2d(preactivation, "preactivation")
    for name, arr in (("dy", dy), ("preactivation", z)):
        if arr.shape != shape:
            raise ValueError(f"dense_backward: {name} has shape {arr.shape} but x @ kernel has shape {shape}")
    dz = np.empty(shape, dtype=np.float32)
    dx = _check_out(dx_out, x.shape, "dx_out") if need_dx else None
    dkernel = _check_out(dkernel_out, kernel.shape, "dkernel_out")
    dbias = _check_out(dbias_out, (kernel.shape[1],), "dbias_out") if use_bias else None
    outs = [o for o in (dx, dkernel, dbias) if o is not None]
    if any(np.may_share_memory(o, i) for o in outs for i in (dy, x, kernel, z)) or \
            any(np.may_share_memory(a, b) for k, a in enumerate(outs) for b in outs[k + 1:]):
        raise ValueError("dense_backward: output buffers must not overlap the inputs or each other")
    _core.dense_backward(dy, x, kernel, z, kind, param, dz, dx, dkernel, dbias)
    return dx, dkernel, dbias


# --------------------------------------------------------------------------- #
# Losses
# --------------------------------------------------------------------------- #
_LOSS_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error", "msle": "mean_squared_logarithmic_error",
                 "mape": "mean_absolute_percentage_error", "kld": "kl_divergence"}
# Keras's names (_core.kinds.losses) and its short aliases -> the kernel's loss kind.
_LOSS_KINDS = {**_core.kinds.losses, **{alias: _core.kinds.losses[name] for alias, name in _LOSS_ALIASES.items()}}
LOSSES = tuple(_LOSS_KINDS)
_SPARSE = _LOSS_KINDS["sparse_categorical_crossentropy"]
_HINGES = (_LOSS_KINDS["hinge"], _LOSS_KINDS["squared_hinge"])


# --------------------------------------------------------------------------- int8 (cpp/cpu/qgemm.cpp)
def _int8_2d(a, name):
    arr = np.asarray(a)
    if arr.dtype != np.int8:
        raise TypeError(f"{name}: expected an int8 array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


class QuantizedKernel:
    """An int8 matrix B (K, N), entries in [-127, 127], packed for the int8 GEMM path in use
    (``_core.qgemm_isa()``); packed again when the path changes (``gradsmith.set_isa``)."""

    def __init__(self, b):
        b = _int8_2d(b, "b")
        self.shape = b.shape
        self._b = b
        self._isa = None
        self._pack()

    def _pack(self):
        self._packed, self._colsum, self._isa = _core.qgemm_pack(self._b)

    def packing(self):
        """(packed bytes, column sums, path name) for the path in use."""
        if self._isa != _core.qgemm_isa():
            self._pack()
        return self._packed, self._colsum, self._isa

    def dp4a_words(self):
        """B as the CUDA twin takes it: int32 words (ceil(K / 4), N), bytes 4g..4g+3 of column j in word (g, j)
        (little-endian, so byte t is row 4g + t), rows past K zero."""
        if getattr(self, "_words", None) is None:
            k, n = self.shape
            kg = -(-k // 4)
            padded = np.zeros((4 * kg, n), np.int8)
            padded[:k] = self._b
            self._words = np.ascontiguousarray(padded.reshape(kg, 4, n).transpose(0, 2, 1)).view("<i4")[..., 0]
        return self._words


def quantized_matmul(a, b):
    """``a @ b`` of int8 matrices as exact int32 (``a`` (M, K), ``b`` (K, N) or a QuantizedKernel; entries in
    [-127, 127]) on the int8 GEMM (AVX-512 VNNI, AVX2 or scalar, as the CPU path in use)."""
    a = _int8_2d(a, "a")
    qb = b if isinstance(b, QuantizedKernel) else QuantizedKernel(b)
    if a.shape[1] != qb.shape[0]:
        raise ValueError(f"quantized_matmul: inner dimensions differ: a is {a.shape} and b is {qb.shape}")
    packed, colsum, isa = qb.packing()
    return _core.qgemm_s32(a, packed, colsum, isa, qb.shape[1])


def quantized_dense_forward(x, kernel, kernel_scale, bias=None, activation="linear", *, negative_slope=0.2,
                            alpha=1.0, approximate=True, out=None):
    """Keras's int8 Dense: ``y = f(Q(x) @ kernel / (kernel_scale * x_scale) + bias)``.

    ``x`` (batch, in) float32 is quantized per row on the fly as Keras's AbsMaxQuantizer(axis=-1) does
    (``x_scale = 127 / (max|x| + 1e-7)``, round half to even, clip to [-127, 127]); ``kernel`` is a
    QuantizedKernel (or int8 (in, units)), ``kernel_scale`` (units,) float32 (Keras's: 127 / max|column|).
    Product, dequantization, bias and activation run in one pass over y (cpp/cpu/qgemm.cpp).
    """
    kind, param = _activation(activation, negative_slope, alpha, approximate)
    if _on_device(x, out):
        qk = kernel if isinstance(kernel, QuantizedKernel) else QuantizedKernel(kernel)
        return cuda.quantized_dense_forward(x, qk, _as_f32(kernel_scale, "kernel_scale"),
                                            None if bias is None else _as_f32(bias, "bias"), kind, param, out)
    x = _as_2d(x, "x")
    qk = kernel if isinstance(kernel, QuantizedKernel) else QuantizedKernel(kernel)
    if x.shape[1] != qk.shape[0]:
        raise ValueError(f"x: expected {qk.shape[0]} features (the kernel's rows), got shape {x.shape}")
    scale = _as_f32(kernel_scale, "kernel_scale")
    if scale.shape != (qk.shape[1],):
        raise ValueError(f"kernel_scale: expected shape {(qk.shape[1],)}, got {scale.shape}")
    bias = None if bias is None else _as_f32(bias, "bias")
    out = _check_out(out, (x.shape[0], qk.shape[1]))
    x = _unaliased(x, out)
    packed, colsum, isa = qk.packing()
    _core.qdense_forward(x, packed, colsum, isa, scale, bias, kind, param, out)
    return out


def hinge_labels(y_true):
    """Keras's hinge targets: labels that are all 0 or 1 become -1 / 1 (2 t - 1); others are kept."""
    t = _as_f32(y_true, "y_true")
    return (t * np.float32(2.0) - np.float32(1.0)) if np.all((t == 0) | (t == 1)) else t


def _sparse_labels(y_true, rows, classes):
    """Integer labels (N,) or (N, 1) as int64; float labels must be integral; range checked."""
    try:
        labels = np.asarray(y_true)
    except (ValueError, TypeError) as e:
        raise TypeError(f"y_true: cannot be read as an array of labels ({e})") from None
    if labels.dtype.kind not in "biuf":
        raise TypeError(f"y_true: expected integer class labels, got dtype {labels.dtype}")
    if labels.shape not in ((rows,), (rows, 1)):
        raise ValueError(f"y_true: expected labels of shape ({rows},) or ({rows}, 1) for y_pred of "
                         f"{rows} rows, got shape {labels.shape}")
    labels = labels.reshape(rows)
    if labels.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(labels) | (labels != np.floor(labels)))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"y_true: label {labels[i]} at index {i} is not an integer class index")
    bad = np.flatnonzero((labels < 0) | (labels >= classes))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"y_true: label {labels[i]} at index {i} is outside [0, {classes})")
    return np.ascontiguousarray(labels, dtype=np.int64)


def loss_and_grad(loss, y_true, y_pred, *, sample_weight=None, from_logits=False, label_smoothing=0.0, delta=1.0,
                  grad_out=None):
    """Loss value and its gradient with respect to ``y_pred``, in one kernel.

    ``loss``: mean_squared_error (mse), mean_absolute_error (mae), huber
    (``delta``), binary_crossentropy, categorical_crossentropy,
    sparse_categorical_crossentropy, hinge, squared_hinge (0/1 targets become
    -1/1 as in Keras), log_cosh, poisson, mean_squared_logarithmic_error (msle),
    mean_absolute_percentage_error (mape), kl_divergence (kld), categorical_hinge,
    cosine_similarity (``-<t / |t|, p / |p|>``, norms at least 1e-7); the
    cross-entropies take ``from_logits`` and ``label_smoothing`` as in Keras. Probabilities are clipped to
    [1e-7, 1 - 1e-7] as Keras does; the logits forms use log-sum-exp and give
    ``softmax - onehot`` (``sigmoid - y`` for binary).

    Reduction as Keras 3's 'sum_over_batch_size': ``value = sum_i w_i L_i / N``
    over the N rows, ``L_i`` the mean over the row's entries (sum for the
    categorical losses, kl_divergence, categorical_hinge and cosine_similarity), ``w_i`` from ``sample_weight`` (N,) or 1.
    ``y_pred`` is (N, C) or (N,) (seen as (N, 1)); ``y_true`` has its shape,
    or for the sparse loss integer labels (N,) or (N, 1) in [0, C).
    Returns ``(value, grad)`` with ``grad`` shaped like ``y_pred``.
    """
    if not isinstance(loss, str) or loss.lower() not in _LOSS_KINDS:
        raise ValueError(f"loss: unknown loss {loss!r}; expected one of {', '.join(LOSSES)}")
    kind = _LOSS_KINDS[loss.lower()]
    if _on_device(y_pred, y_true, sample_weight, grad_out):
        if kind in _HINGES:
            raise NotImplementedError("hinge losses on device arrays: their 0/1 -> -1/1 label check runs on the "
                                      "host; pass NumPy arrays")
        return cuda.loss_and_grad(kind, y_true, y_pred, sample_weight, bool(from_logits),
                                     _float(label_smoothing, "label_smoothing"), _float(delta, "delta"),
                                     kind == _SPARSE, grad_out)
    pred = _as_f32(y_pred, "y_pred")
    if pred.ndim not in (1, 2):
        raise ValueError(f"y_pred: expected shape (N,) or (N, C), got {pred.shape}")
    pred2 = pred if pred.ndim == 2 else pred.reshape(-1, 1)
    rows, cols = pred2.shape
    label_smoothing = _float(label_smoothing, "label_smoothing")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    delta = _float(delta, "delta")
    true2 = labels = None
    if kind == _SPARSE:
        if cols == 0 and rows > 0:
            raise ValueError(f"y_pred: has no classes (shape {pred.shape})")
        labels = _sparse_labels(y_true, rows, cols)
    else:
        true = _as_f32(y_true, "y_true")
        if true.shape != pred.shape and not (cols == 1 and true.shape in ((rows,), (rows, 1))):
            raise ValueError(f"y_true has shape {true.shape} but y_pred has shape {pred.shape}")
        true2 = true.reshape(rows, cols)
        if kind in _HINGES:
            true2 = hinge_labels(true2)
    weights = None
    if sample_weight is not None:
        weights = _as_f32(sample_weight, "sample_weight")
        if weights.shape not in ((rows,), (rows, 1)):
            raise ValueError(f"sample_weight has shape {weights.shape} but y_pred has {rows} rows")
        weights = weights.reshape(rows)
    grad = _check_out(grad_out, pred.shape, "grad_out")
    if grad_out is not None:  # the kernel reads the inputs while it writes grad
        pred2, true2, weights = (_unaliased(a, grad_out) for a in (pred2, true2, weights))
    value = _core.loss(kind, bool(from_logits), label_smoothing, delta, true2, labels, pred2, weights,
                       grad.reshape(rows, cols))
    return float(value), grad


# --------------------------------------------------------------------------- #
# Batch normalization
# --------------------------------------------------------------------------- #
def _column(v, name, cols):
    if v is None:
        return None
    v = _as_f32(v, name)
    if v.shape != (cols,):
        raise ValueError(f"{name}: expected shape ({cols},), got {v.shape}")
    return v


def _epsilon(epsilon):
    epsilon = _float(epsilon, "epsilon")
    if not epsilon > 0.0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    return epsilon


# --------------------------------------------------------------------------- #
# Convolution and pooling, NHWC (channels last, as Keras).
# --------------------------------------------------------------------------- #
def _pair(value, name):
    """An int or a pair of ints >= 1 as a tuple of two Python ints."""
    items = (value, value) if isinstance(value, (numbers.Integral, np.integer)) else value
    try:
        items = tuple(items)
    except TypeError:
        raise TypeError(f"{name}: expected an integer or a pair of integers, got {value!r}") from None
    if len(items) != 2 or not all(isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool)
                                  for v in items):
        raise TypeError(f"{name}: expected an integer or a pair of integers, got {value!r}")
    if not all(1 <= v <= 2 ** 20 for v in items):
        raise ValueError(f"{name}: values must be in [1, 2^20], got {value!r}")
    return int(items[0]), int(items[1])


def _padding(padding, allowed=("valid", "same", "causal")):
    if not isinstance(padding, str) or padding.lower() not in allowed:
        raise ValueError(f"padding must be one of {', '.join(map(repr, allowed))}, got {padding!r}")
    return _core.kinds.paddings[padding.lower()]


def _as_4d(x, name):
    x = _as_f32(x, name)
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D (batch, height, width, channels) array, got shape {x.shape}")
    return x


def conv2d_forward(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, activation="linear", *,
                   negative_slope=0.2, alpha=1.0, approximate=True, return_preactivation=False):
    """``z = conv(x, kernel) + bias``; ``y = f(z)`` (Keras's Conv2D, channels last).

    ``x`` (batch, height, width, in), ``kernel`` (kh, kw, in, filters), ``bias`` (filters,) or None;
    ``padding`` 'valid', 'same' or (height 1) 'causal'. Returns ``y``, or ``(y, z)`` when
    ``return_preactivation`` (what ``conv2d_backward`` needs).
    """
    kind, param = _activation(activation, negative_slope, alpha, approximate)
    x, kernel = _as_4d(x, "x"), _as_4d(kernel, "kernel")
    bias = None if bias is None else _as_f32(bias, "bias")
    y, z = _core.conv_forward(x, kernel, bias, kind, param, _pair(strides, "strides"), _pair(dilation_rate,
                              "dilation_rate"), _padding(padding), bool(return_preactivation))
    return (y, z) if return_preactivation else y


def conv2d_backward(dy, x, kernel, preactivation, strides=1, padding="valid", dilation_rate=1, activation="linear",
                    *, use_bias=True, need_dx=True, negative_slope=0.2, alpha=1.0, approximate=True,
                    dkernel_out=None, dbias_out=None):
    """Gradients of ``conv2d_forward``: ``(dx or None, dkernel, dbias or None)``.

    ``dz = dy * f'(z)``; ``dbias = sum dz``; ``dkernel = sum_n col(x_n)^T dz_n``; ``dx = col2im(dz kernel^T)``.
    ``dkernel_out`` / ``dbias_out`` are optional output buffers.
    """
    kind, param = _activation(activation, negative_slope, alpha, approximate)
    x, kernel, dy = _as_4d(x, "x"), _as_4d(kernel, "kernel"), _as_4d(dy, "dy")
    z = None if preactivation is None else _as_4d(preactivation, "preactivation")
    dkernel = _check_out(dkernel_out, kernel.shape)
    dbias = _check_out(dbias_out, (kernel.shape[3],)) if use_bias else None
    dx = _core.conv_backward(dy, x, kernel, z, kind, param, _pair(strides, "strides"),
                             _pair(dilation_rate, "dilation_rate"), _padding(padding), bool(need_dx), dkernel, dbias)
    return dx, dkernel, dbias


def _pool_args(pool_size, strides, padding, global_pool):
    if global_pool:
        return (1, 1), (1, 1), 0
    pool = _pair(pool_size, "pool_size")
    return pool, pool if strides is None else _pair(strides, "strides"), _padding(padding, ("valid", "same"))


def embedding_ids(ids, input_dim):
    """Token ids as int64, checked: int arrays as given, float arrays holding whole numbers (Keras casts
    floats to integers; gradsmith refuses a fraction rather than truncate it). An id outside
    ``[0, input_dim)`` raises ValueError naming the id, where it is and the range."""
    try:
        a = np.asarray(ids)
    except (ValueError, TypeError) as e:
        raise TypeError(f"ids: cannot be read as an array of ids ({e})") from None
    if a.dtype.kind not in "biuf":
        raise TypeError(f"ids: expected integer token ids, got dtype {a.dtype}")
    flat = a.reshape(-1)
    if a.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(flat) | (flat != np.floor(flat)))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"ids: id {flat[i]} at {np.unravel_index(i, a.shape)} is not a whole number; ids "
                             f"must be whole numbers in [0, {input_dim})")
    bad = np.flatnonzero((flat < 0) | (flat >= input_dim))
    if bad.size:
        i = int(bad[0])
        v = flat[i]
        v = int(v) if a.dtype.kind != "f" else v
        raise ValueError(f"ids: id {v} at {tuple(int(k) for k in np.unravel_index(i, a.shape))} is outside the "
                         f"vocabulary [0, {input_dim})")
    return np.ascontiguousarray(a, dtype=np.int64)


def embedding_forward(ids, table):
    """``table[ids]``: ids of any shape (int, or floats holding whole numbers) in ``[0, vocab)``, table float32
    (vocab, dim); returns ids.shape + (dim,). A gather (cpp/cpu/embedding.cpp)."""
    t = _as_f32(table, "table")
    if t.ndim != 2:
        raise ValueError(f"table: expected shape (vocab, dim), got {t.shape}")
    i = embedding_ids(ids, t.shape[0])
    return _core.embedding_forward(i.reshape(-1), t).reshape(i.shape + (t.shape[1],))


def embedding_backward(ids, dy, input_dim, dtable_out=None):
    """The table's gradient: ``dtable[v] = sum of dy[k] over ids[k] == v`` (rows no id names are 0), shape
    (input_dim, dim). dy is ids.shape + (dim,). Each row sums its ids in increasing position (a deterministic
    scatter-add: the same bits for any thread count)."""
    i = embedding_ids(ids, input_dim).reshape(-1)
    d = _as_f32(dy, "dy")
    if d.ndim != np.ndim(ids) + 1 or d.shape[:-1] != np.shape(ids):
        raise ValueError(f"dy: expected shape {tuple(np.shape(ids))} + (dim,), got {d.shape}")
    width = d.shape[-1]
    out = _check_out(dtable_out, (int(input_dim), width), "dtable_out")
    _core.embedding_backward(i, np.ascontiguousarray(d.reshape(i.size, width)), out)
    return out


def pool2d_forward(x, pool_size=2, strides=None, padding="valid", mode="max", *, global_pool=False,
                   return_argmax=False):
    """Max or average pooling over windows of each channel (Keras's MaxPooling2D / AveragePooling2D; with
    ``global_pool`` one window the size of the image). ``strides`` None means ``pool_size``. Returns ``y``, or
    ``(y, argmax)`` when ``return_argmax``: the input pixel of each maximum, what ``pool2d_backward`` needs
    (None for average)."""
    if mode not in _core.kinds.pool_modes:
        raise ValueError(f"mode must be one of {', '.join(_core.kinds.pool_modes)}, got {mode!r}")
    x = _as_4d(x, "x")
    pool, step, pad = _pool_args(pool_size, strides, padding, global_pool)
    y, arg = _core.pool_forward(x, _core.kinds.pool_modes[mode], bool(global_pool), pool, step, pad,
                                bool(return_argmax))
    return (y, arg) if return_argmax else y


def pool2d_backward(dy, input_shape, argmax=None, pool_size=2, strides=None, padding="valid", mode="max", *,
                    global_pool=False):
    """dx of ``pool2d_forward`` for inputs of ``input_shape`` (batch, height, width, channels)."""
    if mode not in _core.kinds.pool_modes:
        raise ValueError(f"mode must be one of {', '.join(_core.kinds.pool_modes)}, got {mode!r}")
    dy = _as_4d(dy, "dy")
    if len(input_shape) != 4 or tuple(input_shape)[0::3] != (dy.shape[0], dy.shape[3]):
        raise ValueError(f"input_shape {tuple(input_shape)} does not fit dy of shape {dy.shape}")
    pool, step, pad = _pool_args(pool_size, strides, padding, global_pool)
    arg = None if argmax is None else _as_4d(argmax, "argmax")
    return _core.pool_backward(dy, arg, int(input_shape[1]), int(input_shape[2]), _core.kinds.pool_modes[mode],
                               bool(global_pool), pool, step, pad)


def batch_norm_forward(x, gamma=None, beta=None, *, epsilon=1e-3, mean=None, variance=None, out=None):
    """Batch normalization of each column of ``x`` (N, C): ``y = x s + (beta - mean s)``,
    ``s = gamma / sqrt(variance + epsilon)`` (Keras's ``ops.batch_normalization``; gamma None means 1,
    beta None means 0).

    With ``mean`` and ``variance`` None, they are the batch's: ``mean = sum_i x_i / N`` and the biased
    ``variance = sum_i (x_i - mean)^2 / N`` (two passes, summed in double down the rows in order); returns
    ``(y, mean, variance)``. Given them (the moving statistics), returns ``y``.
    """
    x = _as_2d(x, "x")
    cols = x.shape[1]
    epsilon = _epsilon(epsilon)
    gamma, beta = _column(gamma, "gamma", cols), _column(beta, "beta", cols)
    out = _check_out(out, x.shape)
    if (mean is None) != (variance is None):
        raise ValueError("give both mean and variance (the moving statistics), or neither (the batch's)")
    training = mean is None
    if training:
        if x.shape[0] == 0:
            raise ValueError("x: batch statistics need at least one row")
        mean, variance = np.empty(cols, np.float32), np.empty(cols, np.float32)
    else:
        mean, variance = _column(mean, "mean", cols), _column(variance, "variance", cols)
    _core.batch_norm_forward(_unaliased(x, out), gamma, beta, epsilon, training, mean, variance, out)
    return (out, mean, variance) if training else out


def batch_norm_backward(dy, x, mean, variance, gamma=None, *, epsilon=1e-3, batch_statistics=True, need_dx=True):
    """Gradients of ``batch_norm_forward``: ``(dx or None, dgamma, dbeta)``.

    ``xhat = (x - mean) / sqrt(variance + epsilon)``; ``dbeta = sum_i dy``, ``dgamma = sum_i dy xhat``.
    With ``batch_statistics`` (mean and variance were the batch's, as in training) the gradient flows
    through them too: ``dx = s (dy - (dbeta + xhat dgamma) / N)``; otherwise (moving statistics)
    ``dx = s dy``; ``s = gamma / sqrt(variance + epsilon)``.
    """
    x = _as_2d(x, "x")
    dy = _as_2d(dy, "dy")
    if dy.shape != x.shape:
        raise ValueError(f"dy has shape {dy.shape} but x has shape {x.shape}")
    cols = x.shape[1]
    epsilon = _epsilon(epsilon)
    mean, variance = _column(mean, "mean", cols), _column(variance, "variance", cols)
    if mean is None or variance is None:
        raise ValueError("mean and variance are required")
    gamma = _column(gamma, "gamma", cols)
    dx = np.empty(x.shape, np.float32) if need_dx else None
    dgamma, dbeta = np.empty(cols, np.float32), np.empty(cols, np.float32)
    _core.batch_norm_backward(dy, x, mean, variance, gamma, epsilon, bool(batch_statistics), dx, dgamma, dbeta)
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------- #
# Fused optimizer steps
# --------------------------------------------------------------------------- #
_SGD, _ADAM, _RMSPROP, _ADAGRAD, _ADAMAX, _LION = (
    _core.kinds.optimizers[name] for name in ("sgd", "adam", "rmsprop", "adagrad", "adamax", "lion"))
# Keyed by Keras's argument names: clipvalue, clipnorm, global_clipnorm (and "none").
_CLIP_KINDS = _core.kinds.clips
_CLIP_NONE, _CLIP_VALUE, _CLIP_NORM, _CLIP_GLOBAL_NORM = (
    _CLIP_KINDS[name] for name in ("none", "clipvalue", "clipnorm", "global_clipnorm"))


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _buffers(params, grads):
    """(params list, grads list): params updated in place, grads converted; shapes must match."""
    plist = [_inplace(p, f"params[{i}]") for i, p in enumerate(_as_list(params))]
    glist = [_as_f32(g, f"grads[{i}]") for i, g in enumerate(_as_list(grads))]
    if len(glist) != len(plist):
        raise ValueError(f"grads: expected {len(plist)} arrays (one per parameter), got {len(glist)}")
    for i, (p, g) in enumerate(zip(plist, glist)):
        if g.shape != p.shape:
            raise ValueError(f"grads[{i}] has shape {g.shape} but params[{i}] has shape {p.shape}")
    return plist, glist


def _state(state, name, plist):
    if state is None:
        return None
    slist = [_inplace(s, f"{name}[{i}]") for i, s in enumerate(_as_list(state))]
    if len(slist) != len(plist):
        raise ValueError(f"{name}: expected {len(plist)} arrays (one per parameter), got {len(slist)}")
    for i, (s, p) in enumerate(zip(slist, plist)):
        if s.shape != p.shape:
            raise ValueError(f"{name}[{i}] has shape {s.shape} but params[{i}] has shape {p.shape}")
    return slist


def _clip(clipnorm, clipvalue, global_clipnorm):
    """Keras allows at most one of clipnorm, clipvalue, global_clipnorm."""
    given = [(k, v) for k, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                                 ("global_clipnorm", global_clipnorm)) if v is not None]
    if len(given) > 1:
        raise ValueError(f"only one of clipnorm, clipvalue, global_clipnorm can be set, got {[k for k, _ in given]}")
    if not given:
        return _CLIP_NONE, 0.0
    name, value = given[0]
    value = _float(value, name)
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return _CLIP_KINDS[name], value


_PRUNING_MASKS = contextvars.ContextVar("gradsmith_pruning_masks", default=None)


@contextlib.contextmanager
def pruning_masks(masks):
    """Within: the optimizer steps keep each weight whose mask (one per parameter array, or None) is 0 at 0,
    inside the fused update (gradsmith.pruning)."""
    token = _PRUNING_MASKS.set(masks)
    try:
        yield
    finally:
        _PRUNING_MASKS.reset(token)


def _step(kind, params, grads, states, lr, weight_decay, config, nesterov, clipnorm, clipvalue, global_clipnorm,
          required=()):
    """Validate and run one fused step; ``states`` is three (buffers or None, name) pairs, ``config`` the
    optimizer's Keras arguments by name (momentum, beta_1, beta_2, epsilon, rho) and ``step`` where the
    update needs it. The kernel folds them into the update's numbers as the compiled training step does."""
    config = {name: (int(v) if name == "step" else _float(v, name)) for name, v in config.items()}
    masks = _PRUNING_MASKS.get()
    if _on_device(*_as_list(params), *_as_list(grads)):
        if masks is not None:
            raise NotImplementedError("pruning masks in an optimizer step on device arrays: train through the "
                                      "compiled step (model.fit) instead")
        for s, name in states:
            if name in required and s is None:
                raise ValueError(f"{name} is required")
        clip_kind, clip = _clip(clipnorm, clipvalue, global_clipnorm)
        return cuda.optimizer_step(kind, _as_list(params), _as_list(grads),
                                   [None if s is None else _as_list(s) for s, _ in states], _float(lr, "learning_rate"),
                                   0.0 if weight_decay is None else _float(weight_decay, "weight_decay"), config,
                                   bool(nesterov), clip_kind, clip)
    plist, glist = _buffers(params, grads)
    slists = [_state(s, name, plist) for s, name in states]
    for s, name in states:
        if name in required and s is None:
            raise ValueError(f"{name} is required")
    clip_kind, clip = _clip(clipnorm, clipvalue, global_clipnorm)
    lr = _float(lr, "learning_rate")
    wd = 0.0 if weight_decay is None else _float(weight_decay, "weight_decay")
    if masks is not None:
        if not isinstance(masks, (list, tuple)):
            raise TypeError(f"pruning masks: expected a list of masks (or None), got {type(masks).__name__}")
        if len(masks) != len(plist):
            raise ValueError(f"pruning masks: expected {len(plist)}, got {len(masks)}")
        masks = [None if m is None else _as_f32(m, "keep") for m in masks]
    _core.optimizer_step(kind, plist, glist, slists[0], slists[1], slists[2], lr, wd, bool(nesterov), clip_kind, clip,
                         keep=masks, **config)


def sgd_step(params, grads, momentums=None, *, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
             clipnorm=None, clipvalue=None, global_clipnorm=None):
    """One SGD step in place (Keras 3): ``m = momentum*m - lr*g``; ``w += m``
    (nesterov: ``w += momentum*m - lr*g``); without momentum ``w -= lr*g``.

    ``params``/``grads``/``momentums``: one float32 array or lists of them
    (one fused call for all). ``momentums`` is required when momentum != 0.
    """
    momentum = _float(momentum, "momentum")
    if momentum != 0.0 and momentums is None:
        raise ValueError("sgd_step: momentum != 0 needs momentums= buffers")
    _step(_SGD, params, grads, ((momentums if momentum != 0.0 else None, "momentums"), (None, ""), (None, "")),
          learning_rate, weight_decay, {"momentum": momentum}, nesterov, clipnorm, clipvalue, global_clipnorm)


def adam_step(params, grads, m, v, *, step, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
              amsgrad=False, v_hat=None, weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None):
    """One Adam step in place (Keras 3 formulas; ``step`` = t >= 1, Keras's iterations + 1).

    ``alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)``;
    ``m += (g - m)(1 - beta_1)``; ``v += (g*g - v)(1 - beta_2)``;
    amsgrad: ``v_hat = max(v_hat, v)`` used in place of v;
    ``w -= alpha * m / (sqrt(v) + epsilon)`` (epsilon after the square root).
    """
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 1:
        raise ValueError(f"adam_step: step must be an integer >= 1, got {step!r}")
    if amsgrad and v_hat is None:
        raise ValueError("adam_step: amsgrad=True needs v_hat= buffers")
    _step(_ADAM, params, grads, ((m, "m"), (v, "v"), (v_hat if amsgrad else None, "v_hat")), learning_rate,
          weight_decay, {"beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon, "step": step}, False, clipnorm,
          clipvalue, global_clipnorm, required=("m", "v"))


def adamax_step(params, grads, m, u, *, step, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None):
    """One Adamax step in place (Keras 3; ``step`` = t >= 1): ``m += (g - m)(1 - beta_1)``;
    ``u = max(beta_2 u, |g|)``; ``w -= lr m / ((1 - beta_1**t)(u + epsilon))``, with
    ``lr / (1 - beta_1**t)`` folded in double and rounded once."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 1:
        raise ValueError(f"adamax_step: step must be an integer >= 1, got {step!r}")
    _step(_ADAMAX, params, grads, ((m, "m"), (u, "u"), (None, "")), learning_rate, weight_decay,
          {"beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon, "step": step}, False, clipnorm, clipvalue,
          global_clipnorm, required=("m", "u"))


def lion_step(params, grads, m, *, learning_rate=0.001, beta_1=0.9, beta_2=0.99, weight_decay=None, clipnorm=None,
              clipvalue=None, global_clipnorm=None):
    """One Lion step in place (Keras 3): ``w -= lr sign(beta_1 m + (1 - beta_1) g)``;
    ``m = beta_2 m + (1 - beta_2) g``."""
    _step(_LION, params, grads, ((m, "m"), (None, ""), (None, "")), learning_rate, weight_decay,
          {"beta_1": beta_1, "beta_2": beta_2}, False, clipnorm, clipvalue, global_clipnorm, required=("m",))


def adamw_step(params, grads, m, v, *, step, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
               amsgrad=False, v_hat=None, weight_decay=0.004, clipnorm=None, clipvalue=None, global_clipnorm=None):
    """Adam with decoupled weight decay (Keras 3 AdamW): ``w -= w * weight_decay * lr`` first."""
    adam_step(params, grads, m, v, step=step, learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
              epsilon=epsilon, amsgrad=amsgrad, v_hat=v_hat, weight_decay=weight_decay, clipnorm=clipnorm,
              clipvalue=clipvalue, global_clipnorm=global_clipnorm)


def rmsprop_step(params, grads, velocities, *, momentums=None, average_grads=None, learning_rate=0.001, rho=0.9,
                 momentum=0.0, epsilon=1e-7, centered=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None):
    """One RMSprop step in place (Keras 3): ``v = rho v + (1-rho) g^2``;
    centered: ``ag = rho ag + (1-rho) g``, ``den = v - ag^2 + eps``, else ``den = v + eps``
    (epsilon inside the square root); ``inc = lr g / sqrt(den)``;
    momentum > 0: ``mb = momentum mb + inc``, ``w -= mb``; else ``w -= inc``.
    """
    momentum = _float(momentum, "momentum")
    rho = _float(rho, "rho")
    if momentum > 0 and momentums is None:
        raise ValueError("rmsprop_step: momentum > 0 needs momentums= buffers")
    if centered and average_grads is None:
        raise ValueError("rmsprop_step: centered=True needs average_grads= buffers")
    _step(_RMSPROP, params, grads,
          ((velocities, "velocities"), (momentums if momentum > 0 else None, "momentums"),
           (average_grads if centered else None, "average_grads")),
          learning_rate, weight_decay, {"rho": rho, "momentum": momentum, "epsilon": epsilon}, False, clipnorm,
          clipvalue, global_clipnorm, required=("velocities",))


def adagrad_step(params, grads, accumulators, *, learning_rate=0.001, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None):
    """One Adagrad step in place (Keras 3): ``acc += g^2``; ``w -= lr g / sqrt(acc + eps)``.

    Keras starts the accumulators at ``initial_accumulator_value`` (0.1): the
    caller fills them.
    """
    _step(_ADAGRAD, params, grads, ((accumulators, "accumulators"), (None, ""), (None, "")), learning_rate,
          weight_decay, {"epsilon": epsilon}, False, clipnorm, clipvalue, global_clipnorm,
          required=("accumulators",))


def global_norm(arrays):
    """``sqrt(sum of squares)`` over all arrays, summed in a fixed order."""
    total = 0.0
    for i, a in enumerate(_as_list(arrays)):
        total += _core.sum_squares(_as_f32(a, f"arrays[{i}]"))
    return float(np.sqrt(total))


# --------------------------------------------------------------------------- #
# Dropout (Philox4x32-10 counter-based masks)
# --------------------------------------------------------------------------- #
def _seed(seed, name="seed"):
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(seed).__name__}")
    return int(seed) % (1 << 64)


def _rate(rate):
    rate = _float(rate, "rate")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate}")
    return rate


def dropout_forward(x, rate, seed, offset=0, out=None):
    """``y = x / (1 - rate)`` where kept, else 0.

    Element i (row-major) is kept iff ``u >= rate``, with ``u`` the top 24
    bits of ``Philox4x32-10(key=seed, counter=(i // 4, offset))[i % 4]``
    scaled to [0, 1): the mask depends only on (seed, offset, i), never on the
    thread count. Use a new ``offset`` per step for a new mask.
    """
    return _dropout(x, "x", rate, seed, offset, out)


def dropout_backward(dy, rate, seed, offset=0, out=None):
    """``dx = dy / (1 - rate)`` where forward kept, else 0: the same mask, regenerated."""
    return _dropout(dy, "dy", rate, seed, offset, out)


def _dropout(x, name, rate, seed, offset, out):
    rate = _rate(rate)
    if _on_device(x, out):
        return cuda.dropout(x, rate, _seed(seed), _seed(offset, "offset"), out)
    x = _as_f32(x, name)
    out = _check_out(out, x.shape)
    _core.dropout(_unaliased(x, out, elementwise=True), out, rate, _seed(seed), _seed(offset, "offset"))
    return out


def dropout_mask(shape, rate, seed, offset=0):
    """The boolean keep-mask that ``dropout_forward`` uses for an array of ``shape``."""
    return dropout_forward(np.ones(shape, dtype=np.float32), rate, seed, offset) != 0


def philox4x32(counter, key):
    """Philox4x32-10 of four 32-bit counter words under a two-word key (for checks)."""
    counter = [int(c) for c in counter]
    key = [int(k) for k in key]
    if any(not 0 <= v < 1 << 32 for v in counter + key):
        raise ValueError("philox4x32: words must be in [0, 2**32)")
    return tuple(_core.philox4x32(counter, key))


# --------------------------------------------------------------------------- #
# Reductions (fixed order: identical bits for any thread count)
# --------------------------------------------------------------------------- #
def sum(x):  # noqa: A001 - NumPy's name
    """Sum of all elements (accumulated in double, fixed order), as a float."""
    return float(_core.sum(_as_f32(x, "x")))


def sum_squares(x):
    """Sum of squares of all elements (accumulated in double, fixed order), as a float."""
    return float(_core.sum_squares(_as_f32(x, "x")))


def sum_rows(x, out=None):
    """Column sums of a 2-D array (the bias gradient): ``out[j] = sum_i x[i, j]``, rows in order."""
    if _on_device(x, out):
        return cuda.sum_rows(x, out)
    x = _as_2d(x, "x")
    out = _check_out(out, (x.shape[1],))
    _core.col_sums(_unaliased(x, out), out)
    return out


_COUNT_KINDS = _core.kinds.counts


def count_correct(y_true, y_pred, kind, threshold=0.5):
    """Number of correct predictions, as Keras's accuracy metrics count them.

    'binary': element-wise ``float(y_pred > threshold) == y_true``;
    'categorical': ``argmax(y_pred) == argmax(y_true)`` per row;
    'sparse': ``argmax(y_pred) == label`` per row. argmax takes the first
    maximum; a NaN counts as the maximum, as ``np.argmax``.
    """
    if kind not in _COUNT_KINDS:
        raise ValueError(f"kind: expected one of {', '.join(_COUNT_KINDS)}, got {kind!r}")
    threshold = _float(threshold, "threshold")
    pred = _as_f32(y_pred, "y_pred")
    if pred.ndim not in (1, 2):
        raise ValueError(f"y_pred: expected shape (N,) or (N, C), got {pred.shape}")
    pred2 = pred if pred.ndim == 2 else pred.reshape(-1, 1)
    rows, cols = pred2.shape
    if kind != "binary" and cols == 0 and rows > 0:
        raise ValueError(f"y_pred: has no classes (shape {pred.shape})")
    if kind == "sparse":
        labels = _sparse_labels(y_true, rows, max(cols, 1))
        return int(_core.count_correct(_COUNT_KINDS["sparse"], None, labels, pred2, threshold))
    true = _as_f32(y_true, "y_true")
    if true.shape != pred.shape and not (cols == 1 and true.shape in ((rows,), (rows, 1))):
        raise ValueError(f"y_true has shape {true.shape} but y_pred has shape {pred.shape}")
    return int(_core.count_correct(_COUNT_KINDS[kind], true.reshape(rows, cols), None, pred2, threshold))


def binary_confusion(y_true, y_pred, threshold=0.5):
    """``(tp, fp, tn, fn)``: predicted positive iff ``y_pred > threshold``,
    actually positive iff ``y_true != 0`` (Keras casts y_true to bool)."""
    threshold = _float(threshold, "threshold")
    pred = _as_f32(y_pred, "y_pred")
    true = _as_f32(y_true, "y_true")
    # Same shape, or (N,) against (N, 1).
    if true.shape != pred.shape and not (true.size == pred.size and true.squeeze().shape == pred.squeeze().shape):
        raise ValueError(f"y_true has shape {true.shape} but y_pred has shape {pred.shape}")
    return tuple(int(c) for c in _core.binary_confusion(true.reshape(-1), pred.reshape(-1), threshold))


# ------------------------------------------------------------------ recurrent layers
RNN_CELLS = {"SimpleRNN": 0, "GRU": 1, "LSTM": 2}
_RNN_GATES = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}


def _rnn_cell(cell):
    if cell not in RNN_CELLS:
        raise ValueError(f"cell must be one of {sorted(RNN_CELLS)}, got {cell!r}")
    return RNN_CELLS[cell]


def rnn_forward(cell, x, kernel, recurrent_kernel, bias=None, initial_h=None, initial_c=None, *, reset_after=True,
                go_backwards=False, training=False):
    """A recurrent layer over ``x`` (batch, steps, in) with Keras's weights (``cell``: 'SimpleRNN', 'GRU', 'LSTM';
    tanh and sigmoid): ``kernel`` (in, G u), ``recurrent_kernel`` (u, G u), ``bias`` (G u,) or GRU's (2, G u) when
    ``reset_after``. Returns ``(hseq, cache)``: ``hseq`` (batch, steps, u) is h after each step in processing
    order (Keras's sequence output, reversed input when ``go_backwards``); ``cache`` is what ``rnn_backward``
    needs (and, for the LSTM, the cells: ``cache['c_last']``)."""
    kind = _rnn_cell(cell)
    x = _as_f32(x, "x")
    if x.ndim != 3:
        raise ValueError(f"x: expected a 3-D (batch, steps, features) array, got shape {x.shape}")
    kernel, recurrent_kernel = _as_f32(kernel, "kernel"), _as_f32(recurrent_kernel, "recurrent_kernel")
    h0 = None if initial_h is None else _as_f32(initial_h, "initial_h")  # None: zeros
    c0 = None if initial_c is None or kind != 2 else _as_f32(initial_c, "initial_c")
    bias = None if bias is None else _as_f32(bias, "bias")
    reset_after = bool(reset_after) and kind == 1
    hseq, extra, gates, hprev = _core.rnn_forward(kind, reset_after, bool(go_backwards), x, kernel, recurrent_kernel,
                                                  bias, h0, c0, bool(training))
    cache = {"cell": cell, "reset_after": reset_after, "go_backwards": bool(go_backwards), "x": x, "c0": c0,
             "gates": gates, "hprev": hprev, "extra": extra,
             "c_last": np.ascontiguousarray(extra[:, -1]) if kind == 2 else None}
    return hseq, cache


def rnn_backward(cache, kernel, recurrent_kernel, dy_seq=None, dy_last=None, *, use_bias=True, need_dx=True,
                 dkernel_out=None, drecurrent_kernel_out=None, dbias_out=None):
    """Gradients of ``rnn_forward(..., training=True)`` from ``dy_seq`` (batch, steps, u) and / or ``dy_last``
    (batch, u): ``(dx or None, dkernel, drecurrent_kernel, dbias or None)``. The cache is used up."""
    if not isinstance(cache, dict):
        raise TypeError(f"rnn_backward: cache must be the dict rnn_forward returned, got {type(cache).__name__}")
    if cache.get("gates") is None or cache.get("hprev") is None:
        raise ValueError("rnn_backward: the cache is not from a training forward pass (or was used already)")
    kind = _rnn_cell(cache["cell"])
    kernel, recurrent_kernel = _as_f32(kernel, "kernel"), _as_f32(recurrent_kernel, "recurrent_kernel")
    dy_seq = None if dy_seq is None else _as_f32(dy_seq, "dy_seq")
    dy_last = None if dy_last is None else _as_f32(dy_last, "dy_last")
    if kernel.ndim != 2 or recurrent_kernel.ndim != 2:
        raise ValueError(f"rnn_backward: kernel and recurrent_kernel must be 2-D, got shapes {kernel.shape} and "
                         f"{recurrent_kernel.shape}")
    dk = _check_out(dkernel_out, kernel.shape, "dkernel_out")
    du = _check_out(drecurrent_kernel_out, recurrent_kernel.shape, "drecurrent_kernel_out")
    gu = recurrent_kernel.shape[1]
    db = _check_out(dbias_out, (2, gu) if cache["reset_after"] else (gu,), "dbias_out") if use_bias else None
    gates, cache["gates"] = cache["gates"], None
    dx = _core.rnn_backward(kind, cache["reset_after"], cache["go_backwards"], cache["x"], kernel, recurrent_kernel,
                            cache["c0"], dy_seq, dy_last, gates, cache["hprev"], cache["extra"], bool(need_dx), dk,
                            du, db)
    return dx, dk, du, db

"""Bad input to gradsmith.ops (and to the raw gradsmith._core layer).

Requirements (OPS_SPEC.md, first section): no call from Python may crash the process or
read/write out of bounds; bool/int/uint/float inputs are converted to float32 (any layout);
complex/object/str/bytes/datetime/void inputs raise TypeError naming the argument; wrong
shapes raise ValueError naming both shapes; out= of the wrong shape/dtype/layout or read-only
is a ValueError; in-place optimizer buffers must be float32 (TypeError) C-contiguous writeable
(ValueError); sparse labels outside [0, C) are a ValueError naming the first bad label and its
index; NaN/Inf flow through as in NumPy; and a call that fails leaves every buffer as it was.

Most tests are generated from one table (CASES) that lists, for every public function, a
valid call, which arguments are converted inputs, which are in-place buffers and which one
is the out= buffer.
"""
import re
import warnings

import numpy as np
import pytest

import gradsmith
from gradsmith import _core, ops

import reference as R

# --------------------------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------------------------- #


def f32(shape, seed=0, lo=-1.0, hi=1.0):
    """A float32 C-contiguous array of uniform values (deterministic)."""
    return np.random.default_rng(seed).uniform(lo, hi, size=shape).astype(np.float32)


def onehot(labels, classes):
    return np.eye(classes, dtype=np.float32)[labels]


def get_path(kwargs, path):
    obj = kwargs[path[0]]
    for p in path[1:]:
        obj = obj[p]
    return obj


def set_path(kwargs, path, value):
    """A shallow copy of kwargs with the argument at ``path`` replaced (lists are copied)."""
    kwargs = dict(kwargs)
    if len(path) == 1:
        kwargs[path[0]] = value
    else:
        seq = list(kwargs[path[0]])
        seq[path[1]] = value
        kwargs[path[0]] = seq
    return kwargs


def same(a, b):
    """Bitwise-equal results (arrays, tuples, floats, ints, None), NaN equal to NaN."""
    if isinstance(a, (tuple, list)):
        return isinstance(b, (tuple, list)) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and (a.dtype == object or a.tobytes() == b.tobytes())
                and (a.dtype != object or a.tolist() == b.tolist()))
    if isinstance(a, float):
        return isinstance(b, float) and (a == b or (a != a and b != b))
    return a == b


def snapshot(arrays):
    return [np.array(a, copy=True) for a in arrays]


def assert_unchanged(before, arrays, what="buffer"):
    for i, (b, a) in enumerate(zip(before, arrays)):
        assert same(b, np.asarray(a)), f"{what} {i} was modified by a call that failed"


def readonly(a):
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def strided(a):
    """A non-contiguous view (every other element along every axis) holding a's values."""
    if a.ndim == 0:
        return a
    buf = np.zeros(tuple(2 * max(d, 1) for d in a.shape), dtype=a.dtype)
    view = buf[tuple(slice(None, 2 * d, 2) for d in a.shape)]
    view[...] = a
    return view


def reversed_view(a):
    """A negative-stride view holding a's values."""
    if a.ndim == 0:
        return a
    return np.flip(np.ascontiguousarray(np.flip(a)))


def fortran(a):
    return np.asfortranarray(a)


def transposed_view(a):
    return np.ascontiguousarray(a.T).T


LAYOUTS = {"strided": strided, "reversed": reversed_view, "fortran": fortran, "transposed": transposed_view}


def _int_values(a, dtype):
    a = np.asarray(a, dtype=np.float64)
    if np.dtype(dtype).kind == "u":
        a = np.abs(a)
    return np.round(a * 3).astype(dtype)


# Dtypes that must be rejected with a TypeError naming the argument (spec, first section).
BAD_DTYPES = {
    "complex64": lambda a: np.asarray(a).astype(np.complex64),
    "complex128": lambda a: np.asarray(a).astype(np.complex128),
    "object": lambda a: np.asarray(a).astype(object),
    "str": lambda a: np.asarray(a).astype(str),
    "bytes": lambda a: np.asarray(a).astype("S16"),
    "datetime64": lambda a: np.zeros(np.shape(a), dtype="datetime64[s]"),
    "timedelta64": lambda a: np.zeros(np.shape(a), dtype="timedelta64[s]"),
    "void": lambda a: np.zeros(np.shape(a), dtype="V4"),
}

# Dtypes that must be converted as NumPy's astype(float32) does.
GOOD_DTYPES = ["float64", "float16", "int8", "int32", "int64", "uint8", "bool"]


def convert_good(a, dtype, kind):
    a = np.asarray(a)
    if kind == "labels":
        return a.astype(dtype)
    if dtype == "bool":
        return a > 0
    if np.dtype(dtype).kind in "iu":
        return _int_values(a, dtype)
    return a.astype(dtype)


# --------------------------------------------------------------------------------------------- #
# The table
# --------------------------------------------------------------------------------------------- #


class Case:
    """One valid call of a public function and what its arguments are.

    inputs:  [(path, name, kind)] converted array inputs; kind 'values' or 'labels'
    inplace: [(path, name)] float32 buffers updated in place (optimizers)
    out:     (kwarg name, shape) of the out= buffer, or None
    """

    def __init__(self, id, fn, make, inputs, inplace=(), out=None):
        self.id, self.fn, self.make = id, fn, make
        self.inputs, self.inplace, self.out = list(inputs), list(inplace), out

    def __repr__(self):
        return self.id

    def run(self, kwargs):
        """(result, copies of the in-place buffers after the call)."""
        result = self.fn(**kwargs)
        return result, snapshot([get_path(kwargs, p) for p, _ in self.inplace])


class RnnCase(Case):
    """A recurrent kernel's call: rnn_forward's cache is compared by its arrays."""

    def run(self, kwargs):
        result, buffers = super().run(kwargs)
        if self.fn is ops.rnn_forward:
            hseq, cache = result
            result = (hseq, cache["gates"], cache["hprev"], cache["extra"])
        return result, buffers


def _v(shape, seed):  # non-negative state (second moments, accumulators)
    return f32(shape, seed, 0.0, 1.0)


def _optimizer_cases():
    shapes = [(3, 4), (5,)]

    def two(seed, lo=-1.0, hi=1.0):
        return [f32(s, seed + i, lo, hi) for i, s in enumerate(shapes)]

    def inputs():
        return [(("grads", i), "grads", "values") for i in range(len(shapes))]

    def inplace(*names):
        return [((n, i), n) for n in ("params",) + names for i in range(len(shapes))]

    return [
        Case("sgd_step", ops.sgd_step,
             lambda: dict(params=two(10), grads=two(20), momentums=two(30), momentum=0.9, nesterov=True,
                          learning_rate=0.1, clipvalue=0.5),
             inputs(), inplace("momentums")),
        Case("sgd_step_plain", ops.sgd_step,
             lambda: dict(params=two(10), grads=two(20), learning_rate=0.1, weight_decay=0.01),
             inputs(), inplace()),
        Case("adam_step", ops.adam_step,
             lambda: dict(params=two(10), grads=two(20), m=two(30), v=two(40, 0.0, 1.0), step=3, amsgrad=True,
                          v_hat=two(50, 0.0, 1.0), clipnorm=0.5),
             inputs(), inplace("m", "v", "v_hat")),
        Case("adamax_step", ops.adamax_step,
             lambda: dict(params=two(10), grads=two(20), m=two(30), u=two(40, 0.0, 1.0), step=2, clipnorm=0.5),
             inputs(), inplace("m", "u")),
        Case("lion_step", ops.lion_step,
             lambda: dict(params=two(10), grads=two(20), m=two(30), weight_decay=0.01, clipvalue=0.3),
             inputs(), inplace("m")),
        Case("adamw_step", ops.adamw_step,
             lambda: dict(params=two(10), grads=two(20), m=two(30), v=two(40, 0.0, 1.0), step=1,
                          global_clipnorm=1.0),
             inputs(), inplace("m", "v")),
        Case("rmsprop_step", ops.rmsprop_step,
             lambda: dict(params=two(10), grads=two(20), velocities=two(40, 1.0, 2.0), momentums=two(30),
                          average_grads=two(50, -0.5, 0.5), momentum=0.5, centered=True),
             inputs(), inplace("velocities", "momentums", "average_grads")),
        Case("adagrad_step", ops.adagrad_step,
             lambda: dict(params=two(10), grads=two(20), accumulators=two(40, 0.1, 1.0)),
             inputs(), inplace("accumulators")),
        Case("sgd_step_single_array", ops.sgd_step,
             lambda: dict(params=f32((4, 3), 1), grads=f32((4, 3), 2), momentums=f32((4, 3), 3), momentum=0.5),
             [(("grads",), "grads", "values")], [(("params",), "params"), (("momentums",), "momentums")]),
    ]


def _loss_case(id, loss, t, p, sw=True, **kw):
    def make():
        d = dict(loss=loss, y_true=t(), y_pred=p(), **kw)
        if sw:
            d["sample_weight"] = f32((p().shape[0],), 99, 0.0, 2.0)
        return d

    kind = "labels" if loss == "sparse_categorical_crossentropy" else "values"
    inputs = [(("y_true",), "y_true", kind), (("y_pred",), "y_pred", "values")]
    if sw:
        inputs.append((("sample_weight",), "sample_weight", "values"))
    return Case(id, ops.loss_and_grad, make, inputs, out=("grad_out", p().shape))


LABELS = np.array([0, 2, 1, 2], dtype=np.int64)

CASES = [
    Case("matmul", ops.matmul, lambda: dict(a=f32((3, 4), 1), b=f32((4, 5), 2)),
         [(("a",), "a", "values"), (("b",), "b", "values")], out=("out", (3, 5))),
    Case("matmul_transposed_beta", ops.matmul,
         lambda: dict(a=f32((4, 3), 1), b=f32((5, 4), 2), transpose_a=True, transpose_b=True, alpha=0.5, beta=2.0,
                      out=f32((3, 5), 3)),
         [(("a",), "a", "values"), (("b",), "b", "values")], out=("out", (3, 5))),
]
for _act in ("relu", "softmax", "gelu", "hard_sigmoid"):
    CASES.append(Case(f"activation_forward[{_act}]", ops.activation_forward,
                      lambda _act=_act: dict(x=f32((2, 3, 4), 1, -3, 3), activation=_act),
                      [(("x",), "x", "values")], out=("out", (2, 3, 4))))
    CASES.append(Case(f"activation_backward[{_act}]", ops.activation_backward,
                      lambda _act=_act: dict(dy=f32((2, 3, 4), 2), x=f32((2, 3, 4), 1, -3, 3), activation=_act),
                      [(("dy",), "dy", "values"), (("x",), "x", "values")], out=("out", (2, 3, 4))))
CASES += [
    Case("dense_forward", ops.dense_forward,
         lambda: dict(x=f32((3, 4), 1), kernel=f32((4, 5), 2), bias=f32((5,), 3), activation="relu"),
         [(("x",), "x", "values"), (("kernel",), "kernel", "values"), (("bias",), "bias", "values")],
         out=("out", (3, 5))),
    Case("quantized_dense_forward", ops.quantized_dense_forward,
         lambda: dict(x=f32((3, 4), 1), kernel=np.arange(-10, 10, dtype=np.int8).reshape(4, 5),
                      kernel_scale=f32((5,), 2, 1.0, 3.0), bias=f32((5,), 3), activation="relu"),
         [(("x",), "x", "values"), (("kernel_scale",), "kernel_scale", "values"), (("bias",), "bias", "values")],
         out=("out", (3, 5))),
    Case("dense_forward_softmax_preact", ops.dense_forward,
         lambda: dict(x=f32((3, 4), 1), kernel=f32((4, 5), 2), bias=f32((5,), 3), activation="softmax",
                      return_preactivation=True),
         [(("x",), "x", "values"), (("kernel",), "kernel", "values"), (("bias",), "bias", "values")],
         out=("out", (3, 5))),
    Case("dense_backward", ops.dense_backward,
         lambda: dict(dy=f32((3, 5), 1), x=f32((3, 4), 2), kernel=f32((4, 5), 3), preactivation=f32((3, 5), 4),
                      activation="tanh"),
         [(("dy",), "dy", "values"), (("x",), "x", "values"), (("kernel",), "kernel", "values"),
          (("preactivation",), "preactivation", "values")]),
    Case("dense_backward_softmax", ops.dense_backward,
         lambda: dict(dy=f32((3, 5), 1), x=f32((3, 4), 2), kernel=f32((4, 5), 3), preactivation=f32((3, 5), 4),
                      activation="softmax", use_bias=False, need_dx=True),
         [(("dy",), "dy", "values"), (("x",), "x", "values"), (("kernel",), "kernel", "values"),
          (("preactivation",), "preactivation", "values")]),
    _loss_case("loss[mse]", "mse", lambda: f32((4, 3), 1), lambda: f32((4, 3), 2)),
    _loss_case("loss[mae-1d]", "mae", lambda: f32((5,), 1), lambda: f32((5,), 2)),
    _loss_case("loss[huber]", "huber", lambda: f32((4, 3), 1, -2, 2), lambda: f32((4, 3), 2, -2, 2), delta=0.5),
    _loss_case("loss[bce]", "binary_crossentropy", lambda: f32((4, 3), 1, 0, 1), lambda: f32((4, 3), 2, 0.05, 0.95),
               label_smoothing=0.1),
    _loss_case("loss[bce-logits]", "binary_crossentropy", lambda: f32((4, 3), 1, 0, 1),
               lambda: f32((4, 3), 2, -3, 3), from_logits=True),
    _loss_case("loss[cce]", "categorical_crossentropy", lambda: onehot(LABELS, 3), lambda: f32((4, 3), 2, 0.1, 1)),
    _loss_case("loss[cce-logits]", "categorical_crossentropy", lambda: onehot(LABELS, 3),
               lambda: f32((4, 3), 2, -3, 3), from_logits=True, label_smoothing=0.2),
    _loss_case("loss[sparse]", "sparse_categorical_crossentropy", lambda: LABELS.copy(),
               lambda: f32((4, 3), 2, 0.1, 1)),
    _loss_case("loss[sparse-logits]", "sparse_categorical_crossentropy", lambda: LABELS.reshape(4, 1).copy(),
               lambda: f32((4, 3), 2, -3, 3), from_logits=True, sw=False),
]
CASES += _optimizer_cases()
CASES += [
    Case("global_norm", ops.global_norm, lambda: dict(arrays=[f32((3,), 1), f32((2, 2), 2)]),
         [(("arrays", 0), "arrays", "values"), (("arrays", 1), "arrays", "values")]),
    Case("batch_norm_forward", ops.batch_norm_forward,
         lambda: dict(x=f32((5, 3), 1), gamma=f32((3,), 2, 0.5, 2), beta=f32((3,), 3)),
         [(("x",), "x", "values"), (("gamma",), "gamma", "values"), (("beta",), "beta", "values")],
         out=("out", (5, 3))),
    Case("batch_norm_forward_moving", ops.batch_norm_forward,
         lambda: dict(x=f32((5, 3), 1), mean=f32((3,), 2), variance=f32((3,), 3, 0.5, 2), epsilon=0.01),
         [(("x",), "x", "values"), (("mean",), "mean", "values"), (("variance",), "variance", "values")],
         out=("out", (5, 3))),
    Case("batch_norm_backward", ops.batch_norm_backward,
         lambda: dict(dy=f32((5, 3), 1), x=f32((5, 3), 2), mean=f32((3,), 3), variance=f32((3,), 4, 0.5, 2),
                      gamma=f32((3,), 5, 0.5, 2)),
         [(("dy",), "dy", "values"), (("x",), "x", "values"), (("mean",), "mean", "values"),
          (("variance",), "variance", "values"), (("gamma",), "gamma", "values")]),
    Case("conv2d_forward", ops.conv2d_forward,
         lambda: dict(x=f32((2, 5, 6, 3), 1), kernel=f32((3, 2, 3, 4), 2), bias=f32((4,), 3), strides=(1, 2),
                      padding="same", activation="relu"),
         [(("x",), "x", "values"), (("kernel",), "kernel", "values"), (("bias",), "bias", "values")]),
    Case("conv2d_backward", ops.conv2d_backward,
         lambda: dict(dy=f32((2, 4, 5, 4), 1), x=f32((2, 5, 6, 3), 2), kernel=f32((2, 2, 3, 4), 3),
                      preactivation=f32((2, 4, 5, 4), 4), activation="tanh"),
         [(("dy",), "dy", "values"), (("x",), "x", "values"), (("kernel",), "kernel", "values"),
          (("preactivation",), "preactivation", "values")]),
    RnnCase("rnn_forward", ops.rnn_forward,
            lambda: dict(cell="GRU", x=f32((2, 4, 3), 1), kernel=f32((3, 15), 2), recurrent_kernel=f32((5, 15), 3),
                         bias=f32((2, 15), 4), initial_h=f32((2, 5), 5), training=True),
            [(("x",), "x", "values"), (("kernel",), "kernel", "values"),
             (("recurrent_kernel",), "recurrent_kernel", "values"), (("bias",), "bias", "values"),
             (("initial_h",), "initial_h", "values")]),
    RnnCase("rnn_backward", ops.rnn_backward,
            lambda: dict(cache=ops.rnn_forward("LSTM", f32((2, 4, 3), 1), f32((3, 8), 2), f32((2, 8), 3),
                                               f32((8,), 4), training=True)[1],
                         kernel=f32((3, 8), 2), recurrent_kernel=f32((2, 8), 3), dy_seq=f32((2, 4, 2), 5),
                         dy_last=f32((2, 2), 6)),
            [(("kernel",), "kernel", "values"), (("recurrent_kernel",), "recurrent_kernel", "values"),
             (("dy_seq",), "dy_seq", "values"), (("dy_last",), "dy_last", "values")]),
    Case("pool2d_forward", ops.pool2d_forward, lambda: dict(x=f32((2, 5, 6, 3), 1), pool_size=(2, 3), padding="same"),
         [(("x",), "x", "values")]),
    Case("pool2d_backward", ops.pool2d_backward,
         lambda: dict(dy=f32((2, 2, 3, 3), 1), input_shape=(2, 5, 6, 3), mode="average"),
         [(("dy",), "dy", "values")]),
    Case("embedding_ids", ops.embedding_ids, lambda: dict(ids=LABELS.reshape(2, 2).copy(), input_dim=3),
         [(("ids",), "ids", "labels")]),
    Case("embedding_forward", ops.embedding_forward, lambda: dict(ids=LABELS.reshape(2, 2).copy(), table=f32((3, 4), 1)),
         [(("ids",), "ids", "labels"), (("table",), "table", "values")]),
    Case("embedding_backward", ops.embedding_backward,
         lambda: dict(ids=LABELS.reshape(2, 2).copy(), dy=f32((2, 2, 4), 1), input_dim=3),
         [(("ids",), "ids", "labels"), (("dy",), "dy", "values")], out=("dtable_out", (3, 4))),
    Case("dropout_forward", ops.dropout_forward, lambda: dict(x=f32((3, 4), 1), rate=0.3, seed=7, offset=2),
         [(("x",), "x", "values")], out=("out", (3, 4))),
    Case("dropout_backward", ops.dropout_backward, lambda: dict(dy=f32((3, 4), 1), rate=0.3, seed=7),
         [(("dy",), "dy", "values")], out=("out", (3, 4))),
    Case("sum", ops.sum, lambda: dict(x=f32((3, 4), 1)), [(("x",), "x", "values")]),
    Case("sum_squares", ops.sum_squares, lambda: dict(x=f32((3, 4), 1)), [(("x",), "x", "values")]),
    Case("sum_rows", ops.sum_rows, lambda: dict(x=f32((3, 4), 1)), [(("x",), "x", "values")], out=("out", (4,))),
    Case("count_correct[binary]", ops.count_correct,
         lambda: dict(y_true=(f32((4, 3), 1) > 0).astype(np.float32), y_pred=f32((4, 3), 2, 0, 1), kind="binary"),
         [(("y_true",), "y_true", "values"), (("y_pred",), "y_pred", "values")]),
    Case("count_correct[categorical]", ops.count_correct,
         lambda: dict(y_true=onehot(LABELS, 3), y_pred=f32((4, 3), 2), kind="categorical"),
         [(("y_true",), "y_true", "values"), (("y_pred",), "y_pred", "values")]),
    Case("count_correct[sparse]", ops.count_correct,
         lambda: dict(y_true=LABELS.copy(), y_pred=f32((4, 3), 2), kind="sparse"),
         [(("y_true",), "y_true", "labels"), (("y_pred",), "y_pred", "values")]),
    Case("binary_confusion", ops.binary_confusion,
         lambda: dict(y_true=(f32((6,), 1) > 0).astype(np.float32), y_pred=f32((6,), 2, 0, 1)),
         [(("y_true",), "y_true", "values"), (("y_pred",), "y_pred", "values")]),
]

INPUT_PARAMS = [pytest.param(c, p, n, k, id=f"{c.id}-{n}{''.join(f'[{i}]' for i in p[1:])}")
                for c in CASES for p, n, k in c.inputs]
OUT_CASES = [pytest.param(c, id=c.id) for c in CASES if c.out]
INPLACE_PARAMS = [pytest.param(c, p, n, id=f"{c.id}-{n}{''.join(f'[{i}]' for i in p[1:])}")
                  for c in CASES for p, n in c.inplace]


def test_every_public_function_is_in_the_table():
    covered = {c.fn for c in CASES}
    missing = [name for name in ops.__all__
               if callable(getattr(ops, name)) and getattr(ops, name) not in covered
               and name not in ("dropout_mask", "philox4x32",  # tested on their own below
                                "QuantizedKernel", "quantized_matmul")]  # int8 operands, not converted
    assert not missing


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_table_calls_are_valid(case):
    case.run(case.make())  # the base call of every case succeeds


# --------------------------------------------------------------------------------------------- #
# 1. dtypes
# --------------------------------------------------------------------------------------------- #


@pytest.mark.parametrize("bad", list(BAD_DTYPES))
@pytest.mark.parametrize("case, path, name, kind", INPUT_PARAMS)
def test_bad_dtype_is_type_error_naming_argument(case, path, name, kind, bad):
    kwargs = case.make()
    inplace_before = snapshot([get_path(kwargs, p) for p, _ in case.inplace])
    kwargs = set_path(kwargs, path, BAD_DTYPES[bad](get_path(kwargs, path)))
    with pytest.raises(TypeError) as err:
        case.fn(**kwargs)
    assert name in str(err.value), f"TypeError does not name {name!r}: {err.value}"
    assert_unchanged(inplace_before, [get_path(kwargs, p) for p, _ in case.inplace], "in-place buffer")


# A Python list given for an optimizer's grads is a list of arrays (one per parameter), by design.
LIST_PARAMS = [p for p in INPUT_PARAMS if p.values[0].id != "sgd_step_single_array"]


@pytest.mark.parametrize("case, path, name, kind", LIST_PARAMS)
def test_unreadable_input_is_type_error_naming_argument(case, path, name, kind):
    """A ragged nested list (not an array at all) is a TypeError naming the argument."""
    kwargs = set_path(case.make(), path, [[1.0, 2.0], [3.0]])
    with pytest.raises(TypeError) as err:
        case.fn(**kwargs)
    assert name in str(err.value)


@pytest.mark.parametrize("dtype", GOOD_DTYPES)
@pytest.mark.parametrize("case, path, name, kind", INPUT_PARAMS)
def test_convertible_dtype_gives_the_float32_result(case, path, name, kind, dtype):
    """bool/int/uint/float inputs give exactly the result of the same values cast to float32."""
    base = case.make()
    converted = convert_good(get_path(base, path), dtype, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = case.run(set_path(case.make(), path, converted.astype(np.float32)))
        got = case.run(set_path(case.make(), path, converted))
    assert same(got, want)


@pytest.mark.parametrize("case, path, name, kind", LIST_PARAMS)
def test_python_lists_are_accepted(case, path, name, kind):
    base = case.make()
    value = get_path(base, path)
    want = case.run(set_path(case.make(), path, value))
    got = case.run(set_path(case.make(), path, value.tolist()))
    assert same(got, want)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("case, path, name, kind", INPUT_PARAMS)
def test_noncontiguous_input_gives_the_contiguous_result(case, path, name, kind, layout):
    base = case.make()
    value = get_path(base, path)
    want = case.run(case.make())
    for v in (LAYOUTS[layout](value), LAYOUTS[layout](value.astype(np.float64))):
        np.testing.assert_array_equal(v, value)
        got = case.run(set_path(case.make(), path, v))
        assert same(got, want)


# --------------------------------------------------------------------------------------------- #
# 2. shapes
# --------------------------------------------------------------------------------------------- #

A34, B45, B55 = f32((3, 4)), f32((4, 5)), f32((5, 5))


def _opt(fn, **kw):
    return lambda: fn(**kw)


SHAPE_ERRORS = [
    # (id, call, strings the message must contain)
    ("matmul-inner", lambda: ops.matmul(A34, B55), ["(3, 4)", "(5, 5)"]),
    ("matmul-transpose_a", lambda: ops.matmul(A34, B45, transpose_a=True), ["(4, 3)", "(4, 5)"]),
    ("matmul-transpose_b", lambda: ops.matmul(A34, B45, transpose_b=True), ["(3, 4)", "(5, 4)"]),
    ("matmul-1d", lambda: ops.matmul(f32((4,)), B45), ["(4,)"]),
    ("matmul-3d", lambda: ops.matmul(A34, f32((4, 5, 1))), ["(4, 5, 1)"]),
    ("activation_backward", lambda: ops.activation_backward(f32((3, 4)), f32((4, 3)), "relu"), ["(3, 4)", "(4, 3)"]),
    ("activation_backward-softmax", lambda: ops.activation_backward(f32((2, 3, 4)), f32((2, 3, 5)), "softmax"),
     ["(2, 3, 4)", "(2, 3, 5)"]),
    ("dense_forward-x-kernel", lambda: ops.dense_forward(A34, B55), ["(3, 4)", "(5, 5)"]),
    ("dense_forward-bias", lambda: ops.dense_forward(A34, B45, f32((4,))), ["(4,)", "(4, 5)"]),
    ("dense_forward-bias-2d", lambda: ops.dense_forward(A34, B45, f32((1, 5))), ["(1, 5)", "(4, 5)"]),
    ("dense_forward-x-1d", lambda: ops.dense_forward(f32((4,)), B45), ["(4,)"]),
    ("dense_backward-x-kernel", lambda: ops.dense_backward(f32((3, 5)), A34, B55, f32((3, 5))),
     ["(3, 4)", "(5, 5)"]),
    ("dense_backward-dy", lambda: ops.dense_backward(f32((3, 4)), A34, B45, f32((3, 5))), ["(3, 4)", "(3, 5)"]),
    ("dense_backward-preactivation", lambda: ops.dense_backward(f32((3, 5)), A34, B45, f32((5, 3))),
     ["(5, 3)", "(3, 5)"]),
    ("loss-y_true", lambda: ops.loss_and_grad("mse", f32((4, 3)), f32((4, 2))), ["(4, 3)", "(4, 2)"]),
    ("loss-y_true-transposed", lambda: ops.loss_and_grad("mae", f32((3, 4)), f32((4, 3))), ["(3, 4)", "(4, 3)"]),
    ("loss-y_true-1d-vs-2d", lambda: ops.loss_and_grad("huber", f32((4,)), f32((4, 3))), ["(4,)", "(4, 3)"]),
    ("loss-cce", lambda: ops.loss_and_grad("categorical_crossentropy", f32((4, 2)), f32((4, 3))),
     ["(4, 2)", "(4, 3)"]),
    ("loss-y_pred-3d", lambda: ops.loss_and_grad("mse", f32((2, 2, 2)), f32((2, 2, 2))), ["(2, 2, 2)"]),
    ("loss-sparse-labels", lambda: ops.loss_and_grad("sparse_categorical_crossentropy", LABELS[:3], f32((4, 3))),
     ["(3,)", "4"]),
    ("loss-sparse-labels-2d", lambda: ops.loss_and_grad("sparse_categorical_crossentropy", onehot(LABELS, 3),
                                                         f32((4, 3))), ["(4, 3)"]),
    ("loss-sample_weight", lambda: ops.loss_and_grad("mse", f32((4, 3)), f32((4, 3)), sample_weight=f32((3,))),
     ["(3,)", "4"]),
    ("sgd-grads", _opt(ops.sgd_step, params=f32((3, 4)), grads=f32((4, 3))), ["(4, 3)", "(3, 4)"]),
    ("sgd-grads-list", _opt(ops.sgd_step, params=[f32((3,)), f32((2, 2))], grads=[f32((3,)), f32((4,))]),
     ["(4,)", "(2, 2)"]),
    ("sgd-momentums", _opt(ops.sgd_step, params=f32((3, 4)), grads=f32((3, 4)), momentums=f32((12,)), momentum=0.9),
     ["(12,)", "(3, 4)"]),
    ("adam-m", _opt(ops.adam_step, params=f32((3,)), grads=f32((3,)), m=f32((4,)), v=f32((3,)), step=1),
     ["(4,)", "(3,)"]),
    ("adam-v", _opt(ops.adam_step, params=f32((3,)), grads=f32((3,)), m=f32((3,)), v=f32((1, 3)), step=1),
     ["(1, 3)", "(3,)"]),
    ("adam-v_hat", _opt(ops.adam_step, params=f32((3,)), grads=f32((3,)), m=f32((3,)), v=f32((3,)), step=1,
                        amsgrad=True, v_hat=f32((2,))), ["(2,)", "(3,)"]),
    ("rmsprop-velocities", _opt(ops.rmsprop_step, params=f32((3,)), grads=f32((3,)), velocities=f32((3, 1))),
     ["(3, 1)", "(3,)"]),
    ("rmsprop-average_grads", _opt(ops.rmsprop_step, params=f32((3,)), grads=f32((3,)), velocities=f32((3,)),
                                   centered=True, average_grads=f32((6,))), ["(6,)", "(3,)"]),
    ("adagrad-accumulators", _opt(ops.adagrad_step, params=f32((2, 3)), grads=f32((2, 3)),
                                  accumulators=f32((3, 2))), ["(3, 2)", "(2, 3)"]),
    ("sum_rows-1d", lambda: ops.sum_rows(f32((4,))), ["(4,)"]),
    ("count_correct-binary", lambda: ops.count_correct(f32((4, 3)), f32((4, 2)), "binary"), ["(4, 3)", "(4, 2)"]),
    ("count_correct-categorical", lambda: ops.count_correct(f32((5, 3)), f32((4, 3)), "categorical"),
     ["(5, 3)", "(4, 3)"]),
    ("count_correct-sparse", lambda: ops.count_correct(LABELS[:2], f32((4, 3)), "sparse"), ["(2,)", "4"]),
    ("binary_confusion", lambda: ops.binary_confusion(f32((4,)), f32((5,))), ["(4,)", "(5,)"]),
    ("binary_confusion-2d", lambda: ops.binary_confusion(f32((2, 3)), f32((3, 2))), ["(2, 3)", "(3, 2)"]),
]


@pytest.mark.parametrize("call, contains", [pytest.param(c, s, id=i) for i, c, s in SHAPE_ERRORS])
def test_wrong_shape_is_value_error_naming_shapes(call, contains):
    with pytest.raises(ValueError) as err:
        call()
    for s in contains:
        assert s in str(err.value), f"{s!r} not in message: {err.value}"


def test_list_lengths_must_match():
    p = [f32((3,)), f32((2,))]
    before = snapshot(p)
    with pytest.raises(ValueError):
        ops.sgd_step(p, [f32((3,))])
    with pytest.raises(ValueError):
        ops.adam_step(p, [f32((3,)), f32((2,))], m=[f32((3,))], v=[f32((3,)), f32((2,))], step=1)
    with pytest.raises(ValueError):
        ops.adagrad_step(p, [f32((3,)), f32((2,))], [f32((3,)), f32((2,)), f32((1,))])
    assert_unchanged(before, p)


# --------------------------------------------------------------------------------------------- #
# 3. out= buffers
# --------------------------------------------------------------------------------------------- #


def _bad_outs(shape):
    good = np.full(shape, 7.0, np.float32)
    bad = {
        "wrong-shape-extra-dim": np.full(shape + (1,), 7.0, np.float32),
        "wrong-shape-bigger": np.full((shape[0] + 1,) + shape[1:], 7.0, np.float32),
        "wrong-shape-flat": np.full((int(np.prod(shape)),) if len(shape) > 1 else (1, shape[0]), 7.0, np.float32),
        "float64": good.astype(np.float64),
        "float16": good.astype(np.float16),
        "int32": good.astype(np.int32),
        "non-contiguous": strided(good),
        "negative-strides": reversed_view(good),
        "read-only": readonly(good),
        "list": good.tolist(),
    }
    if len(shape) >= 2:
        bad["fortran"] = np.asfortranarray(good)
    return bad


@pytest.mark.parametrize("variant", list(_bad_outs((3, 4))))
@pytest.mark.parametrize("case", OUT_CASES)
def test_bad_out_is_value_error_and_untouched(case, variant):
    name, shape = case.out
    bad = _bad_outs(tuple(shape))
    if variant not in bad:
        pytest.skip("no such layout for a 1-D out")
    out = bad[variant]
    before = snapshot([out]) if isinstance(out, np.ndarray) else None
    kwargs = case.make()
    kwargs[name] = out
    with pytest.raises(ValueError):
        case.fn(**kwargs)
    if before is not None:
        assert_unchanged(before, [out], "out")


@pytest.mark.parametrize("case", OUT_CASES)
def test_good_out_is_filled_and_returned(case):
    name, shape = case.out
    want = case.run(case.make())[0]
    out = np.full(shape, np.nan, np.float32)
    kwargs = case.make()
    kwargs[name] = out
    if case.fn is ops.matmul and kwargs.get("beta"):  # matmul with beta reads C: give it the same C
        out[...] = case.make()[name]
    got = case.fn(**kwargs)
    got_out = got[1] if name == "grad_out" else (got[0] if isinstance(got, tuple) else got)
    assert got_out is out
    assert same(got, want)


def test_matmul_beta_needs_out():
    with pytest.raises(ValueError):
        ops.matmul(A34, B45, beta=1.0)


# --------------------------------------------------------------------------------------------- #
# 4. in-place optimizer buffers
# --------------------------------------------------------------------------------------------- #

INPLACE_BAD = {
    # variant: (make bad buffer from good, expected exception)
    "float64": (lambda a: a.astype(np.float64), TypeError),
    "float16": (lambda a: a.astype(np.float16), TypeError),
    "int32": (lambda a: a.astype(np.int32), TypeError),
    "complex64": (lambda a: a.astype(np.complex64), TypeError),
    "list": (lambda a: a.tolist(), TypeError),
    "non-contiguous": (strided, ValueError),
    "negative-strides": (reversed_view, ValueError),
    "fortran": (lambda a: np.asfortranarray(a), ValueError),
    "read-only": (readonly, ValueError),
    "wrong-shape": (lambda a: np.zeros(a.size + 1, np.float32), ValueError),
}


@pytest.mark.parametrize("variant", list(INPLACE_BAD))
@pytest.mark.parametrize("case, path, name", INPLACE_PARAMS)
def test_bad_inplace_buffer_raises_and_changes_nothing(case, path, name, variant):
    make_bad, exc = INPLACE_BAD[variant]
    kwargs = case.make()
    good = get_path(kwargs, path)
    if variant == "fortran" and (good.ndim < 2 or min(good.shape) < 2):
        pytest.skip("a 1-D buffer is Fortran-contiguous too")
    bad = make_bad(good)
    kwargs = set_path(kwargs, path, bad)
    everything = [get_path(kwargs, p) for p, _ in case.inplace if p != path] + \
                 [get_path(kwargs, p) for p, _, _ in case.inputs]
    before = snapshot(everything)
    bad_before = snapshot([bad]) if isinstance(bad, np.ndarray) else None
    with pytest.raises(exc) as err:
        case.fn(**kwargs)
    if exc is TypeError:
        assert name in str(err.value), f"TypeError does not name {name!r}: {err.value}"
    assert_unchanged(before, everything, "optimizer buffer")
    if bad_before is not None:
        assert_unchanged(bad_before, [bad], "rejected buffer")


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES if c.inplace and len(c.inplace) > 2])
def test_overlapping_inplace_buffers_are_rejected(case):
    kwargs = case.make()
    (p0, _), (s0, _) = case.inplace[0], case.inplace[2]
    kwargs = set_path(kwargs, s0, get_path(kwargs, p0))  # state aliases params[0]
    before = snapshot([get_path(kwargs, p) for p, _ in case.inplace])
    with pytest.raises(ValueError):
        case.fn(**kwargs)
    assert_unchanged(before, [get_path(kwargs, p) for p, _ in case.inplace])


def test_grads_aliasing_params_is_rejected():
    p = f32((4,))
    before = snapshot([p])
    with pytest.raises(ValueError):
        ops.sgd_step(p, p)
    with pytest.raises(ValueError):
        ops.adagrad_step(p, p[::-1].copy(), p[:4])
    assert_unchanged(before, [p])


@pytest.mark.parametrize("call", [
    pytest.param(lambda p, g: ops.sgd_step(p, g, momentum=0.9), id="sgd-momentum-without-momentums"),
    pytest.param(lambda p, g: ops.adam_step(p, g, None, f32((3,)), step=1), id="adam-m-missing"),
    pytest.param(lambda p, g: ops.adam_step(p, g, f32((3,)), None, step=1), id="adam-v-missing"),
    pytest.param(lambda p, g: ops.adam_step(p, g, f32((3,)), f32((3,)), step=1, amsgrad=True),
                 id="adam-amsgrad-without-v_hat"),
    pytest.param(lambda p, g: ops.rmsprop_step(p, g, None), id="rmsprop-velocities-missing"),
    pytest.param(lambda p, g: ops.rmsprop_step(p, g, f32((3,)), momentum=0.5), id="rmsprop-momentums-missing"),
    pytest.param(lambda p, g: ops.rmsprop_step(p, g, f32((3,)), centered=True), id="rmsprop-average-missing"),
    pytest.param(lambda p, g: ops.adagrad_step(p, g, None), id="adagrad-accumulators-missing"),
    pytest.param(lambda p, g: ops.sgd_step(p, g, clipnorm=1.0, clipvalue=1.0), id="two-clips"),
    pytest.param(lambda p, g: ops.sgd_step(p, g, clipnorm=0.0), id="clipnorm-zero"),
    pytest.param(lambda p, g: ops.sgd_step(p, g, global_clipnorm=-1.0), id="global_clipnorm-negative"),
    pytest.param(lambda p, g: ops.sgd_step(p, g, clipvalue=float("nan")), id="clipvalue-nan"),
    pytest.param(lambda p, g: ops.adam_step(p, g, f32((3,)), f32((3,)), step=0), id="adam-step-0"),
    pytest.param(lambda p, g: ops.adam_step(p, g, f32((3,)), f32((3,)), step=-1), id="adam-step-negative"),
    pytest.param(lambda p, g: ops.adam_step(p, g, f32((3,)), f32((3,)), step=1.5), id="adam-step-float"),
    pytest.param(lambda p, g: ops.adam_step(p, g, f32((3,)), f32((3,)), step=True), id="adam-step-bool"),
    pytest.param(lambda p, g: ops.adamw_step(p, g, f32((3,)), f32((3,)), step=0), id="adamw-step-0"),
])
def test_bad_optimizer_options_are_value_errors_and_change_nothing(call):
    p, g = f32((3,), 1), f32((3,), 2)
    before = snapshot([p, g])
    with pytest.raises(ValueError):
        call(p, g)
    assert_unchanged(before, [p, g])


# --------------------------------------------------------------------------------------------- #
# 5. names and scalar options
# --------------------------------------------------------------------------------------------- #

ACTIVATION_CALLS = {
    "activation_forward": lambda act: ops.activation_forward(A34, act),
    "activation_backward": lambda act: ops.activation_backward(A34, A34, act),
    "dense_forward": lambda act: ops.dense_forward(A34, B45, activation=act),
    "dense_backward": lambda act: ops.dense_backward(f32((3, 5)), A34, B45, f32((3, 5)), act),
}


@pytest.mark.parametrize("name", ["relux", "", "soft_max", "gelu_tanh", "linear ", "leaky-relu"])
@pytest.mark.parametrize("fn", list(ACTIVATION_CALLS))
def test_unknown_activation_is_value_error(fn, name):
    with pytest.raises(ValueError) as err:
        ACTIVATION_CALLS[fn](name)
    assert repr(name) in str(err.value) or name in str(err.value)


@pytest.mark.parametrize("name", [3, 1.5, b"relu", ("relu",)])
@pytest.mark.parametrize("fn", list(ACTIVATION_CALLS))
def test_non_string_activation_is_clean_error(fn, name):
    with pytest.raises((TypeError, ValueError)):
        ACTIVATION_CALLS[fn](name)


@pytest.mark.parametrize("fn", list(ACTIVATION_CALLS))
def test_activation_names_case_insensitive_and_aliases(fn):
    same_as = {"ReLU": "relu", "swish": "silu", None: "linear"}
    for alias, name in same_as.items():
        assert same(ACTIVATION_CALLS[fn](alias), ACTIVATION_CALLS[fn](name))


@pytest.mark.parametrize("loss", ["mse2", "", "crossentropy", "sparse", None, 3, "hinge_loss"])
def test_unknown_loss_is_value_error(loss):
    with pytest.raises(ValueError):
        ops.loss_and_grad(loss, f32((4, 3)), f32((4, 3)))


@pytest.mark.parametrize("ls", [-0.1, 1.5, float("nan")])
def test_label_smoothing_out_of_range_is_value_error(ls):
    with pytest.raises(ValueError):
        ops.loss_and_grad("categorical_crossentropy", onehot(LABELS, 3), f32((4, 3), 1, 0.1, 1), label_smoothing=ls)


@pytest.mark.parametrize("kind", ["bin", "", None, "Binary", 0])
def test_unknown_count_kind_is_value_error(kind):
    with pytest.raises(ValueError):
        ops.count_correct(f32((4, 3)), f32((4, 3)), kind)


DROPOUT_CALLS = {
    "dropout_forward": lambda rate, **kw: ops.dropout_forward(f32((3, 4)), rate, 1, **kw),
    "dropout_backward": lambda rate, **kw: ops.dropout_backward(f32((3, 4)), rate, 1, **kw),
    "dropout_mask": lambda rate, **kw: ops.dropout_mask((3, 4), rate, 1),
}


@pytest.mark.parametrize("rate", [-0.1, -1e-30, 1.0, 1.5, float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("fn", list(DROPOUT_CALLS))
def test_dropout_rate_outside_0_1_is_value_error(fn, rate):
    out = np.full((3, 4), 5.0, np.float32)
    before = snapshot([out])
    with pytest.raises(ValueError):
        DROPOUT_CALLS[fn](rate, out=out)
    assert_unchanged(before, [out], "out")


@pytest.mark.parametrize("rate", [0.0, 0.5, 0.999, float(np.nextafter(np.float32(1), np.float32(0))),
                                  np.nextafter(1.0, 0.0), 1.0 - 1e-9])
def test_dropout_rate_just_below_one_is_valid(rate):
    """Every rate in [0, 1) is valid (spec): the result is the reference's (nearly everything dropped
    close to 1), never a ValueError because the rate rounds to 1.0 in float32."""
    x = f32((64,), 3)
    got = ops.dropout_forward(x, rate, 11, 5)
    want = R.dropout_forward(x, rate, 11, 5)
    np.testing.assert_allclose(got, want, rtol=2e-7, atol=0)
    assert np.array_equal(ops.dropout_mask((64,), rate, 11, 5), R.dropout_mask((64,), rate, 11, 5))


@pytest.mark.parametrize("seed", [1.5, "1", None, True])
def test_dropout_seed_must_be_an_integer(seed):
    with pytest.raises(TypeError):
        ops.dropout_forward(f32((3,)), 0.5, seed)


def test_dropout_seed_any_integer_wraps_to_uint64():
    x = f32((16,), 4)
    for seed, same_seed in [(-1, 2**64 - 1), (2**64 + 5, 5), (np.uint64(7), 7), (np.int8(-3), 2**64 - 3)]:
        assert same(ops.dropout_forward(x, 0.5, seed), ops.dropout_forward(x, 0.5, same_seed))
        assert same(ops.dropout_forward(x, 0.5, 1, seed), ops.dropout_forward(x, 0.5, 1, same_seed))


@pytest.mark.parametrize("shape", [(-1,), (2, -3), "ab", 1.5])
def test_dropout_mask_bad_shape_is_clean_error(shape):
    with pytest.raises((TypeError, ValueError)):
        ops.dropout_mask(shape, 0.5, 1)


@pytest.mark.parametrize("counter, key", [([0, 0, 0], [0, 0]), ([0] * 4, [0]), ([-1, 0, 0, 0], [0, 0]),
                                          ([2**32, 0, 0, 0], [0, 0]), ([0] * 4, [0, 2**32])])
def test_philox_bad_words_are_value_errors(counter, key):
    with pytest.raises((ValueError, TypeError)):
        ops.philox4x32(counter, key)


@pytest.mark.parametrize("call", [
    pytest.param(lambda: ops.matmul(A34, B45, alpha=1j), id="matmul-alpha-complex"),
    pytest.param(lambda: ops.matmul(A34, B45, alpha="1"), id="matmul-alpha-str"),
    pytest.param(lambda: ops.matmul(A34, B45, beta=None), id="matmul-beta-None"),
    pytest.param(lambda: ops.activation_forward(A34, "leaky_relu", negative_slope="x"), id="negative_slope-str"),
    pytest.param(lambda: ops.activation_forward(A34, "elu", alpha=[1.0]), id="elu-alpha-list"),
    pytest.param(lambda: ops.loss_and_grad("huber", A34, A34, delta="1"), id="delta-str"),
    pytest.param(lambda: ops.sgd_step(f32((3,)), f32((3,)), learning_rate="0.1"), id="learning_rate-str"),
    pytest.param(lambda: ops.dropout_forward(A34, "0.5", 1), id="rate-str"),
    pytest.param(lambda: ops.count_correct(A34, A34, "binary", threshold=None), id="threshold-None"),
    pytest.param(lambda: ops.binary_confusion(A34, A34, threshold=1j), id="threshold-complex"),
])
def test_non_number_scalar_option_is_type_error(call):
    with pytest.raises(TypeError):
        call()


# --------------------------------------------------------------------------------------------- #
# 6. sparse labels
# --------------------------------------------------------------------------------------------- #

SPARSE_CALLS = {
    "loss": lambda y, p: ops.loss_and_grad("sparse_categorical_crossentropy", y, p),
    "loss-logits": lambda y, p: ops.loss_and_grad("sparse_categorical_crossentropy", y, p, from_logits=True,
                                                  label_smoothing=0.1),
    "count_correct": lambda y, p: ops.count_correct(y, p, "sparse"),
}


def _label_pattern(value, got):
    """The message names the label (as int or float) ..."""
    v = float(value)
    forms = {str(value), repr(value), str(int(v)) if v == int(v) else str(v), str(v)}
    return any(re.search(r"(?<![\d.])" + re.escape(f) + r"(?![\d])", got) for f in forms)


@pytest.mark.parametrize("dtype", ["int64", "int32", "int8", "float64", "float32"])
@pytest.mark.parametrize("shape", ["N", "N1"])
@pytest.mark.parametrize("index", [0, 3, 6])
@pytest.mark.parametrize("bad", [-1, 4, 100])
@pytest.mark.parametrize("fn", list(SPARSE_CALLS))
def test_sparse_label_out_of_range_names_label_and_index(fn, bad, index, shape, dtype):
    labels = np.array([0, 1, 2, 3, 0, 1, 2], dtype=np.int64)
    labels[index] = bad
    if index != 6:
        labels[6] = -7  # a later bad label: the first one must be named
    labels = labels.astype(dtype)
    if shape == "N1":
        labels = labels.reshape(-1, 1)
    pred = f32((7, 4), 1, 0.1, 1.0)
    grad_out = np.full((7, 4), 3.0, np.float32)
    with pytest.raises(ValueError) as err:
        if fn == "count_correct":
            SPARSE_CALLS[fn](labels, pred)
        else:
            ops.loss_and_grad("sparse_categorical_crossentropy", labels, pred, grad_out=grad_out)
    msg = str(err.value)
    assert _label_pattern(bad, msg), f"label {bad} not named: {msg}"
    assert re.search(rf"\bindex {index}\b", msg), f"index {index} not named: {msg}"
    assert np.all(grad_out == 3.0), "grad_out written by a call that failed"


@pytest.mark.parametrize("bad", [1.5, -0.5, 3.0000002, float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("fn", list(SPARSE_CALLS))
def test_sparse_non_integral_float_label_is_value_error(fn, bad):
    labels = np.array([0, 1, 2, 1], dtype=np.float64)
    labels[2] = bad
    with pytest.raises(ValueError) as err:
        SPARSE_CALLS[fn](labels, f32((4, 4), 1, 0.1, 1.0))
    assert "index 2" in str(err.value)


@pytest.mark.parametrize("fn", list(SPARSE_CALLS))
def test_sparse_edge_labels(fn):
    p = f32((3, 4), 1, 0.1, 1.0)
    SPARSE_CALLS[fn](np.array([0, 3, 3]), p)  # 0 and C - 1 are valid
    SPARSE_CALLS[fn](np.array([0.0, 3.0, -0.0]), p)  # integral floats (and -0.0) are valid
    with pytest.raises(ValueError):
        SPARSE_CALLS[fn](np.array([0, 1, 255], np.uint8), p)
    with pytest.raises(ValueError):  # bool True is label 1, outside [0, 1)
        SPARSE_CALLS[fn](np.array([False, True, False]), p[:, :1])
    with pytest.raises(ValueError):  # int64 extremes
        SPARSE_CALLS[fn](np.array([0, np.iinfo(np.int64).max, 1]), p)
    with pytest.raises(ValueError):
        SPARSE_CALLS[fn](np.array([0, np.iinfo(np.int64).min, 1]), p)
    with pytest.raises(ValueError):  # float label too big for int64
        SPARSE_CALLS[fn](np.array([0.0, 1e30, 1.0]), p)


@pytest.mark.parametrize("bad", list(BAD_DTYPES))
@pytest.mark.parametrize("fn", list(SPARSE_CALLS))
def test_sparse_labels_bad_dtype_is_type_error(fn, bad):
    with pytest.raises(TypeError) as err:
        SPARSE_CALLS[fn](BAD_DTYPES[bad](np.array([0, 1, 2])), f32((3, 4)))
    assert "y_true" in str(err.value)


def test_sparse_no_classes_is_value_error():
    with pytest.raises(ValueError):
        ops.loss_and_grad("sparse_categorical_crossentropy", np.array([0, 0]), np.zeros((2, 0), np.float32))
    with pytest.raises(ValueError):
        ops.count_correct(np.array([0, 0]), np.zeros((2, 0), np.float32), "sparse")


# --------------------------------------------------------------------------------------------- #
# 7. the raw C++ layer validates on its own
# --------------------------------------------------------------------------------------------- #

ACT_RELU, ACT_SOFTMAX = 1, 4


class CoreCall:
    """A valid raw _core call: fn(*args); ``arrays`` = [(index, name, role, shape_mutable)],
    role 'in' (read), 'out' (written), 'labels' (int64 read)."""

    def __init__(self, id, fn, make, arrays):
        self.id, self.fn, self.make, self.arrays = id, fn, make, arrays

    def call(self, args):
        return self.fn(*args)


def _core_opt_args(kind, nstate):
    def make():
        params = [f32((3, 4), 1), f32((5,), 2)]
        grads = [f32((3, 4), 3), f32((5,), 4)]
        states = [[f32((3, 4), 5 + s, 0, 1), f32((5,), 9 + s, 0, 1)] if s < nstate else None for s in range(3)]
        return [kind, params, grads, *states, 0.01, 0.0, False, 0, 0.0]  # lr, weight_decay, nesterov, clip_kind, clip
    return make


CORE_CALLS = [
    CoreCall("gemm", _core.gemm, lambda: [f32((3, 4)), f32((4, 5)), f32((3, 5)), False, False, 1.0, 0.0],
             [(0, "a", "in"), (1, "b", "in"), (2, "out", "out")]),
    CoreCall("gemm-transposed", _core.gemm, lambda: [f32((4, 3)), f32((5, 4)), f32((3, 5)), True, True, 1.0, 1.0],
             [(0, "a", "in"), (1, "b", "in"), (2, "out", "out")]),
    CoreCall("activation_forward", _core.activation_forward, lambda: [f32((2, 3, 4)), f32((2, 3, 4)), ACT_RELU, 0.0],
             [(0, "x", "in"), (1, "out", "out")]),
    CoreCall("activation_forward-softmax", _core.activation_forward,
             lambda: [f32((2, 3, 4)), f32((2, 3, 4)), ACT_SOFTMAX, 0.0], [(0, "x", "in"), (1, "out", "out")]),
    CoreCall("activation_backward", _core.activation_backward,
             lambda: [f32((3, 4)), f32((3, 4)), f32((3, 4)), ACT_SOFTMAX, 0.0],
             [(0, "dy", "in"), (1, "x", "in"), (2, "out", "out")]),
    CoreCall("dense_forward", _core.dense_forward,
             lambda: [f32((3, 4)), f32((4, 5)), f32((5,)), f32((3, 5)), f32((3, 5)), ACT_RELU, 0.0],
             [(0, "x", "in"), (1, "kernel", "in"), (2, "bias", "in"), (3, "out", "out"), (4, "preactivation", "out")]),
    CoreCall("dense_backward", _core.dense_backward,
             lambda: [f32((3, 5)), f32((3, 4)), f32((4, 5)), f32((3, 5)), ACT_RELU, 0.0, f32((3, 5)), f32((3, 4)),
                      f32((4, 5)), f32((5,))],
             [(0, "dy", "in"), (1, "x", "in"), (2, "kernel", "in"), (3, "preactivation", "in"), (6, "dz", "out"),
              (7, "dx", "out"), (8, "dkernel", "out"), (9, "dbias", "out")]),
    CoreCall("loss-mse", _core.loss,
             lambda: [0, False, 0.0, 1.0, f32((4, 3)), None, f32((4, 3)), f32((4,)), f32((4, 3))],
             [(4, "y_true", "in"), (6, "y_pred", "in"), (7, "sample_weight", "in"), (8, "grad", "out")]),
    CoreCall("loss-sparse", _core.loss,
             lambda: [5, True, 0.0, 1.0, None, LABELS.copy(), f32((4, 3)), None, f32((4, 3))],
             [(5, "labels", "labels"), (6, "y_pred", "in"), (8, "grad", "out")]),
    CoreCall("dropout", _core.dropout, lambda: [f32((3, 4)), f32((3, 4)), 0.5, 1, 0],
             [(0, "x", "in"), (1, "out", "out")]),
    CoreCall("sum", _core.sum, lambda: [f32((3, 4))], [(0, "x", "in")]),
    CoreCall("sum_squares", _core.sum_squares, lambda: [f32((3, 4))], [(0, "x", "in")]),
    CoreCall("col_sums", _core.col_sums, lambda: [f32((3, 4)), f32((4,))], [(0, "x", "in"), (1, "out", "out")]),
    CoreCall("count_correct-binary", _core.count_correct, lambda: [0, f32((4, 3)), None, f32((4, 3)), 0.5],
             [(1, "y_true", "in"), (3, "y_pred", "in")]),
    CoreCall("count_correct-sparse", _core.count_correct, lambda: [2, None, LABELS.copy(), f32((4, 3)), 0.5],
             [(2, "labels", "labels"), (3, "y_pred", "in")]),
    CoreCall("binary_confusion", _core.binary_confusion, lambda: [f32((6,)), f32((6,)), 0.5],
             [(0, "y_true", "in"), (1, "y_pred", "in")]),
]
for _kind, _n, _id in [(0, 1, "sgd"), (1, 3, "adam"), (2, 3, "rmsprop"), (3, 1, "adagrad")]:
    CORE_CALLS.append(CoreCall(f"optimizer_step-{_id}", _core.optimizer_step, _core_opt_args(_kind, _n),
                               [((1, 0), "params", "out"), ((1, 1), "params", "out"), ((2, 0), "grads", "in"),
                                ((2, 1), "grads", "in")] +
                               [((3 + s, i), f"state {s}", "out") for s in range(_n) for i in range(2)]))


def _core_get(args, index):
    return args[index] if isinstance(index, int) else args[index[0]][index[1]]


def _core_set(args, index, value):
    args = list(args)
    if isinstance(index, int):
        args[index] = value
    else:
        seq = list(args[index[0]])
        seq[index[1]] = value
        args[index[0]] = seq
    return args


def _core_outputs(call, args):
    return [_core_get(args, i) for i, _, role in call.arrays if role == "out"]


def _grow_last(a):
    return np.zeros(a.shape[:-1] + (a.shape[-1] + 1,), dtype=a.dtype)


CORE_MUTATIONS = {
    # variant: (applies to roles, mutation, expected exceptions)
    "float64": (("in", "out"), lambda a: a.astype(np.float64), TypeError),
    "float16": (("in", "out"), lambda a: a.astype(np.float16), TypeError),
    "int32": (("in", "out", "labels"), lambda a: a.astype(np.int32), TypeError),
    "int64-for-float": (("in", "out"), lambda a: a.astype(np.int64), TypeError),
    "float32-labels": (("labels",), lambda a: a.astype(np.float32), TypeError),
    "complex64": (("in", "out"), lambda a: a.astype(np.complex64), TypeError),
    "object": (("in", "out", "labels"), lambda a: a.astype(object), TypeError),
    "non-contiguous": (("in", "out", "labels"), strided, ValueError),
    "negative-strides": (("in", "out", "labels"), reversed_view, ValueError),
    "fortran": (("in", "out"), lambda a: np.asfortranarray(a), ValueError),
    "read-only": (("out",), readonly, ValueError),
    "wrong-shape": (("in", "out", "labels"), _grow_last, ValueError),
    "extra-dim": (("in", "out", "labels"), lambda a: a[..., None], ValueError),
    "list": (("in", "out", "labels"), lambda a: a.tolist(), (TypeError, ValueError)),
}
CORE_PARAMS = [pytest.param(c, i, n, role, v, id=f"{c.id}-{n}{'' if isinstance(i, int) else f'[{i[1]}]'}-{v}")
               for c in CORE_CALLS for i, n, role in c.arrays for v, (roles, _, _) in CORE_MUTATIONS.items()
               if role in roles]


@pytest.mark.parametrize("call", [pytest.param(c, id=c.id) for c in CORE_CALLS])
def test_core_valid_calls_run(call):
    call.call(call.make())


@pytest.mark.parametrize("call, index, name, role, variant", CORE_PARAMS)
def test_core_rejects_bad_arrays_cleanly(call, index, name, role, variant):
    _, mutate, exc = CORE_MUTATIONS[variant]
    args = call.make()
    good = _core_get(args, index)
    if variant == "fortran" and (good.ndim < 2 or min(good.shape) < 2):
        pytest.skip("a 1-D array is Fortran- and C-contiguous")
    if variant == "wrong-shape" and call.id in ("sum", "sum_squares"):
        pytest.skip("sum accepts any shape")
    if variant == "extra-dim" and call.id in ("sum", "sum_squares"):
        pytest.skip("sum accepts any shape")
    if variant == "wrong-shape" and call.id == "count_correct-sparse" and name == "y_pred":
        pytest.skip("more classes is still a valid y_pred for the labels")
    args = _core_set(args, index, mutate(good))
    outputs = [o for o in _core_outputs(call, args) if isinstance(o, np.ndarray)]
    before = snapshot(outputs)
    if variant == "list" and role == "labels":
        # labels are a py::object that pybind11 may convert (a list of ints becomes int64): either a
        # clean error or exactly the result of the int64 array.
        try:
            got = call.call(args)
        except (TypeError, ValueError):
            assert_unchanged(before, outputs, "output")
            return
        valid = call.make()
        assert same(got, call.call(valid)) and same(outputs, _core_outputs(call, valid))
        return
    with pytest.raises(exc):
        call.call(args)
    assert_unchanged(before, outputs, "output")


@pytest.mark.parametrize("call, index, name, role", [
    pytest.param(c, i, n, role, id=f"{c.id}-{n}{'' if isinstance(i, int) else f'[{i[1]}]'}")
    for c in CORE_CALLS for i, n, role in c.arrays if role in ("in", "labels")])
def test_core_accepts_read_only_inputs(call, index, name, role):
    args = call.make()
    want_args = call.make()
    want = call.call(want_args)
    args = _core_set(args, index, readonly(_core_get(args, index)))
    got = call.call(args)
    assert same(got, want)
    assert same(_core_outputs(call, args), _core_outputs(call, want_args))


@pytest.mark.parametrize("call, index, value", [
    pytest.param(CORE_CALLS[2], 2, -1, id="activation-kind-negative"),
    pytest.param(CORE_CALLS[2], 2, 15, id="activation-kind-15"),
    pytest.param(CORE_CALLS[4], 3, 10**6, id="activation_backward-kind-huge"),
    pytest.param(CORE_CALLS[5], 5, 99, id="dense_forward-kind"),
    pytest.param(CORE_CALLS[6], 4, -3, id="dense_backward-kind"),
    pytest.param(CORE_CALLS[7], 0, 15, id="loss-kind-15"),
    pytest.param(CORE_CALLS[7], 0, -1, id="loss-kind-negative"),
    pytest.param(CORE_CALLS[9], 2, 1.0, id="dropout-rate-1"),
    pytest.param(CORE_CALLS[9], 2, -0.5, id="dropout-rate-negative"),
    pytest.param(CORE_CALLS[9], 2, float("nan"), id="dropout-rate-nan"),
    pytest.param(CORE_CALLS[13], 0, 3, id="count-kind-3"),
    pytest.param(CORE_CALLS[-1], 0, 4, id="optimizer-kind-4"),
    pytest.param(CORE_CALLS[-1], 0, -1, id="optimizer-kind-negative"),
    pytest.param(CORE_CALLS[-1], 9, 4, id="clip-kind-4"),
    pytest.param(CORE_CALLS[-1], 9, -1, id="clip-kind-negative"),
])
def test_core_rejects_bad_kinds_and_options(call, index, value):
    args = call.make()
    args[index] = value
    outputs = [o for o in _core_outputs(call, args) if isinstance(o, np.ndarray)]
    before = snapshot(outputs)
    with pytest.raises(ValueError):
        call.call(args)
    assert_unchanged(before, outputs, "output")


def test_core_ids_match_the_calls():  # guards the indices used above
    assert [CORE_CALLS[i].id for i in (2, 4, 5, 6, 7, 9, 13)] == [
        "activation_forward", "activation_backward", "dense_forward", "dense_backward", "loss-mse", "dropout",
        "count_correct-binary"]
    assert CORE_CALLS[-1].id == "optimizer_step-adagrad"


@pytest.mark.parametrize("bad", [-1, 3, 4, 2**40])
def test_core_labels_out_of_range_are_value_errors(bad):
    labels = LABELS.copy()
    labels[2] = bad
    grad = np.full((4, 3), 9.0, np.float32)
    with pytest.raises(ValueError) as err:
        _core.loss(5, False, 0.0, 1.0, None, labels, f32((4, 3)), None, grad)
    assert str(bad) in str(err.value) and "index 2" in str(err.value)
    assert np.all(grad == 9.0)


@pytest.mark.parametrize("bad", [-1, 3, 2**40, -(2**62)])
def test_core_count_correct_labels_out_of_range_never_crash(bad):
    labels = LABELS.copy()
    labels[1] = bad
    try:
        n = _core.count_correct(2, None, labels, f32((4, 3)), 0.5)
    except ValueError:
        return
    assert 0 <= n <= 3  # the bad row cannot match an argmax


@pytest.mark.parametrize("variant", ["array", "nested-list", "tuple-of-arrays", "int", "list-with-None"])
@pytest.mark.parametrize("slot", ["params", "grads", "state"])
def test_core_optimizer_non_list_buffers_are_type_or_value_errors(slot, variant):
    """Raw optimizer_step with a buffer list that is not a list of arrays: TypeError/ValueError, nothing written."""
    args = _core_opt_args(1, 3)()
    buffers = args[1] + args[3] + args[4] + args[5]  # params and the three states
    before = snapshot(buffers)
    idx = {"params": 1, "grads": 2, "state": 3}[slot]
    value = {"array": f32((3, 4)), "nested-list": [[1.0, 2.0]], "tuple-of-arrays": tuple(args[idx]), "int": 3,
             "list-with-None": [args[idx][0], None]}[variant]
    args[idx] = value
    try:
        call_ok = True
        _core.optimizer_step(*args)
    except (TypeError, ValueError):
        call_ok = False
    if variant == "tuple-of-arrays" and call_ok:
        return  # a tuple of the right arrays is a fine sequence
    assert not call_ok, "accepted a malformed buffer list"
    assert_unchanged(before, buffers, "optimizer buffer")


def test_core_optimizer_bad_second_buffer_writes_nothing():
    args = _core_opt_args(1, 3)()
    params, states = args[1], args[3] + args[4] + args[5]
    before = snapshot(params + states)
    args[2] = [args[2][0], args[2][1].astype(np.float64)]
    with pytest.raises(TypeError):
        _core.optimizer_step(*args)
    args[2] = [args[2][0], f32((6,))]
    with pytest.raises(ValueError):
        _core.optimizer_step(*args)
    args[2] = [args[2][0], f32((5,))]
    args[4] = [args[4][0], readonly(args[4][1])]
    with pytest.raises(ValueError):
        _core.optimizer_step(*args)
    assert_unchanged(before[:2], params)
    assert_unchanged(before[2:4], args[3])


def test_core_optimizer_missing_state_is_value_error():
    for kind, states in [(1, [None, None, None]), (2, [None, None, None]), (3, [None, None, None])]:
        args = _core_opt_args(kind, 0)()
        before = snapshot(args[1])
        with pytest.raises(ValueError):
            _core.optimizer_step(*args)
        assert_unchanged(before, args[1])
    args = _core_opt_args(1, 1)()  # adam with m but without v
    with pytest.raises(ValueError):
        _core.optimizer_step(*args)


def test_core_optimizer_state_list_length_mismatch():
    args = _core_opt_args(3, 1)()
    args[3] = args[3][:1]
    before = snapshot(args[1])
    with pytest.raises(ValueError):
        _core.optimizer_step(*args)
    assert_unchanged(before, args[1])


def test_core_loss_missing_y_true_or_labels_is_clean_error():
    with pytest.raises((TypeError, ValueError)):
        _core.loss(0, False, 0.0, 1.0, None, None, f32((4, 3)), None, f32((4, 3)))
    with pytest.raises((TypeError, ValueError)):
        _core.loss(5, False, 0.0, 1.0, None, None, f32((4, 3)), None, f32((4, 3)))
    with pytest.raises((TypeError, ValueError)):
        _core.count_correct(2, None, None, f32((4, 3)), 0.5)
    with pytest.raises((TypeError, ValueError)):
        _core.count_correct(1, None, None, f32((4, 3)), 0.5)


@pytest.mark.parametrize("fn, args", [
    pytest.param(_core.gemm, [f32((3,)), f32((3, 1)), f32((1, 1)), True, False, 1.0, 0.0], id="gemm-1d"),
    pytest.param(_core.gemm, [f32((3, 4, 1)), f32((4, 5)), f32((3, 5)), False, False, 1.0, 0.0], id="gemm-3d"),
    pytest.param(_core.col_sums, [f32((4,)), f32((4,))], id="col_sums-1d"),
    pytest.param(_core.loss, [0, False, 0.0, 1.0, f32((4,)), None, f32((4,)), None, f32((4,))], id="loss-1d"),
    pytest.param(_core.count_correct, [0, f32((4,)), None, f32((4,)), 0.5], id="count-1d"),
    pytest.param(_core.dense_forward, [f32((3,)), f32((3, 2)), None, f32((2,)), None, 0, 0.0], id="dense-1d"),
    pytest.param(_core.philox4x32, [[0, 0, 0], [0, 0]], id="philox-3-words"),
    pytest.param(_core.philox4x32, [[0, 0, 0, 0], [0, 0, 0]], id="philox-3-key-words"),
    pytest.param(_core.philox4x32, [[-1, 0, 0, 0], [0, 0]], id="philox-negative"),
    pytest.param(_core.philox4x32, [[2**32, 0, 0, 0], [0, 0]], id="philox-too-big"),
    pytest.param(_core.set_num_threads, [0], id="threads-0"),
    pytest.param(_core.set_isa, ["no-such-isa"], id="isa-unknown"),
    pytest.param(_core.sum, [3.0], id="sum-float"),
    pytest.param(_core.sum, [None], id="sum-None"),
])
def test_core_other_bad_arguments_are_clean_errors(fn, args):
    isa, threads = _core.current_isa(), gradsmith.get_num_threads()
    try:
        with pytest.raises((TypeError, ValueError)):
            fn(*args)
    finally:
        _core.set_isa(isa)
        gradsmith.set_num_threads(threads)


def test_core_zero_sized_arrays_are_fine():
    e = np.zeros((0, 4), np.float32)
    _core.gemm(e, f32((4, 3)), np.zeros((0, 3), np.float32), False, False, 1.0, 0.0)
    _core.activation_forward(e, np.zeros((0, 4), np.float32), ACT_SOFTMAX, 0.0)
    _core.activation_backward(e, e, np.zeros((0, 4), np.float32), ACT_SOFTMAX, 0.0)
    out = np.full((4,), 5.0, np.float32)
    _core.col_sums(e, out)
    assert np.all(out == 0)
    assert _core.sum(e) == 0.0 and _core.sum_squares(e) == 0.0
    assert _core.loss(0, False, 0.0, 1.0, e, None, e, None, np.zeros((0, 4), np.float32)) == 0.0
    _core.dropout(e, np.zeros((0, 4), np.float32), 0.5, 1, 0)
    _core.optimizer_step(0, [np.zeros(0, np.float32)], [np.zeros(0, np.float32)], None, None, None,
                         0.1, 0.0, False, 2, 1.0)
    assert _core.binary_confusion(np.zeros(0, np.float32), np.zeros(0, np.float32), 0.5) == (0, 0, 0, 0)


# --------------------------------------------------------------------------------------------- #
# 8. a failed call leaves things as they were
# --------------------------------------------------------------------------------------------- #


def _params_and_state(n_state):
    params = [f32((3, 4), 1), f32((5,), 2), f32((2, 2), 3)]
    states = [[f32(p.shape, 10 * s + i, 0.0, 1.0) for i, p in enumerate(params)] for s in range(n_state)]
    return params, states


@pytest.mark.parametrize("problem", ["shape", "complex", "object", "str", "count", "ragged", "None"])
@pytest.mark.parametrize("opt", ["sgd", "adam", "adamw", "rmsprop", "adagrad"])
def test_optimizer_with_bad_grads_list_changes_nothing(opt, problem):
    params, states = _params_and_state(3)
    grads = [f32(p.shape, 50 + i) for i, p in enumerate(params)]
    bad = {"shape": f32((4,)), "complex": grads[1].astype(np.complex64), "object": grads[1].astype(object),
           "str": grads[1].astype(str), "ragged": [[1.0], [1.0, 2.0]], "None": None}
    if problem == "count":
        grads = grads[:2]
    else:
        grads = [grads[0], bad[problem], grads[2]]
    before = snapshot(params + states[0] + states[1] + states[2])
    with pytest.raises((TypeError, ValueError)):
        {"sgd": lambda: ops.sgd_step(params, grads, states[0], momentum=0.9),
         "adam": lambda: ops.adam_step(params, grads, states[0], states[1], step=2, amsgrad=True, v_hat=states[2]),
         "adamw": lambda: ops.adamw_step(params, grads, states[0], states[1], step=2, global_clipnorm=0.1),
         "rmsprop": lambda: ops.rmsprop_step(params, grads, states[0], momentums=states[1], momentum=0.9,
                                             average_grads=states[2], centered=True),
         "adagrad": lambda: ops.adagrad_step(params, grads, states[0], clipnorm=1.0)}[opt]()
    assert_unchanged(before, params + states[0] + states[1] + states[2], "params/state")


def test_failed_matmul_leaves_out_untouched():
    out = f32((3, 5), 9)
    before = snapshot([out])
    for call in (lambda: ops.matmul(A34, B45.astype(np.complex64), beta=1.0, out=out),
                 lambda: ops.matmul(A34, B55, beta=1.0, out=out),
                 lambda: ops.matmul(A34, B45, alpha="x", out=out)):
        with pytest.raises((TypeError, ValueError)):
            call()
    assert_unchanged(before, [out], "out")


def test_failed_dense_and_activation_leave_out_untouched():
    out = f32((3, 5), 9)
    out4 = f32((3, 4), 9)
    before = snapshot([out, out4])
    for call in (lambda: ops.dense_forward(A34, B45, f32((4,)), out=out),
                 lambda: ops.dense_forward(A34, B45, activation="nope", out=out),
                 lambda: ops.activation_forward(A34, "nope", out=out4),
                 lambda: ops.activation_backward(f32((4, 3)), A34, "relu", out=out4),
                 lambda: ops.sum_rows(A34.astype(object), out=out4[0])):
        with pytest.raises((TypeError, ValueError)):
            call()
    assert_unchanged(before, [out, out4], "out")


def test_failed_loss_leaves_grad_out_untouched():
    g = f32((4, 3), 9)
    before = snapshot([g])
    for call in (lambda: ops.loss_and_grad("mse", f32((4, 2)), f32((4, 3)), grad_out=g),
                 lambda: ops.loss_and_grad("mse", f32((4, 3)), f32((4, 3)), sample_weight=f32((5,)), grad_out=g),
                 lambda: ops.loss_and_grad("sparse_categorical_crossentropy", [0, 1, 9, 0], f32((4, 3)), grad_out=g),
                 lambda: ops.loss_and_grad("mse", f32((4, 3)), f32((4, 3)).astype(complex), grad_out=g),
                 lambda: ops.loss_and_grad("bce", f32((4, 3)), f32((4, 3)), grad_out=g)):
        with pytest.raises((TypeError, ValueError)):
            call()
    assert_unchanged(before, [g], "grad_out")


def test_inputs_are_never_modified():
    """Every table call leaves its (non in-place) inputs bitwise unchanged, in any layout."""
    for case in CASES:
        kwargs = case.make()
        ins = [get_path(kwargs, p) for p, _, _ in case.inputs]
        before = snapshot(ins)
        case.run(kwargs)
        assert_unchanged(before, ins, f"{case.id} input")


# --------------------------------------------------------------------------------------------- #
# 9. out= overlapping an input, 0-d and empty inputs
# --------------------------------------------------------------------------------------------- #


def _shifted(values, shift):
    """(input view, out view) of one buffer, out = input shifted by ``shift`` elements."""
    n = values.size
    buf = np.zeros(n + abs(shift), np.float32)
    if shift > 0:
        x, out = buf[:n], buf[shift:]
    else:
        x, out = buf[-shift:], buf[:n]
    x[...] = values
    return x, out


OVERLAP_CALLS = {
    # id: (fn(x, out) -> result, input size)
    "activation_forward-linear": lambda x, out: ops.activation_forward(x, "linear", out=out),
    "activation_forward-relu": lambda x, out: ops.activation_forward(x, "relu", out=out),
    "activation_forward-tanh": lambda x, out: ops.activation_forward(x, "tanh", out=out),
    "activation_forward-softmax": lambda x, out: ops.activation_forward(x.reshape(-1, 8), "softmax",
                                                                        out=out.reshape(-1, 8)),
    "activation_backward-dy-relu": lambda x, out: ops.activation_backward(x, np.ones(x.shape, np.float32), "relu",
                                                                           out=out),
    "activation_backward-x-sigmoid": lambda x, out: ops.activation_backward(np.ones(x.shape, np.float32), x,
                                                                             "sigmoid", out=out),
    "dropout_forward": lambda x, out: ops.dropout_forward(x, 0.5, 3, out=out),
    "loss-mse-y_pred": lambda x, out: ops.loss_and_grad("mse", np.ones(x.shape, np.float32), x, grad_out=out)[1],
    "loss-mae-y_true": lambda x, out: ops.loss_and_grad("mae", x, np.ones(x.shape, np.float32), grad_out=out)[1],
    "loss-cce-y_pred": lambda x, out: ops.loss_and_grad("categorical_crossentropy",
                                                        np.full((x.size // 8, 8), 0.125, np.float32),
                                                        x.reshape(-1, 8), from_logits=True,
                                                        grad_out=out.reshape(-1, 8))[1],
    "sum_rows": lambda x, out: ops.sum_rows(x.reshape(8, -1), out=out[: x.size // 8]),
    "matmul": lambda x, out: ops.matmul(x.reshape(8, -1), np.ones((x.size // 8, x.size // 8), np.float32),
                                        out=out.reshape(8, -1)),
}


@pytest.mark.parametrize("size", [64, 40000])
@pytest.mark.parametrize("shift", [1, -1, 8, -5])
@pytest.mark.parametrize("call", list(OVERLAP_CALLS))
def test_out_overlapping_an_input_gives_the_unaliased_result(call, shift, size):
    """NumPy semantics: the result is as if the input had been copied before out= was written."""
    fn = OVERLAP_CALLS[call]
    values = f32((size,), 5, 0.1, 2.0)
    want = fn(values.copy(), np.zeros(size, np.float32))
    x, out = _shifted(values, shift)
    assert np.shares_memory(x, out)
    got = fn(x, out)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("call", list(OVERLAP_CALLS))
def test_out_exactly_the_input_is_in_place(call):
    fn = OVERLAP_CALLS[call]
    values = f32((64,), 5, 0.1, 2.0)
    want = fn(values.copy(), np.zeros(64, np.float32))
    buf = values.copy()
    got = fn(buf, buf)
    np.testing.assert_array_equal(got, want)


ZERO_D = {
    "activation_forward-relu": lambda x: ops.activation_forward(x, "relu"),
    "activation_forward-sigmoid": lambda x: ops.activation_forward(x, "sigmoid"),
    "activation_backward-tanh": lambda x: ops.activation_backward(x, x, "tanh"),
    "dropout_forward": lambda x: ops.dropout_forward(x, 0.0, 1),
    "dropout_backward": lambda x: ops.dropout_backward(x, 0.0, 1),
}


@pytest.mark.parametrize("kind", ["ndarray-0d", "numpy-scalar", "python-float"])
@pytest.mark.parametrize("call", list(ZERO_D))
def test_zero_dim_input_gives_zero_dim_output(call, kind):
    """Element-wise functions take any ndim (spec), 0 included: the result has the input's shape, ()."""
    x = {"ndarray-0d": np.array(-0.75, np.float32), "numpy-scalar": np.float64(-0.75), "python-float": -0.75}[kind]
    got = ZERO_D[call](x)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    assert got.shape == (), f"0-d input came back with shape {got.shape}"


def test_zero_dim_out_is_accepted_for_zero_dim_input():
    out = np.zeros((), np.float32)
    got = ops.activation_forward(np.array(-2.0), "relu", out=out)
    assert got is out and out == 0.0


def test_zero_dim_reductions():
    assert ops.sum(np.array(2.5)) == 2.5
    assert ops.sum_squares(np.float32(3)) == 9.0
    assert ops.global_norm([np.float32(3), 4.0]) == 5.0


@pytest.mark.parametrize("loss, kw", R.LOSSES, ids=[n + "".join(f"-{k}={v}" for k, v in kw.items())
                                                   for n, kw in R.LOSSES])
@pytest.mark.parametrize("shape", [(0, 3), (0, 1), (0,), (0, 0)])
def test_loss_with_no_rows_is_zero(loss, kw, shape):
    """N == 0 -> value 0.0 (spec), gradient of y_pred's (empty) shape."""
    pred = np.zeros(shape, np.float32)
    if loss == "sparse_categorical_crossentropy":
        if shape == (0, 0):
            pytest.skip("no classes")
        true = np.zeros((0,), np.int64)
    else:
        true = np.zeros(shape, np.float32)
    value, grad = ops.loss_and_grad(loss, true, pred, **kw)
    assert value == 0.0
    assert grad.shape == shape and grad.dtype == np.float32


@pytest.mark.parametrize("kind", ["binary", "categorical", "sparse"])
@pytest.mark.parametrize("shape", [(0, 3), (0,), (0, 1)])
def test_count_correct_with_no_rows_is_zero(kind, shape):
    true = np.zeros((0,), np.int64) if kind == "sparse" else np.zeros(shape, np.float32)
    assert ops.count_correct(true, np.zeros(shape, np.float32), kind) == 0


def test_other_empty_inputs():
    assert ops.binary_confusion(np.zeros((0, 3)), np.zeros((0, 3))) == (0, 0, 0, 0)
    assert ops.matmul(np.zeros((2, 0)), np.zeros((0, 3))).tolist() == [[0.0] * 3] * 2
    assert ops.matmul(np.zeros((0, 2)), np.zeros((2, 3))).shape == (0, 3)
    assert ops.sum_rows(np.zeros((0, 3))).tolist() == [0.0] * 3
    assert ops.sum_rows(np.zeros((3, 0))).shape == (0,)
    assert ops.activation_forward(np.zeros((2, 0)), "softmax").shape == (2, 0)
    assert ops.activation_forward(np.zeros((0, 2)), "softmax").shape == (0, 2)
    y, z = ops.dense_forward(np.zeros((0, 3)), np.zeros((3, 2)), np.zeros(2), "softmax", return_preactivation=True)
    assert y.shape == z.shape == (0, 2)
    dx, dk, db = ops.dense_backward(np.zeros((0, 2)), np.zeros((0, 3)), f32((3, 2)), np.zeros((0, 2)), "relu")
    assert dx.shape == (0, 3) and dk.tolist() == [[0.0, 0.0]] * 3 and db.tolist() == [0.0, 0.0]
    assert ops.dropout_mask((0, 5), 0.5, 1).shape == (0, 5)
    assert ops.global_norm([]) == 0.0
    p = np.zeros(0, np.float32)
    ops.adam_step(p, p.copy(), np.zeros(0, np.float32), np.zeros(0, np.float32), step=1, global_clipnorm=1.0)


# --------------------------------------------------------------------------------------------- #
# 10. NaN and Inf flow through as in NumPy
# --------------------------------------------------------------------------------------------- #

NAN, INF = float("nan"), float("inf")


def test_nan_inf_elementwise():
    z = np.array([NAN, INF, -INF, 0.0, -0.0], np.float32)
    relu = ops.activation_forward(z, "relu")
    assert np.isnan(relu[0]) and relu[1] == INF and relu[2] == 0.0
    assert np.isnan(ops.activation_forward(z, "sigmoid")[0])
    assert ops.activation_forward(z, "sigmoid")[1:3].tolist() == [1.0, 0.0]
    assert ops.activation_forward(z, "tanh")[1:3].tolist() == [1.0, -1.0]
    assert ops.activation_forward(z, "exponential")[1:3].tolist() == [INF, 0.0]
    assert np.isnan(ops.activation_forward(z, "hard_sigmoid")[0])
    dx = ops.activation_backward(np.ones(5, np.float32), z, "relu")
    assert dx.tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]  # spec: grad 1 if z > 0 else 0 (NaN z -> 0)
    assert np.isnan(ops.activation_backward(np.array([NAN, 1.0], np.float32), np.ones(2), "relu")[0])
    sm = ops.activation_forward(np.array([[1.0, NAN, 0.0], [1.0, 2.0, 3.0]], np.float32), "softmax")
    assert np.all(np.isnan(sm[0])) and np.all(np.isfinite(sm[1]))
    assert np.isnan(ops.dropout_forward(np.full(64, NAN), 0.0, 1)).all()


def test_nan_inf_matmul():
    a = np.array([[NAN, 1.0], [1.0, 1.0]], np.float32)
    r = ops.matmul(a, np.ones((2, 2)))
    assert np.isnan(r[0]).all() and r[1].tolist() == [2.0, 2.0]
    r = ops.matmul(np.full((2, 2), INF), np.zeros((2, 2)))
    assert np.isnan(r).all()  # inf * 0 = nan, as NumPy
    out = np.full((2, 2), NAN, np.float32)
    r = ops.matmul(np.ones((2, 2)), np.ones((2, 2)), out=out)  # beta == 0 never reads out
    assert r.tolist() == [[2.0, 2.0], [2.0, 2.0]]
    out = np.array([[NAN, 1.0], [1.0, 1.0]], np.float32)
    r = ops.matmul(np.ones((2, 2)), np.ones((2, 2)), beta=1.0, out=out)
    assert np.isnan(r[0, 0]) and r[0, 1] == 3.0


def test_nan_inf_reductions():
    assert ops.sum(np.array([1.0, INF])) == INF
    assert np.isnan(ops.sum(np.array([INF, -INF])))
    assert np.isnan(ops.sum_squares(np.array([1.0, NAN])))
    assert ops.sum_squares(np.array([-INF, 1.0])) == INF
    r = ops.sum_rows(np.array([[1.0, NAN], [INF, 2.0]]))
    assert r[0] == INF and np.isnan(r[1])
    assert ops.global_norm([np.array([3.0]), np.array([NAN])]) != ops.global_norm([np.array([3.0])])
    assert np.isnan(ops.global_norm([np.array([3.0]), np.array([NAN])]))


def test_nan_counts_and_confusion():
    # argmax: NaN counts as the maximum (np.argmax); NaN > threshold is False
    p = np.array([[0.1, NAN, 0.9], [0.1, 0.2, 0.9]], np.float32)
    assert ops.count_correct(np.array([1, 2]), p, "sparse") == R.count_correct(np.array([1, 2]), p, "sparse") == 2
    t = np.array([1.0, 0.0, NAN, 1.0])
    pp = np.array([NAN, NAN, 0.9, 0.9])
    assert ops.binary_confusion(t, pp) == R.binary_confusion(t, pp)
    assert ops.count_correct(t, pp, "binary") == R.count_correct(t, pp, "binary")


def test_nan_in_loss_rows():
    pred = np.array([[0.2, 0.8], [NAN, 0.5], [0.3, 0.7]], np.float32)
    true = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]], np.float32)
    for loss in ("mse", "mae", "huber", "binary_crossentropy", "categorical_crossentropy"):
        value, grad = ops.loss_and_grad(loss, true, pred)
        with np.errstate(all="ignore"):
            rvalue, rgrad = R.loss_value_and_grad(loss, true, pred)
        assert np.isnan(value) and np.isnan(rvalue)
        # NaN wherever the reference has NaN; elsewhere NaN only at the NaN input itself (the reference's
        # clipped-probability rule gives 0 there, the kernel lets the NaN through: both are accepted).
        assert np.all(np.isnan(grad)[np.isnan(rgrad)]), loss
        extra = np.isnan(grad) & ~np.isnan(rgrad)
        assert np.all(np.isnan(pred)[extra]), loss
        ok = ~np.isnan(rgrad) & ~np.isnan(grad)
        np.testing.assert_allclose(grad[ok], rgrad[ok], rtol=1e-5, atol=1e-7, err_msg=loss)
    value, grad = ops.loss_and_grad("mse", true, pred, sample_weight=[1.0, NAN, 1.0])
    assert np.isnan(value)


@pytest.mark.parametrize("clip", ["clipnorm", "global_clipnorm"])
def test_nan_gradient_with_norm_clipping_gives_nan_as_reference(clip):
    """||g|| is NaN when g has a NaN: clip scale c / max(NaN, c) is NaN (NumPy/Keras maximum), so the
    whole clipped array (every array for global_clipnorm) becomes NaN, as the reference says."""
    params = [np.zeros(4, np.float32), np.zeros(3, np.float32)]
    grads = [np.array([NAN, 1.0, 1.0, 1.0], np.float32), np.ones(3, np.float32)]
    ops.sgd_step(params, grads, learning_rate=1.0, **{clip: 1.0})
    with np.errstate(all="ignore"):
        want, _ = R.sgd([np.zeros(4), np.zeros(3)], [g.astype(np.float64) for g in grads], learning_rate=1.0,
                    **{clip: 1.0})
    for got, w in zip(params, want):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(w))


def test_inf_gradient_with_clipping_as_reference():
    params = [np.zeros(4, np.float32)]
    grads = [np.array([INF, 1.0, -1.0, 0.0], np.float32)]
    ops.sgd_step(params, grads, learning_rate=1.0, clipnorm=1.0)
    with np.errstate(all="ignore"):
        want, _ = R.sgd([np.zeros(4)], [grads[0].astype(np.float64)], learning_rate=1.0, clipnorm=1.0)
    np.testing.assert_array_equal(np.isnan(params[0]), np.isnan(want[0]))
    p = np.zeros(4, np.float32)
    ops.sgd_step(p, grads[0], learning_rate=1.0, clipvalue=0.5)
    np.testing.assert_array_equal(p, [-0.5, -0.5, 0.5, 0.0])


HUGE = np.array([-3.4e38, -1e30, -1e20, -1e10, 1e10, 1e20, 1e30, 3.4e38], np.float32)


@pytest.mark.parametrize("name, kw", R.ACTIVATIONS, ids=[n + "".join(f"-{k}={v}" for k, v in kw.items())
                                                         for n, kw in R.ACTIVATIONS])
def test_huge_finite_inputs_give_no_spurious_nan(name, kw):
    """Finite z whose f(z) and f'(z) are representable in float32 must not give NaN (e.g. from z*z
    overflowing inside the formula): the result is the reference's, rounded to float32."""
    z = HUGE.reshape(1, -1) if name == "softmax" else HUGE
    with np.errstate(all="ignore"):
        want_y = R.activation_forward(z.astype(np.float64), name, **kw).astype(np.float32)
        want_d = R.activation_backward(np.ones(z.shape), z.astype(np.float64), name, **kw).astype(np.float32)
    got_y = ops.activation_forward(z, name, **kw)
    got_d = ops.activation_backward(np.ones(z.shape, np.float32), z, name, **kw)
    for what, got, want in (("forward", got_y, want_y), ("backward", got_d, want_d)):
        ok = ~np.isnan(want)
        bad = ok & np.isnan(got)
        assert not bad.any(), f"{name} {what}: NaN at finite z={z.ravel()[bad.ravel()]}, reference {want[bad]}"
        np.testing.assert_allclose(got[ok], want[ok], rtol=1e-5, atol=1e-30, err_msg=f"{name} {what}")


# --------------------------------------------------------------------------------------------- #
# int8 operands (ops.quantized_matmul, QuantizedKernel, quantized_dense_forward's kernel): int8 only, in
# [-127, 127]; any layout
# --------------------------------------------------------------------------------------------- #


@pytest.mark.parametrize("bad", ["float32", "int16", "uint8", "bool", "complex64", "object"])
def test_int8_operands_must_be_int8(bad):
    good = np.ones((3, 4), np.int8)
    wrong = good.astype(bad)
    with pytest.raises(TypeError, match="a: expected an int8 array"):
        ops.quantized_matmul(wrong, np.ones((4, 2), np.int8))
    with pytest.raises(TypeError, match="b: expected an int8 array"):
        ops.quantized_matmul(good, wrong.T)
    with pytest.raises(TypeError, match="b: expected an int8 array"):
        ops.quantized_dense_forward(f32((2, 4)), wrong.T.copy(), f32((3,)))


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_int8_operands_in_any_layout(layout):
    rng = np.random.default_rng(3)
    a, b = rng.integers(-127, 128, (5, 7)).astype(np.int8), rng.integers(-127, 128, (7, 6)).astype(np.int8)
    want = ops.quantized_matmul(a, b)
    np.testing.assert_array_equal(ops.quantized_matmul(LAYOUTS[layout](a), LAYOUTS[layout](b)), want)


@pytest.mark.parametrize("call, contains", [
    (lambda: ops.quantized_matmul(np.ones((2, 3), np.int8), np.ones((4, 2), np.int8)), "inner dimensions"),
    (lambda: ops.quantized_matmul(np.ones((2, 3, 1), np.int8), np.ones((3, 2), np.int8)), "2-D"),
    (lambda: ops.quantized_matmul(np.full((2, 3), -128, np.int8), np.ones((3, 2), np.int8)), "-128"),
    (lambda: ops.QuantizedKernel(np.full((3, 2), -128, np.int8)), "-128"),
    (lambda: ops.quantized_dense_forward(f32((2, 5)), np.ones((4, 3), np.int8), f32((3,))), "(2, 5)"),
    (lambda: ops.quantized_dense_forward(f32((2, 4)), np.ones((4, 3), np.int8), f32((4,))), "(4,)"),
    (lambda: _core.qgemm_s32(np.ones((2, 3), np.int8), np.zeros(5, np.int8), np.zeros(2, np.int32),
                             _core.qgemm_isa(), 2), "bytes"),
    (lambda: _core.qgemm_s32(np.ones((2, 3), np.int8), *_core.qgemm_pack(np.ones((3, 2), np.int8))[:2], "nope", 2),
     "packed for"),
])
def test_int8_bad_shapes_and_values_are_value_errors(call, contains):
    with pytest.raises(ValueError) as err:
        call()
    assert contains in str(err.value)

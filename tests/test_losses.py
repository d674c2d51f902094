"""ops.loss_and_grad against the float64 reference (Keras 3 losses, 'sum_over_batch_size').

Tolerances
 value: relative 1e-6 (the per-element terms are float32 with a few EPS32 of relative error, summed in
   double; measured <= 9e-8) plus an absolute 1e-12 for values that are exactly 0 (C = 1 from logits).
   Probabilities are clipped, in the kernel as in the oracle, to float32(1e-7) and float32(1 - 1e-7)
   = 1 - 2**-23: what Keras does to float32 tensors.
 grad: GRAD_ULPS * EPS32 * (|ref| + scale) element-wise, scale being the size of the terms that
   cancel in the gradient formula (see _grad_scale): p' - t' for the cross-entropies, softmax - t' from
   logits, the normalisation sum for categorical probabilities.
"""
import math

import numpy as np
import pytest

import reference as R
from gradsmith import ops
from helpers import (EPS32, TINY32, all_threads, assert_bitwise_equal, assert_within, case_id, f32, f64,
                     num_threads, numeric_grad)

CASES = R.LOSSES
CLIP_LO = float(np.float32(1e-7))  # the float32 clip bounds (see the module docstring)
SPARSE = "sparse_categorical_crossentropy"
VALUE_RTOL, VALUE_ATOL = 1e-6, 1e-12  # measured: relative <= 9e-8
GRAD_ULPS = 4  # measured: <= 2.7 (mse), <= 1.9 (cross-entropies)


def _canonical(name):
    return R.losses.ALIASES.get(name, name)


def _smoothed_targets(name, params, y_true, n, c):
    """t' as the reference builds it, (N, C) float64."""
    name, ls = _canonical(name), params.get("label_smoothing", 0.0)
    if name == SPARSE:
        t = np.eye(c)[np.asarray(y_true).reshape(-1).astype(np.int64)].reshape(n, c)
    else:
        t = f64(y_true).reshape(n, c)
    if name == "binary_crossentropy":
        return t * (1.0 - ls) + 0.5 * ls
    if name in ("hinge", "squared_hinge") and np.all((t == 0) | (t == 1)):
        return 2.0 * t - 1.0
    if name.endswith("categorical_crossentropy"):
        return t * (1.0 - ls) + ls / c
    return t


def _grad_scale(name, params, y_true, y_pred, w):
    """Absolute size, per element of the gradient, of the float32 terms that cancel in it."""
    name = _canonical(name)
    p = f64(y_pred)
    p = p.reshape(p.shape[0], -1) if p.ndim == 2 else p.reshape(-1, 1)
    n, c = p.shape
    t = _smoothed_targets(name, params, y_true, n, c)
    w = np.ones((n, 1)) if w is None else f64(w).reshape(n, 1)
    logits = params.get("from_logits", False)
    with np.errstate(all="ignore"):
        if name == "binary_crossentropy" and logits:  # sigmoid(x) - t'
            scale = (R.sigmoid(p) + np.abs(t)) * np.abs(w) / (c * n)
        elif name == "binary_crossentropy":  # (p' - t') / (p' (1 - p'))
            pc = np.clip(p, 1e-7, 1 - 1e-7)
            scale = (pc + np.abs(t)) / (pc * (1 - pc)) * np.abs(w) / (c * n)
        elif name.endswith("categorical_crossentropy") and logits:  # softmax(x) sum(t') - t'
            y = R.softmax(p)
            rel = 1.0 + np.abs(p - p.max(axis=1, keepdims=True)) + c
            scale = (y * np.abs(t).sum(axis=1, keepdims=True) * rel + np.abs(t)) * np.abs(w) / n
        elif name.endswith("categorical_crossentropy"):  # (u_k - sum_j u_j q_j) / S, u = -t'/q'
            s = p.sum(axis=1, keepdims=True)
            q = np.clip(p / s, 1e-7, 1 - 1e-7)
            u = np.abs(t) / q
            scale = (u + np.sum(u * q, axis=1, keepdims=True)) * (c + 3) / np.abs(s) * np.abs(w) / n
        elif name == "log_cosh":  # tanh(p - t): p - t rounds to float32 first
            scale = (np.abs(p) + np.abs(t)) * np.abs(w) / (c * n)
        elif name == "poisson":  # 1 - t / (p + eps)
            scale = (1.0 + np.abs(t) / np.abs(p + 1e-7)) * np.abs(w) / (c * n)
        elif name == "squared_hinge":  # -2 t (1 - t p)
            scale = 2.0 * np.abs(t) * (1.0 + np.abs(t * p)) * np.abs(w) / (c * n)
        elif name == "mean_squared_logarithmic_error":  # 2 (log(p + 1) - log(t + 1)) / (p + 1)
            pp, tt = np.maximum(p, 1e-7) + 1.0, np.maximum(t, 1e-7) + 1.0
            scale = 2.0 * (np.abs(np.log(pp)) + np.abs(np.log(tt))) / pp * np.abs(w) / (c * n)
        else:  # mse, mae, huber, hinge, mape, kl_divergence: relative
            scale = np.zeros_like(p)
    return scale.reshape(np.shape(y_pred))


def _tolerance(name, params, y_true, y_pred, w):
    """(gradient scale (see _grad_scale), absolute value tolerance beyond VALUE_RTOL). Poisson's terms
    p - t log(p + eps) cancel in float32 (as in Keras): 4 EPS32 of the weighted mean of |p| + |t log(p + eps)|."""
    value_atol = 0.0
    if _canonical(name) == "poisson":
        p = f64(y_pred).reshape(len(y_pred), -1)
        t = f64(y_true).reshape(p.shape)
        wt = np.ones(len(p)) if w is None else f64(w).reshape(-1)
        size = np.mean(np.abs(p) + np.abs(t * np.log(p + 1e-7)), axis=1)
        value_atol = 4 * EPS32 * float(np.sum(np.abs(wt) * size)) / len(p)
    return _grad_scale(name, params, y_true, y_pred, w), value_atol


def assert_loss_close(value, grad, expected_value, expected_grad, tolerance, what=""):
    scale, value_atol = tolerance
    assert isinstance(value, float)
    assert value == pytest.approx(expected_value, rel=VALUE_RTOL, abs=VALUE_ATOL + value_atol), f"{what}: value"
    assert grad.dtype == np.float32
    assert_within(grad, expected_grad, GRAD_ULPS * EPS32 * (np.abs(expected_grad) + scale) + TINY32,
                  what=f"{what}: grad")


def _inputs(rng, name, params, n, c):
    y_true, y_pred = R.loss_inputs(name, n, c, rng, from_logits=params.get("from_logits", False))
    y_true = y_true if _canonical(name) == SPARSE else f32(y_true)
    return y_true, f32(y_pred)


def _reference(name, params, y_true, y_pred, w=None):
    t = y_true if _canonical(name) == SPARSE else f64(y_true)
    return R.loss_value_and_grad(name, t, f64(y_pred), None if w is None else f64(w), **params)


# (N, C): one element, odd, C = 1, wide rows, and enough rows (> 256 per task, > 32K elements)
# for the threaded row blocks.
SHAPES = [(1, 1), (1, 4), (7, 5), (9, 1), (33, 10), (4, 130), (300, 130)]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("n, c", SHAPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_value_and_grad_match_reference(isa, rng, case, n, c, weighted):
    name, params = case
    y_true, y_pred = _inputs(rng, name, params, n, c)
    w = f32(rng.uniform(0.0, 2.0, n)) if weighted else None
    value, grad = ops.loss_and_grad(name, y_true, y_pred, sample_weight=w, **params)
    assert grad.shape == y_pred.shape
    expected_value, expected_grad = _reference(name, params, y_true, y_pred, w)
    assert_loss_close(value, grad, expected_value, expected_grad, _tolerance(name, params, y_true, y_pred, w),
                      what=case_id(case))


@pytest.mark.parametrize("true_shape", ["(N,)", "(N,1)"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_one_column_y_pred(isa, rng, case, true_shape):
    """y_pred (N,) is (N, 1); y_true (N,) or (N, 1) either way; grad shaped like y_pred."""
    name, params = case
    n = 11
    y_true, y_pred2 = _inputs(rng, name, params, n, 1)
    y_true = np.reshape(y_true, (n,) if true_shape == "(N,)" else (n, 1))
    for y_pred in (y_pred2.reshape(n), y_pred2):
        value, grad = ops.loss_and_grad(name, y_true, y_pred, **params)
        assert grad.shape == y_pred.shape
        expected_value, expected_grad = _reference(name, params, y_true, y_pred)
        assert_loss_close(value, grad, expected_value, expected_grad, _tolerance(name, params, y_true, y_pred, None),
                          what=f"{case_id(case)} y_pred {y_pred.shape} y_true {y_true.shape}")
    # Same numbers whichever way the column is given.
    v1, g1 = ops.loss_and_grad(name, y_true, y_pred2.reshape(n), **params)
    v2, g2 = ops.loss_and_grad(name, y_true, y_pred2, **params)
    assert v1 == v2
    assert_bitwise_equal(g1, g2.reshape(n))


SPARSE_CASES = [c for c in CASES if c[0] == SPARSE]


@pytest.mark.parametrize("labels_as", ["int64", "int32", "uint8", "float_integral", "float32_integral", "column"])
@pytest.mark.parametrize("case", SPARSE_CASES, ids=case_id)
def test_sparse_label_forms(isa, rng, case, labels_as):
    """Integer labels in any integer dtype, integral floats, (N,) or (N, 1): all the same loss,
    equal to categorical cross-entropy on the one-hot targets."""
    name, params = case
    n, c = 13, 6
    labels, y_pred = _inputs(rng, name, params, n, c)
    given = {"int64": labels.astype(np.int64), "int32": labels.astype(np.int32), "uint8": labels.astype(np.uint8),
             "float_integral": labels.astype(np.float64), "float32_integral": labels.astype(np.float32),
             "column": labels.reshape(n, 1)}[labels_as]
    value, grad = ops.loss_and_grad(name, given, y_pred, **params)
    expected_value, expected_grad = _reference(name, params, labels, y_pred)
    assert_loss_close(value, grad, expected_value, expected_grad, _tolerance(name, params, labels, y_pred, None),
                      what=labels_as)
    one_hot = f32(np.eye(c)[labels])
    v_cat, g_cat = ops.loss_and_grad("categorical_crossentropy", one_hot, y_pred, **params)
    assert value == pytest.approx(v_cat, rel=VALUE_RTOL, abs=VALUE_ATOL)
    assert_within(grad, g_cat, GRAD_ULPS * EPS32 * (np.abs(g_cat) + _grad_scale(name, params, labels, y_pred, None)),
                  what="sparse vs categorical on one-hot")


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_grad_matches_finite_differences(isa, rng, case, weighted):
    """grad against central differences of the float64 reference value (h = 1e-6; its error, < 1e-8
    for these inputs kept away from kinks and clipping by reference.loss_inputs, is added)."""
    name, params = case
    y_true, y_pred = _inputs(rng, name, params, 4, 3)
    w = f32(rng.uniform(0.0, 2.0, 4)) if weighted else None
    t = y_true if _canonical(name) == SPARSE else f64(y_true)
    numeric = numeric_grad(lambda p: R.loss_value(name, t, p, None if w is None else f64(w), **params), f64(y_pred))
    _, grad = ops.loss_and_grad(name, y_true, y_pred, sample_weight=w, **params)
    scale = _grad_scale(name, params, y_true, y_pred, w)
    assert_within(grad, numeric, GRAD_ULPS * EPS32 * (np.abs(numeric) + scale) + 1e-8, what="vs finite differences")


@pytest.mark.parametrize("name, y_true, y_pred, kwargs, expected", R.KERAS_EXAMPLES)  # Keras 3 docs
def test_keras_documented_values(isa, name, y_true, y_pred, kwargs, expected):
    value, grad = ops.loss_and_grad(name, y_true, y_pred, **kwargs)
    assert value == pytest.approx(expected, abs=1e-3)  # Keras prints 3 digits
    params = {k: v for k, v in kwargs.items() if k != "sample_weight"}
    w = kwargs.get("sample_weight")
    expected_value, expected_grad = _reference(name, params, y_true, f32(y_pred), w)
    assert_loss_close(value, grad, expected_value, expected_grad,
                      _tolerance(name, params, y_true, f32(y_pred), w), what="keras example")


@pytest.mark.parametrize("name, y_true, y_pred, kwargs, expected_value, expected_grad", [
    # mae at e = 0: sign(0) = 0 ; huber linear branch: delta * sign(e) / (C N)
    ("mae", [[1.0, 2.0]], [[1.0, 3.0]], {}, 0.5, [[0.0, 0.5]]),
    ("huber", [[0.0, 0.0]], [[3.0, -0.5]], {"delta": 1.0}, (2.5 + 0.125) / 2, [[0.5, -0.25]]),
    # bce: p outside [1e-7, 1 - 1e-7] is clipped and gets no gradient
    ("binary_crossentropy", [[1.0, 0.0]], [[0.0, 0.0]], {}, -(math.log(CLIP_LO) + math.log(1 - CLIP_LO)) / 2,
     [[0.0, 0.0]]),
    # cce from logits, label smoothing 0.5, C=2, equal logits: t' = (0.75, 0.25), grad = softmax - t'
    ("categorical_crossentropy", [[1.0, 0.0]], [[0.0, 0.0]], {"from_logits": True, "label_smoothing": 0.5},
     math.log(2.0), [[-0.25, 0.25]]),
    # sparse from logits: softmax - onehot
    ("sparse_categorical_crossentropy", [1], [[0.0, 0.0]], {"from_logits": True}, math.log(2.0), [[0.5, -0.5]]),
])
def test_hand_computed(isa, name, y_true, y_pred, kwargs, expected_value, expected_grad):
    value, grad = ops.loss_and_grad(name, y_true, y_pred, **kwargs)
    assert value == pytest.approx(expected_value, rel=VALUE_RTOL, abs=VALUE_ATOL)
    assert_within(grad, expected_grad, 4 * EPS32 * np.abs(expected_grad) + TINY32)


@pytest.mark.parametrize("y_true, y_pred", [
    ([[0.0]], [[1.0]]),                      # p = 1: clipped to 1 - 2**-23, L = -log(2**-23) = 15.94
    ([[1.0]], [[0.0]]),                      # p = 0: clipped to float32(1e-7), L = 16.12
    ([[0.0, 1.0]], [[1.0, 0.0]]),            # both ends
    ([[0.0]], [[0.99999995]]),               # float32 1 - 2**-25 (> 1 - 1e-7): clipped too
])
def test_binary_crossentropy_saturated_probabilities(isa, y_true, y_pred):
    """p' = clip(p, 1e-7, 1 - 1e-7) with the float32 bounds (as Keras on float32 tensors): a saturated
    prediction costs 15.94 at p = 1 and 16.12 at p = 0, with zero gradient."""
    assert ops.loss_and_grad("binary_crossentropy", [[0.0]], [[1.0]])[0] == pytest.approx(-math.log(2.0**-23), rel=1e-6)
    value, grad = ops.loss_and_grad("binary_crossentropy", y_true, y_pred)
    expected_value, expected_grad = R.loss_value_and_grad("binary_crossentropy", y_true, f64(y_pred))
    assert value == pytest.approx(expected_value, rel=VALUE_RTOL, abs=VALUE_ATOL)
    assert_within(grad, expected_grad, 0.0)


@pytest.mark.parametrize("pred_shape", [(0, 3), (0,)], ids=["(0,C)", "(0,)"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_empty_batch_is_zero(isa, case, pred_shape):
    name, params = case
    y_true = np.zeros(0, np.int64) if name == SPARSE else np.zeros(pred_shape, np.float32)
    value, grad = ops.loss_and_grad(name, y_true, np.zeros(pred_shape, np.float32), sample_weight=np.zeros(0),
                                    **params)
    assert value == 0.0 and grad.shape == pred_shape and grad.dtype == np.float32


@pytest.mark.parametrize("labels, c, bad_label, bad_index", [
    ([0, 3, 5], 3, 3, 1),
    ([2, 1, -1, 7], 3, -1, 2),
    ([[0], [4]], 4, 4, 1),
    ([0.0, 1.0, 9.0], 3, r"9(\.0)?", 2),
])
def test_out_of_range_sparse_label_raises(isa, labels, c, bad_label, bad_index):
    y_pred = np.full((len(labels), c), 1.0 / c, np.float32)
    with pytest.raises(ValueError, match=rf"label {bad_label} at index {bad_index}\b"):
        ops.loss_and_grad(SPARSE, labels, y_pred)
    with pytest.raises(ValueError, match=rf"label {bad_label} at index {bad_index}\b"):  # the reference agrees
        R.loss_value(SPARSE, labels, y_pred)


@pytest.mark.parametrize("labels", [[0.0, 1.5], [np.nan, 1.0], [1.0, np.inf]])
def test_non_integral_sparse_label_raises(isa, labels):
    with pytest.raises(ValueError, match=r"index (0|1)\b"):
        ops.loss_and_grad(SPARSE, labels, np.full((2, 3), 0.3, np.float32))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_bit_identical_for_any_thread_count(isa, rng, case):
    """5000 x 10: value (blocks of rows summed in order) and grad agree bitwise for 1 and N threads."""
    name, params = case
    y_true, y_pred = _inputs(rng, name, params, 5000, 10)
    w = f32(rng.uniform(0.0, 2.0, 5000))
    runs = []
    for threads in (1, all_threads(), 3):
        with num_threads(threads):
            runs.append(ops.loss_and_grad(name, y_true, y_pred, sample_weight=w, **params))
    for value, grad in runs[1:]:
        assert value == runs[0][0]
        assert_bitwise_equal(grad, runs[0][1])
    expected_value, expected_grad = _reference(name, params, y_true, y_pred, w)
    assert_loss_close(runs[0][0], runs[0][1], expected_value, expected_grad,
                      _tolerance(name, params, y_true, y_pred, w), what="5000 x 10")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_grad_out_and_weight_column(isa, rng, case):
    """grad_out= receives the gradient and is returned; sample_weight (N, 1) equals (N,)."""
    name, params = case
    y_true, y_pred = _inputs(rng, name, params, 6, 4)
    w = f32(rng.uniform(0.0, 2.0, 6))
    value, grad = ops.loss_and_grad(name, y_true, y_pred, sample_weight=w, **params)
    out = np.full(y_pred.shape, np.nan, np.float32)
    value2, grad2 = ops.loss_and_grad(name, y_true, y_pred, sample_weight=w.reshape(6, 1), grad_out=out, **params)
    assert grad2 is out and value2 == value
    assert_bitwise_equal(out, grad)


def test_unknown_loss_raises(isa):
    with pytest.raises(ValueError, match="bogus"):
        ops.loss_and_grad("bogus", [1.0], [1.0])

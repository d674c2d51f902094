"""Checks of the float64 NumPy reference itself (the oracle); does not import gradsmith."""
import math
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as R  # noqa: E402
from reference.numeric import away_from_kinks, case_id, numeric_grad  # noqa: E402


# --- Philox4x32-10 and dropout ----------------------------------------------------------------

@pytest.mark.parametrize("counter, key, expected", [
    ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0],
     [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
])
def test_philox_known_answers(counter, key, expected):
    assert R.philox4x32(np.array([counter], np.uint32), key).tolist() == [expected]


def test_philox_is_vectorized_over_counters():
    counters = np.array([[0, 0, 0, 0], [0xFFFFFFFF] * 4], np.uint32)
    rows = R.philox4x32(counters, [0, 0])
    assert rows[0].tolist() == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    assert rows[1].tolist() == R.philox4x32(counters[1], [0, 0]).tolist()


@pytest.mark.parametrize("seed, offset", [(0, 0), (1234, 7), (2**40 + 5, 2**33 + 1)])
def test_dropout_element_to_counter_mapping(seed, offset):
    shape = (3, 7)  # 21 elements: 6 blocks, the last one partial
    u = R.dropout_uniforms(shape, seed, offset).reshape(-1)
    key = [seed & 0xFFFFFFFF, seed >> 32]
    for i in range(21):
        counter = [(i // 4) & 0xFFFFFFFF, (i // 4) >> 32, offset & 0xFFFFFFFF, offset >> 32]
        r = int(R.philox4x32(np.array(counter, np.uint32), key)[i % 4])
        assert u[i] == (r >> 8) * 2.0**-24


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.9])
def test_dropout_forward_backward(rate):
    x = np.random.default_rng(0).normal(size=(64, 100))
    mask = R.dropout_mask(x.shape, rate, seed=99, offset=3)
    assert abs(mask.mean() - (1 - rate)) < 0.02
    np.testing.assert_array_equal(R.dropout_forward(x, rate, 99, 3), np.where(mask, x / (1 - rate), 0.0))
    np.testing.assert_array_equal(R.dropout_backward(x, rate, 99, 3), R.dropout_forward(x, rate, 99, 3))
    assert not np.array_equal(R.dropout_mask(x.shape, 0.5, 99, 3), R.dropout_mask(x.shape, 0.5, 99, 4))


# --- GEMM -------------------------------------------------------------------------------------

@pytest.mark.parametrize("ta, tb", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_against_triple_loop(ta, tb):
    rng = np.random.default_rng(1)
    a, b, c = rng.normal(size=(3, 4)), rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
    expected = [[2.0 * math.fsum(a[i, k] * b[k, j] for k in range(4)) - 0.5 * c[i, j] for j in range(5)]
                for i in range(3)]
    got = R.gemm(a.T if ta else a, b.T if tb else b, ta, tb, alpha=2.0, beta=-0.5, c=c)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


def test_gemm_edge_cases():
    a, b = np.ones((2, 3)), np.ones((3, 4))
    np.testing.assert_array_equal(R.gemm(a, b, c=np.full((2, 4), np.nan)), np.full((2, 4), 3.0))  # beta 0
    np.testing.assert_array_equal(R.gemm(np.ones((2, 0)), np.ones((0, 4))), np.zeros((2, 4)))
    np.testing.assert_array_equal(R.gemm(np.ones((2, 0)), np.ones((0, 4)), beta=2.0, c=np.ones((2, 4))),
                                  np.full((2, 4), 2.0))
    with pytest.raises(ValueError):
        R.gemm(a, b, beta=1.0)


# --- activations ------------------------------------------------------------------------------

@pytest.mark.parametrize("case", R.ACTIVATIONS, ids=case_id)
def test_activation_backward_matches_finite_differences(case):
    name, params = case
    rng = np.random.default_rng(2)
    x = away_from_kinks(rng.uniform(-4.0, 4.0, size=(3, 5)))
    dy = rng.normal(size=x.shape)
    numeric = numeric_grad(lambda z: np.sum(dy * R.activation_forward(z, name, **params)), x)
    np.testing.assert_allclose(R.activation_backward(dy, x, name, **params), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name, params, x, expected", [
    ("relu", {}, [-1.0, 0.0, 2.0, np.nan], [0.0, 0.0, 2.0, np.nan]),
    ("leaky_relu", {}, [-1.0, 2.0], [-0.2, 2.0]),
    ("elu", {"alpha": 2.0}, [-1.0, 2.0], [2.0 * (math.exp(-1) - 1), 2.0]),
    ("selu", {}, [1.0], [1.0507009873554805]),
    ("hard_sigmoid", {}, [-4.0, 0.0, 1.5, 4.0], [0.0, 0.5, 0.75, 1.0]),
    ("gelu", {"approximate": False}, [1.0], [0.5 * (1 + math.erf(1 / math.sqrt(2)))]),
    ("gelu", {"approximate": True}, [1.0], [0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * 1.044715))]),
    ("softplus", {}, [-800.0, 0.0, 800.0], [0.0, math.log(2.0), 800.0]),
    ("sigmoid", {}, [-800.0, 0.0, 800.0], [0.0, 0.5, 1.0]),
    ("softsign", {}, [-3.0, 1.0], [-0.75, 0.5]),
    ("swish", {}, [1.0], [1.0 / (1.0 + math.exp(-1.0))]),
    ("softmax", {}, [[1000.0, 1000.0], [0.0, math.log(3.0)]], [[0.5, 0.5], [0.25, 0.75]]),
])
def test_activation_values(name, params, x, expected):
    np.testing.assert_allclose(R.activation_forward(x, name, **params), expected, rtol=1e-15, atol=1e-300)


# --- dense ------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", R.ACTIVATIONS, ids=case_id)
def test_dense_backward_matches_finite_differences(case):
    name, params = case
    rng = np.random.default_rng(3)
    x, kernel, bias, dy = rng.normal(size=(3, 4)), rng.normal(size=(4, 5)), rng.normal(size=5), rng.normal(size=(3, 5))
    y, z = R.dense_forward(x, kernel, bias, name, **params)
    assert np.min(np.abs(np.abs(z) - 3.0)) > 1e-3 and np.min(np.abs(z)) > 1e-3  # no kink nearby

    def objective(x_, k_, b_):
        return np.sum(dy * R.dense_forward(x_, k_, b_, name, **params)[0])

    dx, dkernel, dbias = R.dense_backward(dy, x, kernel, z, name, **params)
    for got, numeric in [(dx, numeric_grad(lambda v: objective(v, kernel, bias), x)),
                         (dkernel, numeric_grad(lambda v: objective(x, v, bias), kernel)),
                         (dbias, numeric_grad(lambda v: objective(x, kernel, v), bias))]:
        np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-7)


def test_dense_without_bias():
    x, kernel = np.ones((2, 3)), np.full((3, 4), 0.5)
    y, z = R.dense_forward(x, kernel, None, "linear")
    np.testing.assert_array_equal(y, np.full((2, 4), 1.5))
    np.testing.assert_array_equal(R.dense_backward(np.ones((2, 4)), x, kernel, z)[2], np.full(4, 2.0))


# --- losses -----------------------------------------------------------------------------------

@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", R.LOSSES, ids=case_id)
def test_loss_grad_matches_finite_differences(case, weighted):
    name, params = case
    rng = np.random.default_rng(4)
    y_true, y_pred = R.loss_inputs(name, 4, 3, rng, from_logits=params.get("from_logits", False))
    weights = rng.uniform(0.0, 2.0, size=4) if weighted else None
    numeric = numeric_grad(lambda p: R.loss_value(name, y_true, p, weights, **params), y_pred)
    np.testing.assert_allclose(R.loss_grad(name, y_true, y_pred, weights, **params), numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("case", R.LOSSES, ids=case_id)
def test_loss_with_one_column_y_pred(case):
    """A 1-D y_pred is (N, 1); y_true (N,) or (N, 1) both ways; grad shaped like y_pred."""
    name, params = case
    rng = np.random.default_rng(5)
    y_true, y_pred = R.loss_inputs(name, 5, 1, rng, from_logits=params.get("from_logits", False))
    value_2d = R.loss_value(name, y_true, y_pred, **params)
    for t in (np.reshape(y_true, -1), np.reshape(y_true, (-1, 1))):
        assert R.loss_value(name, t, y_pred.reshape(-1), **params) == pytest.approx(value_2d, rel=1e-14)
        grad = R.loss_grad(name, t, y_pred.reshape(-1), **params)
        assert grad.shape == (5,)
        np.testing.assert_allclose(grad, R.loss_grad(name, y_true, y_pred, **params).reshape(-1), rtol=1e-14)


@pytest.mark.parametrize("name, y_true, y_pred, kwargs, expected", R.KERAS_EXAMPLES)  # Keras 3 docs
def test_loss_keras_documented_values(name, y_true, y_pred, kwargs, expected):
    assert R.loss_value(name, y_true, y_pred, **kwargs) == pytest.approx(expected, abs=1e-3)  # Keras prints 3 digits


@pytest.mark.parametrize("name, y_true, y_pred, kwargs, expected_value, expected_grad", [
    # mae at e = 0: sign(0) = 0 ; huber linear branch: delta * sign(e) / (C N)
    ("mae", [[1.0, 2.0]], [[1.0, 3.0]], {}, 0.5, [[0.0, 0.5]]),
    ("huber", [[0.0, 0.0]], [[3.0, -0.5]], {"delta": 1.0}, (2.5 + 0.125) / 2, [[0.5, -0.25]]),
    # bce: p outside [1e-7, 1 - 1e-7] (the float32 roundings, as Keras clips float32) is clipped
    # and gets no gradient
    ("binary_crossentropy", [[1.0, 0.0]], [[0.0, 0.0]], {},
     -(math.log(float(np.float32(1e-7))) + math.log(1 - float(np.float32(1e-7)))) / 2,
     [[0.0, 0.0]]),
    # cce from logits, label smoothing 0.5, C=2, equal logits: t' = (0.75, 0.25), grad = softmax - t'
    ("categorical_crossentropy", [[1.0, 0.0]], [[0.0, 0.0]], {"from_logits": True, "label_smoothing": 0.5},
     math.log(2.0), [[-0.25, 0.25]]),
])
def test_loss_hand_computed(name, y_true, y_pred, kwargs, expected_value, expected_grad):
    value, grad = R.loss_value_and_grad(name, y_true, y_pred, **kwargs)
    assert value == pytest.approx(expected_value, rel=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-15)


def test_loss_empty_batch_and_bad_labels():
    value, grad = R.loss_value_and_grad("mse", np.zeros((0, 3)), np.zeros((0, 3)))
    assert value == 0.0 and grad.shape == (0, 3)
    with pytest.raises(ValueError, match=r"label 3 at index 1"):
        R.loss_value("sparse_categorical_crossentropy", [0, 3, 5], np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"index 0"):
        R.loss_value("sparse_categorical_crossentropy", [0.5, 1], np.ones((2, 3)))


# --- optimizers -------------------------------------------------------------------------------

def test_sgd_plain_momentum_nesterov_and_no_mutation():
    w, g = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    w_before = w.copy()
    np.testing.assert_allclose(R.sgd(w, g, learning_rate=0.1)[0], w - 0.1 * g, rtol=1e-15)
    m0 = np.array([0.2, -0.1])
    new_w, m = R.sgd(w, g, m0, learning_rate=0.1, momentum=0.9)
    np.testing.assert_allclose(m, 0.9 * m0 - 0.1 * g)
    np.testing.assert_allclose(new_w, w + m)
    np.testing.assert_allclose(R.sgd(w, g, m0, learning_rate=0.1, momentum=0.9, nesterov=True)[0],
                               w + 0.9 * m - 0.1 * g)
    np.testing.assert_array_equal(w, w_before)


@pytest.mark.parametrize("step_fn", [R.adam, R.adamw])
def test_adam_first_step_moves_each_weight_by_about_lr(step_fn):
    w, g = np.array([1.0, -2.0, 3.0]), np.array([0.3, -5.0, 0.02])
    zeros = np.zeros(3)
    new_w, m, v, v_hat = step_fn(w, g, zeros, zeros, step=1, learning_rate=0.01, weight_decay=None)
    np.testing.assert_allclose(new_w - w, -0.01 * np.sign(g), rtol=1e-3)
    np.testing.assert_allclose(m, 0.1 * g)
    np.testing.assert_allclose(v, 0.001 * g**2)
    assert v_hat is None and np.array_equal(zeros, np.zeros(3))


def test_adamw_decay_and_amsgrad():
    w, zeros = np.array([1.0, -2.0]), np.zeros(2)
    new_w = R.adamw(w, zeros, zeros, zeros, step=3, learning_rate=0.1)[0]  # g = 0: decay only
    np.testing.assert_allclose(new_w, w * (1 - 0.004 * 0.1))
    v_big = np.array([4.0, 4.0])
    _, _, v, v_hat = R.adam(w, np.ones(2), zeros, v_big, step=2, amsgrad=True, v_hat=v_big)
    np.testing.assert_allclose(v, 0.999 * 4 + 0.001)
    np.testing.assert_allclose(v_hat, np.maximum(v_big, v))


def test_rmsprop_and_adagrad_first_steps():
    w, g = np.array([1.0, -2.0]), np.array([0.5, -1.0])
    new_w, v, mb, ag = R.rmsprop(w, g, np.zeros(2), learning_rate=0.01, rho=0.9)
    np.testing.assert_allclose(v, 0.1 * g**2)
    np.testing.assert_allclose(new_w, w - 0.01 * g / np.sqrt(0.1 * g**2 + 1e-7))
    assert mb is None and ag is None
    new_w, v, mb, ag = R.rmsprop(w, g, np.zeros(2), learning_rate=0.01, momentum=0.5, centered=True)
    np.testing.assert_allclose(ag, 0.1 * g)
    np.testing.assert_allclose(new_w, w - mb)
    np.testing.assert_allclose(mb, 0.01 * g / np.sqrt(0.1 * g**2 - 0.01 * g**2 + 1e-7))
    new_w, acc = R.adagrad(w, g, np.full(2, 0.1), learning_rate=0.1)
    np.testing.assert_allclose(acc, 0.1 + g**2)
    np.testing.assert_allclose(new_w, w - 0.1 * g / np.sqrt(0.1 + g**2 + 1e-7))


def test_clipping_and_lists():
    grads = [np.array([3.0, 4.0]), np.array([0.0, 12.0])]  # norms 5 and 12, global 13
    assert R.global_norm(grads) == 13.0
    np.testing.assert_allclose(R.clip_by_value(grads, 1.0)[1], [0.0, 1.0])
    clipped = R.clip_by_norm(grads, 6.0)
    np.testing.assert_allclose(clipped[0], grads[0])  # norm 5 <= 6: unchanged
    np.testing.assert_allclose(clipped[1], [0.0, 6.0])
    np.testing.assert_allclose(R.global_norm(R.clip_by_global_norm(grads, 6.5)), 6.5)
    params = [np.ones(2), np.ones(2)]
    new = R.sgd(params, grads, learning_rate=1.0, global_clipnorm=6.5)[0]
    assert isinstance(new, list)
    np.testing.assert_allclose(new[1], [1.0, -5.0])
    assert np.array_equal(grads[1], [0.0, 12.0])  # grads not modified
    with pytest.raises(ValueError):
        R.sgd(params, grads, clipvalue=1.0, clipnorm=1.0)


# --- reductions -------------------------------------------------------------------------------

def test_sums():
    x = np.arange(6.0).reshape(2, 3)
    assert R.sum(x) == 15.0 and R.sum_squares(x) == 55.0
    np.testing.assert_array_equal(R.sum_rows(x), [3.0, 5.0, 7.0])


@pytest.mark.parametrize("y_true, y_pred, kind, expected", [
    ([1, 0, 1, 0], [0.7, 0.5, 0.5, np.nan], "binary", 3),  # p > 0.5 strictly; NaN -> 0.0
    ([[0, 1, 0], [1, 0, 0]], [[0.2, 0.2, 0.1], [0.9, 0.0, 0.1]], "categorical", 1),  # tie -> first index
    ([2, 1, 0], [[1.0, np.nan, np.nan], [0.0, np.nan, 5.0], [0.1, 0.2, 0.3]], "sparse", 1),  # first NaN wins
    ([[1.0], [0.0]], [[0.3], [0.9]], "sparse", 1),
])
def test_count_correct(y_true, y_pred, kind, expected):
    assert R.count_correct(y_true, y_pred, kind) == expected


def test_binary_confusion():
    y_true = [1.0, 1.0, 0.0, 0.0, 2.0, 0.0]
    y_pred = [0.9, 0.5, 0.6, 0.1, 0.51, 0.5]
    assert R.binary_confusion(y_true, y_pred) == (2, 1, 2, 1)

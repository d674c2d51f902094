"""gradsmith.losses (Keras 3 losses): values from Keras's documented examples, values and gradients against
the float64 oracle tests/reference/losses.py and hand-written NumPy formulas, Keras's reductions and shape
rules, lookup and config round trips."""
import json

import numpy as np
import pytest

import gradsmith
import reference as R
from gradsmith import losses as L
from gradsmith import ops

# --------------------------------------------------------------------------- Keras's documented examples
BCE_T, BCE_P = [[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]
CCE_T, CCE_P = [[0, 1, 0], [0, 0, 1]], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]
REG_T, REG_P = [[0.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 0.0]]


def test_binary_crossentropy_examples():
    assert L.BinaryCrossentropy()(BCE_T, BCE_P) == pytest.approx(0.815, abs=1e-3)
    assert L.BinaryCrossentropy()(BCE_T, BCE_P, sample_weight=[1, 0]) == pytest.approx(0.458, abs=1e-3)
    assert L.BinaryCrossentropy(reduction="sum")(BCE_T, BCE_P) == pytest.approx(1.630, abs=1e-3)
    np.testing.assert_allclose(L.BinaryCrossentropy(reduction=None)(BCE_T, BCE_P), [0.916, 0.714], atol=1e-3)
    logits_t, logits_p = [[0, 1], [0, 0]], [[-18.6, 0.51], [2.94, -12.8]]
    bce = L.BinaryCrossentropy(from_logits=True)
    assert bce([0, 1, 0, 0], [-18.6, 0.51, 2.94, -12.8]) == pytest.approx(0.8654, abs=1e-4)
    assert bce(logits_t, logits_p) == pytest.approx(0.8654, abs=1e-4)
    assert bce(logits_t, logits_p, sample_weight=[0.8, 0.2]) == pytest.approx(0.243, abs=1e-3)
    assert L.BinaryCrossentropy(from_logits=True, reduction="sum")(logits_t, logits_p) == pytest.approx(1.730, abs=1e-3)
    np.testing.assert_allclose(L.BinaryCrossentropy(from_logits=True, reduction=None)(logits_t, logits_p),
                               [0.235, 1.496], atol=1e-3)


def test_categorical_crossentropy_examples():
    cce = L.CategoricalCrossentropy()
    assert cce(CCE_T, CCE_P) == pytest.approx(1.177, abs=1e-3)
    assert cce(CCE_T, CCE_P, sample_weight=np.array([0.3, 0.7])) == pytest.approx(0.814, abs=1e-3)
    assert L.CategoricalCrossentropy(reduction="sum")(CCE_T, CCE_P) == pytest.approx(2.354, abs=1e-3)
    np.testing.assert_allclose(L.CategoricalCrossentropy(reduction=None)(CCE_T, CCE_P), [0.0513, 2.303], atol=1e-3)


def test_sparse_categorical_crossentropy_examples():
    scce = L.SparseCategoricalCrossentropy()
    assert scce([1, 2], CCE_P) == pytest.approx(1.177, abs=1e-3)
    assert scce([1, 2], CCE_P, sample_weight=np.array([0.3, 0.7])) == pytest.approx(0.814, abs=1e-3)
    assert L.SparseCategoricalCrossentropy(reduction="sum")([1, 2], CCE_P) == pytest.approx(2.354, abs=1e-3)
    np.testing.assert_allclose(L.SparseCategoricalCrossentropy(reduction=None)([1, 2], CCE_P), [0.0513, 2.303],
                               atol=1e-3)
    assert scce([[1], [2]], CCE_P) == pytest.approx(1.177, abs=1e-3)  # labels (N, 1)


def test_regression_examples():
    for cls in (L.MeanSquaredError, L.MeanAbsoluteError):
        assert cls()(REG_T, REG_P) == 0.5
        assert cls()(REG_T, REG_P, sample_weight=[0.7, 0.3]) == pytest.approx(0.25)
        assert cls(reduction="sum")(REG_T, REG_P) == 1.0
        np.testing.assert_array_equal(cls(reduction=None)(REG_T, REG_P), [0.5, 0.5])
    h = L.Huber()
    assert h(BCE_T, BCE_P) == pytest.approx(0.155, abs=1e-6)
    assert h(BCE_T, BCE_P, sample_weight=[1, 0]) == pytest.approx(0.09, abs=1e-6)
    assert L.Huber(reduction="sum")(BCE_T, BCE_P) == pytest.approx(0.31, abs=1e-6)
    np.testing.assert_allclose(L.Huber(reduction=None)(BCE_T, BCE_P), [0.18, 0.13], atol=1e-6)


def test_call_returns_a_python_float():
    value = L.MeanSquaredError()(REG_T, REG_P)
    assert type(value) is float


def test_default_names_and_reduction():
    expected = {L.MeanSquaredError: "mean_squared_error", L.MeanAbsoluteError: "mean_absolute_error",
                L.Huber: "huber_loss", L.BinaryCrossentropy: "binary_crossentropy",
                L.CategoricalCrossentropy: "categorical_crossentropy",
                L.SparseCategoricalCrossentropy: "sparse_categorical_crossentropy"}
    for cls, name in expected.items():
        loss = cls()
        assert loss.name == name and loss.reduction == "sum_over_batch_size"
    with pytest.raises(ValueError, match="reduction"):
        L.MeanSquaredError(reduction="average")


# --------------------------------------------------------------------------- against the float64 oracle
CLASSES = {
    "mean_squared_error": (L.MeanSquaredError, {}),
    "mse": (L.MeanSquaredError, {}),
    "mean_absolute_error": (L.MeanAbsoluteError, {}),
    "mae": (L.MeanAbsoluteError, {}),
    "huber": (L.Huber, {}),
    "binary_crossentropy": (L.BinaryCrossentropy, {}),
    "categorical_crossentropy": (L.CategoricalCrossentropy, {}),
    "sparse_categorical_crossentropy": (L.SparseCategoricalCrossentropy, {}),
    "hinge": (L.Hinge, {}),
    "squared_hinge": (L.SquaredHinge, {}),
    "log_cosh": (L.LogCosh, {}),
    "poisson": (L.Poisson, {}),
    "mean_squared_logarithmic_error": (L.MeanSquaredLogarithmicError, {}),
    "msle": (L.MeanSquaredLogarithmicError, {}),
    "mean_absolute_percentage_error": (L.MeanAbsolutePercentageError, {}),
    "mape": (L.MeanAbsolutePercentageError, {}),
    "kl_divergence": (L.KLDivergence, {}),
    "kld": (L.KLDivergence, {}),
    "categorical_hinge": (L.CategoricalHinge, {}),
    "cosine_similarity": (L.CosineSimilarity, {}),
}
# Keras 3's SparseCategoricalCrossentropy has no label_smoothing.
ORACLE_CASES = [(n, kw) for n, kw in R.losses.LOSSES
                if not (n == "sparse_categorical_crossentropy" and "label_smoothing" in kw)]


def make(name, kwargs):
    cls, _ = CLASSES[name]
    return cls(**kwargs)


@pytest.mark.parametrize("name, kwargs", ORACLE_CASES, ids=lambda v: v if isinstance(v, str) else
                         "-".join(f"{k}={x}" for k, x in v.items()) or "default")
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_value_and_grad_match_oracle(name, kwargs, weighted, rng):
    y_true, y_pred = R.losses.loss_inputs(name, 7, 4, rng, from_logits=kwargs.get("from_logits", False))
    y_pred = np.asarray(y_pred, dtype=np.float32)
    sw = rng.uniform(0.1, 2.0, 7).astype(np.float32) if weighted else None
    want_value, want_grad = R.loss_value_and_grad(name, y_true, y_pred.astype(np.float64), sample_weight=sw,
                                                  **kwargs)
    loss = make(name, kwargs)
    value, grad = loss.value_and_grad(y_true, y_pred, sample_weight=sw)
    assert type(value) is float and grad.dtype == np.float32 and grad.shape == y_pred.shape
    assert value == pytest.approx(want_value, rel=2e-6, abs=1e-7)
    np.testing.assert_allclose(grad, want_grad, rtol=2e-5, atol=1e-7)
    assert loss(y_true, y_pred, sample_weight=sw) == pytest.approx(value, rel=1e-12)
    # the per-sample function (NumPy float32) agrees with the kernel's reduced value
    per_sample = loss.fn(y_true, y_pred, **loss._fn_kwargs)
    w = np.ones(7) if sw is None else sw
    assert np.sum(w * per_sample) / 7 == pytest.approx(want_value, rel=2e-5, abs=1e-6)


def test_value_and_grad_calls_the_kernel_once(rng, monkeypatch):
    calls = []
    real = ops.loss_and_grad

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(ops, "loss_and_grad", counting)
    y = rng.standard_normal((5, 3)).astype(np.float32)
    L.MeanSquaredError().value_and_grad(y, y + 1)
    L.SparseCategoricalCrossentropy(from_logits=True).value_and_grad([0, 1, 2, 1, 0], y)
    assert calls == ["mean_squared_error", "sparse_categorical_crossentropy"]


def test_mse_gradient_by_hand():
    t = np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]], np.float32)
    p = np.array([[0.5, 0.0, 2.5], [1.0, 3.0, -1.0]], np.float32)
    value, grad = L.MeanSquaredError().value_and_grad(t, p)
    # value = sum((p - t)^2) / (N C); grad = 2 (p - t) / (N C)
    assert value == pytest.approx(np.sum((p - t) ** 2) / 6)
    np.testing.assert_allclose(grad, 2 * (p - t) / 6, rtol=1e-6)


# --------------------------------------------------------------------------- reductions
@pytest.mark.parametrize("reduction", ["sum", "mean", "mean_with_sample_weight", "none", None])
@pytest.mark.parametrize("name", ["mean_squared_error", "huber", "binary_crossentropy",
                                  "sparse_categorical_crossentropy"])
def test_reductions(name, reduction, rng):
    y_true, y_pred = R.losses.loss_inputs(name, 6, 3, rng)
    y_pred = np.asarray(y_pred, np.float32)
    sw = rng.uniform(0.1, 2.0, 6).astype(np.float32)
    base_value, base_grad = R.loss_value_and_grad(name, y_true, y_pred.astype(np.float64), sample_weight=sw)
    per_sample = R.loss_value_and_grad(name, y_true, y_pred.astype(np.float64))  # unweighted mean
    loss = make(name, {}).__class__(reduction=reduction)
    if reduction in (None, "none"):
        got = loss(y_true, y_pred, sample_weight=sw)
        assert got.shape == (6,) and got.dtype == np.float32
        assert np.sum(got) == pytest.approx(base_value * 6, rel=1e-5)
        scale = 6.0  # value_and_grad differentiates the sum of the weighted per-sample losses
    else:
        # Keras: 'sum' -> sum(w L); 'mean' -> sum(w L) / N; 'mean_with_sample_weight' -> sum(w L) / sum(w)
        scale = {"sum": 6.0, "mean": 1.0, "mean_with_sample_weight": 6.0 / float(np.sum(sw, dtype=np.float64))}[
            reduction]
        assert loss(y_true, y_pred, sample_weight=sw) == pytest.approx(base_value * scale, rel=2e-6)
    value, grad = loss.value_and_grad(y_true, y_pred, sample_weight=sw)
    assert value == pytest.approx(base_value * scale, rel=2e-6)
    np.testing.assert_allclose(grad, base_grad * scale, rtol=2e-5, atol=1e-7)
    assert per_sample[0] > 0


def test_mean_with_sample_weight_zero_weights():
    loss = L.MeanSquaredError(reduction="mean_with_sample_weight")
    assert loss(REG_T, REG_P, sample_weight=[0.0, 0.0]) == 0.0  # Keras: divide_no_nan
    assert loss(REG_T, REG_P) == 0.5  # no weights: divided by the count


def test_scalar_and_column_sample_weights(rng):
    t = rng.standard_normal((4, 3)).astype(np.float32)
    p = rng.standard_normal((4, 3)).astype(np.float32)
    loss = L.MeanAbsoluteError()
    assert loss(t, p, sample_weight=2.0) == pytest.approx(2 * loss(t, p), rel=1e-6)
    sw = np.array([0.5, 1.0, 0.0, 2.0], np.float32)
    assert loss(t, p, sample_weight=sw[:, None]) == pytest.approx(loss(t, p, sample_weight=sw), rel=1e-7)


# --------------------------------------------------------------------------- Keras's shape rules
def test_labels_n_against_predictions_n_by_1(rng):
    t = rng.integers(0, 2, 6).astype(np.float32)
    p = rng.uniform(0.05, 0.95, (6, 1)).astype(np.float32)
    for cls in (L.BinaryCrossentropy, L.MeanSquaredError, L.Huber):
        v1, g1 = cls().value_and_grad(t, p)
        v2, g2 = cls().value_and_grad(t[:, None], p)
        assert v1 == v2 and g1.shape == (6, 1)
        np.testing.assert_array_equal(g1, g2)


def test_one_dimensional_predictions_are_one_sample():
    # Keras: a per-sample loss is a mean over the last axis, so 1-D inputs give ONE loss, which no
    # reduction touches (sum == mean) and per-sample weights scale it by their mean (sum / count).
    t, p = [0.0, 1.0, 0.0, 1.0], [0.2, 0.6, 0.1, 0.7]
    mean = np.mean(np.square(np.subtract(t, p)))
    assert L.MeanSquaredError()(t, p) == pytest.approx(mean)
    assert L.MeanSquaredError(reduction="sum")(t, p) == pytest.approx(mean)
    assert L.MeanSquaredError()(t, p, sample_weight=[1.0, 0.0, 0.0, 0.0]) == pytest.approx(mean / 4)
    assert L.mean_squared_error(t, p).shape == ()
    _, grad = L.MeanSquaredError(reduction="sum").value_and_grad(t, p)
    np.testing.assert_allclose(grad, 2 * (np.float32(p) - np.float32(t)) / 4, rtol=1e-6)


def test_sequence_predictions(rng):
    # (N, T, C): N*T per-sample losses; 'sum_over_batch_size' divides by N*T
    t = rng.standard_normal((2, 5, 3)).astype(np.float32)
    p = rng.standard_normal((2, 5, 3)).astype(np.float32)
    per_sample = L.mean_squared_error(t, p)
    assert per_sample.shape == (2, 5)
    value, grad = L.MeanSquaredError().value_and_grad(t, p)
    assert value == pytest.approx(np.mean((p.astype(np.float64) - t) ** 2), rel=1e-6)
    np.testing.assert_allclose(grad, 2 * (p - t) / 30, rtol=1e-5)
    sw = np.array([1.0, 3.0], np.float32)  # per sequence
    weighted = L.MeanSquaredError()(t, p, sample_weight=sw)
    assert weighted == pytest.approx(np.sum(sw[:, None] * per_sample) / 10, rel=1e-6)
    labels = rng.integers(0, 3, (2, 5))
    v, g = L.SparseCategoricalCrossentropy(from_logits=True).value_and_grad(labels, p)
    want_v, want_g = R.loss_value_and_grad("sparse_categorical_crossentropy", labels.reshape(-1),
                                           p.reshape(-1, 3).astype(np.float64), from_logits=True)
    assert v == pytest.approx(want_v, rel=1e-6)
    np.testing.assert_allclose(g, want_g.reshape(p.shape), rtol=1e-5, atol=1e-8)


def test_shape_errors():
    with pytest.raises(ValueError):
        L.MeanSquaredError()(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError):  # sparse labels given to the one-hot loss
        L.CategoricalCrossentropy()([[0], [2], [1]], np.full((3, 3), 1 / 3))
    with pytest.raises(ValueError):
        L.BinaryCrossentropy()(np.zeros((3, 1)), np.full((3, 2), 0.5))
    # the regression losses broadcast y_true, as Keras's arithmetic does
    assert L.MeanSquaredError()(np.ones((3, 1)), np.zeros((3, 4))) == 1.0
    with pytest.raises(ValueError):
        L.SparseCategoricalCrossentropy()([0, 1], np.full((3, 2), 0.5))
    with pytest.raises(ValueError):
        L.SparseCategoricalCrossentropy()([0, 5], np.full((2, 3), 1 / 3))
    with pytest.raises(TypeError):
        L.MeanSquaredError()(["a", "b"], [1.0, 2.0])


def test_ignore_class(rng):
    p = rng.standard_normal((6, 4)).astype(np.float32)
    labels = np.array([0, -1, 3, 2, -1, 1])
    keep = labels != -1
    loss = L.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
    value, grad = loss.value_and_grad(labels, p)
    want_v, want_g = R.loss_value_and_grad("sparse_categorical_crossentropy", labels[keep],
                                           p[keep].astype(np.float64), from_logits=True)
    # Keras: ignored samples are masked out; the mean runs over the 4 valid ones
    assert value == pytest.approx(want_v, rel=1e-6)
    np.testing.assert_allclose(grad[keep], want_g, rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(grad[~keep], 0.0)
    none = L.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1, reduction=None)(labels, p)
    assert none[1] == 0 and none[4] == 0
    assert np.sum(none) / 4 == pytest.approx(value, rel=1e-6)


# --------------------------------------------------------------------------- functions
def test_functions_return_per_sample_arrays(rng):
    t = rng.uniform(0, 1, (5, 3)).astype(np.float32)
    p = rng.uniform(0.05, 0.95, (5, 3)).astype(np.float32)
    t64, p64 = t.astype(np.float64), p.astype(np.float64)
    cases = {
        L.mean_squared_error: np.mean((t64 - p64) ** 2, axis=-1),
        L.mean_absolute_error: np.mean(np.abs(t64 - p64), axis=-1),
        L.binary_crossentropy: np.mean(-(t64 * np.log(p64) + (1 - t64) * np.log(1 - p64)), axis=-1),
    }
    e = p64 - t64
    cases[L.huber] = np.mean(np.where(np.abs(e) <= 1.0, 0.5 * e ** 2, np.abs(e) - 0.5), axis=-1)
    for fn, want in cases.items():
        got = fn(t, p)
        assert got.shape == (5,) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5)
    onehot = np.eye(3, dtype=np.float32)[[0, 2, 1, 1, 0]]
    q = p64 / p64.sum(axis=-1, keepdims=True)
    want = -np.log(q[np.arange(5), [0, 2, 1, 1, 0]])
    np.testing.assert_allclose(L.categorical_crossentropy(onehot, p), want, rtol=1e-5)
    np.testing.assert_allclose(L.sparse_categorical_crossentropy([0, 2, 1, 1, 0], p), want, rtol=1e-5)
    logits = rng.standard_normal((5, 3))
    lse = np.log(np.sum(np.exp(logits), axis=-1))
    np.testing.assert_allclose(L.sparse_categorical_crossentropy([0, 2, 1, 1, 0], logits, from_logits=True),
                               lse - logits[np.arange(5), [0, 2, 1, 1, 0]], rtol=1e-5)
    assert L.mse is L.mean_squared_error and L.mae is L.mean_absolute_error
    assert L.MSE is L.mean_squared_error and L.MAE is L.mean_absolute_error


def test_label_smoothing_formulas():
    t = np.array([[0.0, 1.0]], np.float32)
    p = np.array([[0.3, 0.8]], np.float32)
    # BCE: t' = t (1 - ls) + 0.5 ls
    ts = t * 0.8 + 0.1
    want = np.mean(-(ts * np.log(p.astype(np.float64)) + (1 - ts) * np.log(1 - p.astype(np.float64))))
    assert L.BinaryCrossentropy(label_smoothing=0.2)(t, p) == pytest.approx(want, rel=1e-6)
    # CCE: t' = t (1 - ls) + ls / C
    tc = t * 0.8 + 0.1
    q = p.astype(np.float64) / p.sum()
    assert L.CategoricalCrossentropy(label_smoothing=0.2)(t, p) == pytest.approx(-np.sum(tc * np.log(q)), rel=1e-6)


# --------------------------------------------------------------------------- custom losses
def test_custom_function_is_differentiated_numerically(rng):
    def my_loss(y_true, y_pred):
        return np.mean((y_pred - y_true) ** 4, axis=-1)

    loss = L.get(my_loss)
    assert isinstance(loss, L.LossFunctionWrapper) and loss.name == "my_loss"
    t = rng.standard_normal((4, 3)).astype(np.float32)
    p = rng.standard_normal((4, 3)).astype(np.float32)
    sw = np.array([1.0, 0.5, 2.0, 0.0], np.float32)
    value, grad = loss.value_and_grad(t, p, sample_weight=sw)
    e = p.astype(np.float64) - t
    assert value == pytest.approx(np.sum(sw * np.mean(e ** 4, axis=-1)) / 4, rel=1e-5)
    np.testing.assert_allclose(grad, sw[:, None] * 4 * e ** 3 / 3 / 4, rtol=1e-5, atol=1e-6)


def test_custom_function_serializes_by_name():
    def my_loss(y_true, y_pred):
        return np.mean(np.abs(y_pred - y_true), axis=-1)

    blob = json.loads(json.dumps(L.serialize(L.get(my_loss))))
    assert blob["config"]["fn"]["config"] == "my_loss"
    with pytest.raises(ValueError, match="custom_objects"):
        L.deserialize(blob)
    restored = L.deserialize(blob, custom_objects={"my_loss": my_loss})
    assert restored.fn is my_loss and restored.name == "my_loss"


def test_custom_loss_subclass(rng):
    class Cubic(L.Loss):
        def call(self, y_true, y_pred):
            return np.sum(np.abs(y_pred - y_true) ** 3, axis=-1)

    loss = Cubic(reduction="sum")
    assert loss.name.startswith("cubic")
    t = rng.standard_normal((3, 2)).astype(np.float32)
    p = rng.standard_normal((3, 2)).astype(np.float32)
    value, grad = loss.value_and_grad(t, p)
    e = p.astype(np.float64) - t
    assert value == pytest.approx(np.sum(np.abs(e) ** 3), rel=1e-5)
    np.testing.assert_allclose(grad, 3 * e * np.abs(e), rtol=1e-5, atol=1e-6)
    assert Cubic.from_config(loss.get_config()).get_config() == loss.get_config()


# --------------------------------------------------------------------------- lookup and config
@pytest.mark.parametrize("identifier, cls", [
    ("mse", L.MeanSquaredError), ("MSE", L.MeanSquaredError), ("mean_squared_error", L.MeanSquaredError),
    ("MeanSquaredError", L.MeanSquaredError), ("mae", L.MeanAbsoluteError),
    ("mean_absolute_error", L.MeanAbsoluteError), ("huber", L.Huber), ("Huber", L.Huber),
    ("binary_crossentropy", L.BinaryCrossentropy), ("bce", L.BinaryCrossentropy),
    ("BinaryCrossentropy", L.BinaryCrossentropy), ("categorical_crossentropy", L.CategoricalCrossentropy),
    ("sparse_categorical_crossentropy", L.SparseCategoricalCrossentropy),
    ("SparseCategoricalCrossentropy", L.SparseCategoricalCrossentropy),
])
def test_get_by_name(identifier, cls):
    loss = L.get(identifier)
    assert type(loss) is cls
    value, grad = loss.value_and_grad([[0.0, 1.0]], [[0.25, 0.75]]) if cls is not L.SparseCategoricalCrossentropy \
        else loss.value_and_grad([1], [[0.25, 0.75]])
    assert np.isfinite(value) and grad.shape == (1, 2)


def test_get_other_identifiers():
    loss = L.BinaryCrossentropy(from_logits=True)
    assert L.get(loss) is loss
    assert L.get(None) is None
    assert type(L.get(L.Huber)) is L.Huber
    from_dict = L.get({"class_name": "CategoricalCrossentropy", "config": {"from_logits": True}})
    assert type(from_dict) is L.CategoricalCrossentropy and from_dict.from_logits is True
    fn = L.get(L.mean_absolute_error)
    assert type(fn) is L.MeanAbsoluteError and fn.name == "mean_absolute_error"
    assert type(L.get({"class_name": "function", "config": "mean_squared_error"})) is L.MeanSquaredError
    with pytest.raises(ValueError):
        L.get("not_a_loss")
    with pytest.raises(ValueError):
        L.get(3.5)
    assert gradsmith.losses is L


CONFIG_CASES = [
    L.MeanSquaredError(reduction="sum", name="m"),
    L.MeanAbsoluteError(),
    L.Huber(delta=0.3, reduction="mean_with_sample_weight"),
    L.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
    L.CategoricalCrossentropy(label_smoothing=0.2, reduction=None),
    L.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    L.LossFunctionWrapper(L.huber, delta=2.0, name="wrapped"),
]


@pytest.mark.parametrize("loss", CONFIG_CASES, ids=lambda x: type(x).__name__)
def test_config_round_trip(loss, rng):
    config = loss.get_config()
    again = type(loss).from_config(config)
    assert again.get_config() == config
    blob = json.loads(json.dumps(L.serialize(loss)))
    restored = L.deserialize(blob)
    assert type(restored) is type(loss) and restored.get_config() == config
    t = rng.uniform(0, 1, (4, 3)).astype(np.float32)
    p = rng.uniform(0.1, 0.9, (4, 3)).astype(np.float32)
    if isinstance(loss, L.SparseCategoricalCrossentropy):
        t = rng.integers(0, 3, 4)
    np.testing.assert_array_equal(np.asarray(restored(t, p)), np.asarray(loss(t, p)))


def test_keras_config_keys():
    assert L.MeanSquaredError().get_config() == {"name": "mean_squared_error", "reduction": "sum_over_batch_size"}
    assert L.BinaryCrossentropy().get_config() == {"name": "binary_crossentropy", "reduction": "sum_over_batch_size",
                                                   "from_logits": False, "label_smoothing": 0.0, "axis": -1}
    assert L.SparseCategoricalCrossentropy().get_config() == {
        "name": "sparse_categorical_crossentropy", "reduction": "sum_over_batch_size", "from_logits": False,
        "ignore_class": None}
    assert L.serialize(L.mean_squared_error) == {"module": "keras.losses", "class_name": "function",
                                                 "config": "mean_squared_error", "registered_name": "function"}

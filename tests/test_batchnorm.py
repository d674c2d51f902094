"""ops.batch_norm_forward / batch_norm_backward against the float64 reference (tests/reference/normalization.py).

Tolerances. The statistics are summed in double from float32 inputs, then rounded: mean and variance within
a few EPS32 of the reference relative to the sizes summed (|x| for the mean, the squared deviations for the
variance). y = x s + (beta - mean s) is three float32 roundings on terms of size |x s| + |beta| + |mean s|.
The gradients sum in double and combine a few float32 terms: within a few EPS32 of the sizes of those terms.
"""
import numpy as np
import pytest

import reference as R
from gradsmith import ops
from helpers import EPS32, all_threads, assert_bitwise_equal, assert_within, num_threads

ULPS = 8
SHAPES = [(1, 1), (2, 3), (7, 64), (33, 65), (300, 130)]


def _inputs(rng, n, c, offset=1.5, spread=3.0):
    x = (rng.standard_normal((n, c)) * spread + offset).astype(np.float32)
    gamma = rng.uniform(0.5, 2.0, c).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32)
    return x, gamma, beta


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_forward_with_batch_statistics(rng, threads, shape, affine):
    x, gamma, beta = _inputs(rng, *shape)
    g, b = (gamma, beta) if affine else (None, None)
    y, mean, var = ops.batch_norm_forward(x, g, b, epsilon=1e-3)
    want_y, want_mean, want_var = R.batch_norm_forward(x, g, b, 1e-3)
    assert mean.dtype == var.dtype == y.dtype == np.float32
    x64 = x.astype(np.float64)
    assert_within(mean, want_mean, ULPS * EPS32 * np.abs(x64).mean(axis=0), "mean")
    assert_within(var, want_var, ULPS * EPS32 * (want_var + np.abs(x64 - want_mean).max(axis=0) * EPS32 * 4),
                  "variance")
    # y from float32 statistics: the variance's rounding moves s by half its relative error
    s = (gamma if affine else 1.0) / np.sqrt(want_var + 1e-3)
    size = np.abs(x64 * s) + np.abs(want_mean * s) + (np.abs(beta) if affine else 0.0)
    assert_within(y, want_y, ULPS * EPS32 * size, "y")


def test_forward_with_moving_statistics(rng):
    x, gamma, beta = _inputs(rng, 40, 9)
    mean = rng.standard_normal(9).astype(np.float32)
    var = rng.uniform(0.1, 3.0, 9).astype(np.float32)
    y = ops.batch_norm_forward(x, gamma, beta, epsilon=0.01, mean=mean, variance=var)
    want, _, _ = R.batch_norm_forward(x, gamma, beta, 0.01, mean, var)
    s = gamma / np.sqrt(var.astype(np.float64) + 0.01)
    assert_within(y, want, ULPS * EPS32 * (np.abs(x * s) + np.abs(mean * s) + np.abs(beta)), "y")


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("batch_statistics", [True, False])
def test_backward(rng, threads, shape, batch_statistics):
    x, gamma, _ = _inputs(rng, *shape)
    dy = rng.standard_normal(shape).astype(np.float32)
    _, mean, var = ops.batch_norm_forward(x, gamma, None)
    dx, dgamma, dbeta = ops.batch_norm_backward(dy, x, mean, var, gamma, batch_statistics=batch_statistics)
    want_dx, want_dgamma, want_dbeta = R.batch_norm_backward(dy, x, mean, var, gamma,
                                                             batch_statistics=batch_statistics)
    dy64 = np.abs(dy.astype(np.float64))
    xhat = np.abs((x - mean.astype(np.float64)) / np.sqrt(var.astype(np.float64) + 1e-3))
    assert_within(dbeta, want_dbeta, ULPS * EPS32 * dy64.sum(axis=0), "dbeta")
    assert_within(dgamma, want_dgamma, ULPS * EPS32 * (dy64 * (xhat + 1)).sum(axis=0), "dgamma")
    s = gamma / np.sqrt(var.astype(np.float64) + 1e-3)
    terms = dy64 + ((dy64.sum(axis=0) + xhat * (dy64 * (xhat + 1)).sum(axis=0)) / shape[0] if batch_statistics
                    else 0.0)
    assert_within(dx, want_dx, ULPS * EPS32 * np.abs(s) * (terms + 1), "dx")


def test_backward_matches_finite_differences(rng):
    """The batch-statistics gradient is the derivative of sum(w * y) with the statistics recomputed."""
    x, gamma, beta = _inputs(rng, 6, 4)
    w = rng.standard_normal((6, 4))
    y, mean, var = ops.batch_norm_forward(x, gamma, beta)
    dx, dgamma, dbeta = ops.batch_norm_backward(w.astype(np.float32), x, mean, var, gamma)

    def loss(xx, gg, bb):
        return float(np.sum(w * R.batch_norm_forward(xx, gg, bb, 1e-3)[0]))

    x64, g64, b64 = x.astype(np.float64), gamma.astype(np.float64), beta.astype(np.float64)
    h = 1e-6
    for arr, got in ((x64, dx), (g64, dgamma), (b64, dbeta)):
        numeric = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            up, down = arr.copy(), arr.copy()
            up[idx] += h
            down[idx] -= h
            args_up = [up if a is arr else a for a in (x64, g64, b64)]
            args_down = [down if a is arr else a for a in (x64, g64, b64)]
            numeric[idx] = (loss(*args_up) - loss(*args_down)) / (2 * h)
        np.testing.assert_allclose(got, numeric, rtol=1e-4, atol=1e-5)


def test_bit_identical_for_any_thread_count(rng):
    x, gamma, beta = _inputs(rng, 3000, 200)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    runs = []
    for n in (1, all_threads()):
        with num_threads(n):
            y, mean, var = ops.batch_norm_forward(x, gamma, beta)
            runs.append((y, mean, var) + ops.batch_norm_backward(dy, x, mean, var, gamma))
    for a, b in zip(*runs):
        assert_bitwise_equal(a, b)


def test_errors():
    x = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match="epsilon"):
        ops.batch_norm_forward(x, epsilon=0.0)
    with pytest.raises(ValueError, match="both mean and variance"):
        ops.batch_norm_forward(x, mean=np.zeros(3))
    with pytest.raises(ValueError, match="gamma"):
        ops.batch_norm_forward(x, np.ones(4))
    with pytest.raises(ValueError, match="at least one row"):
        ops.batch_norm_forward(np.ones((0, 3), np.float32))
    with pytest.raises(ValueError, match="dy"):
        ops.batch_norm_backward(np.ones((4, 2)), x, np.zeros(3), np.ones(3))


# --------------------------------------------------------------------------- the Keras layer
def _keras_example():
    """A Dense(3, tanh) -> BatchNormalization(momentum=0.9, epsilon=0.01) -> Dense(1) model on fixed data and
    weights (the numbers below are Keras 3.15's, JAX backend, for the same program)."""
    import gradsmith as keras

    x = (np.arange(24, dtype=np.float32).reshape(6, 4) % 7 - 3) / 2
    y = np.array([[0.5], [-1.0], [2.0], [0.0], [1.0], [-0.5]], np.float32)
    model = keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(3, activation="tanh"),
                              keras.layers.BatchNormalization(momentum=0.9, epsilon=0.01), keras.layers.Dense(1)])
    model.set_weights([(np.arange(12, dtype=np.float32).reshape(4, 3) % 5 - 2) / 4,
                       np.array([0.1, -0.2, 0.3], np.float32), np.array([1.0, 1.5, 0.5], np.float32),
                       np.array([0.0, 0.1, -0.1], np.float32), np.zeros(3, np.float32), np.ones(3, np.float32),
                       np.array([[0.5], [-0.25], [1.0]], np.float32), np.array([0.05], np.float32)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model, x, y


KERAS_LOSSES = [0.9099627137184143, 0.3931310176849365, 0.2584861218929291]
KERAS_WEIGHTS = [
    [[-0.41285404562950134, -0.24119940400123596, -0.0725327730178833],
     [0.3864596486091614, 0.47188135981559753, -0.5163489580154419],
     [-0.3064602315425873, 0.016290465369820595, 0.26028451323509216],
     [0.4605990946292877, -0.5327890515327454, -0.18773780763149261]],
    [0.12523765861988068, -0.210671529173851, 0.31588226556777954],
    [1.0872397422790527, 1.4809596538543701, 0.2732993960380554],  # gamma
    [0.07779356092214584, 0.07139459252357483, 0.03977537527680397],  # beta
    [0.013550021685659885, -0.030514555051922798, 0.08578605204820633],  # moving_mean
    [0.8252210021018982, 0.823065459728241, 0.7777475714683533],  # moving_variance
    [[0.6651734113693237], [-0.11581896990537643], [0.8892817497253418]],
    [0.19524122774600983],
]
KERAS_PREDICT = [0.8499811291694641, -0.33880364894866943, 0.8651933670043945, 0.16604238748550415,
                 0.8619257211685181, -0.038137197494506836]


def test_batch_normalization_layer_trains_as_keras():
    model, x, y = _keras_example()
    losses = [model.train_on_batch(x, y) for _ in range(3)]
    np.testing.assert_allclose(losses, KERAS_LOSSES, rtol=2e-6)
    for got, want in zip(model.get_weights(), KERAS_WEIGHTS):
        np.testing.assert_allclose(got, np.array(want, np.float32), rtol=2e-6, atol=2e-7)
    np.testing.assert_allclose(model.predict(x, verbose=0).ravel(), KERAS_PREDICT, rtol=2e-6, atol=2e-7)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(0.35123422741889954, rel=2e-6)
    bn = model.layers[1]
    assert [w.shape for w in bn.trainable_weights] == [(3,), (3,)] and len(bn.non_trainable_weights) == 2


def test_batch_normalization_not_trainable_uses_the_moving_statistics():
    model, x, y = _keras_example()
    bn = model.layers[1]
    bn.trainable = False
    model.compile(optimizer="sgd", loss="mse")
    before = [w.copy() for w in bn.get_weights()]
    model.fit(x, y, epochs=2, verbose=0)
    for a, b in zip(before, bn.get_weights()):
        np.testing.assert_array_equal(a, b)  # no moving update, gamma and beta frozen
    want = R.batch_norm_forward(np.tanh(x @ model.layers[0].kernel + model.layers[0].bias), before[0], before[1],
                                0.01, before[2], before[3])[0]
    got = bn(np.tanh(x @ model.layers[0].kernel + model.layers[0].bias), training=True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_batch_normalization_config_and_errors(tmp_path):
    import gradsmith as keras

    layer = keras.layers.BatchNormalization(momentum=0.8, epsilon=1e-2, center=False,
                                            gamma_regularizer=keras.regularizers.l2(0.1))
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert (clone.momentum, clone.epsilon, clone.center, clone.scale) == (0.8, 1e-2, False, True)
    assert clone.gamma_regularizer.get_config() == layer.gamma_regularizer.get_config()
    clone.build((None, 4))
    assert [w.name.split("/")[-1] for w in clone._weights] == ["gamma", "moving_mean", "moving_variance"]
    with pytest.raises(NotImplementedError, match="last axis"):
        keras.layers.BatchNormalization(axis=1).build((None, 4, 5))
    with pytest.raises(NotImplementedError, match="constraints"):
        keras.layers.BatchNormalization(beta_constraint="non_neg")
    model, x, y = _keras_example()
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "bn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert model._plan is not None, model._plan_reason  # trains through the compiled step

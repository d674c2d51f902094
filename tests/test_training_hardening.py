"""The training loop against hostile use (issue 14): shared layers, EMA, Ctrl-C, steps_per_epoch,
callbacks in evaluate / predict, bad data rejected before the first step, and absurd arguments.
Each test names the Keras 3 behaviour it checks."""
import signal
import threading
import time
import warnings

import numpy as np
import pytest

import gradsmith as keras
from gradsmith.layers import Dense

PATHS = ["compiled", "layer_by_layer"]


def dense(units, seed, **kwargs):
    return Dense(units, kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                 bias_initializer=keras.initializers.RandomUniform(seed=seed + 100), **kwargs)


def use_path(model, path):
    if path == "layer_by_layer":
        model._compiled_step = lambda: None  # every step through the Python layers
    return model


def regression(rng, n=48, features=4, out=1):
    return rng.standard_normal((n, features)).astype(np.float32), rng.standard_normal((n, out)).astype(np.float32)


# --------------------------------------------------------------------------- 6: a layer shared by two models
@pytest.mark.parametrize("path", PATHS)
def test_shared_layer_trains_through_either_model(rng, path, tmp_path):
    """Keras: a layer in two models is one set of weights; training A, then B, then A again updates them
    each time, and what the layer shows is what both models show, get and save. A's optimizer state
    carries over B's training (checked against a model that was never shared, given B's result)."""
    x, y = regression(rng)
    y3 = rng.standard_normal((48, 3)).astype(np.float32)
    trunk, head = dense(8, 1, input_shape=(4,), activation="tanh"), dense(1, 2)
    a = use_path(keras.Sequential([trunk, head]), path)
    a.compile(keras.optimizers.Adam(0.01), "mse")
    ref = keras.Sequential([dense(8, 1, input_shape=(4,), activation="tanh"), dense(1, 2)])
    ref.compile(keras.optimizers.Adam(0.01), "mse")
    np.testing.assert_array_equal(np.concatenate([w.ravel() for w in a.get_weights()]),
                                  np.concatenate([w.ravel() for w in ref.get_weights()]))

    a.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    ref.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    b = use_path(keras.Sequential(a.layers[:-1] + [dense(3, 3)]), path)  # transfer learning
    assert b.layers[0] is trunk
    b.compile("sgd", "mse")
    before_b = trunk.get_weights()
    b.fit(x, y3, batch_size=16, epochs=1, shuffle=False, verbose=0)
    after_b = trunk.get_weights()
    assert not np.array_equal(before_b[0], after_b[0])  # B trained the shared layer
    for got, want in zip(a.get_weights()[:2], after_b):  # ... and A sees it
        np.testing.assert_array_equal(got, want)

    ref.layers[0].set_weights(after_b)  # the reference: the same weights, its optimizer never disturbed
    a.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    ref.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    assert int(a.optimizer.iterations) == int(ref.optimizer.iterations) == 12
    for got, want in zip(a.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    for got, want in zip(trunk.get_weights(), a.get_weights()[:2]):  # the layer shows A's training
        np.testing.assert_array_equal(got, want)
    for got, want in zip(b.get_weights()[:2], trunk.get_weights()):  # ... and so does B
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(a.parameters[:trunk.count_params()],
                                  np.concatenate([w.ravel() for w in trunk.get_weights()]))

    # B again, then saving A saves the weights the layer shows now
    b.fit(x, y3, batch_size=16, epochs=1, shuffle=False, verbose=0)
    a.save(tmp_path / "a.keras")
    loaded = keras.models.load_model(tmp_path / "a.keras")
    for got, want in zip(loaded.get_weights(), a.get_weights()):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(loaded.get_weights()[0], trunk.get_weights()[0])


def test_shared_layer_evaluate_and_predict_see_the_latest_weights(rng):
    """predict through A's compiled step after B trained the shared layer uses B's result."""
    x, y = regression(rng)
    trunk = dense(8, 1, input_shape=(4,))
    a = keras.Sequential([trunk, dense(1, 2)])
    a.compile("sgd", "mse")
    a.fit(x, y, batch_size=16, verbose=0)  # A's compiled step exists
    b = keras.Sequential([trunk, dense(1, 4)])
    b.compile("sgd", "mse")
    b.fit(x, y * 3, batch_size=16, epochs=3, verbose=0)
    expected = (x @ trunk.get_weights()[0] + trunk.get_weights()[1]) @ a.layers[1].get_weights()[0] \
        + a.layers[1].get_weights()[1]
    np.testing.assert_allclose(a.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)
    loss = a.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(loss, np.mean((expected - y) ** 2), rtol=1e-5)

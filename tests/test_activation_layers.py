"""ReLU, LeakyReLU, ELU and Softmax layers against Keras 3 (values, gradients, configs; recorded by
tests/data/make_keras_activation_fixtures.py), compiled and layer by layer."""
import json
import os

import numpy as np
import pytest

import gradsmith as keras
from gradsmith.layers import ELU, LeakyReLU, ReLU, Softmax

DATA = os.path.join(os.path.dirname(__file__), "data")
LAYERS = {"relu": lambda: ReLU(), "relu6": lambda: ReLU(max_value=6.0),
          "relu_thr": lambda: ReLU(threshold=1.0, negative_slope=0.1), "leaky": lambda: LeakyReLU(),
          "leaky01": lambda: LeakyReLU(negative_slope=0.1), "elu": lambda: ELU(alpha=0.5), "softmax": lambda: Softmax(),
          "relu_slope": lambda: ReLU(negative_slope=0.2)}


@pytest.fixture(scope="module")
def cases():
    with open(os.path.join(DATA, "keras_activation_layers.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("key", list(LAYERS))
def test_values_gradients_and_config_match_keras(cases, key):
    case = cases[key]
    x = np.asarray(cases["x"], np.float32)
    layer = LAYERS[key]()
    y = layer.forward(x, training=True)
    np.testing.assert_allclose(y, case["y"], rtol=1e-6, atol=1e-6)
    dx = layer.backward(np.arange(20, dtype=np.float32).reshape(4, 5))
    np.testing.assert_allclose(dx, case["g"], rtol=1e-5, atol=1e-6)
    config = layer.get_config()
    for k, v in case["config"].items():
        if k != "name":
            assert config[k] == v, k
    again = type(layer).from_config(config)
    np.testing.assert_array_equal(again(x), layer(x))


@pytest.mark.parametrize("key", ["leaky", "elu", "relu6"])
def test_compiled_and_layer_by_layer_agree(key):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    y = rng.standard_normal((64, 1)).astype(np.float32)
    weights = []
    for compiled in (True, False):
        keras.utils.set_random_seed(3)
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8), LAYERS[key](), keras.layers.Dense(1)])
        model.compile("adam", "mse")
        if not compiled:
            model._compiled_step = lambda: None
        model.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=False)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_value"):
        ReLU(max_value=-1)
    with pytest.raises(ValueError, match="negative_slope"):
        LeakyReLU(negative_slope=-0.1)
    with pytest.raises(NotImplementedError, match="axis"):
        Softmax(axis=1)

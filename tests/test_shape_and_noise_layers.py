"""RepeatVector, Permute, UpSampling, ZeroPadding, Cropping and LayerNormalization against Keras 3 (outputs,
input and weight gradients, configs: tests/data/make_keras_shape_layer_fixtures.py); the noise layers' training-only
behaviour; SpatialDropout and Identity in the compiled step."""
import json
import os

import numpy as np
import pytest

import gradsmith as keras

L = keras.layers
DATA = os.path.join(os.path.dirname(__file__), "data")
MAKE = {
    "repeat": lambda: L.RepeatVector(3), "permute": lambda: L.Permute((2, 1)), "permute3": lambda: L.Permute((3, 1, 2)),
    "up1": lambda: L.UpSampling1D(3), "up2": lambda: L.UpSampling2D((2, 3)), "pad1": lambda: L.ZeroPadding1D((1, 2)),
    "pad2": lambda: L.ZeroPadding2D(((1, 0), (2, 1))), "pad2int": lambda: L.ZeroPadding2D(1),
    "crop1": lambda: L.Cropping1D((1, 2)), "crop2": lambda: L.Cropping2D(((1, 0), (1, 2))),
    "layernorm": lambda: L.LayerNormalization(), "layernorm_plain": lambda: L.LayerNormalization(
        center=False, scale=False, epsilon=1e-5),
}


@pytest.fixture(scope="module")
def cases():
    with open(os.path.join(DATA, "keras_shape_layers.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("name", list(MAKE))
def test_outputs_gradients_and_configs_match_keras(cases, name):
    case = cases[name]
    x = np.asarray(case["x"], np.float32)
    layer = MAKE[name]()
    layer.build(x.shape)
    if case["weights"]:
        layer.set_weights([np.asarray(w, np.float32) for w in case["weights"]])
    y = layer.forward(x, training=True)
    np.testing.assert_allclose(y, case["y"], rtol=1e-5, atol=1e-6)
    assert layer.compute_output_shape((None,) + x.shape[1:])[1:] == y.shape[1:]
    gx = layer.backward(np.asarray(case["w"], np.float32))
    np.testing.assert_allclose(gx, case["gx"], rtol=1e-4, atol=1e-5)
    for w, want in zip(layer._weights, case["gw"]):
        np.testing.assert_allclose(w.grad, want, rtol=1e-4, atol=1e-5)
    config = layer.get_config()
    for k, v in case["config"].items():
        if k.endswith("_initializer"):
            continue  # the fixture's layer used other initializers
        got = config[k]
        assert (list(map(list, got)) if isinstance(got, tuple) and got and isinstance(got[0], tuple) else
                list(got) if isinstance(got, tuple) else got) == v, k
    again = type(layer).from_config(config)
    again.build(x.shape)
    if case["weights"]:
        again.set_weights(layer.get_weights())
    np.testing.assert_array_equal(again(x), layer(x))


@pytest.mark.parametrize("make", [lambda: L.GaussianNoise(0.5, seed=1), lambda: L.GaussianDropout(0.3, seed=1)])
def test_noise_only_while_training(make):
    x = np.ones((64, 8), np.float32)
    layer = make()
    np.testing.assert_array_equal(layer(x), x)
    y = layer.forward(x, training=True)
    assert not np.array_equal(y, x) and abs(float(y.mean()) - 1.0) < 0.1
    dx = layer.backward(np.ones_like(x))
    assert dx.shape == x.shape


def test_spatial_dropout_drops_whole_channels_in_the_compiled_step():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 6, 4)).astype(np.float32)
    layer = L.SpatialDropout1D(0.5, seed=3)
    y = layer.forward(x, training=True)
    dropped = (y == 0).all(axis=1)  # (batch, channels): a dropped channel is zero at every step
    assert dropped.any() and np.array_equal((y == 0).any(axis=1), dropped)
    model = keras.Sequential([keras.Input((6, 4)), L.Conv1D(4, 3), L.SpatialDropout1D(0.2, seed=1), L.Identity(),
                              L.Flatten(), L.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(x, rng.standard_normal((32, 1)).astype(np.float32), verbose=0)
    assert model._plan is not None, model._plan_reason


def test_layer_normalization_trains_in_a_model_and_saves(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 5, 3)).astype(np.float32)
    y = x.sum(axis=(1, 2))[:, None].astype(np.float32)
    model = keras.Sequential([keras.Input((5, 3)), L.Dense(8), L.LayerNormalization(), L.Flatten(), L.Dense(1)])
    model.compile("adam", "mse")
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=10, verbose=0)
    assert model.evaluate(x, y, verbose=0) < first
    model.save(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))


def test_bad_arguments():
    with pytest.raises(ValueError, match="permutation"):
        L.Permute((1, 3))
    with pytest.raises(ValueError, match="negative"):
        L.ZeroPadding2D(-1)
    with pytest.raises(ValueError, match="leaves nothing"):
        keras.Sequential([keras.Input((3, 2)), L.Cropping1D((2, 1))])
    with pytest.raises(NotImplementedError, match="bilinear"):
        L.UpSampling2D(interpolation="bilinear")
    with pytest.raises(NotImplementedError, match="axis"):
        L.LayerNormalization(axis=1)

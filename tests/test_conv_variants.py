"""DepthwiseConv2D, SeparableConv2D and Conv2DTranspose against Keras 3 (tests/data/make_keras_conv_variant_fixtures.py):
outputs, input and weight gradients, weight names and configs; and training in a model with a save round trip."""
import gzip
import json
import os

import numpy as np
import pytest

import gradsmith as keras

L = keras.layers
DATA = os.path.join(os.path.dirname(__file__), "data")
MAKE = {
    "dw_valid": lambda: L.DepthwiseConv2D(3),
    "dw_same_s2_m2": lambda: L.DepthwiseConv2D((3, 2), strides=2, padding="same", depth_multiplier=2,
                                               activation="relu"),
    "dw_dilated": lambda: L.DepthwiseConv2D(2, dilation_rate=2, padding="same", use_bias=False),
    "sep_same": lambda: L.SeparableConv2D(4, 3, padding="same", activation="tanh"),
    "sep_s2_m2": lambda: L.SeparableConv2D(3, (2, 3), strides=2, depth_multiplier=2),
    "tr_valid": lambda: L.Conv2DTranspose(3, 3),
    "tr_same_s2": lambda: L.Conv2DTranspose(2, 3, strides=2, padding="same", activation="relu"),
    "tr_valid_s2_k4": lambda: L.Conv2DTranspose(2, 4, strides=2),
    "tr_valid_s3_k2": lambda: L.Conv2DTranspose(2, 2, strides=3, use_bias=False),
    "tr_same_s2_k2": lambda: L.Conv2DTranspose(3, (2, 4), strides=(2, 1), padding="same"),
}


@pytest.fixture(scope="module")
def cases():
    with gzip.open(os.path.join(DATA, "keras_conv_variants.json.gz"), "rt") as f:
        return json.load(f)


@pytest.mark.parametrize("name", list(MAKE))
def test_outputs_and_gradients_match_keras(cases, name):
    case = cases[name]
    x = np.asarray(case["x"], np.float32)
    layer = MAKE[name]()
    layer.build(x.shape)
    assert [w.name.split("/")[-1] for w in layer._weights] == case["names"]
    layer.set_weights([np.asarray(w, np.float32) for w in case["weights"]])
    y = layer.forward(x, training=True)
    assert layer.compute_output_shape(x.shape) == y.shape
    np.testing.assert_allclose(y, case["y"], rtol=1e-4, atol=1e-5)
    dx = layer.backward(np.asarray(case["w"], np.float32))
    np.testing.assert_allclose(dx, case["gx"], rtol=1e-4, atol=1e-4)
    for w, want in zip(layer._weights, case["gw"]):
        np.testing.assert_allclose(w.grad, want, rtol=1e-4, atol=1e-4)
    config = layer.get_config()
    for k, v in case["config"].items():
        got = config[k]
        assert (list(got) if isinstance(got, tuple) else got) == v, k


def test_a_small_autoencoder_trains_and_saves(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 1)).astype(np.float32)
    model = keras.Sequential([keras.Input((8, 8, 1)), L.SeparableConv2D(4, 3, padding="same", activation="relu"),
                              L.DepthwiseConv2D(3, strides=2, padding="same"),
                              L.Conv2DTranspose(1, 3, strides=2, padding="same", activation="sigmoid")])
    model.compile("adam", "mse")
    first = model.evaluate(x, x, verbose=0)
    model.fit(x, x, epochs=15, batch_size=8, verbose=0)
    assert model.evaluate(x, x, verbose=0) < first
    model.save(tmp_path / "ae.keras")
    back = keras.models.load_model(tmp_path / "ae.keras")
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))


def test_bad_arguments():
    with pytest.raises(ValueError, match="depth_multiplier"):
        L.DepthwiseConv2D(3, depth_multiplier=0)
    with pytest.raises(NotImplementedError, match="output_padding"):
        L.Conv2DTranspose(2, 3, output_padding=1)
    with pytest.raises(ValueError, match="images"):
        keras.Sequential([keras.Input((5, 3)), L.SeparableConv2D(2, 3)])


@pytest.mark.parametrize("name", ["dw_same_s2_m2", "sep_s2_m2", "tr_same_s2"])
def test_an_empty_batch(name):
    layer = MAKE[name]()
    shape = (0, 7, 6, 2) if name != "tr_same_s2" else (0, 3, 4, 3)
    layer.build(shape)
    y = layer.forward(np.zeros(shape, np.float32), training=True)
    assert y.shape == (0,) + layer.compute_output_shape(shape)[1:]
    assert layer.backward(y).shape == shape

"""Rescaling and Normalization against Keras 3 (tests/data/make_keras_scaling_fixtures.py): outputs, the
statistics adapt learns for each axis choice, configs, a Keras file that starts with an adapted
Normalization; and the compiled step applying them as input transforms, bit for bit the layer-by-layer path."""
import json
import os

import numpy as np
import pytest

import gradsmith as keras
from gradsmith.layers import Normalization, Rescaling

DATA = os.path.join(os.path.dirname(__file__), "data")


@pytest.fixture(scope="module")
def cases():
    with open(os.path.join(DATA, "keras_scaling_cases.json")) as f:
        return json.load(f)


NORMS = {"last": dict(), "axis1": dict(axis=1), "axis12": dict(axis=(1, 2)), "none": dict(axis=None),
         "invert": dict(invert=True)}


@pytest.mark.parametrize("name", list(NORMS))
def test_normalization_adapts_and_normalizes_as_keras(cases, name):
    layer = Normalization(**NORMS[name])
    layer.adapt(np.asarray(cases["data"], np.float32))
    for got, want in zip(layer.get_weights(), cases[name]["weights"]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer(np.asarray(cases["query"], np.float32)), cases[name]["y"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,make", [
    ("given", lambda: Normalization(mean=[1.0, 2.0, 3.0, 4.0], variance=[1.0, 4.0, 0.0, 9.0])),
    ("rescale", lambda: Rescaling(1 / 255.0)), ("rescale_offset", lambda: Rescaling(2.0, offset=-1.0)),
    ("rescale_channels", lambda: Rescaling([1.0, 2.0, 3.0, 4.0], offset=[0.5, 0, 0, -1]))])
def test_fixed_layers_compute_and_describe_themselves_as_keras(cases, name, make):
    layer = make()
    np.testing.assert_allclose(layer(np.asarray(cases["query"], np.float32)), cases[name]["y"], rtol=1e-6, atol=1e-6)
    config = layer.get_config()
    for k, v in cases[name]["config"].items():
        if k != "name":
            assert config[k] == v, k
    np.testing.assert_array_equal(type(layer).from_config(config)(np.asarray(cases["query"], np.float32)),
                                  layer(np.asarray(cases["query"], np.float32)))


def test_a_keras_file_with_normalization_loads_and_predicts(cases, tmp_path):
    model = keras.models.load_model(os.path.join(DATA, "keras_normalization.keras"))
    query = np.asarray(cases["query"], np.float32).reshape(-1, 4)
    np.testing.assert_allclose(model.predict(query, verbose=0), cases["model_predict"], rtol=1e-5, atol=1e-6)
    path = tmp_path / "again.keras"
    model.save(path)
    import h5py
    import zipfile
    with zipfile.ZipFile(path) as z:
        z.extract("model.weights.h5", tmp_path)
    with h5py.File(tmp_path / "model.weights.h5") as f:
        assert f["layers/normalization/vars/2"].dtype == np.int32  # Keras's count
    np.testing.assert_array_equal(keras.models.load_model(path).predict(query, verbose=0),
                                  model.predict(query, verbose=0))


@pytest.mark.parametrize("first", ["rescaling", "normalization"])
def test_leading_transforms_keep_the_compiled_step_with_the_same_bits(first):
    rng = np.random.default_rng(1)
    x = (rng.random((96, 6, 6, 2)) * 255).astype(np.float32)
    y = rng.integers(0, 3, 96)
    weights = []
    for compiled in (True, False):
        keras.utils.set_random_seed(5)
        if first == "rescaling":
            head = Rescaling(1 / 255.0)
        else:
            head = Normalization()
            head.adapt(x)
        model = keras.Sequential([keras.Input((6, 6, 2)), head, keras.layers.Conv2D(4, 3, activation="relu"),
                                  keras.layers.Flatten(), keras.layers.Dense(3)])
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        if not compiled:
            model._compiled_step = lambda: None
        history = model.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False)
        if compiled:
            assert model._plan is not None, model._plan_reason
        weights.append((model.get_weights(), history.history, model.predict(x, verbose=0)))
    (w1, h1, p1), (w2, h2, p2) = weights
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    assert h1 == h2
    np.testing.assert_array_equal(p1, p2)


def test_a_transform_in_the_middle_runs_layer_by_layer():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), Rescaling(0.5), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(np.ones((8, 4), np.float32), np.ones((8, 1), np.float32), verbose=0)
    assert model._plan is None and "Rescaling" in model._plan_reason


def test_bad_arguments():
    with pytest.raises(ValueError, match="both mean and variance"):
        Normalization(mean=1.0)
    with pytest.raises(ValueError, match="finite"):
        Rescaling(float("nan"))
    with pytest.raises(ValueError, match="axis"):
        keras.Sequential([keras.Input((4,)), Normalization(axis=0)])
    with pytest.raises(ValueError, match="at least one sample"):
        Normalization().adapt(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="does not adapt"):
        Normalization(mean=0.0, variance=1.0).adapt(np.ones((3, 2)))

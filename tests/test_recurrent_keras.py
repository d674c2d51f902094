"""Recurrent models written by Keras 3 (tests/data/make_keras_rnn_fixtures.py) load in gradsmith with Keras's
layers and configs, predict Keras's numbers, and one more training step gives the weights Keras's step gave;
gradsmith's own files of the same models load back the same."""
import json
import os
import zipfile

import numpy as np
import pytest

import gradsmith as keras

DATA = os.path.join(os.path.dirname(__file__), "data")


@pytest.fixture(scope="module")
def io():
    with np.load(os.path.join(DATA, "keras_rnn_io.npz")) as d:
        return {k: d[k] for k in d.files}


CASES = {
    "gru": ["GRU", "Dense"],
    "rnn_mix": ["GRU", "SimpleRNN", "SimpleRNN", "Dense"],
    "lstm_seq": ["LSTM", "LSTM", "Dense"],
}


def _keras_layer_configs(name):
    with zipfile.ZipFile(os.path.join(DATA, f"keras_{name}.keras")) as z:
        config = json.loads(z.read("config.json"))
    return [layer["config"] for layer in config["config"]["layers"] if layer["class_name"] != "InputLayer"]


@pytest.mark.parametrize("name", list(CASES))
def test_keras_rnn_loads_predicts_and_trains_on_as_keras(io, name):
    model = keras.models.load_model(os.path.join(DATA, f"keras_{name}.keras"))
    assert [type(layer).__name__ for layer in model.layers] == CASES[name]
    if name != "lstm_seq":  # per-step losses over (batch, steps, vocabulary) outputs train layer by layer
        assert model._compiled_step() is not None, model._plan_reason  # the whole model runs in the plan
    np.testing.assert_allclose(model.predict(io[f"x_{name}"], verbose=0), io[f"pred_{name}"], rtol=1e-5, atol=1e-6)
    model.train_on_batch(io[f"x_{name}"], io[f"y_{name}"])
    weights = model.get_weights()
    assert len(weights) == sum(k.startswith(f"{name}_after_step_") for k in io)
    for i, got in enumerate(weights):
        np.testing.assert_allclose(got, io[f"{name}_after_step_{i}"], rtol=2e-5, atol=2e-6, err_msg=f"weight {i}")


@pytest.mark.parametrize("name", list(CASES))
def test_keras_rnn_configs_are_keras_configs(name):
    model = keras.models.load_model(os.path.join(DATA, f"keras_{name}.keras"))
    for layer, theirs in zip(model.layers, _keras_layer_configs(name)):
        if type(layer).__name__ not in ("GRU", "LSTM", "SimpleRNN"):
            continue
        ours = layer.get_config()
        assert list(ours) == list(theirs), layer.name
        for key, value in theirs.items():
            if key.endswith("_initializer") or key.endswith("_regularizer") or key in ("dtype", "name"):
                continue
            assert ours[key] == value, (layer.name, key)
        for key in ("kernel_initializer", "recurrent_initializer", "bias_initializer", "recurrent_regularizer"):
            if key in theirs and theirs[key] is not None:
                assert ours[key]["class_name"] == theirs[key]["class_name"], (layer.name, key)
        if "recurrent_initializer" in theirs:  # Orthogonal's config as Keras writes it
            assert ours["recurrent_initializer"]["config"] == theirs["recurrent_initializer"]["config"], layer.name


@pytest.mark.parametrize("name", list(CASES))
def test_keras_rnn_round_trips_through_gradsmith_files(io, tmp_path, name):
    model = keras.models.load_model(os.path.join(DATA, f"keras_{name}.keras"))
    path = str(tmp_path / "again.keras")
    model.save(path)
    again = keras.models.load_model(path)
    assert [layer.get_config() for layer in again.layers] == [layer.get_config() for layer in model.layers]
    np.testing.assert_array_equal(again.predict(io[f"x_{name}"], verbose=0), model.predict(io[f"x_{name}"], verbose=0))
    weights = str(tmp_path / "again.weights.h5")
    model.save_weights(weights)
    fresh = keras.models.load_model(os.path.join(DATA, f"keras_{name}.keras"))
    fresh.set_weights([np.zeros_like(w) for w in fresh.get_weights()])
    fresh.load_weights(weights)
    np.testing.assert_array_equal(fresh.predict(io[f"x_{name}"], verbose=0), model.predict(io[f"x_{name}"], verbose=0))

"""Recurrent models written by Keras 3 (tests/data/make_keras_rnn_fixtures.py) load in gradsmith with Keras's
layers and configs, predict Keras's numbers, and one more training step gives the weights Keras's step gave;
gradsmith's own files of the same models load back the same."""
import json
import os
import zipfile

import pytest

import gradsmith as keras
from keras_fixtures import check_loads_predicts_and_trains_on, check_round_trips, load_io

DATA = os.path.join(os.path.dirname(__file__), "data")


@pytest.fixture(scope="module")
def io():
    return load_io("keras_rnn_io.npz")


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
    check_loads_predicts_and_trains_on(f"keras_{name}.keras", io, name, CASES[name], compiled=name != "lstm_seq")


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
    check_round_trips(f"keras_{name}.keras", io, name, tmp_path)

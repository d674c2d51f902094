"""Convolution models written by Keras 3 (tests/data/make_keras_cnn_fixtures.py) load in gradsmith with Keras's
layers, predictions and optimizer state, and one more training step gives the weights Keras's step gave;
gradsmith's own files of the same models load back the same."""

import pytest

from keras_fixtures import check_loads_predicts_and_trains_on, check_round_trips, load_io


@pytest.fixture(scope="module")
def io():
    return load_io("keras_cnn_io.npz")


CASES = {
    "cnn2d": ["Conv2D", "MaxPooling2D", "Conv2D", "BatchNormalization", "AveragePooling2D", "Conv2D",
              "GlobalMaxPooling2D", "Dense"],
    "cnn1d": ["Conv1D", "MaxPooling1D", "Conv1D", "Reshape", "Dense"],
}


@pytest.mark.parametrize("name", list(CASES))
def test_keras_cnn_loads_predicts_and_trains_on_as_keras(io, name):
    check_loads_predicts_and_trains_on(f"keras_{name}.keras", io, name, CASES[name], compiled=True)


@pytest.mark.parametrize("name", list(CASES))
def test_keras_cnn_round_trips_through_gradsmith_files(io, tmp_path, name):
    check_round_trips(f"keras_{name}.keras", io, name, tmp_path)

"""Embedding models written by Keras 3 (tests/data/make_keras_embedding_fixtures.py) load in gradsmith with Keras's
layers, predictions and optimizer state, and one more training step gives the weights Keras's step gave;
gradsmith's own files of the same models load back the same."""

import pytest

from keras_fixtures import check_loads_predicts_and_trains_on, check_round_trips, load_io


@pytest.fixture(scope="module")
def io():
    return load_io("keras_emb_io.npz")


CASES = {
    "pool": ["Embedding", "GlobalAveragePooling1D", "Dense"],
    "flatten": ["Embedding", "Flatten", "Dense"],
    "steps": ["Embedding", "Dense"],
}


@pytest.mark.parametrize("name", list(CASES))
def test_keras_embedding_model_loads_predicts_and_trains_on_as_keras(io, name):
    check_loads_predicts_and_trains_on(f"keras_emb_{name}.keras", io, name, CASES[name], compiled=True)


@pytest.mark.parametrize("name", list(CASES))
def test_keras_embedding_model_round_trips_through_gradsmith_files(io, tmp_path, name):
    check_round_trips(f"keras_emb_{name}.keras", io, name, tmp_path)

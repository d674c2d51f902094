"""Embedding models written by Keras 3 (tests/data/make_keras_embedding_fixtures.py) load in gradsmith with Keras's
layers, predictions and optimizer state, and one more training step gives the weights Keras's step gave;
gradsmith's own files of the same models load back the same."""
import os

import numpy as np
import pytest

import gradsmith as keras

DATA = os.path.join(os.path.dirname(__file__), "data")


@pytest.fixture(scope="module")
def io():
    with np.load(os.path.join(DATA, "keras_emb_io.npz")) as d:
        return {k: d[k] for k in d.files}


CASES = {
    "pool": ["Embedding", "GlobalAveragePooling1D", "Dense"],
    "flatten": ["Embedding", "Flatten", "Dense"],
    "steps": ["Embedding", "Dense"],
}


@pytest.mark.parametrize("name", list(CASES))
def test_keras_embedding_model_loads_predicts_and_trains_on_as_keras(io, name):
    model = keras.models.load_model(os.path.join(DATA, f"keras_emb_{name}.keras"))
    assert [type(layer).__name__ for layer in model.layers] == CASES[name]
    assert model._compiled_step() is not None, model._plan_reason  # the whole model runs in the plan
    np.testing.assert_allclose(model.predict(io[f"x_{name}"], verbose=0), io[f"pred_{name}"], rtol=1e-5, atol=1e-6)
    model.train_on_batch(io[f"x_{name}"], io[f"y_{name}"])
    weights = model.get_weights()
    assert len(weights) == sum(k.startswith(f"{name}_after_step_") for k in io)
    for i, got in enumerate(weights):
        np.testing.assert_allclose(got, io[f"{name}_after_step_{i}"], rtol=2e-5, atol=2e-6, err_msg=f"weight {i}")


@pytest.mark.parametrize("name", list(CASES))
def test_keras_embedding_model_round_trips_through_gradsmith_files(io, tmp_path, name):
    model = keras.models.load_model(os.path.join(DATA, f"keras_emb_{name}.keras"))
    path = str(tmp_path / "again.keras")
    model.save(path)
    again = keras.models.load_model(path)
    assert [layer.get_config() for layer in again.layers] == [layer.get_config() for layer in model.layers]
    np.testing.assert_array_equal(again.predict(io[f"x_{name}"], verbose=0), model.predict(io[f"x_{name}"], verbose=0))
    weights = str(tmp_path / "again.weights.h5")
    model.save_weights(weights)
    fresh = keras.models.load_model(os.path.join(DATA, f"keras_emb_{name}.keras"))
    fresh.set_weights([np.zeros_like(w) for w in fresh.get_weights()])
    fresh.load_weights(weights)
    np.testing.assert_array_equal(fresh.predict(io[f"x_{name}"], verbose=0), model.predict(io[f"x_{name}"], verbose=0))

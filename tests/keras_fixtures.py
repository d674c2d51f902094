"""The checks every Keras-written fixture model goes through (tests/test_*_keras.py): it loads with Keras's
layers, predicts Keras's numbers, and one more training step gives the weights Keras's step gave; and
gradsmith's own .keras and .weights.h5 files of it load back the same."""
import os

import numpy as np

import gradsmith as keras

DATA = os.path.join(os.path.dirname(__file__), "data")


def load_io(npz_name):
    """The recorded inputs, targets, predictions and weights (tests/data/<npz_name>) as a dict of arrays."""
    with np.load(os.path.join(DATA, npz_name)) as d:
        return {k: d[k] for k in d.files}


def check_loads_predicts_and_trains_on(file_name, io, name, layer_classes, compiled=True):
    model = keras.models.load_model(os.path.join(DATA, file_name))
    assert [type(layer).__name__ for layer in model.layers] == layer_classes
    if compiled:
        assert model._compiled_step() is not None, model._plan_reason  # the whole model runs in the plan
    np.testing.assert_allclose(model.predict(io[f"x_{name}"], verbose=0), io[f"pred_{name}"], rtol=1e-5, atol=1e-6)
    model.train_on_batch(io[f"x_{name}"], io[f"y_{name}"])
    weights = model.get_weights()
    assert len(weights) == sum(k.startswith(f"{name}_after_step_") for k in io)
    for i, got in enumerate(weights):
        np.testing.assert_allclose(got, io[f"{name}_after_step_{i}"], rtol=2e-5, atol=2e-6, err_msg=f"weight {i}")
    return model


def check_round_trips(file_name, io, name, tmp_path):
    model = keras.models.load_model(os.path.join(DATA, file_name))
    x = io[f"x_{name}"]
    path = str(tmp_path / "again.keras")
    model.save(path)
    again = keras.models.load_model(path)
    assert [layer.get_config() for layer in again.layers] == [layer.get_config() for layer in model.layers]
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    weights = str(tmp_path / "again.weights.h5")
    model.save_weights(weights)
    fresh = keras.models.load_model(os.path.join(DATA, file_name))
    fresh.set_weights([np.zeros_like(w) for w in fresh.get_weights()])
    fresh.load_weights(weights)
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))

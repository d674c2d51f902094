"""Keras 3's masking from Embedding(mask_zero=True) through Dense and the recurrent layers into the loss and the
metrics, against numbers recorded with real Keras (tests/data/make_keras_mask_fixtures.py)."""
import json
import os
import sys

import numpy as np
import pytest

import gradsmith as keras

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "data"))
import make_keras_mask_fixtures as fx  # noqa: E402

DATA = np.load(os.path.join(os.path.dirname(__file__), "data", "keras_mask_fixtures.npz"))
X = DATA["x"]


def _model(case, weights=None):
    name, rec, kwargs, head, loss = case
    model = fx.build(keras, rec, kwargs, head, loss)
    model.set_weights(weights if weights is not None else _weights(name))
    return model


def _weights(name):
    return [DATA[f"{name}/w{i}"] for i in range(sum(k.startswith(f"{name}/w") for k in DATA.files))]


@pytest.mark.parametrize("case", fx.CASES, ids=[c[0] for c in fx.CASES])
def test_matches_keras(case):
    name = case[0]
    model = _model(case, _weights(name))
    y = DATA[f"{name}/y"]
    np.testing.assert_allclose(model.predict(X, verbose=0), DATA[f"{name}/predict"], rtol=1e-5, atol=1e-6)
    ev = model.evaluate(X, y, verbose=0, return_dict=True)
    metric = "accuracy" if case[4] == "scce" else "mae"
    np.testing.assert_allclose([ev["loss"], ev[metric]], DATA[f"{name}/eval"], rtol=1e-5, atol=1e-6)
    logs = model.train_on_batch(X, y, return_dict=True)
    np.testing.assert_allclose(logs["loss"], DATA[f"{name}/train_loss"], rtol=1e-5, atol=1e-6)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, DATA[f"{name}/after{i}"], rtol=1e-5, atol=1e-6, err_msg=f"weight {i}")
    assert "mask_zero=True" in model._plan_reason
    assert model._compiled_step() is None


@pytest.mark.parametrize("case", fx.CASES, ids=[c[0] for c in fx.CASES])
def test_no_zeros_is_unmasked(case):
    """mask_zero with no id 0 in the batch: the same numbers as mask_zero=False (the kernels' path)."""
    name, rec, kwargs, head, loss = case
    x = np.where(X == 0, 1, X)
    y = DATA[f"{name}/y"]
    masked = _model(case, _weights(name))
    plain = _model(case, _weights(name))
    plain.layers[0].mask_zero = False
    np.testing.assert_allclose(masked.predict(x, verbose=0), plain.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    a = masked.train_on_batch(x, y, return_dict=True)
    b = plain.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-5)
    for wa, wb in zip(masked.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)


def test_masked_steps_carry_state_and_output():
    case = fx.CASES[0]
    model = _model(case, _weights(case[0]))
    hidden = keras.Sequential(model.layers[:2])
    out = hidden.predict(X, verbose=0)
    np.testing.assert_array_equal(out[0, 4], out[0, 3])  # trailing: repeats the last valid output
    np.testing.assert_array_equal(out[1, :2], 0)  # leading: zeros before the first valid step
    assert hidden._output_mask is not None and (hidden._output_mask == (X != 0)).all()


def test_generate_on_mask_zero_model():
    case = fx.CASES[0]
    model = _model(case, _weights(case[0]))
    tokens = model.generate([[3, 1, 4]], num_generated=5, temperature=0)
    assert np.asarray(tokens).shape == (1, 8)
    assert model.layers[0].compute_mask(np.array([[0, 2]])).tolist() == [[False, True]]


def test_layers_that_read_masks_in_keras_refuse_them():
    model = keras.Sequential([keras.Input((4,), dtype="int32"), keras.layers.Embedding(5, 2, mask_zero=True),
                              keras.layers.BatchNormalization(), keras.layers.Flatten(), keras.layers.Dense(1)])
    with pytest.raises(NotImplementedError, match="mask"):
        model.predict(np.array([[1, 0, 2, 3]]), verbose=0)


def test_generate_masks_the_id_zero_in_the_prefix():
    """A prefix holding the id 0: stepping carries the state over it as the whole (masked) sequence does."""
    case = fx.CASES[0]
    model = _model(case, _weights(case[0]))
    prefix = np.array([[0, 3, 0, 4]])
    from gradsmith.generation import Stepper
    stepper = Stepper(model, 1)
    for t in range(prefix.shape[1]):
        out = stepper.feed(prefix[:, t:t + 1])
    np.testing.assert_allclose(out[:, -1], model.predict(prefix, verbose=0)[:, -1], rtol=1e-5, atol=1e-6)


def test_training_metrics_are_masked_too():
    """train_on_batch's accuracy counts the valid steps only (Keras 3.15.1 on JAX loses the mask there and
    counts every step; its evaluate, recorded in the fixtures, masks it as gradsmith does in both)."""
    case = fx.CASES[0]
    model = _model(case, _weights(case[0]))
    y = DATA[f"{case[0]}/y"]
    hit = model.predict(X, verbose=0).argmax(-1) == y
    logs = model.train_on_batch(X, y, return_dict=True)
    np.testing.assert_allclose(logs["accuracy"], hit[X != 0].mean(), rtol=1e-6)


def test_nested_and_functional_carry_the_mask():
    case = fx.CASES[0]
    w = _weights(case[0])
    plain = _model(case, w)
    inner = keras.Sequential([keras.Input((fx.T,), dtype="int32"), keras.layers.Embedding(fx.VOCAB, 3, mask_zero=True),
                              keras.layers.Dropout(0.5)])
    nested = keras.Sequential([keras.Input((fx.T,), dtype="int32"), inner,
                               keras.layers.GRU(5, return_sequences=True), keras.layers.Dense(fx.VOCAB)])
    nested.set_weights(w)
    inp = keras.Input((fx.T,), dtype="int32")
    t = keras.layers.Embedding(fx.VOCAB, 3, mask_zero=True)(inp)
    t = keras.layers.GRU(5, return_sequences=True)(t)
    functional = keras.Model(inp, keras.layers.Dense(fx.VOCAB)(t))
    functional.set_weights(w)
    want = plain.predict(X, verbose=0)
    np.testing.assert_allclose(nested.predict(X, verbose=0), want, rtol=1e-6)
    np.testing.assert_allclose(functional.predict(X, verbose=0), want, rtol=1e-6)


def test_save_and_load_keep_the_mask(tmp_path):
    case = fx.CASES[1]
    model = _model(case, _weights(case[0]))
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    assert again.layers[0].mask_zero
    np.testing.assert_allclose(again.predict(X, verbose=0), DATA[f"{case[0]}/predict"], rtol=1e-5, atol=1e-6)


def test_the_masking_layer_masks_steps_as_keras():
    """Masking -> GRU -> Dense: Keras's predictions and weights after one SGD step
    (tests/data/make_keras_masking_layer_fixture.py)."""
    with open(os.path.join(os.path.dirname(__file__), "data", "keras_masking_layer.json")) as f:
        case = json.load(f)
    model = keras.Sequential([keras.Input((5, 2)), keras.layers.Masking(), keras.layers.GRU(3), keras.layers.Dense(1)])
    model.set_weights([np.asarray(w, np.float32) for w in case["w0"]])
    x, y = np.asarray(case["x"], np.float32), np.asarray(case["y"], np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), case["p0"], rtol=1e-5, atol=1e-6)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.train_on_batch(x, y)
    for got, want in zip(model.get_weights(), case["w1"]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    with pytest.raises(AttributeError, match="has no 'MultiHeadAttention' yet"):
        keras.layers.MultiHeadAttention

"""Bidirectional and TimeDistributed against Keras 3 (tests/data/make_keras_wrapper_fixtures.py): the same
weights give Keras's predictions and, after one SGD step, Keras's weights, for every merge mode and recurrent
layer; a Keras-written file loads with Keras's configs and weights, and gradsmith's files load back."""
import gzip
import json
import os

import numpy as np
import pytest

import gradsmith as keras
from gradsmith.layers import GRU, LSTM, Bidirectional, Dense, SimpleRNN, TimeDistributed

DATA = os.path.join(os.path.dirname(__file__), "data")
CELLS = {"GRU": GRU, "LSTM": LSTM, "SimpleRNN": SimpleRNN}


@pytest.fixture(scope="module")
def cases():
    with gzip.open(os.path.join(DATA, "keras_wrappers_cases.json.gz"), "rt") as f:
        return json.load(f)


def _model(merge, cell, seq):
    head = TimeDistributed(Dense(2)) if seq else Dense(2)
    return keras.Sequential([keras.Input((4, 2)),
                             Bidirectional(CELLS[cell](3, return_sequences=seq), merge_mode=merge), head])


KEYS = [f"{m}-{c}-{s}" for m in ("concat", "sum", "ave", "mul") for c in CELLS for s in (True, False)]


@pytest.mark.parametrize("key", KEYS)
def test_predictions_and_one_sgd_step_match_keras(cases, key):
    merge, cell, seq = key.split("-")
    case = cases[key]
    model = _model(merge, cell, seq == "True")
    model.set_weights([np.asarray(w, np.float32) for w in case["w0"]])
    x, y = np.asarray(case["x"], np.float32), np.asarray(case["y"], np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), case["p0"], rtol=1e-5, atol=1e-6)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.train_on_batch(x, y)
    for got, want in zip(model.get_weights(), case["w1"]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_a_keras_file_loads_with_its_names_weights_and_config(cases, tmp_path):
    model = keras.models.load_model(os.path.join(DATA, "keras_bidirectional.keras"))
    bi, td = model.layers
    assert isinstance(bi, Bidirectional) and isinstance(td, TimeDistributed)
    assert bi.forward_layer.name == "forward_gru" and bi.backward_layer.name == "backward_gru"
    assert bi.backward_layer.go_backwards and not bi.forward_layer.go_backwards
    case = cases["concat-GRU-True"]
    x = np.asarray(case["x"], np.float32)
    for got, want in zip(model.get_weights(), case["w1"]):
        np.testing.assert_array_equal(got, np.asarray(want, np.float32))
    # gradsmith's own file of it loads back the same, with Keras's layout of the weights
    path = tmp_path / "m.keras"
    model.save(path)
    back = keras.models.load_model(path)
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))
    import h5py
    import zipfile
    with zipfile.ZipFile(path) as z:
        z.extract("model.weights.h5", tmp_path)
    with h5py.File(tmp_path / "model.weights.h5") as f:
        assert f["layers/bidirectional/forward_layer/cell/vars/0"].shape == (2, 9)
        assert f["layers/bidirectional/backward_layer/cell/vars/1"].shape == (3, 9)
        assert f["layers/time_distributed/layer/vars/0"].shape == (6, 2)
    config = model.get_config()["layers"][1]["config"]
    assert config["merge_mode"] == "concat" and config["layer"]["config"]["name"] == "forward_gru"
    assert config["backward_layer"]["config"]["go_backwards"] is True


def test_merge_mode_none_returns_both_sequences_in_time_order():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    bi = Bidirectional(GRU(4, return_sequences=True), merge_mode=None)
    bi.build(x.shape)
    fwd, bwd = bi(x)
    plain = GRU(4, return_sequences=True)
    plain.build(x.shape)
    plain.set_weights(bi.backward_layer.get_weights())
    np.testing.assert_allclose(bwd, plain(x[:, ::-1])[:, ::-1], rtol=1e-6, atol=1e-7)
    assert fwd.shape == bwd.shape == (2, 5, 4)


def test_bidirectional_trains_a_text_classifier_with_masking():
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 20, (96, 8))
    ids[rng.random((96, 8)) < 0.25] = 0
    y = (np.isin(ids, [3, 4, 5]).sum(1) > 1).astype(np.float32)
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((8,), dtype="int32"), keras.layers.Embedding(20, 8, mask_zero=True),
                              Bidirectional(LSTM(8)), Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    before = model.evaluate(ids, y, verbose=0)[0]
    model.fit(ids, y, epochs=20, batch_size=32, verbose=0)
    assert model.evaluate(ids, y, verbose=0)[0] < before


def test_time_distributed_is_the_layer_on_every_step():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    td = TimeDistributed(Dense(6, activation="relu"))
    td.build(x.shape)
    y = td(x)
    for t in range(4):
        np.testing.assert_array_equal(y[:, t], td.layer(x[:, t]))
    assert td.compute_output_shape((None, 4, 5)) == (None, 4, 6)
    assert td.count_params() == 5 * 6 + 6


def test_wrong_wrapping_is_refused():
    with pytest.raises(ValueError, match="recurrent"):
        Bidirectional(Dense(3))
    with pytest.raises(ValueError, match="merge_mode"):
        Bidirectional(GRU(3), merge_mode="max")
    with pytest.raises(ValueError, match="rank 3"):
        keras.Sequential([keras.Input((5,)), TimeDistributed(Dense(2))])
    built = Dense(2)
    built.build((None, 3))
    with pytest.raises(ValueError, match="already built"):
        TimeDistributed(built)

"""Functional models that are graphs (gradsmith.functional): several inputs and outputs, the merge layers,
recurrent states from return_state into initial_state. Against Keras 3 (tests/data/make_keras_graph_fixtures.py):
the same weights give Keras's predictions, and one SGD step Keras's weights and logs; files load both ways.
Plus the gradients of the merge layers against central differences, and the errors a wrong graph gets."""
import gzip
import json
import os
import zipfile

import numpy as np
import pytest

import gradsmith as keras
from gradsmith import functional
from gradsmith.layers import merging
import graph_models

L = keras.layers
DATA = os.path.join(os.path.dirname(__file__), "data")


@pytest.fixture(scope="module")
def cases():
    with gzip.open(os.path.join(DATA, "keras_graph_cases.json.gz"), "rt") as f:
        return json.load(f)


MAKERS = {name: (lambda make=make: make()[0]) for name, make in graph_models.makers(keras).items()}
residual, siamese = MAKERS["residual"], MAKERS["siamese"]


def _args(name, case):
    xs = [np.asarray(x, np.float32) for x in case["x"]]
    ys = [np.asarray(y) for y in case["y"]]
    x = dict(zip(["a", "b"], xs)) if name == "two_inputs" else (xs if len(xs) > 1 else xs[0])
    return x, (ys if len(ys) > 1 else ys[0])


@pytest.mark.parametrize("name", list(MAKERS))
def test_graph_predicts_and_steps_as_keras(cases, name):
    case = cases[name]
    model = MAKERS[name]()
    assert isinstance(model, functional.Functional)
    model.set_weights([np.asarray(w, np.float32) for w in case["w0"]])
    x, y = _args(name, case)
    pred = model.predict(x, verbose=0)
    for got, want in zip(pred if isinstance(pred, list) else [pred], case["p0"] if name == "residual"
                         else [case["p0"]]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert set(logs) == set(case["logs"])
    for key, want in case["logs"].items():
        assert logs[key] == pytest.approx(want, rel=1e-5), key
    for got, want in zip(model.get_weights(), case["w1"]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_a_keras_file_with_shared_layers_loads_and_saves_its_calls(cases, tmp_path):
    case = cases["siamese"]
    model = keras.models.load_model(os.path.join(DATA, "keras_graph_siamese.keras"))
    assert [l.name for l in model.layers] == ["shared", "twice", "diff", "prod", "cat", "out"]
    for got, want in zip(model.get_weights(), case["w1"]):
        np.testing.assert_array_equal(got, np.asarray(want, np.float32))
    x, y = _args("siamese", case)
    ref = siamese()
    ref.set_weights(model.get_weights())
    np.testing.assert_array_equal(model.predict(x, verbose=0), ref.predict(x, verbose=0))
    path = tmp_path / "again.keras"
    model.save(path)
    with zipfile.ZipFile(path) as z:
        layers = {l["name"]: l for l in json.loads(z.read("config.json"))["config"]["layers"]}
    assert [n["args"][0]["config"]["keras_history"] for n in layers["twice"]["inbound_nodes"]] == \
        [["shared", 0, 0], ["shared", 1, 0]]
    back = keras.models.load_model(path)
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_keras_seq2seq_file_loads_and_predicts_as_keras(cases, tmp_path):
    case = cases["seq2seq_lstm"]
    model = keras.models.load_model(os.path.join(DATA, "keras_graph_seq2seq.keras"))
    assert isinstance(model, functional.Functional)
    assert [i.name for i in model.inputs] == ["enc_in", "dec_in"]
    for got, want in zip(model.get_weights(), case["w1"]):
        np.testing.assert_array_equal(got, np.asarray(want, np.float32))
    x, y = _args("seq2seq_lstm", case)
    ref = MAKERS["seq2seq_lstm"]()
    ref.set_weights(model.get_weights())
    np.testing.assert_array_equal(model.predict(x, verbose=0), ref.predict(x, verbose=0))
    model.fit(x, y, epochs=1, verbose=0)  # the optimizer state came with it
    path = tmp_path / "again.keras"
    model.save(path)
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
    assert config["class_name"] == "Functional"
    assert config["config"]["input_layers"] == [["enc_in", 0, 0], ["dec_in", 0, 0]]
    dec = [l for l in config["config"]["layers"] if l["name"] == "dec"][0]
    refs = [s["config"]["keras_history"] for s in dec["inbound_nodes"][0]["kwargs"]["initial_state"]]
    assert refs == [["enc", 0, 1], ["enc", 0, 2]]
    back = keras.models.load_model(path)
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("name", list(MAKERS))
def test_layers_are_in_keras_order(name):
    """Keras names the weight groups of a file and orders the optimizer's variables by model.layers: the
    order of the layers in Keras's own config of the same model (tests/data/keras_graph_layer_orders.json)."""
    with open(os.path.join(DATA, "keras_graph_layer_orders.json")) as f:
        orders = json.load(f)
    assert [l.name for l in MAKERS[name]().layers] == orders[name]


def test_multi_output_fit_logs_and_evaluate_follow_keras():
    model = residual()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 6)).astype(np.float32)
    y = [rng.standard_normal((40, 1)).astype(np.float32), rng.integers(0, 3, 40)]
    model.compile("adam", loss={"o1": "mse", "o2": "sparse_categorical_crossentropy"},
                  metrics={"o1": ["mae"], "o2": ["accuracy"]})
    history = model.fit(x, y, epochs=3, batch_size=8, validation_split=0.25, verbose=0)
    assert list(history.history) == ["loss", "o1_loss", "o1_mae", "o2_accuracy", "o2_loss", "val_loss",
                                     "val_o1_loss", "val_o1_mae", "val_o2_accuracy", "val_o2_loss"]
    logs = model.evaluate(x, {"o1": y[0], "o2": y[1]}, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(logs["o1_loss"] + logs["o2_loss"], rel=1e-5)
    p1, p2 = model.predict(x, verbose=0)
    assert p1.shape == (40, 1) and p2.shape == (40, 3)


def test_dict_outputs_predict_as_a_dict():
    x = keras.Input((3,))
    model = keras.Model(x, {"a": L.Dense(2)(x), "b": L.Dense(1)(x)})
    out = model.predict(np.ones((5, 3), np.float32), verbose=0)
    assert set(out) == {"a", "b"} and out["a"].shape == (5, 2) and out["b"].shape == (5, 1)


@pytest.mark.parametrize("cls", [merging.Add, merging.Subtract, merging.Multiply, merging.Average,
                                 merging.Maximum, merging.Minimum, merging.Concatenate])
def test_merge_gradients_match_central_differences(cls):
    rng = np.random.default_rng(4)
    shapes = [(3, 4), (3, 4)] if cls is merging.Subtract else [(3, 4), (1, 4), (3, 4)]
    if cls is merging.Concatenate:
        shapes = [(3, 4), (3, 2), (3, 1)]
    xs = [rng.standard_normal(s) for s in shapes]
    w = rng.standard_normal(cls().compute_output_shape(shapes))
    layer = cls()
    layer.forward([x.astype(np.float32) for x in xs], training=True)
    grads = layer.backward(w.astype(np.float32))
    for i, x in enumerate(xs):
        assert grads[i].shape == x.shape
        for _ in range(4):
            idx = tuple(int(rng.integers(0, s)) for s in x.shape)
            plus = [v.copy() for v in xs]
            minus = [v.copy() for v in xs]
            plus[i][idx] += 1e-3
            minus[i][idx] -= 1e-3
            numeric = ((layer._merge(plus) * w).sum() - (layer._merge(minus) * w).sum()) / 2e-3
            assert grads[i][idx] == pytest.approx(numeric, rel=1e-3, abs=1e-4)


def test_a_chain_stays_a_sequential_model_with_its_compiled_step():
    x = keras.Input((4,))
    model = keras.Model(x, L.Dense(2)(L.Dense(3)(x)))
    assert type(model) is keras.Model


def test_wrong_graphs_are_refused_clearly():
    x, other = keras.Input((4,)), keras.Input((4,))
    with pytest.raises(ValueError, match="not among the model's inputs"):
        keras.Model(x, L.Add()([x, other]))
    with pytest.raises(ValueError, match="broadcast"):
        L.Add()([keras.Input((3,)), keras.Input((4,))])
    with pytest.raises(ValueError, match="exactly 2"):
        L.Subtract()([x, x, x])
    model = keras.Model([x, other], L.Add()([x, other]))
    with pytest.raises(ValueError, match="2 input"):
        model.predict(np.ones((2, 4), np.float32), verbose=0)
    with pytest.raises(ValueError, match="takes arrays of shape"):
        model.predict([np.ones((2, 4), np.float32), np.ones((2, 5), np.float32)], verbose=0)
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="same number of samples"):
        model.fit([np.ones((2, 4), np.float32), np.ones((3, 4), np.float32)], np.ones((2, 4)), verbose=0)
    with pytest.raises(ValueError, match="one output each"):
        keras.Sequential([keras.Input((3, 2)), L.GRU(2, return_state=True)])


def test_the_functional_shorthands_make_the_merge_layers():
    x = keras.Input((4,))
    d = L.Dense(4)(x)
    model = keras.Model(x, L.concatenate([L.add([x, d]), L.multiply([x, d]), L.maximum([x, d])], axis=-1))
    out = model.predict(np.ones((2, 4), np.float32), verbose=0)
    assert out.shape == (2, 12)
    assert [type(l).__name__ for l in model.layers] == ["Dense", "Add", "Multiply", "Maximum", "Concatenate"]


def test_sample_weights_per_output():
    """One array weighs every output; a list or a dict weighs each; a zero weight removes an output's samples."""
    model = residual()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 6)).astype(np.float32)
    y = [rng.standard_normal((8, 1)).astype(np.float32), rng.integers(0, 3, 8)]
    ones, half = np.ones(8, np.float32), np.r_[np.ones(4), np.zeros(4)].astype(np.float32)
    base = model.evaluate(x, y, verbose=0, return_dict=True)
    same = model.evaluate(x, y, sample_weight=[ones, ones], verbose=0, return_dict=True)
    assert same == pytest.approx(base)
    first_half = model.evaluate(x[:4], [y[0][:4], y[1][:4]], verbose=0, return_dict=True)
    weighted = model.evaluate(x, y, sample_weight={"o1": half, "o2": ones}, verbose=0, return_dict=True)
    # 'sum_over_batch_size' divides by all 8 rows: the o1 loss of the first half, times 4 / 8
    assert weighted["o1_loss"] == pytest.approx(first_half["o1_loss"] * 0.5, rel=1e-5)
    assert weighted["o2_loss"] == pytest.approx(base["o2_loss"], rel=1e-6)
    model.fit(x, y, sample_weight=half, epochs=1, verbose=0)


def test_data_parallel_across_ranks_refuses_a_graph_model():
    import types

    from gradsmith import _data_parallel
    from gradsmith.distribution import DistributionError
    with pytest.raises(DistributionError, match="training step of its own"):
        _data_parallel.check_model(types.SimpleNamespace(size=2), residual(), "fit")
    _data_parallel.check_model(types.SimpleNamespace(size=1), residual(), "fit")  # alone: plain fit

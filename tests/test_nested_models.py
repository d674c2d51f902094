"""A model used as a layer of another model (transfer learning), as Keras 3.

``Sequential([base, Dense(1)])``, ``Dense(1)(base(Input(...)))``: the inner model is one layer of the outer
one, its weights are shared (one set of values), ``base.trainable = False`` freezes it (and its
BatchNormalization, which then uses its moving statistics), the compiled step takes its layers flattened
into the plan, and configs and weights files nest as Keras writes them. The Keras numbers come from
tests/data/keras_nested* (tests/data/make_keras_nested_fixtures.py, real Keras 3).
"""
import io
import json
import os
import zipfile

import h5py
import numpy as np
import pytest

import gradsmith as keras
from test_compiled_step import _fit_both

layers = keras.layers
DATA = os.path.join(os.path.dirname(__file__), "data")


def _base(bn=False, name=None):
    inner = [layers.Dense(16, activation="relu")] + ([layers.BatchNormalization()] if bn else []) + [layers.Dense(8)]
    return keras.Sequential([keras.Input((8,))] + inner, name=name)


def _functional_head(units=6):
    inp = keras.Input((8,))
    return keras.Model(inp, layers.Dense(units, activation="tanh")(inp))


def _data(rng, n=48):
    x = rng.standard_normal((n, 8)).astype(np.float32)
    return x, np.eye(3, dtype=np.float32)[(np.abs(x[:, :2]).sum(1) * 5).astype(int) % 3]


def _chain(model, x):
    """The outer model's prediction, layer by layer through the public calls."""
    for layer in model.layers:
        x = layer(x)
    return x


def _assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for u, v in zip(wa, wb):
        np.testing.assert_array_equal(u, v)


# --------------------------------------------------------------------------- structure
def test_sequential_in_sequential(rng):
    base = _base(bn=True)
    model = keras.Sequential([base, layers.Dense(3, activation="softmax")])
    assert model.built and model.layers[0] is base and len(model.layers) == 2
    assert model.count_params() == base.count_params() + 8 * 3 + 3 == 16 * 8 + 16 + 4 * 16 + 16 * 8 + 8 + 27
    # Keras's order: the flattened layers' weights, the inner model's in its place
    assert [w.shape for w in model.weights] == [(8, 16), (16,), (16,), (16,), (16,), (16,), (16, 8), (8,), (8, 3), (3,)]
    for got, want in zip(model.weights, base.weights + model.layers[1].weights):
        assert got is want or np.shares_memory(got, want)
    assert model.layers[0].output_shape == (None, 8) and model.layers[1].output_shape == (None, 3)
    lines = []
    model.summary(print_fn=lines.append)
    assert any(line.startswith(f"{base.name} (Sequential)") and line.endswith(f"{base.count_params():,}")
               for line in lines)
    x, _ = _data(rng)
    np.testing.assert_array_equal(model.predict(x, verbose=0), _chain(model, x))
    assert base(x).shape == (48, 8)


def test_sequential_in_functional(rng):
    base = _base()
    inp = keras.Input((8,))
    out = layers.Dense(1)(base(inp))
    model = keras.Model(inp, out)
    assert [l.name for l in model.layers] == [base.name, model.layers[1].name] and model.layers[0] is base
    assert model.count_params() == base.count_params() + 9
    x, _ = _data(rng)
    np.testing.assert_array_equal(model.predict(x, verbose=0), _chain(model, x))


def test_functional_in_sequential(rng):
    head = _functional_head()
    model = keras.Sequential([head, layers.Dense(3)])
    assert model.built and model.layers[0] is head
    lines = []
    model.summary(print_fn=lines.append)
    assert any(line.startswith(f"{head.name} (Functional)") for line in lines)  # Keras's class name
    x, y = _data(rng)
    model.compile("adam", "categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    assert model._plan is not None, model._plan_reason
    np.testing.assert_array_equal(model.predict(x, verbose=0), _chain(model, x))


def test_two_levels_deep(rng):
    base = _base(bn=True)
    mid = keras.Sequential([base, _functional_head()])
    outer = keras.Sequential([mid, layers.Dense(3, activation="softmax")])
    assert outer.count_params() == base.count_params() + (8 * 6 + 6) + (6 * 3 + 3)
    assert len(outer.weights) == 8 + 2 + 2
    x, y = _data(rng)
    outer.compile("adam", "categorical_crossentropy")
    before = base.get_weights()
    outer.fit(x, y, epochs=2, verbose=0)
    assert outer._plan is not None, outer._plan_reason
    assert not np.array_equal(before[0], base.get_weights()[0])  # training the outer model trains base
    np.testing.assert_array_equal(outer.predict(x, verbose=0), outer.layers[1](mid(x)))


def test_a_model_cannot_contain_itself_or_a_layer_twice():
    base = _base()
    outer = keras.Sequential([base])
    with pytest.raises(ValueError, match="itself"):
        base.add(outer)
    with pytest.raises(ValueError, match="already in the model"):
        outer.add(base.layers[0])
    assert len(outer.layers) == 1 and len(base.layers) == 2


def test_a_model_that_does_not_fit_its_input_leaves_the_model_as_it_was(rng):
    model = keras.Sequential([keras.Input((8,)), layers.Dense(5)])
    weights = model.get_weights()
    base = _base()
    with pytest.raises(ValueError, match="takes inputs of shape"):
        model.add(base)
    assert model.layers == [model.layers[0]] and model.built
    _assert_same_weights(model, model)
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    x, _ = _data(rng)
    assert model.predict(x, verbose=0).shape == (48, 5)
    model.add(layers.Dense(8))
    model.add(base)  # now it fits
    assert model.predict(x, verbose=0).shape == (48, 8)


# --------------------------------------------------------------------------- shared weights, frozen base
def test_weights_are_shared_with_the_inner_model(rng):
    base = _base()
    model = keras.Sequential([base, layers.Dense(3)])
    model.compile("sgd", "mse")
    x, y = _data(rng)
    model.fit(x, y, epochs=1, verbose=0)
    # training the outer model updated base's own weights, which base's own calls see
    np.testing.assert_array_equal(base.predict(x, verbose=0), base(x))
    np.testing.assert_array_equal(model.layers[1](base.predict(x, verbose=0)), model.predict(x, verbose=0))
    # and the other way round: base trained alone, the outer model sees it
    base.compile("sgd", "mse")
    base.fit(x, rng.standard_normal((48, 8)).astype(np.float32), epochs=1, verbose=0)
    np.testing.assert_array_equal(model.layers[1](base(x)), model.predict(x, verbose=0))
    model.fit(x, y, epochs=1, verbose=0)  # the outer model claims the weights back and trains on
    np.testing.assert_array_equal(model.layers[1](base(x)), model.predict(x, verbose=0))
    # set_weights through either model
    new = [w + 1 for w in base.get_weights()]
    base.set_weights(new)
    for a, b in zip(model.get_weights()[:4], new):
        np.testing.assert_array_equal(a, b)


def test_trainable_propagates_as_keras():
    base = _base(bn=True)
    model = keras.Sequential([base, layers.Dense(1)])
    assert len(model.trainable_weights) == 2 + 2 + 2 + 2
    base.trainable = False
    assert [l.trainable for l in base.layers] == [False, False, False]
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 8
    assert model.trainable_weights[0] is model.layers[1].weights[0] or \
        np.shares_memory(model.trainable_weights[0], model.layers[1].weights[0])
    base.trainable = True  # as Keras: every layer again
    assert all(l.trainable for l in base.layers)
    # the constructor's flag freezes the model but leaves its layers' own flags (Keras 3)
    frozen = keras.Sequential([keras.Input((3,)), layers.Dense(2)], trainable=False)
    assert frozen.layers[0].trainable and frozen.trainable_weights == []
    assert len(keras.Sequential([frozen, layers.Dense(1)]).trainable_weights) == 2


def test_a_frozen_base_keeps_its_weights_and_its_batch_normalization_uses_moving_statistics(rng):
    base = _base(bn=True)
    x, y = _data(rng)
    base.compile("sgd", "mse")
    base.fit(x, rng.standard_normal((48, 8)).astype(np.float32), epochs=1, verbose=0)  # moving stats moved
    model = keras.Sequential([base, layers.Dense(3, activation="softmax")])
    base.trainable = False
    model.compile("adam", "categorical_crossentropy")
    frozen, head = base.get_weights(), model.layers[1].get_weights()
    inference = base.predict(x, verbose=0)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert model._plan is not None, model._plan_reason
    for a, b in zip(base.get_weights(), frozen):  # moving mean and variance included
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(model.layers[1].get_weights()[0], head[0])
    # in training mode the frozen BatchNormalization normalizes with its moving statistics
    np.testing.assert_array_equal(base(x, training=True), inference)


# --------------------------------------------------------------------------- the compiled step
def _nested_bn_model():
    base = keras.Sequential([layers.Dense(12, activation="relu", input_shape=(9,), kernel_regularizer="l2"),
                             layers.BatchNormalization(),
                             layers.Dropout(0.2), layers.Dense(6, activation="tanh")])
    inp = keras.Input((6,))
    head = keras.Model(inp, layers.Dense(4, activation="relu")(inp))
    model = keras.Sequential([keras.Sequential([base, head]), layers.BatchNormalization(momentum=0.9),
                              layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def _frozen_nested_model():
    model = _nested_bn_model()
    model.layers[0].layers[0].trainable = False
    return model


@pytest.mark.parametrize("make", [_nested_bn_model, _frozen_nested_model], ids=["trainable", "frozen_base"])
def test_the_compiled_step_gives_the_same_bits_as_layer_by_layer(rng, make):
    x = rng.standard_normal((100, 9)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    planned, plain = _fit_both(make, x, y)
    assert planned.evaluate(x, y, verbose=0) == plain.evaluate(x, y, verbose=0)


def test_freezing_a_nested_layer_rebuilds_the_plan(rng):
    model = _nested_bn_model()
    x = rng.standard_normal((64, 9)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    model.fit(x, y, epochs=1, verbose=0)
    first = model._plan
    inner = model.layers[0].layers[0].layers[0]
    inner.trainable = False
    model.compile(optimizer="adam", loss="binary_crossentropy")  # Keras: recompile after freezing
    kernel = inner.get_weights()
    model.fit(x, y, epochs=1, verbose=0)
    assert model._plan is not None and model._plan is not first
    for a, b in zip(inner.get_weights(), kernel):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- config and files
def _trained_nested(rng):
    base = _base(bn=True)
    head = _functional_head()
    model = keras.Sequential([keras.Sequential([base, head]), layers.Dense(3, activation="softmax")])
    base.trainable = False
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy", metrics=["accuracy"])
    x, y = _data(rng)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    return model, x, y


def test_get_config_nests_models_as_keras(rng):
    model, x, _ = _trained_nested(rng)
    config = model.get_config()
    mid = config["layers"][1]  # after the InputLayer
    assert (mid["module"], mid["class_name"], mid["registered_name"]) == ("keras", "Sequential", None)
    assert mid["build_config"] == {"input_shape": [None, 8]} and mid["compile_config"] == {}
    base, head = mid["config"]["layers"][1:]
    assert base["class_name"] == "Sequential" and base["config"]["trainable"] is False
    assert [l["config"]["trainable"] for l in base["config"]["layers"][1:]] == [False, False, False]
    assert (head["module"], head["class_name"], head["registered_name"]) == \
        ("keras.src.models.functional", "Functional", "Functional")
    hc = head["config"]
    assert hc["input_layers"] == [hc["layers"][0]["name"], 0, 0]
    assert hc["output_layers"] == [hc["layers"][1]["name"], 0, 0]
    assert hc["layers"][1]["inbound_nodes"][0]["args"][0]["config"]["keras_history"] == [hc["layers"][0]["name"], 0, 0]
    json.dumps(config)
    again = keras.Sequential.from_config(config)
    assert [type(l).__name__ for l in again.layers[0].layers] == ["Sequential", "Model"]
    assert not again.layers[0].layers[0].trainable and len(again.trainable_weights) == 4
    again.set_weights(model.get_weights())
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    assert again.get_config() == config


def test_keras_file_round_trip(rng, tmp_path):
    model, x, y = _trained_nested(rng)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    _assert_same_weights(loaded, model)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert len(loaded.trainable_weights) == len(model.trainable_weights) == 4
    # the optimizer state came along: one more step gives the same bits
    model.train_on_batch(x, y)
    loaded.train_on_batch(x, y)
    _assert_same_weights(loaded, model)
    # weights under the nested models' paths, as Keras's saving_lib
    with zipfile.ZipFile(tmp_path / "m.keras") as zf, h5py.File(io.BytesIO(zf.read("model.weights.h5")), "r") as f:
        names = []
        f.visit(names.append)
    assert "layers/sequential/layers/sequential/layers/batch_normalization/vars/3" in names
    assert "layers/sequential/layers/functional/layers/dense/vars/1" in names
    assert "layers/dense/vars/0" in names


def test_weights_file_round_trip_and_a_mismatch_changes_nothing(rng, tmp_path):
    model, x, _ = _trained_nested(rng)
    model.save_weights(tmp_path / "w.weights.h5")
    other = keras.Sequential([keras.Sequential([_base(bn=True), _functional_head()]),
                              layers.Dense(3, activation="softmax")])
    other.load_weights(tmp_path / "w.weights.h5")
    _assert_same_weights(other, model)
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
    wrong = keras.Sequential([keras.Sequential([_base(bn=False), _functional_head()]),
                              layers.Dense(3, activation="softmax")])
    before = wrong.get_weights()
    with pytest.raises(ValueError, match="w.weights.h5"):
        wrong.load_weights(tmp_path / "w.weights.h5")
    for a, b in zip(wrong.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_a_functional_model_holding_a_nested_model_saves_and_loads(rng, tmp_path):
    base = _base()
    inp = keras.Input((8,))
    model = keras.Model(inp, layers.Dense(2)(base(inp)))
    x, _ = _data(rng)
    model.save(tmp_path / "f.keras")
    loaded = keras.models.load_model(tmp_path / "f.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert type(loaded.layers[0]).__name__ == "Sequential"


def test_a_nested_model_counts_toward_the_size_limit_before_anything_is_allocated(tmp_path):
    model = keras.Sequential([_base(), layers.Dense(1)])
    model.save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="limit"):
        keras.models.load_model(tmp_path / "m.keras", max_weights=200)
    assert keras.models.load_model(tmp_path / "m.keras", max_weights=model.count_params()).count_params() == \
        model.count_params()


def test_pickle_and_deepcopy_carry_the_nesting(rng):
    import copy

    model, x, _ = _trained_nested(rng)
    twin = copy.deepcopy(model)
    assert type(twin.layers[0]).__name__ == "Sequential"
    np.testing.assert_array_equal(twin.predict(x, verbose=0), model.predict(x, verbose=0))


# --------------------------------------------------------------------------- Keras's own files
def test_a_keras_saved_nested_model_loads_with_the_same_numbers():
    io_ = np.load(os.path.join(DATA, "keras_nested_io.npz"))
    model = keras.models.load_model(os.path.join(DATA, "keras_nested.keras"))
    mid = model.layers[0]
    assert [type(l).__name__ for l in model.layers] == ["Sequential", "Dense"]
    assert [type(l).__name__ for l in mid.layers] == ["Sequential", "Model"]
    base = mid.layers[0]
    assert not base.trainable and not any(l.trainable for l in base.layers)
    assert len(model.trainable_weights) == int(io_["n_trainable"])
    keras_summary = str(io_["summary"])
    for part in ("Trainable params: 75", "Non-trainable params: 344"):  # Keras's total adds the optimizer's
        assert part in keras_summary
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "mid (Sequential)" in text and "Total params: 419" in text and "Trainable params: 75" in text
    np.testing.assert_allclose(model.predict(io_["x"], verbose=0), io_["pred"], rtol=1e-5, atol=1e-6)
    # one more step from Keras's saved optimizer state: Keras's weights (the frozen BatchNormalization's
    # moving statistics unchanged)
    model.train_on_batch(io_["x"], io_["y"])
    assert model._plan is not None, model._plan_reason
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, io_[f"after_step_{i}"], rtol=1e-5, atol=1e-6, err_msg=str(i))


def test_keras_weights_file_loads_and_gradsmith_writes_keras_layout(tmp_path):
    io_ = np.load(os.path.join(DATA, "keras_nested_io.npz"))
    model = keras.models.load_model(os.path.join(DATA, "keras_nested.keras"), compile=False)
    fresh = keras.Sequential.from_config(model.get_config())
    fresh.load_weights(os.path.join(DATA, "keras_nested.weights.h5"))
    np.testing.assert_allclose(fresh.predict(io_["x"], verbose=0), io_["pred"], rtol=1e-5, atol=1e-6)
    fresh.save_weights(tmp_path / "w.weights.h5")

    def datasets(path):
        out = []
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj: out.append(name) if isinstance(obj, h5py.Dataset) else None)
        return sorted(n for n in out if n.startswith("layers/"))

    assert datasets(tmp_path / "w.weights.h5") == datasets(os.path.join(DATA, "keras_nested.weights.h5"))


def test_a_keras_functional_model_holding_a_nested_model_loads():
    io_ = np.load(os.path.join(DATA, "keras_nested_io.npz"))
    model = keras.models.load_model(os.path.join(DATA, "keras_nested_functional.keras"))
    assert type(model).__name__ == "Model" and model.name == "transfer"
    assert [type(l).__name__ for l in model.layers] == ["Sequential", "Dense"]
    assert not model.layers[0].trainable and len(model.trainable_weights) == 2
    np.testing.assert_allclose(model.predict(io_["x"], verbose=0), io_["pred_functional"], rtol=1e-5, atol=1e-6)


def test_functional_configs_that_are_not_one_chain_are_refused():
    base = _base()
    inp = keras.Input((8,))
    config = keras.Model(inp, layers.Dense(2)(base(inp)))._functional_config()
    json.dumps(config)
    branch = json.loads(json.dumps(config))
    branch["layers"].append({**branch["layers"][2], "name": "extra"})
    with pytest.raises(NotImplementedError, match="branches"):
        keras.Sequential.from_config({"name": "outer", "layers": [
            {"module": "keras.src.models.functional", "class_name": "Functional", "config": branch}]})
    twice = json.loads(json.dumps(config))
    twice["layers"][2]["inbound_nodes"] *= 2
    with pytest.raises(NotImplementedError, match="several times"):
        keras.layers.deserialize({"module": "keras.src.models.functional", "class_name": "Functional",
                                  "config": twice})


def test_a_compiled_inner_models_optimizer_is_written_under_its_path_as_keras(rng, tmp_path):
    # Keras 3.15's saving_lib writes a compiled nested model's optimizer at layers/<model>/optimizer/vars
    # (seen in a Keras file; make_keras_nested_fixtures.py's history)
    base = _base()
    base.compile("sgd", "mse")
    model = keras.Sequential([base, layers.Dense(1)])
    model.save_weights(tmp_path / "w.weights.h5")
    with h5py.File(tmp_path / "w.weights.h5", "r") as f:
        assert sorted(f["layers/sequential/optimizer/vars"]) == ["0", "1"]  # iterations, learning_rate
    again = keras.Sequential([_base(), layers.Dense(1)])
    again.load_weights(tmp_path / "w.weights.h5")
    _assert_same_weights(again, model)


def test_a_compiled_inner_models_optimizer_state_comes_back(rng, tmp_path):
    base = _base()
    base.compile(keras.optimizers.Adam(0.01), "mse")
    x, _ = _data(rng)
    target = rng.standard_normal((48, 8)).astype(np.float32)
    base.fit(x, target, epochs=1, verbose=0)
    model = keras.Sequential([base, layers.Dense(1)])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    inner = loaded.layers[0]
    assert inner.compiled and inner.optimizer.iterations == base.optimizer.iterations == 2
    for a, b in zip(inner.optimizer.variables, base.optimizer.variables):
        np.testing.assert_array_equal(a, b)
    # both go on training alike
    base.fit(x, target, epochs=1, shuffle=False, verbose=0)
    inner.fit(x, target, epochs=1, shuffle=False, verbose=0)
    _assert_same_weights(inner, base)
    # load_weights too, into a compiled inner model that has not trained
    fresh = _base()
    fresh.compile(keras.optimizers.Adam(0.01), "mse")
    other = keras.Sequential([fresh, layers.Dense(1)])
    model.save_weights(tmp_path / "w.weights.h5")
    other.load_weights(tmp_path / "w.weights.h5")
    assert fresh.optimizer.iterations == base.optimizer.iterations == 4
    for a, b in zip(fresh.optimizer.variables, base.optimizer.variables):
        np.testing.assert_array_equal(a, b)


def test_the_fine_tuning_recipe(rng):
    """Keras's transfer-learning guide: train the head on a frozen base, then unfreeze and recompile."""
    base = _base(bn=True)
    model = keras.Sequential([base, layers.Dense(3, activation="softmax")])
    x, y = _data(rng)
    base.trainable = False
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    frozen = base.get_weights()
    model.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(base.get_weights(), frozen):
        np.testing.assert_array_equal(a, b)
    base.trainable = True
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    assert model._plan is not None, model._plan_reason
    assert len(model.trainable_weights) == 8
    moved = [not np.array_equal(a, b) for a, b in zip(base.get_weights(), frozen)]
    assert all(moved)  # kernels, biases, gamma, beta and the moving statistics (trainable BN again)

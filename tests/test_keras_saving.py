"""Saving and loading in Keras 3's file formats (``.keras`` zip of config.json + metadata.json +
model.weights.h5; ``.weights.h5``).

Keras-written fixtures (tests/data/, made by tests/data/make_keras_fixtures.py with Keras 3.15.1) check
that files Keras writes load in gradsmith with Keras's predictions; Keras itself is not needed here.
"""
import json
import os
import shutil
import zipfile

import h5py
import numpy as np
import pytest

import gradsmith as keras
from gradsmith import saving

DATA = os.path.join(os.path.dirname(__file__), "data")


@pytest.fixture(scope="module")
def keras_io():
    with np.load(os.path.join(DATA, "keras_io.npz")) as d:
        return {k: d[k] for k in d.files}


def dense_model(dropout=True, optimizer="adam", seed=1, units=5):
    layers = [keras.Input(shape=(4,)),
              keras.layers.Dense(units, activation="relu",
                                 kernel_initializer=keras.initializers.GlorotUniform(seed=seed))]
    if dropout:
        layers.append(keras.layers.Dropout(0.1, seed=seed))
    layers.append(keras.layers.Dense(3, activation="softmax",
                                     kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1)))
    model = keras.Sequential(layers)
    if optimizer is not None:
        model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def data(rng, n=16):
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]
    return x, y


def trained(rng, **kwargs):
    model = dense_model(**kwargs)
    x, y = data(rng)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False)
    return model, x, y


def assert_same_weights(a, b):
    assert len(a) == len(b)
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)


def snapshot(model):
    opt = model.optimizer
    return model.get_weights(), (opt.get_state() if opt is not None else None)


def assert_unchanged(model, snap):
    weights, state = snap
    assert_same_weights(model.get_weights(), weights)
    if state is not None:
        now = model.optimizer.get_state()
        assert set(now) == set(state)
        for k in state:
            np.testing.assert_array_equal(now[k], state[k])


def no_temp_files(directory, expected):
    assert sorted(p.name for p in directory.iterdir()) == sorted(expected)


# --------------------------------------------------------------------------- Keras -> gradsmith
def test_keras_written_model_loads_with_keras_predictions(keras_io):
    model = keras.models.load_model(os.path.join(DATA, "keras_dense.keras"))
    assert [type(l).__name__ for l in model.layers] == ["Dense", "Dropout", "Dense"]
    assert [l.name for l in model.layers] == ["dense", "dropout", "dense_1"]
    assert model.layers[0].activation == "relu" and model.layers[1].rate == pytest.approx(0.1)
    np.testing.assert_allclose(model.predict(keras_io["x_dense"], verbose=0), keras_io["pred_dense"],
                               rtol=1e-5, atol=1e-6)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert int(model.optimizer.iterations) == 6  # 2 epochs of 3 batches in Keras
    assert model.metrics_names == ["loss", "accuracy"]
    # and it trains on
    model.fit(keras_io["x_dense"], keras_io["y_dense"], epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 7


def test_keras_written_model_continues_training_as_keras_does(keras_io):
    """Flatten, Activation, a bias-less Dense, an L2 regularizer, centered RMSprop with momentum, a loss
    object and metric objects; one more step in gradsmith equals the step Keras took."""
    model = keras.models.load_model(os.path.join(DATA, "keras_mixed.keras"))
    assert [type(l).__name__ for l in model.layers] == ["Flatten", "Dense", "Activation", "Dense"]
    assert not model.layers[3].use_bias
    np.testing.assert_allclose(model.predict(keras_io["x_mixed"], verbose=0), keras_io["pred_mixed"],
                               rtol=1e-5, atol=1e-6)
    opt = model.optimizer
    assert isinstance(opt, keras.optimizers.RMSprop) and opt.centered and opt.momentum == 0.5
    assert model.metrics_names == ["loss", "mae", "root_mean_squared_error"]
    model.train_on_batch(keras_io["x_mixed"], keras_io["y_mixed"])
    after = [keras_io[f"mixed_after_step_{i}"] for i in range(3)]
    for got, want in zip(model.get_weights(), after):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["keras_dense.weights.h5", "keras_dense.keras"])
def test_keras_written_weights_load_into_a_gradsmith_model(keras_io, name):
    model = dense_model(seed=3)
    model.load_weights(os.path.join(DATA, name))
    np.testing.assert_allclose(model.predict(keras_io["x_dense"], verbose=0), keras_io["pred_dense"],
                               rtol=1e-5, atol=1e-6)
    assert int(model.optimizer.iterations) == 6  # Keras keeps the optimizer's variables in the file too


def test_keras_written_model_loads_without_compiling(keras_io):
    model = keras.models.load_model(os.path.join(DATA, "keras_dense.keras"), compile=False)
    assert not model.compiled and model.optimizer is None
    np.testing.assert_allclose(model.predict(keras_io["x_dense"], verbose=0), keras_io["pred_dense"],
                               rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- the layout Keras reads
def read_keras_file(path):
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        config = json.loads(zf.read("config.json"))
        metadata = json.loads(zf.read("metadata.json"))
        h5 = zf.read("model.weights.h5")
    return names, config, metadata, h5


def h5_tree(data):
    import io

    out = {}
    with h5py.File(io.BytesIO(data) if isinstance(data, bytes) else data, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(
            name, obj[()] if isinstance(obj, h5py.Dataset) else dict(obj.attrs)))
    return out


def test_saved_file_has_keras_layout(tmp_path, rng):
    model, x, y = trained(rng)
    path = tmp_path / "m.keras"
    model.save(path)
    names, config, metadata, h5 = read_keras_file(path)
    assert names == ["metadata.json", "config.json", "model.weights.h5"]
    assert metadata["keras_version"].startswith("3.") and "date_saved" in metadata

    assert {k: config[k] for k in ("module", "class_name", "registered_name")} == \
        {"module": "keras", "class_name": "Sequential", "registered_name": None}
    assert config["build_config"] == {"input_shape": [None, 4]}
    layers = config["config"]["layers"]
    assert [(l["module"], l["class_name"]) for l in layers] == [
        ("keras.layers", "InputLayer"), ("keras.layers", "Dense"), ("keras.layers", "Dropout"),
        ("keras.layers", "Dense")]
    assert layers[0]["config"]["batch_shape"] == [None, 4]
    dense = layers[1]["config"]
    assert dense["units"] == 5 and dense["activation"] == "relu" and dense["use_bias"] is True
    assert dense["kernel_initializer"] == {"module": "keras.initializers", "class_name": "GlorotUniform",
                                           "config": {"seed": 1}, "registered_name": None}
    assert dense["dtype"]["class_name"] == "DTypePolicy" and dense["dtype"]["config"] == {"name": "float32"}
    assert layers[1]["build_config"] == {"input_shape": [None, 4]}
    cc = config["compile_config"]
    assert cc["optimizer"]["module"] == "keras.optimizers" and cc["optimizer"]["class_name"] == "Adam"
    assert cc["loss"] == "categorical_crossentropy" and cc["metrics"] == ["accuracy"]

    tree = h5_tree(h5)
    np.testing.assert_array_equal(tree["layers/dense/vars/0"], model.layers[0].kernel)
    np.testing.assert_array_equal(tree["layers/dense/vars/1"], model.layers[0].bias)
    np.testing.assert_array_equal(tree["layers/dense_1/vars/0"], model.layers[2].kernel)
    assert tree["layers/dense/vars"] == {"name": model.layers[0].name}
    assert "layers/dropout/vars" in tree
    # Keras's optimizer order: iterations, learning_rate, then momentum and velocity per variable
    opt = model.optimizer
    assert tree["optimizer/vars/0"] == 8 and tree["optimizer/vars/0"].dtype.kind == "i"
    assert tree["optimizer/vars/1"] == np.float32(0.001)
    momentum, velocity = opt._slots["momentum"][1], opt._slots["velocity"][1]
    for i in range(4):
        np.testing.assert_array_equal(tree[f"optimizer/vars/{2 + 2 * i}"], momentum[i])
        np.testing.assert_array_equal(tree[f"optimizer/vars/{3 + 2 * i}"], velocity[i])
    assert "optimizer/vars/10" not in tree


def test_saved_config_uses_the_keys_keras_writes(tmp_path, rng):
    """Every key gradsmith writes for a layer is one Keras wrote for the same layer (the Keras fixture)."""
    model, _, _ = trained(rng)
    model.save(tmp_path / "m.keras")
    ours = read_keras_file(tmp_path / "m.keras")[1]
    theirs = read_keras_file(os.path.join(DATA, "keras_dense.keras"))[1]
    assert set(ours) == set(theirs)
    assert set(ours["config"]) == set(theirs["config"])
    assert set(ours["compile_config"]) == set(theirs["compile_config"])
    for a, b in zip(ours["config"]["layers"], theirs["config"]["layers"]):
        assert a["class_name"] == b["class_name"] and a["module"] == b["module"]
        assert set(a) == set(b)
        assert set(a["config"]) <= set(b["config"]), a["class_name"]


def test_save_weights_writes_keras_h5(tmp_path, rng):
    model, _, _ = trained(rng)
    path = tmp_path / "w.weights.h5"
    model.save_weights(path)
    tree = h5_tree(str(path))
    ours = {k for k, v in tree.items() if not isinstance(v, dict)}
    theirs = {k for k, v in h5_tree(os.path.join(DATA, "keras_dense.weights.h5")).items() if not isinstance(v, dict)}
    assert ours == theirs  # same model, same optimizer: the same datasets
    np.testing.assert_array_equal(tree["layers/dense_1/vars/1"], model.layers[2].bias)


def test_layer_groups_are_named_after_classes_not_layer_names(tmp_path, rng):
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3, name="first"),
                              keras.layers.Activation("relu", name="act"), keras.layers.Dense(2, name="second")])
    model.save_weights(tmp_path / "w.weights.h5")
    tree = h5_tree(str(tmp_path / "w.weights.h5"))
    assert "layers/dense/vars/0" in tree and "layers/dense_1/vars/0" in tree and "layers/activation/vars" in tree
    assert tree["layers/dense/vars"] == {"name": "first"}


# --------------------------------------------------------------------------- gradsmith round trips
@pytest.mark.parametrize("optimizer", [
    lambda: keras.optimizers.Adam(0.01),
    lambda: keras.optimizers.Adam(0.01, amsgrad=True),
    lambda: keras.optimizers.AdamW(0.01),
    lambda: keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
    lambda: keras.optimizers.SGD(0.1),
    lambda: keras.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
    lambda: keras.optimizers.Adagrad(0.1),
    lambda: keras.optimizers.Adam(0.01, use_ema=True),
    lambda: keras.optimizers.SGD(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5), momentum=0.5),
], ids=["adam", "amsgrad", "adamw", "nesterov", "sgd", "rmsprop", "adagrad", "ema", "schedule"])
def test_round_trip_continues_training_identically(tmp_path, rng, optimizer):
    model, x, y = trained(rng, dropout=False, optimizer=optimizer())
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer) is type(model.optimizer)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    for _ in range(2):
        model.train_on_batch(x, y)
        loaded.train_on_batch(x, y)
    assert_same_weights(loaded.get_weights(), model.get_weights())


def test_round_trip_keeps_names_config_and_metrics(tmp_path, rng):
    model, x, y = trained(rng)
    model.layers[0].trainable = False
    model.save(tmp_path / "a.keras")
    loaded = keras.models.load_model(tmp_path / "a.keras")
    assert loaded.name == model.name
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    assert not loaded.layers[0].trainable and loaded.layers[2].trainable
    assert loaded.evaluate(x, y, verbose=0, return_dict=True) == model.evaluate(x, y, verbose=0, return_dict=True)
    loaded.save(tmp_path / "b.keras")
    a, b = read_keras_file(tmp_path / "a.keras")[1], read_keras_file(tmp_path / "b.keras")[1]
    assert a == b
    # the optimizer was built before the layer was frozen: its state for every weight came along
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) > 0
    model.layers[1].rate = loaded.layers[1].rate = 0.0
    model.train_on_batch(x, y)
    loaded.train_on_batch(x, y)
    assert_same_weights(loaded.get_weights(), model.get_weights())


def test_save_weights_round_trip_carries_the_optimizer(tmp_path, rng):
    model, x, y = trained(rng, dropout=False)
    model.save_weights(tmp_path / "w.weights.h5")
    other = dense_model(dropout=False, seed=9)
    other.load_weights(tmp_path / "w.weights.h5")
    assert_same_weights(other.get_weights(), model.get_weights())
    model.train_on_batch(x, y)
    other.train_on_batch(x, y)
    assert_same_weights(other.get_weights(), model.get_weights())


def test_untrained_and_uncompiled_models_round_trip(tmp_path, rng):
    x, _ = data(rng)
    fresh = dense_model()  # compiled, the optimizer never stepped: iterations and learning rate only
    fresh.save(tmp_path / "fresh.keras")
    assert sorted(k for k in h5_tree(read_keras_file(tmp_path / "fresh.keras")[3]) if k.startswith("optimizer/vars/")) \
        == ["optimizer/vars/0", "optimizer/vars/1"]
    loaded = keras.models.load_model(tmp_path / "fresh.keras")
    assert int(loaded.optimizer.iterations) == 0
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), fresh.predict(x, verbose=0))
    bare = dense_model(optimizer=None)
    bare.save(tmp_path / "bare.keras")
    names, config, _, h5 = read_keras_file(tmp_path / "bare.keras")
    assert "compile_config" not in config and not any(k.startswith("optimizer") for k in h5_tree(h5))
    loaded = keras.models.load_model(tmp_path / "bare.keras")
    assert not loaded.compiled
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), bare.predict(x, verbose=0))


# --------------------------------------------------------------------------- atomic writes
def test_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, rng, monkeypatch):
    model, _, _ = trained(rng)
    path = tmp_path / "m.keras"
    model.save(path)
    wpath = tmp_path / "w.weights.h5"
    model.save_weights(wpath)
    before, wbefore = path.read_bytes(), wpath.read_bytes()
    model.train_on_batch(*data(rng))

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    with pytest.raises(OSError, match="disk full"):
        model.save_weights(wpath)
    monkeypatch.undo()
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before and wpath.read_bytes() == wbefore
    no_temp_files(tmp_path, ["m.keras", "w.weights.h5"])
    keras.models.load_model(path)  # still a good file


def test_unsaveable_model_writes_nothing(tmp_path):
    class Custom(keras.layers.Activation):
        pass

    model = keras.Sequential([keras.Input(shape=(4,)), Custom("relu")])
    with pytest.raises(ValueError, match="Custom"):
        model.save(tmp_path / "m.keras")
    no_temp_files(tmp_path, [])


def test_overwrite_false(tmp_path, rng):
    model = dense_model()
    model.save(tmp_path / "m.keras")
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "m.keras", overwrite=False)
    model.save_weights(tmp_path / "w.weights.h5")
    with pytest.raises(FileExistsError):
        model.save_weights(tmp_path / "w.weights.h5", overwrite=False)


# --------------------------------------------------------------------------- bad files
def test_wrong_suffixes_are_worded_as_keras(tmp_path):
    model = dense_model()
    with pytest.raises(ValueError, match=r"expected a `\.keras` extension"):
        model.save(tmp_path / "m.h5")
    with pytest.raises(ValueError, match=r"The filename must end in `\.weights\.h5`"):
        model.save_weights(tmp_path / "w.h5")
    with pytest.raises(ValueError, match=r"The filename must end in `\.weights\.h5`"):
        model.save_weights(tmp_path / "w.keras")
    with pytest.raises(ValueError, match="File format not supported"):
        keras.models.load_model(tmp_path / "m.h5")
    with pytest.raises(ValueError, match="File format not supported"):
        model.load_weights(tmp_path / "w.npz")
    with pytest.raises(ValueError, match="File not found"):
        keras.models.load_model(tmp_path / "missing.keras")
    with pytest.raises(ValueError, match="File not found"):
        model.load_weights(tmp_path / "missing.weights.h5")
    no_temp_files(tmp_path, [])


def truncations(data):
    return [data[:n] for n in (0, 10, len(data) // 3, len(data) // 2, len(data) - 30, len(data) - 1)]


@pytest.mark.parametrize("kind", ["keras", "weights"])
def test_truncated_files_raise_and_leave_the_model_unchanged(tmp_path, rng, kind):
    model, _, _ = trained(rng)
    name = "m.keras" if kind == "keras" else "m.weights.h5"
    good = tmp_path / name
    (model.save if kind == "keras" else model.save_weights)(good)
    target, _, _ = trained(rng)
    snap = snapshot(target)
    for i, chunk in enumerate(truncations(good.read_bytes())):
        bad = tmp_path / f"t{i}.{name.split('.', 1)[1]}"
        bad.write_bytes(chunk)
        with pytest.raises(ValueError, match=str(bad.name)):
            target.load_weights(bad)
        assert_unchanged(target, snap)
        if kind == "keras":
            with pytest.raises(ValueError, match=str(bad.name)):
                keras.models.load_model(bad)


def test_corrupt_bytes_raise(tmp_path, rng):
    model, _, _ = trained(rng)
    good = tmp_path / "m.keras"
    model.save(good)
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as zf:
        info = zf.getinfo("model.weights.h5")
    middle = info.header_offset + 100 + info.compress_size // 2  # inside the stored h5: the CRC catches it
    data[middle] ^= 0xFF
    bad = tmp_path / "bad.keras"
    bad.write_bytes(bytes(data))
    target = dense_model()
    snap = snapshot(target)
    with pytest.raises(ValueError, match="bad.keras.*corrupt"):
        keras.models.load_model(bad)
    with pytest.raises(ValueError, match="bad.keras"):
        target.load_weights(bad)
    assert_unchanged(target, snap)

    not_zip = tmp_path / "text.keras"
    not_zip.write_text("hello")
    with pytest.raises(ValueError, match="text.keras.*not a zip"):
        keras.models.load_model(not_zip)

    garbage = tmp_path / "g.weights.h5"
    garbage.write_bytes(os.urandom(2048))
    with pytest.raises(ValueError, match="g.weights.h5.*HDF5"):
        target.load_weights(garbage)
    assert_unchanged(target, snap)


def rewrite_zip(src, dst, replace):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            if name in replace:
                if replace[name] is not None:
                    zout.writestr(name, replace[name])
            else:
                zout.writestr(name, zin.read(name))


def test_bad_archive_contents_raise(tmp_path, rng):
    model, _, _ = trained(rng)
    good = tmp_path / "m.keras"
    model.save(good)
    _, config, _, _ = read_keras_file(good)
    cases = {
        "no_weights": ({"model.weights.h5": None}, "model.weights.h5"),
        "no_config": ({"config.json": None}, "config.json"),
        "bad_json": ({"config.json": "{not json"}, "JSON"),
        "functional": ({"config.json": json.dumps({**config, "class_name": "Functional"})}, "Sequential"),
    }
    conv = json.loads(json.dumps(config))
    conv["config"]["layers"][1] = {"module": "keras.layers", "class_name": "Conv2D",
                                   "config": {"name": "conv2d", "filters": 3}, "registered_name": None}
    cases["conv"] = ({"config.json": json.dumps(conv)}, "Conv2D")
    half = json.loads(json.dumps(config))
    half["config"]["layers"][1]["config"]["dtype"] = "float16"
    cases["dtype"] = ({"config.json": json.dumps(half)}, "float16")
    bad_loss = json.loads(json.dumps(config))
    bad_loss["compile_config"]["loss"] = "no_such_loss"
    cases["loss"] = ({"config.json": json.dumps(bad_loss)}, "compile=False")
    for name, (replace, message) in cases.items():
        path = tmp_path / f"{name}.keras"
        rewrite_zip(good, path, replace)
        with pytest.raises(ValueError, match=message) as info:
            keras.models.load_model(path)
        assert f"{name}.keras" in str(info.value)
    keras.models.load_model(tmp_path / "loss.keras", compile=False)


def test_old_gradsmith_files_are_named_as_such(tmp_path):
    path = tmp_path / "old.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps({"format": "gradsmith.keras", "version": 1}))
        zf.writestr("model.weights.npz", b"")
    with pytest.raises(ValueError, match="old.keras"):
        keras.models.load_model(path)


def test_mismatched_weights_raise_and_leave_the_model_unchanged(tmp_path, rng):
    model, x, y = trained(rng)
    model.save_weights(tmp_path / "w.weights.h5")
    model.save(tmp_path / "m.keras")
    wider = dense_model(units=6)
    wider.fit(x, y, epochs=1, verbose=0)
    snap = snapshot(wider)
    for name in ("w.weights.h5", "m.keras"):
        with pytest.raises(ValueError, match=rf"{name}.*shape \(4, 6\).*\(4, 5\)"):
            wider.load_weights(tmp_path / name)
        assert_unchanged(wider, snap)
    shorter = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(5, activation="relu")])
    with pytest.raises(ValueError, match="layers the model does not have.*dense_1"):
        shorter.load_weights(tmp_path / "w.weights.h5")
    longer = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(5), keras.layers.Dense(3),
                               keras.layers.Dense(2)])
    before = longer.get_weights()
    with pytest.raises(ValueError, match="no weights for layer.*dense_2"):
        longer.load_weights(tmp_path / "w.weights.h5")
    assert_same_weights(longer.get_weights(), before)
    no_bias = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(5, use_bias=False),
                                keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="has 1 weights, the file has 2"):
        no_bias.load_weights(tmp_path / "w.weights.h5")


def test_optimizer_that_does_not_fit_is_skipped_by_load_weights(tmp_path, rng):
    """As Keras: load_weights loads the weights and skips (with a warning) optimizer variables that do
    not fit the model's optimizer."""
    model, x, y = trained(rng)  # Adam
    model.save_weights(tmp_path / "w.weights.h5")
    other = dense_model(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    other.fit(x, y, epochs=1, verbose=0)
    state = other.optimizer.get_state()
    with pytest.warns(UserWarning, match="Skipping variable loading for optimizer"):
        other.load_weights(tmp_path / "w.weights.h5")
    assert_same_weights(other.get_weights(), model.get_weights())
    for k, v in state.items():
        np.testing.assert_array_equal(other.optimizer.get_state()[k], v)


def test_inconsistent_optimizer_state_in_a_model_file_raises(tmp_path, rng):
    model, _, _ = trained(rng)
    good = tmp_path / "m.keras"
    model.save(good)
    _, _, _, h5 = read_keras_file(good)
    import io

    buf = io.BytesIO(h5)
    with h5py.File(buf, "a") as f:
        del f["optimizer/vars/9"]
    bad = tmp_path / "bad.keras"
    rewrite_zip(good, bad, {"model.weights.h5": buf.getvalue()})
    with pytest.raises(ValueError, match="bad.keras.*optimizer has 9 variables"):
        keras.models.load_model(bad)
    buf = io.BytesIO(h5)
    with h5py.File(buf, "a") as f:
        del f["optimizer/vars/3"]
        f["optimizer/vars/3"] = np.zeros((2, 2), np.float32)
    rewrite_zip(good, bad, {"model.weights.h5": buf.getvalue()})
    with pytest.raises(ValueError, match=r"bad.keras.*optimizer variable 3 \(velocity of trainable weight 0\)"):
        keras.models.load_model(bad)


def test_fixtures_are_small():
    for name in os.listdir(DATA):
        assert os.path.getsize(os.path.join(DATA, name)) < 50_000, name


def test_paths_may_be_str_or_pathlike(tmp_path, rng):
    model = dense_model()
    model.save(str(tmp_path / "m.keras"))
    saving.save_weights(model, str(tmp_path / "w.weights.h5"))
    loaded = saving.load_model(str(tmp_path / "m.keras"))
    saving.load_weights(loaded, tmp_path / "w.weights.h5")
    shutil.copy(tmp_path / "m.keras", tmp_path / "copy.keras")
    keras.models.load_model(tmp_path / "copy.keras")


def test_adamax_state_is_interleaved_per_variable_as_keras_writes_it(tmp_path, rng):
    """Keras's Adamax makes momentum and norm in one add_optimizer_variables call: per variable,
    momentum then norm (not all momenta, then all norms)."""
    x = rng.standard_normal((32, 4)).astype(np.float32)
    model = keras.Sequential([keras.layers.Dense(3, input_shape=(4,))])
    model.compile(optimizer=keras.optimizers.Adamax(), loss="mse")
    model.fit(x, x[:, :3], epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    tree = h5_tree(read_keras_file(tmp_path / "m.keras")[3])
    slots = model.optimizer._slots
    for i, shape in enumerate([(4, 3), (3,)]):
        np.testing.assert_array_equal(tree[f"optimizer/vars/{2 + 2 * i}"], slots["momentum"][1][i])
        np.testing.assert_array_equal(tree[f"optimizer/vars/{3 + 2 * i}"], slots["norm"][1][i])
        assert tree[f"optimizer/vars/{2 + 2 * i}"].shape == shape
    loaded = keras.models.load_model(tmp_path / "m.keras")
    for kind in ("momentum", "norm"):
        for a, b in zip(loaded.optimizer._slots[kind][1], slots[kind][1]):
            np.testing.assert_array_equal(a, b)

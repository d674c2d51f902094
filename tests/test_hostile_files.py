"""Hostile files and file-system states (issue 14, findings 3, 4, 11, 12, 15): loading never reads data
from outside the file, never takes more memory than the model's size plus a small constant, refuses
what it cannot trust with a ValueError naming the file, and leaves the model as it was; saving respects
the umask and the replaced file's mode and cleans up after killed saves. Ends with a fuzz test of
loading (``GRADSMITH_FUZZ_CASES`` cases, default 300; ``GRADSMITH_FUZZ_SEED``).

Run as a script (``python tests/test_hostile_files.py fuzz N SEED DIR``) it is the fuzz worker: a
separate process, so that a crash, a hang or the memory it takes is seen from outside.
"""
import copy
import io
import json
import os
import pickle
import random
import resource
import signal
import stat
import subprocess
import sys
import time
import tracemalloc
import zipfile

import h5py
import numpy as np
import pytest

import gradsmith as keras
from gradsmith import config as gconfig, ops, saving

HERE = os.path.dirname(os.path.abspath(__file__))
# Where the gradsmith under test was imported from (an installed package, or the source tree with its
# extension built in place): subprocesses import the same one.
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(keras.__file__)))


# --------------------------------------------------------------------------- helpers
def small_model(units=5, optimizer="adam"):
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dropout(0.1, seed=1), keras.layers.Dense(3)])
    if optimizer is not None:
        model.compile(optimizer=optimizer, loss="mse")
    return model


def trained_model(seed=0):
    rng = np.random.default_rng(seed)
    model = small_model()
    x = rng.standard_normal((16, 4)).astype(np.float32)
    y = rng.standard_normal((16, 3)).astype(np.float32)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    return model, x, y


def snapshot(model):
    return [w.copy() for w in model.get_weights()]


def assert_unchanged(model, snap):
    for a, b in zip(model.get_weights(), snap):
        np.testing.assert_array_equal(a, b)


def zip_entries(path):
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def write_zip(path, entries, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)


def edit_h5(data, edit):
    """The bytes of HDF5 file ``data`` after ``edit(h5py.File)``."""
    buf = io.BytesIO(data)
    with h5py.File(buf, "r+") as f:
        edit(f)
    return buf.getvalue()


def with_weights_entry(keras_path, out_path, edit):
    entries = zip_entries(keras_path)
    entries["model.weights.h5"] = edit_h5(entries["model.weights.h5"], edit)
    write_zip(out_path, entries)


class PeakMemory:
    """Peak of the memory Python and NumPy allocate inside the block (tracemalloc sees NumPy's arrays)."""

    def __enter__(self):
        tracemalloc.start()
        return self

    def __exit__(self, *exc):
        self.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return False


def secret_file(tmp_path):
    path = tmp_path / "secret.bin"
    np.arange(20, dtype=np.float32).tofile(path)  # exactly the 4 x 5 kernel's bytes
    return path


# --------------------------------------------------------------------------- 3: external and virtual data
def external_kernel(secret):
    def edit(f):
        del f["layers/dense/vars/0"]
        f["layers/dense/vars"].create_dataset("0", shape=(4, 5), dtype="f4", external=[(str(secret), 0, 80)])
    return edit


def virtual_kernel(f):
    del f["layers/dense/vars/0"]
    layout = h5py.VirtualLayout(shape=(4, 5), dtype="f4")
    layout[:] = h5py.VirtualSource("elsewhere.h5", "data", shape=(4, 5))
    f["layers/dense/vars"].create_virtual_dataset("0", layout, fillvalue=0)


def test_external_storage_is_refused_in_weights_and_keras_files(tmp_path):
    model, _, _ = trained_model()
    secret = secret_file(tmp_path)
    model.save_weights(tmp_path / "good.weights.h5")
    model.save(tmp_path / "good.keras")
    bad_w = tmp_path / "ext.weights.h5"
    bad_w.write_bytes(edit_h5((tmp_path / "good.weights.h5").read_bytes(), external_kernel(secret)))
    bad_k = tmp_path / "ext.keras"
    with_weights_entry(tmp_path / "good.keras", bad_k, external_kernel(secret))
    snap = snapshot(model)
    for bad in (bad_w, bad_k):
        with pytest.raises(ValueError, match=f"{bad.name}.*layers/dense/vars/0.*external storage"):
            model.load_weights(bad)
        assert_unchanged(model, snap)
    with pytest.raises(ValueError, match="ext.keras.*external storage"):
        keras.models.load_model(bad_k)


def test_virtual_datasets_are_refused_not_read_as_zeros(tmp_path):
    model, _, _ = trained_model()
    model.save_weights(tmp_path / "good.weights.h5")
    model.save(tmp_path / "good.keras")
    bad_w = tmp_path / "virt.weights.h5"
    bad_w.write_bytes(edit_h5((tmp_path / "good.weights.h5").read_bytes(), virtual_kernel))
    bad_k = tmp_path / "virt.keras"
    with_weights_entry(tmp_path / "good.keras", bad_k, virtual_kernel)
    snap = snapshot(model)
    for bad in (bad_w, bad_k):
        with pytest.raises(ValueError, match="virtual dataset"):
            model.load_weights(bad)
        assert_unchanged(model, snap)
    with pytest.raises(ValueError, match="virt.keras.*virtual dataset"):
        keras.models.load_model(bad_k)


@pytest.mark.parametrize("kind", ["soft", "external"])
def test_links_inside_a_weights_file_are_not_followed(tmp_path, kind):
    model, _, _ = trained_model()
    model.save_weights(tmp_path / "good.weights.h5")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.ones((4, 5), np.float32)

    def edit(f):
        del f["layers/dense/vars/0"]
        f["layers/dense/vars/0"] = (h5py.SoftLink("/layers/dense_1/vars/0") if kind == "soft"
                                    else h5py.ExternalLink(str(other), "data"))

    bad = tmp_path / "link.weights.h5"
    bad.write_bytes(edit_h5((tmp_path / "good.weights.h5").read_bytes(), edit))
    snap = snapshot(model)
    with pytest.raises(ValueError, match="link.weights.h5.*Link.*follows no links"):
        model.load_weights(bad)
    assert_unchanged(model, snap)


# --------------------------------------------------------------------------- 4: bounded memory
def test_a_zip_bomb_is_refused_from_its_declared_size(tmp_path):
    model, _, _ = trained_model()
    model.save(tmp_path / "good.keras")
    entries = zip_entries(tmp_path / "good.keras")
    entries["model.weights.h5"] = entries["model.weights.h5"] + bytes(256 * 2**20)  # 256 MiB of zeros
    bomb = tmp_path / "bomb.keras"
    write_zip(bomb, entries, zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 2 * 2**20
    snap = snapshot(model)
    with PeakMemory() as mem:
        with pytest.raises(ValueError, match="bomb.keras.*model.weights.h5 declares .* bytes uncompressed"):
            keras.models.load_model(bomb)
        with pytest.raises(ValueError, match="bomb.keras.*refusing to inflate"):
            model.load_weights(bomb)
    assert mem.peak < 32 * 2**20, mem.peak
    assert_unchanged(model, snap)


def test_a_zip_entry_larger_than_it_declares_is_not_read_past_its_declared_size(tmp_path):
    model, _, _ = trained_model()
    model.save(tmp_path / "good.keras")
    entries = zip_entries(tmp_path / "good.keras")
    real = entries["model.weights.h5"]
    entries["model.weights.h5"] = real + bytes(64 * 2**20)
    liar = tmp_path / "liar.keras"
    write_zip(liar, entries, zipfile.ZIP_DEFLATED)
    data = bytearray(liar.read_bytes())
    # the central directory's uncompressed size of the weights entry: says it is as small as the real file
    at = data.index(b"PK\x01\x02")
    while True:
        name_len = int.from_bytes(data[at + 28:at + 30], "little")
        if data[at + 46:at + 46 + name_len] == b"model.weights.h5":
            break
        at = data.index(b"PK\x01\x02", at + 4)
    data[at + 24:at + 28] = len(real).to_bytes(4, "little")
    liar.write_bytes(bytes(data))
    with PeakMemory() as mem:
        with pytest.raises(ValueError, match="liar.keras"):
            keras.models.load_model(liar)
    assert mem.peak < 32 * 2**20, mem.peak


def huge_dataset(path):
    """An edit adding (or replacing) ``path`` by a chunked 1.2 GB float32 dataset with no chunk written:
    a few KB on disk."""
    def edit(f):
        if path in f:
            del f[path]
        f.create_dataset(path, shape=(300_000_000,) if "extra" in path else (20_000, 15_000), dtype="f4",
                         chunks=(1_000_000,) if "extra" in path else (1000, 1000))
    return edit


@pytest.mark.parametrize("where", ["layers/extra/vars/0", "layers/dense/vars/0", "optimizer/vars/2"])
def test_a_huge_declared_dataset_is_refused_before_it_is_read(tmp_path, where):
    model, _, _ = trained_model()
    model.save_weights(tmp_path / "good.weights.h5")
    bad = tmp_path / "huge.weights.h5"
    bad.write_bytes(edit_h5((tmp_path / "good.weights.h5").read_bytes(), huge_dataset(where)))
    assert bad.stat().st_size < 64 * 2**10
    snap = snapshot(model)
    with PeakMemory() as mem, pytest.warns(UserWarning) if "optimizer" in where else _nothing():
        if "optimizer" in where:
            model.load_weights(bad)  # the optimizer's state is skipped with a warning, as Keras does
        else:
            with pytest.raises(ValueError, match="huge.weights.h5"):
                model.load_weights(bad)
    assert mem.peak < 16 * 2**20, mem.peak
    assert_unchanged(model, snap)
    # over the size limit, the declared shape alone is refused, whatever the layer
    with pytest.raises(ValueError, match="declares shape .* more than the limit"):
        model.load_weights(bad, max_weights=1000)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("kind", ["weights", "keras"])
@pytest.mark.parametrize("target", ["/dev/zero", "fifo", "directory"])
def test_a_path_that_is_not_a_regular_file_is_refused(tmp_path, kind, target):
    model = small_model()
    name = "w.weights.h5" if kind == "weights" else "m.keras"
    link = tmp_path / name
    if target == "/dev/zero":
        link.symlink_to("/dev/zero")
    elif target == "fifo":
        os.mkfifo(link)  # nobody writes to it: a blocking open would hang
    else:
        link.mkdir()
    start = time.monotonic()
    with pytest.raises(ValueError, match=f"{name}.*not a regular file"):
        model.load_weights(link)
    if kind == "keras":
        with pytest.raises(ValueError, match="not a regular file"):
            keras.models.load_model(link)
    assert time.monotonic() - start < 5


def keras_file_with_config(tmp_path, name, edit):
    """A copy of a good small .keras file whose config.json is ``edit(config)`` (or the string it returns)."""
    good = tmp_path / "good_for_config.keras"
    if not good.exists():
        small_model().save(good)
    entries = zip_entries(good)
    config = json.loads(entries["config.json"])
    new = edit(config)
    entries["config.json"] = new if isinstance(new, (str, bytes)) else json.dumps(config if new is None else new)
    path = tmp_path / name
    write_zip(path, entries)
    return path


def set_units(units, input_width=None):
    def edit(config):
        config["config"]["layers"][1]["config"]["units"] = units
        if input_width is not None:
            config["config"]["layers"][0]["config"]["batch_shape"] = [None, input_width]
    return edit


def test_a_config_implying_huge_weights_is_refused_before_allocating(tmp_path):
    path = keras_file_with_config(tmp_path, "big.keras", set_units(50_000_000, 1000))  # 5e10 values
    with PeakMemory() as mem:
        with pytest.raises(ValueError, match="big.keras.*50,050,000,000 values.*more than the limit of "
                                             "2,147,483,648.*set_max_weights"):
            keras.models.load_model(path)
    assert mem.peak < 16 * 2**20, mem.peak


def test_the_size_limit_can_be_raised_or_lowered_by_the_caller(tmp_path):
    model = small_model()
    path = tmp_path / "m.keras"
    model.save(path)
    n = model.count_params()  # 4*5+5 + 5*3+3 = 43
    with pytest.raises(ValueError, match="more than the limit of 42"):
        keras.models.load_model(path, max_weights=42)
    keras.models.load_model(path, max_weights=43)
    assert gconfig.get_max_weights() == 2**31  # the keyword is for that call only
    gconfig.set_max_weights(n - 1)
    try:
        with pytest.raises(ValueError, match="more than the limit"):
            keras.models.load_model(path)
        with pytest.raises(ValueError, match="more than the limit"):
            small_model()  # a model built by hand is held to it too, before allocating
        keras.models.load_model(path, max_weights=n)
    finally:
        gconfig.set_max_weights(gconfig.DEFAULT_MAX_WEIGHTS)
    with gconfig.max_weights(10):
        with pytest.raises(ValueError, match="more than the limit of 10"):
            keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(5)])
    for bad in (0, -1, 2.5, "big", True):
        with pytest.raises(ValueError, match="max_weights"):
            gconfig.set_max_weights(bad)


def test_weights_file_declared_shapes_are_checked_against_the_config_before_reading(tmp_path):
    """A .keras file whose weights disagree with its own config: refused from the declared shape."""
    model, _, _ = trained_model()
    model.save(tmp_path / "good.keras")
    bad = tmp_path / "mismatch.keras"
    with_weights_entry(tmp_path / "good.keras", bad, huge_dataset("layers/dense/vars/0"))
    with PeakMemory() as mem:
        with pytest.raises(ValueError, match=r"mismatch.keras.*shape \(4, 5\).*shape \(20000, 15000\)"):
            keras.models.load_model(bad)
    assert mem.peak < 16 * 2**20, mem.peak


# --------------------------------------------------------------------------- 11: modes and temporary files
@pytest.fixture
def umask():
    old = os.umask(0o022)
    os.umask(old)

    def set_umask(mask):
        os.umask(mask)
    yield set_umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_saved_files_respect_the_umask(tmp_path, umask, mask):
    model = small_model()
    umask(mask)
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "w.weights.h5")
    for name in ("m.keras", "w.weights.h5"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask


def test_saving_over_a_file_keeps_its_mode(tmp_path, umask):
    model = small_model()
    umask(0o077)
    for name, save in (("m.keras", model.save), ("w.weights.h5", model.save_weights)):
        path = tmp_path / name
        save(path)
        os.chmod(path, 0o640)
        save(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        os.chmod(path, 0o444)  # read-only files are replaced (as before), and stay read-only
        save(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_stale_temporary_files_of_ours_are_removed_by_the_next_save(tmp_path):
    model = small_model()
    old = time.time() - saving._STALE_TEMP_SECONDS - 60
    stale = tmp_path / ".gradsmith-tmp-0123456789abcdef.part"
    fresh = tmp_path / ".gradsmith-tmp-fedcba9876543210.part"  # a save in progress elsewhere
    legacy = tmp_path / ".tmp-ab_cd123-m.keras"  # named by an earlier gradsmith for m.keras
    foreign = [tmp_path / ".gradsmith-tmp-notours.part", tmp_path / ".tmp-ab_cd123-other.keras",
               tmp_path / "notes.txt"]
    for p in [stale, fresh, legacy] + foreign:
        p.write_bytes(b"x" * 100)
        if p is not fresh:
            os.utime(p, (old, old))
    model.save(tmp_path / "m.keras")
    names = {p.name for p in tmp_path.iterdir()}
    assert stale.name not in names and legacy.name not in names
    assert {fresh.name, "m.keras"} | {p.name for p in foreign} == names


_KILLED_SAVE = """
import os, sys, time
sys.path.insert(0, {python!r})
import gradsmith as keras
model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(64)])
def stall(fd):
    print("writing", flush=True)
    time.sleep(60)
os.fsync = stall
model.save({path!r})
"""


def test_a_save_killed_mid_write_leaves_a_temp_file_that_the_next_save_removes(tmp_path):
    target = tmp_path / "m.keras"
    code = _KILLED_SAVE.format(python=PACKAGE_ROOT, path=str(target))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    left = [p for p in tmp_path.iterdir()]
    assert len(left) == 1 and saving._TMP_NAME.match(left[0].name), left
    assert not target.exists()
    small_model().save(target)  # too recent to be removed: it might be another process's save
    assert left[0].exists()
    old = time.time() - saving._STALE_TEMP_SECONDS - 1
    os.utime(left[0], (old, old))
    small_model().save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]


def test_file_names_at_the_system_limit_work(tmp_path):
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    model, x, _ = trained_model()
    for suffix, save in ((".keras", model.save), (".weights.h5", model.save_weights)):
        path = tmp_path / ("a" * (name_max - len(suffix)) + suffix)
        save(path)
        save(path)
        model.load_weights(path)
    path = tmp_path / ("a" * (name_max - len(".keras")) + ".keras")
    np.testing.assert_array_equal(keras.models.load_model(path).predict(x, verbose=0), model.predict(x, verbose=0))
    assert len(list(tmp_path.iterdir())) == 2


# --------------------------------------------------------------------------- 12: pickle and deepcopy
def test_unpickled_arrays_are_accepted_by_the_kernels():
    a = pickle.loads(pickle.dumps(np.ones((2, 3), np.float32)))
    k = pickle.loads(pickle.dumps(np.full((3, 4), 0.5, np.float32)))
    assert a.dtype is not np.dtype(np.float32)  # a different object, an equal dtype
    np.testing.assert_array_equal(ops.dense_forward(a, k, None), np.full((2, 4), 1.5, np.float32))
    out = pickle.loads(pickle.dumps(np.zeros((2, 4), np.float32)))
    ops.matmul(a, k, out=out)
    np.testing.assert_array_equal(out, np.full((2, 4), 1.5, np.float32))


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_fitted_model_can_be_pickled_and_deep_copied(how):
    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(5, activation="relu"),
                              keras.layers.BatchNormalization(), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    x, y = rng.standard_normal((16, 4)).astype(np.float32), rng.standard_normal((16, 3)).astype(np.float32)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    clone = pickle.loads(pickle.dumps(model)) if how == "pickle" else copy.deepcopy(model)
    assert clone is not model and clone.compiled
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))
    state, clone_state = model.optimizer.get_state(), clone.optimizer.get_state()
    assert set(state) == set(clone_state)
    for k in state:
        np.testing.assert_array_equal(state[k], clone_state[k])
    # the copies are independent and train alike (the compiled step is rebuilt on demand)
    for m in (model, clone):
        m.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), clone.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    clone.layers[0].kernel[...] = 0
    assert np.any(model.layers[0].kernel != 0)


def test_an_unbuilt_model_can_be_pickled():
    model = keras.Sequential([keras.layers.Dense(3)])
    model.compile("sgd", "mse")
    clone = pickle.loads(pickle.dumps(model))
    assert not clone.built and clone.compiled
    clone.fit(np.ones((4, 2), np.float32), np.ones((4, 3), np.float32), verbose=0)


# --------------------------------------------------------------------------- 15: malformed configs
def nested(depth):
    return "[" * depth + "]" * depth


CONFIG_CASES = {
    "deep_json": lambda c: nested(100_000),
    "deep_layers": lambda c: {**c, "config": {**c["config"], "layers": json.loads(nested(200))}},
    "float_units": set_units(12.5),
    "string_units": set_units("12"),
    "float_width": lambda c: c["config"]["layers"][0]["config"].update(batch_shape=[None, 4.5]),
    "negative_width": lambda c: c["config"]["layers"][0]["config"].update(batch_shape=[None, -4]),
    "shape_not_list": lambda c: c["config"]["layers"][0]["config"].update(batch_shape=4),
    "class_name_list": lambda c: c.update(class_name=["Sequential"]),
    "layers_not_list": lambda c: c["config"].update(layers={"a": 1}),
    "layer_not_dict": lambda c: c["config"]["layers"].__setitem__(1, [1, 2]),
    "layer_class_list": lambda c: c["config"]["layers"][1].update(class_name=["Dense"]),
    "initializer_config_list": lambda c: c["config"]["layers"][1]["config"]["kernel_initializer"].update(config=[1]),
    "initializer_bad_arg": lambda c: c["config"]["layers"][1]["config"]["kernel_initializer"].update(
        config={"seed": [1]}),
    "name_dict": lambda c: c["config"]["layers"][1]["config"].update(name={"a": 1}),
    "model_name_list": lambda c: c["config"].update(name=[1]),
    "compile_config_list": lambda c: c.update(compile_config=[1]),
    "compile_loss_dict": lambda c: c["compile_config"].update(loss={"x": []}),
    "build_config_int": lambda c: (c["config"]["layers"].pop(0), c["config"].pop("build_input_shape", None),
                                   c.update(build_config={"input_shape": 5})) and None,
    "dropout_noise_float": lambda c: c["config"]["layers"][2]["config"].update(noise_shape=[None, 2.5]),
    "dropout_seed_string": lambda c: c["config"]["layers"][2]["config"].update(seed="x"),
    "unknown_argument": lambda c: c["config"]["layers"][1]["config"].update(bogus=1),
    "config_not_dict": lambda c: c.update(config=[1]),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_malformed_configs_raise_value_error_naming_the_file(tmp_path, case):
    path = keras_file_with_config(tmp_path, f"{case}.keras", CONFIG_CASES[case])
    with pytest.raises(ValueError, match=f"{case}.keras"):
        keras.models.load_model(path)


def test_integral_float_dimensions_are_accepted_and_fractional_ones_are_not():
    assert keras.Input(shape=(4.0,)).shape == (None, 4)
    with pytest.raises(ValueError, match="4.5"):
        keras.Input(shape=(4.5,))
    with pytest.raises(ValueError, match="12.5"):
        keras.layers.Dense(12.5)


# --------------------------------------------------------------------------- fuzz
FUZZ_ALLOWED = (ValueError, OSError, TypeError)  # KeyError and the rest are bugs: loading converts them


def _json_mutation(rng, config):
    """Change, delete or retype one value somewhere in the config."""
    nodes = []
    if not isinstance(config, (dict, list)) or not config:
        return config

    def walk(node):
        if isinstance(node, dict):
            for k in node:
                nodes.append((node, k))
                walk(node[k])
        elif isinstance(node, list):
            for i in range(len(node)):
                nodes.append((node, i))
                walk(node[i])
    walk(config)
    parent, key = rng.choice(nodes)
    values = [None, -1, 0, 1, 12.5, 2**40, 5e7, "x", "", [], {}, [None, 4], {"class_name": "Dense"}, True,
              json.loads(nested(50)), float("nan") if rng.random() < 0.1 else 3]
    if isinstance(parent, dict) and rng.random() < 0.2:
        del parent[key]
    else:
        parent[key] = rng.choice(values)
    return config


def _h5_mutation(rng, data):
    """Reshape, retype, drop, rename, relink or add one dataset or group of a weights file (the bytes
    unchanged when they are no longer HDF5 that h5py can edit)."""
    try:
        return _h5_edit(rng, data)
    except Exception:  # noqa: BLE001 - an earlier mutation broke the file: it is a case all the same
        return data


def _h5_edit(rng, data):
    def edit(f):
        datasets = []
        f.visititems(lambda name, obj: datasets.append(name) if isinstance(obj, h5py.Dataset) else None)
        path = rng.choice(datasets)
        ds = f[path]
        value = ds[()]
        op = rng.randrange(9)
        if op == 0:
            del f[path]
        elif op == 1:
            del f[path]
            f[path] = np.zeros(tuple(rng.randrange(0, 7) for _ in range(rng.randrange(0, 4))), np.float32)
        elif op == 2:
            del f[path]
            f[path] = np.asarray(value).astype(rng.choice(["f8", "f2", "i4", "i8", "u1", "?", ">f4"]))
        elif op == 3:
            del f[path]
            f[path] = np.array(b"text") if rng.random() < 0.5 else np.zeros(3, [("a", "f4"), ("b", "i4")])
        elif op == 4:
            f.move(path, path + "_moved" if rng.random() < 0.5 else path.rsplit("/", 1)[0] + "/99")
        elif op == 5:
            f.create_dataset(rng.choice(["layers/extra/vars/0", "optimizer/vars/999", "layers/dense/vars/x"]),
                             data=np.zeros(rng.randrange(1, 50), np.float32))
        elif op == 6:
            del f[path]
            f[path] = h5py.SoftLink("/" + rng.choice(datasets))
        elif op == 7:
            group = path.split("/")[0]
            del f[group]
            if rng.random() < 0.5:
                f[group] = np.zeros(3, np.float32)
        else:
            del f[path]
            f.create_dataset(path, shape=(rng.randrange(1, 10**6), rng.randrange(1, 10**4)), dtype="f4",
                             chunks=True)
    return edit_h5(data, edit)


def _byte_mutation(rng, data):
    data = bytearray(data.encode() if isinstance(data, str) else data)
    op = rng.randrange(3)
    if op == 0:
        return bytes(data[:rng.randrange(len(data))])
    if op == 1:
        for _ in range(rng.randrange(1, 12)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    at = rng.randrange(len(data))
    return bytes(data[:at] + bytes(rng.randrange(1, 64)) + data[at:])


def _keras_mutation(rng, entries):
    entries = dict(entries)
    op = rng.randrange(7)
    if op == 0 and entries:
        del entries[rng.choice(sorted(entries))]
    elif op == 1 and entries:
        name = rng.choice(sorted(entries))
        entries[name + rng.choice(["x", "/", ".bak"])] = entries.pop(name)
    elif op == 2 and "config.json" in entries:
        try:
            config = json.loads(entries["config.json"])
        except ValueError:  # an earlier mutation broke it
            return entries
        entries["config.json"] = json.dumps(_json_mutation(rng, config) if config else config).encode()
    elif op == 3 and "model.weights.h5" in entries:
        entries["model.weights.h5"] = _h5_mutation(rng, entries["model.weights.h5"])
    elif op == 4 and entries.get("model.weights.h5"):
        entries["model.weights.h5"] = _byte_mutation(rng, entries["model.weights.h5"])
    elif op == 5 and entries.get("config.json"):
        entries["config.json"] = _byte_mutation(rng, entries["config.json"])
    elif op == 6 and entries:
        entries[rng.choice(sorted(entries))] = b""
    return entries


def _fuzz_main(n, seed, workdir):
    """Worker: n mutated files, each loaded every way; prints one JSON line per problem, then a summary."""
    rng = random.Random(seed)
    os.chdir(workdir)
    model, _, _ = trained_model()
    model.save("base.keras")
    model.save_weights("base.weights.h5")
    # our own files and Keras's (tests/data: the same architecture as small_model)
    data_dir = os.path.join(HERE, "data")
    keras_bases = [("base.keras", zip_entries("base.keras")),
                   (os.path.join(data_dir, "keras_dense.keras"),
                    zip_entries(os.path.join(data_dir, "keras_dense.keras")))]
    weights_bases = [open(p, "rb").read() for p in ("base.weights.h5",
                                                    os.path.join(data_dir, "keras_dense.weights.h5"))]
    target = small_model()
    snap = snapshot(target)
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    slowest, outcomes = 0.0, {}
    for case in range(n):
        kind = rng.choice(["keras", "keras", "weights"])
        if kind == "keras":
            path = f"case{case}.keras"
            base_path, base_entries = rng.choice(keras_bases)
            if rng.random() < 0.15:
                data = _byte_mutation(rng, open(base_path, "rb").read())
                open(path, "wb").write(data)
            else:
                entries = _keras_mutation(rng, base_entries)
                if rng.random() < 0.3:
                    entries = _keras_mutation(rng, entries)
                write_zip(path, entries, rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
            calls = [("load_model", lambda: keras.models.load_model(path)),
                     ("load_weights", lambda: target.load_weights(path))]
        else:
            path = f"case{case}.weights.h5"
            base_weights = rng.choice(weights_bases)
            data = _h5_mutation(rng, base_weights) if rng.random() < 0.6 else _byte_mutation(rng, base_weights)
            open(path, "wb").write(data)
            calls = [("load_weights", lambda: target.load_weights(path))]
        for what, call in calls:
            start = time.monotonic()
            try:
                import warnings
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    call()
                outcome = "loaded"
            except FUZZ_ALLOWED as e:
                outcome = type(e).__name__
            except BaseException as e:  # noqa: BLE001 - the finding
                print(json.dumps({"case": case, "seed": seed, "call": what, "error": type(e).__name__,
                                  "message": str(e)[:300]}), flush=True)
                outcome = "bad"
            slowest = max(slowest, time.monotonic() - start)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if what == "load_weights":
                if outcome != "loaded":
                    try:
                        assert_unchanged(target, snap)
                    except AssertionError:
                        print(json.dumps({"case": case, "seed": seed, "call": what, "error": "model changed"}),
                              flush=True)
                target.set_weights(snap)
        os.unlink(path)
    rss_end = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"summary": True, "outcomes": outcomes, "slowest_s": slowest,
                      "rss_growth_kb": rss_end - rss_start}), flush=True)


def test_fuzz_loading(tmp_path):
    n = int(os.environ.get("GRADSMITH_FUZZ_CASES", "300"))
    seed = int(os.environ.get("GRADSMITH_FUZZ_SEED", "1234"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([PACKAGE_ROOT,
                                                        os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, __file__, "fuzz", str(n), str(seed), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=60 + n)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    problems = [line for line in lines if not line.get("summary")]
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:], problems[:10])
    assert not problems, problems[:10]
    summary = [line for line in lines if line.get("summary")][0]
    assert summary["slowest_s"] < 10, summary
    assert summary["rss_growth_kb"] < 200 * 1024, summary  # memory bounded: no case inflated anything big
    assert summary["outcomes"].get("loaded", 0) > 0 and len(summary["outcomes"]) > 1, summary


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "fuzz":
    sys.path.insert(0, HERE)
    _fuzz_main(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])

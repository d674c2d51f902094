"""Images in: gradsmith.preprocessing.image (Keras 3's legacy ImageDataGenerator), image_dataset_from_directory,
and PyDataset inputs to fit / evaluate / predict with batches read ahead in background threads.

Keras's and TensorFlow's numbers come from tests/data/keras_images.npz (tests/data/make_image_reference.py
records them, and the image folder's bytes); the rest is checked against Pillow directly and against the
float64 resizing reference of tests/reference/image.py."""
import os
import threading
import warnings

import numpy as np
import pytest
from PIL import Image

import gradsmith as keras
from gradsmith import _prefetch
from gradsmith.preprocessing import image as gimage
from gradsmith.preprocessing.image import ImageDataGenerator
from gradsmith.preprocessing.image_dataset import resize
from gradsmith.utils import image_dataset_from_directory
from reference import image as ref_image

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "data", "keras_images.npz")


def _generator_module():
    """tests/data/make_image_reference.py: its settings (AUG, TARGET, IDS_SIZE), its inputs (flow_inputs,
    resize_cases) and ``digest``; importing it needs neither Keras nor TensorFlow."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_image_reference",
                                                  os.path.join(HERE, "data", "make_image_reference.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _generator_module()
AUG, TARGET, IDS_SIZE, digest = GEN.AUG, GEN.TARGET, GEN.IDS_SIZE, GEN.digest


def assert_digest(a, want, what):
    assert digest(a) == str(want), f"{what}: not Keras's numbers (dtype {a.dtype}, shape {a.shape}, sum {a.sum()})"


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name.startswith(_prefetch.THREAD_NAME)]


@pytest.fixture(autouse=True)
def no_threads_left():
    yield
    assert prefetch_threads() == []


@pytest.fixture(scope="module")
def ref():
    with np.load(REF) as d:
        return {k: d[k] for k in d.files}


@pytest.fixture
def keras_root(ref, tmp_path):
    """The image folder Keras read, byte for byte."""
    root = tmp_path / "train"
    for k, v in ref.items():
        if k.startswith("files/"):
            p = root / k[len("files/"):]
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(v.tobytes())
    return str(root)


def rel(paths, root):
    return [os.path.relpath(p, root) for p in paths]


def make_folder(root, spec, seed=0):
    """spec: {class: [(name, (h, w), pil_mode)]}; smooth random content."""
    rng = np.random.RandomState(seed)
    for cls, files in spec.items():
        for name, (h, w), mode in files:
            path = os.path.join(root, cls, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
            a = rng.randint(0, 256, (h, w, channels)).astype(np.uint8)
            Image.fromarray(a[..., 0] if channels == 1 else a, mode).save(path)
    return str(root)


# --------------------------------------------------------------------------- flow_from_directory vs Keras
@pytest.mark.parametrize("mode", ["categorical", "binary", "sparse", "input", None])
def test_flow_from_directory_matches_keras(ref, keras_root, mode, capsys):
    it = ImageDataGenerator().flow_from_directory(keras_root, target_size=TARGET, class_mode=mode, batch_size=5,
                                                  shuffle=False)
    assert "Found 13 images belonging to 3 classes." in capsys.readouterr().out
    assert it.filenames == list(ref["dir/filenames"])
    assert list(it.class_indices) == list(ref["dir/class_names"])
    assert it.class_indices == {"cats": 0, "dogs": 1, "zebras": 2}
    assert it.classes.dtype == np.int32 and np.array_equal(it.classes, ref["dir/classes"])
    assert it.samples == 13 and it.num_classes == 3 and len(it) == 3
    assert it.filepaths == [os.path.join(keras_root, f) for f in it.filenames]
    batches = [it[i] for i in range(len(it))]
    xs = np.concatenate([b if mode is None else b[0] for b in batches])
    assert xs.dtype == np.float32 and xs.shape == (13,) + TARGET + (3,)
    np.testing.assert_array_equal(xs, ref["dir/x"])
    if mode is not None:
        ys = np.concatenate([b[1] for b in batches])
        assert ys.dtype == np.float32
        if mode == "input":
            assert_digest(ys, ref["dir/input/y"], "input labels")
        else:
            np.testing.assert_array_equal(ys, ref[f"dir/{mode}/y"])
    with pytest.raises(ValueError, match="has length 3"):
        it[3]


@pytest.mark.parametrize("color", ["grayscale", "rgba"])
def test_color_modes_match_keras(ref, keras_root, color):
    it = ImageDataGenerator().flow_from_directory(keras_root, target_size=TARGET, color_mode=color,
                                                  class_mode="sparse", batch_size=5, shuffle=False)
    x = np.concatenate([it[i][0] for i in range(len(it))])
    assert x.shape[-1] == {"grayscale": 1, "rgba": 4}[color]
    np.testing.assert_array_equal(x, ref[f"dir/{color}/x"])


def test_seeded_augmentation_matches_keras(ref, keras_root):
    """Every augmentation at once, seeded and shuffled: Keras's batches exactly, across an epoch end."""
    it = ImageDataGenerator(**AUG).flow_from_directory(keras_root, target_size=TARGET, batch_size=4, seed=7)
    batches = [it[i] for i in range(len(it))]
    it.on_epoch_end()
    batches += [it[0], it[1]]
    np.testing.assert_array_equal(batches[0][0], ref["aug/x0"])
    for i, (x, y) in enumerate(batches):
        assert_digest(x, ref[f"aug/sha{i}"], f"augmented batch {i}")
        np.testing.assert_array_equal(y, ref[f"aug/y{i}"])


def test_seeded_augmentation_through_threads_matches_keras(ref, keras_root):
    """The prefetching adapter (several threads) yields Keras's sequential batches."""
    from gradsmith import data_adapter
    it = ImageDataGenerator(**AUG).flow_from_directory(keras_root, target_size=TARGET, batch_size=4, seed=7)
    it._prefetch_workers = 3
    adapter = data_adapter.PyDatasetBatches(it)
    first = list(adapter)  # an epoch: batches 0..3, then on_epoch_end reshuffles
    assert len(first) == 4
    for i, (x, y, sw) in enumerate(first):
        assert_digest(x, ref[f"aug/sha{i}"], f"augmented batch {i}")
        np.testing.assert_array_equal(y, ref[f"aug/y{i}"])
        assert sw is None
    second = list(adapter)
    assert_digest(second[0][0], ref["aug/sha4"], "augmented batch 0 of the second epoch")
    assert_digest(second[1][0], ref["aug/sha5"], "augmented batch 1 of the second epoch")


def test_validation_split_subsets_match_keras(ref, keras_root):
    gen = ImageDataGenerator(validation_split=0.3)
    train = gen.flow_from_directory(keras_root, target_size=(4, 4), subset="training", shuffle=False)
    val = gen.flow_from_directory(keras_root, target_size=(4, 4), subset="validation", shuffle=False)
    assert train.filenames == list(ref["split/training"])
    assert val.filenames == list(ref["split/validation"])
    assert not set(train.filenames) & set(val.filenames)
    with pytest.raises(ValueError, match="Invalid subset name"):
        gen.flow_from_directory(keras_root, subset="test")


def test_flow_matches_keras(ref):
    it = ImageDataGenerator(**AUG).flow(*GEN.flow_inputs(), batch_size=4, seed=3)
    assert len(it) == 2
    for i in range(2):
        x, y = it[i]
        np.testing.assert_array_equal(x, ref[f"flow/x{i}"])
        np.testing.assert_array_equal(y, ref[f"flow/y{i}"])


# --------------------------------------------------------------------------- flow_from_directory vs Pillow
def test_file_order_classes_and_pixels_against_pillow(tmp_path, capsys):
    root = make_folder(tmp_path / "d", {
        "b_class": [("z.png", (17, 23), "RGB"), ("A.JPG", (31, 9), "RGB"), ("m.png", (12, 12), "L")],
        "a_class": [("x.png", (40, 41), "RGBA"), ("nested/y.bmp", (5, 7), "RGB"), ("nested/deeper/q.png", (8, 3), "RGB")],
        "c_class": [("k.ppm", (6, 6), "RGB"), ("k.tif", (9, 6), "RGB")],
    })
    (tmp_path / "d" / "c_class" / "readme.txt").write_text("not an image")
    (tmp_path / "d" / "stray.png").write_bytes(b"")  # a file at the top is no class
    it = ImageDataGenerator().flow_from_directory(root, target_size=(10, 11), class_mode="sparse", shuffle=False,
                                                  batch_size=3)
    assert "Found 8 images belonging to 3 classes." in capsys.readouterr().out
    assert list(it.class_indices) == ["a_class", "b_class", "c_class"]
    assert it.filenames == [os.path.join("a_class", "x.png"), os.path.join("a_class", "nested", "y.bmp"),
                            os.path.join("a_class", "nested", "deeper", "q.png"),
                            os.path.join("b_class", "A.JPG"), os.path.join("b_class", "m.png"),
                            os.path.join("b_class", "z.png"), os.path.join("c_class", "k.ppm"),
                            os.path.join("c_class", "k.tif")]
    assert list(it.classes) == [0, 0, 0, 1, 1, 1, 2, 2]
    x = np.concatenate([it[i][0] for i in range(len(it))])
    y = np.concatenate([it[i][1] for i in range(len(it))])
    assert y.dtype == np.float32 and list(y) == [0, 0, 0, 1, 1, 1, 2, 2]
    for k, path in enumerate(it.filepaths):
        with Image.open(path) as img:
            want = np.asarray(img.convert("RGB").resize((11, 10), Image.NEAREST), np.float32)
        np.testing.assert_array_equal(x[k], want, err_msg=path)


def test_classes_argument_and_interpolation(tmp_path):
    root = make_folder(tmp_path / "d", {"a": [("1.png", (30, 20), "RGB")], "b": [("2.png", (9, 13), "RGB")]})
    it = ImageDataGenerator().flow_from_directory(root, target_size=(7, 5), classes=["b", "a"],
                                                  class_mode="categorical", shuffle=False, interpolation="bilinear")
    assert it.class_indices == {"b": 0, "a": 1}
    x, y = it[0]
    np.testing.assert_array_equal(y, [[1, 0], [0, 1]])
    with Image.open(os.path.join(root, "b", "2.png")) as img:
        np.testing.assert_array_equal(x[0], np.asarray(img.resize((5, 7), Image.BILINEAR), np.float32))
    with pytest.raises(ValueError, match="Invalid class_mode"):
        ImageDataGenerator().flow_from_directory(root, class_mode="multi")
    with pytest.raises(ValueError, match="Invalid color mode"):
        ImageDataGenerator().flow_from_directory(root, color_mode="cmyk")


def test_shuffle_and_epoch_end(tmp_path):
    root = make_folder(tmp_path / "d", {"a": [(f"{i}.png", (4, 4), "RGB") for i in range(10)]})
    it = ImageDataGenerator().flow_from_directory(root, target_size=(4, 4), batch_size=4, seed=1, class_mode=None)
    first = np.concatenate([it[i] for i in range(len(it))])
    it.on_epoch_end()
    second = np.concatenate([it[i] for i in range(len(it))])
    key = lambda a: sorted(map(bytes, a.astype(np.uint8).reshape(len(a), -1)))  # noqa: E731
    assert key(first) == key(second) and not np.array_equal(first, second)  # a new order, the same images


# --------------------------------------------------------------------------- transforms
def test_flips_are_exact():
    x = np.arange(2 * 3 * 5 * 1.0, dtype=np.float32).reshape(5, 3, 2)
    gen = ImageDataGenerator()
    np.testing.assert_array_equal(gen.apply_transform(x, {"flip_horizontal": True}), x[:, ::-1])
    np.testing.assert_array_equal(gen.apply_transform(x, {"flip_vertical": True}), x[::-1])
    np.testing.assert_array_equal(gen.apply_transform(x, {}), x)


def test_random_transform_ranges_and_seed():
    gen = ImageDataGenerator(rotation_range=20, width_shift_range=0.1, height_shift_range=3, shear_range=5,
                             zoom_range=[0.8, 1.1], channel_shift_range=10, brightness_range=[0.5, 1.5],
                             horizontal_flip=True)
    ps = [gen.get_random_transform((30, 40, 3)) for _ in range(300)]
    assert all(-20 <= p["theta"] <= 20 and -5 <= p["shear"] <= 5 for p in ps)
    assert all(-4.0 <= p["ty"] <= 4.0 for p in ps)  # 0.1 of the width, 40
    assert {p["tx"] for p in ps} <= {-3, -2, -1, 0, 1, 2, 3}  # an int range: whole pixels
    assert all(0.8 <= p["zx"] <= 1.1 and 0.8 <= p["zy"] <= 1.1 for p in ps)
    assert all(-10 <= p["channel_shift_intensity"] <= 10 and 0.5 <= p["brightness"] <= 1.5 for p in ps)
    assert {bool(p["flip_horizontal"]) for p in ps} == {True, False} and not any(p["flip_vertical"] for p in ps)
    assert gen.get_random_transform((30, 40, 3), seed=4) == gen.get_random_transform((30, 40, 3), seed=4)
    x = np.random.RandomState(0).rand(30, 40, 3).astype(np.float32) * 255
    np.testing.assert_array_equal(gen.random_transform(x, seed=9), gen.random_transform(x, seed=9))
    assert not np.array_equal(gen.random_transform(x, seed=9), gen.random_transform(x, seed=10))


def test_seeded_iterators_repeat(tmp_path):
    root = make_folder(tmp_path / "d", {"a": [(f"{i}.png", (9, 8), "RGB") for i in range(6)]})
    gen = ImageDataGenerator(rotation_range=40, zoom_range=0.3, horizontal_flip=True, fill_mode="constant", cval=7)
    runs = []
    for seed in (3, 3, 4):
        it = gen.flow_from_directory(root, target_size=(9, 8), batch_size=4, seed=seed, class_mode=None)
        runs.append([it[0], it[1]])
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][0], runs[2][0])


def test_affine_against_scipy_directly():
    """A pure shift by whole pixels moves the image, filling by fill_mode. Keras's axes: with channels last,
    ``tx`` moves along the columns and ``ty`` along the rows (the matrix's axes are swapped)."""
    x = np.arange(6 * 7, dtype=np.float32).reshape(6, 7, 1)
    out = gimage.apply_affine_transform(x, tx=2, ty=-1, row_axis=0, col_axis=1, channel_axis=2,
                                        fill_mode="constant", cval=-1.0)
    want = np.full_like(x, -1.0)
    want[1:, :5] = x[:5, 2:]
    np.testing.assert_array_equal(out, want)


def test_standardize_and_featurewise():
    x = np.random.RandomState(1).rand(8, 5, 4, 3).astype(np.float32) * 255
    gen = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True, rescale=0.5)
    gen.fit(x)
    np.testing.assert_allclose(gen.mean.reshape(3), (x * 0.5).mean(axis=(0, 1, 2)), rtol=1e-5)
    out = np.stack([gen.standardize(xi.copy()) for xi in x])
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1, atol=1e-3)
    sw = ImageDataGenerator(samplewise_center=True, samplewise_std_normalization=True,
                            preprocessing_function=lambda a: a + 1)
    s = sw.standardize(x[0].copy())
    np.testing.assert_allclose([s.mean(), s.std()], [0, 1], atol=1e-4)
    with pytest.warns(UserWarning, match="hasn't been fit"):
        ImageDataGenerator(featurewise_center=True).standardize(x[0].copy())
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        ImageDataGenerator(validation_split=1.5)


def test_flow_subset_and_sample_weight():
    x = np.random.RandomState(2).rand(10, 4, 4, 1).astype(np.float32)
    y = np.array([0, 1] * 5)
    sw = np.arange(10, dtype=np.float32)
    gen = ImageDataGenerator(validation_split=0.2)
    tr = gen.flow(x, y, batch_size=16, shuffle=False, sample_weight=sw, subset="training")
    va = gen.flow(x, y, batch_size=16, shuffle=False, subset="validation")
    bx, by, bw = tr[0]
    np.testing.assert_array_equal(bx, x[2:])
    # Keras splits x and y by subset but indexes the whole sample_weight with the subset's rows.
    np.testing.assert_array_equal(bw, sw[:8])
    np.testing.assert_array_equal(va[0][0], x[:2])
    with pytest.raises(ValueError, match="rank 4"):
        gen.flow(x[0], y[:4])


# --------------------------------------------------------------------------- damaged files
def test_damaged_file_names_the_file(tmp_path):
    root = make_folder(tmp_path / "d", {"a": [("ok.png", (5, 5), "RGB")]})
    bad = os.path.join(root, "a", "broken.jpg")
    with open(bad, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    truncated = os.path.join(root, "a", "cut.png")
    with open(os.path.join(root, "a", "ok.png"), "rb") as f:
        buf = f.read()
    with open(truncated, "wb") as f:
        f.write(buf[: len(buf) // 2])
    it = ImageDataGenerator().flow_from_directory(root, target_size=(5, 5), shuffle=False, batch_size=1)
    assert it.samples == 3  # listed by extension, as Keras
    with pytest.raises(gimage.ImageFileError, match="broken.jpg"):
        it[0]
    with pytest.raises(OSError, match="cut.png"):
        it[1]
    it[2]
    model = keras.Sequential([keras.Input((5, 5, 3)), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    it = ImageDataGenerator().flow_from_directory(root, target_size=(5, 5), class_mode="sparse", batch_size=1)
    with pytest.raises(OSError, match=r"broken\.jpg|cut\.png"):
        model.fit(it, epochs=1, verbose=0)
    assert prefetch_threads() == []
    with pytest.raises(OSError, match=r"broken\.jpg|cut\.png"):
        list(image_dataset_from_directory(root, image_size=(5, 5), verbose=False))


# --------------------------------------------------------------------------- resizing, as TensorFlow
@pytest.mark.parametrize("k", range(5))
@pytest.mark.parametrize("method", ["bilinear", "nearest"])
def test_resize_matches_tensorflow(ref, k, method):
    img, size = GEN.resize_cases()[k]
    got = resize(img, size, method)
    want = ref[f"resize/{k}/{method}"]
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape,size", [((13, 17, 3), (24, 20)), ((40, 33, 1), (9, 14)), ((1, 1, 2), (3, 4)),
                                        ((5, 8, 3), (5, 8)), ((100, 3, 1), (7, 11))])
def test_resize_against_float64_reference(shape, size):
    img = np.random.RandomState(sum(shape)).randint(0, 256, shape).astype(np.uint8)
    np.testing.assert_allclose(resize(img, size, "bilinear"), ref_image.bilinear(img, *size), rtol=0, atol=1e-3)
    np.testing.assert_array_equal(resize(img, size, "nearest"), ref_image.nearest(img, *size))


# --------------------------------------------------------------------------- image_dataset_from_directory
def test_image_dataset_file_order_matches_keras(ref, keras_root, capsys):
    ds = image_dataset_from_directory(keras_root, image_size=IDS_SIZE, seed=5, batch_size=4)
    assert "Found 13 files belonging to 3 classes." in capsys.readouterr().out
    assert rel(ds.file_paths, keras_root) == list(ref["ids/shuffled_paths"])
    assert ds.class_names == ["cats", "dogs", "zebras"]
    assert len(ds) == 4
    for subset in ("training", "validation"):
        sub = image_dataset_from_directory(keras_root, image_size=IDS_SIZE, seed=5, validation_split=0.25,
                                           subset=subset)
        assert rel(sub.file_paths, keras_root) == list(ref[f"ids/{subset}_paths"])
    assert "Using 10 files for training." in capsys.readouterr().out
    train, val = image_dataset_from_directory(keras_root, image_size=IDS_SIZE, seed=5, validation_split=0.25,
                                              subset="both")
    assert rel(train.file_paths, keras_root) == list(ref["ids/training_paths"])
    assert rel(val.file_paths, keras_root) == list(ref["ids/validation_paths"])


@pytest.mark.parametrize("name,kw", [("bilinear", {}), ("nearest", {"interpolation": "nearest"}),
                                     ("crop", {"crop_to_aspect_ratio": True}), ("pad", {"pad_to_aspect_ratio": True}),
                                     ("gray", {"color_mode": "grayscale", "class_names": ["dogs", "zebras"]})])
def test_image_dataset_pixels_match_tensorflow(ref, keras_root, name, kw):
    """PNG and BMP pixels are TensorFlow's exactly; JPEGs are decoded by Pillow's libjpeg settings, not
    TensorFlow's (a few levels apart)."""
    ds = image_dataset_from_directory(keras_root, image_size=IDS_SIZE, shuffle=False, batch_size=None,
                                      label_mode="categorical", verbose=False, **kw)
    assert rel(ds.file_paths, keras_root) == list(ref[f"ids/{name}/paths"])
    xs, ys = zip(*ds)
    x, y = np.stack(xs), np.stack(ys)
    assert x.dtype == (np.uint8 if name == "nearest" else np.float32)
    np.testing.assert_array_equal(y, ref[f"ids/{name}/y"])
    jpeg = np.array([p.lower().endswith((".jpg", ".jpeg")) for p in ds.file_paths])
    if f"ids/{name}/sha" in ref:
        assert_digest(x[~jpeg], ref[f"ids/{name}/sha"], name)
        return
    want = ref[f"ids/{name}/x"]
    assert x.dtype == want.dtype and x.shape == want.shape
    np.testing.assert_array_equal(x[~jpeg], want[~jpeg])
    diff = np.abs(x[jpeg].astype(np.float64) - want[jpeg])
    assert diff.mean() < 4 and diff.max() <= 24


def test_image_dataset_labels_and_batches(ref, keras_root):
    for mode, dtype, shape in (("int", np.int32, (4,)), ("categorical", np.float32, (4, 3)),
                               ("binary", np.float32, (4, 1))):
        kw = {"class_names": ["dogs", "zebras"]} if mode == "binary" else {}
        ds = image_dataset_from_directory(keras_root, image_size=(12, 10), label_mode=mode, batch_size=4,
                                          shuffle=False, verbose=False, **kw)
        x, y = next(iter(ds))
        assert x.dtype == np.float32 and x.shape == (4, 12, 10, 3)
        assert y.dtype == dtype and y.shape == (shape if mode != "categorical" else (4, 3))
        if mode == "binary":
            np.testing.assert_array_equal(y[:3], ref["ids/binary/y"])
    ds = image_dataset_from_directory(keras_root, image_size=(12, 10), label_mode=None, batch_size=5, verbose=False)
    batches = list(ds)
    assert [b.shape[0] for b in batches] == [5, 5, 3] and all(isinstance(b, np.ndarray) for b in batches)
    with pytest.raises(ValueError, match="exactly 2"):
        image_dataset_from_directory(keras_root, label_mode="binary", verbose=False)
    with pytest.raises(ValueError, match="must provide a `seed`"):
        image_dataset_from_directory(keras_root, validation_split=0.2, subset="training", verbose=False)


def test_image_dataset_epochs_reshuffle(keras_root):
    ds = image_dataset_from_directory(keras_root, image_size=(6, 6), batch_size=13, seed=1, label_mode=None,
                                      verbose=False)
    a, b = next(iter(ds)), next(iter(ds))
    key = lambda t: sorted(map(bytes, t.round(3).astype(np.float32).reshape(len(t), -1)))  # noqa: E731
    assert key(a) == key(b) and not np.array_equal(a, b)
    ds2 = image_dataset_from_directory(keras_root, image_size=(6, 6), batch_size=13, seed=1, label_mode=None,
                                       verbose=False)
    np.testing.assert_array_equal(next(iter(ds2)), a)  # the same seed, the same passes


# --------------------------------------------------------------------------- training on them
def _two_class_folder(root, n, size=(20, 18), seed=0):
    rng = np.random.RandomState(seed)
    for c, cls in enumerate(("cats", "dogs")):
        os.makedirs(os.path.join(root, cls))
        for i in range(n // 2):
            a = np.clip(rng.randint(0, 256, size + (3,)) * 0.5 + 120 * c, 0, 255).astype(np.uint8)
            Image.fromarray(a).save(os.path.join(root, cls, f"{i}.{'png' if i % 2 else 'jpg'}"))
    return str(root)


def _dense_model(shape):
    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def test_fit_on_flow_from_directory(tmp_path):
    """The issue's program, small: fit with steps_per_epoch / validation_steps, then evaluate and predict."""
    train_dir = _two_class_folder(tmp_path / "train", 40)
    val_dir = _two_class_folder(tmp_path / "validation", 12, seed=1)
    keras.utils.set_random_seed(0)
    train = ImageDataGenerator(rescale=1. / 255, horizontal_flip=True).flow_from_directory(
        train_dir, target_size=(16, 16), batch_size=8, class_mode="binary")
    val = ImageDataGenerator(rescale=1. / 255).flow_from_directory(val_dir, target_size=(16, 16), batch_size=8,
                                                                  class_mode="binary")
    model = _dense_model((16, 16, 3))
    seen = []
    cb = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(threading.active_count()))
    history = model.fit(train, steps_per_epoch=5, epochs=3, validation_data=val, validation_steps=2, verbose=0,
                        callbacks=[cb])
    assert len(history.history["loss"]) == 3 and "val_accuracy" in history.history
    assert len(seen) == 15 and max(seen) > 1  # batches were made by background threads
    assert prefetch_threads() == []
    loss, acc = model.evaluate(val, verbose=0)
    assert np.isfinite(loss) and 0 <= acc <= 1
    assert model.predict(val, verbose=0).shape == (12, 1)
    # Keras 3: with steps_per_epoch the pass goes on across epochs; one that ends early warns.
    with pytest.warns(UserWarning, match="ran out of data"):
        model.fit(train, steps_per_epoch=3, epochs=2, verbose=0)


def test_fit_on_image_dataset(tmp_path):
    root = _two_class_folder(tmp_path / "d", 20)
    train, val = image_dataset_from_directory(root, image_size=(16, 16), batch_size=4, label_mode="binary",
                                              validation_split=0.2, subset="both", seed=3, verbose=False)
    model = _dense_model((16, 16, 3))
    history = model.fit(train, epochs=2, validation_data=val, verbose=0)
    assert len(history.history["val_loss"]) == 2
    assert model.predict(val, verbose=0).shape == (4, 1)
    assert prefetch_threads() == []


# --------------------------------------------------------------------------- PyDataset semantics
class Recorder(keras.utils.PyDataset):
    def __init__(self, n, batch=2, fail_at=None, **kwargs):
        super().__init__(**kwargs)
        self.n, self.batch, self.fail_at = n, batch, fail_at
        self.calls, self.threads, self.epoch_ends, self.epoch_begins = [], set(), 0, 0
        self.lock = threading.Lock()

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        with self.lock:
            self.calls.append(i)
            self.threads.add(threading.current_thread().name)
        if i == self.fail_at:
            raise RuntimeError(f"cannot make batch {i}")
        x = np.full((self.batch, 3), i, np.float32)
        return x, np.full((self.batch, 1), i % 2, np.float32)

    def on_epoch_begin(self):
        self.epoch_begins += 1

    def on_epoch_end(self):
        self.epoch_ends += 1


def _linear():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_py_dataset_steps_continue_across_epochs():
    ds = Recorder(5)
    model = _linear()
    model.fit(ds, epochs=2, steps_per_epoch=2, shuffle=False, verbose=0)
    # on_epoch_end: once as fit starts (Keras's EpochIterator.reset), then after each epoch.
    assert ds.calls == [0, 1, 2, 3] and ds.epoch_ends == 3 and ds.epoch_begins == 2
    assert all(t.startswith(_prefetch.THREAD_NAME) for t in ds.threads)
    ds.calls.clear()
    with pytest.warns(UserWarning, match="ran out of data"):
        model.fit(ds, epochs=3, steps_per_epoch=3, shuffle=False, verbose=0)
    # The rest of the pass, then the epoch ends early; the next epoch starts a new pass.
    assert ds.calls == [0, 1, 2, 3, 4, 0, 1, 2]
    ds.calls.clear()
    model.fit(ds, epochs=2, shuffle=True, verbose=0)
    assert sorted(ds.calls[:5]) == [0, 1, 2, 3, 4] and sorted(ds.calls[5:]) == [0, 1, 2, 3, 4]
    ds.calls.clear()
    model.evaluate(ds, verbose=0)
    assert ds.calls == [0, 1, 2, 3, 4]  # evaluate does not shuffle


def test_py_dataset_worker_error_is_raised_and_threads_stop():
    ds = Recorder(6, fail_at=3, workers=3)
    model = _linear()
    with pytest.raises(RuntimeError, match="cannot make batch 3") as info:
        model.fit(ds, epochs=1, shuffle=False, verbose=0)
    assert any("batch 3" in n for n in getattr(info.value, "__notes__", ["batch 3"]))
    assert prefetch_threads() == []
    assert model.optimizer.iterations == 3  # the batches before it trained


def test_py_dataset_stop_training_and_class_weight():
    ds = Recorder(8, workers=2)
    model = _linear()

    class Stop(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    model.fit(ds, epochs=3, callbacks=[Stop()], shuffle=False, verbose=0)
    assert int(model.optimizer.iterations) == 2 and prefetch_threads() == []
    model.fit(ds, epochs=1, class_weight={0: 1.0, 1: 0.0}, verbose=0)


def test_sequence_alias_and_duck_typed_sequence():
    assert keras.utils.Sequence is keras.utils.PyDataset

    class Old:  # Keras 2's Sequence shape, not derived from PyDataset
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return np.ones((2, 3), np.float32) * i, np.zeros((2, 1), np.float32)

        def on_epoch_end(self):
            pass

    model = _linear()
    model.fit(Old(), epochs=1, verbose=0)
    assert model.predict(Old(), verbose=0).shape == (6, 1)


def test_super_init_not_called_warns():
    class NoSuper(keras.utils.PyDataset):
        def __init__(self):
            pass

        def __len__(self):
            return 1

        def __getitem__(self, i):
            return np.ones((1, 3), np.float32), np.ones((1, 1), np.float32)

    with pytest.warns(UserWarning, match="super"):
        _linear().fit(NoSuper(), verbose=0)


def test_legacy_iteration_is_endless(tmp_path):
    root = make_folder(tmp_path / "d", {"a": [(f"{i}.png", (4, 4), "RGB") for i in range(3)]})
    it = ImageDataGenerator().flow_from_directory(root, target_size=(4, 4), batch_size=2, class_mode="sparse")
    sizes = [len(next(it)[0]) for _ in range(5)]
    assert sizes == [2, 1, 2, 1, 2]


def test_threads_stop_when_fit_is_interrupted_or_the_step_fails(tmp_path):
    root = _two_class_folder(tmp_path / "d", 24)
    it = ImageDataGenerator(rescale=1. / 255).flow_from_directory(root, target_size=(16, 16), batch_size=4,
                                                                 class_mode="binary")
    model = _dense_model((16, 16, 3))

    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            assert all(t.daemon for t in prefetch_threads())
            if batch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.fit(it, epochs=2, callbacks=[Interrupt()], verbose=0)
    assert prefetch_threads() == []
    wrong = _dense_model((8, 8, 3))  # the batches do not fit the model
    with pytest.raises(ValueError):
        wrong.fit(it, epochs=1, verbose=0)
    assert prefetch_threads() == []


def test_ctrl_c_while_batches_load_stops_the_threads():
    """A real SIGINT while fit waits for a batch being made: KeyboardInterrupt, and no thread left."""
    import subprocess
    import sys
    import textwrap
    script = textwrap.dedent("""
        import os, signal, threading, time
        import numpy as np
        import gradsmith as keras

        class Slow(keras.utils.PyDataset):
            def __init__(self):
                super().__init__(workers=2)

            def __len__(self):
                return 50

            def __getitem__(self, i):
                if i == 3:
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(0.3)
                return np.ones((2, 3), np.float32), np.ones((2, 1), np.float32)

        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        try:
            model.fit(Slow(), epochs=1, shuffle=False, verbose=0)
            print("not interrupted")
        except KeyboardInterrupt:
            left = [t.name for t in threading.enumerate() if t.name.startswith("gradsmith-prefetch")]
            print("interrupted", left, int(model.optimizer.iterations))
    """)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.dirname(keras.__path__[0]), env.get("PYTHONPATH")) if p)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert words[:2] == ["interrupted", "[]"], out.stdout
    assert int(words[2]) < 50

"""Writes tests/data/keras_images.npz, the Keras-made expectations of tests/test_image_pipeline.py.
Run with real Keras 3, TensorFlow, Pillow and scipy (not needed by the tests):

    python -m venv /tmp/kimg && /tmp/kimg/bin/pip install keras tensorflow-cpu pillow scipy numpy
    KERAS_BACKEND=tensorflow /tmp/kimg/bin/python tests/data/make_image_reference.py

(Recorded with Keras 3.15.1, TensorFlow 2.21.0, Pillow 13.0.0, scipy 1.17.1, NumPy 2.x.)

The image folder itself is stored in the file (each file's relative path and bytes: ``files/<path>``),
so the tests read the very bytes Keras read; the inputs of ``flow`` and of the resizes are made again by
``flow_inputs`` / ``resize_cases`` (NumPy's legacy generator, stable across versions). Large float arrays
are stored as ``digest``s (16 hex digits of a SHA-256 of dtype, shape and bytes: equal means bit-equal),
to keep the file small. Stored results:
  dir/x, dir/<mode>/y            flow_from_directory(target_size=TARGET, shuffle=False, batch_size=5,
                                 class_mode=<mode>) for every class mode, all batches concatenated (the
                                 images, the same for every mode, are whole numbers: stored as uint8;
                                 'input' labels, the images again, as a digest); dir/<colour>/x: the
                                 grayscale and rgba colour modes (class_mode='sparse')
  dir/filenames, dir/classes     its .filenames and .classes; dir/class_names the class_indices keys
  aug/x0, aug/sha<i>, aug/y<i>   a seeded (seed=7), shuffled flow_from_directory with every augmentation,
                                 batches it[0], it[1], .., it[len-1], then after on_epoch_end it[0], it[1]
                                 (batch 0's images in full, every batch's as a digest)
  split/<subset>                 the .filenames of subset 'training' / 'validation' (validation_split=0.3)
  flow/x<i>, flow/y<i>           ImageDataGenerator(**AUG).flow(*flow_inputs(), batch_size=4, seed=3)
  resize/<k>/<method>            tf.image.resize of resize_cases()[k], bilinear and nearest
  ids/...                        image_dataset_from_directory: file_paths (relative) with shuffle and seed,
                                 validation subsets, and per-file images (IDS_SIZE) and labels (shuffle=False,
                                 batch_size=None, label_mode='categorical') for bilinear (every file), nearest,
                                 crop_to_aspect_ratio and pad_to_aspect_ratio (the files other than JPEGs, as a
                                 digest) and grayscale (two classes: TensorFlow cannot read a BMP as one
                                 channel; nor a JPEG as RGBA, so no rgba)
"""
import hashlib
import io
import os
import shutil
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "keras_images.npz")

AUG = dict(rotation_range=30, width_shift_range=0.2, height_shift_range=0.1, shear_range=10.0, zoom_range=0.2,
           channel_shift_range=20.0, horizontal_flip=True, vertical_flip=True, brightness_range=(0.6, 1.4),
           fill_mode="reflect", rescale=1.0 / 255)


def image_files():
    """{relative path: bytes}: three classes, PNG / JPEG / BMP, odd sizes, grayscale and RGBA sources, an
    upper-case extension, a nested folder, and files that are not listed (a .txt, a .webp)."""
    rng = np.random.RandomState(0)
    files = {}

    def add(path, arr, mode, fmt, **kw):
        buf = io.BytesIO()
        Image.fromarray(arr, mode).save(buf, format=fmt, **kw)
        files[path] = buf.getvalue()

    def smooth(h, w, c):  # structured content (a gradient plus noise): resampling differences show
        yy, xx = np.mgrid[0:h, 0:w]
        base = (yy * 255 // max(h - 1, 1) + xx * 128 // max(w - 1, 1)) % 256
        out = base[..., None] + rng.randint(-12, 12, (h, w, c))
        return np.clip(out, 0, 255).astype(np.uint8)

    add("cats/c01.png", smooth(15, 13, 3), "RGB", "PNG")
    add("cats/c02.jpg", smooth(20, 17, 3), "RGB", "JPEG", quality=90)
    add("cats/c03.png", smooth(9, 22, 1)[..., 0], "L", "PNG")
    add("cats/C04.PNG", smooth(10, 9, 4), "RGBA", "PNG")
    add("cats/sub/c05.bmp", smooth(7, 6, 3), "RGB", "BMP")
    add("dogs/d01.jpeg", smooth(24, 18, 3), "RGB", "JPEG", quality=85)
    add("dogs/d02.png", smooth(5, 7, 3), "RGB", "PNG")
    add("dogs/d03.png", smooth(12, 12, 4), "RGBA", "PNG")
    add("dogs/d04.png", smooth(16, 9, 1)[..., 0], "L", "PNG")
    add("dogs/a00.png", smooth(11, 12, 3), "RGB", "PNG")
    add("zebras/z01.png", smooth(14, 15, 3), "RGB", "PNG")
    add("zebras/z02.jpg", smooth(9, 14, 3), "RGB", "JPEG", quality=95)
    add("zebras/z03.png", smooth(21, 8, 3), "RGB", "PNG")
    add("zebras/notes.txt", np.zeros((1, 1), np.uint8), "L", "PNG")  # a listed-by-extension miss
    add("zebras/z04.webp", smooth(4, 4, 3), "RGB", "WEBP")  # not an allowed extension
    return files


def write_folder(root, files):
    for rel, blob in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(blob)


TARGET = (10, 9)  # flow_from_directory's target_size
IDS_SIZE = (7, 6)  # image_dataset_from_directory's image_size


def digest(a):
    """The exact contents of an array, in 16 hex digits (dtype, shape and bytes)."""
    a = np.ascontiguousarray(a)
    return hashlib.sha256(f"{a.dtype.str}{a.shape}".encode() + a.tobytes()).hexdigest()[:16]


def flow_inputs():
    rng = np.random.RandomState(1)  # NumPy's legacy generator: the same numbers in every version
    return rng.randint(0, 256, (6, 8, 7, 3)).astype(np.float32), rng.randint(0, 3, 6)


def resize_cases():
    """[(uint8 image, (height, width))]: down, up, one channel, four, the same size."""
    rng = np.random.RandomState(2)
    shapes = [((13, 17, 3), (9, 11)), ((5, 6, 3), (12, 14)), ((30, 40, 1), (8, 6)), ((7, 5, 4), (7, 5)),
              ((9, 4, 2), (4, 9))]
    return [(rng.randint(0, 256, shape).astype(np.uint8), size) for shape, size in shapes]


def main():
    import keras
    import tensorflow as tf
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    files = image_files()
    out = {f"files/{rel}": np.frombuffer(blob, np.uint8) for rel, blob in files.items()}
    tmp = tempfile.mkdtemp()
    root = os.path.join(tmp, "train")
    try:
        write_folder(root, files)
        plain = ImageDataGenerator()
        for mode in ("categorical", "binary", "sparse", "input", None):
            it = plain.flow_from_directory(root, target_size=TARGET, class_mode=mode, batch_size=5, shuffle=False)
            xs, ys = [], []
            for i in range(len(it)):
                b = it[i]
                if mode is None:
                    xs.append(b)
                else:
                    xs.append(b[0])
                    ys.append(b[1])
            x = np.concatenate(xs)
            assert x.dtype == np.float32 and np.array_equal(x, np.round(x))  # whole pixel values: kept as uint8
            if "dir/x" in out:
                assert np.array_equal(out["dir/x"], x)
            out["dir/x"] = x.astype(np.uint8)
            if ys:
                y = np.concatenate(ys)
                out[f"dir/{mode}/y"] = digest(y) if mode == "input" else y
            out["dir/filenames"] = np.array(it.filenames)
            out["dir/classes"] = it.classes
            out["dir/class_names"] = np.array(list(it.class_indices))
        for color in ("grayscale", "rgba"):
            it = plain.flow_from_directory(root, target_size=TARGET, color_mode=color, class_mode="sparse",
                                           batch_size=5, shuffle=False)
            out[f"dir/{color}/x"] = np.concatenate([it[i][0] for i in range(len(it))]).astype(np.uint8)

        aug = ImageDataGenerator(**AUG)
        it = aug.flow_from_directory(root, target_size=TARGET, class_mode="categorical", batch_size=4, seed=7)
        batches = [it[i] for i in range(len(it))]
        it.on_epoch_end()
        batches += [it[0], it[1]]
        out["aug/x0"] = batches[0][0]
        for i, (x, y) in enumerate(batches):
            out[f"aug/sha{i}"], out[f"aug/y{i}"] = np.array(digest(x)), y

        split_gen = ImageDataGenerator(validation_split=0.3)
        for subset in ("training", "validation"):
            it = split_gen.flow_from_directory(root, target_size=(4, 4), subset=subset, shuffle=False)
            out[f"split/{subset}"] = np.array(it.filenames)

        fx, fy = flow_inputs()
        it = ImageDataGenerator(**AUG).flow(fx, fy, batch_size=4, seed=3)
        for i in range(len(it)):
            out[f"flow/x{i}"], out[f"flow/y{i}"] = it[i]

        for k, (img, size) in enumerate(resize_cases()):
            for method in ("bilinear", "nearest"):
                out[f"resize/{k}/{method}"] = tf.image.resize(img, size, method=method).numpy()

        ids = keras.utils.image_dataset_from_directory
        ds = ids(root, image_size=IDS_SIZE, seed=5, batch_size=4)
        out["ids/shuffled_paths"] = np.array([os.path.relpath(p, root) for p in ds.file_paths])
        for subset in ("training", "validation"):
            ds = ids(root, image_size=IDS_SIZE, seed=5, validation_split=0.25, subset=subset)
            out[f"ids/{subset}_paths"] = np.array([os.path.relpath(p, root) for p in ds.file_paths])
        for name, kw in (("bilinear", {}), ("nearest", {"interpolation": "nearest"}),
                         ("crop", {"crop_to_aspect_ratio": True}), ("pad", {"pad_to_aspect_ratio": True}),
                         ("gray", {"color_mode": "grayscale", "class_names": ["dogs", "zebras"]})):
            ds = ids(root, image_size=IDS_SIZE, shuffle=False, batch_size=None, label_mode="categorical", **kw)
            images, labels = zip(*[(np.asarray(x), np.asarray(y)) for x, y in ds.as_numpy_iterator()])
            paths = [os.path.relpath(p, root) for p in ds.file_paths]
            x = np.stack(images)
            jpeg = np.array([p.lower().endswith((".jpg", ".jpeg")) for p in paths])
            if name in ("crop", "pad"):  # the exact files by digest; the JPEGs only in "bilinear"
                out[f"ids/{name}/sha"] = np.array(digest(x[~jpeg]))
            else:
                out[f"ids/{name}/x"] = x
            out[f"ids/{name}/y"] = np.stack(labels)
            out[f"ids/{name}/paths"] = np.array(paths)
        ds = ids(root, image_size=IDS_SIZE, shuffle=False, batch_size=3, label_mode="binary",
                 class_names=["dogs", "zebras"])
        xb, yb = next(iter(ds.as_numpy_iterator()))
        out["ids/binary/y"] = np.asarray(yb)
        out["ids/binary/x_dtype"] = np.array(str(xb.dtype))
    finally:
        shutil.rmtree(tmp)
    out = {k: np.asarray(v) for k, v in out.items()}
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes, {len(out)} arrays)")


if __name__ == "__main__":
    main()

"""gradsmith.utils: ``set_random_seed`` (one seed for everything random in training), Keras's
array helpers ``to_categorical`` and ``normalize``, ``PyDataset`` / ``Sequence`` (data by batch index),
and the image helpers ``image_dataset_from_directory``, ``load_img``, ``img_to_array``, ``array_to_img``,
``save_img`` (from ``gradsmith.preprocessing``), and the text helpers ``Vocabulary``, ``split_input_target``,
``text_sequences`` (gradsmith/text.py) and ``sequence_dataset`` (gradsmith/data.py), also in ``gradsmith.data``.

After ``set_random_seed(s)``, unseeded initializers, Dropout layers without a
seed and fit's shuffling all draw from one generator seeded with ``s`` (and
Python's ``random`` and NumPy's global generator are seeded too, as Keras
does). Two runs with the same seed give bit-identical weights on the CPU,
whatever the thread count: the kernels' reductions add in a fixed order.
"""
import random

import numpy as np

from gradsmith.py_dataset import PyDataset, Sequence
from gradsmith.data import sequence_dataset
from gradsmith.text import Vocabulary, split_input_target, text_sequences

__all__ = ["set_random_seed", "to_categorical", "normalize", "PyDataset", "Sequence", "image_dataset_from_directory",
           "text_dataset_from_directory",
           "load_img", "img_to_array", "array_to_img", "save_img", "Vocabulary", "split_input_target",
           "text_sequences", "sequence_dataset"]

_global = {"rng": np.random.default_rng()}


def set_random_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"set_random_seed: seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"set_random_seed: seed must be >= 0, got {seed}")
    random.seed(int(seed))
    np.random.seed(int(seed) % (1 << 32))
    _global["rng"] = np.random.default_rng(int(seed))


def global_rng():
    """The generator behind every unseeded random choice gradsmith makes."""
    return _global["rng"]


def to_categorical(x, num_classes=None):
    """Class indices -> one-hot rows, as Keras 3: ``to_categorical([0, 2], 3)`` is
    ``[[1, 0, 0], [0, 0, 1]]``. A trailing axis of 1 is dropped first; ``num_classes`` defaults to
    ``max(x) + 1``. Returns a float64 NumPy array of shape ``x.shape + (num_classes,)`` (Keras's
    dtype for NumPy input)."""
    labels = np.asarray(x)
    if labels.dtype.kind not in "biuf":
        raise TypeError(f"to_categorical: expected integer class indices, got dtype {labels.dtype}")
    if labels.dtype.kind == "f" and not np.all(np.isfinite(labels) & (labels == np.floor(labels))):
        raise ValueError("to_categorical: class indices must be whole numbers")
    labels = labels.astype(np.int64)
    shape = labels.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    flat = labels.reshape(-1)
    if num_classes is None or num_classes == 0:
        num_classes = int(flat.max()) + 1 if flat.size else 0
    num_classes = int(num_classes)
    if flat.size and (flat.min() < 0 or flat.max() >= num_classes):
        bad = flat[(flat < 0) | (flat >= num_classes)][0]
        raise ValueError(f"to_categorical: class index {bad} is outside [0, {num_classes})")
    out = np.zeros((flat.size, num_classes))
    out[np.arange(flat.size), flat] = 1.0
    return out.reshape(tuple(shape) + (num_classes,))


def normalize(x, axis=-1, order=2):
    """``x`` divided by its ``order``-norm along ``axis`` (norms of 0 count as 1), with Keras's numbers
    for NumPy input. Keras 3 reinserts the reduced axis at ``axis or -1``, so with ``axis=0`` the norms
    are taken down the columns but applied along the last axis; gradsmith does the same, to give the
    same numbers."""
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"normalize: order must be an int >= 1, got {order!r}")
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, axis or -1)


def image_dataset_from_directory(directory, **kwargs):
    """Keras 3's ``keras.utils.image_dataset_from_directory``; see
    ``gradsmith.preprocessing.image_dataset``."""
    from gradsmith.preprocessing.image_dataset import image_dataset_from_directory as build
    return build(directory, **kwargs)


def text_dataset_from_directory(directory, **kwargs):
    """Keras 3's ``keras.utils.text_dataset_from_directory``; see ``gradsmith.preprocessing.text_dataset``."""
    from gradsmith.preprocessing.text_dataset import text_dataset_from_directory as build
    return build(directory, **kwargs)


def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest", keep_aspect_ratio=False):
    """Keras's ``load_img`` (Pillow); see ``gradsmith.preprocessing.image.load_img``."""
    from gradsmith.preprocessing import image
    return image.load_img(path, color_mode, target_size, interpolation, keep_aspect_ratio)


def img_to_array(img, data_format=None, dtype=None):
    from gradsmith.preprocessing import image
    return image.img_to_array(img, data_format, dtype)


def array_to_img(x, data_format=None, scale=True, dtype=None):
    from gradsmith.preprocessing import image
    return image.array_to_img(x, data_format, scale, dtype)


def save_img(path, x, data_format=None, file_format=None, scale=True, **kwargs):
    from gradsmith.preprocessing import image
    return image.save_img(path, x, data_format, file_format, scale, **kwargs)

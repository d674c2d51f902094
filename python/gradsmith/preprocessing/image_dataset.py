"""``image_dataset_from_directory`` (``gradsmith.utils.image_dataset_from_directory``, as Keras 3's
``keras.utils.image_dataset_from_directory``): a ``gradsmith.data.Dataset`` of image batches from a
folder of class subfolders, with ``.class_names`` and ``.file_paths``.

Files and labels are listed, shuffled and split exactly as Keras lists them (sorted class folders, each
walked in sorted order; one shuffle of the whole list with ``np.random.RandomState(seed)``; the last
``validation_split`` of it for validation). Each pass then reads the files in a new order (tf.data's
buffer shuffle of ``8 * batch_size``, reshuffled every pass, as Keras's dataset does; the order itself
is gradsmith's, as tf.data's generator is not NumPy's). Images are decoded by Pillow and resized as
``tf.image.resize`` does (``resize``, below): bilinear with half-pixel centres and no antialiasing, in
float32, or nearest neighbour (keeping uint8, as TensorFlow). Batches are made in background threads,
a few ahead of the one training.
"""
import os

import numpy as np

from gradsmith import _prefetch, data
from gradsmith.preprocessing import image as image_mod

__all__ = ["image_dataset_from_directory", "resize", "ALLOWLIST_FORMATS"]

ALLOWLIST_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_SUPPORTED = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic")
_DONE = ("bilinear", "nearest")
_WORKERS = max(1, min(4, os.cpu_count() or 1))


# --------------------------------------------------------------------------- resizing, as tf.image.resize
def _bilinear_axis(in_size, out_size):
    """TensorFlow's ResizeBilinear weights along one axis (half-pixel centres, float32 arithmetic):
    source ``(i + 0.5) * in/out - 0.5``; the lower and upper neighbours clamped into the image."""
    scale = np.float32(in_size) / np.float32(out_size)
    src = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(src)
    lower = np.maximum(floor, 0).astype(np.intp)
    upper = np.minimum(np.ceil(src), in_size - 1).astype(np.intp)
    return lower, upper, (src - floor).astype(np.float32)


def _nearest_axis(in_size, out_size):
    """TensorFlow's ResizeNearestNeighbor source index (half-pixel centres): ``floor((i + 0.5) * in/out)``,
    clamped into the image."""
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.floor((np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale)
    return np.clip(src, 0, in_size - 1).astype(np.intp)


def resize(img, size, interpolation="bilinear"):
    """``img`` (height, width, channels) resized to ``size`` = (height, width) as ``tf.image.resize``
    (antialias off): 'bilinear' returns float32, 'nearest' the input's dtype."""
    img = np.asarray(img)
    if img.ndim != 3:
        raise ValueError(f"resize: expected an image of shape (height, width, channels), got {img.shape}")
    oh, ow = int(size[0]), int(size[1])
    if oh <= 0 or ow <= 0:
        raise ValueError(f"resize: size must be positive, got {tuple(size)}")
    h, w = img.shape[:2]
    if interpolation == "nearest":
        return img[_nearest_axis(h, oh)][:, _nearest_axis(w, ow)]
    if interpolation != "bilinear":
        raise NotImplementedError(f"interpolation={interpolation!r} is not supported by gradsmith (supported: "
                                  f"{', '.join(_DONE)})")
    ly, uy, fy = _bilinear_axis(h, oh)
    lx, ux, fx = _bilinear_axis(w, ow)
    # The four neighbours gathered in the source dtype, then TensorFlow's float32 lerps in its order:
    # top = tl + (tr - tl) * fx, bottom likewise, out = top + (bottom - top) * fy (in place).
    top_rows, bottom_rows = img[ly], img[uy]
    top = top_rows[:, lx].astype(np.float32)
    bottom = bottom_rows[:, lx].astype(np.float32)
    fx = fx[None, :, None]
    right = top_rows[:, ux].astype(np.float32)
    right -= top
    right *= fx
    top += right
    right = bottom_rows[:, ux].astype(np.float32)
    right -= bottom
    right *= fx
    bottom += right
    bottom -= top
    bottom *= fy[:, None, None]
    bottom += top
    return bottom


def _crop_to_aspect(img, size):
    """Keras's ``smart_resize`` crop: the largest centred box of the target's aspect ratio."""
    height, width = img.shape[:2]
    target_height, target_width = size
    crop_height = max(min(height, int(float(width * target_height) / target_width)), 1)
    crop_width = max(min(width, int(float(height * target_width) / target_height)), 1)
    h0 = int(float(height - crop_height) / 2)
    w0 = int(float(width - crop_width) / 2)
    return img[h0:h0 + crop_height, w0:w0 + crop_width]


def _resize_with_pad(img, size, interpolation):
    """``tf.image.resize_with_pad``: resized to fit inside ``size`` keeping the aspect ratio, centred on
    zeros."""
    height, width = img.shape[:2]
    target_height, target_width = int(size[0]), int(size[1])
    f32 = np.float32
    ratio = max(f32(width) / f32(target_width), f32(height) / f32(target_height))
    rh_f, rw_f = f32(height) / ratio, f32(width) / ratio
    rh, rw = int(np.floor(rh_f)), int(np.floor(rw_f))
    ph = max(0, int(np.floor((f32(target_height) - rh_f) / f32(2))))
    pw = max(0, int(np.floor((f32(target_width) - rw_f) / f32(2))))
    resized = resize(img, (rh, rw), interpolation)
    out = np.zeros((target_height, target_width, img.shape[2]), resized.dtype)
    out[ph:ph + rh, pw:pw + rw] = resized
    return out


# TensorFlow reads a colour PNG as one channel with libpng's conversion, whose weights are 0.299 and 0.587
# in 15-bit fixed point, truncated (blue takes the rest), and the sum truncated too; Pillow rounds
# ITU-R 601 weights in 16 bits, one grey level apart at times.
_PNG_GRAY = (9797, 19234, 32768 - 9797 - 19234)


def _decode(path, channels):
    """The image at ``path`` as uint8 (height, width, channels), as ``tf.image.decode_image`` makes it
    (alpha dropped for RGB, added as 255 for RGBA, grey repeated; libpng's grey for colour PNGs). JPEGs are
    decoded by Pillow's libjpeg, not TensorFlow's: their pixels can differ by a few levels."""
    img, _ = image_mod.open_image(path)
    try:
        if channels == 1 and img.format == "PNG" and img.mode not in ("1", "L", "LA", "I", "I;16", "I;16B", "F"):
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint32)
            rc, gc, bc = _PNG_GRAY
            x = ((rc * rgb[..., 0] + gc * rgb[..., 1] + bc * rgb[..., 2]) >> 15).astype(np.uint8)
        else:
            mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
            x = np.asarray(img if img.mode == mode else img.convert(mode))
    finally:
        img.close()
    return x[:, :, None] if x.ndim == 2 else x


def _load(path, size, channels, interpolation, crop, pad):
    x = _decode(path, channels)
    if crop:
        return resize(_crop_to_aspect(x, size), size, interpolation)
    if pad:
        return _resize_with_pad(x, size, interpolation)
    return resize(x, size, interpolation)


# --------------------------------------------------------------------------- listing files, as Keras
def _iter_valid_files(directory, follow_links, formats):
    for root, _, files in sorted(os.walk(directory, followlinks=follow_links), key=lambda x: x[0]):
        for fname in sorted(files):
            if fname.lower().endswith(formats):
                yield root, fname


def index_directory(directory, labels, formats, class_names=None, shuffle=True, seed=None, follow_links=False,
                    verbose=True):
    """(file paths, labels, class names), as Keras's ``dataset_utils.index_directory``."""
    if labels == "inferred":
        subdirs = []
        for subdir in sorted(os.listdir(directory)):
            if os.path.isdir(os.path.join(directory, subdir)) and not subdir.startswith("."):
                subdirs.append(subdir.rstrip("/"))
        if class_names is not None:
            if not set(class_names).issubset(set(subdirs)):
                raise ValueError("The `class_names` passed did not match the names of the subdirectories of the "
                                 f"target directory. Expected: {subdirs} (or a subset of it), but received: "
                                 f"class_names={class_names}")
            subdirs = list(class_names)
    else:
        subdirs = [""]
        if class_names is not None:
            if labels is None:
                raise ValueError("When `labels=None` (no labels), argument `class_names` cannot be specified.")
            raise ValueError("When argument `labels` is specified, argument `class_names` cannot be specified (the "
                             "`class_names` will be the sorted list of labels).")
    class_names = subdirs
    class_indices = dict(zip(class_names, range(len(class_names))))
    filenames, label_list = [], []
    for subdir in subdirs:
        dirpath = os.path.join(directory, subdir)
        dirname = os.path.basename(dirpath)
        for root, fname in _iter_valid_files(dirpath, follow_links, formats):
            label_list.append(class_indices[dirname])
            filenames.append(os.path.join(dirname, os.path.relpath(os.path.join(root, fname), dirpath)))
    if labels == "inferred":
        labels = np.asarray(label_list, dtype="int32").reshape(len(filenames))
    elif labels is None:
        class_names = None
    else:
        if len(labels) != len(filenames):
            raise ValueError(f"Expected the lengths of `labels` to match the number of files in the target "
                             f"directory. len(labels) is {len(labels)} while we found {len(filenames)} files in "
                             f"directory {directory}.")
        class_names = [str(label) for label in sorted(set(labels))]
    if verbose:
        if labels is None:
            print(f"Found {len(filenames)} files.")
        else:
            print(f"Found {len(filenames)} files belonging to {len(class_names)} classes.")
    file_paths = [os.path.join(directory, fname) for fname in filenames]
    if shuffle:
        if seed is None:
            seed = np.random.randint(1e6)
        np.random.RandomState(seed).shuffle(file_paths)
        if labels is not None:
            np.random.RandomState(seed).shuffle(labels)
    return file_paths, labels, class_names


def check_split_arguments(validation_split, subset, shuffle, seed, batch_size):
    """Keras's checks of a folder dataset's split and batch arguments (images and texts alike)."""
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(f"`validation_split` must be between 0 and 1, received: {validation_split}")
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError("If `subset` is set, `validation_split` must be set, and inversely.")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(f'`subset` must be either "training", "validation" or "both", received: {subset}')
    if validation_split and shuffle and seed is None:
        raise ValueError("If using `validation_split` and shuffling the data, you must provide a `seed` argument, "
                         "to make sure that there is no overlap between the training and validation subset.")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                   or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")


def _split(samples, labels, validation_split, subset):
    if not validation_split:
        return samples, labels
    num_val = int(validation_split * len(samples))
    if subset == "training":
        print(f"Using {len(samples) - num_val} files for training.")
        return samples[:-num_val], None if labels is None else labels[:-num_val]
    if subset == "validation":
        print(f"Using {num_val} files for validation.")
        return samples[-num_val:], None if labels is None else labels[-num_val:]
    raise ValueError(f'`subset` must be either "training" or "validation", received: {subset}')


def label_values(labels, label_mode, num_classes):
    """A batch's labels as Keras gives them: 'int' int32, 'binary' float32 (n, 1), 'categorical' one-hot."""
    if label_mode == "binary":
        return labels.astype(np.float32).reshape(-1, 1)
    if label_mode == "categorical":
        out = np.zeros((len(labels), num_classes), np.float32)
        out[np.arange(len(labels)), labels] = 1.0
        return out
    return labels.astype(np.int32)


# --------------------------------------------------------------------------- the dataset
class ImageFolderDataset(data.Dataset):
    """Batches ``(images, labels)`` (or images alone) read from ``file_paths`` as they are needed."""

    def __init__(self, file_paths, labels, label_mode, num_classes, image_size, num_channels, interpolation,
                 data_format, crop_to_aspect_ratio, pad_to_aspect_ratio, batch_size, shuffle, seed,
                 class_names):
        self.file_paths = list(file_paths)
        self.class_names = class_names
        self._labels = None if labels is None else np.asarray(labels)
        self._label_mode = label_mode
        self._num_classes = num_classes
        self._image_size = tuple(int(s) for s in image_size)
        self._channels = num_channels
        self._interpolation = interpolation
        self._data_format = data_format
        self._crop, self._pad = crop_to_aspect_ratio, pad_to_aspect_ratio
        self._batch_size = batch_size
        n = len(self.file_paths)
        order = data.Dataset.range(n)
        if shuffle and n:
            order = order.shuffle(batch_size * 8 if batch_size is not None else 1024, seed=seed)
        self._order = order

    def _cardinality(self):
        n = len(self.file_paths)
        if self._batch_size is None:
            return n
        return (n + self._batch_size - 1) // self._batch_size

    def _label_values(self, rows):
        return label_values(self._labels[rows], self._label_mode, self._num_classes)

    def _make(self, rows):
        images = [_load(self.file_paths[r], self._image_size, self._channels, self._interpolation, self._crop,
                        self._pad) for r in rows]
        x = np.stack(images)
        if self._data_format == "channels_first":
            x = x.transpose(0, 3, 1, 2)
        x = np.ascontiguousarray(x)
        if self._label_mode is None:
            return x
        return x, self._label_values(np.asarray(rows))

    def _tasks(self):
        rows = [int(i) for i in self._order]
        step = self._batch_size or 1
        for start in range(0, len(rows), step):
            chunk = rows[start:start + step]
            yield lambda chunk=chunk: self._make(chunk)

    def _iter(self):
        for batch in _prefetch.ordered(self._tasks(), _WORKERS, 2 * _WORKERS + 2):
            if self._batch_size is None:  # unbatched: single elements
                batch = batch[0] if not isinstance(batch, tuple) else tuple(b[0] for b in batch)
            yield batch


def image_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None, color_mode="rgb",
                                 batch_size=32, image_size=(256, 256), shuffle=True, seed=None,
                                 validation_split=None, subset=None, interpolation="bilinear", follow_links=False,
                                 crop_to_aspect_ratio=False, pad_to_aspect_ratio=False, data_format=None,
                                 format="tf", verbose=True):
    """A Dataset of image batches from ``directory`` (one subfolder per class), as Keras 3's: labels
    'int' (int32), 'categorical' (float32 one-hot), 'binary' (float32, shape (batch, 1)) or None;
    images float32 (uint8 with ``interpolation='nearest'``) of shape (batch, height, width, channels).
    ``subset='both'`` returns [training, validation]."""
    if labels not in ("inferred", None):
        if not isinstance(labels, (list, tuple)):
            raise ValueError("`labels` argument should be a list/tuple of integer labels, of the same size as the "
                             "number of image files in the target directory. If you wish to infer the labels from "
                             'the subdirectory names in the target directory, pass `labels="inferred"`. If you wish '
                             "to get a dataset that only contains images (no labels), pass `labels=None`. "
                             f"Received: labels={labels}")
        if class_names:
            raise ValueError(f'You can only pass `class_names` if `labels="inferred"`. Received: labels={labels}, '
                             f"and class_names={class_names}")
    if label_mode not in {"int", "categorical", "binary", None}:
        raise ValueError('`label_mode` argument must be one of "int", "categorical", "binary", or None. '
                         f"Received: label_mode={label_mode}")
    if labels is None or label_mode is None:
        labels = None
        label_mode = None
    channels = {"rgb": 3, "rgba": 4, "grayscale": 1}.get(color_mode)
    if channels is None:
        raise ValueError('`color_mode` must be one of {"rgb", "rgba", "grayscale"}. '
                         f"Received: color_mode={color_mode}")
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    elif not isinstance(image_size, (list, tuple)) or not len(image_size) == 2:
        raise ValueError(f"Invalid `image_size` value. Expected a tuple of 2 integers. Received: "
                         f"image_size={image_size}")
    interpolation = interpolation.lower()
    if interpolation not in _SUPPORTED:
        raise ValueError(f"Argument `interpolation` should be one of {_SUPPORTED}. "
                         f"Received: interpolation={interpolation}")
    if interpolation not in _DONE:
        raise NotImplementedError(f"interpolation={interpolation!r} is not supported by gradsmith (supported: "
                                  f"{', '.join(_DONE)})")
    if format not in ("tf", "grain"):
        raise ValueError(f'`format` should be either "tf" or "grain". Received: format={format}')
    if pad_to_aspect_ratio and crop_to_aspect_ratio:
        raise ValueError("Only one of `pad_to_aspect_ratio`, `crop_to_aspect_ratio` can be set to `True`.")
    check_split_arguments(validation_split, subset, shuffle, seed, batch_size)
    data_format = image_mod._check_data_format(data_format)
    if seed is None:
        seed = np.random.randint(1e6)
    image_paths, labels, class_names = index_directory(directory, labels, ALLOWLIST_FORMATS, class_names=class_names,
                                                       shuffle=shuffle, seed=seed, follow_links=follow_links,
                                                       verbose=verbose)
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError(f'When passing `label_mode="binary"`, there must be exactly 2 class_names. Received: '
                         f"class_names={class_names}")

    def make(paths, labs, shuffled):
        return ImageFolderDataset(paths, labs, label_mode, len(class_names) if class_names else 0, image_size,
                                  channels, interpolation, data_format, crop_to_aspect_ratio, pad_to_aspect_ratio,
                                  batch_size, shuffled, seed, class_names)

    if subset == "both":
        train = _split(image_paths, labels, validation_split, "training")
        val = _split(image_paths, labels, validation_split, "validation")
        if not train[0]:
            raise ValueError(f"No training images found in directory {directory}. Allowed formats: "
                             f"{ALLOWLIST_FORMATS}")
        if not val[0]:
            raise ValueError(f"No validation images found in directory {directory}. Allowed formats: "
                             f"{ALLOWLIST_FORMATS}")
        return [make(*train, shuffle), make(*val, False)]
    image_paths, labels = _split(image_paths, labels, validation_split, subset)
    if not image_paths:
        raise ValueError(f"No images found in directory {directory}. Allowed formats: {ALLOWLIST_FORMATS}")
    return make(image_paths, labels, shuffle)

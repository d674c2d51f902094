"""``text_dataset_from_directory`` (``gradsmith.utils.text_dataset_from_directory``, as Keras 3's): a
``gradsmith.data.Dataset`` of batches of strings (NumPy object arrays of ``str``) and labels, from a folder
with one subfolder of ``.txt`` files per class, listed, shuffled and split exactly as the images of
``image_dataset_from_directory`` are (``preprocessing.image_dataset.index_directory``). Each file is read as
UTF-8 (undecodable bytes replaced), cut to ``max_length`` characters when given. The strings then go through
``TextVectorization`` (``dataset.map(lambda x, y: (vectorize(x), y))``) into a model."""
import numpy as np

from gradsmith import data
from gradsmith.preprocessing.image_dataset import _split, check_split_arguments, index_directory, label_values

__all__ = ["text_dataset_from_directory"]


class TextFolderDataset(data.Dataset):
    """Batches ``(texts, labels)`` (or texts alone) read from ``file_paths`` as they are needed."""

    def __init__(self, file_paths, labels, label_mode, class_names, max_length, batch_size, shuffle, seed):
        self.file_paths, self.class_names = list(file_paths), class_names
        self._labels = None if labels is None else np.asarray(labels)
        self._label_mode, self._max_length, self._batch_size = label_mode, max_length, batch_size
        self._num_classes = len(class_names) if class_names else 0
        order = data.Dataset.range(len(self.file_paths))
        if shuffle and self.file_paths:
            order = order.shuffle(batch_size * 8 if batch_size is not None else 1024, seed=seed)
        self._order = order

    def _cardinality(self):
        n = len(self.file_paths)
        return n if self._batch_size is None else (n + self._batch_size - 1) // self._batch_size

    def _read(self, path):
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", errors="replace")
        return text if self._max_length is None else text[:self._max_length]

    def _make(self, rows):
        texts = np.empty(len(rows), dtype=object)
        texts[:] = [self._read(self.file_paths[r]) for r in rows]
        if self._label_mode is None:
            return texts
        return texts, label_values(self._labels[np.asarray(rows)], self._label_mode, self._num_classes)

    def _iter(self):
        rows = [int(i) for i in self._order]
        step = self._batch_size or 1
        for start in range(0, len(rows), step):
            batch = self._make(rows[start:start + step])
            if self._batch_size is None:
                batch = batch[0] if not isinstance(batch, tuple) else tuple(b[0] for b in batch)
            yield batch


def text_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None, batch_size=32,
                                max_length=None, shuffle=True, seed=None, validation_split=None, subset=None,
                                follow_links=False, format="tf", verbose=True):
    """Keras 3's ``keras.utils.text_dataset_from_directory``; ``subset='both'`` returns [training, validation]."""
    if labels not in ("inferred", None) and not isinstance(labels, (list, tuple)):
        raise ValueError("`labels` argument should be a list/tuple of integer labels, of the same size as the number "
                         f"of text files in the target directory, 'inferred' or None. Received: labels={labels}")
    if label_mode not in {"int", "categorical", "binary", None}:
        raise ValueError('`label_mode` argument must be one of "int", "categorical", "binary", or None. '
                         f"Received: label_mode={label_mode}")
    if labels is None or label_mode is None:
        labels = label_mode = None
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1):
        raise ValueError(f"max_length must be a positive integer or None, got {max_length!r}")
    check_split_arguments(validation_split, subset, shuffle, seed, batch_size)
    if seed is None:
        seed = np.random.randint(1e6)
    paths, labels, class_names = index_directory(directory, labels, (".txt",), class_names=class_names,
                                                 shuffle=shuffle, seed=seed, follow_links=follow_links,
                                                 verbose=verbose)
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError(f'When passing `label_mode="binary"`, there must be exactly 2 class_names. Received: '
                         f"class_names={class_names}")

    def make(p, lab, shuffled):
        return TextFolderDataset(p, lab, label_mode, class_names, max_length, batch_size, shuffled, seed)

    if subset == "both":
        train = _split(paths, labels, validation_split, "training")
        val = _split(paths, labels, validation_split, "validation")
        return [make(*train, shuffle), make(*val, False)]
    paths, labels = _split(paths, labels, validation_split, subset)
    if not paths:
        raise ValueError(f"No text files found in directory {directory}. Allowed format: .txt")
    return make(paths, labels, shuffle)

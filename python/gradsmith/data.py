"""``gradsmith.data``: input pipelines with the ``tf.data.Dataset`` interface, over NumPy.

    ds = (gradsmith.data.Dataset.from_tensor_slices((x, y))
          .shuffle(1024, seed=0).batch(32).map(augment).prefetch(gradsmith.data.AUTOTUNE))
    model.fit(ds, epochs=10)

Elements are NumPy values: an array (or NumPy scalar), a tuple of them, or a
dict of them, as the dataset was built; a batched dataset yields stacked
arrays with a new leading axis. Datasets are re-iterable: every ``for`` pass
starts over, and ``shuffle`` draws a new order on each pass (by default),
deterministic for a given ``seed``.

Batches of ``from_tensor_slices`` data (shuffled, repeated, taken or skipped
on the way) are gathered with one indexing operation per component rather than
stacked element by element. Every batch is a fresh array (never a view of the
source data).

Python lists become arrays as TensorFlow converts them (Python floats to
float32, Python ints to int32); NumPy arrays keep their dtype.
"""
import secrets

import numpy as np

__all__ = ["Dataset", "AUTOTUNE", "INFINITE_CARDINALITY", "UNKNOWN_CARDINALITY", "experimental"]

AUTOTUNE = -1
INFINITE_CARDINALITY = -1
UNKNOWN_CARDINALITY = -2

_UNIFORM_BLOCK = 1024  # random numbers are drawn in blocks of this many (both shuffle paths alike)


class _Cardinality(int):
    """An int that also answers ``.numpy()``, as code written for tf.data calls it."""

    def numpy(self):
        return int(self)


# --------------------------------------------------------------------------- structures
def _is_plain_tuple(x):
    return type(x) is tuple


def _flatten(struct):
    """The leaves of a nested tuple / dict structure, in order (dicts in insertion order)."""
    if isinstance(struct, tuple):
        out = []
        for s in struct:
            out.extend(_flatten(s))
        return out
    if isinstance(struct, dict):
        out = []
        for k in struct:
            out.extend(_flatten(struct[k]))
        return out
    return [struct]


def _pack(template, leaves):
    """Rebuild ``template``'s structure from an iterator of leaves."""
    if isinstance(template, tuple):
        items = [_pack(t, leaves) for t in template]
        return type(template)(*items) if hasattr(template, "_fields") else tuple(items)
    if isinstance(template, dict):
        return {k: _pack(v, leaves) for k, v in template.items()}
    return next(leaves)


def _copy_element(element):
    """The element with fresh copies of its arrays (consumers may modify what they get)."""
    return _pack(element, iter([x.copy() if isinstance(x, np.ndarray) else x for x in _flatten(element)]))


def _same_structure(a, b):
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(_same_structure(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_structure(a[k], b[k]) for k in a)
    return not isinstance(b, (tuple, dict))


def _to_numpy(value):
    """One component as NumPy, converting Python values as TensorFlow does."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value
    if hasattr(value, "numpy") and callable(value.numpy):  # a framework tensor
        return np.asarray(value.numpy())
    arr = np.asarray(value)
    if isinstance(value, (list, tuple, bool, int, float)):  # Python values: TensorFlow's default dtypes
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        elif arr.dtype == np.int64:
            arr = arr.astype(np.int32)
    return arr


def _normalize(struct):
    """Tuples and dicts stay structures (lists become tuples, with a warning in tf.data); leaves become NumPy."""
    if isinstance(struct, tuple):
        items = [_normalize(s) for s in struct]
        return type(struct)(*items) if hasattr(struct, "_fields") else tuple(items)
    if isinstance(struct, dict):
        return {k: _normalize(v) for k, v in struct.items()}
    return _to_numpy(struct)


def _call(fn, element):
    """tf.data's calling convention: a tuple element's components are separate arguments."""
    if _is_plain_tuple(element):
        return fn(*element)
    return fn(element)


def _normalize_result(result):
    if isinstance(result, list):  # tf.data turns a returned list into a tuple
        result = tuple(result)
    return _normalize(result)


def _stack(elements):
    """One batch from a list of elements of the same structure: leaves stacked on a new axis 0."""
    template = elements[0]
    flat = [_flatten(e) for e in elements]
    for e in elements[1:]:
        if not _same_structure(template, e):
            raise ValueError("batch: the elements do not all have the same structure")
    leaves = []
    for i in range(len(flat[0])):
        parts = [f[i] for f in flat]
        try:
            leaves.append(np.stack(parts))
        except ValueError as err:
            shapes = sorted({np.shape(p) for p in parts})
            raise ValueError(f"batch: cannot stack elements of different shapes {shapes}; "
                             "map them to one shape first") from err
    return _pack(template, iter(leaves))


def _check_count(name, count):
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {count!r}")
    return int(count)


# --------------------------------------------------------------------------- base
class Dataset:
    """A re-iterable sequence of elements with tf.data's transformations.

    Build one with ``Dataset.from_tensor_slices``, ``from_tensors`` or ``range``.
    """

    # ---- construction
    @staticmethod
    def from_tensor_slices(tensors):
        """One element per index of the leading axis: ``x`` -> ``x[i]``; ``(x, y)`` -> ``(x[i], y[i])``;
        ``{"a": a, "b": b}`` -> ``{"a": a[i], "b": b[i]}`` (nested tuples/dicts too). A list is one array."""
        return _TensorSliceDataset(tensors)

    @staticmethod
    def from_tensors(tensors):
        """A dataset of the single element ``tensors``."""
        return _FromTensorsDataset(tensors)

    @staticmethod
    def range(*args, dtype=np.int64):
        """``Dataset.range(stop)``, ``range(start, stop[, step])``: integers, as Python's range."""
        return _TensorSliceDataset(np.arange(*args, dtype=dtype))

    @staticmethod
    def zip(*datasets):
        """Elements of several datasets side by side, as tuples (or a dict of datasets -> dicts);
        stops with the shortest."""
        if len(datasets) == 1 and isinstance(datasets[0], (tuple, dict)):
            datasets = datasets[0]
        return _ZipDataset(datasets)

    # ---- transformations
    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=None, name=None):
        """tf.data's buffer shuffle: fill a buffer of ``buffer_size`` elements, emit a random one and refill
        its slot from the input. A buffer at least as large as the dataset gives a uniform permutation.
        A new order each pass unless ``reshuffle_each_iteration=False``; the same orders for the same seed."""
        return _ShuffleDataset(self, buffer_size, seed, True if reshuffle_each_iteration is None
                               else bool(reshuffle_each_iteration))

    def batch(self, batch_size, drop_remainder=False, num_parallel_calls=None, deterministic=None, name=None):
        """Consecutive elements stacked into batches of ``batch_size``; the last one smaller unless
        ``drop_remainder``."""
        return _BatchDataset(self, batch_size, drop_remainder)

    def map(self, map_func, num_parallel_calls=None, deterministic=None, name=None):
        """``map_func`` applied to each element (a tuple element's components are separate arguments)."""
        if not callable(map_func):
            raise TypeError(f"map: map_func must be callable, got {type(map_func).__name__}")
        return _MapDataset(self, map_func)

    def filter(self, predicate, name=None):
        """The elements for which ``predicate`` is true."""
        if not callable(predicate):
            raise TypeError(f"filter: predicate must be callable, got {type(predicate).__name__}")
        return _FilterDataset(self, predicate)

    def prefetch(self, buffer_size, name=None):
        """No-op here (elements are produced on demand): returns the dataset."""
        return self

    def cache(self, filename="", name=None):
        """Keep the elements of the first complete pass in memory and replay them afterwards."""
        return _CacheDataset(self)

    def repeat(self, count=None, name=None):
        """The dataset ``count`` times over (forever when ``count`` is None or -1)."""
        if count is not None:
            count = _check_count("repeat: count", count)
        return _RepeatDataset(self, None if count is None or count < 0 else count)

    def take(self, count, name=None):
        """The first ``count`` elements (all of them when ``count`` is -1)."""
        return _TakeDataset(self, _check_count("take: count", count))

    def skip(self, count, name=None):
        """All but the first ``count`` elements (none when ``count`` is -1)."""
        return _SkipDataset(self, _check_count("skip: count", count))

    def unbatch(self, name=None):
        """Split each element along its leading axis into separate elements."""
        return _UnbatchDataset(self)

    def enumerate(self, start=0, name=None):
        """``(index, element)`` pairs, counting from ``start``."""
        return _EnumerateDataset(self, start)

    def concatenate(self, dataset, name=None):
        """This dataset's elements, then ``dataset``'s."""
        return _ConcatenateDataset(self, dataset)

    # ---- inspection
    def cardinality(self):
        """The number of elements; ``INFINITE_CARDINALITY`` (-1) or ``UNKNOWN_CARDINALITY`` (-2)."""
        return _Cardinality(self._cardinality())

    def __len__(self):
        n = self._cardinality()
        if n == INFINITE_CARDINALITY:
            raise TypeError("The dataset is infinite.")
        if n == UNKNOWN_CARDINALITY:
            raise TypeError("The dataset length is unknown.")
        return n

    def __bool__(self):
        return True  # never falls back to __len__ (which may raise)

    def __iter__(self):
        return self._iter()

    def as_numpy_iterator(self):
        """An iterator over the elements (already NumPy)."""
        return self._iter()

    def __repr__(self):
        n = self._cardinality()
        size = {INFINITE_CARDINALITY: "infinite", UNKNOWN_CARDINALITY: "unknown"}.get(n, str(n))
        return f"<{type(self).__name__.lstrip('_')} cardinality={size}>"

    # ---- implementation hooks
    def _cardinality(self):
        raise NotImplementedError

    def _iter(self):
        raise NotImplementedError

    def _source(self):
        """The _TensorSliceDataset whose rows this dataset's elements are, in the order
        ``_index_chunks`` gives, or None when the elements are anything else."""
        return None

    def _index_chunks(self):
        """For one pass: an iterator of int64 arrays of row indices into ``_source()``."""
        raise NotImplementedError

    def _iter_from_indices(self):
        src = self._source()
        for chunk in self._index_chunks():
            for i in chunk.tolist():
                yield src._element(i)


# --------------------------------------------------------------------------- sources
class _TensorSliceDataset(Dataset):
    def __init__(self, tensors):
        if isinstance(tensors, list):
            tensors = _to_numpy(tensors)  # tf.data: a list is one tensor
        self._template = _normalize(tensors)
        self._leaves = _flatten(self._template)
        if not self._leaves:
            raise ValueError("from_tensor_slices: got an empty structure")
        n = None
        for leaf in self._leaves:
            leaf = np.asarray(leaf)
            if leaf.ndim == 0:
                raise ValueError("from_tensor_slices: every component needs a leading axis to slice; "
                                 f"got a scalar ({leaf!r})")
            if n is None:
                n = leaf.shape[0]
            elif leaf.shape[0] != n:
                sizes = [np.shape(x)[0] for x in self._leaves]
                raise ValueError(f"from_tensor_slices: all components must have the same size in the first "
                                 f"dimension, got {sizes}")
        self._leaves = [np.asarray(x) for x in self._leaves]
        self._n = int(n)

    def _cardinality(self):
        return self._n

    def _element(self, i):
        vals = []
        for leaf in self._leaves:
            v = leaf[i]
            vals.append(v.copy() if isinstance(v, np.ndarray) else v)
        return _pack(self._template, iter(vals))

    def _gather(self, idx):
        if len(idx) and idx[-1] - idx[0] == len(idx) - 1 and (len(idx) < 2 or np.all(np.diff(idx) == 1)):
            sl = slice(int(idx[0]), int(idx[0]) + len(idx))
            vals = [leaf[sl].copy() for leaf in self._leaves]
        else:
            vals = [np.take(leaf, idx, axis=0) for leaf in self._leaves]
        return _pack(self._template, iter(vals))

    def _source(self):
        return self

    def _index_chunks(self):
        if self._n:
            yield np.arange(self._n, dtype=np.int64)

    def _iter(self):
        for i in range(self._n):
            yield self._element(i)


class _FromTensorsDataset(Dataset):
    def __init__(self, tensors):
        if isinstance(tensors, list):
            tensors = _to_numpy(tensors)
        self._value = _normalize(tensors)

    def _cardinality(self):
        return 1

    def _iter(self):
        yield _copy_element(self._value)


# --------------------------------------------------------------------------- shuffle
def _uniforms(rng):
    """Uniform [0, 1) floats, drawn lazily in fixed-size blocks."""
    while True:
        for u in rng.random(_UNIFORM_BLOCK).tolist():
            yield u


def _buffer_shuffle(items, buffer_size, rng):
    """tf.data's buffer shuffle over an iterable; the same draws for the same input length,
    whatever the items are (so index orders and element orders agree)."""
    it = iter(items)
    buf = []
    for item in it:
        buf.append(item)
        if len(buf) >= buffer_size:
            break
    else:  # everything fit: a uniform permutation
        for j in rng.permutation(len(buf)).tolist():
            yield buf[j]
        return
    uni = None
    for item in it:
        if uni is None:
            uni = _uniforms(rng)
        j = int(next(uni) * buffer_size)
        yield buf[j]
        buf[j] = item
    for j in rng.permutation(len(buf)).tolist():
        yield buf[j]


class _ShuffleDataset(Dataset):
    def __init__(self, input_ds, buffer_size, seed, reshuffle_each_iteration):
        buffer_size = _check_count("shuffle: buffer_size", buffer_size)
        if buffer_size <= 0:
            raise ValueError(f"shuffle: buffer_size must be greater than zero, got {buffer_size}")
        self._input = input_ds
        self._buffer_size = buffer_size
        if seed is None:
            self._seed = secrets.randbits(64)
        else:
            self._seed = _check_count("shuffle: seed", seed) % (1 << 64)
        self._reshuffle = reshuffle_each_iteration
        self._passes = 0

    def _next_rng(self):
        if self._reshuffle:
            key = [self._seed, self._passes]
            self._passes += 1
        else:
            key = [self._seed, 0]
        return np.random.default_rng(key)

    def _cardinality(self):
        return self._input._cardinality()

    def _source(self):
        if self._input._source() is not None and self._input._cardinality() >= 0:
            return self._input._source()
        return None

    def _index_chunks(self):
        rng = self._next_rng()
        chunks = list(self._input._index_chunks())
        if not chunks:
            return
        idx = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
        if self._buffer_size >= len(idx):
            yield idx[rng.permutation(len(idx))]
        else:
            yield np.fromiter(_buffer_shuffle(idx.tolist(), self._buffer_size, rng), dtype=np.int64,
                              count=len(idx))

    def _iter(self):
        if self._source() is not None:
            return self._iter_from_indices()
        return _buffer_shuffle(self._input, self._buffer_size, self._next_rng())


# --------------------------------------------------------------------------- batch
class _BatchDataset(Dataset):
    def __init__(self, input_ds, batch_size, drop_remainder):
        batch_size = _check_count("batch: batch_size", batch_size)
        if batch_size <= 0:
            raise ValueError(f"batch: batch_size must be greater than zero, got {batch_size}")
        self._input = input_ds
        self._batch_size = batch_size
        self._drop_remainder = bool(drop_remainder)

    def _cardinality(self):
        n = self._input._cardinality()
        if n < 0:
            return n
        b = self._batch_size
        return n // b if self._drop_remainder else -(-n // b)

    def _batch_indices(self):
        b = self._batch_size
        pending, count = [], 0
        for chunk in self._input._index_chunks():
            pos = 0
            while pos < len(chunk):
                piece = chunk[pos:pos + b - count]
                pending.append(piece)
                count += len(piece)
                pos += len(piece)
                if count == b:
                    yield pending[0] if len(pending) == 1 else np.concatenate(pending)
                    pending, count = [], 0
        if count and not self._drop_remainder:
            yield pending[0] if len(pending) == 1 else np.concatenate(pending)

    def _iter(self):
        src = self._input._source()
        if src is not None:
            for idx in self._batch_indices():
                yield src._gather(idx)
            return
        b = self._batch_size
        batch = []
        for element in self._input:
            batch.append(element)
            if len(batch) == b:
                yield _stack(batch)
                batch = []
        if batch and not self._drop_remainder:
            yield _stack(batch)


class _UnbatchDataset(Dataset):
    def __init__(self, input_ds):
        self._input = input_ds

    def _cardinality(self):
        n = self._input._cardinality()
        return INFINITE_CARDINALITY if n == INFINITE_CARDINALITY else UNKNOWN_CARDINALITY

    def _iter(self):
        for element in self._input:
            leaves = _flatten(element)
            sizes = {np.shape(x)[0] if np.ndim(x) else None for x in leaves}
            if None in sizes or len(sizes) != 1:
                raise ValueError("unbatch: every component needs the same leading dimension")
            for i in range(sizes.pop()):
                yield _pack(element, iter([x[i].copy() if isinstance(x[i], np.ndarray) else x[i]
                                           for x in leaves]))


# --------------------------------------------------------------------------- element-wise
class _MapDataset(Dataset):
    def __init__(self, input_ds, fn):
        self._input = input_ds
        self._fn = fn

    def _cardinality(self):
        return self._input._cardinality()

    def _iter(self):
        fn = self._fn
        for element in self._input:
            yield _normalize_result(_call(fn, element))


class _FilterDataset(Dataset):
    def __init__(self, input_ds, predicate):
        self._input = input_ds
        self._predicate = predicate

    def _cardinality(self):
        n = self._input._cardinality()
        return INFINITE_CARDINALITY if n == INFINITE_CARDINALITY else UNKNOWN_CARDINALITY

    def _iter(self):
        pred = self._predicate
        for element in self._input:
            keep = _call(pred, element)
            if np.ndim(keep) != 0:
                raise ValueError("filter: the predicate must return a scalar boolean")
            if bool(keep):
                yield element


class _EnumerateDataset(Dataset):
    def __init__(self, input_ds, start):
        self._input = input_ds
        self._start = int(start)

    def _cardinality(self):
        return self._input._cardinality()

    def _iter(self):
        for i, element in enumerate(self._input, self._start):
            yield np.int64(i), element


class _CacheDataset(Dataset):
    def __init__(self, input_ds):
        self._input = input_ds
        self._cache = None

    def _cardinality(self):
        return self._input._cardinality()

    def _iter(self):
        if self._cache is not None:
            for element in self._cache:
                yield _copy_element(element)
            return
        seen = []
        for element in self._input:
            seen.append(element)
            yield _copy_element(element)
        self._cache = seen  # only a complete pass is kept


# --------------------------------------------------------------------------- counting
class _RepeatDataset(Dataset):
    def __init__(self, input_ds, count):
        self._input = input_ds
        self._count = count  # None: forever

    def _cardinality(self):
        n = self._input._cardinality()
        if self._count is None:
            return 0 if n == 0 else INFINITE_CARDINALITY
        if self._count == 0:
            return 0
        if n < 0:
            return n
        return self._count * n

    def _source(self):
        return self._input._source()

    def _passes(self, make_iter):
        done = 0
        while self._count is None or done < self._count:
            produced = False
            for item in make_iter():
                produced = True
                yield item
            done += 1
            if not produced:  # an empty input repeats to nothing
                return

    def _index_chunks(self):
        return self._passes(self._input._index_chunks)

    def _iter(self):
        return self._passes(self._input.__iter__)


class _TakeDataset(Dataset):
    def __init__(self, input_ds, count):
        self._input = input_ds
        self._count = count  # -1: all

    def _cardinality(self):
        n = self._input._cardinality()
        if n == UNKNOWN_CARDINALITY:
            return n
        if n == INFINITE_CARDINALITY:
            return INFINITE_CARDINALITY if self._count < 0 else self._count
        return n if self._count < 0 else min(n, self._count)

    def _source(self):
        return self._input._source()

    def _index_chunks(self):
        left = self._count
        if left == 0:
            return
        for chunk in self._input._index_chunks():
            if left < 0:
                yield chunk
                continue
            if len(chunk) >= left:
                yield chunk[:left]
                return
            yield chunk
            left -= len(chunk)

    def _iter(self):
        left = self._count
        if left == 0:
            return
        for element in self._input:
            yield element
            left -= 1
            if left == 0:
                return


class _SkipDataset(Dataset):
    def __init__(self, input_ds, count):
        self._input = input_ds
        self._count = count  # -1: all

    def _cardinality(self):
        n = self._input._cardinality()
        if n < 0:
            return n
        if self._count < 0:
            return 0
        return max(n - self._count, 0)

    def _source(self):
        return self._input._source()

    def _index_chunks(self):
        if self._count < 0:
            for _ in self._input._index_chunks():
                pass
            return
        left = self._count
        for chunk in self._input._index_chunks():
            if left >= len(chunk):
                left -= len(chunk)
                continue
            yield chunk[left:]
            left = 0

    def _iter(self):
        left = self._count
        for element in self._input:
            if left < 0:
                continue
            if left > 0:
                left -= 1
                continue
            yield element


# --------------------------------------------------------------------------- combining
class _ZipDataset(Dataset):
    def __init__(self, datasets):
        if isinstance(datasets, dict):
            self._keys = list(datasets)
            self._datasets = [datasets[k] for k in self._keys]
        else:
            self._keys = None
            self._datasets = list(datasets)
        for d in self._datasets:
            if not isinstance(d, Dataset):
                raise TypeError(f"zip: expected datasets, got {type(d).__name__}")
        if not self._datasets:
            raise ValueError("zip: needs at least one dataset")

    def _cardinality(self):
        result = INFINITE_CARDINALITY
        for d in self._datasets:
            n = d._cardinality()
            if n == UNKNOWN_CARDINALITY:
                return n
            if n != INFINITE_CARDINALITY:
                result = n if result == INFINITE_CARDINALITY else min(result, n)
        return result

    def _iter(self):
        for items in zip(*self._datasets):
            yield dict(zip(self._keys, items)) if self._keys is not None else tuple(items)


class _ConcatenateDataset(Dataset):
    def __init__(self, first, second):
        if not isinstance(second, Dataset):
            raise TypeError(f"concatenate: expected a dataset, got {type(second).__name__}")
        self._first = first
        self._second = second

    def _cardinality(self):
        a, b = self._first._cardinality(), self._second._cardinality()
        if INFINITE_CARDINALITY in (a, b):
            return INFINITE_CARDINALITY
        if UNKNOWN_CARDINALITY in (a, b):
            return UNKNOWN_CARDINALITY
        return a + b

    def _iter(self):
        yield from self._first
        yield from self._second


# --------------------------------------------------------------------------- tf.data.experimental names
class _Experimental:
    AUTOTUNE = AUTOTUNE
    INFINITE_CARDINALITY = INFINITE_CARDINALITY
    UNKNOWN_CARDINALITY = UNKNOWN_CARDINALITY

    @staticmethod
    def cardinality(dataset):
        return dataset.cardinality()


experimental = _Experimental()


# Text: a vocabulary (text <-> ids, gradsmith/text.py) and next-token (input, target) windows as a Dataset.
from gradsmith.text import Vocabulary, split_input_target, text_sequences  # noqa: E402

__all__ += ["Vocabulary", "split_input_target", "text_sequences", "sequence_dataset"]


def sequence_dataset(ids, sequence_length, batch_size=None, shuffle=None, seed=None, validation_split=None,
                     stride=None, drop_remainder=False):
    """The next-token pairs of ``text_sequences`` as a ``gradsmith.data.Dataset`` of (input, target).

    ``validation_split`` (a fraction in (0, 1)) keeps the LAST chunks for validation, as Keras's fit does, and
    returns ``(train, validation)``; ``shuffle`` (a buffer size, or True for all chunks) shuffles the training
    chunks on every pass (deterministically for a ``seed``); ``batch_size`` batches both."""
    inputs, targets = text_sequences(ids, sequence_length, stride)
    n = len(inputs)
    split = None
    if validation_split is not None:
        if not 0.0 < float(validation_split) < 1.0:
            raise ValueError(f"sequence_dataset: validation_split must be in (0, 1), got {validation_split!r}")
        split = int(n * (1.0 - float(validation_split)))
    parts = [(inputs, targets)] if split is None else [(inputs[:split], targets[:split]),
                                                       (inputs[split:], targets[split:])]
    out = []
    for k, (xi, ti) in enumerate(parts):
        ds = Dataset.from_tensor_slices((np.ascontiguousarray(xi), np.ascontiguousarray(ti)))
        if k == 0 and shuffle:
            ds = ds.shuffle(max(len(xi), 1) if shuffle is True else int(shuffle), seed=seed)
        if batch_size is not None:
            ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
        out.append(ds)
    return out[0] if split is None else tuple(out)

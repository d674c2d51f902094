"""Turns what fit / evaluate / predict receive into batches of NumPy arrays.

Accepted, as Keras accepts them: NumPy arrays (any float or int dtype) or
lists, a ``gradsmith.data.Dataset`` (or any re-iterable of batches), a
Python generator of ``(x, y)`` or ``(x, y, sample_weight)`` batches, and a
``PyDataset`` / ``Sequence`` (batches by index: ``len`` + ``__getitem__`` +
``on_epoch_end``, as the iterators of ``gradsmith.preprocessing.image`` are),
whose next batches are read ahead in background threads.
"""
import os
import random
import types
import warnings

import numpy as np

from gradsmith import _prefetch, py_dataset, utils

# The largest batch_size taken: batch offsets stay far from int64's limit in the kernels' arithmetic.
_MAX_BATCH = 2 ** 62

__all__ = ["ArrayBatches", "Columns", "IterableBatches", "PyDatasetBatches", "adapt", "class_sample_weights", "split_validation",
           "unpack"]


class Columns:
    """Several arrays with one batch axis, taken row by row together: the data of a model's several inputs
    or outputs (``x=[a, b]``, ``y={"out": ...}``). ``keys`` are a dict's keys (None for a list)."""

    def __init__(self, arrays, keys=None):
        self.arrays, self.keys = list(arrays), keys

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, rows):
        return Columns([a[rows] for a in self.arrays], self.keys)

    @property
    def nbytes(self):
        return sum(a.nbytes for a in self.arrays)

    @property
    def ndim(self):
        return min(a.ndim for a in self.arrays)

    @property
    def shape(self):
        return (len(self),)

    def unpack(self):
        """The list (or dict) of arrays."""
        return dict(zip(self.keys, self.arrays)) if self.keys is not None else list(self.arrays)


def is_structure(a):
    """A dict of arrays, or a list / tuple of NumPy arrays: several inputs or outputs (a list of numbers or
    of lists is one array, as before)."""
    if isinstance(a, Columns):
        return True
    if isinstance(a, dict):
        return True
    return isinstance(a, (list, tuple)) and len(a) > 0 and all(isinstance(v, np.ndarray) for v in a)


def _as_columns(a, name):
    if isinstance(a, Columns):
        return a
    keys = list(a) if isinstance(a, dict) else None
    values = list(a.values()) if isinstance(a, dict) else list(a)
    if not values:
        raise ValueError(f"{name}: an empty dict")
    arrays = [_as_array(v, f"{name}[{k!r}]") for k, v in zip(keys or range(len(values)), values)]
    for k, arr in zip(keys or range(len(values)), arrays):
        if arr.ndim == 0:
            raise ValueError(f"{name}[{k!r}] must have a batch axis, got shape {arr.shape}")
    n = {len(arr) for arr in arrays}
    if len(n) > 1:
        raise ValueError(f"{name}: its arrays must have the same number of samples, got "
                         f"{[len(arr) for arr in arrays]}")
    if keys is None and len(arrays) == 1:
        return arrays[0]  # [x] is x
    return Columns(arrays, keys)


def _as_array(a, name):
    if a is None:
        return None
    if is_structure(a):
        return _as_columns(a, name)
    reject_masked(a, name)
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected numeric data, got dtype {arr.dtype}")
    return arr


def reject_masked(a, name):
    """A NumPy masked array with masked entries is refused: the kernels read the values under the mask
    (Keras 3 converts such arrays with the mask dropped, silently), so the user fills or drops them."""
    if isinstance(a, np.ma.MaskedArray) and np.ma.getmask(a) is not np.ma.nomask and np.ma.getmask(a).any():
        raise TypeError(f"{name}: a masked array with {int(np.ma.getmask(a).sum())} masked entries; masks are not "
                        f"supported (they would be ignored): pass {name}.filled(value) or drop the masked rows")


# Keras's warning when an epoch of steps_per_epoch steps finds the data exhausted.
OUT_OF_DATA = ("Your input ran out of data; interrupting training. Make sure that your dataset or generator can "
               "generate at least `steps_per_epoch * epochs` batches. You may need to use the `.repeat()` function "
               "when building your dataset.")


def class_sample_weights(y, sample_weight, class_weight):
    """Keras's class_weight: each sample weighs ``class_weight[its class]`` (times its sample weight)."""
    if y is None:
        raise ValueError("class_weight needs y")
    y = np.asarray(y)
    labels = np.argmax(y, axis=-1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(len(y)).round().astype(int)
    try:
        w = np.array([class_weight[int(c)] for c in labels], dtype=np.float32)
    except KeyError as e:
        raise ValueError(f"class_weight has no entry for class {e.args[0]}") from None
    return w if sample_weight is None else w * np.asarray(sample_weight, np.float32).reshape(len(w))


def check_steps(steps, name):
    """``steps_per_epoch`` / ``validation_steps`` / ``steps``: None or an integer >= 1."""
    if steps is None:
        return None
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"{name} must be None or a positive integer, got {steps!r}")
    return int(steps)


def unpack(batch):
    """(x, y, sample_weight) from one batch element, as Keras unpacks it."""
    if isinstance(batch, (tuple, list)):
        if len(batch) == 1:
            return batch[0], None, None
        if len(batch) == 2:
            return batch[0], batch[1], None
        if len(batch) == 3:
            return batch[0], batch[1], batch[2]
        raise ValueError(f"a batch must be x, (x,), (x, y) or (x, y, sample_weight); got {len(batch)} items")
    return batch, None, None


class ArrayBatches:
    """Batches of in-memory arrays; reshuffled every epoch when ``shuffle``."""

    def __init__(self, x, y=None, sample_weight=None, batch_size=32, shuffle=False, seed=None, steps=None):
        self.x = _as_array(x, "x")
        self.y = _as_array(y, "y")
        self.sample_weight = _as_array(sample_weight, "sample_weight")
        if self.x.ndim == 0:
            raise ValueError(f"x must have a batch axis, got shape {self.x.shape}")
        n = len(self.x)
        for name, a in (("y", self.y), ("sample_weight", self.sample_weight)):
            if a is not None and len(a) != n:
                raise ValueError(f"x and {name} must have the same number of samples, got {n} and {len(a)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if batch_size > _MAX_BATCH:
            raise ValueError(f"batch_size={batch_size} is too large (at most 2**62); a batch_size of at least the "
                             f"number of samples ({n}) trains on all of them in one batch")
        # Larger than the data is one batch of all of it (Keras); the kernels see the rows a batch has.
        self.batch_size = int(min(batch_size, max(n, 1)))
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed) if seed is not None else utils.global_rng()
        self.num_samples = n
        self.steps = check_steps(steps, "steps_per_epoch")
        self._pass_order, self._pass_pos = None, 0  # with steps: the current pass over the data

    def num_batches(self):
        """Batches per epoch: ``steps`` when given (Keras), else one pass."""
        return self.steps if self.steps is not None else self.batches_per_pass()

    def batches_per_pass(self):
        return (self.num_samples + self.batch_size - 1) // self.batch_size

    def reset(self):
        """The next epoch starts a new pass (evaluate's and predict's epochs always do, as Keras's)."""
        self._pass_pos = 0

    def _next_rows(self):
        """This epoch's rows: a slice, or an index array when shuffled (the shuffle drawn as a pass starts).

        Keras 3 (EpochIterator): with ``steps_per_epoch`` an epoch is the next ``steps`` batches of the
        current pass, which continues across epochs; when the pass runs out first the epoch ends early,
        with Keras's warning, and the next epoch starts a new pass (reshuffled)."""
        n, bs = self.num_samples, self.batch_size
        if self.steps is None or self._pass_pos == 0:
            self._pass_order = self._rng.permutation(n) if self.shuffle else None
        if self.steps is None:
            start, stop = 0, n
        else:
            per_pass, first = self.batches_per_pass(), self._pass_pos
            last = first + self.steps
            if last > per_pass:
                warnings.warn(OUT_OF_DATA, stacklevel=5)
                last = per_pass
            self._pass_pos = 0 if last >= per_pass else last
            start, stop = first * bs, min(last * bs, n)
        if self._pass_order is None:
            return slice(start, stop)
        return self._pass_order[start:stop]

    # Up to this size the arrays are gathered in shuffled order once per epoch, and batches are
    # views of that copy (one gather instead of one per batch); larger data is gathered per batch.
    _GATHER_ONCE_BYTES = 256 << 20

    def epoch(self):
        """This epoch's (x, y, sample_weight) in batch order, drawing the shuffle now; None for data too
        large to copy (then iterate, which gathers each batch)."""
        arrays = (self.x, self.y, self.sample_weight)
        if self.shuffle and sum(a.nbytes for a in arrays if a is not None) > self._GATHER_ONCE_BYTES:
            return None
        rows = self._next_rows()
        return tuple(None if a is None else a[rows] for a in arrays)

    def epoch_order(self):
        """This epoch's row order, drawing the shuffle now as ``epoch()`` does (for data kept on a GPU,
        gathered there in this order)."""
        rows = self._next_rows()
        return np.arange(self.num_samples)[rows] if isinstance(rows, slice) else rows

    def batches(self, arrays):
        """The batches of an epoch's arrays (from epoch()): views, in order."""
        x, y, sw = arrays
        for start in range(0, len(x), self.batch_size):
            sl = slice(start, start + self.batch_size)
            yield x[sl], None if y is None else y[sl], None if sw is None else sw[sl]

    def __iter__(self):
        arrays = self.epoch()
        if arrays is not None:
            yield from self.batches(arrays)
            return
        rows = self._next_rows()  # data too large to gather at once: one gather per batch
        x, y, sw = self.x, self.y, self.sample_weight
        for start in range(0, len(rows), self.batch_size):
            sl = rows[start:start + self.batch_size]
            yield x[sl], None if y is None else y[sl], None if sw is None else sw[sl]


class IterableBatches:
    """Batches from a Dataset (re-iterable) or a generator (consumed once, across epochs)."""

    def __init__(self, source, steps=None):
        self.source = source
        self.steps = check_steps(steps, "steps_per_epoch")
        self.is_generator = isinstance(source, types.GeneratorType) or (
            hasattr(source, "__next__") and iter(source) is source)
        self._iterator = None
        self.exhausted = False

    def num_batches(self):
        """Batches per pass, or None when unknown (a generator, an infinite dataset)."""
        if self.steps is not None:
            return self.steps
        try:
            return len(self.source)
        except TypeError:
            return None

    def reset(self):
        """The next epoch starts from the dataset's beginning (evaluate's epochs, as Keras's)."""
        if not self.is_generator:
            self._iterator = None

    def __iter__(self):
        if self.is_generator:
            it = self.source
        elif self.steps is not None:
            # steps_per_epoch over a dataset: keep one iterator across epochs, restart when it ends.
            if self._iterator is None:
                self._iterator = iter(self.source)
            it = self._iterator
        else:
            it = iter(self.source)
        count = 0
        while self.steps is None or count < self.steps:
            try:
                batch = next(it)
            except StopIteration:
                if self.is_generator:
                    self.exhausted = True
                else:
                    self._iterator = None
                if self.steps is not None and count:  # Keras: the epoch ends early, with its warning
                    warnings.warn(OUT_OF_DATA, stacklevel=3)
                return
            count += 1
            yield unpack(batch)


def _num_batches(ds):
    """A PyDataset's batches per epoch, or None when endless."""
    if isinstance(ds, py_dataset.PyDataset):
        try:
            n = ds.num_batches
        except NotImplementedError:
            n = None
    else:
        n = len(ds)
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{type(ds).__name__}: the number of batches must be an integer >= 0, got {n!r}")
    return int(n)


# Threads reading ahead for a PyDataset made by gradsmith (the image iterators), whose batches can be
# made in any order: their random draws are taken in order, in the consumer's thread.
DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))


class PyDatasetBatches:
    """Batches of a PyDataset (or a Keras 2 ``Sequence``-shaped object), as Keras 3's PyDatasetAdapter and
    EpochIterator take them.

    An epoch asks for batches ``0 .. len - 1`` (in a random order when fit shuffles: Keras shuffles the
    batch indices with Python's ``random``), calls ``on_epoch_begin`` before and ``on_epoch_end`` after.
    With ``steps_per_epoch`` an epoch is the next ``steps`` batches of the current pass, which goes on
    across epochs; a pass that ends first ends the epoch early, with Keras's warning, and the next epoch
    starts a new pass. The next batches are made in background threads while the current one trains (see
    ``gradsmith._prefetch``): the dataset's ``workers`` threads (gradsmith's image iterators: a few),
    at most ``max_queue_size`` batches ahead. An exception making a batch is raised in fit, naming the
    batch."""

    def __init__(self, ds, steps=None, shuffle=False, class_weight=None):
        self.ds = ds
        self.steps = check_steps(steps, "steps_per_epoch")
        self.shuffle = bool(shuffle)
        self.class_weight = class_weight
        self._remaining = None  # with steps: the batch indices left in the current pass
        self._count = 0  # an endless dataset's next index
        n = _num_batches(ds)
        if n is None and self.steps is None:
            raise ValueError(f"{type(ds).__name__} has no length (num_batches is None): pass steps_per_epoch "
                             f"(or steps) to say how many batches an epoch is")

    def num_batches(self):
        return self.steps if self.steps is not None else _num_batches(self.ds)

    def reset(self):
        """The next epoch starts a new pass; the dataset's ``on_epoch_end`` is called, as Keras's
        ``EpochIterator.reset`` calls it (at the start of fit and of every evaluate, validations included)."""
        self._remaining = None
        self.ds.on_epoch_end()

    def _pass(self, n):
        order = list(range(n))
        if self.shuffle:
            random.shuffle(order)
        return order

    def _epoch_indices(self):
        n = _num_batches(self.ds)
        if n is None:  # endless: the next `steps` indices
            first, self._count = self._count, self._count + self.steps
            return list(range(first, first + self.steps))
        if self.steps is None:
            return self._pass(n)
        if not self._remaining:
            self._remaining = self._pass(n)
        take, self._remaining = self._remaining[:self.steps], self._remaining[self.steps:]
        if len(take) < self.steps:
            warnings.warn(OUT_OF_DATA, stacklevel=4)
        return take

    def _settings(self):
        ds = self.ds
        if hasattr(type(ds), "_batch_task"):
            workers = getattr(ds, "_prefetch_workers", None) or DEFAULT_WORKERS
        else:
            workers = ds.workers if isinstance(ds, py_dataset.PyDataset) else 1
        depth = ds.max_queue_size if isinstance(ds, py_dataset.PyDataset) else 10
        workers = max(1, int(workers or 1))
        return workers, max(1, min(int(depth or 1), 2 * workers + 2))

    def _tasks(self, indices):
        ds = self.ds
        own = getattr(ds, "_batch_task", None)
        for i in indices:
            if own is not None:
                yield own(i)
            else:
                yield (lambda i=i: ds[i])

    def _standardize(self, batch, index):
        if isinstance(batch, list):
            batch = tuple(batch)
        if isinstance(batch, tuple) and len(batch) not in (1, 2, 3):
            raise ValueError(f"{type(self.ds).__name__}.__getitem__({index}) must return x, (x,), (x, y) or "
                             f"(x, y, sample_weight); got a tuple of {len(batch)} items")
        x, y, sw = unpack(batch)
        if self.class_weight is not None:
            if sw is not None:
                raise ValueError("You cannot specify `class_weight` and `sample_weight` at the same time.")
            if y is not None:
                sw = class_sample_weights(y, None, self.class_weight)
        return x, y, sw

    def __iter__(self):
        ds = self.ds
        indices = self._epoch_indices()
        if hasattr(ds, "on_epoch_begin"):
            ds.on_epoch_begin()
        workers, depth = self._settings()
        batches = _prefetch.ordered(self._tasks(indices), workers, depth)
        try:
            for index in indices:
                try:
                    batch = next(batches)
                except StopIteration:
                    return
                except Exception as e:
                    if hasattr(e, "add_note"):
                        e.add_note(f"(while making batch {index} of {type(ds).__name__})")
                    raise
                yield self._standardize(batch, index)
        finally:
            batches.close()
        ds.on_epoch_end()


def adapt(x, y=None, sample_weight=None, batch_size=None, shuffle=False, steps=None, seed=None,
          class_weight=None):
    """The batch source for fit / evaluate / predict."""
    if x is None:
        raise ValueError("x is required")
    if py_dataset.is_py_dataset(x):
        for name, given in (("y", y), ("sample_weight", sample_weight)):
            if given is not None:
                raise ValueError(f"{name} must not be given when x is a PyDataset (it returns (x, y) batches)")
        return PyDatasetBatches(x, steps, shuffle, class_weight)
    is_arraylike = isinstance(x, (np.ndarray, list, tuple, dict, Columns)) and not isinstance(x, types.GeneratorType)
    if is_arraylike:
        return ArrayBatches(x, y, sample_weight, 32 if batch_size is None else batch_size, shuffle, seed, steps)
    if y is not None:
        raise ValueError("y must not be given when x is a dataset or a generator (it yields (x, y) batches)")
    if not hasattr(x, "__iter__"):
        raise TypeError(f"cannot train on x of type {type(x).__name__}: expected arrays, a Dataset or a generator")
    return IterableBatches(x, steps)


def split_validation(x, y, sample_weight, validation_split):
    """Keras's validation_split: the LAST fraction of the samples, taken before any shuffling."""
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
    x = _as_array(x, "x")
    n = len(x)
    cut = int(n * (1.0 - validation_split))
    if cut == 0 or cut == n:
        raise ValueError(f"validation_split={validation_split} leaves no training or no validation samples "
                         f"out of {n}")

    def part(a, sl):
        return None if a is None else _as_array(a, "data")[sl]

    train = (x[:cut], part(y, slice(0, cut)), part(sample_weight, slice(0, cut)))
    val = (x[cut:], part(y, slice(cut, None)), part(sample_weight, slice(cut, None)))
    return train, val

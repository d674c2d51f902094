"""``gradsmith.utils.PyDataset`` (also ``gradsmith.utils.Sequence``): Keras 3's base class for data
given batch by batch, by index.

Subclass it, call ``super().__init__(**kwargs)``, and define ``__len__`` (batches per epoch) and
``__getitem__(index)`` (batch ``index`` as ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``);
``on_epoch_begin`` / ``on_epoch_end`` are called around every epoch of fit / evaluate / predict.
fit reads the next batches ahead of the one training, in background threads: ``workers`` of them
(Keras's argument; 1 reads the batches one after another, in order), at most ``max_queue_size``
batches ahead. ``use_multiprocessing`` is accepted and ignored: batches are read by threads.
"""
import itertools
import warnings

__all__ = ["PyDataset", "Sequence", "is_py_dataset"]


class PyDataset:
    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    def _warn_if_super_not_called(self):
        warn = False
        for name, default in (("_workers", 1), ("_use_multiprocessing", False), ("_max_queue_size", 10)):
            if not hasattr(self, name):
                setattr(self, name, default)
                warn = True
        if warn:
            warnings.warn("Your `PyDataset` class should call `super().__init__(**kwargs)` in its constructor. "
                          "`**kwargs` can include `workers`, `use_multiprocessing`, `max_queue_size`. Do not pass "
                          "these arguments to `fit()`, as they will be ignored.", stacklevel=3)

    @property
    def workers(self):
        self._warn_if_super_not_called()
        return self._workers

    @workers.setter
    def workers(self, value):
        self._workers = value

    @property
    def use_multiprocessing(self):
        self._warn_if_super_not_called()
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = value

    @property
    def max_queue_size(self):
        self._warn_if_super_not_called()
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = value

    def __getitem__(self, index):
        raise NotImplementedError

    def __iter__(self):
        try:
            n = self.num_batches
        except NotImplementedError:
            n = None
        for index in (range(n) if n is not None else itertools.count()):
            yield self[index]

    @property
    def num_batches(self):
        """Batches per epoch: ``len(self)``; None for an endless dataset (then fit needs steps_per_epoch)."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError("You need to implement the `num_batches` property:\n\n"
                                  "@property\ndef num_batches(self):\n  return ...")

    def on_epoch_begin(self):
        """Called at the start of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch."""


Sequence = PyDataset


def is_py_dataset(x):
    """A PyDataset, or an object shaped like one (Keras 2's ``Sequence``: ``__len__``, ``__getitem__``
    and ``on_epoch_end``), other than arrays, lists and tuples."""
    if isinstance(x, PyDataset):
        return True
    if isinstance(x, (list, tuple, dict, str, bytes)) or hasattr(x, "__array__"):
        return False
    t = type(x)
    return all(callable(getattr(t, name, None)) for name in ("__len__", "__getitem__", "on_epoch_end"))

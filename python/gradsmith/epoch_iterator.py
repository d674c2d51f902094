"""The epochs of fit / evaluate / predict: what turns the data adapter's batches into an epoch's steps.

Data flows one way: ``data_adapter`` (arrays, a Dataset or a generator ->
batches) -> ``EpochIterator`` (here: the validation split, class weights, and
each epoch's data, drawn once) -> the trainer's step (``gradsmith.trainer``:
the C++ step of ``compiled_step``, or layer by layer) -> the callbacks.

An epoch of in-memory arrays can be handed whole to the compiled step
(``epoch_arrays`` / ``epoch_order`` draw the shuffle); otherwise ``batches``
yields the epoch's ``(x, y, sample_weight)`` batches one by one (Keras 3's
``EpochIterator.enumerate_epoch``).
"""
import numpy as np

from gradsmith import data_adapter, py_dataset

__all__ = ["EpochIterator", "train_and_validation"]


class EpochIterator:
    """The batches of every epoch over ``x`` (arrays, a Dataset or a generator), as Keras 3's."""

    def __init__(self, x, y=None, sample_weight=None, batch_size=None, steps_per_epoch=None, shuffle=False,
                 class_weight=None):
        if class_weight is not None and py_dataset.is_py_dataset(x):
            # Batches by index: each batch's labels are weighed as it comes (Keras's PyDatasetAdapter).
            self._adapter = data_adapter.adapt(x, y, sample_weight, batch_size, shuffle=shuffle,
                                               steps=steps_per_epoch, class_weight=class_weight)
        else:
            if class_weight is not None:
                sample_weight = data_adapter.class_sample_weights(y, sample_weight, class_weight)
            self._adapter = data_adapter.adapt(x, y, sample_weight, batch_size, shuffle=shuffle,
                                               steps=steps_per_epoch)
        # In-memory arrays (an epoch can go to the compiled step whole, or its rows to the GPU once);
        # None for a Dataset or a generator.
        self.array_data = self._adapter if isinstance(self._adapter, data_adapter.ArrayBatches) else None

    @classmethod
    def from_batches(cls, data, batch_size=None, steps=None):
        """validation_data as fit takes it: an ``(x, y[, sample_weight])`` tuple, or a Dataset / generator."""
        if isinstance(data, tuple) and len(data) in (2, 3):
            x, y, sw = data_adapter.unpack(data)
            return cls(x, y, sw, batch_size, steps_per_epoch=steps)
        return cls(data, steps_per_epoch=steps)

    def num_batches(self):
        """Batches per epoch, or None when unknown (a generator, an infinite dataset)."""
        return self._adapter.num_batches()

    def reset(self):
        """The next epoch starts from the data's beginning (evaluate's, each time fit validates)."""
        if hasattr(self._adapter, "reset"):
            self._adapter.reset()

    # -- in-memory arrays (``self.array_data`` is not None)
    @property
    def batch_size(self):
        return self.array_data.batch_size

    @property
    def num_samples(self):
        return self.array_data.num_samples

    @property
    def y(self):
        return self.array_data.y

    def first_rows(self):
        """x's first row, as a batch (to build a model from its shape)."""
        return self.array_data.x[:1]

    def epoch_arrays(self):
        """This epoch's (x, y, sample_weight) in batch order, drawing the shuffle now; None for data too
        large to copy (then ``batches()`` gathers each batch)."""
        return self.array_data.epoch()

    def epoch_order(self):
        """This epoch's row order, drawing the shuffle as ``epoch_arrays`` does (for data kept on a GPU)."""
        return self.array_data.epoch_order()

    def gather(self, order):
        """(x, y, sample_weight) with their rows in ``order`` (an epoch's, from ``epoch_order``)."""
        data = self.array_data
        return tuple(None if a is None else a[order] for a in (data.x, data.y, data.sample_weight))

    # -- any data
    def batches(self, arrays=None):
        """The epoch's ``(x, y, sample_weight)`` batches: views of ``arrays`` (from ``epoch_arrays``), or
        drawn from the adapter."""
        if arrays is not None:
            return self.array_data.batches(arrays)
        return iter(self._adapter)

    def __iter__(self):
        return self.batches()


def train_and_validation(x, y, sample_weight, batch_size, steps_per_epoch, shuffle, class_weight, validation_split,
                         validation_data, validation_batch_size, validation_steps):
    """fit's data: (training EpochIterator, validation EpochIterator or None). validation_split takes the
    LAST fraction of the array samples, before any shuffling (Keras)."""
    if validation_split and validation_data is None:
        if not isinstance(x, (np.ndarray, list, tuple, dict)):
            raise ValueError("validation_split is only supported for array inputs; pass validation_data")
        (x, y, sample_weight), validation_data = data_adapter.split_validation(x, y, sample_weight, validation_split)
    train = EpochIterator(x, y, sample_weight, batch_size, steps_per_epoch, shuffle=bool(shuffle),
                          class_weight=class_weight)
    train.reset()  # Keras resets fit's iterator before the first epoch (a PyDataset's on_epoch_end)
    val = None
    if validation_data is not None:
        val = EpochIterator.from_batches(validation_data, validation_batch_size or batch_size, validation_steps)
    return train, val

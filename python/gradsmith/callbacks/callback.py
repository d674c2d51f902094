"""The Callback base class: the ``on_*`` hooks ``fit`` / ``evaluate`` / ``predict`` call, and
``_print_msg``, how every callback writes to the console (Keras's io_utils.print_msg)."""
import sys

__all__ = ["Callback"]


def _print_msg(message, line_break=True):
    """Keras's io_utils.print_msg: write to the current sys.stdout and flush."""
    message = str(message)
    if line_break:
        message += "\n"
    out = sys.stdout
    try:
        out.write(message)
    except UnicodeEncodeError:
        out.write(message.encode("ascii", errors="ignore").decode("ascii"))
    try:
        out.flush()
    except (AttributeError, ValueError, OSError):
        pass


class Callback:
    """Base class for callbacks: override the ``on_*`` hooks of interest.

    Attributes: ``params`` (dict: verbose, epochs, steps) and ``model``.
    """

    def __init__(self):
        self.params = None
        self._model = None

    def set_params(self, params):
        self.params = params

    def set_model(self, model):
        self._model = model

    @property
    def model(self):
        return self._model

    @model.setter
    def model(self, model):
        self._model = model

    def on_batch_begin(self, batch, logs=None):
        """A backwards compatibility alias for `on_train_batch_begin`."""

    def on_batch_end(self, batch, logs=None):
        """A backwards compatibility alias for `on_train_batch_end`."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of an epoch (``epoch`` counts from 0)."""

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of an epoch; ``logs`` holds the epoch's results (``val_`` ones too)."""

    def on_train_batch_begin(self, batch, logs=None):
        """Called at the beginning of a training batch in `fit`."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        """Called at the end of a training batch in `fit`; ``logs`` are the running results."""
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        """Called at the beginning of a batch in `evaluate` (and validation in `fit`)."""

    def on_test_batch_end(self, batch, logs=None):
        """Called at the end of a batch in `evaluate` (and validation in `fit`)."""

    def on_predict_batch_begin(self, batch, logs=None):
        """Called at the beginning of a batch in `predict`."""

    def on_predict_batch_end(self, batch, logs=None):
        """Called at the end of a batch in `predict`."""

    def on_train_begin(self, logs=None):
        """Called at the beginning of training."""

    def on_train_end(self, logs=None):
        """Called at the end of training."""

    def on_test_begin(self, logs=None):
        """Called at the beginning of evaluation or validation."""

    def on_test_end(self, logs=None):
        """Called at the end of evaluation or validation."""

    def on_predict_begin(self, logs=None):
        """Called at the beginning of prediction."""

    def on_predict_end(self, logs=None):
        """Called at the end of prediction."""

"""History: every epoch's logs, the object ``fit`` returns."""
from gradsmith.callbacks.callback import Callback

__all__ = ["History"]


class History(Callback):
    """Records every epoch's logs: ``history.history`` maps each key to a list, ``history.epoch`` the epochs.

    ``fit`` returns it (and sets ``model.history``)."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)
        # The model's history is the latest one.
        if self.model is not None:
            try:
                self.model.history = self
            except AttributeError:
                pass

"""TerminateOnNaN: stop training when a batch's loss is NaN or infinite."""
import numpy as np

from gradsmith.callbacks.callback import Callback, _print_msg

__all__ = ["TerminateOnNaN"]


class TerminateOnNaN(Callback):
    """Stop training (``model.stop_training = True``) when a batch's loss is NaN or infinite;
    with ``raise_error=True`` raise a RuntimeError instead."""

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        logs = logs or {}
        loss = logs.get("loss")
        if loss is None:
            return
        loss_arr = np.asarray(loss, dtype=np.float64)
        if np.any(np.isnan(loss_arr)) or np.any(np.isinf(loss_arr)):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. "
                                   "Terminating training immediately.")
            _print_msg(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True

"""CallbackList: calls every hook of a list of callbacks in order, adding the History and the
ProgbarLogger the training loop asks for."""
from gradsmith.callbacks.callback import Callback
from gradsmith.callbacks.history import History
from gradsmith.callbacks.progbar import ProgbarLogger

__all__ = ["CallbackList"]


def _flatten_callbacks(callbacks):
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        return [callbacks]
    out = []
    for cb in callbacks:
        if isinstance(cb, (list, tuple)):
            out.extend(_flatten_callbacks(cb))
        elif cb is not None:
            out.append(cb)
    return out


class CallbackList(Callback):
    """Container calling every hook of a list of callbacks, in order.

    ``CallbackList(callbacks, add_history=False, add_progbar=False, model=None, **params)``:
    adds a ``History`` / ``ProgbarLogger`` when asked and none is in the list,
    then passes the model and ``params`` (verbose, epochs, steps) to every callback.
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None, **params):
        super().__init__()
        self.callbacks = _flatten_callbacks(callbacks)
        self._add_default_callbacks(add_history, add_progbar)
        self.set_model(model)
        self.set_params(params)

    def _add_default_callbacks(self, add_history, add_progbar):
        self._progbar = None
        self._history = None
        for cb in self.callbacks:
            if isinstance(cb, ProgbarLogger):
                self._progbar = cb
            elif isinstance(cb, History):
                self._history = cb
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)

    def append(self, callback):
        """Add a callback at the end (it is given this list's model and params, when set)."""
        self.callbacks.append(callback)
        if self._model is not None:
            callback.set_model(self._model)
        if self.params:
            callback.set_params(self.params)

    def set_params(self, params):
        self.params = params
        if params:
            for callback in self.callbacks:
                callback.set_params(params)

    def set_model(self, model):
        if model is None:
            return
        super().set_model(model)
        if self._history is not None:
            model.history = self._history
        for callback in self.callbacks:
            callback.set_model(model)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)

    def implements_batch_hooks(self, kind="train"):
        """Whether any callback overrides a per-batch hook of ``kind`` ('train' or 'test'), as Keras
        checks: when none does, fit and evaluate skip building per-batch logs."""
        names = [f"on_{kind}_batch_begin", f"on_{kind}_batch_end"]
        if kind == "train":
            names += ["on_batch_begin", "on_batch_end"]

        def overrides(cb, name):  # a subclass's method, or a function set on the instance (LambdaCallback)
            attr = getattr(cb, name, None)
            return getattr(attr, "__func__", attr) is not getattr(Callback, name)

        return any(overrides(cb, name) for cb in self.callbacks for name in names)

    def batch_hooks_only_from(self, kind, cls):
        """Whether every callback with per-batch hooks of ``kind`` is exactly a ``cls`` (fit's own
        progress bar, which only needs a display update now and then)."""
        return all(type(cb) is cls for cb in self.callbacks if CallbackList([cb]).implements_batch_hooks(kind))

    @staticmethod
    def _pythonify_logs(logs):
        """Batch logs as Keras hands them on: keys sorted, values as Python floats where possible."""
        result = {}
        for key, value in sorted(logs.items()):
            if isinstance(value, dict):
                result.update(CallbackList._pythonify_logs(value))
            else:
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    pass
                result[key] = value
        return result

    # The same logs dict goes to every callback, so what one adds (e.g. learning_rate) the next sees.
    def on_batch_begin(self, batch, logs=None):
        logs = logs or {}
        for callback in self.callbacks:
            callback.on_batch_begin(batch, logs=logs)

    def on_batch_end(self, batch, logs=None):
        logs = self._pythonify_logs(logs or {})
        for callback in self.callbacks:
            callback.on_batch_end(batch, logs=logs)

    def on_epoch_begin(self, epoch, logs=None):
        logs = logs or {}
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        logs = logs or {}
        for callback in self.callbacks:
            callback.on_train_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        logs = self._pythonify_logs(logs or {})
        for callback in self.callbacks:
            callback.on_train_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        logs = logs or {}
        for callback in self.callbacks:
            callback.on_test_batch_begin(batch, logs=logs)

    def on_test_batch_end(self, batch, logs=None):
        logs = self._pythonify_logs(logs or {})
        for callback in self.callbacks:
            callback.on_test_batch_end(batch, logs=logs)

    def on_predict_batch_begin(self, batch, logs=None):
        logs = logs or {}
        for callback in self.callbacks:
            callback.on_predict_batch_begin(batch, logs=logs)

    def on_predict_batch_end(self, batch, logs=None):
        logs = logs or {}
        for callback in self.callbacks:
            callback.on_predict_batch_end(batch, logs=logs)

    def on_train_begin(self, logs=None):
        logs = logs or {}
        for callback in self.callbacks:
            callback.on_train_begin(logs)

    def on_train_end(self, logs=None):
        logs = logs or {}
        for callback in self.callbacks:
            callback.on_train_end(logs)

    def on_test_begin(self, logs=None):
        logs = logs or {}
        for callback in self.callbacks:
            callback.on_test_begin(logs)

    def on_test_end(self, logs=None):
        logs = logs if logs is not None else {}
        for callback in self.callbacks:
            callback.on_test_end(logs)

    def on_predict_begin(self, logs=None):
        logs = logs or {}
        for callback in self.callbacks:
            callback.on_predict_begin(logs)

    def on_predict_end(self, logs=None):
        logs = logs or {}
        for callback in self.callbacks:
            callback.on_predict_end(logs)

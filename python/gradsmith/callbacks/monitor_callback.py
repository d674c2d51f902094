"""MonitorCallback: the base of the callbacks that watch a monitored quantity (EarlyStopping,
ModelCheckpoint, ReduceLROnPlateau), and how mode 'auto' decides whether it should go up or down."""
import re
import warnings

import numpy as np

from gradsmith.callbacks.callback import Callback

__all__ = ["MonitorCallback"]


_DOWN_WORDS = ("loss", "error", "crossentropy", "hinge", "divergence", "poisson", "logcosh", "mse", "mae",
               "mape", "msle", "rmse")

_UP_WORDS = ("acc", "auc", "precision", "recall", "f1", "fbeta", "iou", "r2", "cosine_similarity", "specificity",
             "sensitivity")


def _model_metric_objects(model):
    """Metric objects the model exposes (``model.metrics``, ``compiled_metrics``, ...), containers opened."""
    found = []
    for attr in ("metrics", "compiled_metrics", "compiled_weighted_metrics"):
        try:
            items = getattr(model, attr, None)
        except Exception:  # a property that cannot answer yet
            items = None
        if not items or isinstance(items, (str, bytes)):
            continue
        try:
            items = list(items)
        except TypeError:
            continue
        stack = items
        while stack:
            m = stack.pop(0)
            inner = getattr(m, "metrics", None)
            if isinstance(inner, (list, tuple)) and not hasattr(m, "_direction"):
                stack.extend(inner)
            else:
                found.append(m)
    return found


def _infer_direction(model, monitor):
    """'up', 'down' or None for ``monitor``, as Keras 3's ``_set_monitor_op`` decides in mode 'auto'.

    'loss' is minimized; a metric object of the model named like the monitor
    (``val_`` prefix removed) gives its ``_direction``; failing that the name
    decides (losses and errors down; accuracy, AUC, precision, recall, F1 ... up).
    """
    name = monitor[4:] if monitor.startswith("val_") else monitor
    direction = "down" if name == "loss" else None
    for m in _model_metric_objects(model):
        if getattr(m, "name", None) == name and hasattr(m, "_direction"):
            direction = "up" if m._direction == "up" else "down"
    if direction is None:
        base = re.sub(r"_\d+$", "", name.lower())
        if any(w in base for w in _DOWN_WORDS):
            direction = "down"
        elif any(w in base for w in _UP_WORDS):
            direction = "up"
    return direction


class MonitorCallback(Callback):
    """Base of callbacks that watch a quantity (Keras 3's MonitorCallback)."""

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"{self.__class__.__name__} mode '{mode}' is unknown, fallback to auto mode.",
                          stacklevel=2)
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None

    def _set_monitor_op(self):
        if self.mode == "min":
            self.monitor_op = np.less
        elif self.mode == "max":
            self.monitor_op = np.greater
        else:
            direction = _infer_direction(self.model, self.monitor)
            if direction is None:
                raise ValueError(
                    f"{self.__class__.__name__} callback received monitor={self.monitor}, but Keras isn't able "
                    "to automatically determine whether that metric should be maximized or minimized. Pass "
                    "`mode='max'` in order to monitor based on the highest metric value, or pass `mode='min'` "
                    "in order to use the lowest value.")
            self.monitor_op = np.greater if direction == "up" else np.less
        if self.monitor_op is np.less:
            self.min_delta *= -1
        if self.best is None:
            self.best = np.inf if self.monitor_op is np.less else -np.inf

    def _is_improvement(self, monitor_value, reference_value):
        if reference_value is None:
            return True
        return bool(self.monitor_op(monitor_value - self.min_delta, reference_value))

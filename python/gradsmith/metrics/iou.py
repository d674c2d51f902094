"""Intersection-over-union metrics (keras/src/metrics/iou_metrics.py): IoU, BinaryIoU, MeanIoU, OneHotIoU and
OneHotMeanIoU.

Predictions and labels (class ids, or one-hot / scores reduced with argmax) fill a ``num_classes`` square
confusion matrix, rows the true class; the IoU of a class is ``tp / (row + column - tp)`` and the result is
the mean over ``target_class_ids`` whose denominator is not 0. As in Keras 3.15 the matrix is kept in the
metric's dtype, ``int32`` unless ``dtype`` says otherwise: labels, predictions and sample weights are cast
to it, so fractional weights truncate (Keras warns, and so does this module) -- pass
``dtype='float32'`` for weighted IoU.
"""
import warnings

import numpy as np

from gradsmith.losses import EPSILON
from gradsmith.metrics.base import _F32, Metric, _out

__all__ = ["IoU", "BinaryIoU", "MeanIoU", "OneHotIoU", "OneHotMeanIoU"]


def _np_dtype(dtype):
    return np.dtype("int32" if dtype in (None, "int") else dtype)


class _IoUBase(Metric):
    _state_names = ("total_cm",)

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_true=True,
                 sparse_y_pred=True, axis=-1):
        state_dtype = _np_dtype(dtype)
        super().__init__(name=name, dtype=state_dtype.name)
        self._state_dtype = state_dtype
        self.num_classes = num_classes
        self.ignore_class = ignore_class
        self.sparse_y_true = sparse_y_true
        self.sparse_y_pred = sparse_y_pred
        self.axis = axis
        self.total_cm = np.zeros((num_classes, num_classes), dtype=state_dtype)

    def _cast(self, x):
        return np.asarray(x).astype(self._state_dtype)  # float -> int truncates toward 0, as a tensor cast

    def update_state(self, y_true, y_pred, sample_weight=None):
        if not self.sparse_y_true:
            y_true = np.argmax(np.asarray(y_true), axis=self.axis)
        if not self.sparse_y_pred:
            y_pred = np.argmax(np.asarray(y_pred), axis=self.axis)
        y_true, y_pred = self._cast(y_true), self._cast(y_pred)
        if y_true.ndim == 0 or y_pred.ndim == 0:
            # Keras stacks (label, prediction) pairs on axis 1, which a scalar does not have (a 1-D one-hot
            # row reduced by argmax is one)
            raise ValueError(f"{type(self).__name__}: expected a batch of class ids, got y_true of shape "
                             f"{y_true.shape} and y_pred of shape {y_pred.shape}")
        y_true, y_pred = y_true.reshape(-1), y_pred.reshape(-1)
        if sample_weight is None:
            sample_weight = 1
        else:
            if np.asarray(sample_weight).dtype.kind == "f" and self._state_dtype.kind in "iu":
                warnings.warn("You are passing weight as `float`, but dtype is `int`. This may result in an "
                              "incorrect weight due to type casting Consider using integer weights.", stacklevel=2)
        sample_weight = self._cast(sample_weight)
        if sample_weight.ndim > 1:
            sample_weight = sample_weight.reshape(-1)
        sample_weight = np.broadcast_to(sample_weight, y_true.shape)
        # Keras: pairs with a class outside [0, num_classes), or a true class equal to ignore_class, weigh 0
        ok = (y_true >= 0) & (y_true < self.num_classes) & (y_pred >= 0) & (y_pred < self.num_classes)
        if self.ignore_class is not None:
            ok &= y_true != self.ignore_class
        cm = np.zeros_like(self.total_cm)
        np.add.at(cm, (np.where(ok, y_true, 0).astype(np.int64), np.where(ok, y_pred, 0).astype(np.int64)),
                  np.where(ok, sample_weight, 0).astype(self._state_dtype))
        self.total_cm += cm

    def reset_state(self):
        self.total_cm[...] = 0


class IoU(_IoUBase):
    """Mean IoU over ``target_class_ids`` (integer labels and predictions, unless ``sparse_y_true`` /
    ``sparse_y_pred`` is False: then argmax along ``axis``)."""

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None, sparse_y_true=True,
                 sparse_y_pred=True, axis=-1):
        super().__init__(num_classes, name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred, axis=axis)
        if max(target_class_ids) >= num_classes:
            raise ValueError(f"Target class id {max(target_class_ids)} is out of range, which is "
                             f"[0, {num_classes}).")
        self.target_class_ids = list(target_class_ids)

    def result(self):
        cm = self.total_cm
        # Keras: column sums, row sums and the diagonal in the metric's dtype, then float32
        denominator = (np.sum(cm, axis=0) + np.sum(cm, axis=1) - np.diag(cm)).astype(self._state_dtype)
        ids = np.asarray(self.target_class_ids, dtype=np.int64)
        tp = np.diag(cm)[ids].astype(_F32)
        denominator = denominator[ids].astype(_F32)
        valid = denominator > _F32(1e-9)
        iou = np.where(valid, tp / (denominator + _F32(EPSILON)), _F32(0.0))
        return _out(np.sum(iou, axis=self.axis, dtype=_F32) / (np.sum(valid, dtype=_F32) + _F32(EPSILON)))

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "target_class_ids": self.target_class_ids,
                       "ignore_class": self.ignore_class, "sparse_y_true": self.sparse_y_true,
                       "sparse_y_pred": self.sparse_y_pred, "axis": self.axis})
        return config


class BinaryIoU(IoU):
    """IoU of the classes 0 and 1 (``target_class_ids``) where a prediction ``>= threshold`` is class 1."""

    def __init__(self, target_class_ids=(0, 1), threshold=0.5, name=None, dtype=None):
        super().__init__(num_classes=2, target_class_ids=target_class_ids, name=name, dtype=dtype)
        self.threshold = threshold

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = self._cast(y_true)
        y_pred = (np.asarray(y_pred, dtype=_F32) >= _F32(self.threshold)).astype(self._state_dtype)
        return super().update_state(y_true, y_pred, sample_weight)

    def get_config(self):
        return {"target_class_ids": self.target_class_ids, "threshold": self.threshold, "name": self.name,
                "dtype": self.dtype}


class MeanIoU(IoU):
    """Mean IoU over all ``num_classes`` classes."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_true=True, sparse_y_pred=True,
                 axis=-1):
        super().__init__(num_classes, list(range(num_classes)), name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype,
                "ignore_class": self.ignore_class, "sparse_y_true": self.sparse_y_true,
                "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class OneHotIoU(IoU):
    """IoU over ``target_class_ids`` for one-hot labels and class scores (argmax along ``axis``)."""

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None, sparse_y_pred=False,
                 axis=-1):
        super().__init__(num_classes, target_class_ids, name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=False, sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        return {"num_classes": self.num_classes, "target_class_ids": self.target_class_ids, "name": self.name,
                "dtype": self.dtype, "ignore_class": self.ignore_class, "sparse_y_pred": self.sparse_y_pred,
                "axis": self.axis}


class OneHotMeanIoU(MeanIoU):
    """Mean IoU over all classes for one-hot labels and class scores (argmax along ``axis``)."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, name=name, dtype=dtype, ignore_class=ignore_class, sparse_y_true=False,
                         sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype,
                "ignore_class": self.ignore_class, "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}

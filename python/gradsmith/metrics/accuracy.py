"""Accuracy metrics: accuracy, binary, categorical, sparse categorical and top-k (Keras 3's
definitions); unweighted counts come from the ``ops.count_correct`` kernel."""
import numpy as np

from gradsmith import ops
from gradsmith.losses import squeeze_or_expand_to_same_rank
from gradsmith.losses.reduction import _f32
from gradsmith.metrics.base import _F32, _FnMetric

__all__ = ["accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
           "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "Accuracy", "BinaryAccuracy",
           "CategoricalAccuracy", "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
           "SparseTopKCategoricalAccuracy"]


def accuracy(y_true, y_pred):
    """Element-wise ``float(y_true == y_pred)``.

    Keras >= 3.4 (keras-team/keras#19847) no longer takes the mean over the last axis here: the Mean
    metric reduces each sample after applying the sample weights, so a 1-D batch of n predictions is n
    samples (not one), and weights shaped like y weigh each element."""
    y_pred = _f32(y_pred, "y_pred")
    y_true = _f32(y_true, "y_true")
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return (y_true == y_pred).astype(_F32)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Element-wise ``float(y_true == float(y_pred > threshold))`` (Keras >= 3.4: no mean over the last
    axis; see ``accuracy``)."""
    y_pred = _f32(y_pred, "y_pred")
    y_true = _f32(y_true, "y_true")
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    y_pred = (y_pred > _F32(threshold)).astype(_F32)
    return (y_true == y_pred).astype(_F32)


def categorical_accuracy(y_true, y_pred):
    """Per-sample ``argmax(y_true) == argmax(y_pred)``."""
    y_true = np.argmax(np.asarray(y_true), axis=-1)
    y_pred = _f32(y_pred, "y_pred")
    org_shape = y_true.shape
    reshape = False
    if y_true.ndim == y_pred.ndim:
        y_true = y_true[..., 0] if y_true.shape[-1:] == (1,) else np.squeeze(y_true, -1)
        reshape = True
    # Keras: equal(argmax(y_true), argmax(y_pred))
    matches = (y_true == np.argmax(y_pred, axis=-1)).astype(_F32)
    return matches.reshape(org_shape) if reshape else matches


def sparse_categorical_accuracy(y_true, y_pred):
    """Per-sample ``y_true == argmax(y_pred)`` (labels (N,) or (N, 1))."""
    y_pred = _f32(y_pred, "y_pred")
    y_true = _f32(y_true, "y_true")
    org_shape = y_true.shape
    reshape = False
    if y_true.ndim == y_pred.ndim and y_true.shape[-1:] == (1,):
        y_true = y_true[..., 0]
        reshape = True
    # Keras: equal(y_true, argmax(y_pred))
    matches = (y_true == np.argmax(y_pred, axis=-1).astype(_F32)).astype(_F32)
    if reshape:
        matches = matches.reshape(org_shape)
    if matches.ndim > 1 and matches.shape[-1] == 1:
        matches = matches[..., 0]
    return matches


def _in_top_k(targets, predictions, k):
    """TF in_top_k: the target's score is among the k largest (ties at the boundary count as in)."""
    targets = np.asarray(targets).astype(np.int64)
    n, c = predictions.shape
    ok = (targets >= 0) & (targets < c)
    t = np.where(ok, targets, 0)
    target_score = predictions[np.arange(n), t]
    larger = np.sum(predictions > target_score[:, None], axis=-1)
    return ok & np.isfinite(target_score) & (larger < k)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """Per-sample: ``argmax(y_true)`` is among the ``k`` largest predictions (a 1-D pair is one sample, and
    gives a scalar, as in Keras)."""
    y_pred = _f32(y_pred, "y_pred")
    y_true = np.argmax(np.asarray(y_true), axis=-1)
    org_shape = y_true.shape
    if y_pred.ndim == 1:
        return _in_top_k(np.reshape(y_true, (1,)), y_pred[None], k).astype(_F32).reshape(org_shape)
    if y_pred.ndim > 2:
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    reshape = y_true.ndim > 1
    matches = _in_top_k(y_true.reshape(-1), y_pred, k).astype(_F32)
    return matches.reshape(org_shape) if reshape else matches


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5, from_sorted_ids=False):
    """Per-sample: the label is among the ``k`` largest predictions (or, ``from_sorted_ids``, among
    the first ``k`` ids of ``y_pred``); a 1-D ``y_pred`` with a scalar label is one sample."""
    y_pred = np.asarray(y_pred) if from_sorted_ids else _f32(y_pred, "y_pred")
    y_true = np.asarray(y_true)
    org_shape = y_true.shape
    if y_pred.ndim == 1 and y_true.ndim == 0:
        y_pred = y_pred[None]
        reshape = True
    else:
        if y_pred.ndim > 2:
            y_pred = y_pred.reshape(-1, y_pred.shape[-1])
        reshape = y_true.ndim > 1
    y_true = y_true.reshape(-1)
    if from_sorted_ids:
        matches = np.any(y_true[:, None] == y_pred[:, :k], axis=1)
    else:
        matches = _in_top_k(y_true.astype(np.int64), y_pred, k)
    matches = matches.astype(_F32)
    return matches.reshape(org_shape) if reshape else matches


class Accuracy(_FnMetric):
    """How often ``y_pred == y_true``."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(_FnMetric):
    """How often ``float(y_pred > threshold) == y_true``. Any float threshold is taken, as in Keras 3
    (logits with ``threshold=0.0``; below 0 every prediction is positive, from 1 up none of [0, 1] is)."""

    _config_keys = ("threshold",)

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None:
            t, p = squeeze_or_expand_to_same_rank(_f32(y_true, "y_true"), _f32(y_pred, "y_pred"))
            if p.ndim == 2 and t.shape == p.shape:
                # Keras: total += sum over rows of mean_j [float(p > threshold) == t]; count += rows
                correct = ops.count_correct(t, p, "binary", threshold=float(_F32(self.threshold)))
                self._add_counts(correct / p.shape[1] if p.shape[1] else 0.0, p.shape[0])
                return
        super().update_state(y_true, y_pred, sample_weight)


class CategoricalAccuracy(_FnMetric):
    """How often ``argmax(y_pred) == argmax(y_true)`` (one-hot labels)."""

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None:
            t, p = np.asarray(y_true), _f32(y_pred, "y_pred")
            if p.ndim == 2 and t.shape == p.shape and p.shape[1] > 0 and t.dtype.kind in "biuf":
                # Keras: total += #[argmax(y_true) == argmax(y_pred)]; count += rows
                self._add_counts(ops.count_correct(t, p, "categorical"), p.shape[0])
                return
        super().update_state(y_true, y_pred, sample_weight)


class SparseCategoricalAccuracy(_FnMetric):
    """How often ``argmax(y_pred) == y_true`` (integer labels)."""

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None:
            t, p = np.asarray(y_true), _f32(y_pred, "y_pred")
            if p.ndim == 2 and p.shape[1] > 1 and t.shape in ((p.shape[0],), (p.shape[0], 1)) \
                    and t.dtype.kind in "biuf":
                try:
                    correct = ops.count_correct(t, p, "sparse")
                except ValueError:
                    correct = None  # labels outside [0, C) or not integral: Keras simply counts no match
                if correct is not None:
                    # Keras: total += #[y_true == argmax(y_pred)]; count += rows
                    self._add_counts(correct, p.shape[0])
                    return
        super().update_state(y_true, y_pred, sample_weight)


class TopKCategoricalAccuracy(_FnMetric):
    """How often ``argmax(y_true)`` is among the ``k`` top predictions."""

    _config_keys = ("k",)

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k


class SparseTopKCategoricalAccuracy(_FnMetric):
    """How often the integer label is among the ``k`` top predictions."""

    _config_keys = ("k", "from_sorted_ids")

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None, from_sorted_ids=False):
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k,
                         from_sorted_ids=from_sorted_ids)
        self.k = k
        self.from_sorted_ids = from_sorted_ids

    def get_config(self):
        # Keras: "from_sorted_ids" is in the config only when it is True
        config = super().get_config()
        if not self.from_sorted_ids:
            del config["from_sorted_ids"]
        return config

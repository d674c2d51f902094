"""Confusion-matrix metrics (keras/src/metrics/confusion_metrics.py, metrics_utils.py):
TruePositives / FalsePositives / TrueNegatives / FalseNegatives, Precision, Recall, the best value of one
rate where another meets a bound (SensitivityAtSpecificity, SpecificityAtSensitivity, PrecisionAtRecall,
RecallAtPrecision) and AUC.

They count ``y_pred > threshold`` against ``bool(y_true)``; unweighted counts at
a few thresholds come from the ``ops.binary_confusion`` kernel. AUC uses
``num_thresholds`` thresholds ``[-eps, 1/(n-1), ..., 1 + eps]``, buckets the
(clipped) predictions as Keras's optimized path does, and sums trapezoids
('interpolation'), or interpolates precision for PR.
"""
import numpy as np

from gradsmith import ops
from gradsmith.losses import EPSILON, squeeze_or_expand_to_same_rank
from gradsmith.losses.probabilistic import _sigmoid
from gradsmith.losses.reduction import _f32
from gradsmith.metrics.base import _F32, Metric, _divide_no_nan, _out

__all__ = ["TruePositives", "FalsePositives", "TrueNegatives", "FalseNegatives", "Precision", "Recall",
           "SensitivityAtSpecificity", "SpecificityAtSensitivity", "PrecisionAtRecall", "RecallAtPrecision", "AUC"]

NEG_INF = -1e10  # keras metrics_utils.NEG_INF


def _to_list(x):
    if isinstance(x, (list, tuple)):
        return list(x)
    if isinstance(x, np.ndarray):
        return x.tolist() if x.ndim else [x.item()]
    return [x]


def _parse_init_thresholds(thresholds, default_threshold=0.5):
    if thresholds is not None:
        invalid = [t for t in _to_list(thresholds) if t is None or t < 0 or t > 1]
        if invalid:
            raise ValueError(f"Threshold values must be in [0, 1]. Received: {invalid}")
    return _to_list(default_threshold if thresholds is None else thresholds)


def _is_evenly_distributed_thresholds(thresholds):
    num = len(thresholds)
    if num < 3:
        return False
    even = np.arange(num, dtype=np.float32) / (num - 1)
    return bool(np.allclose(thresholds, even, atol=EPSILON))


def _filter_top_k(x, k):
    """Keep the top-k values on the last axis (lowest index first among ties), the rest NEG_INF."""
    order = np.argsort(-x, axis=-1, kind="stable")[..., :k]
    mask = np.zeros(x.shape, dtype=_F32)
    np.put_along_axis(mask, order, 1.0, axis=-1)
    return (x * mask + _F32(NEG_INF) * (_F32(1.0) - mask)).astype(_F32)


def _update_confusion(state, y_true, y_pred, thresholds, thresholds_distributed_evenly=False, top_k=None,
                      class_id=None, sample_weight=None, multi_label=False, label_weights=None):
    """Keras update_confusion_matrix_variables: add weighted tp / fp / tn / fn counts at each threshold.

    ``state``: dict with some of 'tp', 'fp', 'tn', 'fn' -> float32 arrays of shape (T,) or (T, labels).
    Positive prediction: ``y_pred > threshold``; positive label: ``bool(y_true)``.
    """
    y_true = _f32(y_true, "y_true")
    y_pred = _f32(y_pred, "y_pred")
    thr = np.asarray(thresholds, dtype=np.float64)
    with_epsilon = bool(thresholds_distributed_evenly and (thr[0] < 0.0 or thr[-1] > 1.0))
    thr32 = thr.astype(_F32)
    y_pred, y_true = squeeze_or_expand_to_same_rank(y_pred, y_true)
    if sample_weight is not None:
        sample_weight = _f32(sample_weight, "sample_weight")[..., None]
        _, sample_weight = squeeze_or_expand_to_same_rank(y_true, sample_weight, expand_rank_1=False)
    if top_k is not None:
        y_pred = _filter_top_k(y_pred, top_k)
    if class_id is not None:
        if y_pred.ndim == 1:
            raise ValueError("When class_id is provided, y_pred must be a 2D array with shape (num_samples, "
                             f"num_classes), found shape: {y_pred.shape}")
        y_true = y_true[..., class_id, None]
        y_pred = y_pred[..., class_id, None]
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    weights = None
    if sample_weight is not None:
        weights = np.broadcast_to(sample_weight, y_pred.shape).astype(np.float64)
    if label_weights is not None and not multi_label:
        lw = np.broadcast_to(np.asarray(label_weights, dtype=np.float64)[None], y_pred.shape)
        weights = lw if weights is None else weights * lw

    if (not thresholds_distributed_evenly and weights is None and not multi_label and len(thr32) <= 8
            and y_pred.size):
        # Few thresholds, no weights: the binary_confusion kernel, once per threshold.
        counts = np.array([ops.binary_confusion(y_true, y_pred, threshold=float(t)) for t in thr32], dtype=np.float64)
        found = {"tp": counts[:, 0], "fp": counts[:, 1], "tn": counts[:, 2], "fn": counts[:, 3]}
    else:
        label = y_true != 0  # Keras casts y_true to bool
        if multi_label:
            if y_pred.ndim != 2:
                raise ValueError(f"`y_pred` must have rank 2 when `multi_label=True`. Found shape {y_pred.shape}")
        else:
            label = label.reshape(-1)
            y_pred = y_pred.reshape(-1)
            weights = None if weights is None else weights.reshape(-1)
        w = np.ones(y_pred.shape) if weights is None else weights
        true_w = label * w
        false_w = (~label) * w
        if thresholds_distributed_evenly:
            found = _bucket_counts(y_pred, true_w, false_w, len(thr32), with_epsilon)
        else:
            pos = y_pred[None] > thr32.reshape((-1,) + (1,) * y_pred.ndim)  # (T, ...) predicted positive
            tp = np.sum(pos * true_w, axis=1)
            fp = np.sum(pos * false_w, axis=1)
            found = {"tp": tp, "fp": fp, "tn": np.sum(false_w, axis=0) - fp, "fn": np.sum(true_w, axis=0) - tp}
    for kind in state:
        state[kind] += np.asarray(found[kind], dtype=_F32).reshape(state[kind].shape)


def _bucket_counts(y_pred, true_w, false_w, num_thresholds, with_epsilon):
    """Keras's optimized path for evenly spaced thresholds: bucket ``ceil(p (T - 1)) - 1`` of the clipped
    prediction, then reversed cumulative sums."""
    p = np.clip(y_pred, _F32(0.0), _F32(1.0))
    bucket = np.ceil(p * _F32(num_thresholds - 1)) - _F32(1.0)
    if with_epsilon:
        bucket = np.maximum(bucket, _F32(0.0))  # relu: predictions in [0, 1] pass the -eps threshold
    valid = np.isfinite(bucket) & (bucket >= 0)
    index = np.where(valid, bucket, 0).astype(np.int64)

    def cumulative(w):
        if w.ndim == 1:
            sums = np.bincount(index[valid], weights=w[valid], minlength=num_thresholds)
            return np.cumsum(sums[::-1])[::-1]
        out = np.empty((num_thresholds, w.shape[1]))
        for j in range(w.shape[1]):
            v = valid[:, j]
            sums = np.bincount(index[v, j], weights=w[v, j], minlength=num_thresholds)
            out[:, j] = np.cumsum(sums[::-1])[::-1]
        return out

    tp = cumulative(true_w)
    fp = cumulative(false_w)
    return {"tp": tp, "fp": fp, "tn": np.sum(false_w, axis=0) - fp, "fn": np.sum(true_w, axis=0) - tp}


class _ConfusionMatrixConditionCount(Metric):
    _kind = None
    _state_names = ("accumulator",)

    def __init__(self, thresholds=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.thresholds = _parse_init_thresholds(thresholds, default_threshold=0.5)
        self._thresholds_distributed_evenly = _is_evenly_distributed_thresholds(self.thresholds)
        self.accumulator = np.zeros(len(self.thresholds), dtype=_F32)

    def update_state(self, y_true, y_pred, sample_weight=None):
        _update_confusion({self._kind: self.accumulator}, y_true, y_pred, self.thresholds,
                          thresholds_distributed_evenly=self._thresholds_distributed_evenly,
                          sample_weight=sample_weight)

    def result(self):
        return _out(self.accumulator[0] if len(self.thresholds) == 1 else self.accumulator)

    def reset_state(self):
        self.accumulator[...] = 0.0

    def get_config(self):
        config = super().get_config()
        config["thresholds"] = self.init_thresholds
        return config


class TruePositives(_ConfusionMatrixConditionCount):
    """Weighted count of ``y_pred > threshold`` where ``y_true`` is true."""
    _kind = "tp"


class FalsePositives(_ConfusionMatrixConditionCount):
    """Weighted count of ``y_pred > threshold`` where ``y_true`` is false."""
    _kind = "fp"


class TrueNegatives(_ConfusionMatrixConditionCount):
    """Weighted count of ``y_pred <= threshold`` where ``y_true`` is false."""
    _kind = "tn"


class FalseNegatives(_ConfusionMatrixConditionCount):
    """Weighted count of ``y_pred <= threshold`` where ``y_true`` is true."""
    _kind = "fn"


class _PrecisionRecall(Metric):
    _other = None  # 'fp' for precision, 'fn' for recall
    _state_names = ("true_positives",)

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        default_threshold = 0.5 if top_k is None else NEG_INF
        self.thresholds = _parse_init_thresholds(thresholds, default_threshold=default_threshold)
        self._thresholds_distributed_evenly = _is_evenly_distributed_thresholds(self.thresholds)
        self.reset_state()

    def reset_state(self):
        self.true_positives = np.zeros(len(self.thresholds), dtype=_F32)
        setattr(self, self._other_name, np.zeros(len(self.thresholds), dtype=_F32))

    def update_state(self, y_true, y_pred, sample_weight=None):
        _update_confusion({"tp": self.true_positives, self._other: getattr(self, self._other_name)}, y_true, y_pred,
                          self.thresholds, thresholds_distributed_evenly=self._thresholds_distributed_evenly,
                          top_k=self.top_k, class_id=self.class_id, sample_weight=sample_weight)

    def result(self):
        # Precision: tp / (tp + fp); Recall: tp / (tp + fn) (divide_no_nan)
        tp = self.true_positives
        r = _divide_no_nan(tp, tp + getattr(self, self._other_name))
        return _out(r[0] if len(self.thresholds) == 1 else r)

    @property
    def variables(self):
        return [self.true_positives, getattr(self, self._other_name)]

    def get_config(self):
        config = super().get_config()
        config.update({"thresholds": self.init_thresholds, "top_k": self.top_k, "class_id": self.class_id})
        return config


class Precision(_PrecisionRecall):
    """``tp / (tp + fp)`` at ``thresholds`` (default 0.5), optionally over the ``top_k`` predictions or
    one ``class_id``."""
    _other, _other_name = "fp", "false_positives"


class Recall(_PrecisionRecall):
    """``tp / (tp + fn)`` at ``thresholds`` (default 0.5), optionally over the ``top_k`` predictions or
    one ``class_id``."""
    _other, _other_name = "fn", "false_negatives"


class _SensitivitySpecificityBase(Metric):
    """Counts at ``num_thresholds`` evenly spaced thresholds ``[0, 1/(n-1), ..., 1]`` (0.5 alone when
    ``num_thresholds`` is 1); ``result`` is the largest ``dependent`` rate over the thresholds where the
    ``constrained`` rate is at least ``value`` (0 when none is), as Keras 3."""

    _bound = None  # the argument name of the bound: 'specificity', 'sensitivity', 'recall' or 'precision'
    _state_names = ("true_positives", "true_negatives", "false_positives", "false_negatives")

    def __init__(self, value, num_thresholds=200, class_id=None, name=None, dtype=None):
        if value < 0 or value > 1:
            raise ValueError(f"Argument `{self._bound}` must be in the range [0, 1]. Received: {self._bound}={value}")
        if num_thresholds <= 0:
            raise ValueError(f"Argument `num_thresholds` must be an integer > 0. Received: "
                             f"num_thresholds={num_thresholds}")
        super().__init__(name=name, dtype=dtype)
        self.value = value
        setattr(self, self._bound, value)
        self.num_thresholds = num_thresholds
        self.class_id = class_id
        if num_thresholds == 1:
            self.thresholds = [0.5]
            self._thresholds_distributed_evenly = False
        else:
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self.thresholds = [0.0] + inner + [1.0]
            self._thresholds_distributed_evenly = True
        self.reset_state()

    def reset_state(self):
        for n in self._state_names:
            setattr(self, n, np.zeros(len(self.thresholds), dtype=_F32))

    def update_state(self, y_true, y_pred, sample_weight=None):
        _update_confusion({"tp": self.true_positives, "tn": self.true_negatives, "fp": self.false_positives,
                           "fn": self.false_negatives}, y_true, y_pred, self.thresholds,
                          thresholds_distributed_evenly=self._thresholds_distributed_evenly,
                          class_id=self.class_id, sample_weight=sample_weight)

    def _rates(self):
        tp, tn, fp, fn = self.true_positives, self.true_negatives, self.false_positives, self.false_negatives
        return {"sensitivity": _divide_no_nan(tp, tp + fn), "specificity": _divide_no_nan(tn, tn + fp),
                "recall": _divide_no_nan(tp, tp + fn), "precision": _divide_no_nan(tp, tp + fp)}

    def result(self):
        rates = self._rates()
        constrained, dependent = rates[self._bound], rates[self._dependent]
        # Keras: max(where(constrained >= value, dependent, 0), initial=0)
        return _out(np.max(np.where(constrained >= _F32(self.value), dependent, _F32(0.0)), initial=_F32(0.0)))

    def get_config(self):
        config = super().get_config()
        config.update({"class_id": self.class_id, "num_thresholds": self.num_thresholds,
                       self._bound: getattr(self, self._bound)})
        return config


class SensitivityAtSpecificity(_SensitivitySpecificityBase):
    """The best sensitivity (recall) over the thresholds whose specificity is at least ``specificity``."""
    _bound, _dependent = "specificity", "sensitivity"

    def __init__(self, specificity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(specificity, num_thresholds=num_thresholds, class_id=class_id, name=name, dtype=dtype)


class SpecificityAtSensitivity(_SensitivitySpecificityBase):
    """The best specificity over the thresholds whose sensitivity is at least ``sensitivity``."""
    _bound, _dependent = "sensitivity", "specificity"

    def __init__(self, sensitivity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(sensitivity, num_thresholds=num_thresholds, class_id=class_id, name=name, dtype=dtype)


class PrecisionAtRecall(_SensitivitySpecificityBase):
    """The best precision over the thresholds whose recall is at least ``recall``."""
    _bound, _dependent = "recall", "precision"

    def __init__(self, recall, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(recall, num_thresholds=num_thresholds, class_id=class_id, name=name, dtype=dtype)


class RecallAtPrecision(_SensitivitySpecificityBase):
    """The best recall over the thresholds whose precision is at least ``precision``."""
    _bound, _dependent = "precision", "recall"

    def __init__(self, precision, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(precision, num_thresholds=num_thresholds, class_id=class_id, name=name, dtype=dtype)


_CURVES = {"roc": "ROC", "pr": "PR", "prgain": "PRGAIN"}
_SUMMATIONS = {"interpolation": "interpolation", "majoring": "majoring", "minoring": "minoring"}


class AUC(Metric):
    """Area under the ROC (default) or PR curve, approximated over ``num_thresholds`` thresholds (Keras 3)."""

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name=None, dtype=None,
                 thresholds=None, multi_label=False, num_labels=None, label_weights=None, from_logits=False):
        if str(curve).lower() not in _CURVES:
            raise ValueError(f'Invalid AUC curve value: "{curve}". Expected values are ["PR", "ROC", "PRGAIN"]')
        if str(summation_method).lower() not in _SUMMATIONS:
            raise ValueError(f'Invalid AUC summation method value: "{summation_method}". '
                             'Expected values are ["interpolation", "majoring", "minoring"]')
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            self.num_thresholds = len(thresholds) + 2
            thresholds = sorted(_to_list(thresholds))
            self._thresholds_distributed_evenly = _is_evenly_distributed_thresholds(
                np.array([0.0] + thresholds + [1.0]))
        else:
            if num_thresholds <= 1:
                raise ValueError(f"Argument `num_thresholds` must be an integer > 1. Received: "
                                 f"num_thresholds={num_thresholds}")
            self.num_thresholds = num_thresholds
            # Keras: (num_thresholds - 2) thresholds evenly inside (0, 1)
            thresholds = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._thresholds_distributed_evenly = True
        # Keras: endpoints -eps and 1 + eps catch predictions of exactly 0 and 1
        self._thresholds = np.array([0.0 - EPSILON] + thresholds + [1.0 + EPSILON])
        self.curve = _CURVES[str(curve).lower()]
        self.summation_method = _SUMMATIONS[str(summation_method).lower()]
        super().__init__(name=name, dtype=dtype)
        self.multi_label = multi_label
        self.num_labels = num_labels
        self.label_weights = None if label_weights is None else np.asarray(label_weights, dtype=_F32)
        self._from_logits = from_logits
        self._built = False
        if self.multi_label:
            if num_labels:
                self._build((None, num_labels))
        else:
            if num_labels:
                raise ValueError("`num_labels` is needed only when `multi_label` is True.")
            self._build(None)

    @property
    def thresholds(self):
        return list(self._thresholds)

    def _build(self, shape):
        if self.multi_label:
            if len(shape) != 2:
                raise ValueError(f"`y_pred` must have rank 2 when `multi_label=True`. Found rank {len(shape)}. "
                                 f"Full shape received for `y_pred`: {shape}")
            self._num_labels = shape[1]
            variable_shape = (self.num_thresholds, self._num_labels)
        else:
            variable_shape = (self.num_thresholds,)
        self._variable_shape = variable_shape
        self.true_positives = np.zeros(variable_shape, dtype=_F32)
        self.false_positives = np.zeros(variable_shape, dtype=_F32)
        self.true_negatives = np.zeros(variable_shape, dtype=_F32)
        self.false_negatives = np.zeros(variable_shape, dtype=_F32)
        self._built = True

    @property
    def variables(self):
        if not self._built:
            return []
        return [self.true_positives, self.false_positives, self.true_negatives, self.false_negatives]

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = _f32(y_pred, "y_pred")
        if not self._built:
            self._build(y_pred.shape)
        if self._from_logits:
            y_pred = _sigmoid(y_pred).astype(_F32)
        _update_confusion({"tp": self.true_positives, "tn": self.true_negatives, "fp": self.false_positives,
                           "fn": self.false_negatives}, y_true, y_pred, self._thresholds,
                          thresholds_distributed_evenly=self._thresholds_distributed_evenly,
                          sample_weight=sample_weight, multi_label=self.multi_label,
                          label_weights=None if self.multi_label else self.label_weights)

    def _average(self, by_label):
        if self.label_weights is None:
            return np.mean(by_label, dtype=_F32)
        return _divide_no_nan(np.sum(by_label * self.label_weights, dtype=_F32), np.sum(self.label_weights))

    def interpolate_pr_auc(self):
        """Keras (Davis & Goadrich): precision interpolated along the predicted-positive count."""
        n = self.num_thresholds
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[:n - 1] - tp[1:]
        p = tp + fp
        dp = p[:n - 1] - p[1:]
        prec_slope = _divide_no_nan(dtp, np.maximum(dp, _F32(0.0)))
        intercept = tp[1:] - prec_slope * p[1:]
        safe_p_ratio = np.where((p[:n - 1] > 0) & (p[1:] > 0),
                                _divide_no_nan(p[:n - 1], np.maximum(p[1:], _F32(0.0))), _F32(1.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = np.log(safe_p_ratio).astype(_F32)
        # Keras: sum(slope * (dtp + intercept * log(p_A / p_B)) / (tp_B + fn_B))
        pr_auc_increment = _divide_no_nan(prec_slope * (dtp + intercept * log_ratio),
                                          np.maximum(tp[1:] + fn[1:], _F32(0.0)))
        if self.multi_label:
            return self._average(np.sum(pr_auc_increment, axis=0, dtype=_F32))
        return np.sum(pr_auc_increment, dtype=_F32)

    def result(self):
        if not self._built:
            return 0.0
        n = self.num_thresholds
        if self.curve == "PR" and self.summation_method == "interpolation":
            return _out(self.interpolate_pr_auc())
        tp, fp, tn, fn = self.true_positives, self.false_positives, self.true_negatives, self.false_negatives
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x = _divide_no_nan(fp, fp + tn)  # false positive rate
            y = recall
        elif self.curve == "PR":
            x = recall
            y = _divide_no_nan(tp, tp + fp)  # precision
        else:  # PRGAIN
            scaling = _divide_no_nan(tp + fn, tn + fp)
            recall_gain = _F32(1.0) - scaling * _divide_no_nan(fn, tp)
            precision_gain = _F32(1.0) - scaling * _divide_no_nan(fp, tp)
            recall_gain = np.where(tp == 0, _F32(0.0), recall_gain)
            precision_gain = np.where(tp == 0, _F32(1.0), precision_gain)
            x = np.maximum(recall_gain, _F32(0.0))
            y = precision_gain
        if self.summation_method == "interpolation":
            heights = (y[:n - 1] + y[1:]) / _F32(2.0)  # Keras: trapezoids
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:n - 1], y[1:])
        else:
            heights = np.maximum(y[:n - 1], y[1:])
        # Keras: auc = sum((x[i] - x[i+1]) * heights[i])
        riemann_terms = (x[:n - 1] - x[1:]) * heights
        if self.multi_label:
            return _out(self._average(np.sum(riemann_terms, axis=0, dtype=_F32)))
        return _out(np.sum(riemann_terms, dtype=_F32))

    def reset_state(self):
        if self._built:
            for arr in self.variables:
                arr[...] = 0.0

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
            "from_logits": self._from_logits,
        })
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config

"""F-scores (keras/src/metrics/f_score_metrics.py): FBetaScore and F1Score, per class
(``average=None``) or micro / macro / weighted averages; threshold None takes each row's maximum as
positive."""
import numpy as np

from gradsmith.losses import EPSILON
from gradsmith.losses.reduction import _f32
from gradsmith.metrics.base import _F32, Metric, _out

__all__ = ["FBetaScore", "F1Score"]


class FBetaScore(Metric):
    """F-beta score per class (``average=None``) or averaged ('micro', 'macro', 'weighted')."""

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError("Invalid `average` argument value. Expected one of: {None, 'micro', 'macro', "
                             f"'weighted'}}. Received: average={average}")
        if not isinstance(beta, float):
            raise ValueError(f"Invalid `beta` argument value. It should be a Python float. Received: beta={beta} of "
                             f"type '{type(beta)}'")
        if beta <= 0.0:
            raise ValueError(f"Invalid `beta` argument value. It should be > 0. Received: beta={beta}")
        if threshold is not None:
            if not isinstance(threshold, float):
                raise ValueError("Invalid `threshold` argument value. It should be a Python float. Received: "
                                 f"threshold={threshold} of type '{type(threshold)}'")
            if threshold > 1.0 or threshold <= 0.0:
                raise ValueError("Invalid `threshold` argument value. It should verify 0 < threshold <= 1. "
                                 f"Received: threshold={threshold}")
        self.average = average
        self.beta = beta
        self.threshold = threshold
        self.axis = None if average == "micro" else 0
        self._built = False

    def _build(self, y_true_shape, y_pred_shape):
        if len(y_pred_shape) != 2 or len(y_true_shape) != 2:
            raise ValueError("FBetaScore expects 2D inputs with shape (batch_size, output_dim). Received input "
                             f"shapes: y_pred.shape={y_pred_shape} and y_true.shape={y_true_shape}.")
        num_classes = y_pred_shape[-1]
        shape = () if self.average == "micro" else (num_classes,)
        self.true_positives = np.zeros(shape, dtype=_F32)
        self.false_positives = np.zeros(shape, dtype=_F32)
        self.false_negatives = np.zeros(shape, dtype=_F32)
        self.intermediate_weights = np.zeros(shape, dtype=_F32)
        self._built = True

    @property
    def variables(self):
        if not self._built:
            return []
        return [self.true_positives, self.false_positives, self.false_negatives, self.intermediate_weights]

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = _f32(y_true, "y_true")
        y_pred = _f32(y_pred, "y_pred")
        if not self._built:
            self._build(y_true.shape, y_pred.shape)
        if self.threshold is None:
            # Keras: the row maximum is the positive class (an all-zero row has none)
            threshold = np.max(y_pred, axis=-1, keepdims=True)
            y_pred = (y_pred >= threshold) & (np.abs(y_pred) > 1e-9)
        else:
            y_pred = y_pred > _F32(self.threshold)
        y_pred = y_pred.astype(_F32)
        # Keras: val * expand_dims(sample_weight, 1). Weights of shape (N,) weigh rows; other shapes broadcast
        # as Keras's do ((N, 1) -> (N, 1, 1) spreads over an (N, N, C) grid: a scalar state (micro) takes its
        # sum, per-class state refuses it).
        w = None if sample_weight is None else np.expand_dims(_f32(sample_weight, "sample_weight"), 1)

        def weighted_sum(val):
            if w is not None:
                val = val * w
            return np.sum(val, axis=self.axis, dtype=_F32)

        one = _F32(1.0)
        # Keras: tp += sum(p t), fp += sum(p (1 - t)), fn += sum((1 - p) t), weights += sum(t)
        # In place: with average='micro' the state is 0-d (axis=None sums to a NumPy scalar, which would
        # replace the array and break reset_state and the variables' type).
        self.true_positives += weighted_sum(y_pred * y_true)
        self.false_positives += weighted_sum(y_pred * (one - y_true))
        self.false_negatives += weighted_sum((one - y_pred) * y_true)
        self.intermediate_weights += weighted_sum(y_true)

    def result(self):
        if not self._built:
            return 0.0
        eps = _F32(EPSILON)
        tp = self.true_positives
        # Keras: precision = tp / (tp + fp + eps); recall = tp / (tp + fn + eps)
        precision = tp / (tp + self.false_positives + eps)
        recall = tp / (tp + self.false_negatives + eps)
        beta2 = _F32(self.beta ** 2)
        # Keras: f = (1 + beta^2) * p * r / (beta^2 p + r + eps)
        f_score = (precision * recall) / (beta2 * precision + recall + eps) * (_F32(1.0) + beta2)
        if self.average == "weighted":
            weights = self.intermediate_weights / (np.sum(self.intermediate_weights, dtype=_F32) + eps)
            f_score = np.sum(f_score * weights, dtype=_F32)
        elif self.average is not None:  # micro, macro
            f_score = np.mean(f_score, dtype=_F32)
        return _out(f_score)

    def reset_state(self):
        if self._built:
            for arr in self.variables:
                arr[...] = 0.0

    def get_config(self):
        config = super().get_config()
        config.update({"average": self.average, "beta": self.beta, "threshold": self.threshold})
        return config


class F1Score(FBetaScore):
    """F1 score: FBetaScore with ``beta=1``."""

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        del config["beta"]
        return config

"""Metric classes against Keras 3's semantics, on 1-D ``(n,)``, 2-D and sample-weighted inputs (issue 14).

Keras is not a dependency: each expected number below is computed by hand from the rule in
keras/src/metrics/*.py that the case cites (``reduction_metrics.Mean``/``MeanMetricWrapper``,
``confusion_metrics``, ``f_score_metrics``, ``hinge_metrics``, ``probabilistic_metrics`` and the loss
functions they wrap in keras/src/losses/losses.py).

Rules used:
  MEAN   MeanMetricWrapper: values = fn(y_true, y_pred) (the loss functions reduce the last axis, so a
         1-D batch gives ONE value); Mean.update_state: total += sum(w v), count += sum(w), or the number
         of values (1 for a scalar); result = total / count.
  CONF   Precision/Recall: tp/fp/fn summed with the sample weights over every element
         (predicted positive iff y_pred > threshold); precision = tp/(tp+fp), recall = tp/(tp+fn).
  AUC    AUC(ROC, interpolation): the trapezoid under the weighted ROC curve; with every score
         separated by a threshold that is the weighted Mann-Whitney statistic.
  F      FBetaScore: tp/fp/fn per class (average=None/macro/weighted) or over everything (micro,
         axis=None); f = (1+b^2) p r / (b^2 p + r + eps); micro/macro return the mean (a scalar).
"""
import math

import numpy as np
import pytest

import gradsmith as keras

L8, L6, L5 = -math.log(0.8), -math.log(0.6), -math.log(0.5)

YT1, YP1, SW1 = [0, 1, 1, 0], [0.2, 0.7, 0.4, 0.9], [1.0, 2.0, 3.0, 4.0]
# CONF by hand: positive predictions at 0.7 (true, w 2) and 0.9 (false, w 4); 0.4 is a missed positive (w 3)

CASES = [
    # (id, metric factory, batches [(y_true, y_pred, sample_weight)], expected, rule)
    ("precision-1d-weighted", lambda: keras.metrics.Precision(), [(YT1, YP1, SW1)], 2 / 6, "CONF: tp 2, fp 4"),
    ("precision-2d-weighted", lambda: keras.metrics.Precision(),
     [(np.reshape(YT1, (4, 1)), np.reshape(YP1, (4, 1)), SW1)], 2 / 6, "CONF, (n,1) same as (n,)"),
    ("precision-1d", lambda: keras.metrics.Precision(), [(YT1, YP1, None)], 1 / 2, "CONF: tp 1, fp 1"),
    ("precision-1d-thresholds", lambda: keras.metrics.Precision(thresholds=[0.3, 0.8]), [(YT1, YP1, SW1)],
     [5 / 9, 0.0], "CONF per threshold: >0.3 tp 2+3 fp 4; >0.8 tp 0 fp 4"),
    ("recall-1d-weighted", lambda: keras.metrics.Recall(), [(YT1, YP1, SW1)], 2 / 5, "CONF: tp 2, fn 3"),
    ("recall-2d-weighted", lambda: keras.metrics.Recall(),
     [(np.reshape(YT1, (4, 1)), np.reshape(YP1, (4, 1)), SW1)], 2 / 5, "CONF"),
    ("recall-1d", lambda: keras.metrics.Recall(), [(YT1, YP1, None)], 1 / 2, "CONF: tp 1, fn 1"),
    ("auc-1d-weighted", lambda: keras.metrics.AUC(), [(YT1, YP1, SW1)], (2 * 1 + 3 * 1) / (5 * 5),
     "AUC: weighted pairs pos>neg / (sum w+ * sum w-)"),
    ("auc-2d-weighted", lambda: keras.metrics.AUC(),
     [(np.reshape(YT1, (4, 1)), np.reshape(YP1, (4, 1)), SW1)], 0.2, "AUC"),
    ("auc-1d", lambda: keras.metrics.AUC(), [(YT1, YP1, None)], 2 / 4, "AUC: 2 of 4 pairs"),
    ("f1-micro-multilabel", lambda: keras.metrics.F1Score(average="micro", threshold=0.5),
     [([[1, 1, 1], [1, 0, 0], [1, 1, 0]], [[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]], None)],
     2 / 3, "F micro: tp 4, fp 2, fn 2"),
    ("f1-none-multilabel", lambda: keras.metrics.F1Score(threshold=0.5),
     [([[1, 1, 1], [1, 0, 0], [1, 1, 0]], [[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]], None)],
     [0.5, 0.8, 2 / 3], "F per class (Keras's docstring example)"),
    ("f1-micro-weighted", lambda: keras.metrics.F1Score(average="micro", threshold=0.5),
     [([[1, 0], [0, 1]], [[0.9, 0.8], [0.1, 0.2]], [1.0, 3.0])], 2 * (1 / 2) * (1 / 4) / (1 / 2 + 1 / 4),
     "F micro weighted: tp 1, fp 1, fn 3 -> p 1/2, r 1/4"),
    ("hinge-1d-two-batches", lambda: keras.metrics.Hinge(),
     [([0, 1], [0.3, 0.8], None), ([1, 1, 0], [2.0, -0.5, -2.0], None)], (0.75 + 0.5) / 2,
     "MEAN: 1-D batch -> one value each (1.3, 0.2 -> 0.75; 0, 1.5, 0 -> 0.5)"),
    ("hinge-2d-weighted", lambda: keras.metrics.Hinge(),
     [([[0, 1], [1, 1]], [[0.3, 0.8], [2.0, 0.5]], [1.0, 3.0])], (0.75 * 1 + 0.25 * 3) / 4,
     "MEAN: rows 0.75, 0.25"),
    ("squared-hinge-2d-weighted", lambda: keras.metrics.SquaredHinge(),
     [([[0, 1], [1, 1]], [[0.3, 0.8], [2.0, 0.5]], [1.0, 3.0])], (0.865 * 1 + 0.125 * 3) / 4,
     "MEAN: rows (1.69+0.04)/2, (0+0.25)/2"),
    ("categorical-hinge", lambda: keras.metrics.CategoricalHinge(), [([[0, 1]], [[0.3, 0.6]], None)], 0.7,
     "MEAN: max(0, neg - pos + 1)"),
    ("bce-2d-weighted", lambda: keras.metrics.BinaryCrossentropy(), [([[1], [0]], [[0.8], [0.4]], [1.0, 3.0])],
     (L8 + 3 * L6) / 4, "MEAN of -log p"),
    ("bce-1d-two-batches", lambda: keras.metrics.BinaryCrossentropy(),
     [([1, 0], [0.8, 0.4], None), ([1], [0.5], None)], ((L8 + L6) / 2 + L5) / 2, "MEAN: one value per 1-D batch"),
    ("cce-weighted", lambda: keras.metrics.CategoricalCrossentropy(),
     [([[0, 1], [1, 0]], [[0.2, 0.8], [0.6, 0.4]], [2.0, 1.0])], (2 * L8 + L6) / 3, "MEAN"),
    ("scce-1d-labels-weighted", lambda: keras.metrics.SparseCategoricalCrossentropy(),
     [([1, 0], [[0.2, 0.8], [0.6, 0.4]], [2.0, 1.0])], (2 * L8 + L6) / 3, "MEAN: one value per row"),
    ("poisson", lambda: keras.metrics.Poisson(), [([[1, 2]], [[1, 4]], None)], (1 + 4 - 2 * math.log(4)) / 2,
     "MEAN of mean(p - t log(p + eps))"),
    ("kld", lambda: keras.metrics.KLDivergence(), [([[0.5, 0.5]], [[0.25, 0.75]], None)],
     0.5 * math.log(2) + 0.5 * math.log(2 / 3), "MEAN of sum t log(t / p)"),
]


@pytest.mark.parametrize("id,make,batches,expected,rule", CASES, ids=[c[0] for c in CASES])
def test_metric_matches_keras(id, make, batches, expected, rule):
    m = make()
    for y_true, y_pred, sw in batches:
        m.update_state(np.asarray(y_true, np.float32), np.asarray(y_pred, np.float32),
                       sample_weight=None if sw is None else np.asarray(sw, np.float32))
    got = m.result()
    if np.ndim(expected) == 0:
        assert isinstance(got, float), f"{id}: a scalar result is a float, got {type(got)}"
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-6, err_msg=f"{id} ({rule})")


def test_f1_micro_state_stays_an_array_and_resets():
    """average='micro' keeps 0-d state arrays (Keras: variables of shape ()); reset_state zeroes them."""
    m = keras.metrics.F1Score(average="micro", threshold=0.5)
    yt = np.array([[1, 1, 1], [1, 0, 0], [1, 1, 0]], np.float32)
    yp = np.array([[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]], np.float32)
    m.update_state(yt, yp)
    m.update_state(yt, yp)
    assert all(isinstance(v, np.ndarray) and v.shape == () for v in m.variables)
    assert m.result() == pytest.approx(2 / 3, rel=1e-5)
    m.reset_state()
    assert m.result() == 0.0
    m.update_state(yt, yp)
    assert m.result() == pytest.approx(2 / 3, rel=1e-5)

"""gradsmith.metrics (Keras 3 metrics): Keras's documented examples, independent NumPy computations of the
Keras definitions (AUC's thresholds and Riemann sums, PR interpolation, F-scores), accumulation over
batches, compile's 'accuracy' resolution, lookup and config round trips."""
import json

import numpy as np
import pytest

import gradsmith
from gradsmith import losses as L
from gradsmith import metrics as M
from gradsmith import ops


def result_of(metric, *batches):
    metric.reset_state()
    for batch in batches:
        metric.update_state(*batch[:2], **({"sample_weight": batch[2]} if len(batch) > 2 else {}))
    return metric.result()


# --------------------------------------------------------------------------- Keras's documented examples
def test_mean_and_sum_examples():
    m = M.Mean()
    m.update_state([1, 3, 5, 7])
    assert m.result() == 4.0
    m.reset_state()
    m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    assert m.result() == 2.0
    s = M.Sum()
    s.update_state([1, 3, 5, 7])
    assert s.result() == 16.0
    s.reset_state()
    s.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    assert s.result() == 4.0
    assert M.Mean().result() == 0.0  # divide_no_nan
    assert type(m.result()) is float


def test_accuracy_examples():
    t, p = [[1], [2], [3], [4]], [[0], [2], [3], [4]]
    assert result_of(M.Accuracy(), (t, p)) == 0.75
    assert result_of(M.Accuracy(), (t, p, [1, 1, 0, 0])) == 0.5
    t, p = [[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]]
    assert result_of(M.BinaryAccuracy(), (t, p)) == 0.75
    assert result_of(M.BinaryAccuracy(), (t, p, [1, 0, 0, 1])) == 0.5
    t, p = [[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]]
    assert result_of(M.CategoricalAccuracy(), (t, p)) == 0.5
    assert result_of(M.CategoricalAccuracy(), (t, p, [0.7, 0.3])) == pytest.approx(0.3)
    t, p = [[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]]
    assert result_of(M.SparseCategoricalAccuracy(), (t, p)) == 0.5
    assert result_of(M.SparseCategoricalAccuracy(), (t, p, [0.7, 0.3])) == pytest.approx(0.3)
    t, p = [[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]]
    assert result_of(M.TopKCategoricalAccuracy(k=1), (t, p)) == 0.5
    assert result_of(M.TopKCategoricalAccuracy(k=1), (t, p, [0.7, 0.3])) == pytest.approx(0.3)
    assert result_of(M.SparseTopKCategoricalAccuracy(k=1), ([2, 1], p)) == 0.5
    assert result_of(M.SparseTopKCategoricalAccuracy(k=1), ([2, 1], p, [0.7, 0.3])) == pytest.approx(0.3)


def test_confusion_count_examples():
    assert result_of(M.TruePositives(), ([0, 1, 1, 1], [1, 0, 1, 1])) == 2.0
    assert result_of(M.TruePositives(), ([0, 1, 1, 1], [1, 0, 1, 1], [0, 0, 1, 0])) == 1.0
    assert result_of(M.FalsePositives(), ([0, 1, 0, 0], [0, 0, 1, 1])) == 2.0
    assert result_of(M.FalsePositives(), ([0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 0])) == 1.0
    assert result_of(M.TrueNegatives(), ([0, 1, 0, 0], [1, 1, 0, 0])) == 2.0
    assert result_of(M.TrueNegatives(), ([0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0])) == 1.0
    assert result_of(M.FalseNegatives(), ([0, 1, 1, 1], [0, 1, 0, 0])) == 2.0
    assert result_of(M.FalseNegatives(), ([0, 1, 1, 1], [0, 1, 0, 0], [0, 0, 1, 0])) == 1.0


def test_precision_recall_examples():
    assert result_of(M.Precision(), ([0, 1, 1, 1], [1, 0, 1, 1])) == pytest.approx(2 / 3, rel=1e-6)
    assert result_of(M.Precision(), ([0, 1, 1, 1], [1, 0, 1, 1], [0, 0, 1, 0])) == 1.0
    assert result_of(M.Precision(top_k=2), ([0, 0, 1, 1], [1, 1, 1, 1])) == 0.0
    assert result_of(M.Precision(top_k=4), ([0, 0, 1, 1], [1, 1, 1, 1])) == 0.5
    assert result_of(M.Recall(), ([0, 1, 1, 1], [1, 0, 1, 1])) == pytest.approx(2 / 3, rel=1e-6)
    assert result_of(M.Recall(), ([0, 1, 1, 1], [1, 0, 1, 1], [0, 0, 1, 0])) == 1.0
    assert result_of(M.Recall(top_k=2), ([0, 0, 1, 1], [1, 1, 1, 1])) == 0.0  # top 2 are the first two


def test_auc_examples():
    m = M.AUC(num_thresholds=3)
    m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])
    # thresholds [-1e-7, 0.5, 1 + 1e-7]: tp [2, 1, 0], fp [2, 0, 0], fn [0, 1, 2], tn [0, 2, 2]
    np.testing.assert_array_equal(m.true_positives, [2, 1, 0])
    np.testing.assert_array_equal(m.false_positives, [2, 0, 0])
    np.testing.assert_array_equal(m.false_negatives, [0, 1, 2])
    np.testing.assert_array_equal(m.true_negatives, [0, 2, 2])
    assert m.result() == 0.75
    m.reset_state()
    m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9], sample_weight=[1, 0, 0, 1])
    assert m.result() == 1.0


def test_f_score_examples():
    t = np.array([[1, 1, 1], [1, 0, 0], [1, 1, 0]], np.int32)
    p = np.array([[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]], np.float32)
    f1 = M.F1Score(threshold=0.5)
    f1.update_state(t, p)
    got = f1.result()
    assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == (3,)
    np.testing.assert_allclose(got, [0.5, 0.8, 0.6666667], rtol=1e-6)
    fb = M.FBetaScore(beta=2.0, threshold=0.5)
    fb.update_state(t, p)
    np.testing.assert_allclose(fb.result(), [0.3846154, 0.90909094, 0.8333334], rtol=1e-6)


def test_regression_and_crossentropy_metric_examples():
    t, p = [[0, 1], [0, 0]], [[1, 1], [0, 0]]
    assert result_of(M.MeanSquaredError(), (t, p)) == 0.25
    assert result_of(M.MeanSquaredError(), (t, p, [1, 0])) == 0.5
    assert result_of(M.MeanAbsoluteError(), (t, p)) == 0.25
    assert result_of(M.MeanAbsoluteError(), (t, p, [1, 0])) == 0.5
    assert result_of(M.RootMeanSquaredError(), (t, p)) == 0.5
    assert result_of(M.RootMeanSquaredError(), (t, p, [1, 0])) == pytest.approx(0.70710677, rel=1e-6)
    bt, bp = [[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]
    assert result_of(M.BinaryCrossentropy(), (bt, bp)) == pytest.approx(0.81492424, rel=1e-6)
    assert result_of(M.BinaryCrossentropy(), (bt, bp, [1, 0])) == pytest.approx(0.9162905, rel=1e-6)
    ct, cp = [[0, 1, 0], [0, 0, 1]], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]
    assert result_of(M.CategoricalCrossentropy(), (ct, cp)) == pytest.approx(1.1769392, rel=1e-6)
    assert result_of(M.CategoricalCrossentropy(), (ct, cp, [0.3, 0.7])) == pytest.approx(1.6271976, rel=1e-6)
    assert result_of(M.SparseCategoricalCrossentropy(), ([1, 2], cp)) == pytest.approx(1.1769392, rel=1e-6)
    assert result_of(M.SparseCategoricalCrossentropy(), ([1, 2], cp, [0.3, 0.7])) == pytest.approx(1.6271976,
                                                                                                     rel=1e-6)



def test_loss_metric_examples():
    """Keras 3.15's numbers for the metrics of the hinge, log-cosh, Poisson, MSLE, MAPE, KL and cosine losses."""
    bt, bp, w = [[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]], [0.3, 0.7]
    expected = {M.Hinge: (1.3, 1.38), M.SquaredHinge: (1.86, 2.02), M.LogCoshError: (0.14708981, 0.13787162),
                M.Poisson: (0.72907263, 0.63744354), M.MeanSquaredLogarithmicError: (0.1705593, 0.16915895),
                M.KLDivergence: (0.45814306, 0.27488464)}
    for cls, (plain, weighted) in expected.items():
        assert result_of(cls(), (bt, bp)) == pytest.approx(plain, rel=1e-6), cls.__name__
        assert result_of(cls(), (bt, bp, w)) == pytest.approx(weighted, rel=1e-6), cls.__name__
    assert result_of(M.CategoricalHinge(), ([[0, 1, 0], [1, 0, 0]], [[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]], w)) \
        == pytest.approx(0.73, rel=1e-6)
    assert result_of(M.CosineSimilarity(), ([[0, 1], [1, 1]], [[1, 0], [1, 1]])) == pytest.approx(0.5, rel=1e-6)
    mape = M.MeanAbsolutePercentageError()
    assert result_of(mape, ([[1, 2], [3, 4]], [[1.5, 2], [2, 5]])) == pytest.approx(27.083334, rel=1e-6)
    assert mape.name == "mean_absolute_percentage_error" and M.LogCoshError().name == "logcosh"
    for name, cls in (("mape", M.MeanAbsolutePercentageError), ("MSLE", M.MeanSquaredLogarithmicError),
                      ("poisson", M.Poisson), ("kl_divergence", M.KLDivergence), ("squared_hinge", M.SquaredHinge)):
        assert type(M.get(name)) is cls


# --------------------------------------------------------------------------- accumulation and Keras's rules
def test_accuracy_accumulates_over_batches(rng):
    batches = [(rng.integers(0, 2, (n, 1)), rng.uniform(0, 1, (n, 1))) for n in (3, 5, 8)]
    m = M.BinaryAccuracy()
    correct = total = 0
    for t, p in batches:
        m.update_state(t, p)
        correct += np.sum((p > 0.5) == (t == 1))
        total += len(t)
    assert m.result() == pytest.approx(correct / total, rel=1e-6)
    labels = [rng.integers(0, 4, n) for n in (3, 6)]
    preds = [rng.uniform(0, 1, (n, 4)) for n in (3, 6)]
    sw = [rng.uniform(0, 1, n) for n in (3, 6)]
    m = M.SparseCategoricalAccuracy()
    for t, p, w in zip(labels, preds, sw):
        m.update_state(t, p, sample_weight=w)
    hits = np.concatenate([(np.argmax(p, -1) == t) for t, p in zip(labels, preds)])
    weights = np.concatenate(sw)
    assert m.result() == pytest.approx(np.sum(hits * weights) / np.sum(weights), rel=1e-6)


def test_binary_accuracy_multi_column_and_threshold(rng):
    t = rng.integers(0, 2, (6, 3)).astype(np.float32)
    p = rng.uniform(0, 1, (6, 3)).astype(np.float32)
    want = np.mean(np.mean(((p > 0.7).astype(np.float32) == t), axis=-1))
    assert result_of(M.BinaryAccuracy(threshold=0.7), (t, p)) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.5, 1.5, 3])
def test_binary_accuracy_takes_any_threshold(rng, threshold):
    """Keras 3.15 takes any float threshold (no (0, 1) check): y_pred > threshold is the prediction, so
    logits work with threshold 0.0; the class, the function, the compiled 'binary_accuracy' and a config
    round trip all agree."""
    t = rng.integers(0, 2, (6, 3)).astype(np.float32)
    p = rng.normal(0, 1.5, (6, 3)).astype(np.float32)
    hits = ((p > np.float32(threshold)).astype(np.float32) == t).astype(np.float32)
    m = M.BinaryAccuracy(threshold=threshold)
    assert m.threshold == threshold and m.get_config()["threshold"] == threshold
    assert result_of(m, (t, p)) == pytest.approx(hits.mean(), rel=1e-6)
    assert result_of(M.BinaryAccuracy.from_config(m.get_config()), (t[:, 0], p[:, 0]), (t, p)) == \
        pytest.approx(np.concatenate([hits[:, 0], hits.mean(-1)]).mean(), rel=1e-6)  # 6 + 6 samples
    np.testing.assert_array_equal(M.binary_accuracy(t, p, threshold=threshold), hits)
    w = rng.uniform(0, 2, 6).astype(np.float32)
    assert result_of(M.BinaryAccuracy(threshold=threshold), (t, p, w)) == \
        pytest.approx(np.sum(hits.mean(-1) * w) / np.sum(w), rel=1e-6)
    wrapped = M.MeanMetricWrapper(M.binary_accuracy, threshold=threshold)
    assert result_of(wrapped, (t, p)) == pytest.approx(hits.mean(), rel=1e-6)


def test_one_dimensional_batches_count_each_element():
    # Keras >= 3.4 (keras-team/keras#19847): binary_accuracy is element-wise, so a 1-D batch of n
    # predictions is n values in the Mean (before, the batch's mean was ONE value)
    m = M.BinaryAccuracy()
    m.update_state([1, 0, 1, 1], [0.9, 0.1, 0.2, 0.8])  # 3 of 4
    m.update_state([1, 1], [0.9, 0.1])  # 1 of 2
    assert m.result() == pytest.approx(4 / 6)


def test_sparse_accuracy_with_out_of_range_labels_counts_no_match():
    p = [[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]
    assert result_of(M.SparseCategoricalAccuracy(), ([1, 0, 5], p)) == pytest.approx(2 / 3)


def test_in_top_k_ties_at_the_boundary():
    # TF in_top_k: classes tied with the k-th score are all inside the top k
    p = [[0.5, 0.5, 0.1], [0.2, 0.3, 0.3]]
    assert result_of(M.SparseTopKCategoricalAccuracy(k=1), ([1, 2], p)) == 1.0
    assert result_of(M.SparseTopKCategoricalAccuracy(k=1), ([2, 0], p)) == 0.0


def test_accuracy_uses_count_correct(monkeypatch, rng):
    calls = []
    real = ops.count_correct
    monkeypatch.setattr(ops, "count_correct", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    M.BinaryAccuracy().update_state(rng.integers(0, 2, (4, 1)), rng.uniform(0, 1, (4, 1)))
    M.CategoricalAccuracy().update_state(np.eye(3)[[0, 1, 2, 1]], rng.uniform(0, 1, (4, 3)))
    M.SparseCategoricalAccuracy().update_state([0, 1, 2, 1], rng.uniform(0, 1, (4, 3)))
    assert calls == ["binary", "categorical", "sparse"]


def test_precision_uses_binary_confusion_and_matches_numpy(monkeypatch, rng):
    calls = []
    real = ops.binary_confusion
    monkeypatch.setattr(ops, "binary_confusion", lambda *a, **k: calls.append(k.get("threshold")) or real(*a, **k))
    t = rng.integers(0, 2, 50)
    p = rng.uniform(0, 1, 50).astype(np.float32)
    prec = M.Precision(thresholds=[0.3, 0.6])
    rec = M.Recall(thresholds=[0.3, 0.6])
    prec.update_state(t, p)
    rec.update_state(t, p)
    assert calls == [np.float32(0.3), np.float32(0.6)] * 2
    for thr, got_p, got_r in zip((0.3, 0.6), prec.result(), rec.result()):
        pos = p > np.float32(thr)
        tp = np.sum(pos & (t == 1))
        assert got_p == pytest.approx(tp / np.sum(pos), rel=1e-6)
        assert got_r == pytest.approx(tp / np.sum(t == 1), rel=1e-6)


def test_precision_recall_weighted_class_id(rng):
    t = rng.integers(0, 2, (20, 3)).astype(np.float32)
    p = rng.uniform(0, 1, (20, 3)).astype(np.float32)
    w = rng.uniform(0, 2, 20).astype(np.float32)
    pos = p[:, 1] > 0.5
    lab = t[:, 1] == 1
    tp, fp, fn = (np.sum(w * (pos & lab)), np.sum(w * (pos & ~lab)), np.sum(w * (~pos & lab)))
    assert result_of(M.Precision(class_id=1), (t, p, w)) == pytest.approx(tp / (tp + fp), rel=1e-6)
    assert result_of(M.Recall(class_id=1), (t, p, w)) == pytest.approx(tp / (tp + fn), rel=1e-6)


def auc_by_hand(t, p, w, num_thresholds, curve="ROC"):
    """Keras's AUC definition, computed directly: counts of p > threshold at every threshold, then the
    Riemann sum (trapezoids for ROC; Davis-Goadrich interpolation for PR), in float64."""
    t = np.asarray(t, bool).reshape(-1)
    p = np.clip(np.asarray(p, np.float64).reshape(-1), 0, 1)
    w = np.ones_like(p) if w is None else np.asarray(w, np.float64).reshape(-1)
    thr = np.array([-1e-7] + [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)] + [1 + 1e-7])
    pos = p[None, :] > thr[:, None]
    tp = np.sum(pos * (t * w), axis=1)
    fp = np.sum(pos * (~t * w), axis=1)
    fn = np.sum(t * w) - tp
    tn = np.sum(~t * w) - fp
    div = lambda a, b: np.where(b == 0, 0.0, a / np.where(b == 0, 1.0, b))  # noqa: E731
    if curve == "ROC":
        x, y = div(fp, fp + tn), div(tp, tp + fn)
        return np.sum((x[:-1] - x[1:]) * (y[:-1] + y[1:]) / 2)
    dtp = tp[:-1] - tp[1:]
    pp = tp + fp
    dp = pp[:-1] - pp[1:]
    slope = div(dtp, np.maximum(dp, 0))
    intercept = tp[1:] - slope * pp[1:]
    ratio = np.where((pp[:-1] > 0) & (pp[1:] > 0), div(pp[:-1], np.maximum(pp[1:], 0)), 1.0)
    return np.sum(div(slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0)))


def test_auc_default_matches_definition_and_true_auc(rng):
    n = 400
    t = rng.integers(0, 2, n)
    p = np.clip(0.35 * t + rng.uniform(0, 0.65, n), 0, 1).astype(np.float32)
    m = M.AUC()
    assert m.num_thresholds == 200 and m.curve == "ROC" and m.summation_method == "interpolation"
    for lo in range(0, n, 128):  # several batches
        m.update_state(t[lo:lo + 128], p[lo:lo + 128])
    assert m.result() == pytest.approx(auc_by_hand(t, p, None, 200), rel=1e-5)
    # and it approximates the exact ROC AUC (Mann-Whitney)
    pos, neg = p[t == 1], p[t == 0]
    exact = np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :]))
    assert m.result() == pytest.approx(exact, abs=5e-3)


def test_auc_weighted_pr_logits_and_thresholds(rng):
    t = rng.integers(0, 2, 120)
    logits = (2 * t - 1 + rng.standard_normal(120)).astype(np.float32)
    probs = 1 / (1 + np.exp(-logits.astype(np.float64)))
    w = rng.uniform(0, 2, 120)
    assert result_of(M.AUC(from_logits=True), (t, logits, w)) == pytest.approx(auc_by_hand(t, probs, w, 200),
                                                                               rel=1e-4)
    assert result_of(M.AUC(curve="PR"), (t, probs)) == pytest.approx(auc_by_hand(t, probs, None, 200, "PR"),
                                                                     rel=1e-4)
    assert result_of(M.AUC(num_thresholds=11, curve="pr"), (t, probs, w)) == pytest.approx(
        auc_by_hand(t, probs, w, 11, "PR"), rel=1e-4)
    # explicit, unevenly spaced thresholds: counted by comparison, same definition
    m = M.AUC(thresholds=[0.1, 0.5, 0.6, 0.95])
    m.update_state(t, probs)
    thr = np.array([-1e-7, 0.1, 0.5, 0.6, 0.95, 1 + 1e-7])
    pos = probs[None] > thr[:, None]
    tp, fp = np.sum(pos & (t == 1), 1), np.sum(pos & (t == 0), 1)
    x, y = fp / np.sum(t == 0), tp / np.sum(t == 1)
    assert m.result() == pytest.approx(np.sum((x[:-1] - x[1:]) * (y[:-1] + y[1:]) / 2), rel=1e-6)


def test_auc_multi_label_averages_per_label(rng):
    t = rng.integers(0, 2, (60, 3))
    p = rng.uniform(0, 1, (60, 3)) * 0.7 + 0.3 * t
    per_label = [auc_by_hand(t[:, j], p[:, j], None, 200) for j in range(3)]
    assert result_of(M.AUC(multi_label=True), (t, p)) == pytest.approx(np.mean(per_label), rel=1e-5)
    lw = [1.0, 2.0, 0.5]
    assert result_of(M.AUC(multi_label=True, label_weights=lw), (t, p)) == pytest.approx(
        np.dot(per_label, lw) / np.sum(lw), rel=1e-5)
    assert result_of(M.AUC(), (t, p)) == pytest.approx(auc_by_hand(t, p, None, 200), rel=1e-5)  # flattened


def test_f_score_averages(rng):
    t = (rng.uniform(0, 1, (30, 4)) > 0.5).astype(np.float32)
    p = rng.uniform(0, 1, (30, 4)).astype(np.float32)
    pred = (p > 0.4).astype(np.float64)
    eps = 1e-7

    def f1(tp, fp, fn):
        prec, rec = tp / (tp + fp + eps), tp / (tp + fn + eps)
        return 2 * prec * rec / (prec + rec + eps)

    tp, fp, fn = (np.sum(pred * t, 0), np.sum(pred * (1 - t), 0), np.sum((1 - pred) * t, 0))
    per_class = f1(tp, fp, fn)
    np.testing.assert_allclose(result_of(M.F1Score(threshold=0.4), (t, p)), per_class, rtol=1e-5)
    assert result_of(M.F1Score(average="macro", threshold=0.4), (t, p)) == pytest.approx(np.mean(per_class), 1e-5)
    assert result_of(M.F1Score(average="micro", threshold=0.4), (t, p)) == pytest.approx(
        f1(tp.sum(), fp.sum(), fn.sum()), rel=1e-5)
    support = t.sum(0)
    assert result_of(M.F1Score(average="weighted", threshold=0.4), (t, p)) == pytest.approx(
        np.sum(per_class * support / (support.sum() + eps)), rel=1e-5)
    # threshold=None: each row's maximum is its positive class
    arg = np.eye(4)[np.argmax(p, -1)]
    tp, fp, fn = (np.sum(arg * t, 0), np.sum(arg * (1 - t), 0), np.sum((1 - arg) * t, 0))
    np.testing.assert_allclose(result_of(M.F1Score(), (t, p)), f1(tp, fp, fn), rtol=1e-5)
    with pytest.raises(ValueError):
        M.F1Score(average="mean")
    with pytest.raises(ValueError):
        M.F1Score(threshold=1)  # Keras requires a float


# --------------------------------------------------------------------------- compile's resolution
def test_resolve_accuracy():
    cases = [
        ("binary_crossentropy", (None, 1), M.BinaryAccuracy),
        (L.BinaryCrossentropy(from_logits=True), None, M.BinaryAccuracy),
        ("mse", (None, 1), M.BinaryAccuracy),
        ("sparse_categorical_crossentropy", (None, 10), M.SparseCategoricalAccuracy),
        (L.SparseCategoricalCrossentropy(from_logits=True), (None, 10), M.SparseCategoricalAccuracy),
        ("categorical_crossentropy", (None, 10), M.CategoricalAccuracy),
        (L.CategoricalCrossentropy(), None, M.CategoricalAccuracy),
    ]
    for loss, shape, cls in cases:
        for identifier in ("accuracy", "acc", "Accuracy"):
            m = M.resolve(identifier, loss, shape)
            assert type(m) is cls and m.name == identifier, (loss, shape, identifier)
    # Keras 3 decides from the shapes of y_true and y_pred when they are known
    assert type(M.resolve("accuracy", "mse", (None, 5), y_true_shape=(None,))) is M.SparseCategoricalAccuracy
    assert type(M.resolve("accuracy", "mse", (None, 5), y_true_shape=(None, 1))) is M.SparseCategoricalAccuracy
    assert type(M.resolve("accuracy", "binary_crossentropy", (None, 5), y_true_shape=(None, 5))) \
        is M.CategoricalAccuracy
    assert type(M.resolve("accuracy", None, (None, 1), y_true_shape=(None,))) is M.BinaryAccuracy


def test_resolve_other_identifiers():
    m = M.resolve("mse", "mse", (None, 1))
    assert type(m) is M.MeanSquaredError and m.name == "mse"
    m = M.resolve("AUC", None, None)
    assert type(m) is M.AUC and m.name == "AUC"
    auc = M.AUC(name="my_auc")
    assert M.resolve(auc, None, None) is auc and auc.name == "my_auc"

    def my_metric(y_true, y_pred):
        return np.abs(np.asarray(y_true) - np.asarray(y_pred)).max(axis=-1)

    m = M.resolve(my_metric, None, None)
    assert isinstance(m, M.MeanMetricWrapper) and m.name == "my_metric"
    m.update_state([[0.0, 1.0]], [[0.5, 0.0]])
    assert m.result() == 1.0
    assert M.resolve(None) is None


@pytest.mark.parametrize("identifier, cls", [
    ("accuracy", M.Accuracy), ("binary_accuracy", M.BinaryAccuracy), ("BinaryAccuracy", M.BinaryAccuracy),
    ("categorical_accuracy", M.CategoricalAccuracy), ("sparse_categorical_accuracy", M.SparseCategoricalAccuracy),
    ("AUC", M.AUC), ("auc", M.AUC), ("precision", M.Precision), ("Recall", M.Recall), ("f1_score", M.F1Score),
    ("mse", M.MeanSquaredError), ("MAE", M.MeanAbsoluteError), ("root_mean_squared_error", M.RootMeanSquaredError),
    ("bce", M.BinaryCrossentropy), ("top_k_categorical_accuracy", M.TopKCategoricalAccuracy),
    ("true_positives", M.TruePositives),
])
def test_get_by_name(identifier, cls):
    assert type(M.get(identifier)) is cls


def test_get_errors_and_passthrough():
    with pytest.raises(ValueError):
        M.get("not_a_metric")
    assert M.get(M.accuracy) is M.accuracy
    assert M.get(None) is None
    assert gradsmith.metrics is M


def test_auto_names_are_uniquified_as_keras():
    L._clear_names()
    assert M.Precision().name == "precision"
    assert M.Precision().name == "precision_1"
    assert M.AUC().name == "auc"
    assert M.AUC(name="x").name == "x"
    L._clear_names()
    assert M.Recall().name == "recall"


# --------------------------------------------------------------------------- config round trips
CONFIG_CASES = [
    M.Mean(name="m"), M.Sum(), M.Accuracy(), M.BinaryAccuracy(threshold=0.3), M.CategoricalAccuracy(),
    M.SparseCategoricalAccuracy(name="acc"), M.TopKCategoricalAccuracy(k=2), M.SparseTopKCategoricalAccuracy(k=3),
    M.Precision(thresholds=[0.2, 0.7]), M.Recall(top_k=2, class_id=1), M.TruePositives(thresholds=0.3),
    M.FalseNegatives(), M.AUC(num_thresholds=50, curve="PR", summation_method="minoring"),
    M.AUC(thresholds=[0.2, 0.4, 0.9], multi_label=True, num_labels=2, label_weights=[1.0, 0.5], from_logits=True),
    M.F1Score(average="macro", threshold=0.4), M.FBetaScore(beta=0.5), M.MeanSquaredError(),
    M.MeanAbsoluteError(), M.RootMeanSquaredError(), M.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
    M.CategoricalCrossentropy(label_smoothing=0.2), M.SparseCategoricalCrossentropy(from_logits=True),
    M.MeanMetricWrapper(L.mean_absolute_error, name="w"),
]


@pytest.mark.parametrize("metric", CONFIG_CASES, ids=lambda m: type(m).__name__)
def test_config_round_trip(metric):
    config = metric.get_config()
    assert config["name"] == metric.name and config["dtype"] == "float32"
    again = type(metric).from_config(config)
    assert type(again) is type(metric) and again.get_config() == config
    restored = M.deserialize(json.loads(json.dumps(M.serialize(metric))))
    assert type(restored) is type(metric) and restored.get_config() == config


def test_keras_config_keys():
    assert M.BinaryAccuracy().get_config() == {"name": "binary_accuracy", "dtype": "float32", "threshold": 0.5}
    assert M.F1Score().get_config() == {"name": "f1_score", "dtype": "float32", "average": None, "threshold": None}
    assert M.Precision(name="p").get_config() == {"name": "p", "dtype": "float32", "thresholds": None, "top_k": None,
                                                   "class_id": None}
    auc = M.AUC(name="a").get_config()
    assert auc == {"name": "a", "dtype": "float32", "num_thresholds": 200, "curve": "ROC",
                   "summation_method": "interpolation", "multi_label": False, "num_labels": None,
                   "label_weights": None, "from_logits": False}


def test_reset_state_and_call(rng):
    for metric in (M.AUC(), M.Precision(), M.F1Score(threshold=0.5), M.BinaryAccuracy(), M.RootMeanSquaredError()):
        t = rng.integers(0, 2, (8, 1)).astype(np.float32)
        p = rng.uniform(0, 1, (8, 1)).astype(np.float32)
        first = metric(t, p)  # __call__: update then result
        metric.update_state(1 - t, p)
        metric.reset_state()
        metric.update_state(t, p)
        np.testing.assert_array_equal(np.asarray(metric.result()), np.asarray(first))

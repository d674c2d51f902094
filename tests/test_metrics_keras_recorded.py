"""Every metric class against results recorded from real Keras 3 (issue 14).

tests/data/keras_metric_cases.json.gz (gzip-compressed JSON) holds, for each metric class and argument set,
Keras's ``result()`` after every step of a few input scenarios (1-D, (n, 1) and (n, k) batches; no weights,
scalar, 1-D, (n, 1) and per-element weights; all-zero weights; empty batches; integer, float and boolean
labels; predictions on the threshold; several update_state calls and a reset_state), and its
``get_config()``. tests/data/make_keras_metric_cases.py made
it (its docstring says how to rerun it); Keras is not needed here.

Each run replays the same steps through gradsmith.metrics and checks the value (rtol 1e-5: float32 math),
the kind of result (a float where Keras gives a scalar, a float32 array of Keras's shape otherwise), and that
a step Keras rejects raises here too.
"""
import gzip
import json
import os
import re

import numpy as np
import pytest

import gradsmith as keras

DATA = os.path.join(os.path.dirname(__file__), "data", "keras_metric_cases.json.gz")
with gzip.open(DATA, "rt") as f:
    RECORDED = json.load(f)
INPUTS = RECORDED["inputs"]


def _label(entry):
    args = ",".join(f"{k}={v}" for k, v in sorted(entry["kwargs"].items()))
    return f"{entry['class']}({args})"


RUNS = [(entry, scenario) for entry in RECORDED["metrics"] for scenario in entry["runs"]]


def _make(entry):
    kwargs = dict(entry["kwargs"])
    if "fn" in kwargs:
        name = kwargs["fn"]
        kwargs["fn"] = getattr(keras.metrics, name, None) or getattr(keras.losses, name)
    return getattr(keras.metrics, entry["class"])(**kwargs)


def _array(x):
    return None if x is None else np.asarray(x["a"], dtype=x["dtype"]).reshape(x.get("shape", np.shape(x["a"])))


def _check(got, expected, where):
    value, shape, dtype = expected
    if shape == []:
        assert isinstance(got, float), f"{where}: Keras gives a scalar, got {type(got).__name__} {got!r}"
    else:
        assert isinstance(got, np.ndarray), f"{where}: Keras gives an array of shape {shape}, got {got!r}"
        assert got.shape == tuple(shape), f"{where}: shape {got.shape}, Keras {tuple(shape)}"
        assert got.dtype == np.dtype(dtype), f"{where}: dtype {got.dtype}, Keras {dtype}"
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(value, dtype=np.float64), rtol=1e-5,
                               atol=1e-6, equal_nan=True, err_msg=where)


# An empty 1-D batch through a loss that averages the last axis is NaN in Keras too; NumPy warns on the way.
@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:More independent predictors:UserWarning")  # R2Score, as Keras warns
@pytest.mark.filterwarnings("ignore:You are passing weight as `float`:UserWarning")  # int IoU, as Keras warns
@pytest.mark.parametrize("entry,scenario", RUNS, ids=[f"{_label(e)}-{s}" for e, s in RUNS])
def test_metric_matches_recorded_keras(entry, scenario):
    m = _make(entry)
    values_only = entry["class"] in ("Mean", "Sum")
    for i, (step, expected) in enumerate(zip(INPUTS[scenario], entry["runs"][scenario])):
        where = f"{_label(entry)} on {scenario}, step {i}"
        if isinstance(expected, dict):  # Keras raised at this step
            with pytest.raises((ValueError, IndexError, TypeError)):
                if step == "reset":
                    m.reset_state()
                else:
                    y_true, y_pred, sw = (_array(a) for a in step)
                    args = (y_true,) if values_only else (y_true, y_pred)
                    m.update_state(*args, sample_weight=sw)
                m.result()
            return
        if step == "reset":
            m.reset_state()
        else:
            y_true, y_pred, sw = (_array(a) for a in step)
            args = (y_true,) if values_only else (y_true, y_pred)
            m.update_state(*args, sample_weight=sw)
        _check(m.result(), expected, where)


CONFIGS = {_label(e): e for e in RECORDED["metrics"]}
# Keys gradsmith keeps beyond Keras's config, on purpose: Keras's CosineSimilarity config drops a non-default
# axis (so its from_config loses it); gradsmith writes it then (Keras's constructor takes it).
EXTRA_KEYS = {"CosineSimilarity(axis=0)": {"axis"}}


@pytest.mark.parametrize("label", sorted(CONFIGS))
def test_metric_config_matches_recorded_keras(label):
    """get_config has Keras's keys and values (functions aside), and from_config rebuilds the same config."""
    entry = CONFIGS[label]
    m = _make(entry)
    config = m.get_config()
    fn = config.pop("fn", None)
    expected = entry["config"]
    assert sorted(set(config) - EXTRA_KEYS.get(label, set())) == sorted(expected), label
    for key, value in expected.items():
        got = config[key]
        if key == "name":  # automatic names are made unique per process ('auc', 'auc_1', ...)
            got, value = re.sub(r"_\d+$", "", got), re.sub(r"_\d+$", "", value)
        if isinstance(got, np.ndarray):
            got = got.tolist()
        if isinstance(value, float) or isinstance(got, float):
            assert got == pytest.approx(value), f"{label}: {key}"
        else:
            assert got == value, f"{label}: {key}"
    if fn is not None:
        config["fn"] = fn
    again = type(m).from_config(m.get_config()).get_config()
    assert again == m.get_config() or json.dumps(again, default=str) == json.dumps(m.get_config(), default=str)


# ------------------------------------------------------------------ the rules behind a few recorded cases
def test_loss_functions_broadcast_but_loss_classes_squeeze():
    """Keras's hinge / squared_hinge / categorical_hinge / kl_divergence / poisson functions are plain
    arithmetic: labels (n,) against predictions (n, 1) broadcast to an (n, n) grid, which is what their
    metrics average. The Loss classes squeeze first, so the losses themselves are unchanged."""
    t = np.array([0.0, 1.0, 1.0], np.float32)
    p = np.array([[0.2], [0.9], [-0.4]], np.float32)
    grid = np.maximum(1 - (2 * t[None, :] - 1) * p, 0).mean(-1)  # (3,) rows of the (3, 3) grid
    np.testing.assert_allclose(keras.losses.hinge(t, p), grid, rtol=1e-6)
    m = keras.metrics.Hinge()
    m.update_state(t, p)
    assert m.result() == pytest.approx(grid.mean(), rel=1e-6)
    per_sample = np.maximum(1 - (2 * t - 1) * p[:, 0], 0)
    assert keras.losses.Hinge()(t, p) == pytest.approx(per_sample.mean(), rel=1e-6)
    with pytest.raises(ValueError, match="broadcast"):
        keras.losses.poisson(np.ones(3, np.float32), np.ones((2, 2), np.float32))


def test_binary_crossentropy_function_needs_equal_shapes():
    """Keras's binary_crossentropy refuses target (n,) with output (n, 1); the loss class squeezes first."""
    t = np.array([0.0, 1.0], np.float32)
    p = np.array([[0.2], [0.7]], np.float32)
    with pytest.raises(ValueError, match="same shape"):
        keras.losses.binary_crossentropy(t, p)
    with pytest.raises(ValueError, match="same shape"):
        keras.metrics.BinaryCrossentropy().update_state(t, p)
    assert keras.losses.BinaryCrossentropy()(t, p) == pytest.approx(-(np.log(0.8) + np.log(0.7)) / 2, rel=1e-5)


def test_sparse_crossentropy_ignore_class_masks_only_weights():
    """Keras 3.15: the ignored labels' zero losses still count in the mean when there are no sample weights;
    with weights, the mask multiplies them (the ignored samples leave the count)."""
    yt = np.array([0, 1, 2, 1])
    yp = np.array([[.7, .2, .1], [.3, .4, .3], [.2, .2, .6], [.1, .8, .1]], np.float32)
    kept = -np.log(0.7) - np.log(0.6)
    m = keras.metrics.SparseCategoricalCrossentropy(ignore_class=1)
    m.update_state(yt, yp)
    assert m.result() == pytest.approx(kept / 4, rel=1e-5)
    m.reset_state()
    m.update_state(yt, yp, sample_weight=np.ones(4, np.float32))
    assert m.result() == pytest.approx(kept / 2, rel=1e-5)
    assert m.get_config()["ignore_class"] == 1


def test_f_score_weights_are_expanded_on_axis_1():
    """FBetaScore multiplies by expand_dims(sample_weight, 1) as Keras does: (n,) weights weigh rows, and
    (n, 1) weights spread over an (n, n, k) grid, which a per-class state refuses."""
    yt = np.array([[1, 0], [0, 1], [1, 0]], np.float32)
    yp = np.array([[0.9, 0.2], [0.6, 0.7], [0.1, 0.3]], np.float32)
    m = keras.metrics.F1Score(threshold=0.5)
    m.update_state(yt, yp, sample_weight=np.array([1.0, 2.0, 3.0], np.float32))
    # class 0: tp 1, fp 2, fn 3; class 1: tp 2, fp 0, fn 0
    np.testing.assert_allclose(m.result(), [2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4), 1.0], rtol=1e-5)
    with pytest.raises(ValueError):
        keras.metrics.F1Score(threshold=0.5).update_state(yt, yp, sample_weight=np.ones((3, 1), np.float32))


def test_top_k_on_one_sample():
    """A 1-D y_true / y_pred pair is one sample (Keras gives a scalar from in_top_k)."""
    m = keras.metrics.TopKCategoricalAccuracy(k=2)
    m.update_state(np.array([0, 0, 1, 0], np.float32), np.array([0.1, 0.5, 0.3, 0.1], np.float32))
    m.update_state(np.array([1, 0, 0, 0], np.float32), np.array([0.1, 0.5, 0.3, 0.1], np.float32))
    assert m.result() == pytest.approx(0.5)
    assert keras.metrics.sparse_top_k_categorical_accuracy(2, np.array([0.1, 0.5, 0.3]), k=2).shape == ()


@pytest.mark.parametrize("cls,bound,weights,plain,weighted", [
    ("SensitivityAtSpecificity", 0.5, [1, 1, 2, 2, 1], 0.5, 1 / 3),
    ("SpecificityAtSensitivity", 0.5, [1, 1, 2, 2, 2], 2 / 3, 0.5),
    ("PrecisionAtRecall", 0.5, [2, 2, 2, 1, 1], 0.5, 1 / 3),
])
def test_rate_at_bound_examples(cls, bound, weights, plain, weighted):
    """Keras's documented examples: the best rate over the 200 thresholds where the other meets the bound."""
    m = getattr(keras.metrics, cls)(bound)
    m.update_state([0, 0, 0, 1, 1], [0, 0.3, 0.8, 0.3, 0.8])
    assert m.result() == pytest.approx(plain, rel=1e-5)
    m.reset_state()
    m.update_state([0, 0, 0, 1, 1], [0, 0.3, 0.8, 0.3, 0.8], sample_weight=weights)
    assert m.result() == pytest.approx(weighted, rel=1e-5)
    again = type(m).from_config(m.get_config())
    assert again.get_config() == m.get_config() and again.num_thresholds == 200


def test_recall_at_precision_and_r2_examples():
    m = keras.metrics.RecallAtPrecision(0.8)
    m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])
    assert m.result() == pytest.approx(0.5)
    m.reset_state()
    m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9], sample_weight=[1, 0, 0, 1])
    assert m.result() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="precision"):
        keras.metrics.RecallAtPrecision(1.5)
    r2 = keras.metrics.R2Score()
    r2.update_state(np.array([[1], [4], [3]], np.float32), np.array([[2], [4], [4]], np.float32))
    assert r2.result() == pytest.approx(0.57142854, rel=1e-6)
    assert keras.metrics.get("R2Score").get_config() == {"name": "r2_score", "dtype": "float32",  # (not automatic)
                                                        "class_aggregation": "uniform_average", "num_regressors": 0}
    with pytest.raises(ValueError, match="2D"):
        keras.metrics.R2Score().update_state(np.ones(3, np.float32), np.ones(3, np.float32))


def test_correlation_examples():
    """Keras's documented examples (PearsonCorrelation, ConcordanceCorrelation), configs with axis."""
    y_true = [[0, 1, 0.5], [1, 1, 0.2]]
    y_pred = [[0.1, 0.9, 0.5], [1, 0.9, 0.2]]
    for cls, want in (("PearsonCorrelation", 0.9966996338993913), ("ConcordanceCorrelation", 0.9816320385426076)):
        m = getattr(keras.metrics, cls)(axis=-1)
        m.update_state(y_true, y_pred)
        assert m.result() == pytest.approx(want, rel=1e-5), cls
        assert sorted(m.get_config()) == ["axis", "dtype", "name"]


def test_iou_examples_and_int_state():
    """Keras 3.15 keeps the IoU confusion matrix in int32 unless dtype says otherwise: fractional weights
    truncate (with Keras's warning), so its documented weighted examples need dtype='float32'."""
    m = keras.metrics.MeanIoU(num_classes=2)
    config = m.get_config()
    assert re.sub(r"_\d+$", "", config.pop("name")) == "mean_io_u"  # automatic names get _1, _2, ... later
    assert config == {"num_classes": 2, "dtype": "int32", "ignore_class": None, "sparse_y_true": True,
                      "sparse_y_pred": True, "axis": -1}
    m.update_state([0, 0, 1, 1], [0, 1, 0, 1])
    assert m.result() == pytest.approx(1 / 3, rel=1e-6)
    m.reset_state()
    with pytest.warns(UserWarning, match="weight as `float`"):
        m.update_state([0, 0, 1, 1], [0, 1, 0, 1], sample_weight=np.array([0.3, 0.3, 0.3, 0.1]))
    assert m.result() == 0.0 and m.total_cm.dtype == np.int32
    m = keras.metrics.MeanIoU(num_classes=2, dtype="float32")
    m.update_state([0, 0, 1, 1], [0, 1, 0, 1], sample_weight=[0.3, 0.3, 0.3, 0.1])
    assert m.result() == pytest.approx(0.23809525, rel=1e-5)
    m = keras.metrics.BinaryIoU(target_class_ids=[0, 1], threshold=0.3, dtype="float32")
    m.update_state([0, 1, 0, 1], [0.1, 0.2, 0.4, 0.7], sample_weight=[0.2, 0.3, 0.4, 0.1])
    assert m.result() == pytest.approx(0.17361112, rel=1e-5)
    m = keras.metrics.OneHotIoU(num_classes=3, target_class_ids=[0, 2], dtype="float32")
    m.update_state(np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 0, 0]]),
                   np.array([[0.2, 0.3, 0.5], [0.1, 0.2, 0.7], [0.5, 0.3, 0.1], [0.1, 0.4, 0.5]]),
                   sample_weight=[0.1, 0.2, 0.3, 0.4])
    assert m.result() == pytest.approx((0 / 0.9 + 0.1 / 0.7) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="out of range"):
        keras.metrics.IoU(num_classes=2, target_class_ids=[2])


def test_every_keras_metric_class_is_recorded():
    """Every metric class gradsmith.metrics exports (all of Keras 3.15's) has recorded Keras cases, and the
    loss functions Keras also exports as keras.metrics.<name> are there."""
    classes = {n for n in keras.metrics.__all__ if isinstance(getattr(keras.metrics, n), type)
               and issubclass(getattr(keras.metrics, n), keras.metrics.Metric)}
    assert classes - {e["class"] for e in RECORDED["metrics"]} == {"Metric"}
    for name in ("mean_squared_error", "binary_crossentropy", "hinge", "kl_divergence", "poisson", "log_cosh"):
        assert getattr(keras.metrics, name) is getattr(keras.losses, name)

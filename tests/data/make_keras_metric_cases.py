"""Records Keras 3's metric results for tests/test_metrics_keras_recorded.py (issue 14: every metric class on
1-D, 2-D and sample-weighted inputs). Keras is not needed by the tests; rerun this only to refresh the file.

Rerun (Keras 3.15.1 on the JAX backend, about a minute), from the repository root:

    python -m venv /tmp/venv_keras && /tmp/venv_keras/bin/pip install keras==3.15.1 numpy scipy jax jaxlib
    KERAS_BACKEND=jax /tmp/venv_keras/bin/python tests/data/make_keras_metric_cases.py

JAX, not the NumPy backend: the NumPy backend's ``top_k`` breaks ties towards the higher index (JAX and
TensorFlow, and gradsmith, take the lower one first) and its ``normalize`` turns ``axis=0`` into -1
(CosineSimilarity(axis=0)); on every other recorded case the two backends agree.

It writes tests/data/keras_metric_cases.json.gz (gzip-compressed JSON):
  "keras_version", "backend";
  "inputs": scenario name -> list of steps; a step is "reset" or [y_true, y_pred, sample_weight] where each
      array is {"a": nested list, "dtype": str} ("shape" too when it is empty; sample_weight may be null).
      Inputs come from seeded NumPy and cover 1-D (n,), 2-D (n, 1) and (n, k) batches, scalar / 1-D /
      (n, 1) / per-element weights, all-zero weights, empty batches, integer, float and boolean labels,
      class-id maps and predictions exactly on a threshold;
  "metrics": list of {"class", "kwargs", "config", "runs"}: "config" is Keras's ``get_config()`` (without
      "fn"); "runs" maps a scenario name to its results, where result i is what Keras's ``result()`` gave after
      step i, as [value (float or nested list), shape, dtype], or {"error": exception name} when that step
      raised (the later steps are then not run).
``kwargs`` may hold {"fn": name} (MeanMetricWrapper: a function of keras.metrics / keras.losses by name).
"""
import gzip
import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "keras_metric_cases.json.gz")


def arr(x, dtype="float32"):
    return np.asarray(x, dtype=dtype)


def scenarios():
    """name -> (family, steps). Every family is a kind of input a group of metrics takes."""
    rng = np.random.default_rng(1414)

    def p(*shape):  # probabilities on a 0.01 grid (ties and exact thresholds happen)
        return arr(np.round(rng.uniform(0, 1, shape), 2))

    def b(*shape, dtype="float32"):  # 0/1 labels
        return arr(rng.integers(0, 2, shape), dtype)

    def w(*shape):
        return arr(np.round(rng.uniform(0, 3, shape), 1))

    def pos(*shape):  # positive regression values
        return arr(np.round(rng.uniform(0.1, 4, shape), 2))

    def onehot(n, k, dtype="float32"):
        return arr(np.eye(k)[rng.integers(0, k, n)], dtype)

    def probs(n, k):
        x = rng.uniform(0.05, 1, (n, k))
        return arr(np.round(x / x.sum(-1, keepdims=True), 3))

    def labels(n, k, dtype="int32"):
        return arr(rng.integers(0, k, n), dtype)

    s = {}
    # binary: 0/1 labels, probabilities
    s["bin_1d"] = ("binary", [(b(6), p(6), None), (b(5), p(5), None), "reset", (b(4), p(4), None)])
    s["bin_1d_w"] = ("binary", [(b(6), p(6), w(6)), (b(5), p(5), w(5)), "reset", (b(4), p(4), w(4))])
    s["bin_1d_int"] = ("binary", [(b(6, dtype="int32"), p(6), None), (b(5, dtype="int32"), p(5), w(5))])
    s["bin_col"] = ("binary", [(b(6, 1), p(6, 1), None), (b(5, 1), p(5, 1), w(5))])
    s["bin_col_wcol"] = ("binary", [(b(6, 1), p(6, 1), w(6, 1)), (b(5, 1), p(5, 1), w(5, 1))])
    s["bin_col_1dtrue"] = ("binary", [(b(6), p(6, 1), None), (b(5), p(5, 1), w(5))])
    s["bin_k"] = ("binary", [(b(5, 3), p(5, 3), None), (b(4, 3), p(4, 3), None), "reset", (b(3, 3), p(3, 3), None)])
    s["bin_k_w"] = ("binary", [(b(5, 3), p(5, 3), w(5)), (b(4, 3), p(4, 3), w(4))])
    s["bin_k_wcol"] = ("binary", [(b(5, 3), p(5, 3), w(5, 1)), (b(4, 3), p(4, 3), w(4, 1))])
    s["bin_k_welem"] = ("binary", [(b(5, 3), p(5, 3), w(5, 3)), (b(4, 3), p(4, 3), w(4, 3))])
    s["bin_zero_w"] = ("binary", [(b(6), p(6), arr(np.zeros(6))), (b(4, 3), p(4, 3), arr(np.zeros(4)))])
    s["bin_on_threshold"] = ("binary", [(arr([0, 1, 1, 0, 1, 0, 1, 0]), arr([0.5, 0.5, 0.0, 0.0, 1.0, 1.0, 0.3, 0.7]),
                                         None),
                                        (arr([1, 0, 1, 0]), arr([0.5, 0.5, 0.25, 0.75]), arr([1, 2, 3, 4]))])
    s["bin_empty"] = ("binary", [(arr(np.zeros(0)), arr(np.zeros(0)), None), (b(4), p(4), None),
                                 (arr(np.zeros(0)), arr(np.zeros(0)), arr(np.zeros(0)))])
    s["bin_1d_wcol"] = ("binary", [(b(6), p(6), w(6, 1)), (b(5), p(5), None)])
    s["bin_wscalar"] = ("binary", [(b(6), p(6), arr(2.0)), (b(4, 3), p(4, 3), arr(0.5)), (b(3, 1), p(3, 1), arr(1.5))])
    s["bin_bool"] = ("binary", [(b(6, dtype="bool"), p(6), None), (b(4, 3, dtype="bool"), p(4, 3), w(4))])
    s["bin_float_labels"] = ("binary", [(arr([0.0, 1.0, 0.0, 1.0, 1.0]), p(5), None),
                                        (arr([[1.0], [0.0], [1.0]]), p(3, 1), None)])
    # equality: labels and predictions from the same small set (Accuracy)
    s["eq_1d"] = ("equality", [(arr(rng.integers(0, 3, 8)), arr(rng.integers(0, 3, 8)), None),
                               (arr(rng.integers(0, 3, 5), "int32"), arr(rng.integers(0, 3, 5)), w(5)),
                               "reset", (arr(rng.integers(0, 3, 4)), arr(rng.integers(0, 3, 4)), w(4))])
    s["eq_2d"] = ("equality", [(arr(rng.integers(0, 2, (4, 3))), arr(rng.integers(0, 2, (4, 3))), None),
                               (arr(rng.integers(0, 2, (4, 3))), arr(rng.integers(0, 2, (4, 3))), w(4)),
                               (arr(rng.integers(0, 2, (3, 3))), arr(rng.integers(0, 2, (3, 3))), w(3, 3))])
    s["eq_col"] = ("equality", [(arr(rng.integers(0, 2, (5, 1))), arr(rng.integers(0, 2, (5, 1))), None),
                                (arr(rng.integers(0, 2, 5)), arr(rng.integers(0, 2, (5, 1))), w(5))])
    # categorical: one-hot labels, probability rows
    s["cat"] = ("categorical", [(onehot(5, 3), probs(5, 3), None), (onehot(4, 3), probs(4, 3), None), "reset",
                                (onehot(3, 3), probs(3, 3), None)])
    s["cat_w"] = ("categorical", [(onehot(5, 3), probs(5, 3), w(5)), (onehot(4, 3), probs(4, 3), w(4, 1))])
    s["cat_welem"] = ("categorical", [(onehot(5, 4), probs(5, 4), w(5, 4))])
    s["cat_int"] = ("categorical", [(onehot(5, 4, "int32"), probs(5, 4), None)])
    s["cat_zero_w"] = ("categorical", [(onehot(4, 3), probs(4, 3), arr(np.zeros(4)))])
    s["cat_1d"] = ("categorical", [(onehot(1, 4)[0], probs(1, 4)[0], None), (onehot(1, 4)[0], probs(1, 4)[0], None)])
    s["cat_ties"] = ("categorical", [(arr([[0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]]),
                                      arr([[0.4, 0.4, 0.2], [0.3, 0.3, 0.4], [0.2, 0.4, 0.4], [0.5, 0.25, 0.25]]),
                                      None)])
    s["cat_empty"] = ("categorical", [(arr(np.zeros((0, 3))), arr(np.zeros((0, 3))), None),
                                      (onehot(3, 3), probs(3, 3), None)])
    s["cat_wscalar"] = ("categorical", [(onehot(4, 3), probs(4, 3), arr(2.0)), (onehot(3, 3), probs(3, 3), None)])
    s["cat_k5"] = ("categorical", [(onehot(6, 7), probs(6, 7), None), (onehot(4, 7), probs(4, 7), w(4))])
    # multilabel: several 0/1 labels per row (F-scores)
    s["ml"] = ("multilabel", [(b(5, 3), p(5, 3), None), (b(4, 3), p(4, 3), None), "reset", (b(3, 3), p(3, 3), None)])
    s["ml_w"] = ("multilabel", [(b(5, 3), p(5, 3), w(5)), (b(4, 3), p(4, 3), w(4))])
    s["ml_zero_rows"] = ("multilabel", [(arr([[1, 0, 0], [0, 0, 0], [0, 1, 1]]),
                                         arr([[0.0, 0.0, 0.0], [0.2, 0.2, 0.1], [0.5, 0.6, 0.6]]), None)])
    # sparse: integer (or float) labels, probability rows
    s["sp"] = ("sparse", [(labels(5, 3), probs(5, 3), None), (labels(4, 3), probs(4, 3), None), "reset",
                          (labels(3, 3), probs(3, 3), None)])
    s["sp_col"] = ("sparse", [(labels(5, 3).reshape(5, 1), probs(5, 3), None),
                              (labels(4, 3).reshape(4, 1), probs(4, 3), w(4))])
    s["sp_float"] = ("sparse", [(labels(5, 3, "float32"), probs(5, 3), w(5)),
                                (labels(4, 3, "float32").reshape(4, 1), probs(4, 3), w(4, 1))])
    s["sp_zero_w"] = ("sparse", [(labels(4, 3), probs(4, 3), arr(np.zeros(4)))])
    s["sp_k5"] = ("sparse", [(labels(6, 7), probs(6, 7), None), (labels(4, 7), probs(4, 7), w(4))])
    s["sp_empty"] = ("sparse", [(arr(np.zeros(0), "int32"), arr(np.zeros((0, 3))), None),
                                (labels(3, 3), probs(3, 3), None)])
    s["sp_wscalar"] = ("sparse", [(labels(4, 3), probs(4, 3), arr(2.0)), (labels(3, 3), probs(3, 3), None)])
    s["sp_ties"] = ("sparse", [(arr([1, 2, 0, 1], "int32"),
                                arr([[0.4, 0.4, 0.2], [0.3, 0.3, 0.4], [0.2, 0.4, 0.4], [0.5, 0.25, 0.25]]), None)])
    # sorted ids: labels and the ids of the top classes, best first (SparseTopKCategoricalAccuracy)
    s["ids"] = ("sorted_ids", [(labels(5, 6), arr(np.argsort(-rng.uniform(0, 1, (5, 6)), -1)[:, :3], "int32"), None),
                               (labels(4, 6).reshape(4, 1), arr(np.argsort(-rng.uniform(0, 1, (4, 6)), -1)[:, :3],
                                                                "int32"), w(4))])
    # class ids: integer labels and predicted ids (IoU); segmentation-like 2-D maps, ids out of range
    s["ids"] = ("classids", [(labels(6, 3), labels(6, 3), None), (labels(5, 3), labels(5, 3), None), "reset",
                             (labels(4, 3), labels(4, 3), None)])
    s["ids_w"] = ("classids", [(labels(6, 3), labels(6, 3), arr(rng.integers(0, 3, 6), "int32")),
                               (labels(5, 3).reshape(5, 1), labels(5, 3).reshape(5, 1), w(5, 1))])
    s["ids_map"] = ("classids", [(arr(rng.integers(0, 3, (3, 4)), "int32"), arr(rng.integers(0, 3, (3, 4)), "int32"),
                                  None),
                                 (arr(rng.integers(0, 3, (2, 4)), "int32"), arr(rng.integers(0, 3, (2, 4)), "int32"),
                                  arr(rng.integers(0, 3, (2, 4)), "int32"))])
    s["ids_out"] = ("classids", [(arr([0, 1, 2, -1, 3, 1], "int32"), arr([0, 2, 2, 1, 1, 5], "int32"), None),
                                 (arr([0.0, 1.0, 2.0, 1.0]), arr([0.0, 1.7, 2.2, 0.9]), None)])
    # regression: positive targets and predictions
    s["reg_1d"] = ("regression", [(pos(6), pos(6), None), (pos(5), pos(5), None), "reset", (pos(4), pos(4), None)])
    s["reg_1d_w"] = ("regression", [(pos(6), pos(6), w(6)), (pos(5), pos(5), w(5))])
    s["reg_col"] = ("regression", [(pos(6, 1), pos(6, 1), None), (pos(5, 1), pos(5, 1), w(5))])
    s["reg_col_1dtrue"] = ("regression", [(pos(6), pos(6, 1), None), (pos(5), pos(5, 1), w(5, 1))])
    s["reg_k"] = ("regression", [(pos(5, 3), pos(5, 3), None), (pos(4, 3), pos(4, 3), w(4)), "reset",
                                 (pos(3, 3), pos(3, 3), None)])
    s["reg_k_welem"] = ("regression", [(pos(5, 3), pos(5, 3), w(5, 3)), (pos(4, 3), pos(4, 3), w(4, 1))])
    s["reg_zero_w"] = ("regression", [(pos(5), pos(5), arr(np.zeros(5))), (pos(3, 2), pos(3, 2), arr(np.zeros(3)))])
    s["reg_wscalar"] = ("regression", [(pos(5), pos(5), arr(2.0)), (pos(3, 2), pos(3, 2), arr(0.5))])
    s["reg_int"] = ("regression", [(arr(rng.integers(1, 5, 6), "int32"), pos(6), None),
                                   (arr(rng.integers(1, 5, (4, 2)), "int32"), pos(4, 2), w(4))])
    # values: Mean / Sum
    s["val_1d"] = ("values", [(pos(6), None, None), (pos(4), None, w(4)), "reset", (pos(3), None, None)])
    s["val_2d"] = ("values", [(pos(4, 3), None, None), (pos(4, 3), None, w(4)), (pos(3, 2), None, w(3, 2)),
                              (pos(3, 2), None, w(3, 1))])
    s["val_scalar"] = ("values", [(arr(2.5), None, None), (arr(1.5), None, arr(3.0)), (pos(2), None, None)])
    s["val_zero_w"] = ("values", [(pos(4), None, arr(np.zeros(4)))])
    s["val_wscalar"] = ("values", [(pos(4), None, arr(2.0)), (pos(3, 2), None, arr(1.5))])
    s["val_int"] = ("values", [(arr([1, 2, 3, 4], "int32"), None, None), (arr([[1, 2], [3, 4]], "int32"), None, None)])
    s["val_empty"] = ("values", [(arr(np.zeros(0)), None, None), (pos(3), None, None)])
    s["val_3d"] = ("values", [(pos(2, 2, 2), None, w(2)), (pos(2, 2, 2), None, w(2, 2))])
    return s


BIN = ("binary",)
BIN_EQ = ("binary", "equality")
REG = ("binary", "regression")
# a few binary scenarios for the argument variants
BIN_FEW = ("bin_1d", "bin_1d_w", "bin_col", "bin_k_w", "bin_k_welem", "bin_on_threshold", "bin_zero_w")

# (class name, kwargs, families)
METRICS = [
    ("Mean", {}, ("values",)),
    ("Sum", {}, ("values",)),
    ("MeanMetricWrapper", {"fn": "mean_squared_error"}, REG),
    ("MeanMetricWrapper", {"fn": "binary_accuracy", "threshold": 0.3}, BIN_FEW),
    ("MeanMetricWrapper", {"fn": "sparse_categorical_accuracy"}, ("sparse",)),
    ("MeanMetricWrapper", {"fn": "categorical_hinge"}, ("categorical", "bin_col_1dtrue")),
    ("MeanMetricWrapper", {"fn": "kl_divergence"}, ("reg_col_1dtrue",)),
    ("Accuracy", {}, BIN_EQ),
    ("BinaryAccuracy", {}, BIN_EQ),
    ("BinaryAccuracy", {"threshold": 0.3}, BIN_FEW),
    ("BinaryAccuracy", {"threshold": 0.0}, BIN_FEW),
    ("BinaryAccuracy", {"threshold": 1.0}, BIN_FEW),
    ("BinaryAccuracy", {"threshold": -0.5}, BIN_FEW),
    ("BinaryAccuracy", {"threshold": 1.5}, BIN_FEW),
    ("CategoricalAccuracy", {}, ("categorical",)),
    ("SparseCategoricalAccuracy", {}, ("sparse",)),
    ("TopKCategoricalAccuracy", {}, ("categorical",)),
    ("TopKCategoricalAccuracy", {"k": 1}, ("categorical",)),
    ("TopKCategoricalAccuracy", {"k": 2}, ("categorical",)),
    ("SparseTopKCategoricalAccuracy", {}, ("sparse",)),
    ("SparseTopKCategoricalAccuracy", {"k": 1}, ("sparse",)),
    ("SparseTopKCategoricalAccuracy", {"k": 2}, ("sparse",)),
    ("SparseTopKCategoricalAccuracy", {"k": 2, "from_sorted_ids": True}, ("sorted_ids",)),
    ("MeanSquaredError", {}, REG),
    ("MeanAbsoluteError", {}, REG),
    ("MeanAbsolutePercentageError", {}, ("regression",)),
    ("MeanSquaredLogarithmicError", {}, REG),
    ("RootMeanSquaredError", {}, REG),
    ("LogCoshError", {}, REG),
    ("CosineSimilarity", {}, ("regression", "categorical")),
    ("PearsonCorrelation", {}, ("regression",)),
    ("PearsonCorrelation", {"axis": 0}, ("reg_1d", "reg_col", "reg_k")),
    ("ConcordanceCorrelation", {}, ("regression",)),
    ("ConcordanceCorrelation", {"axis": 0}, ("reg_1d", "reg_col", "reg_k")),
    ("MeanMetricWrapper", {"fn": "pearson_correlation"}, ("reg_k",)),
    ("R2Score", {}, ("regression",)),
    ("R2Score", {"class_aggregation": None}, ("regression",)),
    ("R2Score", {"class_aggregation": "variance_weighted_average", "num_regressors": 1}, ("regression",)),
    ("CosineSimilarity", {"axis": 0}, ("regression",)),
    ("BinaryCrossentropy", {}, BIN),
    ("BinaryCrossentropy", {"from_logits": True}, ("binary", "regression")),
    ("BinaryCrossentropy", {"label_smoothing": 0.1}, BIN_FEW),
    ("CategoricalCrossentropy", {}, ("categorical",)),
    ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.2}, ("categorical",)),
    ("SparseCategoricalCrossentropy", {}, ("sparse",)),
    ("SparseCategoricalCrossentropy", {"from_logits": True}, ("sparse",)),
    ("SparseCategoricalCrossentropy", {"ignore_class": 1}, ("sparse",)),
    ("KLDivergence", {}, ("categorical", "binary")),
    ("Poisson", {}, ("regression", "binary")),
    ("Hinge", {}, BIN),
    ("Hinge", {}, ("reg_col_1dtrue", "reg_k")),
    ("SquaredHinge", {}, BIN),
    ("CategoricalHinge", {}, ("categorical",)),
    ("TruePositives", {}, BIN),
    ("FalsePositives", {}, BIN),
    ("TrueNegatives", {}, BIN),
    ("FalseNegatives", {}, BIN),
    ("TruePositives", {"thresholds": [0.2, 0.5, 0.8]}, BIN_FEW),
    ("FalseNegatives", {"thresholds": 0.3}, BIN_FEW),
    ("TrueNegatives", {"thresholds": [0.0, 0.25, 0.5, 0.75, 1.0]}, BIN_FEW),
    ("FalsePositives", {"thresholds": [0.0, 0.25, 0.5, 0.75, 1.0]}, BIN_FEW),
    ("Precision", {}, BIN),
    ("Precision", {"thresholds": [0.0, 0.3, 0.5, 1.0]}, BIN_FEW),
    ("Precision", {"top_k": 2}, ("multilabel", "categorical")),
    ("Precision", {"class_id": 1}, ("multilabel", "categorical")),
    ("Precision", {"thresholds": [0.0, 0.25, 0.5, 0.75, 1.0]}, BIN_FEW),
    ("Recall", {}, BIN),
    ("Recall", {"thresholds": [0.3, 0.5, 0.7]}, BIN_FEW),
    ("Recall", {"top_k": 1, "class_id": 2}, ("multilabel", "categorical")),
    ("SensitivityAtSpecificity", {"specificity": 0.5}, BIN),
    ("SensitivityAtSpecificity", {"specificity": 0.8, "num_thresholds": 1}, BIN_FEW),
    ("SpecificityAtSensitivity", {"sensitivity": 0.5}, BIN),
    ("SpecificityAtSensitivity", {"sensitivity": 0.3, "num_thresholds": 5, "class_id": 1},
     ("multilabel", "categorical")),
    ("PrecisionAtRecall", {"recall": 0.5}, BIN),
    ("PrecisionAtRecall", {"recall": 0.8, "num_thresholds": 3}, BIN_FEW),
    ("RecallAtPrecision", {"precision": 0.6}, BIN),
    ("RecallAtPrecision", {"precision": 0.5, "class_id": 0, "num_thresholds": 10}, ("multilabel",)),
    ("AUC", {}, BIN),
    ("AUC", {"num_thresholds": 3}, BIN_FEW),
    ("AUC", {"num_thresholds": 2, "curve": "PR"}, BIN_FEW),
    ("AUC", {"num_thresholds": 11, "summation_method": "minoring"}, BIN_FEW),
    ("AUC", {"summation_method": "majoring"}, BIN_FEW),
    ("AUC", {"curve": "PR"}, BIN_FEW),
    ("AUC", {"curve": "PR", "num_thresholds": 7}, BIN_FEW),
    ("AUC", {"curve": "PR", "summation_method": "majoring"}, BIN_FEW),
    ("AUC", {"curve": "PRGAIN"}, BIN_FEW),
    ("AUC", {"thresholds": [0.3, 0.5, 0.9]}, BIN_FEW),
    ("AUC", {"thresholds": [0.25, 0.5, 0.75]}, BIN_FEW),
    ("AUC", {"from_logits": True}, ("regression",)),
    ("AUC", {"multi_label": True}, ("multilabel", "bin_k", "bin_k_w", "bin_k_welem")),
    ("AUC", {"multi_label": True, "num_labels": 3, "label_weights": [0.5, 1.0, 2.0]}, ("multilabel",)),
    ("AUC", {"multi_label": True, "curve": "PR"}, ("multilabel",)),
    ("AUC", {"label_weights": [0.5, 1.0, 2.0]}, ("multilabel",)),
    ("IoU", {"num_classes": 3, "target_class_ids": [0, 2]}, ("classids",)),
    ("IoU", {"num_classes": 3, "target_class_ids": [1], "ignore_class": 0}, ("classids",)),
    ("IoU", {"num_classes": 3, "target_class_ids": [0, 1], "sparse_y_pred": False}, ("sparse",)),
    ("MeanIoU", {"num_classes": 3}, ("classids",)),
    ("MeanIoU", {"num_classes": 3, "dtype": "float32"}, ("classids",)),
    ("BinaryIoU", {}, ("binary",)),
    ("BinaryIoU", {"target_class_ids": [1], "threshold": 0.3, "dtype": "float32"}, BIN_FEW),
    ("OneHotIoU", {"num_classes": 3, "target_class_ids": [0, 2]}, ("categorical",)),
    ("OneHotMeanIoU", {"num_classes": 3}, ("categorical",)),
    ("OneHotMeanIoU", {"num_classes": 3, "ignore_class": 1, "dtype": "float32"}, ("categorical",)),
    ("F1Score", {}, ("categorical", "multilabel")),
    ("F1Score", {"average": "micro", "threshold": 0.5}, ("categorical", "multilabel")),
    ("F1Score", {"average": "macro"}, ("categorical", "multilabel")),
    ("F1Score", {"average": "weighted", "threshold": 0.4}, ("categorical", "multilabel")),
    ("FBetaScore", {"beta": 2.0, "average": "macro", "threshold": 0.5}, ("categorical", "multilabel")),
    ("FBetaScore", {"beta": 0.5}, ("multilabel",)),
]


def encode(x):
    if x is None:
        return None
    x = np.asarray(x)
    out = {"a": short(x), "dtype": str(x.dtype)}
    if x.size == 0:
        out["shape"] = list(x.shape)  # nested lists lose the shape of an empty array
    return out


def short(r):
    """The value as nested lists of the shortest decimals that read back as the same float32."""
    if r.ndim:
        return [short(v) for v in r]
    if r.dtype.kind in "iub":
        return r.item()
    return float(str(np.float32(r))) if np.isfinite(r) else float(r)


def plain(x):
    """A JSON value for a config entry."""
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, np.ndarray) or hasattr(x, "__array__"):
        return np.asarray(x).tolist()
    if isinstance(x, np.generic):
        return x.item()
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return repr(x)


def make(cls_name, kwargs):
    kwargs = dict(kwargs)
    if "fn" in kwargs:
        name = kwargs["fn"]
        kwargs["fn"] = getattr(keras.metrics, name, None) or getattr(keras.losses, name)
    return getattr(keras.metrics, cls_name)(**kwargs)


def run_case(cls_name, kwargs, steps):
    m = make(cls_name, kwargs)
    results = []
    for step in steps:
        try:
            if step == "reset":
                m.reset_state()
            elif cls_name in ("Mean", "Sum"):
                m.update_state(step[0], sample_weight=step[2])
            else:
                m.update_state(step[0], step[1], sample_weight=step[2])
            r = np.asarray(keras.ops.convert_to_numpy(m.result()))
        except Exception as e:  # noqa: BLE001 (recorded: the replay expects an error too)
            results.append({"error": type(e).__name__})
            break
        results.append([short(r), list(r.shape), str(r.dtype)])
    return results


def main():
    scen = scenarios()
    inputs = {name: ["reset" if st == "reset" else [encode(a) for a in st] for st in steps]
              for name, (_, steps) in scen.items()}
    metrics, count = [], 0
    for cls_name, kwargs, families in METRICS:
        cfg = make(cls_name, kwargs).get_config()
        cfg.pop("fn", None)
        runs = {name: run_case(cls_name, kwargs, steps) for name, (family, steps) in scen.items()
                if family in families or name in families}
        count += len(runs)
        metrics.append({"class": cls_name, "kwargs": kwargs, "config": plain(cfg), "runs": runs})
    data = {"keras_version": keras.__version__, "backend": keras.backend.backend(), "inputs": inputs,
            "metrics": metrics}
    text = json.dumps(data, separators=(",", ":")) + "\n"
    with open(OUT, "wb") as f:  # gzip (about 13 KB, not 90): tests/data files stay under 50 KB; mtime 0 for
        f.write(gzip.compress(text.encode(), compresslevel=9, mtime=0))  # the same bytes on every run
    print(f"{len(metrics)} metrics, {count} runs, {os.path.getsize(OUT)} bytes -> {OUT}")


if __name__ == "__main__":
    main()

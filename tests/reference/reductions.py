"""Reduction and metric-count reference (float64 sums; counts as Python ints)."""
import numpy as np


def sum(x):  # noqa: A001 (named as the kernel)
    # sum_i x_i
    return float(np.sum(np.asarray(x, dtype=np.float64)))


def sum_squares(x):
    # sum_i x_i^2
    x = np.asarray(x, dtype=np.float64)
    return float(np.sum(x * x))


def sum_rows(x):
    # column sums over axis 0 of a 2-D (rows, cols) array -> (cols,)  (the bias gradient)
    return np.sum(np.asarray(x, dtype=np.float64), axis=0)


def _as_rows(y_pred):
    y_pred = np.asarray(y_pred, dtype=np.float64)
    return y_pred.reshape(-1, 1) if y_pred.ndim == 1 else y_pred


def count_correct(y_true, y_pred, kind, threshold=0.5):
    """'binary': elementwise float(p > threshold) == t (Keras BinaryAccuracy), counts elements;
    'categorical': argmax(t) == argmax(p) per row; 'sparse': argmax(p) == label per row.
    argmax: ties -> first index, NaN counts as the maximum (first NaN), as np.argmax."""
    if kind == "binary":
        t = np.asarray(y_true, dtype=np.float64).reshape(-1)
        p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
        return int(np.sum((p > threshold).astype(np.float64) == t))
    p = _as_rows(y_pred)
    if kind == "categorical":
        labels = np.argmax(_as_rows(y_true), axis=1)
    elif kind == "sparse":
        labels = np.asarray(y_true, dtype=np.float64).reshape(-1)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return int(np.sum(np.argmax(p, axis=1) == labels))


def binary_confusion(y_true, y_pred, threshold=0.5):
    """(tp, fp, tn, fn): predicted positive iff p > threshold, actual positive iff t != 0."""
    actual = np.asarray(y_true, dtype=np.float64).reshape(-1) != 0
    predicted = np.asarray(y_pred, dtype=np.float64).reshape(-1) > threshold
    return (int(np.sum(predicted & actual)), int(np.sum(predicted & ~actual)),
            int(np.sum(~predicted & ~actual)), int(np.sum(~predicted & actual)))

"""Loss reference: Keras 3 losses with reduction 'sum_over_batch_size'.

value = sum_i w_i L_i / N  (N rows; N == 0 -> 0.0) ; grad = d value / d y_pred, written analytically.
y_pred (N,) is treated as (N, 1); y_true has y_pred's shape, except sparse labels (N,) or (N, 1).
"""
import numpy as np

from .activations import sigmoid, softmax

EPSILON = 1e-7  # Keras backend epsilon used for probability clipping
# Keras clips float32 tensors, so its bounds are the float32 roundings of eps and 1 - eps:
# 1 - 1e-7 becomes 0.99999988 (float32 has no closer value), and a saturated prediction
# costs -log(1.19e-7) = 15.94, not -log(1e-7) = 16.12. The oracle clips to those same bounds.
CLIP_LO = float(np.float32(EPSILON))
CLIP_HI = float(np.float32(1.0 - EPSILON))

ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error", "msle": "mean_squared_logarithmic_error",
           "mape": "mean_absolute_percentage_error", "kld": "kl_divergence"}

# Cases (name, kwargs) covering every loss, from_logits both ways and label smoothing.
LOSSES = [
    ("mean_squared_error", {}),
    ("mse", {}),
    ("mean_absolute_error", {}),
    ("mae", {}),
    ("huber", {}),
    ("huber", {"delta": 0.5}),
    ("binary_crossentropy", {}),
    ("binary_crossentropy", {"label_smoothing": 0.1}),
    ("binary_crossentropy", {"from_logits": True}),
    ("binary_crossentropy", {"from_logits": True, "label_smoothing": 0.2}),
    ("categorical_crossentropy", {}),
    ("categorical_crossentropy", {"label_smoothing": 0.1}),
    ("categorical_crossentropy", {"from_logits": True}),
    ("categorical_crossentropy", {"from_logits": True, "label_smoothing": 0.2}),
    ("sparse_categorical_crossentropy", {}),
    ("sparse_categorical_crossentropy", {"label_smoothing": 0.1}),
    ("sparse_categorical_crossentropy", {"from_logits": True}),
    ("sparse_categorical_crossentropy", {"from_logits": True, "label_smoothing": 0.2}),
    ("hinge", {}),
    ("squared_hinge", {}),
    ("log_cosh", {}),
    ("poisson", {}),
    ("mean_squared_logarithmic_error", {}),
    ("msle", {}),
    ("mean_absolute_percentage_error", {}),
    ("mape", {}),
    ("kl_divergence", {}),
    ("kld", {}),
    ("categorical_hinge", {}),
    ("cosine_similarity", {}),
]


def canonical_name(name):
    name = ALIASES.get(name, name)
    if name not in _PER_SAMPLE:
        raise ValueError(f"unknown loss {name!r}")
    return name


def sparse_labels(labels, num_classes):
    """Integer labels (N,) or (N, 1) in [0, C); float labels accepted if integral."""
    labels = np.asarray(labels).reshape(-1)
    as_float = labels.astype(np.float64)
    for i, label in enumerate(as_float):
        if not (label == np.floor(label) and 0 <= label < num_classes):
            raise ValueError(f"label {labels[i]} at index {i} is not an integer in [0, {num_classes})")
    return as_float.astype(np.int64)


def _prepare(name, y_true, y_pred, sample_weight, label_smoothing):
    """Returns (t, p, w) as float64 2-D (N, C), (N, C), (N,); t already label-smoothed."""
    p = np.asarray(y_pred, dtype=np.float64)
    p = p.reshape(-1, 1) if p.ndim == 1 else p
    n, c = p.shape
    if name == "sparse_categorical_crossentropy":
        t = np.eye(c)[sparse_labels(y_true, c)].reshape(n, c)  # one-hot
    else:
        t = np.asarray(y_true, dtype=np.float64)
        if t.shape != (n, c) and not (c == 1 and t.shape == (n,)):  # (N,) vs (N, 1) both ways
            raise ValueError(f"y_true shape {t.shape} does not match y_pred shape {np.shape(y_pred)}")
        t = t.reshape(n, c)
    if name == "binary_crossentropy":
        t = t * (1.0 - label_smoothing) + 0.5 * label_smoothing  # t' = t (1 - ls) + 0.5 ls
    elif name.endswith("categorical_crossentropy"):
        t = t * (1.0 - label_smoothing) + label_smoothing / c  # t' = t (1 - ls) + ls / C
    elif name in ("hinge", "squared_hinge") and np.all((t == 0) | (t == 1)):
        t = 2.0 * t - 1.0  # Keras: targets that are all 0 or 1 become -1 / 1
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).reshape(n)
    return t, p, w


# --- per-sample losses: (t, p, from_logits, delta) -> (L (N,), dL/dp (N, C)) -------------------

def _mse(t, p, from_logits, delta):
    # L = mean_j (p - t)^2 ; dL/dp = 2 (p - t) / C
    e = p - t
    return np.mean(e**2, axis=1), 2.0 * e / p.shape[1]


def _mae(t, p, from_logits, delta):
    # L = mean_j |p - t| ; dL/dp = sign(p - t) / C   (sign(0) = 0)
    e = p - t
    return np.mean(np.abs(e), axis=1), np.sign(e) / p.shape[1]


def _huber(t, p, from_logits, delta):
    # e = p - t ; L = mean_j (0.5 e^2 if |e| <= delta else delta (|e| - 0.5 delta))
    # dL/dp = (e if |e| <= delta else delta sign(e)) / C
    e = p - t
    quadratic = np.abs(e) <= delta
    per_elem = np.where(quadratic, 0.5 * e**2, delta * (np.abs(e) - 0.5 * delta))
    return np.mean(per_elem, axis=1), np.where(quadratic, e, delta * np.sign(e)) / p.shape[1]


def _binary_crossentropy(t, p, from_logits, delta):
    c = p.shape[1]
    if from_logits:
        # L = mean_j max(x, 0) - x t' + log1p(exp(-|x|)) ; dL/dx = (sigmoid(x) - t') / C
        per_elem = np.maximum(p, 0.0) - p * t + np.log1p(np.exp(-np.abs(p)))
        return np.mean(per_elem, axis=1), (sigmoid(p) - t) / c
    # p' = clip(p, eps, 1 - eps) ; L = mean_j -(t' log p' + (1 - t') log(1 - p'))
    # dL/dp = -(t'/p' - (1 - t')/(1 - p')) / C inside [eps, 1 - eps], 0 outside (clip)
    pc = np.clip(p, CLIP_LO, CLIP_HI)
    per_elem = -(t * np.log(pc) + (1.0 - t) * np.log(1.0 - pc))
    inside = (p >= CLIP_LO) & (p <= CLIP_HI)
    grad = np.where(inside, -(t / pc - (1.0 - t) / (1.0 - pc)), 0.0) / c
    return np.mean(per_elem, axis=1), grad


def _categorical_crossentropy(t, p, from_logits, delta):
    if from_logits:
        # L = sum_j t'_j (logsumexp(x) - x_j) ; dL/dx = softmax(x) sum_j t'_j - t'
        m = np.max(p, axis=1, keepdims=True)
        lse = m + np.log(np.sum(np.exp(p - m), axis=1, keepdims=True))
        return np.sum(t * (lse - p), axis=1), softmax(p) * np.sum(t, axis=1, keepdims=True) - t
    # q = p / S, S = sum_j p_j ; q' = clip(q, eps, 1 - eps) ; L = -sum_j t'_j log q'_j
    # g_j = dL/dq_j = -t'_j / q'_j (0 where clipped) ; dq_j/dp_k = (delta_jk - q_j) / S
    # => dL/dp_k = (g_k - sum_j g_j q_j) / S
    s = np.sum(p, axis=1, keepdims=True)
    q = p / s
    qc = np.clip(q, CLIP_LO, CLIP_HI)
    g = np.where((q >= CLIP_LO) & (q <= CLIP_HI), -t / qc, 0.0)
    return -np.sum(t * np.log(qc), axis=1), (g - np.sum(g * q, axis=1, keepdims=True)) / s


def _sparse_probabilities(t, p):
    # TensorFlow's formula (Keras's tensorflow backend), for one-hot t with no label smoothing: clip FIRST,
    # then the clipped values are normalized: c = clip(p, eps, 1 - eps), S = sum_j c_j, L = -log(c_y / S)
    # dL/dp_j = 1/S - t_j / c_j inside [eps, 1 - eps] (tf.clip_by_value's gradient), 0 outside
    c = np.clip(p, CLIP_LO, CLIP_HI)
    s = np.sum(c, axis=1, keepdims=True)
    inside = (p >= CLIP_LO) & (p <= CLIP_HI)
    return -np.log(np.sum(t * c, axis=1) / s[:, 0]), np.where(inside, 1.0 / s - t / c, 0.0)


def _hinge(t, p, from_logits, delta):
    # m = 1 - t p ; L = mean_j max(m, 0) ; dL/dp = -t / C where m > 0
    m = 1.0 - t * p
    return np.mean(np.maximum(m, 0.0), axis=1), np.where(m > 0, -t, 0.0) / p.shape[1]


def _squared_hinge(t, p, from_logits, delta):
    # L = mean_j max(1 - t p, 0)^2 ; dL/dp = -2 t max(1 - t p, 0) / C
    h = np.maximum(1.0 - t * p, 0.0)
    return np.mean(h**2, axis=1), -2.0 * t * h / p.shape[1]


def _log_cosh(t, p, from_logits, delta):
    # x = p - t ; L = mean_j log(cosh(x)) ; dL/dp = tanh(x) / C
    x = p - t
    return np.mean(np.log(np.cosh(x)), axis=1), np.tanh(x) / p.shape[1]


def _poisson(t, p, from_logits, delta):
    # L = mean_j p - t log(p + eps) ; dL/dp = (1 - t / (p + eps)) / C   (eps as float32, as Keras adds it)
    q = p + CLIP_LO
    return np.mean(p - t * np.log(q), axis=1), (1.0 - t / q) / p.shape[1]


def _msle(t, p, from_logits, delta):
    # d = log(max(p, eps) + 1) - log(max(t, eps) + 1) ; L = mean_j d^2 ; dL/dp = 2 d / (p + 1) / C where p > eps
    pp = np.maximum(p, CLIP_LO) + 1.0
    d = np.log(pp) - np.log(np.maximum(t, CLIP_LO) + 1.0)
    return np.mean(d**2, axis=1), np.where(p > CLIP_LO, 2.0 * d / pp, 0.0) / p.shape[1]


def _mape(t, p, from_logits, delta):
    # s = max(|t|, eps) ; L = 100 mean_j |t - p| / s ; dL/dp = 100 sign(p - t) / s / C
    s = np.maximum(np.abs(t), CLIP_LO)
    return 100.0 * np.mean(np.abs(t - p) / s, axis=1), 100.0 * np.sign(p - t) / s / p.shape[1]


def _kl_divergence(t, p, from_logits, delta):
    # t', p' = clip(t, p to [eps, 1]) ; L = sum_j t' log(t' / p') ; dL/dp = -t' / p' inside [eps, 1], else 0
    tc, pc = np.clip(t, CLIP_LO, 1.0), np.clip(p, CLIP_LO, 1.0)
    return np.sum(tc * np.log(tc / pc), axis=1), np.where((p >= CLIP_LO) & (p <= 1.0), -tc / pc, 0.0)


def _categorical_hinge(t, p, from_logits, delta):
    # pos = sum_j t p, neg = max_j (1 - t) p ; L = max(neg - pos + 1, 0)
    # dL/dp_j = -t_j + (1 - t_j) [j = argmax] where L > 0
    n = p.shape[0]
    if p.shape[1] == 0:  # max over no class is -inf: L = 0
        return np.zeros(n), np.zeros_like(p)
    pos, scaled = np.sum(t * p, axis=1), (1.0 - t) * p
    at = np.argmax(scaled, axis=1)
    m = scaled[np.arange(n), at] - pos + 1.0
    g = -t.copy()
    g[np.arange(n), at] += 1.0 - t[np.arange(n), at]
    return np.maximum(m, 0.0), np.where((m > 0)[:, None], g, 0.0)


def _cosine_similarity(t, p, from_logits, delta):
    # t' = t / max(|t|, eps), q = p / max(|p|, eps) (eps as float32) ; L = -<t', q>
    # dL/dp = -(t' - q <t', q>) / |p| ; where |p| <= eps, q = p / eps is linear: dL/dp = -t' / eps
    tn = np.maximum(np.linalg.norm(t, axis=1, keepdims=True), CLIP_LO)
    pn = np.linalg.norm(p, axis=1, keepdims=True)
    tt, q = t / tn, p / np.maximum(pn, CLIP_LO)
    cosine = np.sum(tt * q, axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        grad = np.where(pn > CLIP_LO, -(tt - q * cosine) / pn, -tt / CLIP_LO)
    return -cosine[:, 0], grad


_PER_SAMPLE = {
    "mean_squared_error": _mse,
    "mean_absolute_error": _mae,
    "huber": _huber,
    "binary_crossentropy": _binary_crossentropy,
    "categorical_crossentropy": _categorical_crossentropy,
    "sparse_categorical_crossentropy": _categorical_crossentropy,  # t = onehot(label)
    "hinge": _hinge,
    "squared_hinge": _squared_hinge,
    "log_cosh": _log_cosh,
    "poisson": _poisson,
    "mean_squared_logarithmic_error": _msle,
    "mean_absolute_percentage_error": _mape,
    "kl_divergence": _kl_divergence,
    "categorical_hinge": _categorical_hinge,
    "cosine_similarity": _cosine_similarity,
}


def loss_value_and_grad(name, y_true, y_pred, sample_weight=None, from_logits=False,
                        label_smoothing=0.0, delta=1.0):
    """(value, grad): value = sum_i w_i L_i / N ; grad = w_i dL_i/dp / N, shaped like y_pred."""
    name = canonical_name(name)
    t, p, w = _prepare(name, y_true, y_pred, sample_weight, label_smoothing)
    n = p.shape[0]
    if n == 0:
        return 0.0, np.zeros(np.shape(y_pred))
    if name == "sparse_categorical_crossentropy" and not from_logits and label_smoothing == 0.0:
        per_sample, dper_sample = _sparse_probabilities(t, p)
    else:
        per_sample, dper_sample = _PER_SAMPLE[name](t, p, from_logits, delta)
    value = float(np.sum(w * per_sample) / n)
    grad = (w[:, None] * dper_sample / n).reshape(np.shape(y_pred))
    return value, grad


def loss_value(name, y_true, y_pred, sample_weight=None, from_logits=False, label_smoothing=0.0, delta=1.0):
    return loss_value_and_grad(name, y_true, y_pred, sample_weight, from_logits, label_smoothing, delta)[0]


def loss_grad(name, y_true, y_pred, sample_weight=None, from_logits=False, label_smoothing=0.0, delta=1.0):
    return loss_value_and_grad(name, y_true, y_pred, sample_weight, from_logits, label_smoothing, delta)[1]


def loss_inputs(name, n, c, rng, from_logits=False):
    """Test inputs (y_true, y_pred) of shape (n, c) (sparse: labels (n,)) valid for `name`,
    away from kinks (mae at e = 0, huber at |e| = 0.5 or 1.0) and from probability clipping."""
    name = canonical_name(name)
    if name in ("hinge", "squared_hinge"):  # 0/1 labels; |p| in [0.05, 0.9] u [1.1, 2] (no kink at t p = 1)
        magnitude = rng.choice([0.05, 1.1], size=(n, c)) + rng.uniform(0.0, 0.85, size=(n, c))
        return rng.integers(0, 2, size=(n, c)).astype(np.float64), rng.choice([-1.0, 1.0], size=(n, c)) * magnitude
    if name == "poisson":  # counts and positive rates
        return rng.integers(0, 5, size=(n, c)).astype(np.float64), rng.uniform(0.2, 5.0, size=(n, c))
    if name == "mean_squared_logarithmic_error":  # non-negative, away from the eps floor
        return rng.uniform(0.0, 3.0, size=(n, c)), rng.uniform(0.01, 3.0, size=(n, c))
    if name == "mean_absolute_percentage_error":  # |t| away from 0, p away from t
        t = rng.choice([-1.0, 1.0], size=(n, c)) * rng.uniform(0.5, 3.0, size=(n, c))
        return t, t + rng.choice([-1.0, 1.0], size=(n, c)) * rng.uniform(0.05, 1.0, size=(n, c))
    if name == "categorical_hinge":  # one-hot targets; the wrong classes' scores well apart (no tie for the max)
        scores = rng.permutation(np.tile(np.arange(c, dtype=np.float64), (n, 1)).T).T * 0.7 + rng.uniform(0, 0.3,
                                                                                                          (n, c))
        return np.eye(c)[rng.integers(0, c, size=n)], scores - c * 0.35
    if name == "cosine_similarity":
        return rng.standard_normal((n, c)), rng.standard_normal((n, c))
    if name == "kl_divergence":  # probability rows
        t, p = rng.uniform(0.05, 1.0, size=(n, c)), rng.uniform(0.05, 1.0, size=(n, c))
        return t / t.sum(axis=1, keepdims=True), p / p.sum(axis=1, keepdims=True)
    if name == "sparse_categorical_crossentropy":
        y_true = rng.integers(0, c, size=n)
    elif name == "categorical_crossentropy":
        y_true = np.eye(c)[rng.integers(0, c, size=n)]
    else:
        y_true = rng.uniform(0.0, 1.0, size=(n, c))
    if from_logits:
        return y_true, rng.normal(0.0, 2.0, size=(n, c))
    if name == "binary_crossentropy":
        return y_true, rng.uniform(0.05, 0.95, size=(n, c))
    if name.endswith("categorical_crossentropy"):
        return y_true, rng.uniform(0.1, 1.0, size=(n, c))  # unnormalized on purpose
    # regression: |e| in [0.05, 0.45] u [0.55, 0.95] u [1.05, 1.45] (no kink at 0, 0.5, 1.0)
    magnitude = rng.choice([0.05, 0.55, 1.05], size=(n, c)) + rng.uniform(0.0, 0.4, size=(n, c))
    return y_true, y_true + rng.choice([-1.0, 1.0], size=(n, c)) * magnitude


# Keras 3's documented examples (keras.losses docstrings): (name, y_true, y_pred, kwargs, value), value
# as Keras prints it, to 3 digits. Shared by the oracle's own checks and the kernel tests.
_Y2 = [[0.0, 1.0], [0.0, 0.0]]
_P2 = [[0.6, 0.4], [0.4, 0.6]]
_LOGITS2 = [[-18.6, 0.51], [2.94, -12.8]]
_Y3 = [[0, 1, 0], [0, 0, 1]]
_P3 = [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]
KERAS_EXAMPLES = [
    ("mean_squared_error", _Y2, [[1.0, 1.0], [1.0, 0.0]], {}, 0.5),
    ("mse", _Y2, [[1.0, 1.0], [1.0, 0.0]], {"sample_weight": [0.7, 0.3]}, 0.25),
    ("mean_absolute_error", _Y2, [[1.0, 1.0], [1.0, 0.0]], {}, 0.5),
    ("mae", _Y2, [[1.0, 1.0], [1.0, 0.0]], {"sample_weight": [0.7, 0.3]}, 0.25),
    ("huber", _Y2, _P2, {}, 0.155),
    ("huber", _Y2, _P2, {"sample_weight": [1.0, 0.0]}, 0.09),
    ("binary_crossentropy", _Y2, _P2, {}, 0.815),
    ("binary_crossentropy", _Y2, _P2, {"sample_weight": [1.0, 0.0]}, 0.458),
    ("binary_crossentropy", _Y2, _LOGITS2, {"from_logits": True}, 0.865),
    ("binary_crossentropy", _Y2, _LOGITS2, {"from_logits": True, "sample_weight": [0.8, 0.2]}, 0.243),
    ("binary_crossentropy", [0, 1, 0, 0], [-18.6, 0.51, 2.94, -12.8], {"from_logits": True}, 0.865),
    ("categorical_crossentropy", _Y3, _P3, {}, 1.177),
    ("categorical_crossentropy", _Y3, _P3, {"sample_weight": [0.3, 0.7]}, 0.814),
    ("sparse_categorical_crossentropy", [1, 2], _P3, {}, 1.177),
    ("sparse_categorical_crossentropy", [[1.0], [2.0]], _P3, {"sample_weight": [0.3, 0.7]}, 0.814),
    # Keras 3.15 (JAX) on the same inputs, to 3 digits
    ("hinge", _Y2, _P2, {}, 1.3),
    ("hinge", _Y2, _P2, {"sample_weight": [0.3, 0.7]}, 0.69),
    ("squared_hinge", _Y2, _P2, {}, 1.86),
    ("log_cosh", _Y2, _P2, {}, 0.147),
    ("poisson", _Y2, _P2, {}, 0.729),
    ("poisson", _Y2, _P2, {"sample_weight": [0.3, 0.7]}, 0.319),
    ("mean_squared_logarithmic_error", _Y2, _P2, {}, 0.171),
    ("kl_divergence", _Y2, _P2, {}, 0.458),
    ("kld", _Y2, _P2, {"sample_weight": [0.3, 0.7]}, 0.137),
    ("categorical_hinge", [[0, 1, 0], [1, 0, 0]], [[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]], {}, 0.75),
    ("categorical_hinge", [[0, 1, 0], [1, 0, 0]], [[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]], {"sample_weight": [0.3, 0.7]},
     0.365),
    ("cosine_similarity", [[0.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [1.0, 1.0]], {}, -0.5),
    ("cosine_similarity", [[0.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [1.0, 1.0]], {"sample_weight": [0.8, 0.2]}, -0.1),
]

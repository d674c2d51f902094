"""Activation reference (Keras 3 names), forward y = act(z) and backward dx = dy * act'(z).

z is the pre-activation (the forward's input). Elementwise except softmax (row-wise, last axis).
"""
import math

import numpy as np

SELU_SCALE = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_C = 0.044715

_erf = np.vectorize(math.erf, otypes=[np.float64])

NAMES = ("linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "selu", "gelu", "silu",
         "softplus", "softsign", "hard_sigmoid", "exponential")
ALIASES = {"swish": "silu", None: "linear"}

# Every activation, both gelu forms, non-default parameters where they exist.
ACTIVATIONS = [
    ("linear", {}),
    ("relu", {}),
    ("sigmoid", {}),
    ("tanh", {}),
    ("softmax", {}),
    ("leaky_relu", {}),
    ("leaky_relu", {"negative_slope": 0.05}),
    ("elu", {}),
    ("elu", {"alpha": 0.5}),
    ("selu", {}),
    ("gelu", {"approximate": True}),
    ("gelu", {"approximate": False}),
    ("silu", {}),
    ("swish", {}),
    ("softplus", {}),
    ("softsign", {}),
    ("hard_sigmoid", {}),
    ("exponential", {}),
]


def sigmoid(z):
    # sigmoid(z) = 1 / (1 + exp(-z)) = exp(-softplus(-z))   (overflow-free, accurate in both tails)
    return np.exp(-np.logaddexp(0.0, -z))


def softplus(z):
    # softplus(z) = log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|))
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def softmax(z):
    # y = exp(z - max) / sum(exp(z - max)) over the last axis
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def _gelu_tanh(z):
    # u = sqrt(2/pi) (z + 0.044715 z^3) ; y = 0.5 z (1 + tanh(u))
    u = SQRT_2_OVER_PI * (z + GELU_C * z**3)
    return 0.5 * z * (1.0 + np.tanh(u))


def _gelu_tanh_grad(z):
    # y' = 0.5 (1 + t) + 0.5 z (1 - t^2) sqrt(2/pi) (1 + 3*0.044715 z^2),  t = tanh(u)
    t = np.tanh(SQRT_2_OVER_PI * (z + GELU_C * z**3))
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t**2) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * z**2)


def _gelu_erf(z):
    # y = 0.5 z (1 + erf(z / sqrt(2)))
    return 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0)))


def _gelu_erf_grad(z):
    # y' = Phi(z) + z phi(z) = 0.5 (1 + erf(z/sqrt2)) + z exp(-z^2/2) / sqrt(2 pi)
    return 0.5 * (1.0 + _erf(z / math.sqrt(2.0))) + z * np.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)


def _elu(z, alpha):
    # elu = z if z > 0 else alpha (exp(z) - 1)
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0)))


def _elu_grad(z, alpha):
    # elu' = 1 if z > 0 else alpha exp(z)
    return np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0.0)))


def _forward_table(z, negative_slope, alpha, approximate):
    """name -> lambda computing act(z) (elementwise ones and softmax)."""
    return {
        "linear": lambda: z.copy(),
        "relu": lambda: np.maximum(z, 0.0),  # NaN propagates
        "sigmoid": lambda: sigmoid(z),
        "tanh": lambda: np.tanh(z),
        "softmax": lambda: softmax(z),
        "leaky_relu": lambda: np.where(z >= 0, z, negative_slope * z),
        "elu": lambda: _elu(z, alpha),
        "selu": lambda: SELU_SCALE * _elu(z, SELU_ALPHA),
        "gelu": lambda: _gelu_tanh(z) if approximate else _gelu_erf(z),
        "silu": lambda: z * sigmoid(z),
        "softplus": lambda: softplus(z),
        "softsign": lambda: z / (1.0 + np.abs(z)),
        "hard_sigmoid": lambda: np.clip(z / 6.0 + 0.5, 0.0, 1.0),
        "exponential": lambda: np.exp(z),
    }


def _derivative_table(z, negative_slope, alpha, approximate):
    """name -> lambda computing act'(z) for the elementwise activations."""
    return {
        "linear": lambda: np.ones_like(z),
        "relu": lambda: np.where(z > 0, 1.0, 0.0),  # as the spec: NaN z -> 0
        "sigmoid": lambda: sigmoid(z) * (1.0 - sigmoid(z)),  # s (1 - s)
        "tanh": lambda: 1.0 - np.tanh(z) ** 2,  # 1 - tanh^2
        "leaky_relu": lambda: np.where(z > 0, 1.0, negative_slope),
        "elu": lambda: _elu_grad(z, alpha),
        "selu": lambda: SELU_SCALE * _elu_grad(z, SELU_ALPHA),
        "gelu": lambda: _gelu_tanh_grad(z) if approximate else _gelu_erf_grad(z),
        "silu": lambda: sigmoid(z) * (1.0 + z * (1.0 - sigmoid(z))),  # s + z s (1 - s)
        "softplus": lambda: sigmoid(z),
        "softsign": lambda: 1.0 / (1.0 + np.abs(z)) ** 2,
        "hard_sigmoid": lambda: np.where((z > -3) & (z < 3), 1.0 / 6.0, 0.0),
        "exponential": lambda: np.exp(z),
    }


def canonical_name(name):
    """Keras 3 name with aliases resolved (swish -> silu, None -> linear)."""
    name = ALIASES.get(name, name)
    if name not in NAMES:
        raise ValueError(f"unknown activation {name!r}")
    return name


def activation_forward(x, name, *, negative_slope=0.2, alpha=1.0, approximate=True):
    """y = act(x); any ndim, softmax over the last axis."""
    z = np.asarray(x, dtype=np.float64)
    return _forward_table(z, negative_slope, alpha, approximate)[canonical_name(name)]()


def activation_backward(dy, x, name, *, negative_slope=0.2, alpha=1.0, approximate=True):
    """dx = dy * act'(x), x the forward's input; softmax: dz = y * (dy - sum_j dy_j y_j) per row."""
    z = np.asarray(x, dtype=np.float64)
    dy = np.asarray(dy, dtype=np.float64)
    name = canonical_name(name)
    if name == "softmax":
        y = softmax(z)
        return y * (dy - np.sum(dy * y, axis=-1, keepdims=True))
    return dy * _derivative_table(z, negative_slope, alpha, approximate)[name]()

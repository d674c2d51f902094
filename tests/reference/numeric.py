"""Checking tools that belong with the oracle: finite differences and test-case names."""
import numpy as np


def numeric_grad(f, x, h=1e-6):
    """Central finite differences of the float64 scalar function f at x, element by element."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        plus = f(x)
        x[i] = old - h
        minus = f(x)
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def away_from_kinks(x, kinks=(-3.0, 0.0, 3.0), margin=0.05):
    """Moves points within ``margin`` of a kink (relu, leaky_relu, elu, hard_sigmoid) off it."""
    x = np.asarray(x)
    for k in kinks:
        x = np.where(np.abs(x - k) < margin, x + 2 * margin, x)
    return x


def case_id(case):
    """Test id of a (name, params) case from the reference's tables."""
    name, params = case
    return name + "".join(f"-{k}={v}" for k, v in params.items())

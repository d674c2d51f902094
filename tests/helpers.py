"""Checks shared by the kernel-vs-reference tests: one helper per kind of comparison.

Conventions
 - ``expected`` always comes from the float64 reference evaluated on the float32-rounded inputs
   (``f32(x).astype(np.float64)``): the kernel never sees the unrounded values, so rounding the
   inputs is not counted as kernel error.
 - Tolerances are written in units of EPS32 = 2**-24 (the unit roundoff of float32; one ulp of a
   value in [1, 2) is 2 * EPS32).
"""
import contextlib
import math

import numpy as np

import gradsmith
import reference as R
from reference.numeric import away_from_kinks, case_id, numeric_grad  # noqa: F401 - shared with the tests

EPS32 = 2.0**-24
TINY32 = float(np.finfo(np.float32).tiny)  # smallest normal float32: below it only subnormal rounding is left


def f32(x):
    """x as the kernel sees it (float32)."""
    return np.asarray(x, dtype=np.float32)


def f64(x):
    """The float32 value exactly, as float64 (what the reference is evaluated on)."""
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def _describe(actual, expected, bound, bad, limit=5):
    idx = np.argwhere(bad)[:limit]
    lines = []
    for i in idx:
        i = tuple(int(v) for v in i)
        a, e = float(actual[i]), float(expected[i])
        b = float(bound[i]) if np.ndim(bound) else float(bound)
        lines.append(f"  at {i}: got {a!r}, expected {e!r}, |diff| {abs(a - e):.3g} > bound {b:.3g}")
    return "\n".join(lines)


def assert_within(actual, expected, bound, what=""):
    """Element-wise |actual - expected| <= bound; NaN exactly where expected is NaN, infinities equal.

    ``bound`` is a scalar or an array broadcastable to the shapes.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    a = actual.astype(np.float64)
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), a.shape)
    nan_a, nan_e = np.isnan(a), np.isnan(expected)
    bad_nan = nan_a != nan_e
    assert not bad_nan.any(), f"{what}: NaN mismatch\n" + _describe(a, expected, bound, bad_nan)
    inf_e = np.isinf(expected)
    bad_inf = (inf_e | np.isinf(a)) & ~nan_e & (a != expected)
    assert not bad_inf.any(), f"{what}: infinity mismatch\n" + _describe(a, expected, bound, bad_inf)
    finite = np.isfinite(expected)
    with np.errstate(invalid="ignore"):
        diff = np.where(finite, np.abs(a - expected), 0.0)
    bad = diff > bound
    assert not bad.any(), (f"{what}: {int(bad.sum())} of {a.size} elements out of tolerance "
                           f"(worst |diff|/bound = {np.max(diff / np.maximum(bound, 1e-300)):.3g})\n"
                           + _describe(a, expected, bound, bad))


def assert_close_ulps(actual, expected, ulps, scale=0.0, floor=TINY32, what=""):
    """|actual - expected| <= ulps * EPS32 * (|expected| + scale) + floor, element-wise.

    ``scale`` (>= 0, array or scalar) is the magnitude of the intermediate values whose rounding
    the result inherits where it cancels (e.g. |z| for gelu = 0.5 z (1 + erf) when erf -> -1):
    relative error is only meaningful against that size. ``floor`` covers subnormal rounding.
    """
    expected = np.asarray(expected, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bound = ulps * EPS32 * (np.abs(expected) + scale) + floor
    assert_within(actual, expected, np.where(np.isfinite(bound), bound, np.inf), what=what)


def assert_bitwise_equal(actual, expected, what=""):
    """Same shape, dtype and bits (NaNs included)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} vs {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} vs {expected.dtype}"
    if actual.dtype.kind == "f":
        view = {2: np.uint16, 4: np.uint32, 8: np.uint64}[actual.dtype.itemsize]
        a, e = np.ascontiguousarray(actual).view(view), np.ascontiguousarray(expected).view(view)
    else:
        a, e = actual, expected
    bad = a != e
    assert not bad.any(), (f"{what}: {int(bad.sum())} of {a.size} elements differ, first at "
                           f"{tuple(int(v) for v in np.argwhere(bad)[0])}: "
                           f"{actual[tuple(np.argwhere(bad)[0])]!r} vs {expected[tuple(np.argwhere(bad)[0])]!r}")


def gemm_bound(a, b, transpose_a=False, transpose_b=False, alpha=1.0, beta=0.0, c=None, const=3.0):
    """Earned GEMM error bound, element-wise:
    c * max(K, 1) * EPS32 * (|alpha| (|op(A)| @ |op(B)|) + |beta| |C0|) + TINY32.

    K products summed in float32 (FMA or not) err by at most ~K unit roundoffs of the sum of
    magnitudes; the final alpha/beta combination adds a couple more (max(K, 1) covers K == 0,
    where C = beta * C0 is one rounding).
    """
    a, b = np.abs(f64(a)), np.abs(f64(b))
    op_a = a.T if transpose_a else a
    op_b = b.T if transpose_b else b
    k = op_a.shape[1]
    mag = abs(alpha) * (op_a @ op_b)
    if beta != 0.0:
        mag = mag + abs(beta) * np.abs(f64(c))
    return const * max(k, 1) * EPS32 * mag + TINY32


@contextlib.contextmanager
def num_threads(n):
    """Run the block with ``n`` kernel threads, then restore the previous count."""
    before = gradsmith.get_num_threads()
    gradsmith.set_num_threads(n)
    try:
        yield
    finally:
        gradsmith.set_num_threads(before)


def all_threads():
    """The thread count of the 'many threads' runs (as conftest: at least 2)."""
    import os

    return max(2, os.cpu_count() or 1)


# --------------------------------------------------------------------------------------------- #
# Activation error bounds (used by the activation and dense tests)
# --------------------------------------------------------------------------------------------- #
# Allowed error, in EPS32 units, of y = act(z) and of dz = dy * act'(z) on float32 inputs:
#   |y - ref| <= FWD * EPS32 * (|ref| + fwd_scale)      |dz - ref| <= BWD * EPS32 * (|ref| + bwd_scale)
# The scales (below) are the sizes of the intermediates that the formulas subtract, so where the
# result cancels to nearly nothing the bound is the rounding of those intermediates, not of the tiny
# result. Everything else is relative. Values measured (max over 4e5 random points in [-12, 12],
# every ISA) are in the comments; the allowance is about 1.5x that, rounded up.
ACTIVATION_ULPS = {  # name: (forward, backward)         measured forward ; backward
    "linear": (0, 0),        # exact (a copy; dy * 1)
    "relu": (0, 0),          # exact
    "leaky_relu": (2, 2),    # one product s*z (float32(0.2) != 0.2): 1.2 ; 1.2
    "elu": (2, 3),           # alpha * expm1f: 1.2 ; dy * alpha * expf: 1.9
    "selu": (4, 5),          # scale * alpha * expm1f: 2.7 ; 3.2
    "sigmoid": (4, 3),       # expf, 1 + e, divide: 2.8 ; s (1 - s), scale s: 2.1
    "tanh": (4, 5),          # tanhf: 2.7 ; 1 - t^2, scale t^2: 3.1
    "softplus": (3, 5),      # max(z, 0) + log1pf(expf(-|z|)): 2.0 ; sigmoid: 3.4
    "softsign": (3, 6),      # z / (1 + |z|): 2.0 ; 1 / d^2: 4.3
    "hard_sigmoid": (2, 2),  # z * (1/6) + 0.5, scale 0.5 (cancels near z = -3): 0.7 ; dy / 6: 1.3
    "exponential": (2, 3),   # expf: 1.0 ; dy * expf: 1.9
    "silu": (5, 4),          # z * sigmoid: 3.4 ; s (1 + z (1 - s)), scale s (1 + |z|): 2.1
    "gelu_tanh": (2, 3),     # 0.5 z (1 + tanh u), scale |z|: 1.3 ; derivative, scale below: 1.4
    "gelu_erf": (2, 3),      # 0.5 z (1 + erf), scale |z|: 0.9 ; Phi + z phi, scale below: 1.4
    "softmax": (1, 1),       # relative (1 + |z - max| + C) per row (worst case, C roundings): 0.5 ; 0.5
}
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_erf = np.vectorize(math.erf, otypes=[np.float64])


def activation_key(name, params):
    """ACTIVATION_ULPS key of a (name, params) case: aliases resolved, gelu by its form."""
    name = "silu" if name == "swish" else name
    if name == "gelu":
        return "gelu_tanh" if params.get("approximate", True) else "gelu_erf"
    return name


def _sigmoid(z):
    with np.errstate(over="ignore"):
        return np.exp(-np.logaddexp(0.0, -z))


def _softmax_rel(z):
    """Relative error scale of a float32 softmax row: exp(z - max) inherits the rounding of z - max,
    the sum of C terms up to C roundings."""
    with np.errstate(invalid="ignore"):
        d = np.abs(z - np.max(z, axis=-1, keepdims=True))
        e = np.exp(-d)
        y = e / np.sum(e, axis=-1, keepdims=True)
        return y, 1.0 + d + np.sum(y * d, axis=-1, keepdims=True) + z.shape[-1]


def activation_forward_bound(name, params, z):
    """Absolute error bound of the float32 act(z), z float64 holding float32 values."""
    key = activation_key(name, params)
    ulps = ACTIVATION_ULPS[key][0]
    with np.errstate(all="ignore"):
        ref = np.abs(R.activation_forward(z, name, **params))
        if key.startswith("gelu"):
            scale = np.abs(z)  # 1 + erf / 1 + tanh -> 0 for z << 0: the rounding of 1 stays, times 0.5|z|
        elif key == "hard_sigmoid":
            scale = np.full_like(z, 0.5)  # z/6 + 0.5 -> 0 near z = -3
        elif key == "softmax":
            y, rel = _softmax_rel(z)
            scale = y * rel - ref
        else:
            scale = 0.0
        return ulps * EPS32 * (ref + scale) + TINY32


def activation_backward_bound(name, params, z, dy):
    """Absolute error bound of the float32 dy * act'(z) (softmax: the row rule)."""
    key = activation_key(name, params)
    ulps = ACTIVATION_ULPS[key][1]
    z, dy = np.asarray(z, np.float64), np.asarray(dy, np.float64)
    with np.errstate(all="ignore"):
        ref = np.abs(R.activation_backward(dy, z, name, **params))
        s = _sigmoid(z)
        if key == "sigmoid":
            scale = np.abs(dy) * s  # s (1 - s): 1 - s is exact, but s carries an absolute error ~ s eps
        elif key == "tanh":
            scale = np.abs(dy) * np.tanh(z) ** 2  # 1 - t^2
        elif key == "silu":
            # s (1 + z (1 - s)): 1 - s has an absolute error ~ s eps, times |z|; 1 + z (1 - s) -> 0 at z ~ -1.28
            scale = np.abs(dy) * s * (1.0 + np.abs(z))
        elif key == "gelu_tanh":
            # 0.5 (1 + t) + 0.5 z (1 - t^2) u': 1 + t and 1 - t^2 have absolute errors ~ eps; t inherits
            # the relative rounding of u (|u| eps) through tanh' = 1 - t^2.
            u = _SQRT_2_OVER_PI * (z + 0.044715 * z**3)
            t = np.tanh(u)
            du = _SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * z * z)
            one_minus_t2 = (1.0 - t * t) * (1.0 + np.abs(u)) + t * t  # its size plus its rounding
            scale = np.abs(dy) * (0.5 * (1.0 + np.abs(t)) + 0.5 * np.abs(z) * du * one_minus_t2)
        elif key == "gelu_erf":
            # Phi(z) + z phi(z): cancels near z = -0.75; phi = exp(-z^2/2) inherits z^2/2 relative rounding
            erf_abs = np.abs(_erf(z / math.sqrt(2.0)))
            z_phi = np.abs(z) * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
            scale = np.abs(dy) * (0.5 * (1.0 + erf_abs) + z_phi * (1.0 + z * z))
        elif key == "softmax":
            # dz = y (dy - <dy, y>): the subtraction cancels; y carries the forward's relative error
            y, rel = _softmax_rel(z)
            scale = y * (np.abs(dy) + np.sum(np.abs(dy) * y, axis=-1, keepdims=True)) * rel
        else:
            scale = 0.0
        return ulps * EPS32 * (ref + scale) + TINY32 * (1.0 + np.abs(dy))

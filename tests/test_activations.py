"""ops.activation_forward / activation_backward against the float64 reference, on every CPU path.

Tolerances: helpers.ACTIVATION_ULPS (forward, backward) in units of EPS32 = 2**-24, relative to
|ref| plus, for the formulas that cancel, the size of the cancelling intermediates (helpers.
activation_forward_bound / activation_backward_bound explain each one). The backward is also checked
against central finite differences of the float64 reference forward.
"""
import numpy as np
import pytest

import reference as R
from gradsmith import ops
from helpers import (EPS32, TINY32, activation_backward_bound, activation_forward_bound, all_threads,
                     assert_bitwise_equal, assert_within, away_from_kinks, case_id, f32, f64, num_threads,
                     numeric_grad)

CASES = R.ACTIVATIONS
ELEMENTWISE = [c for c in CASES if c[0] != "softmax"]

# Element-wise shapes: empty, one element, odd, 2-D, 3-D, and one big enough (> 32K elements) to be
# split among threads in chunks whose ends fall inside SIMD vectors.
SHAPES = [(0,), (1,), (7,), (33,), (5, 17), (3, 4, 9), (2, 0, 5), (257, 131)]
# Softmax is row-wise over the last axis.
SOFTMAX_SHAPES = [(0,), (1,), (7,), (4, 1), (5, 17), (3, 4, 9), (2, 0, 5), (3, 0), (600, 61)]


def shapes_for(case):
    return SOFTMAX_SHAPES if case[0] == "softmax" else SHAPES


def _inputs(rng, shape, name):
    """float32 pre-activations: a mix of N(0, 2), U(-12, 12) and tiny values; dy ~ N(0, 1)."""
    n = int(np.prod(shape))
    if name == "softmax":
        z = 4.0 * rng.standard_normal(n)
    else:
        z = np.where(rng.random(n) < 0.5, 2.0 * rng.standard_normal(n), rng.uniform(-12.0, 12.0, n))
        z = np.where(rng.random(n) < 0.05, rng.uniform(-1e-3, 1e-3, n), z)
    return f32(z.reshape(shape)), f32(rng.standard_normal(shape))


def _reference_forward(z, name, params):
    if z.size == 0:  # the reference's max over an empty softmax row has no identity
        return np.zeros(z.shape)
    return R.activation_forward(f64(z), name, **params)


def _reference_backward(dy, z, name, params):
    if z.size == 0:
        return np.zeros(z.shape)
    return R.activation_backward(f64(dy), f64(z), name, **params)


def _all_shape_cases():
    return [pytest.param(case, shape, id=f"{case_id(case)}-{shape}") for case in CASES for shape in shapes_for(case)]


@pytest.mark.parametrize("case, shape", _all_shape_cases())
def test_forward_matches_reference(isa, rng, case, shape):
    name, params = case
    z, _ = _inputs(rng, shape, name)
    got = ops.activation_forward(z, name, **params)
    assert got.dtype == np.float32 and got.shape == z.shape
    expected = _reference_forward(z, name, params)
    bound = activation_forward_bound(name, params, f64(z)) if z.size else 0.0
    assert_within(got, expected, bound, what=f"{case_id(case)} forward")


@pytest.mark.parametrize("case, shape", _all_shape_cases())
def test_backward_matches_reference(isa, rng, case, shape):
    name, params = case
    z, dy = _inputs(rng, shape, name)
    got = ops.activation_backward(dy, z, name, **params)
    assert got.dtype == np.float32 and got.shape == z.shape
    expected = _reference_backward(dy, z, name, params)
    bound = activation_backward_bound(name, params, f64(z), f64(dy)) if z.size else 0.0
    assert_within(got, expected, bound, what=f"{case_id(case)} backward")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_backward_matches_finite_differences(isa, rng, case):
    """dx against d/dz sum(dy * act(z)) by central differences of the float64 reference forward,
    away from kinks (relu, leaky_relu, elu, selu at 0; hard_sigmoid at +-3).

    Allowed: the kernel's own bound plus the finite-difference error, |dy| * 1e-9 * (1 + |f| + |f'|)
    (h = 1e-5 * max(1, |z|): truncation h^2 |f'''| / 6 and rounding 1e-16 |f| / h, both < 1e-9 here).
    """
    name, params = case
    z = f32(away_from_kinks(rng.uniform(-5.0, 5.0, size=(6, 7)), margin=0.02))
    dy = f32(rng.standard_normal(z.shape))
    got = ops.activation_backward(dy, z, name, **params)
    zz, dyy = f64(z), f64(dy)
    f = lambda v: R.activation_forward(v, name, **params)  # noqa: E731
    if name == "softmax":  # rows couple: full numeric gradient of the objective
        numeric = numeric_grad(lambda v: np.sum(dyy * f(v)), zz, h=1e-6)
        fd_err = 1e-9 * (1.0 + np.sum(np.abs(dyy)))
    else:  # element-wise: all elements at once
        h = 1e-5 * np.maximum(1.0, np.abs(zz))
        derivative = (f(zz + h) - f(zz - h)) / (2 * h)
        numeric = dyy * derivative
        fd_err = 1e-9 * np.abs(dyy) * (1.0 + np.abs(f(zz)) + np.abs(derivative))
    bound = activation_backward_bound(name, params, zz, dyy) + fd_err
    assert_within(got, numeric, bound, what=f"{case_id(case)} vs finite differences")


# NaN and Inf go through as NumPy carries them through the reference formulas.
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 100.0, -100.0, 1e-30, -1e-30, 88.0, -88.0, 3.0, -3.0, 1e20, -1e20]


@pytest.mark.parametrize("case", ELEMENTWISE, ids=case_id)
def test_nan_and_inf_flow_like_numpy(isa, case):
    name, params = case
    z = f32(SPECIAL)
    dy = f32(np.linspace(-2.0, 2.0, z.size) + 0.1)
    with np.errstate(all="ignore"):  # rounded to float32: exp(100) overflows to inf there, as in NumPy
        expected_y = f64(R.activation_forward(f64(z), name, **params))
        expected_dx = f64(R.activation_backward(f64(dy), f64(z), name, **params))
        bound_y = np.nan_to_num(activation_forward_bound(name, params, f64(z)), nan=0.0, posinf=0.0)
        bound_dx = np.nan_to_num(activation_backward_bound(name, params, f64(z), f64(dy)), nan=0.0, posinf=0.0)
    assert_within(ops.activation_forward(z, name, **params), expected_y, bound_y, what=f"{name} forward")
    assert_within(ops.activation_backward(dy, z, name, **params), expected_dx, bound_dx, what=f"{name} backward")


@pytest.mark.parametrize("name, params, z, expected", [
    ("relu", {}, [np.nan, -1.0, 2.0], [np.nan, 0.0, 2.0]),
    ("sigmoid", {}, [np.inf, -np.inf, np.nan], [1.0, 0.0, np.nan]),
    ("tanh", {}, [np.inf, -np.inf], [1.0, -1.0]),
    ("softplus", {}, [np.inf, -np.inf, 100.0], [np.inf, 0.0, 100.0]),
    ("elu", {}, [-np.inf, np.inf], [-1.0, np.inf]),
    ("exponential", {}, [-np.inf, np.inf, 100.0], [0.0, np.inf, np.inf]),
    ("hard_sigmoid", {}, [np.nan, -np.inf, np.inf], [np.nan, 0.0, 1.0]),
    ("leaky_relu", {}, [np.nan, -np.inf], [np.nan, -np.inf]),
])
def test_special_values_spelled_out(isa, name, params, z, expected):
    assert_within(ops.activation_forward(z, name, **params), expected, 0.0, what=name)


@pytest.mark.parametrize("row, expected_nan", [
    ([1.0, np.nan, 2.0], True),        # NaN anywhere: the whole row is NaN, as NumPy
    ([1.0, np.inf, 2.0], True),        # inf - inf
    ([-np.inf, 0.0, 1.0], False),      # -inf is just a zero weight
    ([-np.inf, -np.inf], True),        # -inf - (-inf)
    ([1e30, -1e30, 0.0], False),       # stable: no overflow
])
def test_softmax_special_rows(isa, row, expected_nan):
    z = f32([row, [0.5, -0.5, 0.25][: len(row)]])  # a special row above an ordinary one
    with np.errstate(all="ignore"):
        expected = R.activation_forward(f64(z), "softmax")
        expected_dx = R.activation_backward(np.ones(z.shape), f64(z), "softmax")
    assert np.isnan(expected[0]).all() == expected_nan
    got = ops.activation_forward(z, "softmax")
    assert_within(got, expected, 4 * EPS32 * np.nan_to_num(np.abs(expected)) + TINY32, what="softmax")
    dx = ops.activation_backward(np.ones(z.shape, np.float32), z, "softmax")
    assert_within(dx, expected_dx, 4 * EPS32 * (np.nan_to_num(np.abs(expected)) * 2) + TINY32, what="softmax dx")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_out_buffer_and_in_place(isa, rng, case):
    name, params = case
    z, dy = _inputs(rng, (9, 13), name)
    y_ref = ops.activation_forward(z, name, **params)
    dx_ref = ops.activation_backward(dy, z, name, **params)

    out = np.full(z.shape, np.nan, np.float32)
    assert ops.activation_forward(z, name, **params, out=out) is out
    assert_bitwise_equal(out, y_ref, what="forward out=")
    out = np.full(z.shape, np.nan, np.float32)
    assert ops.activation_backward(dy, z, name, **params, out=out) is out
    assert_bitwise_equal(out, dx_ref, what="backward out=")

    x = z.copy()  # forward in place: out=x
    assert ops.activation_forward(x, name, **params, out=x) is x
    assert_bitwise_equal(x, y_ref, what="forward out=x")
    g = dy.copy()  # backward in place over dy, and over x
    assert ops.activation_backward(g, z, name, **params, out=g) is g
    assert_bitwise_equal(g, dx_ref, what="backward out=dy")
    x = z.copy()
    assert ops.activation_backward(dy, x, name, **params, out=x) is x
    assert_bitwise_equal(x, dx_ref, what="backward out=x")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_bit_identical_for_any_thread_count(isa, rng, case):
    name, params = case
    z, dy = _inputs(rng, (301, 129), name)  # 38,829 elements: several tasks
    runs = []
    for threads in (1, all_threads()):
        with num_threads(threads):
            runs.append((ops.activation_forward(z, name, **params), ops.activation_backward(dy, z, name, **params)))
    assert_bitwise_equal(runs[1][0], runs[0][0], what="forward")
    assert_bitwise_equal(runs[1][1], runs[0][1], what="backward")


@pytest.mark.parametrize("case", [("relu", {}), ("gelu", {"approximate": False}), ("softmax", {})], ids=case_id)
def test_other_dtypes_and_layouts_are_converted(isa, rng, case):
    name, params = case
    z64 = rng.standard_normal((12, 10))
    view = z64[:, ::2]  # float64, not contiguous
    expected = ops.activation_forward(f32(view), name, **params)
    assert_bitwise_equal(ops.activation_forward(view, name, **params), expected)
    dy = rng.integers(-3, 4, size=view.shape)  # int64 dy
    assert_bitwise_equal(ops.activation_backward(dy, view, name, **params),
                         ops.activation_backward(f32(dy), f32(view), name, **params))


def test_every_public_activation_name_is_covered():
    assert {name for name, _ in CASES} == set(ops.ACTIVATIONS)


def test_none_is_linear_and_unknown_names_raise(isa):
    x = f32([1.5, -2.0])
    assert_bitwise_equal(ops.activation_forward(x, None), x)
    with pytest.raises(ValueError, match="bogus"):
        ops.activation_forward(x, "bogus")

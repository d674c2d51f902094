"""ops.dense_forward / dense_backward against the float64 reference, on every CPU path.

Tolerances are the GEMM bound (helpers.gemm_bound: 3 K EPS32 times the sum of magnitudes) carried
through the activation, plus the activation's own rounding (helpers.ACTIVATION_ULPS):
 forward   z: Bz = 3 max(in, 1) EPS32 (|x| @ |W| + |b|)
           y: |f'| Bz (the largest |f'| within z +- Bz) + the activation's bound
              (softmax: y_j (Bz_j + sum_k y_k Bz_k))
 backward  dz = dy f'(z) within Bdz (activation backward bound), then
           dkernel: GEMM bound of x^T dz + |x|^T @ Bdz ; dx: GEMM bound of dz W^T + Bdz @ |W|^T ;
           dbias: 3 max(batch, 1) EPS32 sum_rows |dz| + sum_rows Bdz
"""
import numpy as np
import pytest

import reference as R
from gradsmith import ops
from helpers import (EPS32, TINY32, activation_backward_bound, activation_forward_bound, all_threads,
                     assert_bitwise_equal, assert_within, case_id, f32, f64, gemm_bound, num_threads)

CASES = R.ACTIVATIONS
# (batch, in, units): empty batch, one sample, Keras-like in=20 units=128, odd sizes, in=0, sizes
# large enough for the threaded GEMM and the threaded dz/bias pass, and few units (the GEMM's transposed
# route on every CPU path: (128, 40, 6) for AVX-512 and AVX2, (160, 40, 3) for scalar too).
SHAPES = [(0, 5, 7), (1, 1, 1), (1, 20, 128), (3, 7, 5), (4, 0, 6), (17, 20, 128), (64, 33, 65),
          (31, 257, 13), (130, 70, 260), (128, 40, 6), (160, 40, 3)]


def _layer(rng, batch, n_in, units, use_bias=True):
    x = f32(rng.standard_normal((batch, n_in)))
    kernel = f32(rng.standard_normal((n_in, units)) / np.sqrt(max(n_in, 1)))
    bias = f32(0.5 * rng.standard_normal(units)) if use_bias else None
    return x, kernel, bias


def _preactivation_bound(x, kernel, bias):
    mag = np.abs(f64(x)) @ np.abs(f64(kernel))
    if bias is not None:
        mag = mag + np.abs(f64(bias))
    return 3.0 * max(x.shape[1], 1) * EPS32 * mag + TINY32


def _output_bound(name, params, z, bz):
    """Bound on y = f(z) when z is known within bz: f's slope times bz, plus f's own rounding."""
    with np.errstate(all="ignore"):
        if name == "softmax":
            y = R.activation_forward(z, name, **params) if z.size else np.zeros(z.shape)
            carried = y * (bz + np.sum(y * bz, axis=-1, keepdims=True))
        else:
            slope = np.max([np.abs(R.activation_backward(np.ones_like(z), z + d, name, **params))
                            for d in (-bz, 0.0, bz)], axis=0)
            carried = slope * bz
    own = activation_forward_bound(name, params, z) if z.size else 0.0
    return carried + own


# Every shape with a bias; a few without.
FORWARD = [(shape, True) for shape in SHAPES] + [(shape, False) for shape in [(1, 1, 1), (3, 7, 5), (64, 33, 65)]]


@pytest.mark.parametrize("shape, use_bias", FORWARD, ids=[f"{s}-{'bias' if b else 'no_bias'}" for s, b in FORWARD])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_dense_forward_matches_reference(isa, rng, case, shape, use_bias):
    name, params = case
    x, kernel, bias = _layer(rng, *shape, use_bias)
    y, z = ops.dense_forward(x, kernel, bias, name, **params, return_preactivation=True)
    assert y.shape == z.shape == (shape[0], shape[2]) and y.dtype == z.dtype == np.float32
    y_ref, z_ref = R.dense_forward(x, kernel, bias, name, **params) if y.size else (np.zeros(y.shape),) * 2
    bz = _preactivation_bound(x, kernel, bias)
    assert_within(z, z_ref, bz, what=f"{case_id(case)} preactivation")
    assert_within(y, y_ref, _output_bound(name, params, z_ref, bz), what=f"{case_id(case)} output")
    # Without return_preactivation, and into out=: the same bits.
    assert_bitwise_equal(ops.dense_forward(x, kernel, bias, name, **params), y)
    out = np.full(y.shape, np.nan, np.float32)
    assert ops.dense_forward(x, kernel, bias, name, **params, out=out) is out
    assert_bitwise_equal(out, y)


# Every shape with all outputs; use_bias=False / need_dx=False on a few.
BACKWARD = ([(shape, True, True) for shape in SHAPES]
            + [(shape, use_bias, need_dx) for shape in [(1, 1, 1), (64, 33, 65)]
               for use_bias, need_dx in [(False, True), (True, False), (False, False)]])


@pytest.mark.parametrize("shape, use_bias, need_dx", BACKWARD,
                         ids=[f"{s}-{'bias' if b else 'no_bias'}-{'dx' if d else 'no_dx'}" for s, b, d in BACKWARD])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_dense_backward_matches_reference(isa, rng, case, shape, use_bias, need_dx):
    name, params = case
    x, kernel, bias = _layer(rng, *shape)
    _, z = ops.dense_forward(x, kernel, bias, name, **params, return_preactivation=True)
    dy = f32(rng.standard_normal(z.shape))
    dx, dkernel, dbias = ops.dense_backward(dy, x, kernel, z, name, **params, use_bias=use_bias, need_dx=need_dx)
    assert (dx is None) == (not need_dx) and (dbias is None) == (not use_bias)
    assert dkernel.shape == kernel.shape and dkernel.dtype == np.float32

    if z.size:
        dx_ref, dkernel_ref, dbias_ref = R.dense_backward(dy, x, kernel, f64(z), name, **params)
        dz_ref = R.activation_backward(f64(dy), f64(z), name, **params)
        bdz = activation_backward_bound(name, params, f64(z), f64(dy))
    else:  # the reference's softmax cannot reduce an empty row; the answer is all zeros
        dx_ref, dkernel_ref, dbias_ref = np.zeros(x.shape), np.zeros(kernel.shape), np.zeros(kernel.shape[1])
        dz_ref, bdz = np.zeros(z.shape), np.zeros(z.shape)

    bound_dkernel = gemm_bound(x, dz_ref, transpose_a=True) + np.abs(f64(x)).T @ bdz
    assert_within(dkernel, dkernel_ref, bound_dkernel, what=f"{case_id(case)} dkernel")
    if need_dx:
        assert dx.shape == x.shape
        bound_dx = gemm_bound(dz_ref, kernel, transpose_b=True) + bdz @ np.abs(f64(kernel)).T
        assert_within(dx, dx_ref, bound_dx, what=f"{case_id(case)} dx")
    if use_bias:
        assert dbias.shape == (kernel.shape[1],)
        bound_dbias = 3.0 * max(x.shape[0], 1) * EPS32 * np.sum(np.abs(dz_ref), axis=0) + np.sum(bdz, axis=0) + TINY32
        assert_within(dbias, dbias_ref, bound_dbias, what=f"{case_id(case)} dbias")

    # The optional outputs do not change the others.
    full = ops.dense_backward(dy, x, kernel, z, name, **params)
    assert_bitwise_equal(dkernel, full[1])
    if need_dx:
        assert_bitwise_equal(dx, full[0])
    if use_bias:
        assert_bitwise_equal(dbias, full[2])


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_bit_identical_for_any_thread_count(isa, rng, case):
    """Forward, dx, dkernel and especially dbias (summed over rows in order) agree bitwise for 1 and N threads."""
    name, params = case
    x, kernel, bias = _layer(rng, 300, 70, 257)  # 77,100 outputs: the dz/bias pass and GEMMs use threads
    dy = f32(rng.standard_normal((300, 257)))
    runs = []
    for threads in (1, all_threads()):
        with num_threads(threads):
            y, z = ops.dense_forward(x, kernel, bias, name, **params, return_preactivation=True)
            runs.append((y, z) + ops.dense_backward(dy, x, kernel, z, name, **params))
    for what, a, b in zip(["y", "z", "dx", "dkernel", "dbias"], runs[0], runs[1]):
        assert_bitwise_equal(b, a, what=what)


def test_dense_backward_linear_dbias_is_column_sum(isa, rng):
    """Linear: dz = dy, so dbias is exactly ops.sum_rows(dy)."""
    x, kernel, _ = _layer(rng, 40, 9, 11)
    dy = f32(rng.standard_normal((40, 11)))
    _, _, dbias = ops.dense_backward(dy, x, kernel, f32(rng.standard_normal((40, 11))), "linear")
    assert_bitwise_equal(dbias, ops.sum_rows(dy))


@pytest.mark.parametrize("x_shape, kernel_shape, bias_shape", [
    ((3, 4), (5, 6), None), ((3, 4), (4, 6), (5,)), ((3, 4), (4, 6), (6, 1)),
])
def test_dense_shape_errors(isa, x_shape, kernel_shape, bias_shape):
    bias = None if bias_shape is None else np.ones(bias_shape, np.float32)
    with pytest.raises(ValueError, match="shape"):
        ops.dense_forward(np.ones(x_shape, np.float32), np.ones(kernel_shape, np.float32), bias)

"""ops.matmul against the float64 reference GEMM, on every CPU path and thread count.

Tolerance (earned, element-wise): |C - ref| <= 3 * max(K, 1) * EPS32 * (|alpha| |A|@|B| + |beta| |C0|)
(see helpers.gemm_bound): a float32 dot product of length K errs by at most ~K unit roundoffs of
the sum of the magnitudes of its terms, whatever the order or FMA use.
"""
import numpy as np
import pytest

import reference as R
from gradsmith import ops
from helpers import all_threads, assert_bitwise_equal, assert_within, f32, gemm_bound, num_threads

TRANSPOSES = [(False, False), (True, False), (False, True), (True, True)]
TRANSPOSE_IDS = ["NN", "TN", "NT", "TT"]

# (M, N, K): empty, unit, odd, around the SIMD widths (8, 16, 32) and micro-tiles (12x32, 6x16,
# 4x8), across the K block (256, long K 3000), past MC (192) and NC (3072); narrow N with many rows
# crosses the small path's 256-row blocks (the transposed-A form for weight gradients).
SHAPES = [
    (0, 5, 3), (4, 0, 3), (0, 0, 0), (3, 5, 0), (1, 1, 1), (1, 37, 1), (37, 1, 19), (7, 9, 13),
    (4, 8, 3), (6, 16, 8), (12, 32, 256), (11, 31, 255), (13, 33, 257), (5, 17, 16), (17, 15, 33),
    (25, 65, 100), (97, 130, 300), (200, 211, 64), (193, 47, 513), (5, 17, 3000), (13, 3100, 40),
    (600, 3, 50), (1000, 1, 100), (257, 15, 7),
]


def _operands(rng, m, n, k, ta, tb):
    a = f32(rng.standard_normal((k, m) if ta else (m, k)))
    b = f32(rng.standard_normal((n, k) if tb else (k, n)))
    return a, b


@pytest.mark.parametrize("ta, tb", TRANSPOSES, ids=TRANSPOSE_IDS)
@pytest.mark.parametrize("m, n, k", SHAPES, ids=lambda v: str(v))
def test_matmul_matches_reference(isa, rng, m, n, k, ta, tb):
    a, b = _operands(rng, m, n, k, ta, tb)
    got = ops.matmul(a, b, transpose_a=ta, transpose_b=tb)
    assert got.dtype == np.float32 and got.shape == (m, n) and got.flags.c_contiguous
    assert_within(got, R.gemm(a, b, ta, tb), gemm_bound(a, b, ta, tb), what=f"matmul {m}x{n}x{k} {ta=} {tb=}")


@pytest.mark.parametrize("alpha, beta", [
    (1.0, 1.0), (2.5, -0.5), (-1.0, 0.3), (0.0, 2.0), (0.7, 1.0), (1.0, -1.0),
])
@pytest.mark.parametrize("ta, tb", TRANSPOSES, ids=TRANSPOSE_IDS)
# (120, 5, 40) and (90, 1, 70) take the few-column and one-column routes of cpp/cpu/gemm.cpp.
@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (13, 33, 257), (200, 40, 300), (120, 5, 40), (90, 1, 70)], ids=str)
def test_alpha_beta_accumulate_into_out(isa, rng, m, n, k, ta, tb, alpha, beta):
    a, b = _operands(rng, m, n, k, ta, tb)
    c0 = f32(rng.standard_normal((m, n)))
    out = c0.copy()
    got = ops.matmul(a, b, transpose_a=ta, transpose_b=tb, alpha=alpha, beta=beta, out=out)
    assert got is out
    assert_within(out, R.gemm(a, b, ta, tb, alpha, beta, c0), gemm_bound(a, b, ta, tb, alpha, beta, c0),
                  what=f"alpha={alpha} beta={beta}")


@pytest.mark.parametrize("alpha", [1.0, -2.0])
@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (7, 9, 13), (12, 32, 256), (50, 70, 300), (120, 5, 40)], ids=str)
def test_beta_zero_never_reads_out(isa, rng, m, n, k, alpha):
    """BLAS convention: with beta == 0, NaN/Inf already in out= must not leak into C."""
    a, b = _operands(rng, m, n, k, False, False)
    out = np.full((m, n), np.nan, dtype=np.float32)
    out[::2] = np.inf
    got = ops.matmul(a, b, alpha=alpha, out=out)
    assert got is out
    assert_within(out, R.gemm(a, b, alpha=alpha), gemm_bound(a, b, alpha=alpha), what="beta=0 with poisoned out")


@pytest.mark.parametrize("beta", [0.0, 1.0, -3.0])
@pytest.mark.parametrize("m, n", [(1, 1), (5, 40), (33, 7)])
def test_k_zero_gives_beta_c(isa, rng, m, n, beta):
    """K == 0: op(A) @ op(B) is all zeros, so C = beta * C0 (beta 0: zeros, even over NaN)."""
    a, b = np.ones((m, 0), np.float32), np.ones((0, n), np.float32)
    c0 = f32(rng.standard_normal((m, n))) if beta != 0.0 else np.full((m, n), np.nan, np.float32)
    out = c0.copy()
    ops.matmul(a, b, beta=beta, out=out)
    expected = np.zeros((m, n)) if beta == 0.0 else beta * c0.astype(np.float64)
    assert_within(out, expected, gemm_bound(a, b, beta=beta, c=c0 if beta else None), what=f"K=0 beta={beta}")
    if beta == 0.0:
        assert_bitwise_equal(ops.matmul(a, b), np.zeros((m, n), np.float32))


@pytest.mark.parametrize("ta, tb", TRANSPOSES, ids=TRANSPOSE_IDS)
@pytest.mark.parametrize("layout", ["slices", "transposed_views", "fortran"])
def test_non_contiguous_inputs(isa, rng, layout, ta, tb):
    m, n, k = 19, 35, 41
    a, b = _operands(rng, m, n, k, ta, tb)
    if layout == "slices":  # every other row and column of a larger array
        big_a = f32(rng.standard_normal((2 * a.shape[0], 3 * a.shape[1])))
        big_b = f32(rng.standard_normal((2 * b.shape[0], 3 * b.shape[1])))
        big_a[::2, 1::3], big_b[::2, 1::3] = a, b
        a_in, b_in = big_a[::2, 1::3], big_b[::2, 1::3]
    elif layout == "transposed_views":  # .T of a C-contiguous array of the transposed shape
        a_in, b_in = np.ascontiguousarray(a.T).T, np.ascontiguousarray(b.T).T
    else:
        a_in, b_in = np.asfortranarray(a), np.asfortranarray(b)
    assert not a_in.flags.c_contiguous and not b_in.flags.c_contiguous
    got = ops.matmul(a_in, b_in, transpose_a=ta, transpose_b=tb)
    assert_within(got, R.gemm(a, b, ta, tb), gemm_bound(a, b, ta, tb), what=layout)
    # Layout does not change the arithmetic: same bits as the contiguous call.
    assert_bitwise_equal(got, ops.matmul(a, b, transpose_a=ta, transpose_b=tb), what=layout)


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64, np.uint8, np.bool_, np.float16])
def test_other_dtypes_are_converted(isa, rng, dtype):
    m, n, k = 9, 21, 14
    if np.dtype(dtype).kind == "f":
        a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    elif dtype is np.bool_:
        a, b = rng.random((m, k)) < 0.5, rng.random((k, n)) < 0.5
    else:
        a, b = rng.integers(0, 9, (m, k)).astype(dtype), rng.integers(0, 9, (k, n)).astype(dtype)
    got = ops.matmul(a, b)
    assert got.dtype == np.float32
    # The kernel works on the float32 values of the inputs.
    assert_within(got, R.gemm(f32(a), f32(b)), gemm_bound(a, b), what=str(dtype))
    assert_bitwise_equal(got, ops.matmul(f32(a), f32(b)))


def test_python_lists_are_accepted(isa):
    got = ops.matmul([[1, 2], [3, 4]], [[5.0], [6.0]])
    assert_bitwise_equal(got, np.array([[17.0], [39.0]], np.float32))


@pytest.mark.parametrize("operand", ["a", "b"])
def test_out_aliasing_an_input(isa, rng, operand):
    """out= that is also an input: the result is as if the input had been read first."""
    a, b = f32(rng.standard_normal((24, 24))), f32(rng.standard_normal((24, 24)))
    expected = R.gemm(a, b, alpha=1.5, beta=0.5, c=a if operand == "a" else b)
    bound = gemm_bound(a, b, alpha=1.5, beta=0.5, c=a if operand == "a" else b)
    out = a.copy() if operand == "a" else b.copy()
    args = (out, b) if operand == "a" else (a, out)
    assert ops.matmul(*args, alpha=1.5, beta=0.5, out=out) is out
    assert_within(out, expected, bound, what=f"out aliases {operand}")


@pytest.mark.parametrize("ta, tb", TRANSPOSES, ids=TRANSPOSE_IDS)
@pytest.mark.parametrize("m, n, k", [(200, 300, 600), (50, 700, 300), (13, 3100, 40), (385, 97, 257)], ids=str)
def test_bit_identical_for_any_thread_count(isa, rng, m, n, k, ta, tb):
    """Each C element is summed over K in one fixed order: 1 thread and N threads agree bitwise.
    (With the single-thread results checked against the reference elsewhere, this also covers the
    threaded path's correctness; products under ~1.8 MFlop run on one thread whatever the setting.)"""
    a, b = _operands(rng, m, n, k, ta, tb)
    c0 = f32(rng.standard_normal((m, n)))
    results = []
    for threads in (1, all_threads(), 3):
        with num_threads(threads):
            results.append((ops.matmul(a, b, transpose_a=ta, transpose_b=tb),
                            ops.matmul(a, b, transpose_a=ta, transpose_b=tb, alpha=0.5, beta=-2.0,
                                       out=c0.copy())))
    for plain, accumulated in results[1:]:
        assert_bitwise_equal(plain, results[0][0], what="beta=0")
        assert_bitwise_equal(accumulated, results[0][1], what="beta=-2")


def test_beta_nonzero_requires_out(isa):
    with pytest.raises(ValueError, match="out"):
        ops.matmul(np.ones((2, 3)), np.ones((3, 4)), beta=1.0)


@pytest.mark.parametrize("ta, tb, a_shape, b_shape", [
    (False, False, (2, 3), (4, 5)), (True, False, (2, 3), (3, 5)), (False, True, (2, 3), (5, 4)),
])
def test_inner_dimension_mismatch(isa, ta, tb, a_shape, b_shape):
    with pytest.raises(ValueError, match="inner"):
        ops.matmul(np.ones(a_shape), np.ones(b_shape), transpose_a=ta, transpose_b=tb)

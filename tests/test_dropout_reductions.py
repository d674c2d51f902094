"""Philox4x32-10, dropout, reductions and metric counts against the reference, on every CPU path.

Dropout masks and metric counts must match the reference exactly; kept dropout values are
x / float32(1 - rate), two roundings, so within 2 EPS32 relative (measured 1.75; 3 allowed); float
sums within the classical summation bounds.
"""
import numpy as np
import pytest

import reference as R
from gradsmith import ops
from helpers import (EPS32, TINY32, all_threads, assert_bitwise_equal, assert_within, f32, f64, num_threads)

MASK32 = 0xFFFFFFFF


# --- Philox4x32-10 -----------------------------------------------------------------------------

@pytest.mark.parametrize("counter, key, expected", [  # Random123 known-answer vectors
    ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([MASK32] * 4, [MASK32] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0],
     [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
])
def test_philox_known_answers(counter, key, expected):
    assert ops.philox4x32(counter, key) == tuple(expected)


def test_philox_matches_reference_on_random_words(rng):
    counters = rng.integers(0, 2**32, size=(200, 4), dtype=np.uint64)
    keys = rng.integers(0, 2**32, size=(200, 2), dtype=np.uint64)
    for counter, key in zip(counters, keys):
        expected = R.philox4x32(counter.astype(np.uint32), key.astype(np.uint32)).tolist()
        assert list(ops.philox4x32(counter.tolist(), key.tolist())) == expected


@pytest.mark.parametrize("counter, key", [([0, 0, 0, 2**32], [0, 0]), ([0, 0, 0, 0], [-1, 0])])
def test_philox_rejects_words_out_of_range(counter, key):
    with pytest.raises(ValueError):
        ops.philox4x32(counter, key)


# --- dropout -----------------------------------------------------------------------------------

# Shapes: empty, one element, a partial Philox block (3), odd 2-D and 3-D, and > 16K elements
# (several tasks, whose boundaries fall inside Philox blocks only if miscounted).
DROPOUT_SHAPES = [(0,), (1,), (3,), (5, 7), (3, 4, 5), (1001,), (300, 257)]
SEEDS = [0, 1234, 2**40 + 5, 2**64 - 1]
OFFSETS = [0, 7, 2**33 + 1, 2**64 - 1]


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.9, 0.999])
@pytest.mark.parametrize("shape", DROPOUT_SHAPES, ids=str)
def test_dropout_mask_matches_reference_exactly(isa, threads, rng, shape, rate):
    seed, offset = int(rng.choice(SEEDS)), int(rng.choice(OFFSETS))
    got = ops.dropout_mask(shape, rate, seed, offset)
    assert got.dtype == np.bool_ and got.shape == shape
    assert_bitwise_equal(got, R.dropout_mask(shape, rate, seed, offset), what=f"seed={seed} offset={offset}")


@pytest.mark.parametrize("seed, offset", [(s, o) for s in SEEDS for o in OFFSETS])
def test_dropout_mask_every_seed_and_offset(isa, seed, offset):
    assert_bitwise_equal(ops.dropout_mask((7, 9), 0.5, seed, offset), R.dropout_mask((7, 9), 0.5, seed, offset))


def test_negative_seed_wraps_like_uint64(isa):
    assert_bitwise_equal(ops.dropout_mask((50,), 0.5, -1), R.dropout_mask((50,), 0.5, 2**64 - 1))


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.3, 0.5, 0.75, 0.9, 0.99])
@pytest.mark.parametrize("shape", [(1,), (5, 7), (3, 4, 5), (300, 257)], ids=str)
def test_dropout_forward_and_backward_match_reference(isa, threads, rng, shape, rate):
    """Dropped elements exactly 0 (the reference's mask), kept ones x / (1 - rate) within 3 EPS32."""
    seed, offset = int(rng.choice(SEEDS)), int(rng.choice(OFFSETS))
    x = f32(rng.standard_normal(shape))
    mask = R.dropout_mask(shape, rate, seed, offset)
    expected = R.dropout_forward(f64(x), rate, seed, offset)
    for fn in (ops.dropout_forward, ops.dropout_backward):
        got = fn(x, rate, seed, offset)
        assert got.dtype == np.float32 and got.shape == shape
        assert_bitwise_equal(got[~mask], np.zeros(int((~mask).sum()), np.float32), what="dropped")
        assert_within(got, expected, 3 * EPS32 * np.abs(expected), what=f"{fn.__name__} rate={rate}")
    # backward is the same mask and scale as forward: identical bits
    assert_bitwise_equal(ops.dropout_backward(x, rate, seed, offset), ops.dropout_forward(x, rate, seed, offset))


def test_dropout_out_buffer_and_offsets_change_the_mask(isa, rng):
    x = f32(rng.standard_normal((40, 50)))
    out = np.full(x.shape, np.nan, np.float32)
    assert ops.dropout_forward(x, 0.5, 3, 11, out=out) is out
    assert_bitwise_equal(out, ops.dropout_forward(x, 0.5, 3, 11))
    assert ops.dropout_forward(x, 0.5, 3, 11, out=x) is x  # in place
    assert_bitwise_equal(x, out)
    assert not np.array_equal(ops.dropout_mask((40, 50), 0.5, 3, 11), ops.dropout_mask((40, 50), 0.5, 3, 12))
    assert not np.array_equal(ops.dropout_mask((40, 50), 0.5, 3, 11), ops.dropout_mask((40, 50), 0.5, 4, 11))


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_keep_fraction(isa, rate):
    """On 10^6 elements the kept fraction is 1 - rate within 5 standard deviations."""
    n = 1_000_000
    kept = ops.dropout_mask((n,), rate, 2024, 1).mean()
    assert abs(kept - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / n)


@pytest.mark.parametrize("shape", [(1_000_003,), (3000, 257)], ids=str)
def test_dropout_bit_identical_for_any_thread_count(isa, rng, shape):
    x = f32(rng.standard_normal(shape))
    runs = []
    for threads in (1, all_threads(), 3):
        with num_threads(threads):
            runs.append(ops.dropout_forward(x, 0.3, 99, 5))
    for y in runs[1:]:
        assert_bitwise_equal(y, runs[0])


def test_dropout_mask_at_rates_float32_cannot_hold(isa):
    """Spec: keep iff u >= rate, u = k * 2**-24 and rate a Python float. A rate just above some u
    (closer to u than float32 can tell) must still drop that element."""
    u = R.dropout_uniforms((64,), 42)
    i = int(np.argmax(u >= 0.5))  # in [0.5, 1) float32 is spaced 2**-24, exactly the u grid
    rate = float(u[i]) + 2.0**-26  # rounds to u[i] in float32
    assert not R.dropout_mask((64,), rate, 42)[i]
    assert_bitwise_equal(ops.dropout_mask((64,), rate, 42), R.dropout_mask((64,), rate, 42),
                         what=f"rate={rate!r} vs u[{i}]={u[i]!r}")


def test_dropout_rate_just_below_one_is_valid(isa):
    """rate in [0, 1) is valid; 1 - 2**-30 rounds to 1.0 in float32 but must drop everything, not raise."""
    rate = 1.0 - 2.0**-30
    assert_bitwise_equal(ops.dropout_mask((10,), rate, 1), np.zeros(10, bool))


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan")])
def test_dropout_rate_out_of_range_raises(isa, rate):
    with pytest.raises(ValueError, match="rate"):
        ops.dropout_forward(np.ones(3, np.float32), rate, 0)


# --- sums --------------------------------------------------------------------------------------

def _sum_bound(x, squares=False):
    """Double accumulation of n float32 terms, against NumPy's float64 sum: each errs by at most
    n * 2**-53 * sum|terms| (both sides counted)."""
    t = f64(x) ** 2 if squares else np.abs(f64(x))
    return 2.0 * max(x.size, 1) * 2.0**-53 * float(np.sum(t)) + 1e-300


@pytest.mark.parametrize("shape", [(0,), (1,), (7,), (8,), (9,), (5, 17), (3, 4, 5), (16385,), (1_000_003,)], ids=str)
def test_sum_and_sum_squares_match_reference(isa, threads, rng, shape):
    x = f32(rng.standard_normal(shape) * 3.0 + 0.5)
    got, got_sq = ops.sum(x), ops.sum_squares(x)
    assert isinstance(got, float) and isinstance(got_sq, float)
    assert abs(got - R.sum(x)) <= _sum_bound(x)
    assert abs(got_sq - R.sum_squares(x)) <= _sum_bound(x, squares=True)


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (1, 1), (7, 3), (1, 300), (300, 1), (33, 257), (1000, 31)],
                         ids=str)
def test_sum_rows_matches_reference(isa, threads, rng, shape):
    """Column sums in float32 down the rows: within the recursive-summation bound rows * EPS32 * sum|x|."""
    x = f32(rng.standard_normal(shape))
    got = ops.sum_rows(x)
    assert got.dtype == np.float32 and got.shape == (shape[1],)
    bound = 1.01 * max(shape[0] - 1, 1) * EPS32 * np.sum(np.abs(f64(x)), axis=0) + TINY32
    assert_within(got, R.sum_rows(x), bound, what="sum_rows")
    out = np.full(shape[1], np.nan, np.float32)
    assert ops.sum_rows(x, out=out) is out
    assert_bitwise_equal(out, got)


def test_sums_accept_other_dtypes_and_layouts(isa, rng):
    x = rng.standard_normal((40, 60))
    view = x[::2, 1::3]
    assert ops.sum(view) == ops.sum(f32(view))
    assert ops.sum_squares(view) == ops.sum_squares(f32(view))
    assert_bitwise_equal(ops.sum_rows(view), ops.sum_rows(f32(view)))
    assert ops.sum(np.arange(10)) == 45.0 and ops.sum([True, False, True]) == 2.0


@pytest.mark.parametrize("shape", [(1_000_000,), (3000, 257)], ids=str)
def test_sums_bit_identical_for_any_thread_count(isa, rng, shape):
    x = f32(rng.standard_normal(shape) + 0.25)
    runs = []
    for threads in (1, all_threads(), 3):
        with num_threads(threads):
            rows = ops.sum_rows(x) if x.ndim == 2 else None
            runs.append((ops.sum(x), ops.sum_squares(x), rows))
    for s, sq, rows in runs[1:]:
        assert s == runs[0][0] and sq == runs[0][1]
        if rows is not None:
            assert_bitwise_equal(rows, runs[0][2])


# --- metric counts -----------------------------------------------------------------------------

@pytest.mark.parametrize("y_true, y_pred, kind, threshold, expected", [
    ([1, 0, 1, 0], [0.7, 0.5, 0.5, np.nan], "binary", 0.5, 3),       # p > 0.5 strictly; NaN -> 0.0
    ([[1, 0], [0, 1]], [[0.3, 0.2], [0.9, 0.8]], "binary", 0.25, 3),
    ([1.0, np.nan, 0.0], [0.9, 0.9, 0.1], "binary", 0.5, 2),          # NaN label matches nothing
    ([[0, 1, 0], [1, 0, 0]], [[0.2, 0.2, 0.1], [0.9, 0.0, 0.1]], "categorical", 0.5, 1),  # tie -> first
    ([[0, 0, 1], [np.nan, 1, 0]], [[np.nan, 0.0, 5.0], [0.1, np.nan, 0.3]], "categorical", 0.5, 0),
    ([2, 1, 0], [[1.0, np.nan, np.nan], [0.0, np.nan, 5.0], [0.1, 0.2, 0.3]], "sparse", 0.5, 1),  # first NaN wins
    ([[0.0], [0.0]], [[0.3], [0.9]], "sparse", 0.5, 2),               # (N, 1) float labels, one class
    ([0, 0, 0], [0.3, 0.9, -1.0], "sparse", 0.5, 3),                  # 1-D y_pred: one class
    ([1, 1], [[5.0, 5.0], [-np.inf, -np.inf]], "sparse", 0.5, 0),    # ties and -inf -> index 0
])
def test_count_correct_cases(isa, y_true, y_pred, kind, threshold, expected):
    assert R.count_correct(y_true, y_pred, kind, threshold) == expected
    got = ops.count_correct(y_true, y_pred, kind, threshold)
    assert isinstance(got, int) and got == expected


def _count_inputs(rng, kind, n, c):
    pred = f32(rng.integers(0, 4, size=(n, c)) / 4.0)  # many ties
    pred[rng.random(pred.shape) < 0.02] = np.nan
    if kind == "binary":
        true = f32(rng.random((n, c)) < 0.5)
    elif kind == "categorical":
        true = f32(np.eye(c)[rng.integers(0, c, n)])
    else:
        true = rng.integers(0, c, n)
    return true, pred


@pytest.mark.parametrize("kind", ["binary", "categorical", "sparse"])
@pytest.mark.parametrize("n, c", [(0, 3), (1, 1), (17, 5), (3000, 10)], ids=str)
def test_count_correct_matches_reference(isa, threads, rng, kind, n, c):
    true, pred = _count_inputs(rng, kind, n, c)
    for threshold in (0.5, 0.25):
        assert ops.count_correct(true, pred, kind, threshold) == R.count_correct(true, pred, kind, threshold)


@pytest.mark.parametrize("threshold", [0.5, 0.0, 0.75])
@pytest.mark.parametrize("shape", [(0,), (1,), (9,), (9, 1), (100, 3), (40_000,)], ids=str)
def test_binary_confusion_matches_reference(isa, threads, rng, shape, threshold):
    true = f32(rng.integers(0, 3, size=shape))  # 2 is positive too (Keras casts to bool)
    pred = f32(rng.integers(0, 5, size=shape) / 4.0)  # values equal to the thresholds
    pred[rng.random(shape) < 0.05] = np.nan
    got = ops.binary_confusion(true, pred, threshold)
    assert got == R.binary_confusion(true, pred, threshold)
    assert sum(got) == int(np.prod(shape))


def test_binary_confusion_column_against_flat(isa, rng):
    true, pred = f32(rng.integers(0, 2, 30)), f32(rng.random(30))
    assert ops.binary_confusion(true.reshape(30, 1), pred) == ops.binary_confusion(true, pred.reshape(30, 1)) \
        == R.binary_confusion(true, pred)

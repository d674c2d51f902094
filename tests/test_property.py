"""Property-based tests: random shapes, dtypes, memory layouts and values thrown at every
gradsmith.ops function.

Each call must either give the correct result (checked against the float64 NumPy reference in
tests/reference, with float32-appropriate tolerances) or, for genuinely invalid input (complex or
object dtypes, shapes that do not fit, bad labels, bad options), raise a clean TypeError/ValueError.
Any other exception, a crash, a wrong result or a wrong exception type fails.

Tolerances. Where every input of an output element is "ordinary" (finite, moderate magnitude) the
result is compared with the reference: element-wise functions to ~1e-5 relative plus a small
absolute term that scales with the inputs (float32 cancellation), matrix products and sums with
the standard float32 error bound 2 (K+2) eps sum|a||b|. Where inputs contain NaN/Inf/huge values,
float32 intermediates may legitimately overflow where the float64 reference does not, so there the
check is that NaN appears wherever the reference has NaN (NaN flows through), and, for element-wise
functions, that no finite input whose result is representable gives NaN.

The CPU path (scalar/avx2/avx512) and the thread count are drawn per example, so every path runs.
Examples are derandomized (no database): runs are reproducible.
"""
import contextlib
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import gradsmith
from gradsmith import _core, ops

import reference as R
from reference import losses as RL

# When a test fails, hypothesis's pytest plugin imports hypothesis.extra._patching (libcst), whose
# import emits a DeprecationWarning; with this project's filterwarnings = error that would abort the
# whole session with an INTERNALERROR instead of reporting the failure. Import it here, quietly.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        import hypothesis.extra._patching  # noqa: F401
    except Exception:  # pragma: no cover - optional dependency
        pass

F32MAX = float(np.finfo(np.float32).max)
EPS32 = float(np.finfo(np.float32).eps)
ISAS = list(_core.supported_isas())
THREADS = [1, max(2, os.cpu_count() or 1)]


# Longer, randomized runs (e.g. nightly): GRADSMITH_HYPOTHESIS_SCALE=20 GRADSMITH_HYPOTHESIS_RANDOM=1
_SCALE = float(os.environ.get("GRADSMITH_HYPOTHESIS_SCALE", "1"))
_RANDOM = os.environ.get("GRADSMITH_HYPOTHESIS_RANDOM") == "1"


def _settings(n):
    # no "explain" phase: its line tracing makes a failing test many times slower
    return settings(max_examples=max(1, int(n * _SCALE)), deadline=None, derandomize=not _RANDOM, database=None,
                    print_blob=True,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


FEW, SOME, MANY = _settings(30), _settings(60), _settings(120)

# --------------------------------------------------------------------------------------------- #
# Strategies
# --------------------------------------------------------------------------------------------- #

FLOAT_DTYPES = ["float16", "float32", "float64"]
INT_DTYPES = ["int8", "int32", "int64", "uint8", "bool"]
GOOD_DTYPES = FLOAT_DTYPES + INT_DTYPES
BAD_DTYPES = ["complex64", "object"]
ALL_DTYPES = GOOD_DTYPES + BAD_DTYPES
LAYOUTS = ["C", "F", "strided", "negative", "transposed", "broadcast"]

NAN, INF = float("nan"), float("inf")
HUGE_VALUES = [1e30, -1e30, 3.4e38, -3.4e38, 1e20, -1e20]
TINY_VALUES = [1e-40, -1e-40, 1e-45, -1e-45, 1e-38, 0.0, -0.0]
NONFINITE = [NAN, INF, -INF]


def is_bad(arr):
    return np.asarray(arr).dtype.kind not in "biuf"


def as32(arr):
    """What the kernel must see: NumPy's float32 conversion of the input."""
    with np.errstate(all="ignore"):
        return np.asarray(arr).astype(np.float32)


def layout(arr, how):
    if arr.ndim == 0 or how == "C":
        return arr
    if how == "F":
        return np.asfortranarray(arr)
    if how == "strided":
        buf = np.zeros(tuple(2 * max(d, 1) for d in arr.shape), dtype=arr.dtype)
        view = buf[tuple(slice(None, 2 * d, 2) for d in arr.shape)]
        view[...] = arr
        return view
    if how == "negative":
        return np.flip(np.ascontiguousarray(np.flip(arr)))
    if how == "transposed":
        return np.ascontiguousarray(arr.T).T
    if how == "broadcast":  # zero strides (read-only view), rows repeat the first one
        if arr.shape[0] == 0:
            return arr
        return np.broadcast_to(arr[:1], arr.shape)
    raise AssertionError(how)


@st.composite
def arrays(draw, shape, *, dtypes=ALL_DTYPES, lo=-3.0, hi=3.0, specials=True, nan=True, layouts=LAYOUTS):
    """An array of ``shape`` with a drawn dtype, memory layout and value regime."""
    dtype = draw(st.sampled_from(dtypes + ["float32"] * 2 if "float32" in dtypes else dtypes))
    how = draw(st.sampled_from(layouts))
    regimes = ["ordinary", "ordinary", "tiny"] + (["special", "special", "huge"] if specials else [])
    regime = draw(st.sampled_from(regimes))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    v = rng.uniform(lo, hi, size=shape)
    if regime == "tiny":
        pool = np.array(TINY_VALUES)
        v = np.where(rng.random(shape) < 0.3, pool[rng.integers(0, len(pool), size=shape)], v)
    elif regime == "special":
        pool = np.array(HUGE_VALUES + TINY_VALUES + (NONFINITE if nan else [INF, -INF]))
        v = np.where(rng.random(shape) < 0.25, pool[rng.integers(0, len(pool), size=shape)], v)
    elif regime == "huge":  # finite values near the top of the float32 range
        pool = np.array(HUGE_VALUES)
        v = np.where(rng.random(shape) < 0.3, pool[rng.integers(0, len(pool), size=shape)], v)
    with np.errstate(all="ignore"):
        if dtype == "bool":
            a = v > (lo + hi) / 2
        elif dtype in ("int8", "int32", "int64", "uint8"):
            info = np.iinfo(dtype)
            w = np.where(np.isfinite(v), v, 0.0)
            if np.dtype(dtype).kind == "u":
                w = np.abs(w)
            if regime in ("special", "huge"):  # extremes of the integer range (int64 ones are huge as float32)
                w = np.where(np.abs(w) > 1e19, np.sign(w) * 1e18, w)
                w = np.where(np.abs(w) > 1e5, np.clip(np.sign(w) * float(info.max), info.min, info.max), np.round(w))
            a = np.clip(np.round(w), info.min, info.max).astype(dtype)
        elif dtype == "complex64":
            a = (v + 0.5j).astype(np.complex64)
        elif dtype == "object":
            a = v.astype(object)
        else:
            a = v.astype(dtype)
    return layout(a, how)


def side(max_small=6, big=(17, 40)):
    return st.one_of(st.integers(0, max_small), st.integers(0, max_small), st.sampled_from(big))


@contextlib.contextmanager
def engine(data):
    """Run on a drawn CPU path and thread count, restore afterwards."""
    isa = data.draw(st.sampled_from(ISAS), label="isa")
    threads = data.draw(st.sampled_from(THREADS), label="threads")
    before = (_core.current_isa(), gradsmith.get_num_threads())
    _core.set_isa(isa)
    gradsmith.set_num_threads(threads)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the float64 reference's overflow/empty means
            yield
    finally:
        _core.set_isa(before[0])
        gradsmith.set_num_threads(before[1])


# --------------------------------------------------------------------------------------------- #
# Calling and checking
# --------------------------------------------------------------------------------------------- #

REJECTED = object()


def call_or_clean_error(fn, *args, bad_names=(), bad_shape=False, bad_other=False, **kwargs):
    """Call fn. Valid input must succeed. Invalid input must raise a clean error:
    ``bad_names`` (arguments with a bad dtype) -> TypeError whose message names one of them;
    ``bad_shape`` (a shape or memory-layout problem) -> ValueError;
    ``bad_other`` (a bad option or label) -> TypeError or ValueError.
    When several apply, any of their errors is accepted. Any other exception (or a crash)
    propagates and fails the test. Returns the result, or REJECTED."""
    invalid = bool(bad_names) or bad_shape or bad_other
    try:
        result = fn(*args, **kwargs)
    except TypeError as e:
        assert bad_names or bad_other, f"valid input rejected with TypeError: {e}"
        if bad_names and not (bad_shape or bad_other):
            assert any(n in str(e) for n in bad_names), f"TypeError names none of {bad_names}: {e}"
        return REJECTED
    except ValueError as e:
        assert bad_shape or bad_other, f"{'valid input' if not invalid else 'bad dtype'} rejected with ValueError: {e}"
        return REJECTED
    assert not invalid, f"invalid input accepted (bad dtype in {bad_names}, bad_shape={bad_shape}, " \
                        f"bad_other={bad_other}): returned {result!r}"
    return result


def bad_names(**arrays):
    return tuple(name for name, a in arrays.items() if a is not None and is_bad(a))


def ordinary(*arrays, limit=1e4):
    """Element-wise mask: every given array (broadcast) finite with |x| <= limit."""
    ok = True
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        ok = ok & np.isfinite(a) & (np.abs(a) <= limit)
    return np.asarray(ok)


def assert_close(got, ref, *, rtol, atol=0.0, where=None, what="result"):
    """|got - ref| <= atol + rtol |ref| (atol may be an array), NaN only against NaN, infinities
    equal, at positions ``where`` (default all). ``ref`` is float64; a float32 result may round to
    +-inf where |ref| is at the edge of the float32 range."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.broadcast_to(np.asarray(ref, dtype=np.float64), got.shape)
    atol = np.broadcast_to(np.asarray(atol, dtype=np.float64), got.shape)
    with np.errstate(all="ignore"):
        err = np.abs(got - ref)
        ok = err <= atol + rtol * np.abs(ref)
        ok |= np.isnan(got) & np.isnan(ref)
        ok |= np.isinf(got) & (got == ref)
        ok |= np.isinf(got) & (np.abs(ref) >= F32MAX * (1 - 4 * EPS32)) & (np.sign(got) == np.sign(ref))
    if where is not None:
        ok |= ~np.broadcast_to(where, got.shape)
    if not ok.all():
        idx = np.argwhere(~ok)[:6]
        detail = ", ".join(f"{tuple(i)}: got {got[tuple(i)]!r} want {ref[tuple(i)]!r} (atol {atol[tuple(i)]:.3g})"
                           for i in idx)
        raise AssertionError(f"{what}: {int((~ok).sum())} of {ok.size} elements differ: {detail}")


def assert_nan_where_reference_nan(got, ref, where=None, what="result"):
    """NaN flows through: wherever the float64 reference is NaN, so is the result."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.broadcast_to(np.asarray(ref, dtype=np.float64), got.shape)
    need = np.isnan(ref)
    if where is not None:
        need &= np.broadcast_to(where, got.shape)
    missing = need & ~np.isnan(got)
    if missing.any():
        idx = np.argwhere(missing)[:6]
        raise AssertionError(f"{what}: reference NaN but result not at "
                             + ", ".join(f"{tuple(i)} (got {got[tuple(i)]!r})" for i in idx))


def gemm_bound(a_abs, b_abs, k):
    """Standard float32 bound for a dot product of length k: 2 (k + 2) eps sum |a||b|."""
    return 2.0 * (k + 2) * EPS32 * (a_abs @ b_abs)


# --------------------------------------------------------------------------------------------- #
# GEMM
# --------------------------------------------------------------------------------------------- #


@given(data=st.data())
@MANY
def test_matmul(data):
    m, k, n = data.draw(side(), label="M"), data.draw(side(), label="K"), data.draw(side(), label="N")
    ta, tb = data.draw(st.booleans(), label="ta"), data.draw(st.booleans(), label="tb")
    mismatch = data.draw(st.sampled_from([False] * 7 + [True]), label="mismatch")
    kb = k + 1 if mismatch else k
    a = data.draw(arrays((k, m) if ta else (m, k)), label="a")
    b = data.draw(arrays((n, kb) if tb else (kb, n)), label="b")
    alpha = data.draw(st.sampled_from([1.0, 0.0, -0.5, 2.5, 1e-3]), label="alpha")
    beta = data.draw(st.sampled_from([0.0, 0.0, 1.0, -2.0]), label="beta")
    out = None
    if beta != 0.0 or data.draw(st.booleans(), label="give out"):
        out = as32(data.draw(arrays((m, n), dtypes=["float32"], layouts=["C"]), label="out"))
        out = np.ascontiguousarray(out)
    c_in = None if out is None else out.copy()
    with engine(data):
        got = call_or_clean_error(ops.matmul, a, b, ta, tb, alpha, beta, out,
                                  bad_names=bad_names(a=a, b=b), bad_shape=mismatch)
        if got is REJECTED:
            if out is not None:
                np.testing.assert_array_equal(out, c_in)  # a failed call writes nothing
            return
        assert got.shape == (m, n) and got.dtype == np.float32 and got.flags.c_contiguous
        if out is not None:
            assert got is out
        A, B = as32(a).astype(np.float64), as32(b).astype(np.float64)
        opA, opB = (A.T if ta else A), (B.T if tb else B)
        C = None if c_in is None else c_in.astype(np.float64)
        ref = R.gemm(A, B, ta, tb, alpha, beta, C)
        # Element (i, j) is comparable when row i of op(A), column j of op(B) (and C[i, j] if read)
        # are all ordinary: then no float32 intermediate can overflow.
        row_ok = ordinary(opA, limit=1e15).all(axis=1) if k else np.ones(m, bool)
        col_ok = ordinary(opB, limit=1e15).all(axis=0) if k else np.ones(n, bool)
        where = row_ok[:, None] & col_ok[None, :]
        tol = abs(alpha) * gemm_bound(np.abs(np.where(ordinary(opA, limit=1e15), opA, 0)),
                                      np.abs(np.where(ordinary(opB, limit=1e15), opB, 0)), k)
        if beta != 0.0:
            where &= ordinary(C, limit=1e15)
            tol = tol + 2 * EPS32 * np.abs(beta * np.where(ordinary(C, limit=1e15), C, 0))
        assert_close(got, ref, rtol=0.0, atol=tol + 1e-38, where=where, what="matmul")
        assert_nan_where_reference_nan(got, ref, what="matmul")


# --------------------------------------------------------------------------------------------- #
# Activations
# --------------------------------------------------------------------------------------------- #

ACT_IDS = [n + "".join(f"-{k}={v}" for k, v in kw.items()) for n, kw in R.ACTIVATIONS]


@st.composite
def nd_shapes(draw, min_ndim=1, max_ndim=4):
    ndim = draw(st.integers(min_ndim, max_ndim))
    shape = [draw(st.integers(0, 5)) for _ in range(ndim)]
    if ndim and draw(st.booleans()):
        shape[-1] = draw(st.sampled_from([1, 7, 17, 40]))
    return tuple(shape)


def forward_tolerance(z):
    # float32 cancellation (e.g. gelu's 1 + tanh(u) near -1) costs an absolute error ~ eps |z|
    return 2e-6 * (1.0 + np.minimum(np.abs(z), 50.0)) + 1e-37


def derivative(name, kw, z):
    return R.activation_backward(np.ones_like(z), z, name, **kw)


def check_activation_forward(name, kw, z, got, what):
    """Compare y = f(z) (z the float32 input as float64) with the reference."""
    if z.size == 0:
        return  # nothing to compare (the reference's softmax needs a non-empty last axis)
    ref = R.activation_forward(z, name, **kw)
    if name == "softmax":
        rows_ok = ordinary(z, limit=1e30).all(axis=-1, keepdims=True) if z.shape[-1] else True
        n = max(z.shape[-1], 1)
        assert_close(got, ref, rtol=(n + 8) * EPS32, atol=1e-37 + (n + 8) * EPS32 * 1e-3,
                     where=np.broadcast_to(rows_ok, z.shape), what=what)
        assert_nan_where_reference_nan(got, ref, what=what)
        return
    # element-wise: every finite input is compared; at +-inf inputs the kernel may return the limit
    # where the reference formula gives NaN (e.g. softsign(inf) = inf/inf)
    finite = np.isfinite(z)
    assert_close(got, ref, rtol=1e-5, atol=forward_tolerance(z), where=finite, what=what)
    assert_nan_where_reference_nan(got, ref, where=~np.isinf(z), what=what)


@pytest.mark.parametrize("name, kw", R.ACTIVATIONS, ids=ACT_IDS)
@given(data=st.data())
@FEW
def test_activation_forward(name, kw, data):
    shape = data.draw(nd_shapes(), label="shape")
    x = data.draw(arrays(shape), label="x")
    mode = data.draw(st.sampled_from(["new", "out", "in-place"]), label="out mode")
    with engine(data):
        out = None
        if mode == "out":
            out = np.full(shape, NAN, np.float32)
        elif mode == "in-place" and not is_bad(x):
            x = np.ascontiguousarray(as32(x))  # out is the input itself
            out = x
        z = None if is_bad(x) else as32(x).astype(np.float64)
        got = call_or_clean_error(ops.activation_forward, x, name, **kw, out=out, bad_names=bad_names(x=x))
        if got is REJECTED:
            return
        assert got.shape == shape and got.dtype == np.float32
        if out is not None:
            assert got is out
        check_activation_forward(name, kw, z, got, f"{name} forward")


@pytest.mark.parametrize("name, kw", R.ACTIVATIONS, ids=ACT_IDS)
@given(data=st.data())
@FEW
def test_activation_backward(name, kw, data):
    shape = data.draw(nd_shapes(), label="shape")
    mismatch = data.draw(st.sampled_from([False] * 7 + [True]), label="mismatch")
    dy_shape = shape[:-1] + (shape[-1] + 1,) if mismatch else shape
    dy = data.draw(arrays(dy_shape), label="dy")
    x = data.draw(arrays(shape), label="x")
    give_out = data.draw(st.booleans(), label="give out")
    with engine(data):
        out = np.full(shape, NAN, np.float32) if give_out else None
        got = call_or_clean_error(ops.activation_backward, dy, x, name, **kw, out=out,
                                  bad_names=bad_names(dy=dy, x=x), bad_shape=mismatch)
        if got is REJECTED:
            return
        assert got.shape == shape and got.dtype == np.float32
        if out is not None:
            assert got is out
        z, g = as32(x).astype(np.float64), as32(dy).astype(np.float64)
        if z.size == 0:
            return
        ref = R.activation_backward(g, z, name, **kw)
        what = f"{name} backward"
        if name == "softmax":
            n = max(shape[-1], 1)
            rows_ok = (ordinary(z, limit=1e30) & ordinary(g, limit=1e30)).all(axis=-1, keepdims=True) \
                if shape[-1] else True
            scale = np.max(np.abs(np.where(ordinary(g, limit=1e30), g, 0)), axis=-1, keepdims=True) \
                if shape[-1] else 0.0
            assert_close(got, ref, rtol=(n + 8) * EPS32, atol=(n + 8) * 2 * EPS32 * scale + 1e-37,
                         where=np.broadcast_to(rows_ok, shape), what=what)
            assert_nan_where_reference_nan(got, ref, what=what)
            return
        # element-wise: dx = dy * f'(z). Compared wherever dy and z are finite and f'(z) is
        # representable in float32 (else dy * f'(z) overflows in float32 as it would in NumPy).
        d = derivative(name, kw, z)
        representable = np.isfinite(z) & np.isfinite(g) & np.isfinite(d) & (np.abs(d) <= F32MAX)
        atol = 2e-6 * np.abs(np.where(np.isfinite(g), g, 0)) * (1.0 + np.minimum(z * z, 1e4)) + 1e-37
        assert_close(got, ref, rtol=1e-5, atol=atol, where=representable, what=what)
        assert_nan_where_reference_nan(got, ref, where=~np.isinf(z), what=what)


# --------------------------------------------------------------------------------------------- #
# Dense layer
# --------------------------------------------------------------------------------------------- #

ACT_CHOICES = st.sampled_from(R.ACTIVATIONS)


@given(data=st.data())
@MANY
def test_dense_forward(data):
    batch, fan_in, units = data.draw(side(), label="batch"), data.draw(side(), label="in"), \
        data.draw(side(), label="units")
    name, kw = data.draw(ACT_CHOICES, label="activation")
    mismatch = data.draw(st.sampled_from([None] * 10 + ["kernel", "bias"]), label="mismatch")
    x = data.draw(arrays((batch, fan_in)), label="x")
    kernel = data.draw(arrays((fan_in + (mismatch == "kernel"), units)), label="kernel")
    bias = data.draw(st.one_of(st.none(), arrays((units + (mismatch == "bias"),))), label="bias")
    if bias is None and mismatch == "bias":
        mismatch = None
    preact = data.draw(st.booleans(), label="return_preactivation")
    give_out = data.draw(st.booleans(), label="give out")
    with engine(data):
        out = np.full((batch, units), NAN, np.float32) if give_out else None
        got = call_or_clean_error(ops.dense_forward, x, kernel, bias, name, **kw, out=out,
                                  return_preactivation=preact,
                                  bad_names=bad_names(x=x, kernel=kernel, bias=bias), bad_shape=mismatch is not None)
        if got is REJECTED:
            return
        if preact:
            y, z = got
        else:
            y = got
            y2, z = ops.dense_forward(x, kernel, bias, name, **kw, return_preactivation=True)
            assert np.array_equal(y, y2, equal_nan=True), "return_preactivation changed y"
        for arr in (y, z):
            assert arr.shape == (batch, units) and arr.dtype == np.float32
        if out is not None:
            assert y is out
        X, W = as32(x).astype(np.float64), as32(kernel).astype(np.float64)
        Bv = None if bias is None else as32(bias).astype(np.float64)
        _, zref = R.dense_forward(X, W, Bv, "linear")  # z = x @ kernel + bias
        row_ok = ordinary(X, limit=1e15).all(axis=1) if fan_in else np.ones(batch, bool)
        col_ok = ordinary(W, limit=1e15).all(axis=0) if fan_in else np.ones(units, bool)
        where = row_ok[:, None] & col_ok[None, :]
        tol = gemm_bound(np.abs(np.where(ordinary(X, limit=1e15), X, 0)),
                         np.abs(np.where(ordinary(W, limit=1e15), W, 0)), fan_in + 1)
        if Bv is not None:
            where = where & ordinary(Bv, limit=1e15)[None, :]
            tol = tol + 4 * EPS32 * np.abs(np.where(ordinary(Bv, limit=1e15), Bv, 0))[None, :]
        assert_close(z, zref, rtol=0.0, atol=tol + 1e-38, where=where, what="dense z")
        assert_nan_where_reference_nan(z, zref, what="dense z")
        # y is f applied to the kernel's own z
        check_activation_forward(name, kw, z.astype(np.float64), y, f"dense y = {name}(z)")


@pytest.mark.parametrize("name, kw", R.ACTIVATIONS, ids=ACT_IDS)
@given(data=st.data())
@FEW
def test_dense_backward(name, kw, data):
    batch, fan_in, units = data.draw(side(), label="batch"), data.draw(side(), label="in"), \
        data.draw(side(), label="units")
    mismatch = data.draw(st.sampled_from([None] * 10 + ["dy", "preactivation", "kernel"]), label="mismatch")
    dy = data.draw(arrays((batch, units + (mismatch == "dy"))), label="dy")
    x = data.draw(arrays((batch, fan_in)), label="x")
    kernel = data.draw(arrays((fan_in + (mismatch == "kernel"), units)), label="kernel")
    z = data.draw(arrays((batch + (mismatch == "preactivation"), units)), label="preactivation")
    use_bias, need_dx = data.draw(st.booleans(), label="use_bias"), data.draw(st.booleans(), label="need_dx")
    with engine(data):
        got = call_or_clean_error(ops.dense_backward, dy, x, kernel, z, name, **kw, use_bias=use_bias,
                                  need_dx=need_dx, bad_names=bad_names(dy=dy, x=x, kernel=kernel, preactivation=z),
                                  bad_shape=mismatch is not None)
        if got is REJECTED:
            return
        dx, dk, db = got
        assert (dx is None) == (not need_dx) and (db is None) == (not use_bias)
        assert dk.shape == (fan_in, units) and dk.dtype == np.float32
        if need_dx:
            assert dx.shape == (batch, fan_in) and dx.dtype == np.float32
        if use_bias:
            assert db.shape == (units,) and db.dtype == np.float32
        G, X, W, Z = (as32(a).astype(np.float64) for a in (dy, x, kernel, z))
        if units == 0:  # nothing flows back: zeros (the reference's softmax needs units > 0)
            assert not dk.any() and (not need_dx or not dx.any())
            return
        rdx, rdk, rdb = R.dense_backward(G, X, W, Z, name, **kw)
        dz = R.activation_backward(G, Z, name, **kw)
        # dz's own float32 error, then the products' bound
        if name == "softmax":
            n = max(units, 1)
            tdz = (n + 8) * 2 * EPS32 * np.max(np.abs(G), axis=1, keepdims=True, initial=0.0) + \
                (n + 8) * EPS32 * np.abs(dz)
        else:
            tdz = 2e-6 * np.abs(G) * (1.0 + np.minimum(Z * Z, 1e4)) + 1e-5 * np.abs(dz)
        # f'(z) itself must be representable in float32 (exp(127) is not: 0 * inf is NaN there)
        good_rows = (ordinary(G, limit=1e6) & ordinary(Z, limit=1e6) & ordinary(dz, limit=1e12)
                     & ordinary(derivative(name, kw, Z), limit=1e30)).all(axis=1) if units else np.ones(batch, bool)
        good_rows &= ordinary(X, limit=1e6).all(axis=1) if fan_in else True
        if good_rows.all() and ordinary(W, limit=1e6).all():
            aX, aW, adz = np.abs(X), np.abs(W), np.abs(dz)
            assert_close(dk, rdk, rtol=0, atol=aX.T @ tdz + gemm_bound(aX.T, adz, batch) + 1e-37, what="dkernel")
            if use_bias:
                assert_close(db, rdb, rtol=0, atol=tdz.sum(axis=0) + (batch + 2) * 2 * EPS32 * adz.sum(axis=0)
                             + 1e-37, what="dbias")
            if need_dx:
                assert_close(dx, rdx, rtol=0, atol=tdz @ aW.T + gemm_bound(adz, aW.T, units) + 1e-37, what="dx")
        else:
            # NaN inputs must show wherever they reach: the reference run on inputs whose every
            # non-NaN value is replaced by 1 gives exactly those positions. (Not every reference NaN:
            # Inf * dz is NaN in float64 where dz cancels to exactly 0, but may be Inf * tiny after
            # float32 rounding, e.g. softmax's y * (dy - sum(dy y)) with equal dy.)
            taint = [np.where(np.isnan(a), np.nan, 1.0) for a in (G, X, W, Z)]
            ndx, ndk, ndb = R.dense_backward(*taint, name, **kw)
            assert_nan_where_reference_nan(dk, ndk, what="dkernel")
            if use_bias:
                assert_nan_where_reference_nan(db, ndb, what="dbias")
            if need_dx:
                assert_nan_where_reference_nan(dx, ndx, what="dx")


# --------------------------------------------------------------------------------------------- #
# Losses
# --------------------------------------------------------------------------------------------- #

LOSS_IDS = [n + "".join(f"-{k}={v}" for k, v in kw.items()) for n, kw in R.LOSSES]
PROB_EDGE = 2e-7  # the clip boundaries 1e-7 and 1 - 1e-7 (a kink in the gradient)


@st.composite
def loss_inputs(draw, name, kw, dtypes=ALL_DTYPES):
    sparse = name == "sparse_categorical_crossentropy"
    logits = kw.get("from_logits", False)
    n = draw(st.integers(1, 6) | st.sampled_from([17, 300]), label="N")
    one_d = draw(st.booleans(), label="1-D y_pred") and not sparse
    c = 1 if one_d else draw(st.integers(0, 6) | st.sampled_from([17]), label="C")
    pred_shape = (n,) if one_d else (n, c)
    prob = name in ("binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy") \
        and not logits
    lo, hi = (0.0, 1.0) if prob else (-3.0, 3.0)
    y_pred = draw(arrays(pred_shape, lo=lo, hi=hi, dtypes=dtypes), label="y_pred")
    problem = draw(st.sampled_from([None] * 10 + ["shape", "weight-shape", "label"]), label="problem")
    if sparse:
        label_dtype = draw(st.sampled_from(["int64", "int32", "int8", "uint8", "float64", "float32", "bool"]))
        labels = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(0, max(c, 1), size=n)
        if label_dtype == "bool" and (c < 2 or problem == "label"):
            label_dtype = "int64"
        if problem == "label":
            labels[draw(st.integers(0, n - 1))] = draw(st.sampled_from([-1, c, c + 5]))
        if label_dtype == "bool":
            labels = labels % 2
        labels = labels.astype(label_dtype) if not (label_dtype == "uint8" and labels.min() < 0) else labels
        if problem == "shape":
            labels = labels[:-1] if n > 1 else np.zeros(2, np.int64)
        y_true = labels.reshape(-1, 1) if draw(st.booleans(), label="labels (N, 1)") else labels
        y_true = layout(y_true, draw(st.sampled_from(["C", "strided", "negative"])))
    else:
        if problem == "label":
            problem = None
        true_shape = pred_shape
        if c == 1 and draw(st.booleans(), label="(N,) vs (N, 1)"):
            true_shape = (n, 1) if one_d else (n,)
        if problem == "shape":
            true_shape = (n + 1,) + true_shape[1:]
        if name == "categorical_crossentropy" and draw(st.booleans(), label="one-hot"):
            rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
            y_true = np.eye(max(c, 1))[rng.integers(0, max(c, 1), size=true_shape[0])][:, :c].reshape(true_shape)
        else:
            y_true = draw(arrays(true_shape, lo=0.0 if prob else -3.0, hi=1.0 if prob else 3.0, dtypes=dtypes),
                          label="y_true")
    sw = None
    if draw(st.booleans(), label="sample_weight"):
        sw = draw(arrays((n + (problem == "weight-shape"),), lo=0.0, hi=2.0, dtypes=dtypes), label="sample_weight")
    elif problem == "weight-shape":
        problem = None
    return y_true, y_pred, sw, problem, c


def _rows(a, n):
    return np.asarray(a, dtype=np.float64).reshape(n, -1)


def loss_rows_well_conditioned(name, kw, t, p, w):
    """Per row: may the float32 result be compared strictly with the reference? (Finite, moderate
    inputs, and for the probability forms no value at a clip boundary, positive row sums.)"""
    n = p.shape[0]
    p2 = _rows(p, n)
    ok = ordinary(p2, limit=1e3).all(axis=1)
    if w is not None:
        ok &= ordinary(w, limit=1e3).reshape(n)
    if name != "sparse_categorical_crossentropy":
        ok &= ordinary(_rows(t, n), limit=1e3).all(axis=1)
    if kw.get("from_logits") or name in ("mean_squared_error", "mse", "mean_absolute_error", "mae", "huber"):
        return ok
    if name == "binary_crossentropy":
        edge = (np.abs(p2 - 1e-7) < PROB_EDGE) | (np.abs(p2 - (1 - 1e-7)) < PROB_EDGE)
        return ok & ~edge.any(axis=1)
    # categorical probabilities: q = p / sum(p) needs positive rows away from the clip boundaries
    s = p2.sum(axis=1, keepdims=True)
    q = p2 / np.where(s > 0, s, 1.0)
    edge = (np.abs(q - 1e-7) < PROB_EDGE) | (np.abs(q - (1 - 1e-7)) < PROB_EDGE)
    return ok & ~(p2 < 0).any(axis=1) & (s[:, 0] > 1e-3) & ~edge.any(axis=1)


def loss_grad_bound(name, kw, t, p, w):
    """Float32 error bound for each gradient element: a few eps times the magnitude of the terms the
    kernel adds or subtracts to form it (a gradient that cancels to ~0 is only known to that
    absolute accuracy, in float32 as in the float64 reference's own roundoff)."""
    canon = RL.canonical_name(name)
    ls = kw.get("label_smoothing", 0.0)
    t2, p2, w2 = RL._prepare(canon, t, p, w, 0.0)  # (N, C) targets before smoothing, predictions, weights
    n, c = p2.shape
    scale = np.abs(w2)[:, None] / n
    at = np.abs(t2)
    if canon == "mean_squared_error":
        k, mag = 4, 2 * (np.abs(p2) + at) / c
    elif canon == "mean_absolute_error":
        k, mag = 0, np.zeros_like(p2)  # sign(p - t) is exact
    elif canon == "huber":
        k, mag = 4, (np.abs(p2) + at) / c
    elif canon == "binary_crossentropy":
        tm = at * (1 - ls) + 0.5 * ls  # the summands of t'
        if kw.get("from_logits"):
            k, mag = 8, (R.sigmoid(p2) + tm) / c
        else:
            pc = np.clip(p2, RL.CLIP_LO, RL.CLIP_HI)
            k, mag = 16, (pc + tm) / (pc * (1 - pc)) / c
    else:  # categorical (dense or sparse targets)
        tm = at * (1 - ls) + ls / c
        if kw.get("from_logits"):  # softmax(x) sum_j t'_j - t'
            k, mag = c + 8, R.softmax(p2) * tm.sum(axis=1, keepdims=True) + tm
        else:  # (u_k - sum_j u_j q_j) / S, u = -t' / q'
            s = p2.sum(axis=1, keepdims=True)
            q = p2 / s
            u = tm / np.clip(q, RL.CLIP_LO, RL.CLIP_HI)
            k, mag = c + 8, (u + np.sum(u * np.abs(q), axis=1, keepdims=True)) / np.abs(s)
    return k * EPS32 * mag * scale


def loss_value_bound(name, kw, t, p, w):
    """Float32 error bound of the loss value: a few eps times the magnitude of the terms summed
    (they may cancel: e.g. lse(x) - x_j for large logits, or per-sample losses of both signs)."""
    canon = RL.canonical_name(name)
    ls, delta = kw.get("label_smoothing", 0.0), kw.get("delta", 1.0)
    t2, p2, w2 = RL._prepare(canon, t, p, w, 0.0)
    n, c = p2.shape
    ap, at = np.abs(p2), np.abs(t2)
    if canon == "mean_squared_error":
        mag = np.mean(2 * np.abs(p2 - t2) * (ap + at), axis=1)
    elif canon == "mean_absolute_error":
        mag = np.mean(ap + at, axis=1)
    elif canon == "huber":
        mag = np.mean((np.abs(p2 - t2) + delta) * (ap + at), axis=1)
    elif canon == "binary_crossentropy":
        tm = at * (1 - ls) + 0.5 * ls
        if kw.get("from_logits"):
            mag = np.mean(ap + ap * tm + 1, axis=1)
        else:
            pc = np.clip(p2, RL.CLIP_LO, RL.CLIP_HI)
            mag = np.mean(tm * -np.log(pc) + (1 + tm) * -np.log(1 - pc) + 1, axis=1)
    else:
        tm = at * (1 - ls) + ls / c
        if kw.get("from_logits"):
            lse = np.max(p2, axis=1, keepdims=True) + np.log(np.sum(np.exp(p2 - np.max(p2, axis=1, keepdims=True)),
                                                                   axis=1, keepdims=True))
            mag = np.sum(tm * (np.abs(lse) + ap + 1), axis=1)
        else:
            q = p2 / p2.sum(axis=1, keepdims=True)
            mag = np.sum(tm * (-np.log(np.clip(q, RL.CLIP_LO, RL.CLIP_HI)) + c), axis=1)
    return (c + 8) * EPS32 * float(np.sum(np.abs(w2) * mag)) / n


def loss_rows_with_nan(name, t, p, w):
    """Rows with a NaN input whose other inputs are all moderate (no Inf or huge values that could
    overflow a float32 intermediate such as a row sum): there the reference's NaN must show."""
    n = p.shape[0]
    rows = [_rows(p, n)] + ([] if name == "sparse_categorical_crossentropy" else [_rows(t, n)]) + \
        ([] if w is None else [np.asarray(w, dtype=np.float64).reshape(n, 1)])
    nan = np.zeros(n, bool)
    moderate = np.ones(n, bool)
    for r in rows:
        nan |= np.isnan(r).any(axis=1)
        moderate &= (np.isnan(r) | ordinary(r, limit=1e15)).all(axis=1)
    return nan & moderate


@pytest.mark.parametrize("name, kw", R.LOSSES, ids=LOSS_IDS)
@given(data=st.data())
@SOME
def test_loss_and_grad(name, kw, data):
    y_true, y_pred, sw, problem, c = data.draw(loss_inputs(name, kw), label="inputs")
    sparse = name == "sparse_categorical_crossentropy"
    give_out = data.draw(st.booleans(), label="grad_out")
    bad = bad_names(y_true=y_true, y_pred=y_pred, sample_weight=sw)
    no_classes = sparse and c == 0
    with engine(data):
        grad_out = np.full(np.shape(y_pred), 7.0, np.float32) if give_out else None
        got = call_or_clean_error(ops.loss_and_grad, name, y_true, y_pred, **kw, sample_weight=sw, grad_out=grad_out,
                                  bad_names=bad, bad_shape=problem in ("shape", "weight-shape"),
                                  bad_other=problem == "label" or no_classes)
        if got is REJECTED:
            if grad_out is not None:
                assert np.all(grad_out == 7.0), "a failed call wrote grad_out"
            return
        value, grad = got
        assert isinstance(value, float)
        assert grad.shape == np.shape(y_pred) and grad.dtype == np.float32
        if grad_out is not None:
            assert grad is grad_out
        if c == 0 and name == "categorical_crossentropy":
            # no classes: L_i is a sum over none (the reference divides by C)
            assert value == 0.0 or np.isnan(value)
            return
        p = as32(y_pred).astype(np.float64)
        t = np.asarray(y_true) if sparse else as32(y_true).astype(np.float64)
        w = None if sw is None else as32(sw).astype(np.float64)
        rvalue, rgrad = R.loss_value_and_grad(name, t, p, w, **kw)
        good = loss_rows_well_conditioned(name, kw, t, p, w)
        g2, rg2 = grad.reshape(good.size, -1), rgrad.reshape(good.size, -1)
        if good.all():
            assert_close(value, rvalue, rtol=2e-5, atol=loss_value_bound(name, kw, t, p, w) + 1e-30,
                         what=f"{name} value")
        # every well-conditioned row's gradient (a row's gradient depends on that row only)
        if good.any():
            bound = loss_grad_bound(name, kw, t, p, w).reshape(rg2.shape)
            assert_close(g2, rg2, rtol=2e-5, atol=bound + 1e-30, where=good[:, None], what=f"{name} grad")
        # NaN flows through: the gradient is NaN wherever the reference has NaN in a row with a NaN
        # input. (Rows with +-inf logits are not held to the reference's NaN: it evaluates 0 * inf
        # for classes with zero target, which the kernel skips; a NaN y_pred may pass through the
        # clipped-probability gradient where the reference's clip rule gives 0: both accepted.)
        nan_rows = loss_rows_with_nan(name, t, p, w)
        assert_nan_where_reference_nan(g2, rg2, where=nan_rows[:, None], what=f"{name} grad")


@pytest.mark.parametrize("name, kw", R.LOSSES, ids=LOSS_IDS)
@given(data=st.data())
@FEW
def test_loss_value_is_nan_when_an_input_is_nan(name, kw, data):
    """NaN flows through as in NumPy: a NaN anywhere in y_pred, y_true or sample_weight makes the
    loss value NaN (0 * NaN is NaN, also for a class whose target is 0)."""
    y_true, y_pred, sw, problem, c = data.draw(loss_inputs(name, kw, dtypes=FLOAT_DTYPES), label="inputs")
    if problem is not None or (name == "sparse_categorical_crossentropy" and c == 0):
        return
    if c == 0:
        return  # no entries: nothing for a NaN to be in
    which = data.draw(st.sampled_from(["y_pred"] + (["y_true"] if name != "sparse_categorical_crossentropy"
                                                    else []) + (["sample_weight"] if sw is not None else [])))
    arr = {"y_pred": y_pred, "y_true": y_true, "sample_weight": sw}[which]
    arr = np.array(arr, dtype=np.float32)
    idx = tuple(data.draw(st.integers(0, d - 1)) for d in arr.shape)
    arr[idx] = NAN
    args = {"y_pred": y_pred, "y_true": y_true, "sample_weight": sw, which: arr}
    with engine(data):
        value, grad = ops.loss_and_grad(name, args["y_true"], args["y_pred"], **kw,
                                        sample_weight=args["sample_weight"])
        assert np.isnan(value), f"NaN in {which}{list(idx)} but the loss value is {value}"


# --------------------------------------------------------------------------------------------- #
# Optimizers
# --------------------------------------------------------------------------------------------- #

CLIPS = [{}, {"clipvalue": 0.5}, {"clipnorm": 1.0}, {"global_clipnorm": 1.0}, {"clipnorm": 1e-3}]


@st.composite
def optimizer_problem(draw, opt, nan):
    count = draw(st.integers(1, 3), label="arrays")
    shapes = [draw(nd_shapes(1, 3), label=f"shape {i}") for i in range(count)]
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    params = [rng.uniform(-2, 2, size=s).astype(np.float32) for s in shapes]
    grads = [draw(arrays(s, nan=nan), label=f"grads[{i}]") for i, s in enumerate(shapes)]
    if nan:  # at least one NaN in some gradient
        i = draw(st.integers(0, count - 1), label="NaN array")
        if grads[i].size and not is_bad(grads[i]):
            g = np.array(grads[i], dtype=np.float32 if np.asarray(grads[i]).dtype.kind != "f" else None)
            g.reshape(-1)[draw(st.integers(0, g.size - 1), label="NaN index")] = NAN
            grads[i] = g
    opts = dict(draw(st.sampled_from(CLIPS), label="clip"))
    opts["learning_rate"] = draw(st.sampled_from([0.01, 0.1, 1.0]), label="lr")
    if draw(st.booleans(), label="weight decay"):
        opts["weight_decay"] = draw(st.sampled_from([0.01, 0.5]))
    state = {}

    def buf(lo, hi):
        return [rng.uniform(lo, hi, size=s).astype(np.float32) for s in shapes]

    if opt == "sgd":
        opts["momentum"] = draw(st.sampled_from([0.0, 0.9, 0.5]), label="momentum")
        opts["nesterov"] = draw(st.booleans(), label="nesterov")
        if opts["momentum"] or draw(st.booleans()):
            state["momentums"] = buf(-1, 1)
    elif opt in ("adam", "adamw"):
        opts["step"] = draw(st.sampled_from([1, 2, 10, 1000]), label="step")
        opts["amsgrad"] = draw(st.booleans(), label="amsgrad")
        if draw(st.booleans()):
            opts["beta_1"], opts["beta_2"], opts["epsilon"] = 0.5, 0.75, 1e-3
        state["m"], state["v"] = buf(-1, 1), buf(0, 1)
        if opts["amsgrad"]:
            state["v_hat"] = buf(0, 1)
    elif opt == "rmsprop":
        opts["centered"] = draw(st.booleans(), label="centered")
        opts["momentum"] = draw(st.sampled_from([0.0, 0.5]), label="momentum")
        opts["rho"] = draw(st.sampled_from([0.9, 0.5]), label="rho")
        state["velocities"] = buf(0.1, 1)
        if opts["momentum"]:
            state["momentums"] = buf(-1, 1)
        if opts["centered"]:  # a valid state: ag^2 <= v / 2 keeps v - ag^2 well away from 0
            state["average_grads"] = [np.sqrt(v / 2) * rng.uniform(-1, 1, size=v.shape).astype(np.float32)
                                      for v in state["velocities"]]
    else:
        state["accumulators"] = buf(0.1, 1)
    single = count == 1 and draw(st.booleans(), label="single array (not a list)")
    # sometimes one in-place buffer the step uses is invalid: float64 (TypeError naming it), or
    # non-contiguous / read-only (ValueError); the step must then change nothing
    corrupt = draw(st.sampled_from([None] * 9 + ["float64", "strided", "read-only"]), label="corrupt buffer")
    if corrupt is not None:
        used = [k for k in state if not (opt == "sgd" and k == "momentums" and not opts["momentum"])]
        where = draw(st.sampled_from(["params"] + used), label="corrupt which")
        i = draw(st.integers(0, count - 1), label="corrupt index")
        bufs = params if where == "params" else state[where]
        if corrupt == "strided" and bufs[i].size < 2:
            corrupt = "read-only"  # a one-element view is contiguous
        if corrupt == "float64":
            bufs[i] = bufs[i].astype(np.float64)
        elif corrupt == "strided":
            bufs[i] = layout(bufs[i], "strided")
        else:
            bufs[i] = bufs[i].copy()
            bufs[i].flags.writeable = False
        corrupt = (corrupt, f"{where}[{i}]")
    return params, grads, state, opts, single, corrupt


OPTIMIZERS = {
    "sgd": (ops.sgd_step, R.sgd, ["momentums"]),
    "adam": (ops.adam_step, R.adam, ["m", "v", "v_hat"]),
    "adamw": (ops.adamw_step, R.adamw, ["m", "v", "v_hat"]),
    "rmsprop": (ops.rmsprop_step, R.rmsprop, ["velocities", "momentums", "average_grads"]),
    "adagrad": (ops.adagrad_step, R.adagrad, ["accumulators"]),
}


def _reference_states(opt, ref, state):
    """{state name: list of float64 arrays} from the reference's return tuple."""
    if opt == "sgd":
        names = ["momentums"]
    elif opt in ("adam", "adamw"):
        names = ["m", "v", "v_hat"]
    elif opt == "rmsprop":
        names = ["velocities", "momentums", "average_grads"]
    else:
        names = ["accumulators"]
    return {n: r for n, r in zip(names, ref[1:]) if n in state and r is not None}


def _run_optimizer(opt, data, nan):
    fn, ref_fn, _ = OPTIMIZERS[opt]
    params, grads, state, opts, single, corrupt = data.draw(optimizer_problem(opt, nan), label="problem")
    params_before = [np.array(p, dtype=np.float32) for p in params]
    state_before = {k: [np.array(b, dtype=np.float32) for b in v] for k, v in state.items()}
    bad = tuple(f"grads[{i}]" for i, g in enumerate(grads) if is_bad(g))
    if corrupt is not None and corrupt[0] == "float64":
        bad += (corrupt[1],)

    def pack(lst):
        return lst[0] if single else list(lst)

    with engine(data):
        got = call_or_clean_error(fn, pack(params), pack(grads), **{k: pack(v) for k, v in state.items()}, **opts,
                                  bad_names=bad, bad_shape=corrupt is not None and corrupt[0] != "float64")
        if got is REJECTED:
            for old, new in zip(params_before + sum(state_before.values(), []), params + sum(state.values(), [])):
                assert np.array_equal(old, new, equal_nan=True), "a failed optimizer step changed a buffer"
            return
        assert got is None
        g64 = [as32(g).astype(np.float64) for g in grads]
        ref = ref_fn([p.astype(np.float64) for p in params_before], g64,
                     **{k: [b.astype(np.float64) for b in v] for k, v in state_before.items()}, **opts)
        ref_states = _reference_states(opt, ref, state)
        all_ordinary = all(ordinary(g, limit=1e4).all() for g in g64)
        for i in range(len(params)):
            grad_ok = ordinary(g64[i], limit=1e4)
            if "global_clipnorm" in opts:  # the clip scale comes from every array
                grad_ok = grad_ok & all_ordinary
            elif "clipnorm" in opts:  # ... or from this whole array
                grad_ok = grad_ok & ordinary(g64[i], limit=1e4).all()
            pairs = [("params", params[i], ref[0][i], params_before[i])]
            pairs += [(k, state[k][i], ref_states[k][i], state_before[k][i]) for k in ref_states]
            for what, got_buf, ref_buf, old in pairs:
                old = old.astype(np.float64)
                atol = 3e-5 * (np.abs(old) + np.abs(ref_buf - old)) + 1e-30
                assert_close(got_buf, ref_buf, rtol=3e-5, atol=atol, where=grad_ok, what=f"{opt} {what}[{i}]")
                assert_nan_where_reference_nan(got_buf, ref_buf, what=f"{opt} {what}[{i}]")


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@given(data=st.data())
@SOME
def test_optimizer_step(opt, data):
    """Grads of any dtype/layout with Inf and huge values (NaN: next test)."""
    _run_optimizer(opt, data, nan=False)


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@given(data=st.data())
@FEW
def test_optimizer_step_with_nan_grads(opt, data):
    """NaN in the gradients flows into the update as the reference says (with norm clipping the
    NaN norm makes the clip scale NaN, so the whole array, or all of them, become NaN)."""
    _run_optimizer(opt, data, nan=True)


@given(data=st.data())
@SOME
def test_global_norm(data):
    count = data.draw(st.integers(0, 4), label="count")
    arrs = [data.draw(arrays(data.draw(nd_shapes(0, 3))), label=f"arrays[{i}]") for i in range(count)]
    as_tuple = data.draw(st.booleans(), label="tuple")
    with engine(data):
        got = call_or_clean_error(ops.global_norm, tuple(arrs) if as_tuple else arrs,
                                  bad_names=tuple(f"arrays[{i}]" for i, a in enumerate(arrs) if is_bad(a)))
        if got is REJECTED:
            return
        assert isinstance(got, float)
        xs = [as32(a).astype(np.float64) for a in arrs]
        ref = R.global_norm(xs) if xs else 0.0
        n = sum(x.size for x in xs)
        assert_close(got, ref, rtol=(n + 4) * 2.0**-50, atol=1e-300, what="global_norm")


# --------------------------------------------------------------------------------------------- #
# Dropout
# --------------------------------------------------------------------------------------------- #

RATES = st.one_of(st.sampled_from([0.0, 0.1, 0.5, 0.9, 0.999]), st.floats(0.0, 0.9999))
BAD_RATES = st.sampled_from([-0.1, 1.0, 1.5, NAN, INF])
SEEDS = st.one_of(st.integers(0, 2**64 - 1), st.integers(-2**70, 2**70))


@pytest.mark.parametrize("which", ["forward", "backward"])
@given(data=st.data())
@MANY
def test_dropout(which, data):
    shape = data.draw(nd_shapes(1, 3), label="shape")
    x = data.draw(arrays(shape), label="x")
    bad_rate = data.draw(st.sampled_from([False] * 9 + [True]), label="bad rate")
    rate = data.draw(BAD_RATES if bad_rate else RATES, label="rate")
    seed, offset = data.draw(SEEDS, label="seed"), data.draw(SEEDS, label="offset")
    give_out = data.draw(st.booleans(), label="out")
    fn = ops.dropout_forward if which == "forward" else ops.dropout_backward
    name = "x" if which == "forward" else "dy"
    with engine(data):
        out = np.full(shape, 7.0, np.float32) if give_out else None
        got = call_or_clean_error(fn, x, rate, seed, offset, out, bad_names=bad_names(**{name: x}),
                                  bad_other=bad_rate)
        if got is REJECTED:
            if out is not None:
                assert np.all(out == 7.0)
            return
        assert got.shape == shape and got.dtype == np.float32
        if out is not None:
            assert got is out
        xs = as32(x).astype(np.float64)
        ref = R.dropout_forward(xs, rate, seed, offset)
        mask = R.dropout_mask(shape, rate, seed, offset)
        assert np.all(got[~mask] == 0.0), "dropped elements must be exactly 0"
        assert_close(got, ref, rtol=3 * EPS32, atol=2e-45, where=mask, what=f"dropout {which}")


@given(data=st.data())
@SOME
def test_dropout_mask(data):
    shape = data.draw(nd_shapes(0, 3), label="shape")
    rate = data.draw(RATES, label="rate")
    seed, offset = data.draw(SEEDS, label="seed"), data.draw(SEEDS, label="offset")
    with engine(data):
        got = ops.dropout_mask(shape, rate, seed, offset)
        assert got.dtype == np.bool_ and got.shape == shape
        assert np.array_equal(got, R.dropout_mask(shape, rate, seed, offset))


@given(counter=st.lists(st.integers(0, 2**32 - 1), min_size=4, max_size=4),
       key=st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=2))
@SOME
def test_philox(counter, key):
    assert list(ops.philox4x32(counter, key)) == R.philox4x32(np.array(counter, np.uint32), key).tolist()


# --------------------------------------------------------------------------------------------- #
# Reductions and metrics
# --------------------------------------------------------------------------------------------- #


@pytest.mark.parametrize("which", ["sum", "sum_squares"])
@given(data=st.data())
@MANY
def test_sum(which, data):
    shape = data.draw(nd_shapes(0, 4), label="shape")
    x = data.draw(arrays(shape), label="x")
    fn, ref_fn = (ops.sum, R.sum) if which == "sum" else (ops.sum_squares, R.sum_squares)
    with engine(data):
        got = call_or_clean_error(fn, x, bad_names=bad_names(x=x))
        if got is REJECTED:
            return
        assert isinstance(got, float)
        xs = as32(x).astype(np.float64)
        ref = ref_fn(xs)
        scale = float(np.sum(np.abs(xs[np.isfinite(xs)]) ** (1 if which == "sum" else 2)))
        # accumulated in double (spec): the double rounding bound, far below float32's
        assert_close(got, ref, rtol=0, atol=(xs.size + 4) * 2.0**-50 * scale + 1e-300, what=which)


@given(data=st.data())
@MANY
def test_sum_rows(data):
    rows, cols = data.draw(side(big=(17, 40, 300)), label="rows"), data.draw(side(big=(17, 300)), label="cols")
    ndim_bad = data.draw(st.sampled_from([False] * 9 + [True]), label="not 2-D")
    x = data.draw(arrays((rows * cols,) if ndim_bad else (rows, cols)), label="x")
    give_out = data.draw(st.booleans(), label="out")
    with engine(data):
        out = np.full((cols,), 7.0, np.float32) if give_out else None
        got = call_or_clean_error(ops.sum_rows, x, out, bad_names=bad_names(x=x), bad_shape=ndim_bad)
        if got is REJECTED:
            return
        assert got.shape == (cols,) and got.dtype == np.float32
        if out is not None:
            assert got is out
        xs = as32(x).astype(np.float64)
        ref = R.sum_rows(xs)
        col_ok = ordinary(xs, limit=1e30).all(axis=0)
        bound = 2 * (rows + 2) * EPS32 * np.abs(np.where(ordinary(xs, limit=1e30), xs, 0)).sum(axis=0)
        assert_close(got, ref, rtol=0, atol=bound + 1e-38, where=col_ok, what="sum_rows")
        assert_nan_where_reference_nan(got, ref, what="sum_rows")


# thresholds representable in float32 (the kernel compares in float32, as Keras casts the threshold
# to y_pred's dtype); y_pred values may equal them exactly
THRESHOLDS = st.sampled_from([0.5, 0.0, -1.0, 0.25, float(np.float32(0.3)), 1.0])


@st.composite
def metric_inputs(draw, kind):
    n = draw(st.integers(1, 8) | st.sampled_from([40]), label="N")
    one_d = draw(st.booleans(), label="1-D")
    c = 1 if one_d else draw(st.integers(0, 5), label="C")
    pred_shape = (n,) if one_d else (n, c)
    y_pred = draw(arrays(pred_shape, lo=-1.0, hi=1.5), label="y_pred")
    if draw(st.booleans(), label="snap to grid"):  # ties and exact threshold hits
        if not is_bad(y_pred):
            with np.errstate(all="ignore"):
                y_pred = np.round(as32(y_pred) * 4) / 4
    problem = draw(st.sampled_from([None] * 9 + ["shape", "label"]), label="problem")
    if kind == "sparse":
        labels = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(0, max(c, 1), size=n)
        if problem == "label":
            labels[draw(st.integers(0, n - 1))] = draw(st.sampled_from([-1, c]))
        if problem == "shape":
            labels = np.append(labels, 0)
        dtype = draw(st.sampled_from(["int64", "int32", "float64"]))
        y_true = labels.astype(dtype)
        if draw(st.booleans(), label="(N, 1)"):
            y_true = y_true.reshape(-1, 1)
    else:
        if problem == "label":
            problem = None
        true_shape = pred_shape
        if c == 1 and draw(st.booleans(), label="(N,) vs (N, 1)"):
            true_shape = (n, 1) if one_d else (n,)
        if problem == "shape":
            true_shape = (n + 1,) + true_shape[1:]
        y_true = draw(arrays(true_shape, lo=-0.5, hi=1.5), label="y_true")
        if draw(st.booleans(), label="0/1 targets") and not is_bad(y_true):
            y_true = (as32(y_true) > 0.5).astype(np.float32)
    return y_true, y_pred, problem, c


@pytest.mark.parametrize("kind", ["binary", "categorical", "sparse"])
@given(data=st.data())
@MANY
def test_count_correct(kind, data):
    y_true, y_pred, problem, c = data.draw(metric_inputs(kind), label="inputs")
    threshold = data.draw(THRESHOLDS, label="threshold")
    no_classes = kind != "binary" and c == 0
    with engine(data):
        got = call_or_clean_error(ops.count_correct, y_true, y_pred, kind, threshold,
                                  bad_names=bad_names(y_true=y_true, y_pred=y_pred),
                                  bad_shape=problem == "shape", bad_other=problem == "label" or no_classes)
        if got is REJECTED:
            return
        assert isinstance(got, int)
        t = np.asarray(y_true) if kind == "sparse" else as32(y_true)
        assert got == R.count_correct(t, as32(y_pred), kind, threshold)


@given(data=st.data())
@MANY
def test_binary_confusion(data):
    y_true, y_pred, problem, _ = data.draw(metric_inputs("binary"), label="inputs")
    threshold = data.draw(THRESHOLDS, label="threshold")
    with engine(data):
        got = call_or_clean_error(ops.binary_confusion, y_true, y_pred, threshold,
                                  bad_names=bad_names(y_true=y_true, y_pred=y_pred), bad_shape=problem == "shape")
        if got is REJECTED:
            return
        assert isinstance(got, tuple) and all(isinstance(v, int) for v in got)
        assert got == R.binary_confusion(as32(y_true), as32(y_pred), threshold)
        assert sum(got) == np.size(y_pred)


# --------------------------------------------------------------------------------------------- #
# Edge shapes the main tests leave out (each has its own test so one bug does not hide others)
# --------------------------------------------------------------------------------------------- #


@given(data=st.data())
@SOME
def test_zero_dim_inputs(data):
    """0-d inputs to the functions that take any ndim: the result keeps the input's shape ()."""
    x = data.draw(arrays(()), label="x")
    which = data.draw(st.sampled_from(["relu", "sigmoid", "softplus", "dropout", "backward"]), label="fn")
    with engine(data):
        fn = {"relu": lambda: ops.activation_forward(x, "relu"),
              "sigmoid": lambda: ops.activation_forward(x, "sigmoid"),
              "softplus": lambda: ops.activation_forward(x, "softplus"),
              "dropout": lambda: ops.dropout_forward(x, 0.0, 1),
              "backward": lambda: ops.activation_backward(x, x, "tanh")}[which]
        name = "dy" if which == "backward" else "x"
        got = call_or_clean_error(fn, bad_names=(name, "x") if is_bad(x) else ())
        if got is REJECTED:
            return
        assert got.shape == (), f"0-d input gave shape {got.shape}"


@given(data=st.data())
@SOME
def test_loss_with_zero_rows(data):
    """N == 0 gives value 0.0 and an empty gradient (spec), whatever the loss and C are."""
    name, kw = data.draw(st.sampled_from(R.LOSSES), label="loss")
    c = data.draw(st.integers(1, 4), label="C")
    pred = data.draw(arrays((0, c), dtypes=GOOD_DTYPES), label="y_pred")
    true = np.zeros((0,), np.int64) if name == "sparse_categorical_crossentropy" else \
        data.draw(arrays((0, c), dtypes=GOOD_DTYPES), label="y_true")
    with engine(data):
        value, grad = call_or_clean_error(ops.loss_and_grad, name, true, pred, **kw)
        assert value == 0.0 and grad.shape == (0, c)

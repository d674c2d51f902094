"""Flush-to-zero / denormals-are-zero (cpp/cpu/denormals.h).

Training kernels (the optimizer steps, the compiled training step) run with
FTZ and DAZ set, so Adam's decaying moments never fall into slow denormal
arithmetic; the caller's own floating-point state comes back unchanged, and
the other kernels keep IEEE denormals (they match NumPy there).
"""
import numpy as np

from gradsmith import ops

TINY = np.float32(1e-39)  # a float32 denormal (FLT_MIN is about 1.18e-38)


def _numpy_keeps_denormals():
    return np.float32(TINY * np.float32(1.0)) == TINY


def test_optimizer_step_flushes_denormals_on_every_thread(threads):
    n = 1 << 18  # enough elements for the pool's workers to take part
    w = np.full(n, TINY, np.float32)
    g = np.zeros(n, np.float32)
    ops.sgd_step(w, g, learning_rate=0.1)  # w - 0.1 * 0: DAZ reads w as 0
    assert np.all(w == 0.0)
    assert _numpy_keeps_denormals()


def test_adam_moments_do_not_stay_denormal(threads):
    n = 1 << 16
    w, g = np.ones(n, np.float32), np.full(n, 1e-20, np.float32)
    m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
    ops.adam_step(w, g, m, v, step=1)  # v = (1 - 0.999) * g^2 = 1e-43: a denormal, flushed
    assert np.all(v == 0.0) and np.all(m > 0)
    assert _numpy_keeps_denormals()


def test_other_kernels_keep_ieee_denormals(threads):
    a = np.full((3, 4), TINY, np.float32)
    b = np.ones((4, 2), np.float32)
    np.testing.assert_array_equal(ops.matmul(a, b), np.full((3, 2), np.float32(4 * TINY)))
    assert ops.sum(a) == float(np.float32(12 * TINY))
    assert _numpy_keeps_denormals()

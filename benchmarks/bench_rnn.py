"""Times one training step (forward + backward) of a GRU(256) layer through gradsmith's kernels
(cpp/cpu/recurrent.cpp) against a plain float32 NumPy per-step loop of the same math, and the inference step
generate pays per token.  python benchmarks/bench_rnn.py [--batch 32] [--steps 50] [--features 64]"""
import argparse
import time

import numpy as np

from gradsmith import ops


def numpy_gru(x, W, U, b):
    """Forward and backward of a GRU (reset_after) as a plain NumPy loop (float32), dy = 1 on the last h."""
    B, T, _ = x.shape
    u = U.shape[0]
    h = np.zeros((B, u), np.float32)
    xp = x @ W + b[0]
    tape = []
    for t in range(T):
        rp = h @ U + b[1]
        z = 1 / (1 + np.exp(-(xp[:, t, :u] + rp[:, :u])))
        r = 1 / (1 + np.exp(-(xp[:, t, u:2 * u] + rp[:, u:2 * u])))
        hh = np.tanh(xp[:, t, 2 * u:] + r * rp[:, 2 * u:])
        tape.append((h, z, r, hh, rp[:, 2 * u:]))
        h = z * h + (1 - z) * hh
    dh = np.ones_like(h)
    dW, dU = np.zeros_like(W), np.zeros_like(U)
    dx = np.empty_like(x)
    for t in range(T - 1, -1, -1):
        hp, z, r, hh, rh = tape[t]
        dz = dh * (hp - hh) * z * (1 - z)
        dhh = dh * (1 - z) * (1 - hh * hh)
        dr = dhh * rh * r * (1 - r)
        dxp = np.concatenate([dz, dr, dhh], 1)
        drp = np.concatenate([dz, dr, dhh * r], 1)
        dW += x[:, t].T @ dxp
        dU += hp.T @ drp
        dx[:, t] = dxp @ W.T
        dh = dh * z + drp @ U.T
    return h, dx, dW, dU


def best(fn, repeats=10):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--units", type=int, default=256)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    u = a.units
    x = rng.standard_normal((a.batch, a.steps, a.features)).astype(np.float32)
    W = (rng.standard_normal((a.features, 3 * u)) * 0.1).astype(np.float32)
    U = (rng.standard_normal((u, 3 * u)) * 0.05).astype(np.float32)
    b = (rng.standard_normal((2, 3 * u)) * 0.1).astype(np.float32)

    def ours():
        hseq, cache = ops.rnn_forward("GRU", x, W, U, b, training=True)
        ops.rnn_backward(cache, W, U, dy_last=np.ones((a.batch, u), np.float32))

    t_ours, t_numpy = best(ours), best(lambda: numpy_gru(x, W, U, b))
    one = rng.standard_normal((1, 1, a.features)).astype(np.float32)
    h = np.zeros((1, u), np.float32)
    t_token = best(lambda: ops.rnn_forward("GRU", one, W, U, b, h), repeats=50)
    print(f"GRU({u}) batch {a.batch} x {a.steps} steps x {a.features} features, forward + backward: "
          f"gradsmith {t_ours * 1e3:.1f} ms, NumPy loop {t_numpy * 1e3:.1f} ms ({t_numpy / t_ours:.1f}x)")
    print(f"one inference step, batch 1 (generate's cost per token for this layer): {t_token * 1e6:.0f} us")


if __name__ == "__main__":
    main()

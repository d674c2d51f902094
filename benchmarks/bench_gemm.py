"""GEMM throughput: gradsmith.ops.matmul against NumPy's @ (OpenBLAS), side by side.

For each shape both run interleaved (A B A B ...) in one process, with the same
thread count, each timed as the median of repeated calls; the table gives GFLOP/s
(2*M*N*K / time) of each, the ratio, and the spread (max/min of gradsmith's
samples) as a noise indicator. Results are checked against NumPy before timing.

    python benchmarks/bench_gemm.py [--threads N] [--repeats R] [--json out.json]
"""
import argparse
import json
import os
import statistics
import sys
import time

# OpenBLAS's idle threads spin for about 2**28 cycles (~0.1 s) after each call,
# taking a core from whatever runs next: interleaved with it, gradsmith's
# workers would be measured on half the machine. Let them sleep after 2**4
# cycles, as gradsmith's own do after a short spin. Must be set before NumPy loads.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np  # noqa: E402

import gradsmith  # noqa: E402
from gradsmith import ops  # noqa: E402

SQUARE = [256, 512, 1024, 2048]
# Dense training products: (batch, in, out) -> forward x@W, backward x^T@dz and dz@W^T.
LAYERS = [(b, i, o) for b in (32, 256) for (i, o) in ((20, 128), (128, 64), (64, 1), (1024, 1024))]


def cases():
    for n in SQUARE:
        yield f"square {n}^3", (n, n), (n, n), False, False
    for b, i, o in LAYERS:
        yield f"b{b} {i}->{o} fwd  x@W", (b, i), (i, o), False, False
        yield f"b{b} {i}->{o} dW   x^T@dz", (b, i), (b, o), True, False
        yield f"b{b} {i}->{o} dx   dz@W^T", (b, o), (i, o), False, True


def time_pair(f, g, flops, budget_s=0.4, max_samples=41):
    """Interleave f and g; each sample times enough calls to last ~1 ms."""
    f(), g()
    t0 = time.perf_counter()
    f()
    one = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(1e-3 / one))
    samples_f, samples_g = [], []
    deadline = time.perf_counter() + budget_s
    while len(samples_f) < 5 or (time.perf_counter() < deadline and len(samples_f) < max_samples):
        for fn, out in ((f, samples_f), (g, samples_g)):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            out.append((time.perf_counter() - t0) / inner)
    med_f, med_g = statistics.median(samples_f), statistics.median(samples_g)
    return flops / med_f / 1e9, flops / med_g / 1e9, max(samples_f) / min(samples_f)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None, help="threads for both (default: all)")
    p.add_argument("--repeats", type=float, default=0.4, help="seconds of samples per shape")
    p.add_argument("--json", default=None, help="write the figures to this file")
    args = p.parse_args(argv)
    threads = args.threads or gradsmith.get_num_threads()
    gradsmith.set_num_threads(threads)
    try:  # OpenBLAS's own pool, when threadpoolctl is there; else OMP_NUM_THREADS governs it
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
    except ImportError:
        pass
    info = gradsmith.cpu_info()
    print(f"gradsmith {gradsmith.__version__}  isa={info['isa']}  threads={threads}  numpy {np.__version__}")
    rng = np.random.default_rng(0)
    rows = []
    print(f"{'case':28s} {'M':>5s} {'N':>5s} {'K':>5s} {'gradsmith GF/s':>15s} {'numpy GF/s':>11s} {'ratio':>6s} {'spread':>6s}")
    for name, sa, sb, ta, tb in cases():
        a = rng.standard_normal(sa).astype(np.float32)
        b = rng.standard_normal(sb).astype(np.float32)
        M, K = (sa[1], sa[0]) if ta else sa
        N = sb[0] if tb else sb[1]
        out = np.empty((M, N), np.float32)
        a_op = a.T if ta else a
        b_op = b.T if tb else b
        ref = a_op.astype(np.float64) @ b_op.astype(np.float64)
        got = ops.matmul(a, b, transpose_a=ta, transpose_b=tb, out=out)
        err = np.max(np.abs(got - ref) / (np.abs(a_op) @ np.abs(b_op) + 1e-30)) if got.size else 0.0
        if err > 4 * K * 2**-24:
            sys.exit(f"{name}: wrong result (relative error {err:.3g}); not timing")
        flops = 2.0 * M * N * K
        gs, npy, spread = time_pair(lambda: ops.matmul(a, b, transpose_a=ta, transpose_b=tb, out=out),
                                    lambda: np.matmul(a_op, b_op, out=out), flops, args.repeats)
        rows.append({"case": name, "M": M, "N": N, "K": K, "gradsmith_gflops": gs, "numpy_gflops": npy,
                     "ratio": gs / npy, "spread": spread})
        print(f"{name:28s} {M:5d} {N:5d} {K:5d} {gs:15.1f} {npy:11.1f} {gs / npy:6.2f} {spread:6.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"isa": info["isa"], "threads": threads, "rows": rows}, f, indent=1)
    r1024 = next(r["ratio"] for r in rows if r["case"] == "square 1024^3")
    print(f"\n1024^3: gradsmith / numpy = {r1024:.2f}  (foundation floor: 0.5)")


if __name__ == "__main__":
    main()

"""GEMM group: gradsmith.ops.matmul against NumPy's @ (and torch.matmul on squares).

Cases: square products (1024^3, 2048^3, 4096^3; 128^3 and 256^3 with --quick)
and the three products of a dense layer's training step at batch M,
layer (in K, out N): forward x@W (M x K times K x N), dW = x^T dz
(K x M times M x N) and dx = dz W^T (M x N times N x K). Every contender
writes into a preallocated output (out=), so no one pays for allocation.
Figures are GFLOP/s = 2*M*N*K / time; the roofline point of a case has
arithmetic intensity 2MNK / (4 (MK + KN + MN)) FLOP per byte (each operand
read once, C written once).
"""

import numpy as np

from gradsmith import ops
from gradsmith.bench import peers
from gradsmith.bench.common import calibrated, interleave, progress, row

SQUARES = (1024, 2048, 4096)
SQUARES_QUICK = (128, 256)
BATCHES = (32, 128, 256)
# (in, out) of the layers of the seed MLP (20-128-64-1) and of the big MLP (784-1024-1024-10).
LAYERS = ((20, 128), (128, 64), (64, 1), (784, 1024), (1024, 1024), (1024, 10))


def cases(quick):
    """(name, a shape, b shape, transpose_a, transpose_b, peers); op(a) @ op(b) is the product."""
    for n in SQUARES_QUICK if quick else SQUARES:
        yield f"gemm {n}^3", (n, n), (n, n), False, False, ("numpy", "torch")
    for m in BATCHES[:1] if quick else BATCHES:
        for k, n in LAYERS[:3] if quick else LAYERS:
            yield f"M{m} {k}->{n} x@W", (m, k), (k, n), False, False, ("numpy",)
            yield f"M{m} {k}->{n} x^T dz", (m, k), (m, n), True, False, ("numpy",)
            yield f"M{m} {k}->{n} dz W^T", (m, n), (k, n), False, True, ("numpy",)


def _check(got, a_op, b_op, name):
    """|gradsmith - numpy| within the float32 bound of both: 2 K u (|A| |B|), u = 2^-24."""
    want = a_op @ b_op
    bound = 2 * a_op.shape[1] * 2.0**-24 * (np.abs(a_op) @ np.abs(b_op)) + 1e-30
    err = float(np.max(np.abs(got - want) / bound)) if got.size else 0.0
    if not err <= 1.0:
        raise RuntimeError(f"{name}: gradsmith's product differs from NumPy's ({err:.3g} x the error bound)")


def run(settings):
    torch = peers.torch()
    rounds = settings.rounds_or(5)
    min_sample_s = 0.0 if settings.quick else 0.02
    rng = np.random.default_rng(0)
    rows = []
    for name, sa, sb, ta, tb, wanted in cases(settings.quick):
        progress(f"  {name}")
        a = rng.standard_normal(sa, dtype=np.float32)
        b = rng.standard_normal(sb, dtype=np.float32)
        a_op, b_op = (a.T if ta else a), (b.T if tb else b)
        M, K = a_op.shape
        N = b_op.shape[1]
        out_gs, out_np = np.empty((M, N), np.float32), np.empty((M, N), np.float32)
        _check(ops.matmul(a, b, transpose_a=ta, transpose_b=tb, out=out_gs), a_op, b_op, name)
        samplers = [calibrated(lambda: ops.matmul(a, b, transpose_a=ta, transpose_b=tb, out=out_gs), min_sample_s),
                    calibrated(lambda: np.matmul(a_op, b_op, out=out_np), min_sample_s)]
        if "torch" in wanted and torch is not None:
            at, bt = torch.from_numpy(a_op), torch.from_numpy(b_op)  # views of the same memory
            out_t = torch.empty((M, N), dtype=torch.float32)
            samplers.append(calibrated(lambda: torch.matmul(at, bt, out=out_t), min_sample_s))
        times = interleave(samplers, rounds)
        flops = 2.0 * M * N * K
        nbytes = 4.0 * (M * K + K * N + M * N)
        gs, *peer_rates = ([flops / t / 1e9 for t in ts] for ts in times)
        common = dict(roof=settings.peak["gflops"],
                      params={"M": M, "N": N, "K": K, "transpose_a": ta, "transpose_b": tb},
                      flops=flops, bytes=nbytes, intensity=flops / nbytes, kernel=True)
        rows.append(row("gemm", name, "GFLOP/s", gs, "numpy", peer_rates[0], **common))
        if "torch" in wanted:
            rows.append(row("gemm", name, "GFLOP/s", gs, "torch", peer_rates[1] if torch else None,
                            "ok" if torch else peers.NOT_INSTALLED, **common))
    return rows

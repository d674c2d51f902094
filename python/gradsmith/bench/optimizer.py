"""Optimizer group: one fused step over a flat float32 buffer, against torch.optim.

Adam moves 28 bytes per parameter (reads param, grad, m, v; writes param, m,
v) and SGD with momentum 20 (reads param, grad, momentum; writes param,
momentum). Every array written is also read, so no write-allocate traffic
hides behind these counts: bytes / time is the memory bandwidth the step
achieves, compared with the measured copy bandwidth (gradsmith.machine).
The nominal FLOPs per parameter of the Keras formulas (Adam 12, SGD with
momentum 4) place the steps on the roofline.

torch.optim runs on the same parameter and gradient memory (torch.from_numpy)
with fused=True; where fused is unavailable, foreach=True and foreach=False
are measured instead.
"""

import numpy as np

from gradsmith import ops
from gradsmith.bench import peers
from gradsmith.bench.common import interleave, progress, row, timed

SIZES = (10_000_000, 50_000_000)
SIZES_QUICK = (1_000_000,)
# name, bytes per parameter, nominal FLOPs per parameter
KINDS = (("adam", 28, 12), ("sgd momentum", 20, 4))


def _gradsmith_step(kind, p, g, s0, s1):
    if kind == "adam":
        t = [0]

        def step():
            t[0] += 1
            ops.adam_step(p, g, s0, s1, step=t[0])
        return step
    return lambda: ops.sgd_step(p, g, s0, learning_rate=0.01, momentum=0.9)


def _torch_steps(torch, kind, p, g):
    """[(label, step function or None, status)] for the torch variants to measure."""
    param = torch.nn.Parameter(torch.from_numpy(p))  # shares p's memory
    param.grad = torch.from_numpy(g)

    def make(**variant):
        if kind == "adam":
            opt = torch.optim.Adam([param], lr=1e-3, eps=1e-7, **variant)
        else:
            opt = torch.optim.SGD([param], lr=0.01, momentum=0.9, **variant)
        opt.step()  # creates the state; fails here if the variant is unsupported
        return opt.step

    try:
        return [("torch fused", make(fused=True), "ok")]
    except (RuntimeError, TypeError, ValueError) as e:
        fused_error = f"fused: {e}".splitlines()[0][:60]
    return [(f"torch foreach={f}", make(foreach=f), "ok") for f in (True, False)] + \
        [("torch fused", None, fused_error)]


def run(settings):
    torch = peers.torch()
    rounds = settings.rounds_or(5)
    rng = np.random.default_rng(0)
    rows = []
    for n in SIZES_QUICK if settings.quick else SIZES:
        for kind, bytes_per, flops_per in KINDS:
            name = f"{kind} {n / 1e6:g}M"
            progress(f"  {name}")
            p = rng.random(n, dtype=np.float32)
            g = rng.random(n, dtype=np.float32) * np.float32(1e-3)
            s0 = np.zeros(n, np.float32)
            s1 = np.zeros(n, np.float32) if kind == "adam" else None
            contenders = [("gradsmith", _gradsmith_step(kind, p, g, s0, s1), "ok")]
            contenders += _torch_steps(torch, kind, p, g) if torch else [("torch", None, peers.NOT_INSTALLED)]
            measured = [c for c in contenders if c[1] is not None]
            times = interleave([timed(fn) for _, fn, _ in measured], rounds)
            rates = {label: [bytes_per * n / t / 1e9 for t in ts] for (label, _, _), ts in zip(measured, times)}
            common = dict(roof=settings.peak["gbps"], params={"parameters": n, "bytes_per_parameter": bytes_per},
                          flops=float(flops_per * n), bytes=float(bytes_per * n), intensity=flops_per / bytes_per,
                          kernel=True)
            for label, _, status in contenders[1:]:
                rows.append(row("optimizer", name, "GB/s", rates["gradsmith"], label, rates.get(label), status,
                                **common))
            del p, g, s0, s1, contenders, measured
    return rows

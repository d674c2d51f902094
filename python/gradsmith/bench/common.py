"""What every benchmark group shares: settings, interleaved timing, statistics, rows.

Contenders of one case run interleaved (A B C A B C ...) so that drifts of
the machine (frequency, neighbours, thermal state) hit all of them alike;
each keeps its own samples, reported as the median and the spread.
"""

import dataclasses
import statistics
import sys
import time


@dataclasses.dataclass
class Settings:
    quick: bool  # tiny sizes, 1 round
    rounds: int  # interleaved rounds (samples per contender); 0: the group's default
    threads: int
    peak: dict  # gradsmith.machine.peak()

    def rounds_or(self, default):
        return self.rounds or (1 if self.quick else default)


def progress(msg):
    """Progress goes to stderr: stdout carries only the table."""
    print(msg, file=sys.stderr, flush=True)


def stats(samples):
    """Median, extremes and quartiles of a list of rates."""
    s = sorted(samples)
    q1, q3 = (statistics.quantiles(s, n=4, method="inclusive")[::2] if len(s) > 1 else (s[0], s[0]))
    return {"median": statistics.median(s), "min": s[0], "max": s[-1], "q1": q1, "q3": q3, "n": len(s),
            "samples": samples}


def calibrated(call, min_sample_s):
    """A sampler for a fast call: the first use (a warm-up) times a second, warm
    call to pick how many calls one sample makes so that it lasts >=
    min_sample_s; returns seconds per call."""
    inner = None

    def sample():
        nonlocal inner
        if inner is None:
            call()
            t0 = time.perf_counter()
            call()
            one = max(time.perf_counter() - t0, 1e-7)
            inner = max(1, int(min_sample_s / one))
        t0 = time.perf_counter()
        for _ in range(inner):
            call()
        return (time.perf_counter() - t0) / inner

    return sample


def timed(fn):
    """A sampler that times one call of fn."""
    def sample():
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    return sample


# Idle time between two contenders' samples, not timed. Thread pools keep their threads spinning for a
# while after a call (OpenMP's, OpenBLAS's and gradsmith's alike); without a pause the next contender
# runs against the previous one's spinning threads on a small machine (at 1024^3 on 2 cores that took
# 10-30% off whoever ran next). With it, every sample starts from idle threads.
SETTLE_S = 0.02


def interleave(samplers, rounds, warmup=True, settle_s=SETTLE_S):
    """Run each sampler (a callable returning seconds) once per round, in turn, idling ``settle_s``
    between samples.

    Returns one list of seconds per sampler. With warmup, each first runs once
    unrecorded (calibration, caches, lazy initialisation)."""
    if warmup:
        for s in samplers:
            s()
    out = [[] for _ in samplers]
    for _ in range(rounds):
        for s, times in zip(samplers, out):
            time.sleep(settle_s)
            times.append(s())
    return out


def row(group, case, unit, gs_rates, peer, peer_rates=None, status="ok", roof=None, **extra):
    """One table line: gradsmith against one peer on one case (rates: higher is better).

    status is 'ok', 'not installed', or why the peer has no figure; ratio is
    gradsmith / peer on the medians. roof is the machine's measured peak in
    the row's unit (FLOP peak or copy bandwidth, converted); peak_fraction is
    gradsmith's median over it."""
    gs = stats(gs_rates)
    pr = stats(peer_rates) if peer_rates else None
    return {"group": group, "case": case, "unit": unit, "gradsmith": gs, "peer": peer, "peer_status": status,
            "peer_figure": pr, "ratio": gs["median"] / pr["median"] if pr else None,
            "roof": roof, "peak_fraction": gs["median"] / roof if roof else None, **extra}


# ---- whole-model training cases (the cnn and rnn groups) ----------------------------------------------------
def keras_style_epochs(model, x, y, batch):
    """A sampler timing one epoch of ``model.fit`` (gradsmith's or Keras's) on (x, y), after one warm-up fit on
    the first batch (Keras traces its step function there; gradsmith builds its plan)."""
    model.fit(x[:batch], y[:batch], batch_size=batch, verbose=0)

    def epoch():
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
        return time.perf_counter() - t0
    return epoch


def torch_epochs(torch, threads, step, n, batch):
    """A sampler timing one epoch of ``step(i)`` over rows [0, n) in batches, on ``threads`` threads, after one
    warm-up step."""
    torch.set_num_threads(threads)
    step(0)

    def epoch():
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            step(i)
        return time.perf_counter() - t0
    return epoch


def peer_rows(group, case, unit, rates, torch_labels, keras_status, **common):
    """gradsmith's rates against PyTorch's best variant (all kept in the row) and against Keras."""
    import numpy as np

    rows = []
    if torch_labels:
        best = max(torch_labels, key=lambda label: np.median(rates[label]))
        rows.append(row(group, case, unit, rates["gradsmith"], f"{best} (best of torch)", rates[best], "ok", **common,
                        torch_variants={v: rates[v] for v in torch_labels}))
    else:
        rows.append(row(group, case, unit, rates["gradsmith"], "torch", None, "not installed", **common))
    rows.append(row(group, case, unit, rates["gradsmith"], "keras/tensorflow", rates.get("keras/tensorflow"),
                    keras_status, **common))
    return rows

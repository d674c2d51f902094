"""The machine's measured roofs: float32 FMA peak and streaming-copy bandwidth.

``peak()`` measures both with gradsmith's own thread pool at the current
thread count and CPU path, once per process (per thread count and path), and
caches the result. Benchmarks and the profiler divide by these figures to say
how close a kernel comes to what this machine can do:

* ``gflops``: independent FMA chains, enough of them to hide the FMA latency,
  on every pool thread at once, with the widest vectors of the path in use
  (``cpp/cpu/peak_*.cpp``). A compute-bound kernel of that path cannot go faster.
* ``gbps``: a parallel copy of a buffer at least as large as the last-level
  cache (and >= 256 MiB) into another, counting read + write bytes. The stores
  are non-temporal, so there is no write-allocate read to count or leave out;
  the buffers use huge pages where Linux allows (``cpp/cpu/machine_peak.cpp``).

Each figure is the best of a few short runs (about 0.3 s in all, plus the
first touch of the copy buffers): another process on the machine can only slow
a run down, so the fastest run is the closest to the machine's limit.
"""

from gradsmith import _core

__all__ = ["peak", "int8_peak"]

_FLOP_RUN_S = 0.03  # length of one FMA-chain run
_FLOP_RUNS = 5
_COPY_RUNS = 3
_cache = {}


def _flop_peak():
    # Calibrate the iteration count on a short run, then time runs of ~30 ms.
    iters = 1 << 14
    flops, seconds = _core.peak_flops_run(iters)
    iters = max(iters, int(iters * _FLOP_RUN_S / max(seconds, 1e-6)))
    rates = []
    for _ in range(_FLOP_RUNS):
        flops, seconds = _core.peak_flops_run(iters)
        rates.append(flops / seconds / 1e9)
    return max(rates)


def _copy_bandwidth():
    counted, seconds = _core.copy_bandwidth_runs(_core.copy_buffer_bytes(), _COPY_RUNS)
    return max(counted / s / 1e9 for s in seconds)


def peak(refresh=False):
    """The measured roofs at the current thread count and CPU path.

    Returns ``{'gflops': float32 FMA peak in GFLOP/s, 'gbps': copy bandwidth
    in GB/s (read + write), 'threads': thread count, 'isa': CPU path}``.
    Measured on first call (and again with ``refresh=True``), then cached for
    this thread count and path.
    """
    key = (_core.get_num_threads(), _core.current_isa())
    if refresh or key not in _cache:
        _cache[key] = {"gflops": _flop_peak(), "gbps": _copy_bandwidth(), "threads": key[0], "isa": key[1]}
    return dict(_cache[key])


_int8_cache = {}


def int8_peak(refresh=False):
    """The int8 roof of the int8 GEMM path in use, measured as ``peak()`` measures the float32 one: independent
    vpdpbusd chains on every pool thread (``cpp/cpu/peak_vnni.cpp``), 2 operations per byte multiply-add.

    Returns ``{'gops': int8 GOP/s, 'threads': thread count, 'isa': int8 path}``, or None on a path without
    VNNI (the AVX2 and scalar int8 paths have no roof of their own here). Cached per thread count and path.
    """
    key = (_core.get_num_threads(), _core.qgemm_isa())
    if key[1] != "avx512_vnni":
        return None
    if refresh or key not in _int8_cache:
        iters = 1 << 14
        ops, seconds = _core.peak_int8_run(iters)
        iters = max(iters, int(iters * _FLOP_RUN_S / max(seconds, 1e-6)))
        rates = []
        for _ in range(_FLOP_RUNS):
            ops, seconds = _core.peak_int8_run(iters)
            rates.append(ops / seconds / 1e9)
        _int8_cache[key] = {"gops": max(rates), "threads": key[0], "isa": key[1]}
    return dict(_int8_cache[key])

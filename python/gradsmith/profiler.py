"""gradsmith.profiler: where the time of a fit goes, kernel by kernel.

    from gradsmith import profiler

    with profiler.profile() as prof:
        with profiler.record_function("fit"):
            model.fit(x, y, epochs=2, verbose=0)
    print(prof.table(sort_by="self_time", row_limit=10))
    prof.export_chrome_trace("fit.json")       # open in https://ui.perfetto.dev

Every CPU kernel call is recorded in C++ (cpp/cpu/profiler.h): name, shapes,
thread, start, duration, FLOPs and bytes moved. Off, a kernel pays one relaxed
atomic load and a branch; on, two clock reads and a store into the calling
thread's preallocated buffer. ``record_function`` adds named spans of your own
around kernels; spans and kernels nest by time on each thread.

FLOPs count every float add, multiply, divide, compare or transcendental
function once (a GEMM is exactly 2*M*N*K); bytes are the compulsory traffic,
each array the kernel reads or writes counted once per direction. Each
kernel's counts are written next to its profile scope in cpp/cpu/.
"""
import contextlib
import importlib
import json
import numbers
import os
import tempfile
import threading
import weakref
import warnings

import numpy as np

from gradsmith import _core

__all__ = ["profile", "record_function"]

# Meaning of the recorded dims per kernel (unused dims are not stored).
_DIM_NAMES = {
    "gemm": ("M", "N", "K"),
    "dense_forward": ("batch", "in", "units"),
    "dense_backward": ("batch", "in", "units"),
    "activation_forward": ("rows", "cols"),
    "activation_backward": ("rows", "cols"),
    "loss_and_grad": ("rows", "cols"),
    "count_correct": ("rows", "cols"),
    "col_sums": ("rows", "cols"),
    "optimizer_step": ("elements",),
}

# sort_by: the row key, and whether larger comes first.
_SORT_KEYS = {
    "total_time": ("total_ns", True),
    "self_time": ("self_ns", True),
    "mean_time": ("mean_ns", True),
    "calls": ("calls", True),
    "flops": ("flops", True),
    "gflops": ("gflops", True),
    "gbps": ("gbps", True),
    "name": ("name", False),
}

_KIND_CATEGORY = ("kernel", "user")

_recording = None  # a weak reference to the profile that is recording, if any


class profile:
    """Record every kernel call between ``start()`` and ``stop()`` (or inside ``with``).

    ``peak_gflops`` and ``peak_gbps`` are the machine's peak FLOP rate and copy
    bandwidth for the table's "% peak" column; when None they come from
    ``gradsmith.machine.peak()`` the first time a table needs them. Each
    thread keeps at most ``max_events`` events per profile (80 bytes each,
    memory taken as they come and kept for the next profile; at most 2**24);
    more are counted as dropped (``prof.dropped``) and reported with a
    ``RuntimeWarning`` at ``stop()``. Starting a profile clears the previous
    one's events; only one profile runs at a time.
    """

    def __init__(self, peak_gflops=None, peak_gbps=None, max_events=1_000_000):
        for name, v in (("peak_gflops", peak_gflops), ("peak_gbps", peak_gbps)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real) or not v > 0):
                raise ValueError(f"profile: {name} must be a positive number or None, got {v!r}")
        if isinstance(max_events, bool) or not isinstance(max_events, numbers.Integral) or \
                not 1 <= max_events <= 1 << 24:
            raise ValueError(f"profile: max_events must be an int in [1, 2**24], got {max_events!r}")
        self.peak_gflops = None if peak_gflops is None else float(peak_gflops)
        self.peak_gbps = None if peak_gbps is None else float(peak_gbps)
        self.max_events = int(max_events)
        self._running = False
        self._raw = None
        self._events = None
        self._thread_names = {}
        self.dropped = 0

    # ---- session -------------------------------------------------------- #
    def start(self):
        """Clear the previous events and start recording."""
        global _recording
        if not self._running and _recording is not None and _recording() is None:
            _core.profiler_stop()  # the running profile was dropped without stop(): nobody can stop it now
        if self._running or not _core.profiler_start(self.max_events):
            raise RuntimeError("gradsmith.profiler: a profile is already running; profiles do not nest "
                               "(stop the running one first)")
        _recording = weakref.ref(self)
        self._running = True
        self._raw = self._events = None
        self.dropped = 0
        return self

    def stop(self):
        """Stop recording and fetch the events."""
        if not self._running:
            raise RuntimeError("gradsmith.profiler: this profile is not running")
        global _recording
        _core.profiler_stop()
        self._running = False
        _recording = None
        self._raw = _core.profiler_events()
        self._thread_names = {t.native_id: t.name for t in threading.enumerate()}
        self.dropped = int(self._raw["dropped"])
        if self.dropped:
            warnings.warn(f"gradsmith.profiler: {self.dropped} events were dropped: a thread recorded more than "
                          f"max_events={self.max_events}; profile a shorter run or pass a larger max_events",
                          RuntimeWarning, stacklevel=2)
        return self

    def __enter__(self):
        return self.start()

    def __del__(self):
        # A profile dropped while running (no stop(), no with) stops, so later profiles can start.
        if getattr(self, "_running", False):
            try:
                _core.profiler_stop()
            except Exception:  # noqa: BLE001 - interpreter shutdown
                pass

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- events ----------------------------------------------------------- #
    def _columns(self):
        if self._running:
            raise RuntimeError("gradsmith.profiler: stop the profile before reading its events")
        if self._raw is None:
            raise RuntimeError("gradsmith.profiler: this profile has not been run")
        return self._raw

    @property
    def events(self):
        """The recorded events, in order of start time, as a list of dicts.

        Keys: ``name``, ``cat`` ('kernel' or 'user' for record_function spans),
        ``tid`` (OS thread id), ``thread`` (small per-thread index), ``start_us``
        (since the profile started), ``dur_us``, ``self_us`` (duration minus the
        directly nested events'), ``depth`` (kernels open around it on its
        thread: 0 for a top-level kernel), ``flops``, ``bytes``, ``shape``
        (the kernel's sizes, e.g. (M, N, K) for gemm) and ``dims`` (their names).
        """
        if self._events is None:
            c = self._columns()
            names = c["names"]
            order = np.lexsort((-c["dur_ns"], c["start_ns"]))  # by start; a parent before its children
            col = {k: c[k][order].tolist() for k in ("name", "kind", "tid", "thread", "start_ns", "dur_ns", "self_ns",
                                                      "depth", "flops", "bytes", "dims")}
            events = []
            for i in range(len(order)):
                name = names[col["name"][i]]
                shape = tuple(d for d in col["dims"][i] if d >= 0)
                events.append({
                    "name": name, "cat": _KIND_CATEGORY[col["kind"][i]], "tid": col["tid"][i],
                    "thread": col["thread"][i], "start_us": col["start_ns"][i] / 1e3,
                    "dur_us": col["dur_ns"][i] / 1e3, "self_us": col["self_ns"][i] / 1e3, "depth": col["depth"][i],
                    "flops": col["flops"][i], "bytes": col["bytes"][i], "shape": shape,
                    "dims": _DIM_NAMES.get(name, ("n",) * len(shape))[:len(shape)],
                })
            self._events = events
        return self._events

    # ---- summary table --------------------------------------------------- #
    def _peaks(self):
        """(peak GFLOP/s, peak GB/s), None where unknown (gradsmith.machine not available)."""
        if self.peak_gflops is None or self.peak_gbps is None:
            try:
                machine = importlib.import_module("gradsmith.machine")
            except ImportError:
                return self.peak_gflops, self.peak_gbps
            p = machine.peak()
            if self.peak_gflops is None:
                self.peak_gflops = float(p["gflops"])
            if self.peak_gbps is None:
                self.peak_gbps = float(p["gbps"])
        return self.peak_gflops, self.peak_gbps

    def stats(self, sort_by="total_time"):
        """The table's rows as dicts, one per (category, name); see ``table``."""
        if sort_by not in _SORT_KEYS:
            raise ValueError(f"sort_by must be one of {', '.join(sorted(_SORT_KEYS))}; got {sort_by!r}")
        c = self._columns()
        peak_gflops, peak_gbps = self._peaks()
        all_self = float(c["self_ns"].sum())
        rows = []
        for kind in np.unique(c["kind"]).tolist():
            for name_id in np.unique(c["name"][c["kind"] == kind]).tolist():
                sel = (c["kind"] == kind) & (c["name"] == name_id)
                calls = int(sel.sum())
                total = float(c["dur_ns"][sel].sum())
                flops, nbytes = float(c["flops"][sel].sum()), float(c["bytes"][sel].sum())
                secs = total * 1e-9
                gflops = flops / secs * 1e-9 if secs > 0 and flops > 0 else None
                gbps = nbytes / secs * 1e-9 if secs > 0 and nbytes > 0 else None
                # Roofline: attainable = min(peak_flops, intensity * bandwidth). Achieved / attainable is
                # max(GFLOP/s / peak_flops, GB/s / bandwidth); the larger term names the bound.
                pct = bound = None
                if peak_gflops and peak_gbps and (gflops or gbps):
                    compute, memory = (gflops or 0.0) / peak_gflops, (gbps or 0.0) / peak_gbps
                    attainable = min(peak_gflops, flops / nbytes * peak_gbps) if nbytes > 0 else peak_gflops
                    bound = "compute" if attainable >= peak_gflops else "memory"
                    pct = 100.0 * max(compute, memory)
                self_ns = float(c["self_ns"][sel].sum())
                rows.append({
                    "name": c["names"][name_id], "cat": _KIND_CATEGORY[kind], "calls": calls, "total_ns": total,
                    "self_ns": self_ns, "mean_ns": total / calls, "flops": flops, "bytes": nbytes, "gflops": gflops,
                    "gbps": gbps, "pct_peak": pct, "bound": bound,
                    "pct_time": 100.0 * self_ns / all_self if all_self > 0 else 0.0,
                })
        key, descending = _SORT_KEYS[sort_by]
        present = [r for r in rows if r[key] is not None]
        present.sort(key=lambda r: r[key], reverse=descending)
        return present + [r for r in rows if r[key] is None]

    def table(self, sort_by="total_time", row_limit=None):
        """The per-kernel summary as a string: ``print(prof.table())``.

        Columns: Name; Calls; Total (time inside the kernel, nested calls
        included); Self (Total minus the kernels and spans called from inside
        it); Mean (Total / Calls); GFLOP/s and GB/s (the row's FLOPs and bytes
        over its Total); % peak (achieved over the roofline's attainable rate,
        min(peak FLOP/s, FLOPs/byte x peak GB/s), '-' when the peaks are
        unknown; above 100 when a kernel's data stays in cache, since the
        bandwidth peak is the memory copy rate); Bound (compute or memory, by arithmetic intensity); % time
        (Self over all rows' Self: rows add up to 100% without counting a GEMM
        inside dense_forward twice). User spans from ``record_function`` are
        rows too, named in [brackets].

        ``sort_by``: 'total_time' (default), 'self_time', 'mean_time',
        'calls', 'flops', 'gflops', 'gbps' or 'name'. ``row_limit``: show at
        most that many rows (None: all).
        """
        if row_limit is not None and (isinstance(row_limit, bool) or not isinstance(row_limit, numbers.Integral)
                                      or row_limit < 0):
            raise ValueError(f"row_limit must be None or an int >= 0, got {row_limit!r}")
        rows = self.stats(sort_by)
        shown = rows if row_limit is None else rows[:row_limit]
        header = ("Name", "Calls", "Total", "Self", "Mean", "GFLOP/s", "GB/s", "% peak", "Bound", "% time")
        body = [(f"[{r['name']}]" if r["cat"] == "user" else r["name"], str(r["calls"]), _fmt_time(r["total_ns"]),
                 _fmt_time(r["self_ns"]), _fmt_time(r["mean_ns"]), _fmt_num(r["gflops"]), _fmt_num(r["gbps"]),
                 _fmt_num(r["pct_peak"]), r["bound"] or "-", f"{r['pct_time']:.1f}") for r in shown]
        widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
        fmt = lambda line: "  ".join(s.ljust(w) if i == 0 else s.rjust(w)  # noqa: E731
                                     for i, (s, w) in enumerate(zip(line, widths))).rstrip()
        rule = "-" * len(fmt(tuple("-" * w for w in widths)))
        out = [fmt(header), rule] + [fmt(line) for line in body] + [rule]
        c = self._columns()
        peak_gflops, peak_gbps = self.peak_gflops, self.peak_gbps
        peaks = (f"peaks {peak_gflops:.1f} GFLOP/s, {peak_gbps:.1f} GB/s" if peak_gflops and peak_gbps
                 else "peaks unknown (% peak needs gradsmith.machine or peak_gflops= and peak_gbps=)")
        out.append(f"{len(c['dur_ns'])} events on {len(c['threads'])} thread(s); "
                   f"self time {_fmt_time(c['self_ns'].sum())}; {peaks}"
                   + (f"; {self.dropped} events DROPPED (raise max_events)" if self.dropped else ""))
        if row_limit is not None and len(rows) > row_limit:
            out.append(f"({len(rows) - row_limit} more rows not shown)")
        return "\n".join(out)

    # ---- trace export ---------------------------------------------------- #
    def export_chrome_trace(self, path):
        """Write the events as Trace Event Format JSON, for https://ui.perfetto.dev or chrome://tracing.

        One complete event (ph 'X') per kernel call or span, ``ts`` and ``dur`` in
        microseconds since the profile started, ``args`` with the shape, FLOPs
        and bytes; thread names as metadata events (ph 'M'). The file is written
        to a temporary file beside ``path`` and renamed over it, so a reader never
        sees half a trace; on error nothing is left behind.
        """
        events = self.events
        pid = os.getpid()
        trace = [{"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": "gradsmith"}}]
        for index, tid, dropped in self._columns()["threads"]:
            label = self._thread_names.get(tid, f"thread {index}")
            trace.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": label}})
            trace.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
                          "args": {"sort_index": index}})
        for e in events:
            args = {"flops": e["flops"], "bytes": e["bytes"], "depth": e["depth"]}
            if e["shape"]:
                args["shape"] = dict(zip(e["dims"], e["shape"]))
            trace.append({"name": e["name"], "cat": e["cat"], "ph": "X", "ts": e["start_us"], "dur": e["dur_us"],
                          "pid": pid, "tid": e["tid"], "args": args})
        doc = {"traceEvents": trace, "displayTimeUnit": "ms", "otherData": {"dropped_events": self.dropped}}
        _write_atomic(os.fspath(path), json.dumps(doc))


class record_function(contextlib.ContextDecorator):
    """A named span around the code inside: ``with record_function("train_step"): ...``.

    The span shows in the trace on the calling thread, with the kernels it runs
    nested inside, and as a ``[name]`` row in ``table()``. Also a decorator.
    While no profile runs it costs one call into C++ that returns at once.
    """

    def __init__(self, name):
        if not isinstance(name, str):
            raise TypeError(f"record_function: name must be a str, got {type(name).__name__}")
        self.name = name
        self._token = -1

    def _recreate_cm(self):  # a fresh span per decorated call (recursion, threads)
        return record_function(self.name)

    def __enter__(self):
        self._token = _core.profiler_span_begin(self.name)
        return self

    def __exit__(self, *exc):
        if self._token >= 0:
            _core.profiler_span_end(self._token)
            self._token = -1
        return False


def _fmt_time(ns):
    ns = float(ns)
    if ns < 1e3:
        return f"{ns:.0f}ns"
    if ns < 1e6:
        return f"{ns / 1e3:.1f}us"
    if ns < 1e9:
        return f"{ns / 1e6:.2f}ms"
    return f"{ns / 1e9:.3f}s"


def _fmt_num(v):
    if v is None:
        return "-"
    return f"{v:.1f}" if v < 1000 else f"{v:.0f}"


def _write_atomic(path, text):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise

"""gradsmith.profiler: events recorded in C++, the summary table and the Chrome trace export."""
import json
import os
import sys
import threading
import types
import warnings

import numpy as np
import pytest

import gradsmith
from gradsmith import _core, ops, profiler

PEAKS = {"peak_gflops": 100.0, "peak_gbps": 20.0}  # fixed peaks: no machine measurement in tests


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def small_model(seed=0):
    gradsmith.utils.set_random_seed(seed)
    model = gradsmith.Sequential([
        gradsmith.layers.Dense(16, activation="relu", input_shape=(8,)),
        gradsmith.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def contains(outer, inner):
    """inner lies within outer on the same thread (the way Perfetto nests 'X' events)."""
    return (outer["tid"] == inner["tid"] and outer["ts"] <= inner["ts"]
            and inner["ts"] + inner["dur"] <= outer["ts"] + outer["dur"])


@pytest.fixture
def idle_profiler():
    """No profile runs before or after the test."""
    assert not _core.profiler_enabled()
    yield
    if _core.profiler_enabled():
        _core.profiler_stop()
        pytest.fail("the test left a profile running")


# --------------------------------------------------------------------------- #
# FLOPs and bytes
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_event_counts_are_exact(idle_profiler, threads, rng, ta, tb):
    M, K, N = 37, 53, 29
    a = f32(rng, *((K, M) if ta else (M, K)))
    b = f32(rng, *((N, K) if tb else (K, N)))
    with profiler.profile() as prof:
        ops.matmul(a, b, transpose_a=ta, transpose_b=tb)
    (e,) = prof.events
    assert e["name"] == "gemm" and e["cat"] == "kernel" and e["depth"] == 0
    assert e["shape"] == (M, N, K) and e["dims"] == ("M", "N", "K")
    assert e["flops"] == 2 * M * N * K
    assert e["bytes"] == 4 * (M * K + K * N + M * N)
    assert e["dur_us"] >= 0 and e["self_us"] == e["dur_us"]


def test_gemm_with_beta_reads_c_too(idle_profiler, rng):
    M, K, N = 37, 53, 29
    out = f32(rng, M, N)
    with profiler.profile() as prof:
        ops.matmul(f32(rng, M, K), f32(rng, K, N), beta=0.5, out=out)
    (e,) = prof.events
    assert e["flops"] == 2 * M * N * K
    assert e["bytes"] == 4 * (M * K + K * N + 2 * M * N)


def test_pool_workers_record_nothing(idle_profiler, threads, rng):
    """A GEMM big enough to run on every thread is still one event, on the caller's thread."""
    n = 192
    with profiler.profile() as prof:
        ops.matmul(f32(rng, n, n), f32(rng, n, n))
    (e,) = prof.events
    assert e["flops"] == 2 * n ** 3 and e["tid"] == threading.get_native_id()


def test_nested_kernels_keep_depth_and_self_time(idle_profiler, rng):
    x, w, b = f32(rng, 32, 20), f32(rng, 20, 16), f32(rng, 16)
    with profiler.profile() as prof:
        ops.dense_forward(x, w, b, "relu")
    dense, gemm = prof.events  # parent first: same start order, longer first
    assert (dense["name"], dense["depth"]) == ("dense_forward", 0)
    assert (gemm["name"], gemm["depth"]) == ("gemm", 1)
    assert dense["start_us"] <= gemm["start_us"]
    assert gemm["start_us"] + gemm["dur_us"] <= dense["start_us"] + dense["dur_us"]
    assert dense["self_us"] == pytest.approx(dense["dur_us"] - gemm["dur_us"], abs=1e-6)
    # dense: GEMM + bias + relu per output; x, W, b read and y written
    assert dense["flops"] == (2 * 20 + 1 + 1) * 32 * 16
    assert dense["bytes"] == 4 * (32 * 20 + 20 * 16 + 16 + 32 * 16)
    assert gemm["flops"] == 2 * 32 * 16 * 20


# --------------------------------------------------------------------------- #
# A fit
# --------------------------------------------------------------------------- #
def test_fit_records_the_training_kernels(idle_profiler, rng):
    x = f32(rng, 96, 8)
    y = (x.sum(axis=1) > 0).astype(np.float32)
    model = small_model()
    with profiler.profile() as prof:
        model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    names = [e["name"] for e in prof.events]
    for kernel in ("dense_forward", "dense_backward", "loss_and_grad", "optimizer_step", "gemm"):
        assert kernel in names
    steps = 2 * 3
    assert names.count("optimizer_step") == steps
    assert names.count("dense_forward") == 2 * steps
    assert names.count("loss_and_grad") == steps
    assert all(e["depth"] == 1 for e in prof.events if e["name"] == "gemm")  # always inside a dense kernel
    # Each training step is a span, with that step's kernels inside it.
    spans = [e for e in prof.events if e["cat"] != "kernel"]
    assert [e["name"] for e in spans] == ["train_step"] * steps
    for e in prof.events:
        if e["cat"] == "kernel" and e["depth"] == 0:
            assert any(s["start_us"] <= e["start_us"] and e["start_us"] + e["dur_us"] <= s["start_us"] + s["dur_us"]
                       for s in spans), e["name"]
    params = model.count_params()
    step = next(e for e in prof.events if e["name"] == "optimizer_step")
    assert step["shape"] == (params,)
    assert step["flops"] == 12 * params  # adam's update
    assert step["bytes"] == 4 * params * (1 + 2 + 2 * 2)  # g read; w, m, v read and written


def test_nothing_is_recorded_while_off(idle_profiler, rng):
    a, b = f32(rng, 8, 8), f32(rng, 8, 8)
    with profiler.profile() as prof:
        ops.matmul(a, b)
    assert len(prof.events) == 1
    assert not _core.profiler_enabled()
    for _ in range(5):
        ops.matmul(a, b)
        ops.dense_forward(a, b, None, "relu")
        with profiler.record_function("off"):
            ops.sum(a)
    assert len(_core.profiler_events()["dur_ns"]) == 1  # the stopped session got nothing more
    with profiler.profile() as empty:  # and a new profile starts empty
        pass
    assert empty.events == [] and empty.dropped == 0


# --------------------------------------------------------------------------- #
# Sessions
# --------------------------------------------------------------------------- #
def test_profiles_do_not_nest(idle_profiler, rng):
    with profiler.profile() as outer:
        with pytest.raises(RuntimeError, match="already running"):
            profiler.profile().start()
        with pytest.raises(RuntimeError, match="already running"):
            with profiler.profile():
                pass
        with pytest.raises(RuntimeError, match="stop the profile"):
            outer.events
        ops.sum(f32(rng, 10))
    assert [e["name"] for e in outer.events] == ["sum"]
    with pytest.raises(RuntimeError, match="not running"):
        outer.stop()


def test_start_stop_form_and_restart_clears(idle_profiler, rng):
    prof = profiler.profile()
    prof.start()
    ops.sum(f32(rng, 10))
    ops.sum_squares(f32(rng, 10))
    prof.stop()
    assert [e["name"] for e in prof.events] == ["sum", "sum_squares"]
    assert prof.events[0]["flops"] == 10 and prof.events[1]["flops"] == 20
    prof.start()
    ops.sum_rows(f32(rng, 4, 3))
    prof.stop()
    (e,) = prof.events
    assert e["name"] == "col_sums" and e["shape"] == (4, 3) and e["bytes"] == 4 * (12 + 3)


def test_full_buffer_counts_dropped_events(idle_profiler, rng):
    a = f32(rng, 4, 4)
    prof = profiler.profile(max_events=5, **PEAKS)
    prof.start()
    for _ in range(12):
        ops.matmul(a, a)
    with pytest.warns(RuntimeWarning, match="7 events were dropped"):
        prof.stop()
    assert len(prof.events) == 5 and prof.dropped == 7
    assert "7 events DROPPED" in prof.table()


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10", 2 ** 24 + 1])
def test_bad_max_events(bad):
    with pytest.raises(ValueError, match="max_events"):
        profiler.profile(max_events=bad)


@pytest.mark.parametrize("bad", [0, -1.5, True, "10"])
def test_bad_peaks(bad):
    with pytest.raises(ValueError, match="peak_gflops"):
        profiler.profile(peak_gflops=bad)
    with pytest.raises(ValueError, match="peak_gbps"):
        profiler.profile(peak_gbps=bad)


def test_record_function_needs_a_name():
    with pytest.raises(TypeError, match="name"):
        profiler.record_function(3)


def test_threads_record_into_their_own_buffers(idle_profiler, rng):
    a = f32(rng, 16, 16)

    def work():
        for _ in range(20):
            ops.matmul(a, a)

    workers = [threading.Thread(target=work, name=f"worker-{i}") for i in range(2)]
    with profiler.profile() as prof:
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        work()
    assert len(prof.events) == 60
    assert len({e["tid"] for e in prof.events}) == 3 and len({e["thread"] for e in prof.events}) == 3
    for tid in {e["tid"] for e in prof.events}:
        assert sum(e["tid"] == tid for e in prof.events) == 20


def test_threads_that_exit_keep_their_events(idle_profiler, rng):
    a = f32(rng, 4, 4)
    for _ in range(2):  # the second profile reuses the exited threads' buffers
        with profiler.profile() as prof:
            for i in range(5):
                t = threading.Thread(target=ops.matmul, args=(a, a))
                t.start()
                t.join()
        assert [e["name"] for e in prof.events] == ["gemm"] * 5
        assert len({e["thread"] for e in prof.events}) == 5


def test_starting_and_stopping_while_threads_run_kernels(idle_profiler, rng):
    x = f32(rng, 64)
    done = threading.Event()

    def work():
        while not done.is_set():
            ops.sum(x)
            with profiler.record_function("loop"):
                ops.sum_squares(x)

    workers = [threading.Thread(target=work) for _ in range(3)]
    for t in workers:
        t.start()
    try:
        for _ in range(30):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # full buffers are part of the test
                with profiler.profile(max_events=200) as prof:
                    ops.sum(x)
            assert len(prof.events) <= 200 * 4
            for e in prof.events:
                assert e["name"] in ("sum", "sum_squares", "loop")
                assert 0 <= e["self_us"] <= e["dur_us"]
    finally:
        done.set()
        for t in workers:
            t.join()
    assert not _core.profiler_enabled()


# --------------------------------------------------------------------------- #
# record_function
# --------------------------------------------------------------------------- #
def test_record_function_spans_nest_around_kernels(idle_profiler, rng):
    a = f32(rng, 8, 8)

    @profiler.record_function("decorated")
    def step():
        ops.matmul(a, a)

    with profiler.profile() as prof:
        with profiler.record_function("outer"):
            step()
            step()
    names = [(e["name"], e["cat"]) for e in prof.events]
    assert names == [("outer", "user"), ("decorated", "user"), ("gemm", "kernel"),
                     ("decorated", "user"), ("gemm", "kernel")]
    outer = prof.events[0]
    inner = [e for e in prof.events if e["name"] == "decorated"]
    assert outer["self_us"] == pytest.approx(outer["dur_us"] - sum(e["dur_us"] for e in inner), abs=1e-6)
    assert all(e["depth"] == 0 for e in prof.events)  # spans are not kernels: a gemm under a span is top-level


def test_deep_nesting_is_bounded(idle_profiler, rng):
    """Spans deeper than the per-thread frame stack (64) are not recorded, but counted as dropped (stop()
    warns); nothing breaks."""
    import contextlib

    with pytest.warns(RuntimeWarning, match="6 events were dropped"), profiler.profile() as prof:
        with contextlib.ExitStack() as stack:
            for i in range(70):
                stack.enter_context(profiler.record_function(f"level{i}"))
            ops.sum(f32(rng, 4))
        ops.sum(f32(rng, 4))
    spans = [e for e in prof.events if e["cat"] == "user"]
    assert len(spans) == 64 and [e["name"] for e in spans] == [f"level{i}" for i in range(64)]
    assert [e["name"] for e in prof.events if e["cat"] == "kernel"] == ["sum", "sum"] and prof.dropped == 6


# --------------------------------------------------------------------------- #
# Table
# --------------------------------------------------------------------------- #
@pytest.fixture
def fitted_profile(rng):
    x = f32(rng, 64, 8)
    y = (x.sum(axis=1) > 0).astype(np.float32)
    model = small_model()
    prof = profiler.profile(**PEAKS)
    with prof:
        with profiler.record_function("fit"):
            model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    return prof


def parse_table(text):
    lines = text.splitlines()
    header = lines[0].split()
    rows = {}
    for line in lines[2:]:
        if line.startswith("-"):
            break
        cells = line.split()
        rows[cells[0]] = cells
    return header, rows, lines


def test_table_rows_and_columns(idle_profiler, fitted_profile):
    text = fitted_profile.table()
    header, rows, lines = parse_table(text)
    assert header == ["Name", "Calls", "Total", "Self", "Mean", "GFLOP/s", "GB/s", "%", "peak", "Bound", "%", "time"]
    for name in ("[fit]", "dense_forward", "dense_backward", "gemm", "loss_and_grad", "optimizer_step"):
        assert name in rows
    assert rows["[fit]"][1] == "1" and rows["optimizer_step"][1] == "4"
    assert rows["[fit]"][5:9] == ["-", "-", "-", "-"]  # a span has no FLOPs, bytes or bound
    assert rows["gemm"][8] in ("compute", "memory") and rows["gemm"][7] != "-"
    stats = fitted_profile.stats()
    assert sum(r["pct_time"] for r in stats) == pytest.approx(100.0)
    gemm = next(r for r in stats if r["name"] == "gemm")
    g, b = gemm["flops"] / gemm["total_ns"], gemm["bytes"] / gemm["total_ns"]  # GFLOP/s, GB/s
    assert gemm["pct_peak"] == pytest.approx(100 * max(g / 100.0, b / 20.0))
    assert "peaks 100.0 GFLOP/s, 20.0 GB/s" in lines[-1]


@pytest.mark.parametrize("sort_by", ["total_time", "self_time", "mean_time", "calls", "flops", "gflops", "gbps",
                                     "name"])
def test_table_sort_by(idle_profiler, fitted_profile, sort_by):
    stats = fitted_profile.stats(sort_by)
    key = {"total_time": "total_ns", "self_time": "self_ns", "mean_time": "mean_ns"}.get(sort_by, sort_by)
    values = [r[key] for r in stats if r[key] is not None]
    assert values == sorted(values, reverse=sort_by != "name")
    _, rows, _ = parse_table(fitted_profile.table(sort_by=sort_by))
    assert list(rows) == [f"[{r['name']}]" if r["cat"] == "user" else r["name"] for r in stats]


def test_table_row_limit_and_bad_sort_by(idle_profiler, fitted_profile):
    _, rows, lines = parse_table(fitted_profile.table(sort_by="calls", row_limit=2))
    assert len(rows) == 2 and "gemm" in rows
    assert "more rows not shown" in lines[-1]
    with pytest.raises(ValueError, match="sort_by"):
        fitted_profile.table(sort_by="duration")
    with pytest.raises(ValueError, match="row_limit"):
        fitted_profile.table(row_limit=-1)


def test_table_peaks_come_from_gradsmith_machine(idle_profiler, monkeypatch, rng):
    calls = []
    fake = types.ModuleType("gradsmith.machine")
    fake.peak = lambda: calls.append(1) or {"gflops": 50.0, "gbps": 10.0}
    monkeypatch.setitem(sys.modules, "gradsmith.machine", fake)
    with profiler.profile() as prof:
        ops.matmul(f32(rng, 8, 8), f32(rng, 8, 8))
    assert calls == []  # measured lazily, when a table needs it
    assert "peaks 50.0 GFLOP/s, 10.0 GB/s" in prof.table()
    assert parse_table(prof.table())[1]["gemm"][7] != "-"


def test_table_without_gradsmith_machine_leaves_peak_empty(idle_profiler, monkeypatch, rng):
    monkeypatch.setitem(sys.modules, "gradsmith.machine", None)  # import fails
    with profiler.profile(peak_gflops=100.0) as prof:
        ops.matmul(f32(rng, 8, 8), f32(rng, 8, 8))
    _, rows, lines = parse_table(prof.table())
    assert rows["gemm"][7:9] == ["-", "-"] and rows["gemm"][5] != "-"
    assert "peaks unknown" in lines[-1]


# --------------------------------------------------------------------------- #
# Chrome trace
# --------------------------------------------------------------------------- #
def test_chrome_trace_structure(idle_profiler, tmp_path, rng):
    x, w = f32(rng, 32, 20), f32(rng, 20, 16)
    with profiler.profile() as prof:
        with profiler.record_function("train_step"):
            ops.dense_forward(x, w, None, "tanh")
            ops.matmul(x, w)
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    assert os.listdir(tmp_path) == ["trace.json"]
    doc = json.loads(path.read_text())
    assert set(doc) >= {"traceEvents", "displayTimeUnit"} and doc["displayTimeUnit"] == "ms"
    complete = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    meta = [e for e in doc["traceEvents"] if e["ph"] == "M"]
    assert {e["ph"] for e in doc["traceEvents"]} == {"X", "M"}
    for e in complete:
        assert set(e) == {"name", "cat", "ph", "ts", "dur", "pid", "tid", "args"}
        assert isinstance(e["ts"], (int, float)) and isinstance(e["dur"], (int, float)) and e["dur"] >= 0
        assert e["pid"] == os.getpid() and e["tid"] == threading.get_native_id()
    assert [e["name"] for e in complete] == ["train_step", "dense_forward", "gemm", "gemm"]
    span, dense, inner, outer_gemm = complete
    assert span["cat"] == "user" and dense["cat"] == "kernel"
    assert contains(span, dense) and contains(span, inner) and contains(span, outer_gemm)
    assert contains(dense, inner) and not contains(dense, outer_gemm)
    assert inner["args"] == {"flops": 2.0 * 32 * 16 * 20, "bytes": 4.0 * (32 * 20 + 20 * 16 + 32 * 16), "depth": 1,
                             "shape": {"M": 32, "N": 16, "K": 20}}
    assert dense["args"]["shape"] == {"batch": 32, "in": 20, "units": 16}
    names = {e["tid"]: e["args"]["name"] for e in meta if e["name"] == "thread_name"}
    assert names[threading.get_native_id()] == threading.current_thread().name


def test_export_to_unwritable_path_raises_and_leaves_no_temp_file(idle_profiler, tmp_path, rng):
    with profiler.profile() as prof:
        ops.sum(f32(rng, 10))
    taken = tmp_path / "a_directory"
    taken.mkdir()
    with pytest.raises(OSError):
        prof.export_chrome_trace(taken)  # the rename over a directory fails after the temp file is written
    assert os.listdir(tmp_path) == ["a_directory"] and os.listdir(taken) == []
    with pytest.raises(OSError):
        prof.export_chrome_trace(tmp_path / "missing" / "trace.json")
    assert os.listdir(tmp_path) == ["a_directory"]
    prof.export_chrome_trace(tmp_path / "trace.json")  # overwrite-safe on a good path
    prof.export_chrome_trace(tmp_path / "trace.json")
    assert sorted(os.listdir(tmp_path)) == ["a_directory", "trace.json"]


def test_layer_by_layer_steps_are_spans_too(idle_profiler, rng):
    x = f32(rng, 64, 8)
    y = (x.sum(axis=1) > 0).astype(np.float32)
    model = small_model()
    model._compiled_step = lambda: None  # the Python path (models.py _python_train_step)
    with profiler.profile() as prof:
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    spans = [e for e in prof.events if e["cat"] != "kernel"]
    assert [e["name"] for e in spans] == ["train_step"] * 2
    optimizer = [e for e in prof.events if e["name"] == "optimizer_step"]
    assert all(any(s["start_us"] <= e["start_us"] <= s["start_us"] + s["dur_us"] for s in spans) for e in optimizer)


def test_a_profile_dropped_without_stop_does_not_block_later_ones():
    import gc

    from gradsmith import profiler

    prof = profiler.profile()
    prof.start()
    del prof  # never stopped
    gc.collect()
    with profiler.profile() as again:
        gradsmith.ops.activation_forward(np.ones((4, 4), np.float32), "relu")
    assert any(e["name"] == "activation_forward" for e in again.events)


def test_spans_left_open_are_forgotten_by_the_next_profile_and_too_deep_ones_are_counted():
    from gradsmith import profiler

    with pytest.warns(RuntimeWarning, match="dropped"):
        with profiler.profile() as first:
            for _ in range(70):  # entered, never exited: the last few are too deep to track
                profiler.record_function("leak").__enter__()
    assert first.dropped >= 6
    with profiler.profile() as second:  # the leaked spans belong to the first profile: forgotten
        with profiler.record_function("fresh"):
            gradsmith.ops.activation_forward(np.ones((4, 4), np.float32), "relu")
    names = [e["name"] for e in second.events]
    assert "fresh" in names and "activation_forward" in names and second.dropped == 0

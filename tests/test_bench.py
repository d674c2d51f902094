"""gradsmith.machine and ``python -m gradsmith.bench``: the figures are well formed,
the NumPy peer trainer is right. Timings never decide a pass."""
import importlib.util
import json
import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import gradsmith
from gradsmith import _core, machine
from reference.numeric import numeric_grad

ROOT = pathlib.Path(__file__).resolve().parents[1]
# FLOPs one chain loop does per iteration and thread: 2 x lanes x chains (cpp/cpu/peak_*.cpp).
FLOPS_PER_ITER = {"avx512": 2 * 16 * 16, "avx2": 2 * 8 * 12, "scalar": 2 * 4 * 12}


def test_peak_has_positive_finite_figures_and_is_cached(monkeypatch):
    p = machine.peak()
    assert set(p) == {"gflops", "gbps", "threads", "isa"}
    assert all(math.isfinite(p[k]) and p[k] > 0 for k in ("gflops", "gbps"))
    assert p["threads"] == gradsmith.get_num_threads() and p["isa"] == _core.current_isa()

    def not_again(*args):
        raise AssertionError("peak() measured again instead of using its cache")

    monkeypatch.setattr(_core, "peak_flops_run", not_again)
    monkeypatch.setattr(_core, "copy_bandwidth_runs", not_again)
    assert machine.peak() == p


def test_peak_refresh_measures_again(monkeypatch):
    monkeypatch.setattr(machine, "_cache", {})
    monkeypatch.setattr(_core, "peak_flops_run", lambda iters: (4e9 * iters, 2.0 * iters))  # 2 GFLOP/s
    monkeypatch.setattr(_core, "copy_bandwidth_runs", lambda nbytes, runs: (6e9, [2.0, 3.0, 1.0][:runs]))
    assert machine.peak()["gflops"] == pytest.approx(2.0)
    assert machine.peak()["gbps"] == pytest.approx(6.0)  # the best of 3, 2 and 6 GB/s
    monkeypatch.setattr(_core, "peak_flops_run", lambda iters: (1e9 * iters, 1.0 * iters))
    assert machine.peak()["gflops"] == pytest.approx(2.0)  # cached
    assert machine.peak(refresh=True)["gflops"] == pytest.approx(1.0)


def test_chain_loops_count_their_flops(isa, threads):
    flops, seconds = _core.peak_flops_run(1000)
    assert flops == 1000 * threads * FLOPS_PER_ITER[isa]
    assert seconds > 0


def test_copy_counts_read_and_write_of_whole_chunks():
    counted, seconds = _core.copy_bandwidth_runs(5 << 20, 2)  # rounded up to two 4 MiB chunks
    assert counted == 2 * (8 << 20)
    assert len(seconds) == 2 and all(s > 0 for s in seconds)
    assert _core.copy_buffer_bytes() >= 256 << 20
    with pytest.raises(ValueError):
        _core.copy_bandwidth_runs(0, 1)


def run_bench(args, code=None, timeout=600):
    """Run the command line in a fresh interpreter that imports this gradsmith."""
    package_dir = str(pathlib.Path(gradsmith.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_dir, os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "gradsmith.bench"]
    return subprocess.run(cmd + args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def check_stats(s):
    assert s["n"] == len(s["samples"]) >= 1
    assert all(math.isfinite(x) and x > 0 for x in s["samples"])
    assert s["min"] <= s["q1"] <= s["median"] <= s["q3"] <= s["max"]


def test_quick_cnn_measures_the_seed_model_against_its_peers(tmp_path):
    from gradsmith.bench import cnn

    assert cnn.flops_per_sample(cnn.SEED) * 32 == pytest.approx(40.77e9, rel=1e-3)  # the 41 GFLOP a step
    out = tmp_path / "bench.json"
    proc = run_bench(["--quick", "--only", "cnn", "--json", str(out)])
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [r["group"] for r in rows] == ["cnn", "cnn"] and rows[0]["case"] == "seed CNN 40x40x3 b32"
    assert rows[0]["peer"].startswith("torch") and rows[1]["peer"] == "keras/tensorflow"
    for r in rows:
        check_stats(r["gradsmith"])
        assert r["unit"] == "samples/s" and 0 < r["peak_fraction"]


def test_quick_rnn_measures_the_gru_language_model_against_its_peers(tmp_path):
    out = tmp_path / "bench.json"
    proc = run_bench(["--quick", "--only", "rnn", "--json", str(out)])
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [r["group"] for r in rows] == ["rnn", "rnn"] and rows[1]["peer"] == "keras/tensorflow"
    for r in rows:
        check_stats(r["gradsmith"])
        assert r["unit"] == "sequences/s" and 0 < r["peak_fraction"]


def test_int8_chains_count_their_operations(threads):
    ops, seconds = _core.peak_int8_run(1000)
    if _core.qgemm_isa() != "avx512_vnni":
        assert (ops, seconds) == (0.0, 0.0) and machine.int8_peak() is None
        return
    assert ops == 1000 * threads * 2 * 4 * 16 * 16  # 16 chains of vpdpbusd: 16 lanes x 4 byte multiply-adds
    assert seconds > 0
    p = machine.int8_peak()
    assert p["gops"] > 0 and p["isa"] == "avx512_vnni" and p["threads"] == threads


def test_quick_int8_measures_quantized_predict_against_its_peers(tmp_path):
    out = tmp_path / "bench.json"
    proc = run_bench(["--quick", "--only", "int8", "--json", str(out)])
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert {r["group"] for r in rows} == {"int8"}
    predict = [r for r in rows if "predict" in r["case"]]
    assert predict[0]["peer"] == "gradsmith float32" and predict[0]["unit"] == "samples/s"
    for r in predict:
        check_stats(r["gradsmith"])
    size = rows[-1]
    assert size["unit"] == "x smaller" and 3 < size["gradsmith"]["median"] < 4.5


def test_quick_gemm_writes_the_documented_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = run_bench(["--quick", "--only", "gemm", "--json", str(out)])
    assert proc.returncode == 0, proc.stderr
    assert "ratio" in proc.stdout and "gemm 128^3" in proc.stdout
    result = json.loads(out.read_text())
    assert result["schema"] == 1 and result["quick"] is True and result["groups"] == ["gemm"]
    assert set(result["machine"]) == {"gflops", "gbps", "threads", "isa"}
    assert result["threads"] == result["machine"]["threads"] and result["isa"] == result["machine"]["isa"]
    assert {"gradsmith", "numpy", "python", "torch", "tensorflow", "keras"} <= set(result["versions"])
    rows = result["rows"]
    cases = {r["case"] for r in rows}
    assert {"gemm 128^3", "M32 20->128 x@W", "M32 20->128 x^T dz", "M32 20->128 dz W^T"} <= cases
    for r in rows:
        assert r["group"] == "gemm" and r["unit"] == "GFLOP/s" and r["peer"] in ("numpy", "torch")
        check_stats(r["gradsmith"])
        if r["peer_status"] == "ok":
            check_stats(r["peer_figure"])
            assert r["ratio"] == pytest.approx(r["gradsmith"]["median"] / r["peer_figure"]["median"])
        else:
            assert r["peer_figure"] is None and r["ratio"] is None and r["peer_status"] == "not installed"
        p = r["params"]
        assert r["flops"] == 2.0 * p["M"] * p["N"] * p["K"]
        assert r["bytes"] == 4.0 * (p["M"] * p["K"] + p["K"] * p["N"] + p["M"] * p["N"])
        assert r["roof"] == result["machine"]["gflops"]
        assert r["peak_fraction"] == pytest.approx(r["gradsmith"]["median"] / r["roof"])


BLOCK_MATPLOTLIB = ("import sys; sys.modules['matplotlib'] = None; "
                    "from gradsmith.bench.cli import main; sys.exit(main(sys.argv[1:]))")


def test_plot_without_matplotlib_says_so_and_exits_0(tmp_path):
    png = tmp_path / "roofline.png"
    proc = run_bench(["--quick", "--only", "gemm", "--plot", str(png)], code=BLOCK_MATPLOTLIB)
    assert proc.returncode == 0, proc.stderr
    assert "matplotlib is not installed" in proc.stdout
    assert not png.exists()


def test_plot_draws_a_roofline_with_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    from gradsmith.bench import report

    stats = {"median": 50.0}
    result = {"machine": {"gflops": 100.0, "gbps": 20.0, "threads": 2, "isa": "avx2"}, "rows": [
        {"kernel": True, "case": "gemm 128^3", "group": "gemm", "unit": "GFLOP/s", "intensity": 21.3,
         "gradsmith": stats},
        {"kernel": True, "case": "adam 1M", "group": "optimizer", "unit": "GB/s", "intensity": 12 / 28,
         "gradsmith": stats}]}
    png = tmp_path / "roofline.png"
    assert report.roofline(str(png), result)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_group_is_a_usage_error():
    proc = run_bench(["--only", "gemm,nope"], timeout=120)
    assert proc.returncode == 2 and "nope" in proc.stderr


# --------------------------------------------------------------------------- #
# The NumPy peer trainer (benchmarks/numpy_trainer.py)
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def trainer():
    spec = importlib.util.spec_from_file_location("numpy_trainer", ROOT / "benchmarks" / "numpy_trainer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def toy_data(loss, n, features, rng):
    x = rng.standard_normal((n, features))
    w = rng.standard_normal((features, 3))
    if loss == "binary_crossentropy":
        return x, (x @ w[:, 0] > 0).astype(x.dtype)
    return x, np.argmax(x @ w, axis=1)


NETS = {"binary_crossentropy": ((6, 8, 5, 1), ("relu", "relu", "sigmoid")),
        "sparse_categorical_crossentropy": ((6, 7, 3), ("relu", "softmax"))}


@pytest.mark.parametrize("loss", list(NETS))
def test_numpy_trainer_learns_in_float32(trainer, loss):
    sizes, acts = NETS[loss]
    x, y = toy_data(loss, 1024, sizes[0], np.random.default_rng(0))
    x = x.astype(np.float32)
    y = y.astype(np.float32) if loss == "binary_crossentropy" else y
    model = trainer.MLP(sizes, acts, seed=0)
    history = trainer.fit(model, x, y, loss, batch_size=32, epochs=10, validation_data=(x[:256], y[:256]))
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    assert history["val_loss"][-1] < history["val_loss"][0]
    assert all(p.dtype == np.float32 for p in model.params)


@pytest.mark.parametrize("loss", list(NETS))
def test_numpy_trainer_gradients_match_finite_differences(trainer, loss):
    sizes, acts = NETS[loss]
    rng = np.random.default_rng(1)
    x, y = toy_data(loss, 9, sizes[0], rng)
    model = trainer.MLP(sizes, acts, seed=2, dtype=np.float64)
    for p in model.params[1::2]:  # nonzero biases, so their gradients are exercised off the origin
        p[:] = rng.uniform(-0.3, 0.3, p.shape)
    _, grads = trainer.loss_and_grads(model, x, y, loss)
    for i, g in enumerate(grads):
        saved = model.params[i]

        def loss_at(value):
            model.params[i] = value
            return trainer.loss_value(model.forward(x)[-1], y, loss)

        numeric = numeric_grad(loss_at, saved)
        model.params[i] = saved
        np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-9, err_msg=f"params[{i}]")

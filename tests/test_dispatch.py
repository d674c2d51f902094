"""CPU-path dispatch and the thread-count setting: gradsmith.cpu_info, set/get_num_threads,
_core.set_isa, and the GRADSMITH_CPU / OMP_NUM_THREADS environment variables read at import."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gradsmith
from gradsmith import _core, ops
from helpers import num_threads

KNOWN_ISAS = ("scalar", "avx2", "avx512")


def test_cpu_info_keys_and_values():
    info = gradsmith.cpu_info()
    assert set(info) == {"isa", "supported", "threads", "gemm_blocking", "int8_isa"}
    assert info["int8_isa"] in ("avx512_vnni", "avx2", "scalar")
    assert "scalar" in info["supported"] and set(info["supported"]) <= set(KNOWN_ISAS)
    assert info["isa"] in info["supported"]
    assert info["threads"] == gradsmith.get_num_threads() >= 1
    blocking = info["gemm_blocking"]
    assert set(blocking) == {"mr", "nr", "mc", "kc", "nc"}
    assert all(isinstance(v, int) and v > 0 for v in blocking.values())
    assert blocking["mc"] % blocking["mr"] == 0 and blocking["nc"] % blocking["nr"] == 0


def test_cpu_info_follows_set_isa(isa):
    """The isa fixture switches the path with _core.set_isa; cpu_info reports it and its blocking."""
    info = gradsmith.cpu_info()
    assert info["isa"] == isa == _core.current_isa()
    assert info["gemm_blocking"] == dict(_core.gemm_blocking())


def test_best_path_is_the_default_in_a_fresh_process():
    info = _cpu_info_in_subprocess({})
    assert info["isa"] == info["supported"][-1]  # supported is listed best last


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_set_num_threads_round_trip(n):
    with num_threads(n):
        assert gradsmith.get_num_threads() == n
        assert gradsmith.cpu_info()["threads"] == n
        # and the kernels still work with that many threads
        x = np.arange(40_000, dtype=np.float32)
        assert ops.sum(x) == float(np.sum(x.astype(np.float64)))


def test_num_threads_restored_after_block():
    before = gradsmith.get_num_threads()
    with num_threads(1):
        pass
    assert gradsmith.get_num_threads() == before


@pytest.mark.parametrize("bad, error", [
    (0, ValueError), (-1, ValueError), (2.5, TypeError), ("2", TypeError), (None, TypeError), (True, TypeError),
])
def test_set_num_threads_rejects_bad_values(bad, error):
    before = gradsmith.get_num_threads()
    with pytest.raises(error):
        gradsmith.set_num_threads(bad)
    assert gradsmith.get_num_threads() == before


def test_set_isa_rejects_unknown_path():
    before = _core.current_isa()
    with pytest.raises(ValueError, match="bogus"):
        _core.set_isa("bogus")
    assert _core.current_isa() == before


@pytest.mark.parametrize("name", KNOWN_ISAS)
def test_set_isa_to_each_supported_path(name):
    before = _core.current_isa()
    if name not in _core.supported_isas():
        with pytest.raises(ValueError):
            _core.set_isa(name)
        return
    try:
        _core.set_isa(name)
        assert gradsmith.cpu_info()["isa"] == name
    finally:
        _core.set_isa(before)


# --- environment variables, read once at import: checked in a fresh interpreter -------------------

def _subprocess_env(extra):
    env = {k: v for k, v in os.environ.items() if k not in ("GRADSMITH_CPU", "OMP_NUM_THREADS")}
    # Wherever gradsmith was imported from here (installed, or PYTHONPATH=python), the child finds it.
    paths = [p for p in sys.path if p] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.update(extra)
    return env


def _cpu_info_in_subprocess(extra):
    code = "import json, gradsmith; print(json.dumps(gradsmith.cpu_info()))"
    result = subprocess.run([sys.executable, "-c", code], env=_subprocess_env(extra), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", KNOWN_ISAS)
def test_gradsmith_cpu_env_selects_the_path(name):
    if name not in _core.supported_isas():
        pytest.skip(f"this CPU cannot run {name}")
    info = _cpu_info_in_subprocess({"GRADSMITH_CPU": name})
    assert info["isa"] == name


def test_gradsmith_cpu_env_unusable_value_still_imports():
    info = _cpu_info_in_subprocess({"GRADSMITH_CPU": "bogus"})
    assert info["isa"] in info["supported"]


@pytest.mark.parametrize("value, expected", [("1", 1), ("3", 3)])
def test_omp_num_threads_sets_the_default(value, expected):
    assert _cpu_info_in_subprocess({"OMP_NUM_THREADS": value})["threads"] == expected

"""What gradsmith does with its environment at import: GRADSMITH_CPU and OMP_NUM_THREADS it cannot follow
are said in a RuntimeWarning, never ignored silently, and a thread pool the system will not fully start
is used at the size it has, never hung on."""
import os
import subprocess
import sys

import pytest

import gradsmith

PROBE = "import gradsmith; print(gradsmith.cpu_info()['isa'], gradsmith.get_num_threads())"


def _run(env, code=PROBE, limit=None):
    full = {**os.environ, **env}
    full.pop("OMP_NUM_THREADS", None) if "OMP_NUM_THREADS" not in env else None
    cmd = [sys.executable, "-W", "always", "-c", code]
    if limit is not None:  # a memory limit on the child, as `ulimit -v` would set
        cmd = ["bash", "-c", f"ulimit -v {limit} && exec \"$@\"", "bash", *cmd]
    done = subprocess.run(cmd, env=full, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split(), done.stderr


@pytest.mark.parametrize("value", ["bogus", "avx9", "sse"])
def test_an_unknown_cpu_path_is_said_and_the_best_one_used(value):
    (isa, _), err = _run({"GRADSMITH_CPU": value})
    assert "RuntimeWarning" in err and f"GRADSMITH_CPU='{value}'" in err
    assert isa == gradsmith.cpu_info()["supported"][-1]


def test_a_cpu_path_is_named_in_any_case():
    (isa, _), err = _run({"GRADSMITH_CPU": "SCALAR"})
    assert isa == "scalar" and "RuntimeWarning" not in err


@pytest.mark.parametrize("value, threads", [("abc", None), ("-3", None), ("2.5", None), ("99999999999999999999", None),
                                            ("3", "3"), ("5000", "1024")])
def test_omp_num_threads_is_followed_capped_or_said_to_be_ignored(value, threads):
    (_, n), err = _run({"OMP_NUM_THREADS": value})
    if threads is not None:
        assert n == threads
    if threads != "3":
        assert "RuntimeWarning" in err and "OMP_NUM_THREADS" in err


needs_plain_memory = pytest.mark.skipif(
    bool(gradsmith._core.sanitizers), reason="a sanitizer build reserves more address space than the limit allows")


@needs_plain_memory
def test_threads_the_system_refuses_are_not_waited_for():
    """Under a memory limit the system starts only some of 1000 threads: the pool uses those, says so,
    and the kernels run (this used to hang at first use)."""
    code = PROBE + "; import numpy as np; print(float(gradsmith.ops.matmul(np.ones((64, 64)), np.ones((64, 64)))[0, 0]))"
    (_, n, value), err = _run({"OMP_NUM_THREADS": "1000"}, code=code, limit=2_500_000)
    assert 1 <= int(n) < 1000 and "could be started" in err and value == "64.0"


@needs_plain_memory
def test_set_num_threads_checks_its_range_and_says_when_the_system_refuses():
    before = gradsmith.get_num_threads()
    with pytest.raises(ValueError, match="1024"):
        gradsmith.set_num_threads(1025)
    with pytest.raises(ValueError):
        gradsmith.set_num_threads(0)
    assert gradsmith.get_num_threads() == before
    code = ("import gradsmith\ntry:\n    gradsmith.set_num_threads(1000)\nexcept ValueError as e:\n    print('refused', "
            "gradsmith.get_num_threads(), 'could be started' in str(e))\nelse:\n    print('started', "
            "gradsmith.get_num_threads(), True)")
    (_, n, said), _ = _run({"OMP_NUM_THREADS": "1"}, code=code, limit=2_500_000)
    assert 1 <= int(n) <= 1000 and said == "True"

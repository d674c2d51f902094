"""Shared fixtures: every kernel test runs on every CPU path this machine has,
and with one thread and with all of them."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # makes `import reference` work

import gradsmith  # noqa: E402
from gradsmith import _core  # noqa: E402

ISAS = list(_core.supported_isas())
MAX_THREADS = max(2, os.cpu_count() or 1)


@pytest.fixture(params=ISAS)
def isa(request):
    """Run the test on one CPU path (scalar, avx2, avx512 as supported), then restore."""
    before = _core.current_isa()
    _core.set_isa(request.param)
    yield request.param
    _core.set_isa(before)


@pytest.fixture(params=[1, MAX_THREADS], ids=lambda n: f"threads{n}")
def threads(request):
    """Run the test with 1 thread and with all of them (at least 2), then restore."""
    before = gradsmith.get_num_threads()
    gradsmith.set_num_threads(request.param)
    yield request.param
    gradsmith.set_num_threads(before)


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name: failures reproduce."""
    import numpy as np
    import zlib

    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))

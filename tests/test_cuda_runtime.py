"""gradsmith.cuda where no GPU can be used (these machines): the package imports,
says CUDA is unavailable and why, and every call that needs a device raises
with that reason instead of crashing."""
import numpy as np
import pytest

import gradsmith
from gradsmith import _core, cuda


def test_the_queries_agree():
    assert cuda.is_available() == (cuda.device_count() > 0)
    assert (cuda.unavailable_reason() == "") == cuda.is_available()
    assert isinstance(cuda.is_built(), bool)
    assert gradsmith.cuda is cuda


@pytest.mark.skipif(cuda.is_available(), reason="a GPU is present: tests/cuda covers it")
def test_without_a_device_calls_explain_why():
    reason = cuda.unavailable_reason()
    assert reason and cuda.device_count() == 0
    assert cuda.memory_allocated() == 0
    cuda.empty_cache()  # nothing to give back; must not fail
    for call in (cuda.get_device_name, cuda.synchronize):
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            call()
    if cuda.is_built():
        with pytest.raises(RuntimeError, match="not available"):
            cuda.DeviceArray([4])
        with pytest.raises(RuntimeError, match="not available"):
            cuda.DeviceArray.from_numpy(np.ones(3, np.float32))
    else:
        assert cuda.DeviceArray is None and "without CUDA" in reason


@pytest.mark.skipif(not cuda.is_built(), reason="built without CUDA")
def test_a_cuda_build_names_the_driver_problem():
    if not cuda.is_available():
        assert "CUDA" in _core.cuda_unavailable_reason()

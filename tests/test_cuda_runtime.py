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


class _ForeignDeviceArray:
    """Stands for a CuPy / PyTorch CUDA array: only its __cuda_array_interface__ (nothing is read)."""

    def __init__(self, shape, ptr=0x10000, typestr="<f4", strides=None, readonly=False):
        self.__cuda_array_interface__ = {"shape": shape, "typestr": typestr, "data": (ptr, readonly),
                                         "version": 3, "strides": strides}


needs_cuda_build = pytest.mark.skipif(not cuda.is_built(), reason="built without CUDA")


@needs_cuda_build
def test_a_view_of_foreign_device_memory_takes_no_copy():
    foreign = _ForeignDeviceArray((3, 4))
    view = cuda.DeviceArray.view(foreign)
    assert view.shape == (3, 4) and view.ptr == 0x10000 and not view.owned
    assert view.__cuda_array_interface__["data"] == (0x10000, False)
    assert cuda.as_device_array(foreign).ptr == 0x10000 and cuda.is_device_array(foreign)
    assert not cuda.is_device_array(np.ones(3, np.float32))


@needs_cuda_build
@pytest.mark.parametrize("bad, error", [
    (dict(typestr="<f8"), "float32"),
    (dict(strides=(4, 12)), "C-contiguous"),
    (dict(readonly=True), "read-only"),
])
def test_views_refuse_what_the_kernels_cannot_read(bad, error):
    with pytest.raises((TypeError, ValueError), match=error):
        cuda.DeviceArray.view(_ForeignDeviceArray((3, 4), **bad))


@needs_cuda_build
def test_dlpack_export_describes_the_memory():
    import ctypes

    class DLTensor(ctypes.Structure):  # dlpack.h's layout
        _fields_ = [("data", ctypes.c_void_p), ("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32),
                    ("ndim", ctypes.c_int32), ("code", ctypes.c_uint8), ("bits", ctypes.c_uint8),
                    ("lanes", ctypes.c_uint16), ("shape", ctypes.POINTER(ctypes.c_int64)),
                    ("strides", ctypes.c_void_p), ("byte_offset", ctypes.c_uint64)]

    view = cuda.DeviceArray.view(_ForeignDeviceArray((5, 7), ptr=0x20000))
    assert view.__dlpack_device__() == (2, 0)  # kDLCUDA, device 0
    capsule = view.__dlpack__()
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    t = DLTensor.from_address(get(capsule, b"dltensor"))
    assert (t.data, t.device_type, t.ndim, t.code, t.bits, t.lanes) == (0x20000, 2, 2, 2, 32, 1)
    assert [t.shape[0], t.shape[1]] == [5, 7] and not t.strides
    del capsule  # an unconsumed capsule frees its tensor


@pytest.mark.skipif(cuda.is_available(), reason="a GPU is present: tests/cuda covers it")
def test_ops_on_device_arrays_explain_when_cuda_is_unavailable():
    from gradsmith import ops

    with pytest.raises(RuntimeError, match="not available|without CUDA"):
        ops.matmul(_ForeignDeviceArray((2, 3)), _ForeignDeviceArray((3, 2)))

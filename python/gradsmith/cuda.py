"""gradsmith.cuda: is a GPU there, which one, and its memory.

A wheel built with a CUDA toolkit carries the CUDA kernels (cpp/cuda/) with
the runtime linked in statically, so it imports on a machine with no GPU and
no driver; ``is_available()`` is then False and ``unavailable_reason()`` says
why. A build without a toolkit has no CUDA kernels at all, and says so.

    import gradsmith
    if gradsmith.cuda.is_available():
        print(gradsmith.cuda.get_device_name())
        x = gradsmith.cuda.DeviceArray.from_numpy(np.ones((3, 4), np.float32))
        cupy.asarray(x)            # CuPy sees the same memory (__cuda_array_interface__)

What runs on the GPU so far: the GEMM (``gradsmith.ops.matmul`` takes
DeviceArrays or CuPy arrays and returns a DeviceArray), dense forward and
backward, activations, softmax, losses, dropout (the CPU's mask for the same
seed) and the fused optimizer update (``_core.cuda_*``, exercised by
tests/cuda); models still train on the CPU. DeviceArray speaks both
``__cuda_array_interface__`` and DLPack (``__dlpack__``), so CuPy and PyTorch
see gradsmith's memory without a copy, and ``DeviceArray.view`` does the same
the other way.
"""
from gradsmith import _core

__all__ = ["is_available", "unavailable_reason", "is_built", "device_count", "get_device_name", "synchronize",
           "memory_allocated", "memory_cached", "empty_cache", "DeviceArray", "is_device_array", "as_device_array",
           "matmul"]


def is_built():
    """Whether this gradsmith was built with the CUDA backend."""
    return bool(_core.cuda_built)


def is_available():
    """Whether a CUDA device can be used now."""
    return bool(_core.cuda_available())


def unavailable_reason():
    """Why CUDA cannot be used ('' when it can)."""
    return "" if is_available() else _core.cuda_unavailable_reason()


def _require():
    if not is_available():
        raise RuntimeError(f"CUDA is not available: {unavailable_reason()}")


def device_count():
    """The number of CUDA devices (0 when CUDA is unavailable)."""
    return int(_core.cuda_device_count())


def get_device_name(device=0):
    """The name of a device, e.g. 'NVIDIA H100 80GB HBM3'."""
    _require()
    return _core.cuda_device_name(int(device))


def synchronize():
    """Wait for every kernel launched so far to finish."""
    _require()
    _core.cuda_synchronize()


def memory_allocated():
    """Bytes of device memory held by live DeviceArrays (0 without CUDA)."""
    return int(_core.cuda_memory_allocated()) if is_built() else 0


def memory_cached():
    """Bytes of device memory kept by the caching allocator for reuse."""
    return int(_core.cuda_memory_cached()) if is_built() else 0


def empty_cache():
    """Give the allocator's kept blocks back to the driver."""
    if is_built():
        _core.cuda_empty_cache()


DeviceArray = getattr(_core, "DeviceArray", None)


def is_device_array(x):
    """Whether x lives in CUDA memory: a DeviceArray, or any object with ``__cuda_array_interface__``
    (CuPy, PyTorch CUDA tensors, Numba)."""
    return (DeviceArray is not None and isinstance(x, DeviceArray)) or hasattr(x, "__cuda_array_interface__")


def as_device_array(x, name="array"):
    """x as a DeviceArray: itself, or a view (no copy) of another library's float32 C-order device
    memory."""
    if DeviceArray is not None and isinstance(x, DeviceArray):
        return x
    if not is_built():
        raise RuntimeError(f"{name}: a CUDA array, but {unavailable_reason()}")
    return DeviceArray.view(x)


def matmul(a, b, transpose_a=False, transpose_b=False, alpha=1.0, beta=0.0, out=None):
    """gradsmith.ops.matmul on device arrays: the result is a DeviceArray (``out`` when given)."""
    _require()
    a, b = as_device_array(a, "a"), as_device_array(b, "b")
    if len(a.shape) != 2 or len(b.shape) != 2:
        raise ValueError(f"matmul: expected 2-D arrays, got shapes {a.shape} and {b.shape}")
    m = a.shape[1] if transpose_a else a.shape[0]
    n = b.shape[0] if transpose_b else b.shape[1]
    if out is None:
        if beta != 0.0:
            raise ValueError("matmul: beta != 0 reads C from out=, which is missing")
        out = DeviceArray([m, n])
    out = as_device_array(out, "out")
    _core.cuda_gemm(a, b, out, bool(transpose_a), bool(transpose_b), float(alpha), float(beta))
    return out

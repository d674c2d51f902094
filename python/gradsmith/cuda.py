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

What runs on the GPU so far: element-wise activations, dropout (the CPU's
mask for the same seed) and the fused optimizer update over DeviceArrays
(``_core.cuda_*``, exercised by tests/cuda); models still train on the CPU.
"""
from gradsmith import _core

__all__ = ["is_available", "unavailable_reason", "is_built", "device_count", "get_device_name", "synchronize",
           "memory_allocated", "memory_cached", "empty_cache", "DeviceArray"]


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

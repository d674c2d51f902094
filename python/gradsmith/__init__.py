"""gradsmith: neural-network training from Python on hand-written C++ kernels.

``import gradsmith as keras`` runs ordinary Keras training programs:
``gradsmith.Sequential``, ``gradsmith.layers``, ``gradsmith.optimizers``,
``gradsmith.losses``, ``gradsmith.metrics``, ``gradsmith.callbacks``,
``gradsmith.data``. The kernels live in the compiled module
``gradsmith._core``; ``gradsmith.ops`` is their documented NumPy face.
"""

import warnings

from gradsmith import _core, ops
from gradsmith import initializers, regularizers
from gradsmith import layers
from gradsmith import losses, metrics, optimizers
from gradsmith import callbacks, data
from gradsmith import models, saving, utils
from gradsmith import functional  # noqa: F401 (graph models register themselves with models and saving)
from gradsmith import preprocessing
from gradsmith import config, cuda, machine, profiler
from gradsmith import distribution
from gradsmith.config import device
from gradsmith.layers import Input
from gradsmith.models import Model, Sequential
from gradsmith.distillation import Distiller
from gradsmith import pruning
from gradsmith._version import __version__

# GRADSMITH_CPU or OMP_NUM_THREADS that could not be followed (an unknown CPU path, a thread count that is
# not a number, more threads than the system would start) are said once, here, not ignored.
for _note in _core.startup_notes():
    warnings.warn(f"gradsmith: {_note}", RuntimeWarning, stacklevel=2)

__all__ = ["Sequential", "Model", "Input", "Distiller", "layers", "models", "optimizers", "losses", "metrics",
           "callbacks", "data", "initializers", "regularizers", "saving", "utils", "preprocessing", "ops", "profiler",
           "machine", "cuda", "config", "distribution", "pruning", "device", "cpu_info", "set_num_threads", "get_num_threads",
           "__version__"]


def cpu_info():
    """Describe the CPU path in use.

    Returns a dict: ``isa`` (the SIMD path the kernels use: 'avx512', 'avx2'
    or 'scalar'), ``supported`` (every path this CPU can run), ``threads``
    (the thread pool's size), ``gemm_blocking`` (the GEMM's MR, NR, MC, KC,
    NC for that path) and ``int8_isa`` (the int8 GEMM's path, following the
    CPU path: 'avx512_vnni', 'avx2' or 'scalar'). Set
    ``GRADSMITH_CPU=scalar|avx2|avx512`` before import to force a path.
    """
    return {
        "isa": _core.current_isa(),
        "supported": list(_core.supported_isas()),
        "threads": _core.get_num_threads(),
        "gemm_blocking": dict(_core.gemm_blocking()),
        "int8_isa": _core.qgemm_isa(),
    }


def set_num_threads(n):
    """Use ``n`` threads (the caller plus ``n - 1`` workers) in every kernel, 1 <= n <= 1024. When the
    system refuses to start them all, raises ValueError saying how many it uses."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    _core.set_num_threads(n)


def get_num_threads():
    """Threads the kernels use: all CPUs by default, or ``OMP_NUM_THREADS`` when set."""
    return _core.get_num_threads()

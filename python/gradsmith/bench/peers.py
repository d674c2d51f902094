"""The peers gradsmith is measured against, loaded only when importable.

NumPy is always there. PyTorch and Keras (TensorFlow backend) are optional:
a missing one gives rows whose peer figure reads "not installed". The NumPy
trainer is benchmarks/numpy_trainer.py of a source checkout.
"""

import importlib.metadata
import importlib.util
import os
import pathlib
import platform

import numpy as np

import gradsmith

NOT_INSTALLED = "not installed"


def torch():
    """The torch module, or None."""
    try:
        import torch as t
    except ImportError:
        return None
    return t


def keras():
    """Keras on the TensorFlow backend (Keras 3, else tf.keras), or None."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError:
        return None
    try:  # the thread count gradsmith uses; possible only before TensorFlow's runtime starts
        tf.config.threading.set_intra_op_parallelism_threads(gradsmith.get_num_threads())
    except RuntimeError:
        pass
    try:
        import keras as k
    except ImportError:
        k = tf.keras
    return k


def numpy_trainer():
    """benchmarks/numpy_trainer.py as a module, or None when not in a source checkout.

    Looked up next to the package's source tree (python/gradsmith/bench ->
    benchmarks/) and in the current directory."""
    here = pathlib.Path(__file__).resolve()
    for path in (here.parents[3] / "benchmarks" / "numpy_trainer.py",
                 pathlib.Path.cwd() / "benchmarks" / "numpy_trainer.py"):
        if path.is_file():
            spec = importlib.util.spec_from_file_location("numpy_trainer", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    return None


def set_threads(n):
    """n threads for gradsmith, PyTorch and NumPy's BLAS alike (TensorFlow: see keras())."""
    gradsmith.set_num_threads(n)
    t = torch()
    if t is not None:
        t.set_num_threads(n)
    try:  # OpenBLAS's own pool; without threadpoolctl, OMP_NUM_THREADS governs it
        from threadpoolctl import threadpool_limits
        threadpool_limits(n, user_api="blas")
    except ImportError:
        pass


def versions():
    """Versions of everything measured ('not installed' for missing peers), read
    from the installed distributions without importing them."""
    out = {"gradsmith": gradsmith.__version__, "numpy": np.__version__, "python": platform.python_version()}
    # TensorFlow's CPU-only wheel is another distribution of the same module.
    for name, dists in (("torch", ("torch",)), ("tensorflow", ("tensorflow", "tensorflow-cpu")), ("keras", ("keras",))):
        out[name] = NOT_INSTALLED
        for dist in dists:
            try:
                out[name] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                pass
    return out

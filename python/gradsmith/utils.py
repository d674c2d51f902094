"""``gradsmith.utils.set_random_seed``: one seed for everything random in training.

After ``set_random_seed(s)``, unseeded initializers, Dropout layers without a
seed and fit's shuffling all draw from one generator seeded with ``s`` (and
Python's ``random`` and NumPy's global generator are seeded too, as Keras
does). Two runs with the same seed give bit-identical weights on the CPU,
whatever the thread count: the kernels' reductions add in a fixed order.
"""
import random

import numpy as np

__all__ = ["set_random_seed"]

_global = {"rng": np.random.default_rng()}


def set_random_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"set_random_seed: seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"set_random_seed: seed must be >= 0, got {seed}")
    random.seed(int(seed))
    np.random.seed(int(seed) % (1 << 32))
    _global["rng"] = np.random.default_rng(int(seed))


def global_rng():
    """The generator behind every unseeded random choice gradsmith makes."""
    return _global["rng"]

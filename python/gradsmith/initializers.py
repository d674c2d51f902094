"""Weight initializers with Keras 3's names, arguments and formulas.

An initializer is called as ``init(shape, dtype=None)`` and returns a float32
NumPy array. Seeded initializers give the same values for the same seed.
Variance scaling (Keras): ``n`` is fan_in, fan_out or their mean; the uniform
form draws from [-limit, limit] with ``limit = sqrt(3 * scale / n)``, the
normal form from a normal truncated at two standard deviations with
``stddev = sqrt(scale / n) / 0.8796...`` (the truncation's correction).
"""
import numpy as np

from gradsmith import utils

__all__ = ["Initializer", "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform", "TruncatedNormal",
           "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform",
           "LecunNormal", "Orthogonal", "get", "serialize", "deserialize"]

_TRUNCATION_STDDEV = 0.87962566103423978  # stddev of a unit normal truncated to [-2, 2]


def _fans(shape):
    """(fan_in, fan_out) as Keras computes them: a kernel (in, units) has fan_in = in, fan_out = units."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    def __call__(self, shape, dtype=None):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _Seeded(Initializer):
    def __init__(self, seed=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        self.seed = seed

    def _generator(self):
        # Keras: an unseeded initializer gives new values on every call (from the global generator,
        # which gradsmith.utils.set_random_seed seeds); a seeded one the same values every time.
        return np.random.default_rng(self.seed) if self.seed is not None else utils.global_rng()

    def get_config(self):
        return {"seed": self.seed}


def _truncated_normal(rng, shape, mean, stddev):
    """Normal(mean, stddev) redrawn outside two standard deviations, as Keras's truncated_normal."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    return (mean + stddev * out).astype(np.float32)


class Zeros(Initializer):
    def __call__(self, shape, dtype=None):
        return np.zeros(shape, np.float32)


class Ones(Initializer):
    def __call__(self, shape, dtype=None):
        return np.ones(shape, np.float32)


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = float(value)

    def __call__(self, shape, dtype=None):
        return np.full(shape, self.value, np.float32)

    def get_config(self):
        return {"value": self.value}


class RandomNormal(_Seeded):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype=None):
        return (self.mean + self.stddev * self._generator().standard_normal(shape)).astype(np.float32)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class RandomUniform(_Seeded):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape, dtype=None):
        return self._generator().uniform(self.minval, self.maxval, shape).astype(np.float32)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


class TruncatedNormal(_Seeded):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype=None):
        return _truncated_normal(self._generator(), shape, self.mean, self.stddev)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class VarianceScaling(_Seeded):
    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"mode must be 'fan_in', 'fan_out' or 'fan_avg', got {mode!r}")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(f"unknown distribution {distribution!r}")
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        scale = self.scale / max(1.0, n)
        rng = self._generator()
        if self.distribution == "uniform":
            limit = np.sqrt(3.0 * scale)
            return rng.uniform(-limit, limit, shape).astype(np.float32)
        if self.distribution == "untruncated_normal":
            return (np.sqrt(scale) * rng.standard_normal(shape)).astype(np.float32)
        return _truncated_normal(rng, shape, 0.0, np.sqrt(scale) / _TRUNCATION_STDDEV)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, **super().get_config()}


def _variance_scaling(name, scale, mode, distribution):
    class Named(VarianceScaling):
        def __init__(self, seed=None):
            super().__init__(scale, mode, distribution, seed)

        def get_config(self):
            return {"seed": self.seed}

    Named.__name__ = Named.__qualname__ = name
    return Named


GlorotUniform = _variance_scaling("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _variance_scaling("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeUniform = _variance_scaling("HeUniform", 2.0, "fan_in", "uniform")
HeNormal = _variance_scaling("HeNormal", 2.0, "fan_in", "truncated_normal")
LecunUniform = _variance_scaling("LecunUniform", 1.0, "fan_in", "uniform")
LecunNormal = _variance_scaling("LecunNormal", 1.0, "fan_in", "truncated_normal")


class Orthogonal(_Seeded):
    """Keras's Orthogonal: the Q of the QR decomposition of a normal matrix (rows = product of all but the last
    axis, transposed when wider than tall), its columns' signs set by R's diagonal, times ``gain``."""

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = float(gain)

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: the shape must have at least two axes, got {shape}")
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        a = self._generator().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q.reshape(shape)).astype(np.float32)

    def get_config(self):
        return {"seed": self.seed, "gain": self.gain}

_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_uniform": HeUniform,
    "he_normal": HeNormal, "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal,
    "uniform": RandomUniform, "normal": RandomNormal,  # Keras's short names (Embedding's default is 'uniform')
    "orthogonal": Orthogonal,
}
_BY_CLASS = {cls.__name__: cls for cls in _BY_NAME.values()}


def serialize(initializer):
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}


def deserialize(config):
    cls = _BY_CLASS.get(config.get("class_name"))
    if cls is None:
        raise ValueError(f"unknown initializer {config.get('class_name')!r}")
    return cls.from_config(config.get("config", {}))


def get(identifier):
    """An initializer from a name ('glorot_uniform'), a class name, a config dict or an instance."""
    if identifier is None:
        return None
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier) or _BY_CLASS.get(identifier)
        if cls is None:
            raise ValueError(f"unknown initializer {identifier!r}; expected one of {', '.join(_BY_NAME)}")
        return cls()
    if callable(identifier):
        return identifier
    raise TypeError(f"cannot interpret {identifier!r} as an initializer")

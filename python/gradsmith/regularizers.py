"""Weight regularizers (Keras 3): a penalty added to the loss, and its gradient.

``L1(l1)``: ``l1 * sum(|w|)``, gradient ``l1 * sign(w)``.
``L2(l2)``: ``l2 * sum(w^2)`` (no 1/2, as Keras), gradient ``2 * l2 * w``.
``L1L2(l1, l2)``: both.
"""
import numpy as np

from gradsmith import ops

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get", "serialize", "deserialize"]


class Regularizer:
    def __call__(self, x):
        raise NotImplementedError

    def gradient(self, x):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class L1L2(Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = float(l1), float(l2)
        for name, v in (("l1", self.l1), ("l2", self.l2)):
            if not (v >= 0 and np.isfinite(v)):
                raise ValueError(f"{name} must be a finite number >= 0, got {v}")

    def __call__(self, x):
        x = np.asarray(x, np.float32)
        value = 0.0
        if self.l1:
            value += self.l1 * float(np.sum(np.abs(x), dtype=np.float64))
        if self.l2:
            value += self.l2 * ops.sum_squares(x)
        return value

    def gradient(self, x):
        g = np.zeros(np.shape(x), np.float32)
        if self.l1:
            g += np.float32(self.l1) * np.sign(x)
        if self.l2:
            g += np.float32(2.0 * self.l2) * x
        return g

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


l1, l2, l1_l2 = L1, L2, L1L2
_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": L1L2, "L1": L1, "L2": L2, "L1L2": L1L2}


def serialize(regularizer):
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}


def deserialize(config):
    cls = _BY_NAME.get(config.get("class_name"))
    if cls is None:
        raise ValueError(f"unknown regularizer {config.get('class_name')!r}")
    return cls.from_config(config.get("config", {}))


def get(identifier):
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    raise ValueError(f"cannot interpret {identifier!r} as a regularizer")

"""Hinge metrics: the means of the hinge, squared hinge and categorical hinge losses."""
from gradsmith import losses
from gradsmith.metrics.base import _FnMetric

__all__ = ["Hinge", "SquaredHinge", "CategoricalHinge"]


class Hinge(_FnMetric):
    """Mean hinge loss (0/1 targets become -1/1)."""

    def __init__(self, name="hinge", dtype=None):
        super().__init__(losses.hinge, name=name, dtype=dtype)


class SquaredHinge(_FnMetric):
    """Mean squared hinge loss (0/1 targets become -1/1)."""

    def __init__(self, name="squared_hinge", dtype=None):
        super().__init__(losses.squared_hinge, name=name, dtype=dtype)


class CategoricalHinge(_FnMetric):
    """Mean categorical hinge loss."""

    def __init__(self, name="categorical_hinge", dtype=None):
        super().__init__(losses.categorical_hinge, name=name, dtype=dtype)

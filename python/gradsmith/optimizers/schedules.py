"""gradsmith.optimizers.schedules: Keras 3 learning-rate schedules.

Each schedule is a callable ``schedule(step) -> float``. As in Keras, the
arithmetic runs in the dtype of ``initial_learning_rate`` converted to a
tensor, which for a Python float is float32: every value here is computed in
NumPy float32 and returned as a Python float (so ``ExponentialDecay(0.1, ...)(0)``
is ``0.10000000149011612``, as ``float(keras_schedule(0))`` is).

Names, arguments, defaults and ``get_config`` keys are Keras 3's
(keras/src/optimizers/schedules/learning_rate_schedule.py).
"""
import math
import numbers

import numpy as np

__all__ = [
    "LearningRateSchedule",
    "ExponentialDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "InverseTimeDecay",
    "CosineDecay",
    "CosineDecayRestarts",
    "serialize",
    "deserialize",
]

_F32 = np.float32


def _f(x):
    """x as a float32 scalar (Keras casts every operand to the schedule's dtype)."""
    return _F32(x)


def _step(step):
    """The optimizer step as a plain number (accepts ints, NumPy scalars, 0-d arrays)."""
    if isinstance(step, np.ndarray):
        if step.ndim != 0:
            raise ValueError(f"step: expected a scalar, got an array of shape {step.shape}")
        step = step.item()
    if isinstance(step, np.generic):
        step = step.item()
    if isinstance(step, bool) or not isinstance(step, numbers.Real):
        raise TypeError(f"step: expected a number, got {type(step).__name__}")
    return step


def _check_decay_steps(name, value):
    if value <= 0:
        raise ValueError(f"Argument `{name}` must be > 0. Received: {name}={value}")


class LearningRateSchedule:
    """The learning rate schedule base class (Keras 3).

    Subclasses implement ``__call__(self, step)`` and, to be serializable,
    ``get_config()``; ``from_config(config)`` is ``cls(**config)``.
    """

    def __call__(self, step):
        raise NotImplementedError(
            f"Learning rate schedule '{self.__class__.__name__}' must override `__call__(self, step)`.")

    def get_config(self):
        raise NotImplementedError(
            f"Learning rate schedule '{self.__class__.__name__}' must override `get_config()` in order to be "
            "serializable.")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{self.__class__.__name__}({args})"


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (``floor`` of the
    exponent when ``staircase``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="ExponentialDecay"):
        super().__init__()
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name
        _check_decay_steps("decay_steps", self.decay_steps)

    def __call__(self, step):
        # Keras: p = step / decay_steps (floor(p) if staircase); lr = initial_learning_rate * decay_rate ** p
        p = _f(_step(step)) / _f(self.decay_steps)
        if self.staircase:
            p = np.floor(p)
        return float(_f(self.initial_learning_rate) * np.power(_f(self.decay_rate), p))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` for ``step <= boundaries[0]``, ``values[i]`` for
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` for ``step > boundaries[-1]``."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        super().__init__()
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of values. Received: "
                f"boundaries={boundaries} of length {len(boundaries)}, and values={values} of length {len(values)}.")
        self.boundaries = boundaries
        self.values = values
        self.name = name

    def __call__(self, step):
        step = _step(step)
        # Keras casts the boundaries to the step's dtype (an integer step: integer boundaries).
        integral = isinstance(step, numbers.Integral)
        bounds = [int(b) if integral else b for b in self.boundaries]
        # Keras: sum over ranges of [step in range] * value; the ranges are disjoint and cover every step.
        if step <= bounds[0]:
            value = self.values[0]
        elif step > bounds[-1]:
            value = self.values[-1]
        else:
            value = next(v for low, high, v in zip(bounds[:-1], bounds[1:], self.values[1:-1]) if low < step <= high)
        return float(_f(value)) if isinstance(self.values[0], float) else value

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """``(initial - end) * (1 - step / decay_steps) ** power + end`` with ``step = min(step,
    decay_steps)``; with ``cycle``, ``decay_steps`` becomes its first multiple >= step."""

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=False,
                 name="PolynomialDecay"):
        super().__init__()
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.end_learning_rate = end_learning_rate
        self.power = power
        self.cycle = cycle
        self.name = name
        _check_decay_steps("decay_steps", self.decay_steps)

    def __call__(self, step):
        initial = _f(self.initial_learning_rate)
        end = _f(self.end_learning_rate)
        power = _f(self.power)
        s = _f(_step(step))
        decay_steps = _f(self.decay_steps)
        if self.cycle:
            # Keras: multiplier = 1 if step == 0 else ceil(step / decay_steps); decay_steps *= multiplier
            multiplier = _f(1.0) if s == 0 else np.ceil(s / decay_steps)
            decay_steps = decay_steps * multiplier
        else:
            # Keras: step = min(step, decay_steps)
            s = np.minimum(s, decay_steps)
        # Keras: lr = (initial - end) * (1 - step / decay_steps) ** power + end
        p = s / decay_steps
        return float((initial - end) * np.power(_f(1.0) - p, power) + end)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "end_learning_rate": self.end_learning_rate, "power": self.power, "cycle": self.cycle,
                "name": self.name}


class InverseTimeDecay(LearningRateSchedule):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)`` (``floor`` of
    ``step / decay_steps`` when ``staircase``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="InverseTimeDecay"):
        super().__init__()
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name
        _check_decay_steps("decay_steps", self.decay_steps)

    def __call__(self, step):
        # Keras: p = step / decay_steps (floor if staircase); lr = initial / (1 + decay_rate * p)
        p = _f(_step(step)) / _f(self.decay_steps)
        if self.staircase:
            p = np.floor(p)
        return float(_f(self.initial_learning_rate) / (_f(1.0) + _f(self.decay_rate) * p))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Cosine decay with optional linear warmup (Keras 3).

    Without ``warmup_target``: ``step = min(step, decay_steps)``,
    ``lr = initial * ((1 - alpha) * 0.5 * (1 + cos(pi * step / decay_steps)) + alpha)``.
    With ``warmup_target``: ``step = min(step, decay_steps + warmup_steps)``; for
    ``step < warmup_steps`` ``lr = (warmup_target - initial) * step / warmup_steps + initial``,
    then the cosine decay from ``warmup_target`` over ``step - warmup_steps``.
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay", warmup_target=None,
                 warmup_steps=0):
        super().__init__()
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.name = name
        self.warmup_steps = warmup_steps
        self.warmup_target = warmup_target
        _check_decay_steps("decay_steps", self.decay_steps)

    def _decay_function(self, step, decay_steps, decay_from_lr):
        # Keras: cosine = 0.5 * (1 + cos(pi * step / decay_steps)); decayed = (1 - alpha) * cosine + alpha
        completed_fraction = step / decay_steps
        cosine_decayed = _f(0.5) * (_f(1.0) + np.cos(_f(math.pi) * completed_fraction))
        decayed = (_f(1.0) - _f(self.alpha)) * cosine_decayed + _f(self.alpha)
        return decay_from_lr * decayed

    def _warmup_function(self, step, warmup_steps, warmup_target, initial_learning_rate):
        # Keras: (warmup_target - initial) * step / warmup_steps + initial
        completed_fraction = step / warmup_steps
        total_step_delta = warmup_target - initial_learning_rate
        return total_step_delta * completed_fraction + initial_learning_rate

    def __call__(self, step):
        initial = _f(self.initial_learning_rate)
        decay_steps = _f(self.decay_steps)
        s = _f(_step(step))
        if self.warmup_target is None:
            s = np.minimum(s, decay_steps)
            return float(self._decay_function(s, decay_steps, initial))
        warmup_target = _f(self.warmup_target)
        warmup_steps = _f(self.warmup_steps)
        s = np.minimum(s, decay_steps + warmup_steps)
        if s < warmup_steps:
            return float(self._warmup_function(s, warmup_steps, warmup_target, initial))
        return float(self._decay_function(s - warmup_steps, decay_steps, warmup_target))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR), Keras 3: periods grow by ``t_mul``, restart
    peaks scale by ``m_mul``."""

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0, name="SGDRDecay"):
        super().__init__()
        self.initial_learning_rate = initial_learning_rate
        self.first_decay_steps = first_decay_steps
        self._t_mul = t_mul
        self._m_mul = m_mul
        self.alpha = alpha
        self.name = name
        _check_decay_steps("first_decay_steps", self.first_decay_steps)

    def __call__(self, step):
        initial = _f(self.initial_learning_rate)
        first_decay_steps = _f(self.first_decay_steps)
        alpha = _f(self.alpha)
        t_mul = _f(self._t_mul)
        m_mul = _f(self._m_mul)
        completed_fraction = _f(_step(step)) / first_decay_steps
        one = _f(1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            if t_mul == one:
                # Keras: i_restart = floor(fraction); fraction -= i_restart
                i_restart = np.floor(completed_fraction)
                completed_fraction = completed_fraction - i_restart
            else:
                # Keras: i_restart = floor(log(1 - fraction (1 - t_mul)) / log(t_mul));
                # sum_r = (1 - t_mul**i_restart) / (1 - t_mul); fraction = (fraction - sum_r) / t_mul**i_restart
                i_restart = np.floor(np.log(one - completed_fraction * (one - t_mul)) / np.log(t_mul))
                sum_r = (one - np.power(t_mul, i_restart)) / (one - t_mul)
                completed_fraction = (completed_fraction - sum_r) / np.power(t_mul, i_restart)
        # Keras: cosine = 0.5 * m_mul**i_restart * (1 + cos(pi * fraction)); lr = initial * ((1 - alpha) cosine + alpha)
        m_fac = np.power(m_mul, i_restart)
        cosine_decayed = _f(0.5) * m_fac * (one + np.cos(_f(math.pi) * completed_fraction))
        decayed = (one - alpha) * cosine_decayed + alpha
        return float(initial * decayed)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "first_decay_steps": self.first_decay_steps,
                "t_mul": self._t_mul, "m_mul": self._m_mul, "alpha": self.alpha, "name": self.name}


_ALL = {cls.__name__: cls for cls in (LearningRateSchedule, ExponentialDecay, PiecewiseConstantDecay,
                                        PolynomialDecay, InverseTimeDecay, CosineDecay, CosineDecayRestarts)}


def serialize(learning_rate_schedule):
    """``{'module': 'keras.optimizers.schedules', 'class_name': ..., 'config': ..., 'registered_name': None}``."""
    if not isinstance(learning_rate_schedule, LearningRateSchedule):
        raise TypeError(f"serialize: expected a LearningRateSchedule, got {type(learning_rate_schedule).__name__}")
    cls = type(learning_rate_schedule)
    builtin = _ALL.get(cls.__name__) is cls
    return {"module": "keras.optimizers.schedules" if builtin else cls.__module__, "class_name": cls.__name__,
            "config": learning_rate_schedule.get_config(),
            "registered_name": None if builtin else cls.__name__}


def deserialize(config, custom_objects=None):
    """A schedule from ``serialize``'s dict (``class_name`` + ``config``)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"deserialize: expected a dict with 'class_name' and 'config', got {config!r}")
    name = config["class_name"]
    objects = dict(_ALL)
    objects.update(custom_objects or {})
    cls = objects.get(name) or objects.get(config.get("registered_name") or "")
    if cls is None:
        raise ValueError(f"Could not interpret learning rate schedule: unknown class_name {name!r}")
    return cls.from_config(dict(config.get("config") or {}))

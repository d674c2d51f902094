"""The Loss base class, LossFunctionWrapper, and the registry of built-in loss functions.

A Loss reduces the per-sample losses of its ``call`` (gradsmith.losses.reduction)
and gives ``value_and_grad``: from ONE ``ops.loss_and_grad`` kernel call when
its function has a kernel, by central differences otherwise. Each family
module (regression, probabilistic, hinge) registers its functions here with
``_kernel_function``, so a LossFunctionWrapper finds its kernel and a saved
config finds its function by name.
"""
import collections
import inspect
import re

import numpy as np

from gradsmith import ops
from gradsmith.losses.reduction import (_F32, _Plan, _f32, _same_shape, _sparse_labels,
                                        squeeze_or_expand_to_same_rank, standardize_reduction)

__all__ = ["Loss", "LossFunctionWrapper"]


# Names (keras/src/utils/naming.py): auto_name = uniquify(to_snake_case(class name))
_NAME_UIDS = collections.defaultdict(int)


def _to_snake_case(name):
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def _auto_name(prefix):
    """Keras ``auto_name``: 'precision', then 'precision_1', 'precision_2', ... for later objects."""
    name = _to_snake_case(prefix)
    unique = f"{name}_{_NAME_UIDS[name]}" if name in _NAME_UIDS else name
    _NAME_UIDS[name] += 1
    return unique


def _clear_names():
    """Forget the names handed out (what ``keras.backend.clear_session()`` does to them)."""
    _NAME_UIDS.clear()


# The built-in loss functions: function -> the ops.loss_and_grad kernel that computes it, and name (or
# alias) -> function. Filled as the family modules define their functions (the package imports them all).
_KERNELS = {}
_FUNCTIONS = {}


def _kernel_function(*aliases):
    """Decorator: register a per-sample loss function computed by the kernel of its name."""
    def register(fn):
        _KERNELS[fn] = fn.__name__
        for name in (fn.__name__, *aliases):
            _FUNCTIONS[name] = fn
        return fn
    return register


def _serialize_function(fn):
    if fn in _KERNELS:
        return {"module": "keras.losses", "class_name": "function", "config": fn.__name__,
                "registered_name": "function"}
    return fn  # get_config keeps another callable as is (serialize() names it)


def _function_by_name(fn):
    """A custom function in serialize()'s JSON form: its name (give it back through custom_objects)."""
    return {"module": getattr(fn, "__module__", None), "class_name": "function",
            "config": getattr(fn, "__name__", type(fn).__name__), "registered_name": "function"}


def _deserialize_function(config, custom_objects=None):
    name = config.get("config") if isinstance(config, dict) else config
    fn = (custom_objects or {}).get(name) or _FUNCTIONS.get(name)
    if fn is None or inspect.isclass(fn):
        raise ValueError(f"Could not interpret loss function: {config!r} (pass custom functions in custom_objects)")
    return fn


class Loss:
    """Keras 3 loss base: subclasses implement ``call(y_true, y_pred)`` returning per-sample losses.

    ``__call__`` reduces them (a float; reduction 'none' gives the array);
    ``value_and_grad`` also returns d value / d y_pred (float32, shaped like
    y_pred). Built-in losses compute both in the ``ops.loss_and_grad`` kernel;
    a custom ``call`` is differentiated numerically (central differences in
    float64, one pair of calls per column when each sample's loss depends on
    its own row only).
    """

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        self.name = name or _auto_name(self.__class__.__name__)
        self.reduction = standardize_reduction(reduction)
        self._dtype = dtype or "float32"

    @property
    def dtype(self):
        return self._dtype

    def call(self, y_true, y_pred):
        raise NotImplementedError

    # -- kernel hook: (kernel name, kernel kwargs) or None
    def _kernel_spec(self):
        return None

    def __call__(self, y_true, y_pred, sample_weight=None):
        if self.reduction in (None, "none"):
            L, mask = self._per_sample(y_true, y_pred)
            return _Plan(L.shape, sample_weight, mask, self.reduction).none(L)
        if self._kernel_spec() is not None:
            return self._kernel_value_and_grad(y_true, y_pred, sample_weight)[0]
        L, mask = self._per_sample(y_true, y_pred)
        return _Plan(L.shape, sample_weight, mask, self.reduction).value(L)

    def value_and_grad(self, y_true, y_pred, sample_weight=None):
        """(value, dvalue/dy_pred). Reduction 'none' differentiates the sum of the per-sample losses."""
        if self._kernel_spec() is not None:
            return self._kernel_value_and_grad(y_true, y_pred, sample_weight)
        return self._numeric_value_and_grad(y_true, y_pred, sample_weight)

    def _per_sample(self, y_true, y_pred):
        """(per-sample losses, mask or None), float32, as Keras's ``call``."""
        return np.asarray(self.call(_f32(y_true, "y_true"), _f32(y_pred, "y_pred")), dtype=_F32), None

    # -- the kernel path
    def _kernel_value_and_grad(self, y_true, y_pred, sample_weight):
        kernel, kwargs = self._kernel_spec()
        pred = _f32(y_pred, "y_pred")
        mask = None
        if kernel == "sparse_categorical_crossentropy":
            true, p = squeeze_or_expand_to_same_rank(np.asarray(y_true), pred)
            if p.ndim < 2:
                raise ValueError(f"{self.name}: y_pred must have a class axis, got shape {pred.shape}")
            labels = _sparse_labels(true, p)
            ignore_class = kwargs.pop("ignore_class", None)
            if ignore_class is not None:
                mask = labels != ignore_class
                labels = np.where(mask, labels, 0)
            S = p.shape[:-1]
            t2 = labels.reshape(-1)
        else:
            true, p = _same_shape(_f32(y_true, "y_true"), pred, self.name, broadcast=not kernel.endswith("entropy"))
            if p.ndim == 0:
                raise ValueError(f"{self.name}: y_pred must be at least 1-D, got a scalar")
            S = p.shape[:-1] if p.ndim >= 2 else ()  # 1-D predictions: ONE loss over all entries (Keras)
            t2 = true.reshape(-1, p.shape[-1])
        p2 = p.reshape(-1, p.shape[-1])
        plan = _Plan(S, sample_weight, mask, self.reduction)
        rows = p2.shape[0]
        if rows == 0 or p2.shape[1] == 0:
            return 0.0, np.zeros(pred.shape, dtype=_F32)
        weights = None
        if plan.W is not None and S != ():
            weights = plan.W.reshape(-1).astype(_F32)
        # ops.loss_and_grad: value_k = sum_i w_i L_i / rows, grad_k = w_i dL_i/dp / rows (sum_over_batch_size)
        value, grad = ops.loss_and_grad(kernel, t2, p2, sample_weight=weights, **kwargs)
        # Keras: value = sum(W L) / divisor  =>  value_k * rows / divisor (a scalar loss: times its weight)
        scale = (rows / plan.divisor) if np.isfinite(plan.divisor) else 0.0
        if S == () and plan.W is not None:
            scale *= float(plan.W)
        if scale != 1.0:
            value = value * scale
            grad *= _F32(scale)
        return float(value), grad.reshape(pred.shape)

    # -- the numeric path (custom losses)
    def _numeric_value_and_grad(self, y_true, y_pred, sample_weight):
        pred = _f32(y_pred, "y_pred")
        L32, mask = self._per_sample(y_true, pred)
        plan = _Plan(L32.shape, sample_weight, mask, self.reduction)
        value = plan.value(L32)
        true64 = np.asarray(y_true, dtype=np.float64)
        p64 = pred.astype(np.float64)

        def per_sample(p):
            return np.asarray(self.call(true64, p), dtype=np.float64)

        grad = np.zeros(p64.shape, dtype=np.float64)
        S = L32.shape
        if len(S) >= 1 and p64.shape[:len(S)] == S and p64.size:
            # each loss depends on its own row only: perturb one column of every row at once
            rows = int(np.prod(S, dtype=np.int64))
            pr = p64.reshape(rows, -1)
            g = grad.reshape(rows, -1)
            for j in range(pr.shape[1]):
                h = 1e-4 * np.maximum(1.0, np.abs(pr[:, j]))
                up, down = pr.copy(), pr.copy()
                up[:, j] += h
                down[:, j] -= h
                d = (per_sample(up.reshape(p64.shape)).reshape(rows)
                     - per_sample(down.reshape(p64.shape)).reshape(rows)) / (2.0 * h)
                g[:, j] = d if plan.W is None else plan.W.reshape(rows) * d
            grad = g.reshape(p64.shape) / plan.divisor if np.isfinite(plan.divisor) else np.zeros_like(p64)
        else:
            flat = p64.reshape(-1)
            for k in range(flat.size):
                h = 1e-4 * max(1.0, abs(flat[k]))
                up, down = flat.copy(), flat.copy()
                up[k] += h
                down[k] -= h
                grad.reshape(-1)[k] = (plan.value(per_sample(up.reshape(p64.shape)))
                                       - plan.value(per_sample(down.reshape(p64.shape)))) / (2.0 * h)
        return value, grad.astype(_F32)

    # -- config
    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{self.__class__.__name__} name={self.name!r} reduction={self.reduction!r}>"


class LossFunctionWrapper(Loss):
    """A per-sample loss function ``fn(y_true, y_pred, **kwargs)`` as a Loss (Keras 3).

    Wrapping one of this module's functions uses its kernel; any other
    function is differentiated numerically.
    """

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true, y_pred):
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def _per_sample(self, y_true, y_pred):
        if _KERNELS.get(self.fn) == "sparse_categorical_crossentropy" and \
                self._fn_kwargs.get("ignore_class") is not None:
            pred = _f32(y_pred, "y_pred")
            true, pred = squeeze_or_expand_to_same_rank(np.asarray(y_true), pred)
            mask = _sparse_labels(true, pred) != self._fn_kwargs["ignore_class"]
            return np.asarray(self.call(true, pred), dtype=_F32), mask
        return super()._per_sample(y_true, y_pred)

    def _kernel_spec(self):
        kernel = _KERNELS.get(self.fn)
        if kernel is None:
            return None
        allowed = {"from_logits", "label_smoothing", "delta", "ignore_class"}
        kwargs = {k: v for k, v in self._fn_kwargs.items() if k != "axis"}
        if set(kwargs) - allowed:
            return None
        return kernel, kwargs

    def get_config(self):
        config = super().get_config()
        config["fn"] = _serialize_function(self.fn)
        config.update(self._fn_kwargs)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "fn" in config and not callable(config["fn"]):
            config["fn"] = _deserialize_function(config["fn"])
        return cls(**config)

    def __repr__(self):
        return f"<LossFunctionWrapper({getattr(self.fn, '__name__', self.fn)}, kwargs={self._fn_kwargs})>"


def _simple_loss_class(fn, class_name, default_name, doc, module):
    """A Keras 3 loss class over one of gradsmith's loss functions, with no arguments of its own."""

    def __init__(self, reduction="sum_over_batch_size", name=default_name, dtype=None):
        LossFunctionWrapper.__init__(self, fn, name=name, reduction=reduction, dtype=dtype)

    def get_config(self):
        return Loss.get_config(self)

    return type(class_name, (LossFunctionWrapper,), {
        "__init__": __init__, "get_config": get_config, "from_config": classmethod(lambda cls, c: cls(**c)),
        "__doc__": doc, "__module__": module})

"""gradsmith.losses: Keras 3 losses.

Loss objects (``MeanSquaredError()``, ``BinaryCrossentropy(from_logits=True)``,
...) return a Python float from ``loss(y_true, y_pred, sample_weight=None)``
and ``(value, grad)`` from ``loss.value_and_grad(...)``, with ``grad`` the
float32 gradient of the value with respect to ``y_pred``. For the six losses
with a kernel both come from ONE ``ops.loss_and_grad`` call (Keras's
'sum_over_batch_size' value); the other reductions rescale it exactly as
Keras's ``reduce_weighted_values`` reduces the per-sample losses.

Functions (``mean_squared_error(y_true, y_pred)``, ...) return the per-sample
loss array as Keras's do, computed with NumPy in float32.

Keras 3 rules kept here (keras/src/losses/loss.py, losses.py):
 - ``y_true`` and ``y_pred`` are first brought to the same rank by
   ``squeeze_or_expand_to_same_rank`` (labels (N,) against predictions (N, 1)
   become (N, 1));
 - a per-sample loss is the mean (the sum for the categorical cross-entropies)
   over the last axis, so (N, C) predictions give N losses, (N, T, C) give
   N*T, and 1-D predictions give ONE (scalar) loss, as in Keras;
 - reductions: 'sum_over_batch_size' / 'mean' divide the weighted sum by the
   number of weighted values, 'sum' does not divide, 'mean_with_sample_weight'
   divides by the sum of the sample weights, 'none' / None returns the
   weighted per-sample array (``value_and_grad`` then differentiates its sum).

One module per family: ``base`` (Loss, LossFunctionWrapper, the names and the
registry of built-in loss functions), ``reduction`` (the shape rules and
Keras's reductions), ``regression`` (squared / absolute / Huber / log-cosh /
squared-log / percentage errors, cosine similarity), ``probabilistic`` (the
cross-entropies, KL divergence, Poisson), ``hinge`` (hinge, squared and
categorical hinge). This module re-exports them and holds the lookup:
``get`` / ``serialize`` / ``deserialize``.
"""
import inspect

from gradsmith.losses.base import Loss, LossFunctionWrapper
from gradsmith.losses.base import (  # noqa: F401 (gradsmith.metrics and the tests reach these)
    _FUNCTIONS, _KERNELS, _auto_name, _clear_names, _deserialize_function, _function_by_name, _serialize_function,
    _to_snake_case)
from gradsmith.losses.hinge import CategoricalHinge, Hinge, SquaredHinge, categorical_hinge, hinge, squared_hinge
from gradsmith.losses.probabilistic import (KLD, BinaryCrossentropy, CategoricalCrossentropy, KLDivergence, Poisson,
                                            SparseCategoricalCrossentropy, binary_crossentropy,
                                            categorical_crossentropy, kl_divergence, kld, poisson,
                                            sparse_categorical_crossentropy)
from gradsmith.losses.probabilistic import _sigmoid  # noqa: F401
from gradsmith.losses.reduction import EPSILON, squeeze_or_expand_to_same_rank, standardize_reduction  # noqa: F401
from gradsmith.losses.reduction import _f32, _sparse_labels  # noqa: F401
from gradsmith.losses.regression import (MAE, MAPE, MSE, MSLE, CosineSimilarity, Huber, LogCosh, MeanAbsoluteError,
                                         MeanAbsolutePercentageError, MeanSquaredError, MeanSquaredLogarithmicError,
                                         cosine_similarity, huber, log_cosh, mae, mape, mean_absolute_error,
                                         mean_absolute_percentage_error, mean_squared_error,
                                         mean_squared_logarithmic_error, mse, msle)

__all__ = [
    "Loss", "LossFunctionWrapper", "MeanSquaredError", "MeanAbsoluteError", "Huber", "BinaryCrossentropy",
    "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "mean_squared_error", "mean_absolute_error", "huber",
    "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy", "mse", "mae", "MSE", "MAE",
    "Hinge", "SquaredHinge", "LogCosh", "Poisson", "MeanSquaredLogarithmicError", "MeanAbsolutePercentageError",
    "KLDivergence", "CategoricalHinge", "CosineSimilarity", "categorical_hinge", "cosine_similarity", "hinge",
    "squared_hinge", "log_cosh", "poisson", "mean_squared_logarithmic_error",
    "mean_absolute_percentage_error", "kl_divergence", "msle", "mape", "kld", "MSLE", "MAPE", "KLD",
    "get", "serialize", "deserialize", "squeeze_or_expand_to_same_rank",
]

# Which Loss class computes a given function (get() returns instances: the model needs value_and_grad).
_CLASS_OF = {
    mean_squared_error: MeanSquaredError,
    mean_absolute_error: MeanAbsoluteError,
    huber: Huber,
    binary_crossentropy: BinaryCrossentropy,
    categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
    hinge: Hinge,
    squared_hinge: SquaredHinge,
    log_cosh: LogCosh,
    poisson: Poisson,
    mean_squared_logarithmic_error: MeanSquaredLogarithmicError,
    mean_absolute_percentage_error: MeanAbsolutePercentageError,
    kl_divergence: KLDivergence,
    categorical_hinge: CategoricalHinge,
    cosine_similarity: CosineSimilarity,
}

ALL_OBJECTS = {Loss, LossFunctionWrapper, *_CLASS_OF.values(), *_KERNELS}
ALL_OBJECTS_DICT = {obj.__name__: obj for obj in ALL_OBJECTS}
ALL_OBJECTS_DICT.update(_FUNCTIONS)  # the functions' aliases: mse, MSE, bce, BCE, kld, ...


def serialize(loss):
    """A Loss as ``{'module', 'class_name', 'config', 'registered_name'}``; a loss function as
    ``{'class_name': 'function', 'config': name, ...}`` (Keras's format)."""
    if isinstance(loss, Loss):
        cls = type(loss)
        builtin = ALL_OBJECTS_DICT.get(cls.__name__) is cls
        config = loss.get_config()
        if callable(config.get("fn")):
            config["fn"] = _function_by_name(config["fn"])
        return {"module": "keras.losses" if builtin else cls.__module__, "class_name": cls.__name__,
                "config": config, "registered_name": None if builtin else cls.__name__}
    if callable(loss):
        return _serialize_function(loss) if loss in _KERNELS else _function_by_name(loss)
    raise ValueError(f"Could not serialize loss {loss!r}")


def deserialize(name, custom_objects=None):
    """A Loss instance or loss function from ``serialize``'s dict (or a name)."""
    objects = dict(ALL_OBJECTS_DICT)
    objects.update(custom_objects or {})
    if isinstance(name, str):
        if name not in objects:
            raise ValueError(f"Could not interpret loss identifier: {name}")
        return objects[name]
    if not isinstance(name, dict) or "class_name" not in name:
        raise ValueError(f"Could not interpret loss config: {name!r}")
    class_name = name["class_name"]
    if class_name == "function":
        return _deserialize_function(name, custom_objects)
    cls = objects.get(class_name) or objects.get(name.get("registered_name") or "")
    if cls is None or not inspect.isclass(cls):
        raise ValueError(f"Could not interpret loss identifier: unknown class_name {class_name!r}")
    config = dict(name.get("config") or {})
    if isinstance(config.get("fn"), dict):
        config["fn"] = _deserialize_function(config["fn"], custom_objects)
    return cls.from_config(config)


def get(identifier):
    """A Loss instance from a name ('mse', 'binary_crossentropy', 'CategoricalCrossentropy', ...), a
    serialized dict, a Loss class or instance, or a loss function.

    Unlike ``keras.losses.get`` (which returns a function for a function's
    name), a function's name or a function gives a Loss named after it, as
    Keras's ``compile`` wraps it: the model needs ``value_and_grad``.
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = ALL_OBJECTS_DICT.get(identifier)
        if obj is None:
            raise ValueError(f"Could not interpret loss identifier: {identifier!r}; valid names are "
                             f"{', '.join(sorted(ALL_OBJECTS_DICT))}")
    else:
        obj = identifier
    if inspect.isclass(obj) and issubclass(obj, Loss):
        obj = obj()
    if isinstance(obj, Loss):
        return obj
    if callable(obj):
        name = identifier if isinstance(identifier, str) else getattr(obj, "__name__", None)
        cls = _CLASS_OF.get(obj)
        return cls(name=name) if cls is not None else LossFunctionWrapper(obj, name=name)
    raise ValueError(f"Could not interpret loss identifier: {identifier}")

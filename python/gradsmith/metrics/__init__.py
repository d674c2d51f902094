"""gradsmith.metrics: Keras 3 metrics.

Stateful metrics: ``update_state(y_true, y_pred, sample_weight=None)`` adds a
batch, ``result()`` reads the value (a Python float, or a float32 array where
Keras returns a vector: ``F1Score(average=None)``, ``Precision`` with several
thresholds), ``reset_state()`` starts over. State is kept in float32 as
Keras's variables are. Unweighted accuracy counts use ``ops.count_correct``
and unweighted confusion counts at a few thresholds ``ops.binary_confusion``;
the rest (weights, AUC's 200 thresholds, top-k) is NumPy.

Keras 3 definitions kept (keras/src/metrics/*.py):
 - mean metrics (accuracies, errors, cross-entropies) average per-sample
   values: ``total += sum(w * v)``, ``count += sum(w)`` (N without weights; a
   1-D prediction is one sample, as in Keras);
 - confusion metrics count ``y_pred > threshold`` against ``bool(y_true)``;
   AUC uses ``num_thresholds`` thresholds ``[-eps, 1/(n-1), ..., 1 + eps]``,
   buckets the (clipped) predictions as Keras's optimized path does, and sums
   trapezoids ('interpolation'), or interpolates precision for PR;
 - F1Score / FBetaScore: per-class scores (average=None), or micro / macro /
   weighted averages; threshold None takes each row's maximum as positive.

One module per family: ``base`` (Metric, Sum, Mean, MeanMetricWrapper),
``accuracy``, ``regression`` (means of the regression losses, RMSE, cosine
similarity, R2Score), ``probabilistic`` (cross-entropies, KL divergence, Poisson),
``hinge``, ``confusion_metrics`` (true/false positives/negatives, Precision,
Recall, SensitivityAtSpecificity, SpecificityAtSensitivity, PrecisionAtRecall,
RecallAtPrecision, AUC), ``f_score`` (FBetaScore, F1Score), ``correlation`` (PearsonCorrelation,
ConcordanceCorrelation), ``iou`` (IoU, BinaryIoU, MeanIoU, OneHotIoU, OneHotMeanIoU). This module re-exports them
and holds the lookup: ``get`` / ``serialize`` / ``deserialize``, and
``resolve`` (what ``compile(metrics=[...])`` makes of an identifier).
"""
import inspect

from gradsmith import losses
from gradsmith.losses.base import (_KERNELS, _deserialize_function, _function_by_name, _serialize_function,
                                   _to_snake_case)
from gradsmith.metrics.accuracy import (Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
                                        SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy, accuracy,
                                        binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
                                        sparse_top_k_categorical_accuracy, top_k_categorical_accuracy)
from gradsmith.metrics.base import Mean, MeanMetricWrapper, Metric, Sum
from gradsmith.metrics.confusion_metrics import (AUC, FalseNegatives, FalsePositives, Precision, PrecisionAtRecall,
                                                 Recall, RecallAtPrecision, SensitivityAtSpecificity,
                                                 SpecificityAtSensitivity, TrueNegatives, TruePositives)
from gradsmith.metrics.correlation import (ConcordanceCorrelation, PearsonCorrelation, concordance_correlation,
                                           pearson_correlation)
from gradsmith.metrics.f_score import F1Score, FBetaScore
from gradsmith.metrics.iou import BinaryIoU, IoU, MeanIoU, OneHotIoU, OneHotMeanIoU
from gradsmith.metrics.hinge import CategoricalHinge, Hinge, SquaredHinge
from gradsmith.metrics.probabilistic import (BinaryCrossentropy, CategoricalCrossentropy, KLDivergence, Poisson,
                                             SparseCategoricalCrossentropy)
from gradsmith.metrics.regression import (CosineSimilarity, LogCoshError, MeanAbsoluteError,
                                          MeanAbsolutePercentageError, MeanSquaredError, MeanSquaredLogarithmicError,
                                          R2Score, RootMeanSquaredError)
from gradsmith.metrics.regression import cosine_similarity  # noqa: F401 (a module-level function before the split)
# Keras 3 also exports the per-sample loss functions as keras.metrics.<name> (for MeanMetricWrapper, or
# compile(metrics=[fn])); the same functions as gradsmith.losses'. After the submodule imports: the function
# ``hinge`` takes the place of the submodule name, as in gradsmith.losses.
from gradsmith.losses import (binary_crossentropy, categorical_crossentropy, categorical_hinge, hinge,  # noqa: E402
                              huber, kl_divergence, log_cosh, mean_absolute_error, mean_absolute_percentage_error,
                              mean_squared_error, mean_squared_logarithmic_error, poisson,
                              sparse_categorical_crossentropy, squared_hinge)

__all__ = [
    "Metric", "Mean", "Sum", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy", "CategoricalAccuracy",
    "SparseCategoricalAccuracy", "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "Precision", "Recall",
    "AUC", "TruePositives", "FalsePositives", "TrueNegatives", "FalseNegatives", "SensitivityAtSpecificity",
    "SpecificityAtSensitivity", "PrecisionAtRecall", "RecallAtPrecision", "R2Score", "PearsonCorrelation",
    "ConcordanceCorrelation", "IoU", "BinaryIoU", "MeanIoU", "OneHotIoU", "OneHotMeanIoU", "F1Score", "FBetaScore",
    "MeanSquaredError", "MeanAbsoluteError", "RootMeanSquaredError", "BinaryCrossentropy",
    "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "accuracy", "binary_accuracy",
    "categorical_accuracy", "sparse_categorical_accuracy", "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy", "pearson_correlation", "concordance_correlation", "binary_crossentropy",
    "categorical_crossentropy", "sparse_categorical_crossentropy", "categorical_hinge", "hinge", "squared_hinge",
    "huber", "kl_divergence", "log_cosh", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_error", "mean_squared_logarithmic_error", "poisson", "get", "resolve", "serialize",
    "deserialize",
]

ALL_OBJECTS = {Metric, Mean, Sum, MeanMetricWrapper, MeanSquaredError, RootMeanSquaredError, MeanAbsoluteError,
               AUC, FalseNegatives, FalsePositives, Precision, Recall, TrueNegatives, TruePositives,
               BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy, Accuracy, BinaryAccuracy,
               CategoricalAccuracy, SparseCategoricalAccuracy, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy,
               F1Score, FBetaScore, MeanSquaredLogarithmicError, MeanAbsolutePercentageError, LogCoshError, Hinge,
               SquaredHinge, Poisson, KLDivergence, CategoricalHinge, CosineSimilarity, SensitivityAtSpecificity,
               SpecificityAtSensitivity, PrecisionAtRecall, RecallAtPrecision, R2Score, PearsonCorrelation,
               ConcordanceCorrelation, IoU, BinaryIoU, MeanIoU, OneHotIoU, OneHotMeanIoU}
ALL_OBJECTS_DICT = {cls.__name__: cls for cls in ALL_OBJECTS}
ALL_OBJECTS_DICT.update({_to_snake_case(cls.__name__): cls for cls in ALL_OBJECTS})
ALL_OBJECTS_DICT.update({"bce": BinaryCrossentropy, "BCE": BinaryCrossentropy, "mse": MeanSquaredError,
                         "MSE": MeanSquaredError, "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
                         "mape": MeanAbsolutePercentageError, "MAPE": MeanAbsolutePercentageError,
                         "msle": MeanSquaredLogarithmicError, "MSLE": MeanSquaredLogarithmicError})


def serialize(metric):
    """``{'module': 'keras.metrics', 'class_name', 'config', 'registered_name'}``."""
    if isinstance(metric, Metric):
        cls = type(metric)
        builtin = ALL_OBJECTS_DICT.get(cls.__name__) is cls
        config = metric.get_config()
        if callable(config.get("fn")):
            config["fn"] = _function_by_name(config["fn"])
        return {"module": "keras.metrics" if builtin else cls.__module__, "class_name": cls.__name__,
                "config": config, "registered_name": None if builtin else cls.__name__}
    if callable(metric):
        return _serialize_function(metric) if metric in _KERNELS else _function_by_name(metric)
    raise ValueError(f"Could not serialize metric {metric!r}")


def deserialize(config, custom_objects=None):
    """A metric from ``serialize``'s dict (or a name)."""
    objects = dict(ALL_OBJECTS_DICT)
    objects.update(custom_objects or {})
    if isinstance(config, str):
        if config not in objects:
            raise ValueError(f"Could not interpret metric identifier: {config}")
        return objects[config]
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Could not interpret metric config: {config!r}")
    if config["class_name"] == "function":
        return _deserialize_function(config, custom_objects)
    cls = objects.get(config["class_name"]) or objects.get(config.get("registered_name") or "")
    if cls is None or not inspect.isclass(cls):
        raise ValueError(f"Could not interpret metric identifier: unknown class_name {config['class_name']!r}")
    inner = dict(config.get("config") or {})
    if isinstance(inner.get("fn"), dict):
        inner["fn"] = _deserialize_function(inner["fn"], custom_objects)
    return cls.from_config(inner)


def get(identifier):
    """A metric from a name ('accuracy', 'AUC', 'auc', 'mse', ...: an instance of the class), a
    serialized dict, a class, an instance, or a function (returned as is), as ``keras.metrics.get``."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = ALL_OBJECTS_DICT.get(identifier)
        if obj is None:
            raise ValueError(f"Could not interpret metric identifier: {identifier!r}; valid names are "
                             f"{', '.join(sorted(ALL_OBJECTS_DICT))}")
    else:
        obj = identifier
    if callable(obj):
        if inspect.isclass(obj):
            obj = obj()
        return obj
    raise ValueError(f"Could not interpret metric identifier: {identifier}")


def _loss_kind(loss):
    """'binary', 'sparse', 'categorical' or None for a loss given to compile."""
    if isinstance(loss, str):
        try:
            loss = losses.get(loss)
        except ValueError:
            return None
    if isinstance(loss, losses.LossFunctionWrapper):
        loss = loss.fn
    return {losses.binary_crossentropy: "binary", losses.sparse_categorical_crossentropy: "sparse",
            losses.categorical_crossentropy: "categorical"}.get(loss)


def _accuracy_class(loss, output_shape, y_true_shape):
    out = None if output_shape is None else tuple(output_shape)
    units = out[-1] if out else None
    if out is not None and y_true_shape is not None:
        # Keras 3 (compile_utils.is_binary_or_sparse_categorical) on the actual shapes
        t = tuple(y_true_shape)
        if units == 1:
            return BinaryAccuracy
        t_last = t[-1] if t else None
        if len(t) < len(out) or (t_last == 1 and units is not None and units > 1):
            return SparseCategoricalAccuracy
        return CategoricalAccuracy
    kind = _loss_kind(loss)
    if units == 1:
        return BinaryAccuracy
    if kind == "sparse":
        return SparseCategoricalAccuracy
    if units is None and kind == "binary":
        return BinaryAccuracy
    return CategoricalAccuracy


def resolve(identifier, loss=None, output_shape=None, y_true_shape=None):
    """The metric object ``model.compile(metrics=[identifier])`` uses (Keras 3 ``get_metric``).

    'accuracy' / 'acc' become BinaryAccuracy when the model has one output
    unit, SparseCategoricalAccuracy when the labels are sparse, otherwise
    CategoricalAccuracy. Keras decides from the shapes of y_true and y_pred;
    pass ``y_true_shape`` for that exact rule, otherwise the loss stands for
    the labels' form (a sparse categorical loss means sparse labels; with no
    output shape, binary cross-entropy means one unit). A string identifier
    also names the metric (history keys use the string given); a function is
    wrapped in MeanMetricWrapper named after it.
    """
    if identifier is None:
        return None
    if isinstance(identifier, str) and identifier.lower() in ("accuracy", "acc"):
        return _accuracy_class(loss, output_shape, y_true_shape)(name=identifier)
    obj = get(identifier)
    if isinstance(identifier, str):
        name = identifier
    elif isinstance(obj, Metric):
        name = obj.name
    else:
        name = getattr(obj, "name", None) or getattr(obj, "__name__", None) or type(obj).__name__
    if not isinstance(obj, Metric):
        obj = MeanMetricWrapper(obj)
    obj.name = name
    return obj

"""Magnitude pruning with TensorFlow Model Optimization's names and semantics (``tfmot.sparsity.keras``):
``prune_low_magnitude``, the schedules ``ConstantSparsity`` and ``PolynomialDecay`` (apart from the learning-
rate schedules of the same name), the ``UpdatePruningStep`` callback and ``strip_pruning``.

    model = pruning.prune_low_magnitude(model, pruning_schedule=pruning.PolynomialDecay(0.0, 0.8, 0, 1000))
    model.compile(...)
    model.fit(x, y, epochs=5, callbacks=[pruning.UpdatePruningStep()])
    model = pruning.strip_pruning(model)

A pruned layer's kernels (``kernel``, ``recurrent_kernel``, ``embeddings``, the separable convolution's two)
each carry a mask. ``UpdatePruningStep`` counts the training steps; at each step the schedule names (``begin_step``,
then every ``frequency`` steps up to ``end_step``) it recomputes the masks from the weights' magnitudes, keeping
the ``round(n * (1 - sparsity))`` largest (ties at the threshold kept, as TFMOT's ``>=``), and zeroes the rest.
Between those steps the masks live inside the fused optimizer update: the kernel that applies Adam (or any
optimizer) writes 0 to every masked weight in the same pass (``OptimizerArgs.keep``, cpp/math/optimizer.h), so
a pruned weight stays exactly zero without a second pass over memory, in the compiled step (CPU and CUDA) and
layer by layer alike.
"""
import numpy as np

from gradsmith import callbacks as callbacks_mod

__all__ = ["ConstantSparsity", "PolynomialDecay", "PruningSchedule", "UpdatePruningStep", "prune_low_magnitude",
           "strip_pruning"]

# The weights of a layer that pruning masks (TFMOT's prunable weights of the built-in layers).
_PRUNABLE = ("kernel", "recurrent_kernel", "embeddings", "depthwise_kernel", "pointwise_kernel")


# --------------------------------------------------------------------------- schedules
class PruningSchedule:
    """``schedule(step)`` -> (whether masks are recomputed at this step, the sparsity to reach)."""

    def __init__(self, begin_step, end_step, frequency):
        for name, v in (("begin_step", begin_step), ("end_step", end_step), ("frequency", frequency)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"{type(self).__name__}: {name} must be an integer, got {v!r}")
        if begin_step < 0:
            raise ValueError(f"{type(self).__name__}: begin_step must be >= 0, got {begin_step}")
        if end_step != -1 and end_step < begin_step:
            raise ValueError(f"{type(self).__name__}: end_step must be -1 or >= begin_step, got {end_step}")
        if frequency < 1:
            raise ValueError(f"{type(self).__name__}: frequency must be >= 1, got {frequency}")
        self.begin_step, self.end_step, self.frequency = int(begin_step), int(end_step), int(frequency)

    def _should_prune(self, step):
        in_range = step >= self.begin_step and (self.end_step == -1 or step <= self.end_step)
        return in_range and (step - self.begin_step) % self.frequency == 0

    @staticmethod
    def _sparsity(value, what):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or \
                not 0.0 <= value < 1.0:
            raise ValueError(f"{what} must be in [0, 1), got {value!r}")
        return float(value)

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class ConstantSparsity(PruningSchedule):
    """``target_sparsity`` from ``begin_step`` on, masks recomputed every ``frequency`` steps."""

    def __init__(self, target_sparsity, begin_step, end_step=-1, frequency=100):
        super().__init__(begin_step, end_step, frequency)
        self.target_sparsity = self._sparsity(target_sparsity, "ConstantSparsity: target_sparsity")

    def __call__(self, step):
        return self._should_prune(step), self.target_sparsity

    def get_config(self):
        return {"target_sparsity": self.target_sparsity, "begin_step": self.begin_step, "end_step": self.end_step,
                "frequency": self.frequency}


class PolynomialDecay(PruningSchedule):
    """Sparsity from ``initial_sparsity`` to ``final_sparsity`` between ``begin_step`` and ``end_step``:
    ``final + (initial - final) * (1 - p) ** power`` with ``p`` the fraction of the way, clipped to [0, 1]."""

    def __init__(self, initial_sparsity, final_sparsity, begin_step, end_step, power=3, frequency=100):
        super().__init__(begin_step, end_step, frequency)
        if end_step == -1:
            raise ValueError("PolynomialDecay: end_step must be set (>= begin_step)")
        self.initial_sparsity = self._sparsity(initial_sparsity, "PolynomialDecay: initial_sparsity")
        self.final_sparsity = self._sparsity(final_sparsity, "PolynomialDecay: final_sparsity")
        if isinstance(power, bool) or not isinstance(power, (int, float)):
            raise ValueError(f"PolynomialDecay: power must be a number, got {power!r}")
        self.power = power

    def __call__(self, step):
        span = max(self.end_step - self.begin_step, 1)
        p = min(1.0, max(0.0, (step - self.begin_step) / span))
        sparsity = (self.initial_sparsity - self.final_sparsity) * (1.0 - p) ** self.power + self.final_sparsity
        return self._should_prune(step), float(sparsity)

    def get_config(self):
        return {"initial_sparsity": self.initial_sparsity, "final_sparsity": self.final_sparsity,
                "begin_step": self.begin_step, "end_step": self.end_step, "power": self.power,
                "frequency": self.frequency}


# --------------------------------------------------------------------------- masks
def magnitude_mask(values, sparsity):
    """TFMOT's mask: 1 for the ``round(n * (1 - sparsity))`` largest |values| (and any tied with the last of
    them), 0 for the rest."""
    flat = np.abs(np.asarray(values, np.float32)).ravel()
    k = int(round(flat.size * (1.0 - sparsity)))
    if k <= 0:
        return np.zeros(np.shape(values), np.float32)
    threshold = np.partition(flat, flat.size - k)[flat.size - k]
    return (np.abs(values) >= threshold).astype(np.float32)


def _prunable_weights(layer):
    return [w for w in layer._weights if w.name.rsplit("/", 1)[-1] in _PRUNABLE and w.grad is not None]


def _mark(layer, schedule):
    """Prune ``layer`` by ``schedule``: its masks (all ones until the first update) are made once it is built."""
    if layer.built and not _prunable_weights(layer):
        raise ValueError(f"prune_low_magnitude: layer {layer.name!r} ({type(layer).__name__}) has no weights to "
                         f"prune (kernels named {', '.join(_PRUNABLE)})")
    layer._pruning_schedule = schedule


def _ensure_masks(layer):
    weights = _prunable_weights(layer)
    if not weights:
        raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) is pruned but has no weights to prune "
                         f"(kernels named {', '.join(_PRUNABLE)})")
    for w in weights:
        if getattr(w, "prune_mask", None) is None or w.prune_mask.shape != w.shape:
            w.prune_mask = np.ones(w.shape, np.float32)
    return weights


def _pruned_layers(model):
    walk = model._walk() if hasattr(model, "_walk") else [model]
    return [layer for layer in walk if getattr(layer, "_pruning_schedule", None) is not None]


def prune_low_magnitude(to_prune, pruning_schedule=None, block_size=(1, 1), block_pooling_type="AVG",
                        pruning_policy=None, sparsity_m_by_n=None, **kwargs):
    """A copy of the model (weights copied) whose prunable layers are pruned by ``pruning_schedule`` (default
    ``ConstantSparsity(0.5, 0)``), or, given a layer (before it is built into a model), that layer marked.
    Compile the returned model, and train it with ``UpdatePruningStep``."""
    if kwargs:
        raise TypeError(f"prune_low_magnitude: unexpected argument(s) {', '.join(sorted(kwargs))}")
    if tuple(block_size) != (1, 1) or sparsity_m_by_n is not None or pruning_policy is not None:
        raise NotImplementedError("prune_low_magnitude: block sparsity, m-by-n sparsity and pruning policies are not "
                                  "supported")
    if block_pooling_type not in ("AVG", "MAX"):
        raise ValueError(f"prune_low_magnitude: block_pooling_type must be 'AVG' or 'MAX', got {block_pooling_type!r}")
    schedule = pruning_schedule if pruning_schedule is not None else ConstantSparsity(0.5, 0)
    if not isinstance(schedule, PruningSchedule):
        raise TypeError(f"prune_low_magnitude: pruning_schedule must be a gradsmith.pruning schedule, got "
                        f"{type(schedule).__name__}")
    if getattr(to_prune, "_is_model", False):
        to_prune._require_built("prune_low_magnitude")
        model = type(to_prune).from_config(to_prune.get_config())
        model.set_weights(to_prune.get_weights())
        marked = 0
        for layer in model._walk():
            if getattr(layer, "_is_model", False) or not _prunable_weights(layer):
                continue
            _mark(layer, schedule)
            _ensure_masks(layer)
            marked += 1
        if not marked:
            raise ValueError(f"prune_low_magnitude: model {to_prune.name!r} has no layer with weights to prune")
        return model
    _mark(to_prune, schedule)  # a layer: marked, to be built into a model
    return to_prune


def strip_pruning(model):
    """The model without its pruning (a copy, its pruned weights zero): a plain model to save and serve."""
    if not getattr(model, "_is_model", False):
        for w in model._weights:
            w.__dict__.pop("prune_mask", None)
        model.__dict__.pop("_pruning_schedule", None)
        return model
    model._require_built("strip_pruning")
    plain = type(model).from_config(model.get_config())
    plain.set_weights(model.get_weights())
    return plain


def keep_masks(weights):
    """The pruning masks of ``weights`` (None for an unpruned one), or None when none is pruned."""
    masks = [getattr(w, "prune_mask", None) for w in weights]
    return masks if any(m is not None for m in masks) else None


def keep_array(model, params):
    """The masks laid out as the model's flat parameters (1 where nothing is pruned), or None."""
    weights = [w for w in model._all_weights() if getattr(w, "prune_mask", None) is not None]
    if not weights:
        return None
    keep = np.ones(params.size, np.float32)
    base = params.__array_interface__["data"][0]
    for w in weights:
        start = (w.value.__array_interface__["data"][0] - base) // 4
        keep[start:start + w.size] = w.prune_mask.ravel()
    return keep


def update_masks(model, step):
    """Recompute the masks of the layers whose schedule prunes at ``step`` and zero what they mask; True
    when any changed (the compiled step then takes the new masks)."""
    changed = False
    for layer in _pruned_layers(model):
        should, sparsity = layer._pruning_schedule(step)
        if not should:
            continue
        for w in _ensure_masks(layer):
            mask = magnitude_mask(w.value, sparsity)
            w.prune_mask = mask
            w.value[...] = w.value * mask
            changed = True
    if changed:
        model._refresh_pruning()
    return changed


class UpdatePruningStep(callbacks_mod.Callback):
    """Counts the training steps (from the optimizer's iterations) and updates the pruned layers' masks at the
    steps their schedules name, before each batch (TFMOT's callback)."""

    def on_train_begin(self, logs=None):
        layers = _pruned_layers(self.model)
        if not layers:
            raise ValueError("UpdatePruningStep: the model has no pruned layer (use pruning.prune_low_magnitude)")
        for layer in layers:
            _ensure_masks(layer)
        self.model._refresh_pruning()
        self.step = int(self.model.optimizer.iterations)

    def on_train_batch_begin(self, batch, logs=None):
        update_masks(self.model, self.step)
        self.step += 1

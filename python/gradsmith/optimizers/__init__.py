"""gradsmith.optimizers: Keras 3 optimizers over the fused ``ops.*_step`` kernels.

The model hands ``apply(grads, variables)`` lists of float32 views (into its
flat parameter and gradient buffers); each optimizer updates all of them with
ONE fused kernel call per step (``ops.sgd_step``, ``adam_step``,
``adamw_step``, ``rmsprop_step``, ``adagrad_step``), which also clips the
gradients (clipnorm / clipvalue / global_clipnorm) and applies Keras's weight
decay ``w -= w * weight_decay * lr``. Optimizer state lives in one flat float32
buffer per slot kind (``momentum``, ``velocity``, ...), carved into views
shaped like the variables.

Keras 3 semantics (keras/src/optimizers/base_optimizer.py):
 - one step = clip gradients, weight decay, update, then ``iterations += 1``;
 - with a ``LearningRateSchedule`` the step uses ``schedule(iterations)``,
   evaluated before the increment; ``optimizer.learning_rate`` reads the
   current value (a float), and a float learning rate is stored in float32 as
   Keras's variable is (``Adam().learning_rate == float(np.float32(0.001))``);
 - Adam's bias corrections use ``t = iterations + 1``;
 - at most one of clipnorm, clipvalue, global_clipnorm may be set.
"""
import numbers
import re
import warnings

import numpy as np

from gradsmith import ops
from gradsmith.optimizers import schedules
from gradsmith.optimizers.schedules import LearningRateSchedule

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "Lion", "schedules", "get", "serialize",
           "deserialize"]


class _Value(float):
    """A float that also answers ``.numpy()`` (Keras returns a tensor/variable there)."""

    def numpy(self):
        return np.float32(self)


class _Count(int):
    """An int that also answers ``.numpy()`` (Keras's ``iterations`` is an int variable)."""

    def numpy(self):
        return np.int64(self)


def _is_number(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


class Optimizer:
    """Keras 3 optimizer base.

    Subclasses with a fused kernel implement ``_slot_kinds()`` (the state
    buffers they use: ``[(name, initial_value)]``) and ``_fused_step(params,
    grads, slots, lr, weight_decay, clip)``. A user subclass may instead
    implement Keras's per-variable ``build`` / ``update_step(gradient,
    variable, learning_rate)`` with NumPy; ``apply`` then clips and decays in
    NumPy as Keras does and calls ``update_step`` for each variable.
    """

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        if kwargs.pop("decay", None) is not None:
            warnings.warn("Argument `decay` is no longer supported and will be ignored.")
        if "lr" in kwargs:
            raise ValueError("Argument `lr` is no longer supported. Use `learning_rate` instead.")
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        if name is None:
            from gradsmith.losses import _auto_name
            name = _auto_name(self.__class__.__name__)
        self.name = name
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.global_clipnorm = global_clipnorm
        self.clipvalue = clipvalue
        self.use_ema = use_ema
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        if gradient_accumulation_steps:
            if not gradient_accumulation_steps >= 2:
                raise ValueError("`gradient_accumulation_steps` must be an integer >= 2. Received: "
                                 f"gradient_accumulation_steps={gradient_accumulation_steps}")
        if use_ema:
            if ema_momentum > 1 or ema_momentum < 0:
                raise ValueError(f"`ema_momentum` must be in the range [0, 1]. Received: ema_momentum={ema_momentum}")
            if ema_overwrite_frequency and (not isinstance(ema_overwrite_frequency, int)
                                            or ema_overwrite_frequency < 1):
                raise ValueError("`ema_overwrite_frequency` must be an integer >= 1 or None. Received: "
                                 f"ema_overwrite_frequency={ema_overwrite_frequency}")
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: "
                             f"clipnorm={clipnorm}, clipvalue={clipvalue}, global_clipnorm={global_clipnorm}")
        if isinstance(learning_rate, LearningRateSchedule) or callable(learning_rate):
            self._learning_rate = learning_rate
        else:
            if not isinstance(learning_rate, float):
                raise ValueError(
                    "Argument `learning_rate` should be float, or an instance of LearningRateSchedule, or a callable "
                    "(that takes in the current iteration value and returns the corresponding learning rate value). "
                    f"Received instead: learning_rate={learning_rate}")
            self._learning_rate = np.float32(learning_rate)  # Keras keeps it in a float32 variable
        self._iterations = 0
        self.built = False
        self._trainable_variables = []
        self._shapes = []
        self._slots = {}  # kind -> (flat float32 buffer, [views])
        self._pending_state = None
        self._exclude_ids = set()
        self._exclude_names = None

    # ------------------------------------------------------------------ properties
    @property
    def iterations(self):
        """Steps applied so far (``steps // gradient_accumulation_steps`` with accumulation, as Keras)."""
        if self.gradient_accumulation_steps:
            return _Count(self._iterations // self.gradient_accumulation_steps)
        return _Count(self._iterations)

    @iterations.setter
    def iterations(self, value):
        self._iterations = int(value)

    @property
    def learning_rate(self):
        """The current learning rate as a float (a schedule is evaluated at ``iterations``)."""
        return self._current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        if isinstance(learning_rate, LearningRateSchedule) or callable(learning_rate):
            self._learning_rate = learning_rate
            return
        if isinstance(self._learning_rate, LearningRateSchedule):
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` object as its `learning_rate` constructor "
                "argument, hence its learning rate is not settable. If you need the learning rate to be settable, "
                "you should instantiate the optimizer with a float `learning_rate` argument.")
        if isinstance(learning_rate, np.ndarray):
            learning_rate = learning_rate.item() if learning_rate.ndim == 0 else learning_rate
        if not _is_number(learning_rate):
            raise TypeError(f"learning_rate: expected a number, got {type(learning_rate).__name__}")
        self._learning_rate = np.float32(learning_rate)

    def _current_learning_rate(self):
        """Keras ``_get_current_learning_rate``: schedule(raw iterations), callable(), or the float."""
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            return _Value(float(lr(self._iterations)))
        if callable(lr):
            return _Value(float(lr()))
        return _Value(float(lr))

    @property
    def variables(self):
        """Keras's order: iterations, learning rate (when a float), then the state slots in the order Keras
        creates them (``_slot_groups``)."""
        out = [np.array(self._iterations, dtype=np.int64)]
        if not (isinstance(self._learning_rate, LearningRateSchedule) or callable(self._learning_rate)):
            out.append(np.array(self._learning_rate, dtype=np.float32))
        if self._slots:  # built
            for group in self._slot_groups():
                for i in range(len(self._shapes)):
                    out.extend(self._slots[kind][1][i] for kind in group)
        return out

    # Slot kinds Keras makes with one add_optimizer_variables call, which interleaves them per variable.
    _interleaved_slots = ()

    def _slot_groups(self):
        """The state slots in Keras's creation order: a list of groups; the slots of one group are
        interleaved per variable (Adam: momentum, velocity of variable 0, then of variable 1, ...), the groups
        follow one another. Keras creates the EMA averages, then the gradient accumulators (in the base
        optimizer's build), then the optimizer's own slots. Files (saving.py) and ``variables`` use it."""
        kinds = [k for k, _ in self._all_slot_kinds()]
        base = [k for k in ("average", "gradient_accumulator") if k in kinds]
        own = [k for k in kinds if k not in base]
        groups = [(k,) for k in base]
        pair = list(self._interleaved_slots)
        if pair and own[:len(pair)] == pair:
            groups.append(tuple(pair))
            own = own[len(pair):]
        return groups + [(k,) for k in own]

    # ------------------------------------------------------------------ state
    def _slot_kinds(self):
        """[(slot name, initial value)] this configuration needs (fused subclasses override)."""
        return []

    def _all_slot_kinds(self):
        kinds = list(self._slot_kinds())
        if self.use_ema:
            kinds.append(("average", 0.0))
        if self.gradient_accumulation_steps:
            kinds.append(("gradient_accumulator", 0.0))
        return kinds

    def build(self, variables):
        """Allocate the state: one flat float32 buffer per slot kind, carved into views shaped like
        ``variables``."""
        if self.built:
            return
        variables = list(variables)
        self._shapes = [tuple(np.shape(v)) for v in variables]
        sizes = [int(np.prod(s, dtype=np.int64)) for s in self._shapes]
        offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
        total = int(offsets[-1])
        for kind, init in self._all_slot_kinds():
            flat = np.zeros(total, dtype=np.float32)
            views = [flat[offsets[i]:offsets[i + 1]].reshape(shape) for i, shape in enumerate(self._shapes)]
            if init != 0.0:
                flat.fill(init)
            self._slots[kind] = (flat, views)
        self._trainable_variables = variables
        self.built = True
        if self._pending_state is not None:
            state, self._pending_state = self._pending_state, None
            self.set_state(state)

    def get_state(self):
        """The optimizer's state as a dict of NumPy arrays: ``iterations``, ``learning_rate`` (a float
        learning rate only) and one flat float32 array per slot kind (``slot_<kind>``)."""
        state = {"iterations": np.array(self._iterations, dtype=np.int64)}
        if not (isinstance(self._learning_rate, LearningRateSchedule) or callable(self._learning_rate)):
            state["learning_rate"] = np.array(self._learning_rate, dtype=np.float32)
        for kind, (flat, _) in self._slots.items():
            state["slot_" + kind] = flat.copy()
        return state

    def set_state(self, state):
        """Restore ``get_state()``'s dict. Before ``build`` the state is kept and applied by ``build``."""
        state = dict(state)
        if not self.built:
            self._pending_state = state
            if "iterations" in state:
                self._iterations = int(np.asarray(state["iterations"]))
            return
        for key, value in state.items():
            if key.startswith("slot_") and key[5:] not in self._slots:
                raise ValueError(f"set_state: this optimizer has no state slot {key[5:]!r} "
                                 f"(it has {sorted(self._slots)})")
        for kind, (flat, _) in self._slots.items():
            if "slot_" + kind not in state:
                continue
            value = np.asarray(state["slot_" + kind], dtype=np.float32).reshape(-1)
            if value.shape != flat.shape:
                raise ValueError(f"set_state: slot {kind!r} has {flat.size} values, the saved one {value.size}")
            flat[...] = value
        if "iterations" in state:
            self._iterations = int(np.asarray(state["iterations"]))
        if "learning_rate" in state and not (isinstance(self._learning_rate, LearningRateSchedule)
                                             or callable(self._learning_rate)):
            self._learning_rate = np.float32(np.asarray(state["learning_rate"]))

    # ------------------------------------------------------------------ stepping
    def apply_gradients(self, grads_and_vars):
        """Keras: ``apply(*zip(*grads_and_vars))``; returns ``iterations``."""
        grads, trainable_variables = zip(*grads_and_vars)
        self.apply(grads, trainable_variables)
        return self.iterations

    def apply(self, grads, trainable_variables=None, keep=None):
        """One step: clip, weight decay and update every variable in ONE fused kernel call, then
        ``iterations += 1``. ``grads`` and ``trainable_variables`` are lists of float32 arrays
        (the variables are updated in place); ``trainable_variables`` may be omitted once built. ``keep``
        (gradsmith.pruning): one mask (or None) per variable; the update leaves each masked weight at 0."""
        self._keep = None if keep is None else list(keep)
        grads = list(grads)
        if len(grads) == 0:
            return
        if trainable_variables is None:
            if not self.built:
                raise ValueError("When passing `grads` without `variables`, the optimizer must already be built on "
                                 "a list of variables. Call `optimizer.build(trainable_variables)` first. ")
            if len(grads) != len(self._trainable_variables):
                raise ValueError("When passing `grads` as a list of gradient tensors, the gradients must match "
                                 f"`optimizer.variables` one-to-one. Received a list of {len(grads)} gradients, but "
                                 f"the optimizer is tracking {len(self._trainable_variables)} trainable variables.")
            variables = self._trainable_variables
            slot_index = list(range(len(variables)))
        else:
            variables = list(trainable_variables)
            if not self.built:
                self.build(variables)
            slot_index = self._check_variables_are_known(variables)
            if len(variables) == len(self._shapes):
                self._trainable_variables = variables
        if len(grads) != len(variables):
            raise ValueError(f"apply: got {len(grads)} gradients for {len(variables)} variables")

        # Keras filters out missing (None) gradients, with a warning.
        index = [i for i, g in enumerate(grads) if g is not None]
        if not index:
            raise ValueError("No gradients provided for any variable.")
        if len(index) < len(grads):
            missing = [i for i, g in enumerate(grads) if g is None]
            warnings.warn(f"Gradients do not exist for variables {missing} when minimizing the loss. If using "
                          "`model.compile()`, did you forget to provide a `loss` argument?")
        if self.loss_scale_factor is not None:  # Keras: unscale the gradients
            grads = [None if g is None else np.asarray(g, dtype=np.float32) / np.float32(self.loss_scale_factor)
                     for g in grads]

        if self.gradient_accumulation_steps:
            steps = self.gradient_accumulation_steps
            acc = self._slots["gradient_accumulator"][1]
            if (self._iterations + 1) % steps == 0:
                # Keras: g = (g + acc) / steps, then clip, decay and update; reset the accumulators
                step_grads = [None if grads[i] is None else
                              (np.asarray(grads[i], dtype=np.float32) + acc[slot_index[i]]) / np.float32(steps)
                              for i in range(len(grads))]
                self._update(index, step_grads, variables, slot_index)
                self._slots["gradient_accumulator"][0].fill(0.0)
            else:
                for i in index:  # Keras: acc += g
                    acc[slot_index[i]] += np.asarray(grads[i], dtype=np.float32)
        else:
            self._update(index, grads, variables, slot_index)

        if self.use_ema:
            # Keras: momentum = ema_momentum (0 on the first step); average = momentum * average + (1 - momentum) * w
            momentum = np.float32(self.ema_momentum if self.iterations != 0 else 0.0)
            averages = self._slots["average"][1]
            for average, var in zip(averages, self._trainable_variables):
                average[...] = momentum * average + (np.float32(1.0) - momentum) * var
            if self.ema_overwrite_frequency and (self.iterations + 1) % self.ema_overwrite_frequency == 0:
                self._overwrite_model_variables_with_average_value(self._trainable_variables)
        self._iterations += 1

    def _check_variables_are_known(self, variables):
        """The built variables' positions of ``variables``: all of them in order (same shapes), or, as
        Keras allows, any subset of the arrays the optimizer was built with (matched by identity or
        memory)."""
        shapes = [tuple(np.shape(v)) for v in variables]
        if shapes == self._shapes:
            return list(range(len(variables)))
        positions = []
        for v in variables:
            try:
                positions.append(self._get_variable_index(v))
            except KeyError:
                raise ValueError(f"Unknown variable of shape {tuple(np.shape(v))}. This optimizer can only be called "
                                 "for the variables it was originally built with. When working with a new set of "
                                 "variables, you should recreate a new optimizer instance.") from None
        return positions

    def _clip(self):
        """The clip option for the kernels, as Keras applies it: clipnorm, else global_clipnorm, else
        clipvalue, each only when > 0."""
        if self.clipnorm and self.clipnorm > 0:
            return {"clipnorm": self.clipnorm}
        if self.global_clipnorm and self.global_clipnorm > 0:
            return {"global_clipnorm": self.global_clipnorm}
        if self.clipvalue and self.clipvalue > 0:
            return {"clipvalue": self.clipvalue}
        return {}

    def _use_weight_decay(self, i, variable):
        if id(variable) in self._exclude_ids:
            return False
        if self._exclude_names is not None:
            name = getattr(variable, "path", None) or getattr(variable, "name", None)
            if isinstance(name, str) and re.search(self._exclude_names, name) is not None:
                return False
        return True

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Keras: exclude variables (the objects given, or those whose ``name`` matches one of
        ``var_names``) from weight decay. Must be called before the optimizer is built."""
        if self.built:
            raise ValueError("`exclude_from_weight_decay()` can only be configued before the optimizer is built.")
        self._exclude_ids = set(id(v) for v in var_list) if var_list else set()
        self._exclude_names = "|".join(set(var_names)) if var_names else None

    def _update(self, index, grads, variables, slot_index):
        """Clip, decay and update the variables at ``index`` (their state at ``slot_index[i]``), as Keras's
        ``_backend_apply_gradients``."""
        lr = float(self._current_learning_rate())
        params = [variables[i] for i in index]
        gs = [grads[i] for i in index]
        weight_decay = self.weight_decay
        if weight_decay is not None and (self._exclude_ids or self._exclude_names is not None):
            # Some variables are excluded: decay the others here (Keras: w -= w * wd * lr, which touches no
            # gradient, so doing it before the kernel's clipping is the same), and none in the kernel.
            wd, lr32 = np.float32(weight_decay), np.float32(lr)
            for i, p in zip(index, params):
                if self._use_weight_decay(i, variables[i]):
                    p -= p * wd * lr32
            weight_decay = None
        keep = getattr(self, "_keep", None)
        masks = None if keep is None else [keep[i] for i in index]
        if type(self)._fused_step is not Optimizer._fused_step:
            slots = {kind: [views[slot_index[i]] for i in index] for kind, (_, views) in self._slots.items()}
            with ops.pruning_masks(masks):  # applied inside the fused kernel's pass
                self._fused_step(params, gs, slots, lr, weight_decay, self._clip())
        else:
            self._numpy_step(index, params, gs, lr, weight_decay)
            for p, m in zip(params, masks or ()):  # a NumPy optimizer: its own pass
                if m is not None:
                    p[...] = np.where(m != 0, p, np.float32(0))

    def _fused_step(self, params, grads, slots, lr, weight_decay, clip):
        raise NotImplementedError

    # ------------------------------------------------------------------ the per-variable (NumPy) path
    def _numpy_step(self, index, params, grads, lr, weight_decay):
        grads = [np.array(g, dtype=np.float32) for g in grads]
        clip = self._clip()
        if "clipnorm" in clip:  # Keras: g * clipnorm / max(||g||, clipnorm), per variable
            c = np.float32(clip["clipnorm"])
            grads = [g * c / np.maximum(np.float32(np.sqrt(np.sum(g * g))), c) for g in grads]
        elif "global_clipnorm" in clip:  # Keras: g * c * min(1 / norm, 1 / c) + (norm - norm)
            c = np.float32(clip["global_clipnorm"])
            norm = np.float32(np.sqrt(np.sum([np.sum(g.astype(np.float64) ** 2) for g in grads])))
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = c * np.minimum(np.float32(1.0) / norm, np.float32(1.0) / c) + (norm - norm)
            grads = [g * scale for g in grads]
        elif "clipvalue" in clip:
            v = np.float32(clip["clipvalue"])
            grads = [np.clip(g, -v, v) for g in grads]
        if weight_decay is not None:  # Keras: w -= w * wd * lr
            for p in params:
                p -= p * np.float32(weight_decay) * np.float32(lr)
        for g, p in zip(grads, params):
            self.update_step(g, p, lr)

    def update_step(self, gradient, variable, learning_rate):
        raise NotImplementedError

    def add_variable(self, shape, initializer="zeros", dtype=None, aggregation="mean", name=None):
        """A float32 NumPy state array (``initializer``: 'zeros', 'ones', a number, or a callable(shape))."""
        if callable(initializer):
            return np.asarray(initializer(shape), dtype=np.float32)
        value = {"zeros": 0.0, "ones": 1.0}.get(initializer, initializer)
        return np.full(shape, value, dtype=np.float32)

    def add_variable_from_reference(self, reference_variable, name=None, initializer="zeros"):
        return self.add_variable(np.shape(reference_variable), initializer=initializer, name=name)

    def _get_variable_index(self, variable):
        for i, v in enumerate(self._trainable_variables):
            if v is variable or (isinstance(v, np.ndarray) and isinstance(variable, np.ndarray)
                                 and v.shape == variable.shape and v.__array_interface__["data"][0]
                                 == variable.__array_interface__["data"][0]):
                return i
        raise KeyError("variable not tracked by this optimizer")

    def assign(self, variable, value):
        variable[...] = value

    def assign_add(self, variable, value):
        variable += value

    def assign_sub(self, variable, value):
        variable -= value

    # ------------------------------------------------------------------ EMA, loss scale
    def _overwrite_model_variables_with_average_value(self, trainable_variables):
        averages = self._slots["average"][1]
        if len(trainable_variables) != len(averages):
            raise ValueError(f"The length of model variables ({len(trainable_variables)}) to override does not match "
                             f"the length of model variables stored in the optimizer ({len(averages)}). Please check "
                             "if the optimizer was called on your model.")
        for var, average in zip(trainable_variables, averages):
            var[...] = average

    def finalize_variable_values(self, var_list):
        """Keras: with ``use_ema``, overwrite the variables with their moving averages (``fit`` calls
        this after the last epoch)."""
        if self.use_ema and self.built:
            self._overwrite_model_variables_with_average_value(var_list)

    def scale_loss(self, loss):
        """Keras: ``loss * loss_scale_factor`` when set (gradients are divided back in ``apply``)."""
        if self.loss_scale_factor is not None:
            return loss * self.loss_scale_factor
        return loss

    # ------------------------------------------------------------------ config
    def get_config(self):
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            learning_rate = schedules.serialize(lr)
        elif callable(lr):
            learning_rate = lr
        else:
            learning_rate = float(lr)
        return {
            "name": self.name,
            "learning_rate": learning_rate,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"], custom_objects=custom_objects)
        return cls(**config)

    def __repr__(self):
        return f"<{self.__class__.__name__} name={self.name!r} learning_rate={self._learning_rate!r}>"


def _base_kwargs(weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency,
                 loss_scale_factor, gradient_accumulation_steps, name, kwargs):
    return dict(weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                use_ema=use_ema, ema_momentum=ema_momentum, ema_overwrite_frequency=ema_overwrite_frequency,
                loss_scale_factor=loss_scale_factor, gradient_accumulation_steps=gradient_accumulation_steps,
                name=name, **kwargs)


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum (Keras 3)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name="SGD", **kwargs):
        super().__init__(learning_rate, **_base_kwargs(
            weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency,
            loss_scale_factor, gradient_accumulation_steps, name, kwargs))
        if not isinstance(momentum, float) or momentum < 0 or momentum > 1:
            raise ValueError("`momentum` must be a float between [0, 1].")
        self.momentum = momentum
        self.nesterov = nesterov

    def _slot_kinds(self):
        return [("momentum", 0.0)] if self.momentum != 0 else []

    def _fused_step(self, params, grads, slots, lr, weight_decay, clip):
        # Keras SGD.update_step:
        #   momentum == 0: w -= lr * g
        #   else: m = momentum * m - lr * g; w += m  (nesterov: w += momentum * m - lr * g)
        ops.sgd_step(params, grads, slots.get("momentum"), learning_rate=lr, momentum=self.momentum,
                     nesterov=bool(self.nesterov), weight_decay=weight_decay, **clip)

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "nesterov": self.nesterov})
        return config


class Adam(Optimizer):
    """Adam (Keras 3), optionally AMSGrad."""

    _interleaved_slots = ("momentum", "velocity")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None, name="adam",
                 **kwargs):
        super().__init__(learning_rate, **_base_kwargs(
            weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency,
            loss_scale_factor, gradient_accumulation_steps, name, kwargs))
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.amsgrad = amsgrad

    def _slot_kinds(self):
        return [("momentum", 0.0), ("velocity", 0.0)] + ([("velocity_hat", 0.0)] if self.amsgrad else [])

    _kernel_name = "adam_step"

    def _fused_step(self, params, grads, slots, lr, weight_decay, clip):
        # Keras Adam.update_step, t = iterations + 1:
        #   alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        #   m += (g - m) * (1 - beta_1); v += (g**2 - v) * (1 - beta_2)
        #   amsgrad: v_hat = max(v_hat, v), used in place of v
        #   w -= alpha * m / (sqrt(v) + epsilon)
        kernel = getattr(ops, self._kernel_name)  # ops.adam_step, or ops.adamw_step for AdamW
        kernel(params, grads, slots["momentum"], slots["velocity"], step=int(self.iterations) + 1, learning_rate=lr,
               beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon, amsgrad=bool(self.amsgrad),
               v_hat=slots.get("velocity_hat"), weight_decay=weight_decay, **clip)

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                       "amsgrad": self.amsgrad})
        return config


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras 3): ``w -= w * weight_decay * lr`` before the Adam step."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None, name="adamw",
                 **kwargs):
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad,
                         name=name, weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, use_ema=use_ema, ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency, loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, **kwargs)
        if self.weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")

    _kernel_name = "adamw_step"


class RMSprop(Optimizer):
    """RMSprop (Keras 3), optionally centered and with momentum."""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None,
                 name="rmsprop", **kwargs):
        super().__init__(learning_rate, **_base_kwargs(
            weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency,
            loss_scale_factor, gradient_accumulation_steps, name, kwargs))
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered

    def _slot_kinds(self):
        return ([("velocity", 0.0)] + ([("momentum", 0.0)] if self.momentum > 0 else [])
                + ([("average_gradient", 0.0)] if self.centered else []))

    def _fused_step(self, params, grads, slots, lr, weight_decay, clip):
        # Keras RMSprop.update_step:
        #   v = rho * v + (1 - rho) * g**2
        #   centered: ag = rho * ag + (1 - rho) * g; den = v - ag**2 + epsilon   else den = v + epsilon
        #   inc = lr * g / sqrt(den)
        #   momentum > 0: mb = momentum * mb + inc; w -= mb   else w -= inc
        ops.rmsprop_step(params, grads, slots["velocity"], momentums=slots.get("momentum"),
                         average_grads=slots.get("average_gradient"), learning_rate=lr, rho=self.rho,
                         momentum=self.momentum, epsilon=self.epsilon, centered=bool(self.centered),
                         weight_decay=weight_decay, **clip)

    def get_config(self):
        config = super().get_config()
        config.update({"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                       "centered": self.centered})
        return config


class Adagrad(Optimizer):
    """Adagrad (Keras 3); accumulators start at ``initial_accumulator_value``."""

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None,
                 name="adagrad", **kwargs):
        super().__init__(learning_rate, **_base_kwargs(
            weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency,
            loss_scale_factor, gradient_accumulation_steps, name, kwargs))
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def _slot_kinds(self):
        return [("accumulator", float(self.initial_accumulator_value))]

    def _fused_step(self, params, grads, slots, lr, weight_decay, clip):
        # Keras Adagrad.update_step: acc += g**2; w -= lr * g / sqrt(acc + epsilon)
        ops.adagrad_step(params, grads, slots["accumulator"], learning_rate=lr, epsilon=self.epsilon,
                         weight_decay=weight_decay, **clip)

    def get_config(self):
        config = super().get_config()
        config.update({"initial_accumulator_value": self.initial_accumulator_value, "epsilon": self.epsilon})
        return config


class Adamax(Optimizer):
    """Adamax (Keras 3): Adam with the infinity norm in place of the second moment."""

    _interleaved_slots = ("momentum", "norm")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None,
                 name="adamax", **kwargs):
        super().__init__(learning_rate, **_base_kwargs(
            weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency,
            loss_scale_factor, gradient_accumulation_steps, name, kwargs))
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def _slot_kinds(self):
        return [("momentum", 0.0), ("norm", 0.0)]

    def _fused_step(self, params, grads, slots, lr, weight_decay, clip):
        # Keras Adamax.update_step, t = iterations + 1:
        #   m += (g - m) * (1 - beta_1); u = max(beta_2 * u, |g|); w -= lr * m / ((1 - beta_1**t) * (u + eps))
        ops.adamax_step(params, grads, slots["momentum"], slots["norm"], step=int(self.iterations) + 1,
                        learning_rate=lr, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                        weight_decay=weight_decay, **clip)

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config


class Lion(Optimizer):
    """Lion (Keras 3): the sign of an interpolated momentum as the step."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name="lion", **kwargs):
        super().__init__(learning_rate, **_base_kwargs(
            weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency,
            loss_scale_factor, gradient_accumulation_steps, name, kwargs))
        if beta_1 <= 0 or beta_1 > 1:
            raise ValueError("Argument `beta_1` must be in the [0, 1] range. Otherwise, the optimizer degenerates "
                             f"to SignSGD. Received: beta_1={beta_1}.")
        self.beta_1 = beta_1
        self.beta_2 = beta_2

    def _slot_kinds(self):
        return [("momentum", 0.0)]

    def _fused_step(self, params, grads, slots, lr, weight_decay, clip):
        # Keras Lion.update_step: w -= lr * sign(m * beta_1 + g * (1 - beta_1)); m = m * beta_2 + g * (1 - beta_2)
        ops.lion_step(params, grads, slots["momentum"], learning_rate=lr, beta_1=self.beta_1, beta_2=self.beta_2,
                      weight_decay=weight_decay, **clip)

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2})
        return config


ALL_OBJECTS = {Optimizer, SGD, Adam, AdamW, RMSprop, Adagrad, Adamax, Lion}
ALL_OBJECTS_DICT = {cls.__name__.lower(): cls for cls in ALL_OBJECTS}


def serialize(optimizer):
    """``{'module': 'keras.optimizers', 'class_name': ..., 'config': ..., 'registered_name': None}``."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"serialize: expected an Optimizer, got {type(optimizer).__name__}")
    cls = type(optimizer)
    builtin = ALL_OBJECTS_DICT.get(cls.__name__.lower()) is cls
    config = optimizer.get_config()
    if callable(config.get("learning_rate")):
        # A plain callable has no JSON form: it is saved as its current value.
        config["learning_rate"] = float(optimizer.learning_rate)
    return {"module": "keras.optimizers" if builtin else cls.__module__, "class_name": cls.__name__,
            "config": config, "registered_name": None if builtin else cls.__name__}


def deserialize(config, custom_objects=None):
    """An optimizer from ``serialize``'s dict; built-in class names are matched case-insensitively."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Could not interpret optimizer config: {config!r}")
    name = config["class_name"]
    cls = (custom_objects or {}).get(name) or ALL_OBJECTS_DICT.get(str(name).lower())
    if cls is None:
        raise ValueError(f"Could not interpret optimizer identifier: unknown class_name {name!r}; valid names "
                         f"are {', '.join(sorted(ALL_OBJECTS_DICT))}")
    return cls.from_config(dict(config.get("config") or {}), custom_objects=custom_objects)


def get(identifier):
    """An optimizer from a name ('sgd', 'Adam', ... case-insensitive), a serialized dict, or an instance."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = deserialize({"class_name": identifier, "config": {}})
    else:
        obj = identifier
    if isinstance(obj, Optimizer):
        return obj
    raise ValueError(f"Could not interpret optimizer identifier: {identifier}")

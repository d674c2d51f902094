"""Models: Sequential (a linear stack of layers) and Model (the functional API; one chain of layers here, graphs
in gradsmith.functional).

This module holds the model itself: its layers, its weights (all in one flat
float32 buffer, ``model.parameters``, gradients in another; each layer's
weights are views of them), build, summary, get_config / from_config and the
save / load hooks (the file format is gradsmith.saving). Training, evaluation
and prediction come from the Trainer it inherits (gradsmith.trainer), as Keras
3's ``Model`` inherits its ``Trainer``.
"""
import re
import warnings

import numpy as np

from gradsmith import config as config_mod, data_adapter, layers as layers_mod, quantizers, saving
from gradsmith.layers.base import (_check_float32, _dtype_policy, _shape_list, as_shape, implied_weights,
                                   is_builtin)
from gradsmith.trainer import Trainer

__all__ = ["Sequential", "Model", "load_model"]

# Gathers so far, over every model: a model whose last gather is the latest knows that its weights are
# still in its own buffer (``Sequential._claim_weights``).
_gathers = 0


# Layers that read a mask in Keras 3 but not (yet) in gradsmith: a masked input is refused rather than
# computed differently. The other layers without masking drop the mask, as in Keras.
_READS_MASK_IN_KERAS = {"BatchNormalization"}


class Sequential(Trainer, layers_mod.Layer):
    """A linear stack of layers: ``Sequential([Dense(64, activation='relu', input_shape=(20,)), Dense(1)])``.

    A model is also a layer, as in Keras 3 (``class Model(Trainer, Layer)``): ``Sequential([base, Dense(1)])``
    or ``Dense(1)(base(Input((8,))))`` use a whole model as one layer. Its weights are the inner model's own
    (one set of values, gathered into the buffer of whichever model uses them: ``_gather_weights``), and
    ``base.trainable = False`` freezes them (and every layer in it) in the outer model's training."""

    _is_model = True  # a Layer that is not in the layer registry (layers.base: models serialize themselves)

    _output_mask = None  # the mask of the last forward's output (Keras's masking), None without one

    def __init__(self, layers=None, name=None, trainable=True):
        self.name = name if name is not None else layers_mod._unique_name("sequential")
        self._is_trainable = bool(trainable)  # as Keras's constructor: the layers keep their own flags
        self._layers = []
        self._input_layer = None
        self.built = False
        self.input_shape = self.output_shape = None
        self._home_weights, self._gathered_at = (), -1
        super().__init__()  # the Trainer's state: optimizer, loss, compiled, the compiled step
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------------ structure
    @property
    def layers(self):
        return list(self._layers)

    @property
    def trainable(self):
        return self._is_trainable

    @trainable.setter
    def trainable(self, value):
        """As Keras 3: setting a model's ``trainable`` sets every layer's, nested models' layers included (a
        frozen base's BatchNormalization layers then normalize with their moving statistics)."""
        value = bool(value)
        self._is_trainable = value
        for layer in self._layers:
            layer.trainable = value

    @property
    def _declared_input_shape(self):
        """The input shape a model that starts with this one takes (``Sequential([base, Dense(1)])``)."""
        return None if self._input_layer is None else self._input_layer.shape

    def _walk(self):
        """Every layer of the model, nested models and their layers included, depth first."""
        for layer in self._layers:
            yield layer
            if isinstance(layer, Sequential):
                yield from layer._walk()

    def _leaf_layers(self):
        """The layers that compute, in order: nested models replaced by their own leaf layers."""
        out = []
        for layer in self._layers:
            if isinstance(layer, Sequential):
                out.extend(layer._leaf_layers())
            else:
                out.append(layer)
        return out

    def add(self, layer, _build_deferred=False):
        if isinstance(layer, layers_mod.InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError("Input must be the first entry of a Sequential model")
            self._input_layer = layer
            return
        if not isinstance(layer, layers_mod.Layer):
            raise TypeError(f"Sequential.add: expected a layer, got {type(layer).__name__}")
        inside = [layer] + (list(layer._walk()) if isinstance(layer, Sequential) else [])
        if any(existing is self for existing in inside):
            raise ValueError(f"model {self.name!r} cannot be a layer of itself")
        mine = {id(existing) for existing in self._walk()}
        if any(id(l) in mine for l in inside):
            raise ValueError(f"layer {layer.name!r} is already in the model")
        if layer.name in {existing.name for existing in self._layers}:
            raise ValueError(f"the model already has a layer named {layer.name!r}; layer names must be unique")
        before = (self._input_layer, self.built)
        self._layers.append(layer)
        self.built = False
        if len(self._layers) == 1 and self._input_layer is None and layer._declared_input_shape is not None:
            self._input_layer = layers_mod.InputLayer(batch_shape=layer._declared_input_shape)
        if self._input_layer is not None and not _build_deferred:
            try:
                self.build(self._input_layer.shape)
            except BaseException:  # the model as it was (a layer that does not fit its input, ...)
                self._layers.pop()
                self._input_layer, self.built = before
                raise

    def pop(self):
        if not self._layers:
            raise IndexError("there is no layer to pop")
        layer = self._layers.pop()
        self.built = False
        if self._input_layer is not None and self._layers:
            self.build(self._input_layer.shape)
        return layer

    def get_layer(self, name=None, index=None):
        if index is not None:
            if not -len(self._layers) <= index < len(self._layers):
                raise ValueError(f"index {index} is out of range for a model of {len(self._layers)} layers")
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; layers are {[l.name for l in self._layers]}")

    def build(self, input_shape=None):
        """Build every layer from the input shape and gather all weights into one flat buffer."""
        if input_shape is None:
            if self._input_layer is None:
                raise ValueError("build() needs an input shape: give Input(shape=...) or input_shape=")
            input_shape = self._input_layer.shape
        input_shape = tuple(input_shape)
        if self._input_layer is not None:
            self._check_input_shape(input_shape)
        self._check_size(input_shape)
        if self._input_layer is None:
            self._input_layer = layers_mod.InputLayer(batch_shape=input_shape)
        shape = input_shape
        for layer in self._layers:
            if not layer.built:
                layer.build(shape)
            shape = layer.compute_output_shape(shape)
            if isinstance(shape, list):
                raise ValueError(f"layer {layer.name!r} has {len(shape)} outputs (return_state=True?): a Sequential "
                                 "model's layers have one output each; use the functional API (gradsmith.Model)")
            layer.output_shape = shape
        self._gather_weights()
        self.input_shape, self.output_shape = input_shape, shape
        self.built = True

    def _check_input_shape(self, shape):
        """Raise ValueError when inputs of shape ``shape`` do not fit the model's Input (None fits any size)."""
        expected = tuple(self._input_layer.shape[1:])
        got = tuple(shape)[1:]
        if len(expected) != len(got) or any(e is not None and g is not None and e != g
                                            for e, g in zip(expected, got)):
            raise ValueError(f"model {self.name!r} takes inputs of shape {(None,) + expected}, got {tuple(shape)}")

    def _check_size(self, input_shape):
        """Raise ValueError, allocating nothing, when the weights the model implies for ``input_shape``
        exceed ``gradsmith.config.get_max_weights()``: the unbuilt layers are built with shapes only
        (gradsmith's own layers; a user's layer is checked weight by weight as it builds)."""
        limit = config_mod.get_max_weights()
        total, shape = 0, tuple(input_shape)
        for layer in self._layers:
            sizes, shape = _implied_weights(layer, shape)
            if sizes is None:
                break
            total += sum(sizes)
            if total > limit:
                raise ValueError(f"model {self.name!r}: its weights would hold {total:,} values (at layer "
                                 f"{layer.name!r}), more than the limit of {limit:,}; raise it with "
                                 "gradsmith.config.set_max_weights (or max_weights= when loading a file)")

    def _gather_weights(self, keep_optimizer=False):
        """One flat buffer for the values and one for the gradients; each weight becomes a view.

        A layer may be in several models (transfer learning: ``Sequential(old.layers[:-1] + [Dense(3)])``).
        Its weights are one set of values, living in the buffer of the model that gathered them last:
        gathering copies their current values into this model's new buffer and re-points the views, and
        the model they left re-gathers before its next use (``_claim_weights``), carrying the values back.
        ``keep_optimizer`` (that re-gather: same weights, same order) keeps the optimizer's state, whose
        slots are its own buffers indexed like the trainable weights; only its variable views move."""
        global _gathers
        weights = self._flat_weights()
        total = sum(w.size for w in weights)
        params = np.zeros(total, np.float32)
        grads = np.zeros(total, np.float32)
        offset = 0
        for w in weights:
            view = params[offset:offset + w.size].reshape(w.shape)
            view[...] = w.value
            w.value = view
            w.grad = grads[offset:offset + w.size].reshape(w.shape)
            w._home = params
            offset += w.size
        self._parameters, self._gradients = params, grads
        self._home_weights = tuple(weights)
        _gathers += 1
        self._gathered_at = _gathers
        self._plan = self._plan_key = None
        if self.optimizer is None:
            return
        if keep_optimizer:
            if self.optimizer.built:
                self.optimizer._trainable_variables = [w.value for w in self._trainable()]
        else:
            # An optimizer built for the old buffers would update stale views: start it afresh.
            self.optimizer = type(self.optimizer).from_config(self.optimizer.get_config())

    def _claim_weights(self):
        """Bring the layers' weights back into this model's buffer when a model sharing one of its layers
        has gathered them since (see ``_gather_weights``). One integer compare when no model has gathered
        since this one did."""
        if not self.built or self._gathered_at == _gathers:
            return
        params = self._parameters
        if all(w._home is params for w in self._home_weights) and \
                self._home_weights == tuple(self._flat_weights()):
            self._gathered_at = _gathers
            return
        self._gather_weights(keep_optimizer=self._home_weights == tuple(self._flat_weights()))

    @property
    def parameters(self):
        """All weights as one flat float32 array (each layer's weights are views of it)."""
        self._claim_weights()
        return self._parameters

    @property
    def gradients(self):
        """The gradients, laid out as ``parameters``."""
        self._claim_weights()
        return self._gradients

    def _trainable(self):
        if not self.trainable:
            return []
        return [w for layer in self._layers for w in
                (layer._trainable() if isinstance(layer, Sequential) else
                 layer._weights if layer.trainable else ()) if w.trainable]

    @property
    def weights(self):
        return [w.value for w in self._all_weights()]

    @property
    def trainable_weights(self):
        return [w.value for w in self._trainable()]

    @property
    def non_trainable_weights(self):
        trainable = {id(w) for w in self._trainable()}
        return [w.value for w in self._all_weights() if id(w) not in trainable]

    def _all_weights(self):
        """Every weight record, in Keras's ``model.weights`` order (layer by layer, nested models' layers in
        place), each once."""
        out, seen = [], set()
        for layer in self._layers:
            for w in layer._weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out

    def _flat_weights(self):
        """The float32 weights, those of the flat buffer (a quantized layer's int8 kernel keeps its own array)."""
        return [w for w in self._all_weights() if w.dtype == np.float32]

    @property
    def _weights(self):  # the Layer protocol: a model's weights are its layers'
        return self._all_weights()

    def _plan_key_now(self):
        return (self.trainable, self.optimizer, self.loss, self._trainable_flags())

    def _trainable_flags(self):
        """Every layer's ``trainable``, nested models' layers included (what the compiled step depends on)."""
        return tuple((l.trainable, l._trainable_flags()) if isinstance(l, Sequential) else l.trainable
                     for l in self._layers)

    def count_params(self):
        self._require_built("count_params")
        return sum(w.size for w in self._all_weights())

    def get_weights(self):
        return [w.value.copy() for w in self._all_weights()]

    def set_weights(self, weights):
        """Copy a list of arrays (as get_weights returns) into the model; all shapes are checked first."""
        self._require_built("set_weights")
        layers_mod.assign_weights(self._all_weights(), weights, f"model {self.name!r}")

    def quantize(self, mode=None, config=None, filters=None, **kwargs):
        """Keras 3's ``model.quantize("int8")``: every Dense and Embedding (nested models' too) gets an int8
        kernel with Keras's scales; other layers stay float32. ``filters``: a regex (searched in the layer's
        name), a list of them (any matches) or a callable ``filters(layer) -> bool``, as Keras. The model
        then predicts on the int8 GEMM (layer by layer) and saves in Keras's int8 layout.
        ``convolutions=True`` (a gradsmith extension, not Keras's) quantizes Conv1D and Conv2D too, for
        inference (see gradsmith.layers.convolutional)."""
        type_check = kwargs.pop("type_check", True)
        convolutions = bool(kwargs.pop("convolutions", False))  # a gradsmith extension: Conv1D / Conv2D too
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}")
        quantizers.check_mode(mode, config, f"model {self.name!r}")
        if filters is not None and not isinstance(filters, (str, list, tuple)) and not callable(filters):
            raise ValueError("The `filters` argument must be a regex string, a list of regex strings, or a "
                             f"callable. Received: {type(filters)}")
        self._require_built("quantize")
        changed = False
        for layer in self._leaf_layers():
            if not _should_quantize(layer, filters) or not hasattr(layer, "quantize") or \
                    (getattr(layer, "_quantize_opt_in", False) and not convolutions):
                continue
            try:
                layer.quantize(mode, type_check=type_check)
                changed = True
            except NotImplementedError as e:  # a subclass of a quantizable layer: Keras warns and skips it
                warnings.warn(str(e), stacklevel=2)
        if changed:
            self._gather_weights()  # the quantized layers' weights are new: a new flat buffer, a new plan

    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"{what}: the model is not built yet; give it an input shape (Input(shape=...) or "
                             "input_shape= on the first layer) or call it on data first")

    def _ensure_built(self, x):
        if not self.built:
            self.build((None,) + tuple(np.shape(x)[1:]))

    def _ensure_built_from(self, x):
        """Build from a batch's shape if needed; False when x cannot be a batch (the Python path explains)."""
        if not self.built:
            try:
                self._ensure_built(np.asarray(x))
            except (ValueError, TypeError):
                return False
        return self.built

    def _first_layer(self):
        """The first layer that computes (through nested models), or None."""
        layer = self._layers[0] if self._layers else None
        while isinstance(layer, Sequential):
            layer = layer._layers[0] if layer._layers else None
        return layer

    def _prepare_batch(self, x, y, sw):
        data_adapter.reject_masked(x, "x")
        if isinstance(x, data_adapter.Columns) or (isinstance(x, dict) and x):
            raise ValueError(f"model {self.name!r} has one input; x holds "
                             f"{len(x.arrays) if isinstance(x, data_adapter.Columns) else len(x)} arrays")
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"x: expected numeric data, got dtype {x.dtype}")
        if x.dtype.kind in "biu" and getattr(self._first_layer(), "_takes_ids", False):
            x = np.ascontiguousarray(x, dtype=np.int64)  # token ids reach an Embedding exactly
        else:
            x = np.ascontiguousarray(x, dtype=np.float32)
        self._ensure_built(x)
        expected = self._input_layer.shape[1:]
        if len(expected) != x.ndim - 1:
            raise ValueError(f"input of shape {x.shape} does not match the model's input shape "
                             f"{(None,) + tuple(expected)}")
        # Other sizes along the other axes run, as in Keras (a recurrent model over longer sequences, a fully
        # convolutional one over larger images); a layer that cannot take them says so.
        return x, y, sw

    # ------------------------------------------------------------------ math
    def _forward(self, x, training):
        """The layers one after another; Keras's mask (from Embedding(mask_zero=True)) goes along: each layer
        sees the mask of its input as ``_input_mask`` during its forward, and ``_output_mask`` is the mask of
        the model's output (the loss and the metrics skip its False entries)."""
        mask = self._input_mask
        for layer in self._layers:
            if mask is not None and not getattr(layer, "supports_masking", False) \
                    and type(layer).__name__ in _READS_MASK_IN_KERAS:
                raise NotImplementedError(
                    f"layer {layer.name!r} ({type(layer).__name__}) gets a mask (from Embedding(mask_zero=True)), "
                    "which it reads in Keras and gradsmith does not support for it yet")
            layer._input_mask = mask
            try:
                y = layer.forward(x, training=training)
            finally:
                layer._input_mask = None
            mask = layer.compute_mask(x, mask)
            x = y
        self._output_mask = mask
        return x

    def compute_mask(self, inputs, mask=None):
        return self._output_mask

    def _backward(self, dy):
        """Each layer's backward in reverse, down to the first layer with weights: the layers before it (input
        transforms such as Rescaling or a random augmentation, a leading Dropout) have nothing to learn."""
        n = len(self._layers)
        first = next((i for i, layer in enumerate(self._layers) if layer._weights), n)
        for i in range(n - 1, first - 1, -1):
            dy = self._layers[i].backward(dy, need_dx=i > first)

    def _refresh_pruning(self):
        """The pruning masks changed (gradsmith.pruning): a compiled step takes the new ones."""
        if self._plan is not None:
            self._plan.refresh_keep(self)

    def _regularization(self):
        return sum(layer.regularization_loss() for layer in self._layers)

    def __call__(self, x, training=False):
        if isinstance(x, layers_mod.KerasTensor) or getattr(x, "_is_graph_input", False):
            return layers_mod.Layer.__call__(self, x, training=training)  # functional API: record only
        x, _, _ = self._prepare_batch(x, None, None)
        return self._forward(x, training=training)

    # ------------------------------------------------------------------ generation (a gradsmith extension)
    def generate(self, start_tokens, num_generated=50, temperature=1.0, top_k=None, seed=None, stop_token=None):
        """Token ids: ``start_tokens`` and up to ``num_generated`` new ones, one step per token (the recurrent
        layers keep their state; the prefix is not run again). Greedy at ``temperature=0``, sampled otherwise
        (``top_k``, ``seed``); stops after ``stop_token``. See gradsmith.generation."""
        from gradsmith import generation
        return generation.generate(self, start_tokens, num_generated, temperature, top_k, seed, stop_token)

    # ------------------------------------------------------------------ as a layer of another model
    def forward(self, x, training=False):
        return self._forward(x, training=training)

    def backward(self, dy, need_dx=True):
        for i in range(len(self._layers) - 1, -1, -1):
            dy = self._layers[i].backward(dy, need_dx=need_dx or i > 0)
        return dy

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        if self._input_layer is not None:
            self._check_input_shape(shape)
        for layer in self._layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def regularization_loss(self):
        return self._regularization()

    def flops(self, batch=1):
        return sum(layer.flops(batch) for layer in self._layers)

    def _serialize_as_layer(self):
        """The model as an entry of another model's layers, as Keras 3 writes it: a Sequential model as
        ``{"module": "keras", "class_name": "Sequential", ...}``, a functional one as Keras's "Functional"
        (its layers with their inbound nodes), each with build_config and compile_config."""
        cls = type(self)
        if cls is Model:
            out = {"module": "keras.src.models.functional", "class_name": "Functional",
                   "config": self._functional_config(), "registered_name": "Functional",
                   "build_config": {"input_shape": None}}
        else:
            builtin = cls is Sequential
            out = {"module": "keras" if builtin else cls.__module__, "class_name": cls.__name__,
                   "config": self.get_config(), "registered_name": None if builtin else cls.__name__}
            if self.built:
                out["build_config"] = self.get_build_config()
        out["compile_config"] = self.get_compile_config() if self.compiled else {}
        return out

    # ------------------------------------------------------------------ summary
    def summary(self, print_fn=None):
        """Prints each layer's type, output shape and parameter count, then the totals and forward FLOPs."""
        self._require_built("summary")
        print_fn = print_fn or print
        rows = [(f"{l.name} ({vars(type(l)).get('_keras_class_name', type(l).__name__)})", str(l.output_shape),
                 f"{l.count_params():,}")
                for l in self._layers]
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
                  for i, h in enumerate(("Layer (type)", "Output Shape", "Param #"))]
        line = "-" * (sum(widths) + 6)
        fmt = f"{{:<{widths[0]}}}   {{:<{widths[1]}}}   {{:>{widths[2]}}}"
        print_fn(f'Model: "{self.name}"')
        print_fn(line)
        print_fn(fmt.format("Layer (type)", "Output Shape", "Param #"))
        print_fn(line)
        for r in rows:
            print_fn(fmt.format(*r))
        print_fn(line)
        total = self.count_params()
        trainable = sum(np.size(w) for w in self.trainable_weights)
        print_fn(f" Total params: {total:,}")
        print_fn(f" Trainable params: {trainable:,}")
        print_fn(f" Non-trainable params: {total - trainable:,}")
        print_fn(f" Forward FLOPs per sample: {sum(l.flops(1) for l in self._layers):,}")

    # ------------------------------------------------------------------ config and saving
    def get_config(self):
        """The model as Keras 3 describes a Sequential model: each layer by its own ``get_config``
        (``layers.serialize``), the input first, and the input shape."""
        layer_configs = [layers_mod.serialize(l) for l in self._layers]
        if self._input_layer is not None:
            layer_configs.insert(0, layers_mod.serialize(self._input_layer))
        config = {"name": self.name, "trainable": self.trainable, "dtype": _dtype_policy(), "layers": layer_configs}
        if self._input_layer is not None:
            config["build_input_shape"] = _shape_list(self._input_layer.shape)
        return config

    @classmethod
    def from_config(cls, config):
        """The model from ``get_config``'s dict (written by gradsmith or Keras 3), unbuilt when it has no
        input shape (no InputLayer and no build_input_shape: see ``build_from_config``)."""
        return cls._from_config(config, build=True)

    @classmethod
    def _from_config(cls, config, build):
        """``from_config``; ``build=False`` (a model nested in the model being loaded) leaves the building to
        the outer model, which checks the size of everything before allocating any of it."""
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError(f"a Sequential configuration is a dict with a list of layers, got {config!r:.200}")
        if not isinstance(config.get("name"), (str, type(None))):
            raise ValueError(f"the model's name must be a string, got {config.get('name')!r}")
        _check_float32(config.get("dtype"), "the model")
        model = cls(name=config.get("name"), trainable=bool(config.get("trainable", True)))
        layer_configs = list(config["layers"])
        starts_with_input = layer_configs and isinstance(layer_configs[0], dict) and \
            layer_configs[0].get("class_name") == "InputLayer"
        if not starts_with_input and config.get("build_input_shape") is not None:
            model.add(layers_mod.InputLayer(batch_shape=config["build_input_shape"]))
        # Every layer first, then one build: the total size is checked before any weight is allocated.
        for lc in layer_configs:
            model.add(layers_mod.deserialize(lc), _build_deferred=True)
        if build and model._input_layer is not None and model._layers:
            model.build(model._input_layer.shape)
        return model

    def get_build_config(self):
        """Keras's ``build_config``: the input shape the model was built for."""
        self._require_built("get_build_config")
        return {"input_shape": _shape_list(self._input_layer.shape)}

    def build_from_config(self, config):
        if not isinstance(config, dict) or not isinstance(config.get("input_shape"), (list, tuple)):
            raise ValueError(f"build_config: expected {{'input_shape': [...]}}, got {config!r:.200}")
        self.build(as_shape(config["input_shape"], "build_config: input_shape"))

    def __reduce__(self):
        """``pickle`` and ``copy.deepcopy``, as Keras 3: a built model travels as the bytes of its
        ``.keras`` file (architecture, weights, compile configuration, optimizer state; the compiled
        step is rebuilt on first use), an unbuilt one as its configuration (and compile configuration).
        A functional Model comes back as the Sequential model of its layers, as from a file."""
        if self.built:
            return saving._unpickle_model, (saving._keras_bytes(self),)
        return _unpickle_unbuilt, (self.get_config(), self.get_compile_config() if self.compiled else None)

    def save(self, filepath, overwrite=True):
        """Save architecture, weights, compile configuration and optimizer state to a ``.keras`` file,
        written to a temporary name and renamed (see gradsmith.saving)."""
        saving.save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True):
        """Save the weights to ``filepath`` (see gradsmith.saving), written atomically."""
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, max_weights=None):
        """Load weights saved by save_weights or save; on any error the model is left as it was.
        ``max_weights``: the limit on a dataset's declared size for this call (see gradsmith.saving)."""
        saving.load_weights(self, filepath, max_weights=max_weights)


class Model(Sequential):
    """The functional API: ``Model(inputs, outputs)`` over layers called one after another.

        inputs = gradsmith.Input(shape=(784,))
        x = gradsmith.layers.Dense(64, activation="relu")(inputs)
        outputs = gradsmith.layers.Dense(10)(x)
        model = gradsmith.Model(inputs=inputs, outputs=outputs, name="mnist_model")

    When the layers from ``inputs`` to ``outputs`` form one chain (each layer called once, on the
    previous one's output) the model trains, evaluates, predicts and saves as the Sequential model of
    those layers (and is saved as one), with the compiled step. Anything else (branches, merges, several
    inputs or outputs, recurrent states between layers) makes a gradsmith.functional.Functional.
    Subclassing Model with a ``call`` method is not supported yet and says so.
    """

    _keras_class_name = "Functional"  # Keras 3's class of a functional model (summary, a nested model's entry)

    def __init_subclass__(cls, **kwargs):
        """A subclass with its own ``call`` (Keras's subclassing API) becomes a gradsmith.functional.Subclassed:
        its ``call`` is traced into a graph on the first data."""
        super().__init_subclass__(**kwargs)
        if "call" in cls.__dict__ and _GRAPH_MODEL and not issubclass(cls, _GRAPH_MODEL[0].Functional):
            cls.__bases__ = tuple(_GRAPH_MODEL[0].Subclassed if base is Model else base for base in cls.__bases__)

    def __new__(cls, inputs=None, outputs=None, *args, **kwargs):
        """A graph (branches, merges, several inputs or outputs, recurrent states between layers) is a
        gradsmith.functional.Functional; one chain of layers is this class."""
        if cls is Model and inputs is not None and outputs is not None and _GRAPH_MODEL \
                and not _GRAPH_MODEL[0].is_chain(inputs, outputs):
            cls = _GRAPH_MODEL[0].Functional
        return super().__new__(cls)

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True, **kwargs):
        if kwargs:
            raise TypeError(f"Model: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
        if inputs is None or outputs is None:
            raise NotImplementedError("gradsmith.Model needs inputs= and outputs= (the functional API); "
                                      "subclassed models with a call() method are not supported yet")
        inputs, outputs = self._single(inputs, "inputs"), self._single(outputs, "outputs")
        if not isinstance(inputs, layers_mod.InputLayer):
            raise TypeError(f"Model: inputs must come from gradsmith.Input(...), got {type(inputs).__name__}")
        chain, t = [], outputs
        while isinstance(t, layers_mod.KerasTensor):
            chain.append(t.layer)
            t = t.parent
        if t is not inputs:
            raise ValueError("Model: outputs were not computed from these inputs")
        self.inputs, self.outputs = [inputs], [outputs]
        super().__init__(layers=[inputs] + chain[::-1], name=name if name is not None else
                         layers_mod._unique_name("functional"), trainable=trainable)

    @classmethod
    def from_config(cls, config):
        """A model saved from Model(inputs, outputs) is a Sequential config: it comes back as Sequential."""
        return Sequential.from_config(config)

    def _functional_config(self):
        """Keras 3's Functional config of this chain: each layer with its name and its one inbound node (the
        previous layer's output), the input and output layers by name."""
        inp = self._input_layer
        entries = [{**layers_mod.serialize(inp), "name": inp.name, "inbound_nodes": []}]
        previous, shape = inp.name, tuple(inp.shape)
        for layer in self._layers:
            tensor = {"class_name": "__keras_tensor__",
                      "config": {"shape": _shape_list(shape), "dtype": "float32", "keras_history": [previous, 0, 0]}}
            kwargs = {"mask": None} if isinstance(layer, Sequential) else {}
            entries.append({**layers_mod.serialize(layer), "name": layer.name,
                            "inbound_nodes": [{"args": [tensor], "kwargs": kwargs}]})
            previous, shape = layer.name, layer.compute_output_shape(shape)
        return {"name": self.name, "trainable": self.trainable, "layers": entries,
                "input_layers": [inp.name, 0, 0], "output_layers": [previous, 0, 0]}

    @classmethod
    def _from_chain(cls, inputs, chain, name, trainable, build=True):
        """The functional model of ``chain`` (layers called one after another on ``inputs``), without calling
        the layers (so nothing is built unless ``build``)."""
        model = cls.__new__(cls)
        Sequential.__init__(model, name=name, trainable=trainable)
        model.add(inputs)
        for layer in chain:
            model.add(layer, _build_deferred=True)
        if build and chain:
            model.build(inputs.shape)
        model.inputs, model.outputs = [inputs], []
        return model

    @staticmethod
    def _single(value, what):
        if isinstance(value, (list, tuple)):
            if len(value) != 1:
                raise NotImplementedError(f"Model: several {what} are not supported yet; give one")
            value = value[0]
        if isinstance(value, dict):
            raise NotImplementedError(f"Model: {what} given as a dict are not supported yet")
        return value


def _should_quantize(layer, filters):
    """Keras's should_quantize_layer: no filters, a regex searched in the name, a list of them, a callable."""
    if filters is None:
        return True
    if isinstance(filters, str):
        return re.search(filters, layer.name) is not None
    if isinstance(filters, (list, tuple)):
        return any(re.search(f, layer.name) is not None for f in filters)
    return bool(filters(layer))


def _implied_weights(layer, shape):
    """(the sizes of the weights ``layer`` has or would have for inputs of ``shape``, its output shape), nothing
    allocated; (None, None) for a user's unbuilt layer, whose weights only its build knows."""
    if layer.built:
        return [layer.count_params()], layer.compute_output_shape(shape)
    if isinstance(layer, Sequential):
        if layer._input_layer is not None:
            layer._check_input_shape(shape)
        sizes = []
        for inner in layer._layers:
            more, shape = _implied_weights(inner, shape)
            if more is None:
                return None, None
            sizes += more
        return sizes, shape
    if is_builtin(layer):
        return implied_weights(layer, shape)
    return None, None


def _model_layer(entry):
    """A model from its entry in another model's layers (``layers.deserialize``), as Keras writes it: a
    "Sequential" or a "Functional" that is one chain. Left unbuilt: the model it is loaded into builds it."""
    config = entry.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ValueError(f"a nested {entry.get('class_name')} configuration is a dict with a list of layers, got "
                         f"{config!r:.200}")
    if entry.get("class_name") == "Functional":
        model = _functional_from_config(config)
    else:
        model = Sequential._from_config(config, build=False)
    compile_config = entry.get("compile_config")
    if compile_config:  # as Keras's deserialize_keras_object
        model.compile_from_config(compile_config)
    return model


def _history_name(tensor):
    """The layer name of a Keras 3 ``__keras_tensor__`` argument (its keras_history: [name, node, index])."""
    if isinstance(tensor, dict) and tensor.get("class_name") == "__keras_tensor__":
        history = (tensor.get("config") or {}).get("keras_history")
        if isinstance(history, list) and len(history) == 3 and isinstance(history[0], str) and \
                history[1:] == [0, 0]:
            return history[0]
    raise ValueError(f"gradsmith reads functional models whose layers each take the previous layer's output once; "
                     f"got the argument {tensor!r:.200}")


def _endpoint(value, what):
    """The one layer name of Keras's input_layers / output_layers (["name", 0, 0] or [["name", 0, 0]])."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and value[1:] == [0, 0]):
        raise NotImplementedError(f"a functional model's {what} must name one layer (several inputs or outputs are "
                                  f"not supported yet); got {value!r:.200}")
    return value[0]


def _functional_from_config(config, build=False):
    """A Keras 3 Functional config that is one chain (Input -> layer -> layer ...), as a gradsmith Model;
    branches, merges, shared layers and several inputs or outputs raise NotImplementedError."""
    if "input_layers" not in config or "output_layers" not in config:
        raise ValueError("a Functional configuration names its input_layers and output_layers; this one has none "
                         "(a Sequential model's configuration?)")
    if not isinstance(config.get("name"), (str, type(None))):
        raise ValueError(f"the model's name must be a string, got {config.get('name')!r}")
    first, last = _endpoint(config.get("input_layers"), "input_layers"), _endpoint(config.get("output_layers"),
                                                                                   "output_layers")
    by_name, parent = {}, {}
    for entry in config["layers"]:
        if not isinstance(entry, dict):
            raise ValueError(f"not a layer configuration: {entry!r:.200}")
        name = entry.get("name", (entry.get("config") or {}).get("name"))
        if not isinstance(name, str) or name in by_name:
            raise ValueError(f"a functional model's layers need distinct names, got {name!r}")
        nodes = entry.get("inbound_nodes") or []
        if not isinstance(nodes, list) or len(nodes) > 1:
            raise NotImplementedError(f"layer {name!r} is called several times; gradsmith's functional models are "
                                      "one chain of layers, each called once")
        if nodes:
            args = nodes[0].get("args") if isinstance(nodes[0], dict) else None
            if not isinstance(args, list) or len(args) != 1:
                raise NotImplementedError(f"layer {name!r} takes several inputs; not supported yet")
            parent[name] = _history_name(args[0])
        by_name[name] = layers_mod.deserialize({k: v for k, v in entry.items() if k not in ("name", "inbound_nodes")})
    chain, at = [], last
    while at != first:
        if at not in parent or len(chain) > len(by_name):
            raise ValueError(f"the functional model's output {last!r} is not computed from its input {first!r}")
        chain.append(by_name[at])
        at = parent[at]
    inputs = by_name.get(first)
    if not isinstance(inputs, layers_mod.InputLayer):
        raise ValueError(f"the functional model's input {first!r} is not an InputLayer")
    if len(chain) + 1 != len(by_name):
        raise NotImplementedError("the functional model has layers off its input-to-output chain (branches); "
                                  "not supported yet")
    return Model._from_chain(inputs, chain[::-1], config.get("name"), bool(config.get("trainable", True)),
                             build=build)


def load_model(filepath, compile=True, max_weights=None):
    """Load a model saved by ``model.save`` (see gradsmith.saving); ``max_weights`` raises the limit on
    the model's size for this call (default ``gradsmith.config.get_max_weights()``, 2**31 values)."""
    return saving.load_model(filepath, compile=compile, max_weights=max_weights)


def _unpickle_unbuilt(config, compile_config):
    model = Sequential.from_config(config)
    if compile_config:
        model.compile_from_config(compile_config)
    return model


# load_model rebuilds a saved "Sequential" with Sequential.from_config (a Model is saved as one).
saving.register_model_class(Sequential)


# gradsmith.functional (graph models) registers itself here: Model(inputs, outputs) of a graph makes one,
# and load_model reads Keras's "Functional" files with it (chains and graphs).
_GRAPH_MODEL = []
# A model nested in another one's layers is written as Keras writes it ("Sequential" / "Functional").
layers_mod.base._MODEL_LAYERS.update(Sequential=_model_layer, Functional=_model_layer)

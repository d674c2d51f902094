"""Saving and loading models in Keras 3's own file formats.

``model.save('m.keras')`` writes what Keras 3 writes: a zip archive holding

* ``metadata.json``: ``{"keras_version": ..., "date_saved": ...}``;
* ``config.json``: the model in Keras's serialization format
  (``{"module": "keras", "class_name": "Sequential", "config": {...},
  "build_config": {...}, "compile_config": {...}}``, each layer as
  ``{"module": "keras.layers", "class_name": "Dense", "config": {...}}``);
* ``model.weights.h5`` (HDF5, written with h5py): each layer's weights under
  ``layers/<name>/vars/<i>``, where ``<name>`` is the snake-case class name made
  unique in model order (``dense``, ``dense_1``, ``dropout``, ...: Keras does
  not use the layer's own name), and the optimizer's variables under
  ``optimizer/vars/<i>`` in Keras's order: ``iterations``, ``learning_rate``
  (a float learning rate only), then the state slots.

``model.save_weights('w.weights.h5')`` writes that HDF5 file alone. So a
model trained with gradsmith loads in Keras 3 (``keras.saving.load_model``)
and a Sequential model of Dense / Dropout / Activation / Flatten layers saved
by Keras 3 loads in gradsmith, with the same predictions.

This module holds the file format only: each layer describes itself
(``get_config`` / ``from_config``, gradsmith.layers), the model its layers
(``Sequential.get_config``) and its compile arguments (``get_compile_config``
/ ``compile_from_config``); here they are wrapped in Keras's archive. The
model classes ``load_model`` can rebuild register themselves with
``register_model_class`` (gradsmith.models does), so this module never
imports the models.

Every file is written to a temporary name beside its destination and renamed
into place, so a crash mid-save never leaves a broken file. Loading reads and
checks the whole file before assigning anything: a truncated, corrupt or
mismatched file raises ``ValueError`` naming the file and the problem, and the
model is left as it was.
"""
import datetime
import io
import json
import os
import re
import tempfile
import warnings
import zipfile

import numpy as np

from gradsmith import optimizers
from gradsmith._version import __version__
from gradsmith.layers.base import _REGISTRY, _keras_object

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "register_model_class"]

_CONFIG = "config.json"
_METADATA = "metadata.json"
_WEIGHTS = "model.weights.h5"
# The Keras file format these files follow (written to metadata.json, read by no loader).
_KERAS_FORMAT_VERSION = "3.0.0"
# The model classes load_model rebuilds, by the class_name Keras writes ("Sequential").
_MODEL_CLASSES = {}


def register_model_class(cls, class_name=None):
    """Let ``load_model`` rebuild files whose model is a ``class_name`` (default: the class's name) with
    ``cls.from_config``; models of ``cls`` (and its subclasses) are saved under that name."""
    _MODEL_CLASSES[class_name or cls.__name__] = cls
    return cls


def _h5py():
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency
        raise ImportError("saving and loading models needs the h5py package: pip install h5py") from None
    return h5py


# =========================================================================== saving
def save_model(model, filepath, overwrite=True):
    """Save architecture, weights, compile configuration and optimizer state to a Keras 3 ``.keras``
    file, written atomically."""
    filepath = os.fspath(filepath)
    if not str(filepath).endswith(".keras"):
        raise ValueError(f"Invalid `filepath` argument: expected a `.keras` extension. Received: filepath={filepath}")
    model._require_built("save")
    config = _model_config(model)  # raises before anything is written
    metadata = {"keras_version": _KERAS_FORMAT_VERSION,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                "saved_by": f"gradsmith {__version__}"}
    weights = _h5_bytes(model)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # member order and storage as Keras
        zf.writestr(_METADATA, json.dumps(metadata))
        zf.writestr(_CONFIG, json.dumps(config, default=_json_default))
        zf.writestr(_WEIGHTS, weights)
    _atomic_write(filepath, buf.getvalue(), overwrite)


def save_weights(model, filepath, overwrite=True):
    """Save the weights (and the optimizer's variables) to a Keras 3 ``.weights.h5`` file, written
    atomically."""
    filepath = os.fspath(filepath)
    if not str(filepath).endswith(".weights.h5"):
        raise ValueError(f"The filename must end in `.weights.h5`. Received: filepath={filepath}")
    model._require_built("save_weights")
    _atomic_write(filepath, _h5_bytes(model), overwrite)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot save {type(obj).__name__} in a model config")


def _atomic_write(path, data, overwrite=True):
    """Write to a temporary file beside ``path`` and rename it into place: a reader sees the old file or
    the new one, never half of one. On any failure the temporary file is removed."""
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists and overwrite=False")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# --------------------------------------------------------------------------- config.json


def _class_name_of(model):
    for name, cls in _MODEL_CLASSES.items():
        if isinstance(model, cls):
            return name
    raise ValueError(f"cannot save a {type(model).__name__}: the Keras file format holds "
                     f"{', '.join(_MODEL_CLASSES) or 'no'} models")


def _model_config(model):
    """config.json's content: Keras 3's serialization of the model, from its own get_config."""
    config = model.get_config()
    for entry in config["layers"]:
        if entry.get("registered_name") is not None:
            raise ValueError(f"cannot save layer {entry['config'].get('name')!r} of class {entry['class_name']}: the "
                             "Keras file format holds gradsmith's built-in layers "
                             f"({', '.join(sorted(_REGISTRY))})")
    out = _keras_object("keras", _class_name_of(model), config)
    out["build_config"] = model.get_build_config()
    if model.compiled:
        out["compile_config"] = model.get_compile_config()
    return out


# --------------------------------------------------------------------------- model.weights.h5
def _to_snake_case(name):
    """keras.src.utils.naming.to_snake_case."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _layer_paths(model):
    """[(h5 group name, layer)]: Keras names each layer's group after its class, made unique in order."""
    used, out = {}, []
    for layer in model._layers:
        name = _to_snake_case(type(layer).__name__)
        if name in used:
            used[name] += 1
            name = f"{name}_{used[name]}"
        else:
            used[name] = 0
        out.append((name, layer))
    return out


def _slot_groups(optimizer):
    """The optimizer's state slots in Keras's creation order: a list of groups; the slots of one group
    are interleaved per variable (Adam: momentum, velocity of variable 0, then of variable 1, ...), the
    groups follow one another. Keras creates the EMA averages, then the gradient accumulators (in the
    base optimizer's build), then the optimizer's own slots."""
    kinds = [k for k, _ in optimizer._all_slot_kinds()]
    base = [k for k in ("average", "gradient_accumulator") if k in kinds]
    own = [k for k in kinds if k not in base]
    groups = [(k,) for k in base]
    if isinstance(optimizer, optimizers.Adam) and own[:2] == ["momentum", "velocity"]:
        groups.append(("momentum", "velocity"))
        own = own[2:]
    return groups + [(k,) for k in own]


def _has_lr_variable(optimizer):
    lr = optimizer._learning_rate
    return not (isinstance(lr, optimizers.schedules.LearningRateSchedule) or callable(lr))


def _optimizer_layout(optimizer, shapes):
    """[(what, shape)] of Keras's ``optimizer.variables``: ('iterations', ()), ('learning_rate', ()),
    then (('slot', kind, i), shape of variable i) for the built optimizer."""
    head = [("iterations", ())] + ([("learning_rate", ())] if _has_lr_variable(optimizer) else [])
    slots = [(("slot", kind, i), shape) for group in _slot_groups(optimizer)
             for i, shape in enumerate(shapes) for kind in group]
    return head, slots


def _optimizer_variables(model):
    optimizer = model.optimizer
    iterations = int(optimizer._iterations)
    out = [np.array(iterations, np.int32 if iterations < 2**31 else np.int64)]
    if _has_lr_variable(optimizer):
        out.append(np.array(optimizer._learning_rate, np.float32))
    if optimizer.built and optimizer._slots:
        shapes = [tuple(s) for s in optimizer._shapes]
        _, slots = _optimizer_layout(optimizer, shapes)
        for (_, kind, i), _ in slots:
            out.append(optimizer._slots[kind][1][i])
    return out


def _h5_bytes(model):
    """The model's weights (and its optimizer's variables) as Keras 3 lays them out in HDF5."""
    h5py = _h5py()
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        layers = f.create_group("layers")
        for path, layer in _layer_paths(model):
            group = layers.create_group(path).create_group("vars")
            group.attrs["name"] = layer.name
            for i, w in enumerate(layer._weights):
                group.create_dataset(str(i), data=np.asarray(w.value, np.float32))
        if model.optimizer is not None:
            group = f.create_group("optimizer").create_group("vars")
            group.attrs["name"] = model.optimizer.name
            for i, value in enumerate(_optimizer_variables(model)):
                group.create_dataset(str(i), data=value)
        f.create_group("vars").attrs["name"] = model.name
    return buf.getvalue()


# =========================================================================== loading
class _Weights:
    """Everything read from a model.weights.h5: {group name: [arrays]} for the layers, the optimizer's
    variables (or None when the file has none)."""

    def __init__(self, layers, optimizer):
        self.layers = layers
        self.optimizer = optimizer


def _read_h5(data, filepath):
    """Read every array of a Keras weights file (bytes) into memory, checking its structure."""
    h5py = _h5py()
    try:
        f = h5py.File(io.BytesIO(data), "r")
    except Exception as e:  # h5py raises OSError for a file that is not (or no longer) HDF5
        raise ValueError(f"{filepath}: the weights are not a readable HDF5 file (truncated or corrupt?): {e}") \
            from None
    try:
        with f:
            layers = {}
            if "layers" in f:
                group = f["layers"]
                if not isinstance(group, h5py.Group):
                    raise ValueError("'layers' is not a group")
                for name in group:
                    layers[name] = _read_vars(group[name], f"layers/{name}", h5py)
            optimizer = _read_vars(f["optimizer"], "optimizer", h5py) if "optimizer" in f else None
    except ValueError as e:
        raise ValueError(f"{filepath}: unexpected layout of the weights file: {e}") from None
    except Exception as e:  # corrupt data blocks surface as OSError / KeyError / RuntimeError
        raise ValueError(f"{filepath}: cannot read the weights (truncated or corrupt?): "
                         f"{type(e).__name__}: {e}") from None
    return _Weights(layers, optimizer)


def _read_vars(group, path, h5py):
    if not isinstance(group, h5py.Group):
        raise ValueError(f"{path!r} is not a group")
    if "vars" not in group:
        return []
    vars_ = group["vars"]
    if not isinstance(vars_, h5py.Group):
        raise ValueError(f"'{path}/vars' is not a group")
    keys = list(vars_.keys())
    if sorted(keys, key=lambda k: (len(k), k)) != [str(i) for i in range(len(keys))]:
        raise ValueError(f"'{path}/vars' holds {sorted(keys)}, expected datasets named 0..{len(keys) - 1}")
    out = []
    for i in range(len(keys)):
        ds = vars_[str(i)]
        if not isinstance(ds, h5py.Dataset):
            raise ValueError(f"'{path}/vars/{i}' is not a dataset")
        if ds.attrs.get("dtype") == "bfloat16" or ds.dtype.kind not in "biuf":
            raise ValueError(f"'{path}/vars/{i}' has dtype {ds.attrs.get('dtype', ds.dtype)}; gradsmith reads "
                             "numeric (float32) weights")
        out.append(np.array(ds[()]))
    return out


def _match_layer_weights(model, weights, filepath):
    """The arrays for model.set_weights, in model order, after checking every layer's count and shapes."""
    arrays, used = [], set()
    for path, layer in _layer_paths(model):
        saved = weights.layers.get(path)
        if saved is None:
            if layer._weights:
                raise ValueError(f"{filepath}: the file has no weights for layer {layer.name!r} "
                                 f"({type(layer).__name__}, stored as 'layers/{path}'); it holds "
                                 f"{sorted(weights.layers) or 'no layers'}")
            continue
        used.add(path)
        if len(saved) != len(layer._weights):
            raise ValueError(f"{filepath}: layer {layer.name!r} ({type(layer).__name__}) has "
                             f"{len(layer._weights)} weights, the file has {len(saved)} at 'layers/{path}'")
        for i, (w, a) in enumerate(zip(layer._weights, saved)):
            if a.shape != w.shape:
                raise ValueError(f"{filepath}: weight {w.name!r} has shape {w.shape}, the file's "
                                 f"'layers/{path}/vars/{i}' has shape {a.shape}")
            arrays.append(a)
    extra = sorted(p for p in weights.layers if p not in used and weights.layers[p])
    if extra:
        raise ValueError(f"{filepath}: the file has weights for layers the model does not have: {extra} "
                         f"(the model's layers are stored as {[p for p, _ in _layer_paths(model)]})")
    return arrays


def _match_optimizer_state(model, saved, filepath):
    """The optimizer's saved variables as a ``set_state`` dict, checked against the layout this
    optimizer has (built: for the variables it was built with; not built: for the model's trainable
    weights, or for all its weights when layers were frozen after the optimizer was built). Returns
    (state, variables to build the optimizer on, or None); raises ValueError when nothing fits."""
    optimizer = model.optimizer
    if optimizer.built:
        candidates = [(None, [tuple(s) for s in optimizer._shapes])]
    else:
        trainable = [w.value for w in model._trainable()]
        every = [w.value for w in model._all_weights() if w.trainable]
        candidates = [(trainable, [w.shape for w in trainable])]
        if len(every) != len(trainable):
            candidates.append((every, [w.shape for w in every]))
    layout = None
    for variables, shapes in candidates:
        head, slots = _optimizer_layout(optimizer, shapes)
        if slots and len(saved) == len(head) + len(slots):
            layout, build_on = head + slots, variables
            break
    else:
        if len(saved) == len(head) and not (optimizer.built and optimizer._slots):
            layout, build_on, shapes = head, None, []
    if layout is None:
        if len(saved) == len(head):
            raise ValueError(f"{filepath}: the file holds the state of an optimizer that never took a step "
                             f"({len(saved)} variables); this model's optimizer has taken steps")
        raise ValueError(f"{filepath}: the saved optimizer has {len(saved)} variables, this model's "
                         f"{type(optimizer).__name__} has {len(head) + len(slots)} (or {len(head)} before "
                         "its first step)")
    state, slot_parts = {}, {}
    for j, ((what, shape), value) in enumerate(zip(layout, saved)):
        if value.shape != tuple(shape):
            raise ValueError(f"{filepath}: optimizer variable {j} ({_describe(what)}) has shape {value.shape} "
                             f"in the file, expected {tuple(shape)}")
        if what == "iterations":
            if value.dtype.kind not in "iu" or int(value) < 0:
                raise ValueError(f"{filepath}: optimizer iterations must be a non-negative integer, got {value!r}")
            state["iterations"] = np.array(int(value), np.int64)
        elif what == "learning_rate":
            if not np.isfinite(value):
                raise ValueError(f"{filepath}: the saved learning rate is {value!r}")
            state["learning_rate"] = np.array(value, np.float32)
        else:
            _, kind, i = what
            slot_parts.setdefault(kind, {})[i] = np.asarray(value, np.float32).reshape(-1)
    for kind, parts in slot_parts.items():
        state["slot_" + kind] = np.concatenate([parts[i] for i in range(len(shapes))])
    return state, build_on


def _describe(what):
    return what if isinstance(what, str) else f"{what[1]} of trainable weight {what[2]}"


def _apply_optimizer_state(model, state, build_on):
    optimizer = model.optimizer
    if build_on is not None and not optimizer.built:
        optimizer.build(build_on)
    optimizer.set_state(state)


# --------------------------------------------------------------------------- reading files
def _read_keras_zip(filepath):
    """(config dict, weights bytes) of a .keras file, or a ValueError saying what is wrong."""
    if not os.path.exists(filepath):
        raise ValueError(f"File not found: filepath={filepath}. Please ensure the file is an accessible "
                         "`.keras` zip file.")
    if not zipfile.is_zipfile(filepath):
        raise ValueError(f"{filepath}: not a valid `.keras` file: it is not a zip archive (truncated or corrupt?)")
    try:
        with zipfile.ZipFile(filepath) as zf:
            names = zf.namelist()
            missing = [n for n in (_CONFIG, _WEIGHTS) if n not in names]
            if missing:
                hint = " (model.weights.npz is not supported; save with h5 weights)" if \
                    "model.weights.npz" in names else ""
                raise ValueError(f"{filepath}: not a Keras 3 `.keras` file: it has no {' or '.join(missing)} "
                                 f"(it holds {names}){hint}")
            config_bytes = zf.read(_CONFIG)
            weights = zf.read(_WEIGHTS)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError) as e:
        raise ValueError(f"{filepath}: the zip archive is corrupt or truncated: {e}") from None
    try:
        config = json.loads(config_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{filepath}: config.json is not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{filepath}: config.json does not hold a model configuration")
    if config.get("format") == "gradsmith.keras":
        raise ValueError(f"{filepath} was written by gradsmith before it used Keras 3's file format; load it "
                         "with that gradsmith version and save it again")
    return config, weights


def _read_weights_file(filepath):
    """The weights of a ``.weights.h5`` file or of a ``.keras`` archive."""
    if filepath.endswith(".keras"):
        _, data = _read_keras_zip(filepath)
    elif filepath.endswith(".weights.h5"):
        if not os.path.exists(filepath):
            raise ValueError(f"File not found: filepath={filepath}")
        with open(filepath, "rb") as f:
            data = f.read()
    else:
        raise ValueError(f"File format not supported: filepath={filepath}. gradsmith supports Keras 3 "
                         "`.keras` files and `.weights.h5` files (legacy H5 `.h5` files are not supported).")
    return _read_h5(data, filepath)


def load_weights(model, filepath):
    """Load the weights saved by ``save_weights`` (a ``.weights.h5`` file) or ``save`` (a ``.keras``
    file), by Keras 3 or gradsmith, and the optimizer's variables when the file has them and they fit
    the model's optimizer (otherwise they are skipped with a warning, as Keras does). Everything is
    checked first: on any error the model is left as it was."""
    filepath = os.fspath(filepath)
    weights = _read_weights_file(filepath)
    model._require_built("load_weights")
    arrays = _match_layer_weights(model, weights, filepath)
    state = None
    if model.optimizer is not None and weights.optimizer:
        try:
            state = _match_optimizer_state(model, weights.optimizer, filepath)
        except ValueError as e:
            warnings.warn(f"Skipping variable loading for optimizer {model.optimizer.name!r}: {e}", stacklevel=3)
    model.set_weights(arrays)
    if state is not None:
        _apply_optimizer_state(model, *state)


def load_model(filepath, compile=True):
    """Load a model from a Keras 3 ``.keras`` file (written by gradsmith or Keras): architecture,
    weights and, with ``compile``, the compile configuration and optimizer state."""
    filepath = os.fspath(filepath)
    if not filepath.endswith(".keras"):
        raise ValueError(f"File format not supported: filepath={filepath}. gradsmith's load_model reads Keras 3 "
                         "`.keras` files (legacy H5 `.h5` files and SavedModel directories are not supported).")
    config, data = _read_keras_zip(filepath)
    weights = _read_h5(data, filepath)
    model = _model_from_config(config, filepath)
    model.set_weights(_match_layer_weights(model, weights, filepath))
    compile_config = config.get("compile_config")
    if compile and compile_config:
        _compile_from_config(model, compile_config, filepath)
        if model.optimizer is not None and weights.optimizer:
            _apply_optimizer_state(model, *_match_optimizer_state(model, weights.optimizer, filepath))
    return model


# --------------------------------------------------------------------------- Keras config -> gradsmith
def _model_from_config(config, filepath):
    """The model of config.json, built by its class's from_config (registered with register_model_class)."""
    class_name = config.get("class_name")
    cls = _MODEL_CLASSES.get(class_name)
    if cls is None:
        raise ValueError(f"{filepath}: the model is a {class_name!r}; gradsmith loads "
                         f"{', '.join(_MODEL_CLASSES)} models only")
    cfg = config.get("config")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
        raise ValueError(f"{filepath}: config.json has no list of layers")
    try:
        model = cls.from_config(cfg)
        build_config = config.get("build_config")
        if not model.built and isinstance(build_config, dict) and build_config.get("input_shape") is not None:
            model.build_from_config(build_config)
    except ValueError as e:
        if str(e).startswith(filepath):
            raise
        raise ValueError(f"{filepath}: cannot rebuild the model: {e}") from None
    except (TypeError, KeyError, NotImplementedError) as e:
        raise ValueError(f"{filepath}: cannot rebuild the model: {type(e).__name__}: {e}") from None
    if not model.built:
        raise ValueError(f"{filepath}: the saved model has no input shape")
    return model


def _compile_from_config(model, cc, filepath):
    """``model.compile_from_config(compile_config)``; a config that does not compile names the file."""
    try:
        model.compile_from_config(cc)
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{filepath}: cannot compile the model from its saved compile configuration "
                         f"({type(e).__name__}: {e}); pass compile=False to load the architecture and weights "
                         "only") from None

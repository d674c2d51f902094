"""Saving and loading models in Keras 3's own file formats.

``model.save('m.keras')`` writes what Keras 3 writes: a zip archive holding

* ``metadata.json``: ``{"keras_version": ..., "date_saved": ...}``;
* ``config.json``: the model in Keras's serialization format
  (``{"module": "keras", "class_name": "Sequential", "config": {...},
  "build_config": {...}, "compile_config": {...}}``, each layer as
  ``{"module": "keras.layers", "class_name": "Dense", "config": {...}}``);
* ``model.weights.h5`` (HDF5, written with h5py): each layer's weights under
  ``layers/<name>/vars/<i>`` (a recurrent layer's: ``layers/<name>/cell/vars/<i>``), where ``<name>`` is the snake-case class name made
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

Every file is written to a temporary name beside its destination
(``.gradsmith-tmp-<random>.part``, created with the umask, then given the
replaced file's mode) and renamed into place, so a crash mid-save never leaves
a broken file; temporary files of ours that a killed process left behind (over
``_STALE_TEMP_SECONDS`` old) are removed by the next save into that directory.

Loading treats a file as hostile (README, "Loading files: the contract"): only
regular files are read; no HDF5 link other than a hard link is followed, and
datasets stored outside the file (external or virtual) are refused; every
size is checked before it is read: the archive's entries by their declared
uncompressed size, the model's total size (from config.json) against
``gradsmith.config.get_max_weights()`` before anything is allocated, each
weight's declared shape against the shape the model gives it. So memory stays
within the model's own size plus a small constant. A truncated, corrupt,
hostile or mismatched file raises ``ValueError`` naming the file and the
problem, and the model is left as it was.
"""
import contextlib
import datetime
import io
import json
import lzma
import math
import os
import re
import secrets
import stat
import time
import warnings
import zipfile
import zlib

import numpy as np

from gradsmith import config as config_mod, optimizers
from gradsmith._version import __version__
from gradsmith.layers.base import _MODEL_LAYERS, _REGISTRY, _keras_object

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "register_model_class"]

_CONFIG = "config.json"
_METADATA = "metadata.json"
_WEIGHTS = "model.weights.h5"
# The Keras file format these files follow (written to metadata.json, read by no loader).
_KERAS_FORMAT_VERSION = "3.0.0"
# The model classes load_model rebuilds, by the class_name Keras writes ("Sequential").
_MODEL_CLASSES = {}

# --- limits of what loading reads (README, "Loading files: the contract")
_JSON_LIMIT = 64 * 2**20       # bytes of config.json (Keras writes a few KB per layer)
_ZIP_ENTRIES_LIMIT = 4096      # entries of a .keras archive (Keras writes 3, plus assets)
_ZIP_DIRECTORY_LIMIT = 4 * 2**20  # bytes of its central directory
_H5_MEMBERS_LIMIT = 100_000    # members of one HDF5 group
_H5_STRUCTURE = 16 * 2**20     # bytes of HDF5 structure (groups, headers) a weights entry may hold beyond its data
_H5_PER_WEIGHT = 64 * 2**10    # ... and per weight of the model
_STATE_COPIES = 16             # copies of the weights (optimizer slots, float64 data) a weights entry may hold

# --- temporary files of a save: ".gradsmith-tmp-<16 hex>.part" (short, whatever the target's name)
_TMP_PREFIX = ".gradsmith-tmp-"
_TMP_NAME = re.compile(r"\.gradsmith-tmp-[0-9a-f]{16}\.part\Z")
_STALE_TEMP_SECONDS = 600      # older than this, a temporary file of ours belongs to a killed save


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
    _atomic_write(filepath, _keras_bytes(model, config), overwrite)


def _keras_bytes(model, config=None):
    """The bytes of the model's ``.keras`` file."""
    config = _model_config(model) if config is None else config
    metadata = {"keras_version": _KERAS_FORMAT_VERSION,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                "saved_by": f"gradsmith {__version__}"}
    weights = _h5_bytes(model)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # member order and storage as Keras
        zf.writestr(_METADATA, json.dumps(metadata))
        zf.writestr(_CONFIG, json.dumps(config, default=_json_default))
        zf.writestr(_WEIGHTS, weights)
    return buf.getvalue()


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
    the new one, never half of one. On any failure the temporary file is removed. The new file has the
    mode of the file it replaces, or the umask's default for a new file (0666 & ~umask), as ``open``
    would give it."""
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists and overwrite=False")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    _remove_stale_temp_files(directory, os.path.basename(path))
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode) & 0o777
    except OSError:
        mode = None
    fd, tmp = _create_temp(directory)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
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


def _create_temp(directory):
    """(fd, path) of a new empty file ``.gradsmith-tmp-<16 hex>.part`` in ``directory``: created with mode
    0666 so that the kernel applies the umask (mkstemp's 0600 would not), with a name of 36 characters
    whatever the target's (a target name near NAME_MAX still works)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f"{_TMP_PREFIX}{secrets.token_hex(8)}.part")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file in {directory}")


def _remove_stale_temp_files(directory, target_name):
    """Remove the temporary files a killed save left in ``directory``: regular files owned by this user,
    named as ours (or as earlier gradsmith versions named them for ``target_name``:
    ``.tmp-<8 characters>-<name>``), untouched for ``_STALE_TEMP_SECONDS`` (a save in progress writes its
    file within moments of creating it)."""
    legacy = re.compile(r"\.tmp-[a-z0-9_]{8}-" + re.escape(target_name) + r"\Z")
    now, uid = time.time(), os.getuid() if hasattr(os, "getuid") else None
    try:
        entries = os.scandir(directory)
    except OSError:
        return
    with entries:
        for entry in entries:
            if not (_TMP_NAME.match(entry.name) or legacy.match(entry.name)):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) and (uid is None or st.st_uid == uid) and \
                        now - st.st_mtime > _STALE_TEMP_SECONDS:
                    os.unlink(entry.path)
            except OSError:  # gone already, or not ours to remove
                pass


# --------------------------------------------------------------------------- config.json


def _class_name_of(model):
    """The registered class nearest to the model's own in its MRO (a Functional is also a Sequential)."""
    for base in type(model).__mro__:
        for name, cls in _MODEL_CLASSES.items():
            if base is cls:
                return name
    raise ValueError(f"cannot save a {type(model).__name__}: the Keras file format holds "
                     f"{', '.join(_MODEL_CLASSES) or 'no'} models")


def _check_saveable(entries):
    """Every layer entry, nested models' included, must be one Keras can rebuild: a built-in layer, or a
    Sequential / Functional model (Keras writes the latter with registered_name "Functional")."""
    for entry in entries:
        if entry.get("class_name") in _MODEL_LAYERS and str(entry.get("module")).startswith("keras"):
            _check_saveable(entry["config"]["layers"])
        elif entry.get("registered_name") is not None:
            raise ValueError(f"cannot save layer {entry['config'].get('name')!r} of class {entry['class_name']}: the "
                             "Keras file format holds gradsmith's built-in layers "
                             f"({', '.join(sorted(_REGISTRY))}) and Sequential / functional models of them")


def _model_config(model):
    """config.json's content: Keras 3's serialization of the model, from its own get_config."""
    config = model.get_config()
    _check_saveable(config["layers"])
    name = _class_name_of(model)
    out = _keras_object("keras", name, config)
    if name == "Functional":  # as Keras writes a functional model
        out.update(module="keras.src.models.functional", registered_name="Functional")
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
    """[(h5 group name, layer)]: Keras names each layer's group after its class ("Functional" for a functional
    model used as a layer), made unique in order. A nested model's layers are under ``<its group>/layers``."""
    used, out = {}, []
    for layer in model._layers:
        name = _to_snake_case(vars(type(layer)).get("_keras_class_name", type(layer).__name__))
        if name in used:
            used[name] += 1
            name = f"{name}_{used[name]}"
        else:
            used[name] = 0
        out.append((name, layer))
    return out


def _has_lr_variable(optimizer):
    lr = optimizer._learning_rate
    return not (isinstance(lr, optimizers.schedules.LearningRateSchedule) or callable(lr))


def _optimizer_layout(optimizer, shapes):
    """[(what, shape)] of Keras's ``optimizer.variables``: ('iterations', ()), ('learning_rate', ()),
    then (('slot', kind, i), shape of variable i) for the built optimizer."""
    head = [("iterations", ())] + ([("learning_rate", ())] if _has_lr_variable(optimizer) else [])
    slots = [(("slot", kind, i), shape) for group in optimizer._slot_groups()
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
        _write_layers(f, model)
        if model.optimizer is not None:
            _write_optimizer(f, model)
        f.create_group("vars").attrs["name"] = model.name
    return buf.getvalue()


def _write_optimizer(parent, model):
    group = parent.create_group("optimizer").create_group("vars")
    group.attrs["name"] = model.optimizer.name
    for i, value in enumerate(_optimizer_variables(model)):
        group.create_dataset(str(i), data=value)


def _write_layers(parent, model):
    """``<parent>/layers/<path>/vars/<i>`` for each layer; a nested model's layers under
    ``<parent>/layers/<path>/layers/...`` and an empty ``vars`` of its own, as Keras's saving_lib."""
    layers = parent.create_group("layers")
    for path, layer in _layer_paths(model):
        group = layers.create_group(path)
        if getattr(layer, "_is_model", False):
            _write_layers(group, layer)
            if layer.optimizer is not None:  # a compiled inner model's own optimizer, as Keras writes it
                _write_optimizer(group, layer)
            group.create_group("vars").attrs["name"] = layer.name
            continue
        _write_layer_weights(group, layer)


def _write_layer_weights(group, layer):
    """A layer's ``vars``; a recurrent layer's under its ``cell``, a wrapper's (Bidirectional, TimeDistributed)
    under each wrapped layer's group (``_h5_sublayers``), as Keras writes them."""
    wrapped = getattr(layer, "_h5_sublayers", None)
    sub = getattr(layer, "_weights_group", None)  # a recurrent layer's weights live under its cell
    if wrapped or sub is not None:
        group.create_group("vars").attrs["name"] = layer.name
    if wrapped:
        for name, inner in wrapped:
            _write_layer_weights(group.create_group(name), inner)
        return
    if sub is not None:
        group = group.create_group(sub)
    group = group.create_group("vars")
    group.attrs["name"] = layer.name
    for i, w in enumerate(layer._weights):
        # float32, int8 for a quantized layer's kernel, or the int32 a Keras variable is (h5_dtype)
        group.create_dataset(str(i), data=np.asarray(w.value, w.h5_dtype or w.dtype))


# =========================================================================== loading
class _Weights:
    """The checked structure of a model.weights.h5, nothing read yet: {group name: [h5py datasets]} for
    the layers, the optimizer's datasets (or None when the file has none). Valid while the file is open."""

    def __init__(self, layers, optimizer):
        self.layers = layers
        self.optimizer = optimizer


class _LayerGroup(list):
    """The checked datasets of ``<path>/vars`` of one layer's group, its ``layers`` subgroup (a nested
    model's layers, read only when the model has a nested model there) or None, and the checked datasets
    of its ``optimizer/vars`` (a compiled nested model's optimizer) or None."""

    def __init__(self, datasets, sublayers, path, optimizer):
        super().__init__(datasets)
        self.sublayers, self.path, self.optimizer = sublayers, path, optimizer


def _layer_groups(group, path, h5py):
    """{name: _LayerGroup} of the layer groups under ``group`` (at ``path`` in the file)."""
    out = {}
    for name in _names(group, path, h5py):
        member = _member(group, name, f"{path}/{name}", h5py, group=True)
        optimizer = _member(member, "optimizer", f"{path}/{name}/optimizer", h5py, group=True)
        datasets = _layer_datasets(member, f"{path}/{name}", h5py)
        out[name] = _LayerGroup(datasets,
                                _member(member, "layers", f"{path}/{name}/layers", h5py, group=True),
                                f"{path}/{name}/layers",
                                None if optimizer is None else _vars(optimizer, f"{path}/{name}/optimizer", h5py))
    return out


# Where Keras keeps the weights of the layers inside a layer, in its order: a wrapper's (Bidirectional: forward,
# then backward; TimeDistributed: layer), then a recurrent layer's cell.
_INNER_GROUPS = ("forward_layer", "backward_layer", "layer", "cell")


def _layer_datasets(member, path, h5py, depth=0):
    """The datasets of one layer's group: its own ``vars``, else those of the groups inside it that hold a
    layer's weights (``_INNER_GROUPS``, in that order, at most three deep)."""
    datasets = _vars(member, path, h5py)
    if datasets or depth >= 3:
        return datasets
    for inner in _INNER_GROUPS:
        group = _member(member, inner, f"{path}/{inner}", h5py, group=True)
        if group is not None:
            datasets = datasets + _layer_datasets(group, f"{path}/{inner}", h5py, depth + 1)
    return datasets


@contextlib.contextmanager
def _h5_errors(filepath, what="cannot read the weights (truncated or corrupt?)"):
    """Whatever h5py raises on a broken file (OSError, KeyError, RuntimeError, TypeError, ...) becomes a
    ValueError naming the file; a ValueError of ours passes as it is."""
    try:
        yield
    except ValueError as e:
        if str(e).startswith(filepath):
            raise
        raise ValueError(f"{filepath}: {what}: {e}") from None
    except (OSError, LookupError, RuntimeError, TypeError, AttributeError, ArithmeticError, SystemError) as e:
        raise ValueError(f"{filepath}: {what}: {type(e).__name__}: {e}") from None


@contextlib.contextmanager
def _open_h5(source, filepath):
    """The HDF5 file of ``source`` (a file object), opened read-only, then its checked structure."""
    h5py = _h5py()
    try:
        f = h5py.File(source, "r")
    except Exception as e:  # h5py raises OSError for a file that is not (or no longer) HDF5
        raise ValueError(f"{filepath}: the weights are not a readable HDF5 file (truncated or corrupt?): {e}") \
            from None
    try:
        with _h5_errors(filepath, "unexpected layout of the weights file"):
            group = _member(f, "layers", "layers", h5py, group=True)
            layers = {} if group is None else _layer_groups(group, "layers", h5py)
            optimizer = _member(f, "optimizer", "optimizer", h5py, group=True)
            optimizer = None if optimizer is None else _vars(optimizer, "optimizer", h5py)
        with _h5_errors(filepath):
            yield _Weights(layers, optimizer)
    finally:
        try:
            f.close()
        except Exception:  # closing a corrupt file may complain again; nothing is left to read
            pass


def _names(group, path, h5py):
    n = len(group)
    if n > _H5_MEMBERS_LIMIT:
        raise ValueError(f"'{path}' has {n:,} members, more than the {_H5_MEMBERS_LIMIT:,} a weights file may hold")
    return list(group.keys())


def _member(parent, name, path, h5py, group):
    """``parent[name]`` when it is there (else None), after checking that it is a hard link (a soft or
    external link could point anywhere, in this file or another one: never followed) to a group or a
    dataset as asked."""
    link = parent.get(name, getlink=True)
    if link is None:
        return None
    if not isinstance(link, h5py.HardLink):
        raise ValueError(f"'{path}' is a {type(link).__name__}; gradsmith follows no links in a weights file")
    obj = parent[name]
    kind = h5py.Group if group else h5py.Dataset
    if not isinstance(obj, kind):
        raise ValueError(f"'{path}' is not a {'group' if group else 'dataset'}")
    return obj


def _vars(group, path, h5py):
    """The datasets of ``<path>/vars``, named 0..n-1, each checked (_check_dataset); nothing read."""
    vars_ = _member(group, "vars", f"{path}/vars", h5py, group=True)
    if vars_ is None:
        return []
    keys = _names(vars_, f"{path}/vars", h5py)
    if sorted(keys, key=lambda k: (len(k), k)) != [str(i) for i in range(len(keys))]:
        raise ValueError(f"'{path}/vars' holds {sorted(keys)[:20]}, expected datasets named 0..{len(keys) - 1}")
    return [_check_dataset(_member(vars_, str(i), f"{path}/vars/{i}", h5py, group=False), f"{path}/vars/{i}", h5py)
            for i in range(len(keys))]


def _check_dataset(ds, path, h5py):
    """A weight's dataset may be read only when its data lie in this file (not external, not virtual),
    it is numeric, and its declared size is within the model size limit."""
    plist = ds.id.get_create_plist()
    layout = plist.get_layout()
    if layout == h5py.h5d.VIRTUAL:
        raise ValueError(f"'{path}' is a virtual dataset (its data would come from other files or datasets); "
                         "gradsmith, like Keras, loads only data stored in the file itself")
    if plist.get_external_count() > 0:
        raise ValueError(f"'{path}' has external storage (its data would be read from another file on this "
                         "machine); gradsmith, like Keras, loads only data stored in the file itself")
    if ds.attrs.get("dtype") == "bfloat16" or ds.dtype.kind not in "biuf":
        raise ValueError(f"'{path}' has dtype {ds.attrs.get('dtype', ds.dtype)}; gradsmith reads numeric (float32) "
                         "weights")
    if ds.shape is None:
        raise ValueError(f"'{path}' is an empty (null) dataset")
    size, limit = math.prod(ds.shape), config_mod.get_max_weights()
    if size > limit:
        raise ValueError(f"'{path}' declares shape {ds.shape} ({size:,} values), more than the limit of {limit:,} "
                         "values (raise it with max_weights= or gradsmith.config.set_max_weights)")
    if layout == h5py.h5d.CHUNKED:  # a chunk is read (and decompressed) whole: no bigger than the data
        chunk = math.prod(plist.get_chunk()) * ds.dtype.itemsize
        if chunk > max(size * ds.dtype.itemsize, 2**20):
            raise ValueError(f"'{path}' has chunks of {chunk:,} bytes for {size:,} values")
    return ds


def _read(ds):
    """The data of a checked dataset whose shape matched: the only place a weights file's data is read."""
    return np.array(ds[()])


def _match_layer_weights(model, weights, filepath, nested_states=None):
    """The arrays for model.set_weights, in model order: every layer's count and declared shapes are
    checked before any data is read. ``nested_states`` (a list) receives (nested model, its optimizer's
    state) for each compiled nested model whose optimizer's variables the file holds and fit, as Keras
    loads them (``_apply_optimizer_state`` them after set_weights); those that do not fit are skipped with
    a warning."""
    pending = []
    _match_groups(model, weights.layers, "layers", filepath, pending, _h5py(), nested_states)
    return [_read(ds) for ds in pending]


def _match_groups(model, groups, where, filepath, pending, h5py, nested_states):
    """The datasets of ``model``'s layers in ``groups`` (the layer groups at ``where``) onto ``pending``, in
    model order; a nested model's from its group's ``layers``."""
    used = set()
    for path, layer in _layer_paths(model):
        saved = groups.get(path)
        nested = getattr(layer, "_is_model", False)
        if saved is None or (nested and saved.sublayers is None):
            if layer._weights:
                raise ValueError(f"{filepath}: the file has no weights for layer {layer.name!r} "
                                 f"({type(layer).__name__}, stored as '{where}/{path}'); it holds "
                                 f"{sorted(groups)[:20] or 'no layers'}")
            continue
        used.add(path)
        if nested:
            _match_groups(layer, _layer_groups(saved.sublayers, saved.path, h5py), saved.path, filepath, pending,
                          h5py, nested_states)
            if nested_states is not None and layer.optimizer is not None and saved.optimizer:
                try:
                    nested_states.append((layer, _match_optimizer_state(layer, saved.optimizer, filepath)))
                except ValueError as e:
                    warnings.warn(f"Skipping variable loading for optimizer {layer.optimizer.name!r} of model "
                                  f"{layer.name!r}: {e}", stacklevel=4)
            continue
        if len(saved) != len(layer._weights):
            raise ValueError(f"{filepath}: layer {layer.name!r} ({type(layer).__name__}) has "
                             f"{len(layer._weights)} weights, the file has {len(saved)} at '{where}/{path}'")
        for i, (w, ds) in enumerate(zip(layer._weights, saved)):
            if tuple(ds.shape) != w.shape:
                raise ValueError(f"{filepath}: weight {w.name!r} has shape {w.shape}, the file's "
                                 f"'{where}/{path}/vars/{i}' has shape {tuple(ds.shape)}")
            pending.append(ds)
    extra = sorted(p for p in groups if p not in used and (groups[p] or groups[p].sublayers is not None and len(groups[p].sublayers)))
    if extra:
        raise ValueError(f"{filepath}: the file has weights for layers the model does not have: {extra[:20]} "
                         f"(the model's layers are stored as {[p for p, _ in _layer_paths(model)]})")


def _match_optimizer_state(model, saved, filepath):
    """The optimizer's saved variables as a ``set_state`` dict, checked against the layout this
    optimizer has (built: for the variables it was built with; not built: for the model's trainable
    weights, or for all its weights when layers were frozen after the optimizer was built). Returns
    (state, variables to build the optimizer on, or None); raises ValueError when nothing fits. Every
    declared shape is checked before any data is read."""
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
    for j, ((what, shape), ds) in enumerate(zip(layout, saved)):
        if tuple(ds.shape) != tuple(shape):
            raise ValueError(f"{filepath}: optimizer variable {j} ({_describe(what)}) has shape {tuple(ds.shape)} "
                             f"in the file, expected {tuple(shape)}")
    state, slot_parts = {}, {}
    for (what, shape), ds in zip(layout, saved):
        value = _read(ds)
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
def _open_regular(filepath, what):
    """The file at ``filepath`` opened for reading, after checking (on the open file) that it is a
    regular file: a device such as /dev/zero, a FIFO or a directory (or a link to one) is refused
    before a byte is read. Opened non-blocking, so that a FIFO cannot hang the open itself."""
    try:
        fd = os.open(filepath, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ValueError(f"File not found: filepath={filepath}. Please ensure the file is an accessible "
                         f"{what}.") from None
    except OSError as e:
        raise ValueError(f"{filepath}: cannot open the file: {e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{filepath}: not a regular file (a device, pipe, socket or directory, or a link to "
                             "one); gradsmith reads models and weights from regular files only")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class _Archive:
    """An open ``.keras`` zip archive whose entries are read with their declared sizes checked first."""

    def __init__(self, zf, filepath):
        self.zf, self.filepath = zf, filepath

    def read(self, name, limit, what):
        """A BytesIO of entry ``name``, refused from its declared uncompressed size when over ``limit``
        (a zip bomb never inflates), and read up to that size only (zipfile stops there and checks the
        CRC), a MiB at a time: zipfile inflates as much as one read asks before cutting it down."""
        info = self.zf.getinfo(name)
        if info.file_size > limit:
            raise ValueError(f"{self.filepath}: {name} declares {info.file_size:,} bytes uncompressed, more than "
                             f"{what} can need ({limit:,} bytes); refusing to inflate it")
        out, left = io.BytesIO(), info.file_size
        with _zip_errors(self.filepath):
            with self.zf.open(info) as entry:
                while left > 0:
                    part = entry.read(min(left, 2**20))
                    if not part:
                        raise EOFError(f"{name} ends {left:,} bytes before its declared size")
                    out.write(part)
                    left -= len(part)
                if entry.read(1):
                    raise ValueError(f"{self.filepath}: {name} inflates past its declared size")
        out.seek(0)
        return out


@contextlib.contextmanager
def _zip_errors(filepath):
    try:
        yield
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError, RuntimeError,
            zlib.error, lzma.LZMAError, LookupError, UnicodeDecodeError, OverflowError, TypeError) as e:
        raise ValueError(f"{filepath}: the zip archive is corrupt or truncated: {type(e).__name__}: {e}") from None


def _check_zip_directory(f, filepath):
    """Refuse an archive whose central directory is bigger than a model file's can be, before zipfile
    reads it into memory (one object per entry)."""
    try:
        end = zipfile._EndRecData(f)
    except (AttributeError, OSError):  # a private helper: no check if this Python lacks it
        return
    if end is None:
        return
    entries, size = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]
    if entries > _ZIP_ENTRIES_LIMIT or size > _ZIP_DIRECTORY_LIMIT:
        raise ValueError(f"{filepath}: the archive lists {entries:,} entries in {size:,} bytes; a `.keras` file "
                         f"holds a handful (at most {_ZIP_ENTRIES_LIMIT:,})")


@contextlib.contextmanager
def _keras_archive(source, filepath):
    """The open archive of a ``.keras`` file (a path, or a file object for bytes in memory), its
    config.json and weights entry present."""
    f = _open_regular(source, "`.keras` zip file") if isinstance(source, str) else source
    try:
        with _zip_errors(filepath):
            if not zipfile.is_zipfile(f):
                raise ValueError(f"{filepath}: not a valid `.keras` file: it is not a zip archive (truncated or "
                                 "corrupt?)")
            f.seek(0)
            _check_zip_directory(f, filepath)
            f.seek(0)
            zf = zipfile.ZipFile(f)
        with zf:
            names = zf.namelist()
            missing = [n for n in (_CONFIG, _WEIGHTS) if n not in names]
            if missing:
                hint = " (model.weights.npz is not supported; save with h5 weights)" if \
                    "model.weights.npz" in names else ""
                raise ValueError(f"{filepath}: not a Keras 3 `.keras` file: it has no {' or '.join(missing)} "
                                 f"(it holds {names[:20]}){hint}")
            yield _Archive(zf, filepath)
    finally:
        if f is not source:
            f.close()


def _read_config(archive):
    """config.json of an archive, parsed and checked to be a model configuration."""
    filepath = archive.filepath
    config_bytes = archive.read(_CONFIG, _JSON_LIMIT, "a model configuration").getvalue()
    try:
        config = json.loads(config_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{filepath}: config.json is not valid JSON: {e}") from None
    except RecursionError:
        raise ValueError(f"{filepath}: config.json is nested too deeply to be a model configuration") from None
    if not isinstance(config, dict):
        raise ValueError(f"{filepath}: config.json does not hold a model configuration")
    if config.get("format") == "gradsmith.keras":
        raise ValueError(f"{filepath} was written by gradsmith before it used Keras 3's file format; load it "
                         "with that gradsmith version and save it again")
    return config


def _weights_entry_limit(model):
    """The most bytes the model.weights.h5 of ``model`` can need: its weights, up to _STATE_COPIES copies
    of them (the optimizer's slots, wider dtypes) and the HDF5 structure around them."""
    n = sum(w.size for w in model._all_weights())
    return 4 * n * (1 + _STATE_COPIES) + _H5_STRUCTURE + _H5_PER_WEIGHT * len(model._all_weights())


def _read_weights_entry(archive, model):
    return archive.read(_WEIGHTS, _weights_entry_limit(model), "the weights of this model")


@contextlib.contextmanager
def _weights_source(filepath, model):
    """A file object over the HDF5 weights of a ``.weights.h5`` file or of a ``.keras`` archive (its
    entry read into memory, bounded by the model's size)."""
    if filepath.endswith(".keras"):
        with _keras_archive(filepath, filepath) as archive:
            _read_config(archive)  # a file of the pre-Keras gradsmith format says so
            source = _read_weights_entry(archive, model)
        yield source
    elif filepath.endswith(".weights.h5"):
        with _open_regular(filepath, "`.weights.h5` file") as f:
            yield f
    else:
        raise ValueError(f"File format not supported: filepath={filepath}. gradsmith supports Keras 3 "
                         "`.keras` files and `.weights.h5` files (legacy H5 `.h5` files are not supported).")


def load_weights(model, filepath, max_weights=None):
    """Load the weights saved by ``save_weights`` (a ``.weights.h5`` file) or ``save`` (a ``.keras``
    file), by Keras 3 or gradsmith, and the optimizer's variables when the file has them and they fit
    the model's optimizer (otherwise they are skipped with a warning, as Keras does). Everything is
    checked first: on any error the model is left as it was. ``max_weights`` raises (or lowers) the
    limit on any dataset's declared size for this call (default ``gradsmith.config.get_max_weights()``)."""
    filepath = os.fspath(filepath)
    model._require_built("load_weights")
    with config_mod.max_weights(max_weights), _weights_source(filepath, model) as source, \
            _open_h5(source, filepath) as weights:
        nested_states = []
        arrays = _match_layer_weights(model, weights, filepath, nested_states)
        state = None
        if model.optimizer is not None and weights.optimizer:
            try:
                state = _match_optimizer_state(model, weights.optimizer, filepath)
            except ValueError as e:
                warnings.warn(f"Skipping variable loading for optimizer {model.optimizer.name!r}: {e}",
                              stacklevel=3)
    model.set_weights(arrays)
    for owner, owner_state in nested_states:
        _apply_optimizer_state(owner, *owner_state)
    if state is not None:
        _apply_optimizer_state(model, *state)


def load_model(filepath, compile=True, max_weights=None):
    """Load a model from a Keras 3 ``.keras`` file (written by gradsmith or Keras): architecture,
    weights and, with ``compile``, the compile configuration and optimizer state. A file whose
    configuration implies more than ``max_weights`` weight values (default
    ``gradsmith.config.get_max_weights()``, 2**31) is refused before anything is allocated."""
    filepath = os.fspath(filepath)
    if not filepath.endswith(".keras"):
        raise ValueError(f"File format not supported: filepath={filepath}. gradsmith's load_model reads Keras 3 "
                         "`.keras` files (legacy H5 `.h5` files and SavedModel directories are not supported).")
    return _load_keras(filepath, filepath, compile, max_weights)


def _load_keras(source, filepath, compile, max_weights):
    with config_mod.max_weights(max_weights):
        with _keras_archive(source, filepath) as archive:
            config = _read_config(archive)
            model = _model_from_config(config, filepath)
            data = _read_weights_entry(archive, model)
        with _open_h5(data, filepath) as weights:
            nested_states = []
            model.set_weights(_match_layer_weights(model, weights, filepath, nested_states))
            for owner, owner_state in nested_states:
                _apply_optimizer_state(owner, *owner_state)
            compile_config = config.get("compile_config")
            if compile and compile_config:
                _compile_from_config(model, compile_config, filepath)
                if model.optimizer is not None and weights.optimizer:
                    _apply_optimizer_state(model, *_match_optimizer_state(model, weights.optimizer, filepath))
    return model


# --------------------------------------------------------------------------- pickle and deepcopy
def _unpickle_model(data):
    """A model from ``_keras_bytes``'s bytes (how ``pickle`` and ``copy.deepcopy`` carry a built model)."""
    return _load_keras(io.BytesIO(data), "<pickled model>", True, None)


# --------------------------------------------------------------------------- Keras config -> gradsmith
def _model_from_config(config, filepath):
    """The model of config.json, built by its class's from_config (registered with register_model_class)."""
    class_name = config.get("class_name")
    cls = _MODEL_CLASSES.get(class_name) if isinstance(class_name, str) else None
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
    except (TypeError, LookupError, AttributeError, ArithmeticError, NotImplementedError, RecursionError) as e:
        # a value of the wrong type somewhere in the config: a ValueError naming the file, like the rest
        raise ValueError(f"{filepath}: cannot rebuild the model: {type(e).__name__}: {e}") from None
    if not model.built:
        raise ValueError(f"{filepath}: the saved model has no input shape")
    return model


def _compile_from_config(model, cc, filepath):
    """``model.compile_from_config(compile_config)``; a config that does not compile names the file."""
    try:
        if not isinstance(cc, dict):
            raise ValueError(f"compile_config must be a dict, got {type(cc).__name__}")
        model.compile_from_config(cc)
    except (ValueError, TypeError, LookupError, AttributeError, ArithmeticError, NotImplementedError,
            RecursionError) as e:
        raise ValueError(f"{filepath}: cannot compile the model from its saved compile configuration "
                         f"({type(e).__name__}: {e}); pass compile=False to load the architecture and weights "
                         "only") from None

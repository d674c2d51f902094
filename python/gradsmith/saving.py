"""Saving and loading models (``model.save``, ``gradsmith.models.load_model``, ``save_weights``).

A ``.keras`` file is a zip archive holding the architecture and compile
configuration (JSON), the weights and the optimizer state. Every file is
written to a temporary name beside its destination and renamed into place,
so a crash mid-save never leaves a broken file.
"""
import io
import json
import os
import tempfile
import zipfile

import numpy as np

__all__ = ["save_model", "load_model", "save_weights", "load_weights"]


def save_model(model, filepath, overwrite=True):
    """Save architecture, weights, compile configuration and optimizer state to a ``.keras`` file
    (a zip archive), written atomically."""
    filepath = os.fspath(filepath)
    if not filepath.endswith(".keras"):
        raise ValueError(f"model.save: the file name must end in .keras, got {filepath!r}")
    model._require_built("save")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        meta = {"format": "gradsmith.keras", "version": 1, "class_name": "Sequential",
                "config": model.get_config(), "compile_config": model._compile_config}
        zf.writestr("config.json", json.dumps(meta, default=_json_default))
        zf.writestr("model.weights.npz", _npz_bytes({f"w{i}": w for i, w in enumerate(model.get_weights())}))
        state = getattr(model.optimizer, "get_state", None)
        if callable(state) and getattr(model.optimizer, "iterations", 0):
            zf.writestr("optimizer.npz", _npz_bytes(state()))
    _atomic_write(filepath, buf.getvalue(), overwrite)

def save_weights(model, filepath, overwrite=True):
    """Save the weights (NumPy .npz content) to ``filepath``, written atomically."""
    model._require_built("save_weights")
    data = _npz_bytes({f"w{i}": w for i, w in enumerate(model.get_weights())})
    _atomic_write(os.fspath(filepath), data, overwrite)

def load_weights(model, filepath):
    filepath = os.fspath(filepath)
    if filepath.endswith(".keras"):
        with zipfile.ZipFile(filepath) as zf:
            data = zf.read("model.weights.npz")
    else:
        with open(filepath, "rb") as f:
            data = f.read()
    with np.load(io.BytesIO(data)) as npz:
        weights = [npz[f"w{i}"] for i in range(len(npz.files))]
    model.set_weights(weights)



def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot save {type(obj).__name__} in a model config")


def _npz_bytes(arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _atomic_write(path, data, overwrite=True):
    """Write to a temporary file beside ``path`` and rename it into place: a reader sees the old file or
    the new one, never half of one."""
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists and overwrite=False")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_model(filepath, compile=True):
    """Load a model saved by ``model.save``: architecture, weights, and (with compile) the compile
    configuration and optimizer state."""
    from gradsmith import losses, optimizers

    with zipfile.ZipFile(os.fspath(filepath)) as zf:
        meta = json.loads(zf.read("config.json"))
        weights_bytes = zf.read("model.weights.npz")
        opt_bytes = zf.read("optimizer.npz") if "optimizer.npz" in zf.namelist() else None
    if meta.get("format") != "gradsmith.keras":
        raise ValueError(f"{filepath} is not a gradsmith model file")
    from gradsmith.models import Sequential

    model = Sequential.from_config(meta["config"])
    if not model.built:
        raise ValueError("the saved model has no input shape")
    with np.load(io.BytesIO(weights_bytes)) as npz:
        model.set_weights([npz[f"w{i}"] for i in range(len(npz.files))])
    cc = meta.get("compile_config")
    if compile and cc:
        optimizer = optimizers.get(cc["optimizer"]) if cc.get("optimizer") else "rmsprop"
        loss = cc.get("loss")
        loss = losses.get(loss) if loss is not None else None
        model.compile(optimizer=optimizer, loss=loss, metrics=cc.get("metrics"), loss_weights=cc.get("loss_weights"))
        if opt_bytes is not None and hasattr(model.optimizer, "set_state"):
            with np.load(io.BytesIO(opt_bytes)) as npz:
                state = {k: npz[k] for k in npz.files}
            trainable = model._trainable()
            model.optimizer.build([w.value for w in trainable])
            model.optimizer.set_state(state)
    return model

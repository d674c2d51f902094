"""gradsmith.config: where models run, and how precisely the GPU multiplies.

    gradsmith.config.set_default_device("cuda")   # or "cuda:1", "cpu"
    with gradsmith.device("cpu"):                  # for a block of code
        model.compile(optimizer="adam", loss="mse")
    model.compile(..., device="cuda:0")            # or for one model

    gradsmith.config.set_matmul_precision("tf32")  # "highest" (default), "tf32", "bf16"

A device is 'cpu' or 'cuda' / 'cuda:N'. Asking for CUDA where it cannot be
used raises RuntimeError with the reason (gradsmith.cuda.unavailable_reason()).
The matmul precision applies to the GPU's tensor-core GEMMs; CPU products are
always plain float32.

    gradsmith.config.set_max_weights(2**33)        # the largest model (in float32 values) built or loaded

A model whose weights would exceed ``get_max_weights()`` values (default 2**31,
8 GiB of float32) is refused when it is built, before any of it is allocated;
``load_model`` / ``load_weights`` take ``max_weights=`` for one call.
"""
import contextlib
import contextvars

from gradsmith import _core

__all__ = ["set_default_device", "get_default_device", "parse_device", "device", "set_matmul_precision",
           "get_matmul_precision", "set_max_weights", "get_max_weights"]

DEFAULT_MAX_WEIGHTS = 2**31
_state = {"device": ("cpu", 0), "matmul_precision": "highest", "max_weights": DEFAULT_MAX_WEIGHTS}
# A per-call limit (load_model(..., max_weights=)) that overrides _state["max_weights"] in this thread.
_max_weights_here = contextvars.ContextVar("gradsmith_max_weights", default=None)
_PRECISIONS = _core.kinds.matmul_precisions  # name -> the kernels' number


def parse_device(spec):
    """'cpu' -> ('cpu', 0); 'cuda' -> ('cuda', 0); 'cuda:N' -> ('cuda', N). Checks that a CUDA device
    can be used and exists."""
    if not isinstance(spec, str):
        raise TypeError(f"device: expected a string such as 'cpu' or 'cuda:0', got {type(spec).__name__}")
    name, _, index = spec.strip().lower().partition(":")
    if name == "cpu" and not index:
        return ("cpu", 0)
    if name not in ("cuda", "gpu") or (index and not index.isdigit()):
        raise ValueError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {spec!r}")
    from gradsmith import cuda

    if not cuda.is_available():
        raise RuntimeError(f"device {spec!r} asked for, but CUDA is not available: {cuda.unavailable_reason()}")
    n = int(index or 0)
    if n >= cuda.device_count():
        raise ValueError(f"device {spec!r}: there are {cuda.device_count()} CUDA devices")
    return ("cuda", n)


def set_default_device(spec):
    """The device models compile for when compile() is not told (initially 'cpu')."""
    _state["device"] = parse_device(spec)


def get_default_device():
    """The default device as a string: 'cpu' or 'cuda:N'."""
    kind, index = _state["device"]
    return "cpu" if kind == "cpu" else f"cuda:{index}"


@contextlib.contextmanager
def device(spec):
    """``with gradsmith.device('cuda'): ...``: the default device inside the block."""
    before = _state["device"]
    _state["device"] = parse_device(spec)
    try:
        yield get_default_device()
    finally:
        _state["device"] = before


def set_matmul_precision(precision):
    """'highest' (plain float32, the default), 'tf32' or 'bf16' (tensor cores, float32 accumulation) for
    GEMMs on the GPU."""
    if not isinstance(precision, str) or precision not in _PRECISIONS:
        raise ValueError(f"matmul precision: expected one of {', '.join(_PRECISIONS)}, got {precision!r}")
    if _core.cuda_built:
        _core.cuda_set_matmul_precision(_PRECISIONS[precision])
    _state["matmul_precision"] = precision


def get_matmul_precision():
    return _state["matmul_precision"]


def _check_max_weights(n, what="max_weights"):
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        try:
            import numpy as np

            if isinstance(n, np.integer) and n >= 1:
                return int(n)
        except ImportError:  # pragma: no cover
            pass
        raise ValueError(f"{what}: expected a positive integer (a number of float32 values), got {n!r}")
    return n


def set_max_weights(n):
    """The largest number of weight values (float32) a model may have when it is built or loaded from a
    file (default 2**31, 8 GiB): a bigger model, or a file whose configuration implies one, raises
    ValueError before anything is allocated."""
    _state["max_weights"] = _check_max_weights(n)


def get_max_weights():
    """The limit in force: a per-call ``max_weights=`` given to load_model / load_weights, else
    ``set_max_weights``'s value."""
    here = _max_weights_here.get()
    return here if here is not None else _state["max_weights"]


@contextlib.contextmanager
def max_weights(n):
    """``with gradsmith.config.max_weights(2**33): ...``: the limit inside the block (this thread only);
    None keeps the current one."""
    token = _max_weights_here.set(None if n is None else _check_max_weights(n))
    try:
        yield get_max_weights()
    finally:
        _max_weights_here.reset(token)

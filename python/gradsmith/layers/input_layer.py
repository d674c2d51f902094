"""The input of a model: ``Input(shape=...)`` and the InputLayer a Sequential model starts from."""
from gradsmith.layers.base import Layer, _check_float32, _shape_list, _unique_name, as_dim, as_shape

__all__ = ["InputLayer", "Input"]


class InputLayer(Layer):
    """The input of a Sequential model: its shape, without the batch axis, is ``shape``."""

    _is_graph_input = True

    def __init__(self, shape=None, batch_size=None, name=None, input_shape=None, batch_shape=None, dtype=None,
                 **kwargs):
        if shape is None and input_shape is not None:
            shape = input_shape
        if batch_shape is not None:
            batch_shape = as_shape(batch_shape, "Input: batch_shape")
            if not batch_shape:
                raise ValueError("Input: batch_shape must have a batch axis, got ()")
            batch_size, shape = batch_shape[0], tuple(batch_shape[1:])
        if shape is None:
            raise ValueError("Input needs shape=, e.g. Input(shape=(20,))")
        if isinstance(shape, int):
            shape = (shape,)
        shape = as_shape(shape, "Input: shape")
        batch_size = None if batch_size is None else as_dim(batch_size, "Input: batch_size")
        super().__init__(name=name if name is not None else _unique_name("input_layer"), **kwargs)
        self.input_dtype = _input_dtype(dtype, f"input {self.name!r}")
        self.shape = (batch_size,) + shape
        self._declared_input_shape = self.shape

    def forward(self, x, training=False):
        return x

    def backward(self, dy, need_dx=True):
        return dy

    def get_config(self):
        return {"batch_shape": _shape_list(self.shape), "dtype": self.input_dtype, "sparse": False, "name": self.name}

    @classmethod
    def from_config(cls, config):
        shape = config.get("batch_shape") or config.get("batch_input_shape")
        if shape is None:
            raise ValueError("InputLayer without batch_shape")
        if not isinstance(shape, (list, tuple)):
            raise ValueError(f"InputLayer: batch_shape must be a list, got {shape!r}")
        if config.get("sparse") or config.get("ragged"):
            raise ValueError("sparse or ragged inputs are not supported")
        return cls(batch_shape=tuple(shape), name=config.get("name"), dtype=config.get("dtype"))


# Input dtypes: float32, and the integer token ids an Embedding takes (Keras's Input(..., dtype="int32")).
_INPUT_DTYPES = ("float32", "int32", "int64")


def _input_dtype(dtype, what):
    if dtype is None:
        return "float32"
    name = (dtype.get("config") or {}).get("name") if isinstance(dtype, dict) else getattr(dtype, "__name__", dtype)
    name = str(name) if name is not None else None
    if name not in _INPUT_DTYPES:
        _check_float32(name, what)  # the usual message
    return name


def Input(shape=None, batch_size=None, name=None, batch_shape=None, dtype=None):  # noqa: N802 - Keras's name
    """``Input(shape=(20,))``: the input of a Sequential model, or the start of a functional one
    (``Dense(8)(Input(shape=(4,)))``). ``dtype`` is float32, or int32 / int64 for token ids (an Embedding
    first)."""
    return InputLayer(shape=shape, batch_size=batch_size, name=name, batch_shape=batch_shape, dtype=dtype)

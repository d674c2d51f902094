"""Embedding: token ids -> rows of a trainable table (Keras 3's names, arguments, weight and numbers).

``Embedding(input_dim, output_dim)`` holds ``embeddings`` of shape (input_dim, output_dim), drawn by default
from Keras's 'uniform' initializer (RandomUniform(-0.05, 0.05)). Its input is token ids of any shape (int32 /
int64, or floats holding whole numbers, which Keras casts); its output appends ``output_dim``. An id outside
``[0, input_dim)`` is a ValueError naming the id and the range, never a read out of bounds (Keras on JAX
silently clamps it).

The kernels (cpp/cpu/embedding.cpp, its CUDA twin cpp/cuda/embedding.cu): forward is a gather; backward a
deterministic scatter-add of the output gradient into the table gradient (each table row sums the rows of dy
whose id names it, in increasing position: the same bits for any thread count), so the optimizer sees the
dense gradient of every row, as on Keras's JAX and PyTorch backends. In the compiled step
(cpp/model/layers/embedding.h) the ids travel in the plan's float32 input rows, exact below 2^24: a larger
``input_dim`` trains layer by layer.

``mask_zero=True``: the output's mask is ``ids != 0`` (``compute_mask``, as Keras). In a Sequential model (or a
functional chain) the mask flows through the layers that support masking (Dense, Activation, Dropout), is
consumed by a recurrent layer (or passed on with return_sequences), and the loss and the metrics skip the
masked steps; such a model trains layer by layer (the compiled step carries no masks).
"""
import numpy as np

from gradsmith import initializers, ops, quantizers, regularizers
from gradsmith.layers.base import KerasTensor, Layer, NoCompiledForm, _initializer_config, _regularizer_config, compiled_penalties
from gradsmith.layers.quantized import Int8Quantizable

__all__ = ["Embedding"]

_MAX_EXACT_FLOAT_ID = 2 ** 24  # float32 holds every whole number up to here: the compiled step's input rows


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{what}` must be a positive integer. Received: {what}={value!r} "
                         f"(of type {type(value).__name__}).")
    return int(value)


class Embedding(Int8Quantizable, Layer):
    """``y = embeddings[ids]``: ids (batch, ...) -> (batch, ..., output_dim).

    ``quantize("int8")`` (Keras 3's): the table becomes int8 with one scale per row,
    ``embeddings_scale = 127 / (max|embeddings[v, :]| + 1e-7)``, and a lookup returns
    ``embeddings[ids] / embeddings_scale[ids]``; both are frozen (Keras: trainable=False).
    """

    _steps_pointwise = True

    _takes_ids = True  # the model hands it its integer input as int64, not float32

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, weights=None, lora_rank=None, lora_alpha=None,
                 activity_regularizer=None, quantization_config=None, input_length=None, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = _positive_int(input_dim, "input_dim")
        self.output_dim = _positive_int(output_dim, "output_dim")
        for name, value in (("embeddings_constraint", embeddings_constraint), ("lora_rank", lora_rank),
                            ("activity_regularizer", activity_regularizer),
                            ("quantization_config", quantization_config)):
            if value is not None:
                raise NotImplementedError(f"Embedding: {name}={value!r} is not supported")
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.mask_zero = bool(mask_zero)
        self._initial_weights = weights
        self._cache = None

    def build(self, input_shape):
        if self.quantization_mode == "int8":
            self._int8_build()
        else:
            self._embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                               self.embeddings_initializer, self.embeddings_regularizer)
        super().build(input_shape)
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    @property
    def embeddings(self):
        return self._embeddings.value

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def compute_mask(self, inputs, mask=None):
        """Keras's mask: ``ids != 0`` with mask_zero, else None."""
        if not self.mask_zero:
            return None
        return np.asarray(inputs) != 0

    def _ids(self, x):
        return ops.embedding_ids(x, self.input_dim)

    def __call__(self, x, training=False):
        if isinstance(x, KerasTensor) or getattr(x, "_is_graph_input", False):  # functional API: record only
            return super().__call__(x, training=training)
        x = np.asarray(x)  # ids as given (Layer.__call__ would round them through float32)
        if not self.built:
            self.build((None,) + x.shape[1:])
        return self.forward(x, training=training)

    # -- int8 (Keras's quantize("int8")) ----------------------------------------------------------------
    def _int8_build(self):
        """embeddings (int8), embeddings_scale (input_dim,): Keras's names and order, both frozen."""
        self._embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim), "zeros",
                                           trainable=False, dtype="int8")
        self._embeddings_scale = self.add_weight("embeddings_scale", (self.input_dim,), "ones", trainable=False)

    @property
    def embeddings_scale(self):
        return self._embeddings_scale.value

    def quantize(self, mode=None, type_check=True, config=None):
        """Keras's ``Embedding.quantize``: the table -> int8 with one scale per row (token)."""
        self._check_quantize(mode, config, type_check, Embedding)
        q, scale = quantizers.abs_max_quantize(np.array(self.embeddings, np.float32), axis=-1)
        self._weights = []
        self._quantization_mode = mode
        self._int8_build()
        self._set_quantized(self._embeddings, q)
        self._set_quantized(self._embeddings_scale, scale.reshape(-1))

    def forward(self, x, training=False):
        ids = self._ids(x)
        if self.quantization_mode == "int8":  # Keras: take(embeddings) / expand_dims(take(scale), -1)
            rows = ids.reshape(-1)
            y = np.divide(self.embeddings[rows].astype(np.float32), self.embeddings_scale[rows][:, None],
                          dtype=np.float32)
            self._cache = ids if training else None
            return y.reshape(ids.shape + (self.output_dim,))
        y = ops.embedding_forward(ids, self.embeddings)
        self._cache = ids if training else None
        return y

    def backward(self, dy, need_dx=True):
        ids = self._cache
        if self.quantization_mode is not None:  # a frozen table: no gradient for it
            self._cache = None
            return np.zeros(ids.shape, np.float32) if need_dx else None
        ops.embedding_backward(ids, dy, self.input_dim, dtable_out=self._embeddings.grad)
        self._add_regularization_grads()
        self._cache = None
        return np.zeros(ids.shape, np.float32) if need_dx else None

    def flops(self, batch=1):
        return 0

    def _compiled_config(self, input_shape, offset):
        if self.quantization_mode is not None:
            raise NoCompiledForm(f"Embedding {self.name!r} is quantized ({self.quantization_mode}): it runs layer "
                                 "by layer")
        if self.mask_zero:
            raise NoCompiledForm(f"Embedding {self.name!r}: mask_zero=True (the compiled step carries no masks: "
                                 "the model runs layer by layer)")
        if self.input_dim > _MAX_EXACT_FLOAT_ID:
            raise NoCompiledForm(f"Embedding {self.name!r}: input_dim {self.input_dim} is above 2^24, and the "
                                 "compiled step's float32 input rows hold ids exactly only below 2^24")
        return {"kind": "Embedding",
                "numbers": {"input_dim": self.input_dim, "output_dim": self.output_dim},
                "weights": {"embeddings": offset(self.embeddings)},
                "penalties": compiled_penalties(embeddings=self.embeddings_regularizer)}

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": _initializer_config(self.embeddings_initializer, "RandomUniform"),
                "embeddings_regularizer": _regularizer_config(self.embeddings_regularizer, self),
                "activity_regularizer": None, "embeddings_constraint": None, "mask_zero": self.mask_zero,
                "quantization_config": None, **self._quantization_entries()}

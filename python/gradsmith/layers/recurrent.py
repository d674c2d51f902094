"""Recurrent layers with Keras 3's names, arguments, defaults and weight layouts: SimpleRNN, GRU, LSTM.

Weights are Keras's (stored under the layer's ``cell`` in a .keras file, as Keras writes them): ``kernel``
(in, G u), ``recurrent_kernel`` (u, G u) and ``bias`` (G u,) (GRU with ``reset_after``: (2, G u), input and
recurrent biases), with the gates in Keras's column order (GRU z, r, h; LSTM i, f, c, o). The math is
cpp/cpu/recurrent.cpp through ``ops.rnn_forward`` / ``ops.rnn_backward``; ``step`` runs one time step from a
state, what ``Sequential.generate`` calls one token at a time.
"""
import numpy as np

from gradsmith import initializers, ops, regularizers, utils
from gradsmith.layers.base import KerasTensor, KernelBias, Layer, NoCompiledForm, _initializer_config, _regularizer_config, compiled_penalties
from gradsmith.layers.core import _activation_name
from gradsmith.layers import _masked_rnn

__all__ = ["SimpleRNN", "GRU", "LSTM"]


def _is_symbolic(v):
    return isinstance(v, KerasTensor) or getattr(v, "_is_graph_input", False)


class _Ones(initializers.Initializer):
    def __call__(self, shape, dtype=None):
        return np.ones(shape, np.float32)


class _RNN(KernelBias, Layer):
    """What SimpleRNN, GRU and LSTM share (Keras's RNN wrapping one cell)."""

    _cell = "SimpleRNN"
    _gates = 1
    _weights_group = "cell"  # Keras saves a recurrent layer's weights as <layer>/cell/vars/<i>
    supports_masking = True

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout=0.0, recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, zero_output_for_mask=False, **kwargs):
        super().__init__(**kwargs)
        what = f"{type(self).__name__}"
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or not 1 <= units <= 2 ** 20:
            raise ValueError(f"{what}: units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = _activation_name(activation)
        self.recurrent_activation = _activation_name(recurrent_activation)
        if self.activation != "tanh" or (self._gates > 1 and self.recurrent_activation != "sigmoid"):
            raise NotImplementedError(f"{what}: only activation='tanh'" +
                                      (" and recurrent_activation='sigmoid'" if self._gates > 1 else "") +
                                      f" have kernels, got {activation!r}" +
                                      (f", {recurrent_activation!r}" if self._gates > 1 else ""))
        for name, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not isinstance(rate, (int, float, np.floating, np.integer)) or not 0 <= rate < 1:
                raise ValueError(f"{what}: {name} must be a number in [0, 1), got {rate!r}")
        if stateful:
            raise NotImplementedError(f"{what}: stateful=True is not supported (Sequential.generate carries the "
                                      "state between steps itself)")
        if activity_regularizer is not None or kernel_constraint is not None or recurrent_constraint is not None \
                or bias_constraint is not None:
            raise NotImplementedError(f"{what}: activity regularizers and weight constraints are not supported")
        self._kernel_bias_arguments(use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                                    bias_regularizer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"{what}: seed must be an integer or None, got {seed!r}")
        self.seed = seed
        self._seed = int(seed) if seed is not None else int(utils.global_rng().integers(0, 2**63))
        self._calls = np.zeros(1, np.int64)  # training calls so far: the dropout masks' Philox offset
        self._x_keep = None
        self.initial_state_grads = None
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self._cache = None

    # -- weights -----------------------------------------------------------------------------------------------
    def _bias_shape(self):
        return (self._gates * self.units,)

    def _bias_initializer(self):
        return self.bias_initializer

    def build(self, input_shape):
        what = f"{type(self).__name__} {self.name!r}"
        if len(input_shape) != 3:
            raise ValueError(f"{what}: expected inputs of rank 3 (batch, timesteps, features), got {input_shape}")
        if input_shape[-1] is None:
            raise ValueError(f"{what}: the feature axis of the input must be known, got {input_shape}")
        gu = self._gates * self.units
        self._kernel = self.add_weight("kernel", (input_shape[-1], gu), self.kernel_initializer,
                                       self.kernel_regularizer)
        self._recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, gu), self.recurrent_initializer,
                                                 self.recurrent_regularizer)
        self._bias = (self.add_weight("bias", self._bias_shape(), self._bias_initializer(), self.bias_regularizer)
                      if self.use_bias else None)
        super().build(input_shape)

    @property
    def recurrent_kernel(self):
        return self._recurrent_kernel.value

    def compute_output_shape(self, input_shape):
        """The output's shape; with ``return_state`` the list [output, h (, c)], as Keras."""
        out = (input_shape[0], input_shape[1], self.units) if self.return_sequences else (input_shape[0], self.units)
        if self.return_state:
            return [out] + [(input_shape[0], self.units)] * (2 if self._cell == "LSTM" else 1)
        return out

    def flops(self, batch=1):
        steps = (self.input_shape or (None, 1))[1] or 1
        gu = self._gates * self.units
        return 2 * batch * steps * gu * (self._kernel.shape[0] + self.units)

    # -- math --------------------------------------------------------------------------------------------------
    def _reset_after(self):
        return False

    def _run(self, x, h0, c0, training):
        return ops.rnn_forward(self._cell, x, self.kernel, self.recurrent_kernel, self.bias, h0, c0,
                               reset_after=self._reset_after(), go_backwards=self.go_backwards, training=training)

    def compute_mask(self, inputs, mask=None):
        """Keras: the input mask with return_sequences (the time axis stays), else None (consumed)."""
        return mask if self.return_sequences else None

    def _check_input(self, x):
        if x.ndim != 3 or x.shape[-1] != self._kernel.shape[0]:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected inputs (batch, timesteps, "
                             f"{self._kernel.shape[0]}), got shape {x.shape}")
        if x.shape[1] < 1:
            raise ValueError(f"{type(self).__name__} {self.name!r}: the input has no time steps")
        return np.ascontiguousarray(x, dtype=np.float32)

    def _states(self, hseq, cache):
        h = np.ascontiguousarray(hseq[:, -1])
        return [h, np.ascontiguousarray(cache["c_last"])] if self._cell == "LSTM" else [h]

    def forward(self, x, training=False, initial_state=None):
        """The sequence's outputs (and with ``return_state`` the final states). The compiled kernels run it
        unless the step-by-step NumPy recurrence (layers/_masked_rnn.py) is needed: a mask, recurrent
        dropout, or training with states that take part in the gradient (an ``initial_state``, returned
        states), since the kernels give no gradient of the states."""
        x = self._check_input(x)
        h0 = c0 = None
        if initial_state is not None:
            h0, c0 = self._initial_states(initial_state, x.shape[0])
        mask = self._input_mask
        if mask is not None:
            mask = np.asarray(mask, bool)
            if mask.shape != x.shape[:2]:
                raise ValueError(f"{type(self).__name__} {self.name!r}: the mask of shape {mask.shape} does not "
                                 f"match the input's (batch, timesteps) {x.shape[:2]}")
        x, drop = self._dropout_masks(x, training)
        stepwise = mask is not None or drop is not None or \
            (training and (initial_state is not None or self.return_state))
        if stepwise:
            hseq, h_last, c_last, cache = _masked_rnn.forward(
                self._cell, x, mask, self.kernel, self.recurrent_kernel, self.bias, h0, c0, self._reset_after(),
                self.go_backwards, training, drop)
            states = [h_last] + ([c_last] if self._cell == "LSTM" else [])
        else:
            hseq, cache = self._run(x, h0, c0, training)
            states = self._states(hseq, cache) if self.return_state else None
        self._cache = cache if training else None
        y = hseq if self.return_sequences else np.ascontiguousarray(hseq[:, -1])
        return [y] + states if self.return_state else y

    def _initial_states(self, initial_state, batch):
        """(h0, c0 or None) from ``initial_state`` (one array, or a list: [h] or, for the LSTM, [h, c])."""
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        want = 2 if self._cell == "LSTM" else 1
        if len(states) != want:
            raise ValueError(f"{type(self).__name__} {self.name!r}: initial_state has {want} state(s) "
                             f"({'[h, c]' if want == 2 else '[h]'}), got {len(states)}")
        out = []
        for s in states:
            s = np.ascontiguousarray(s, dtype=np.float32)
            if s.shape != (batch, self.units):
                raise ValueError(f"{type(self).__name__} {self.name!r}: an initial state must have shape "
                                 f"{(batch, self.units)}, got {s.shape}")
            out.append(s)
        return out[0], (out[1] if want == 2 else None)

    def _dropout_masks(self, x, training):
        """(x, drop): Keras's dropout while training. ``dropout`` alone: one mask per sample and feature, the
        same at every step, laid on x here (undone in backward). With ``recurrent_dropout``: Keras's
        implementation 1, one input mask and one state mask per gate, for the step-by-step recurrence."""
        self._x_keep = None
        if not training or (self.dropout == 0 and self.recurrent_dropout == 0):
            return x, None
        offset = int(self._calls[0])
        self._calls[0] += 1
        B, _, F = x.shape

        def masks(shape, rate, which):
            keep = ops.dropout_mask(shape, rate, self._seed, 2 * offset + which)
            return keep.astype(np.float32) / np.float32(1.0 - rate)

        if self.recurrent_dropout == 0:
            self._x_keep = masks((B, 1, F), self.dropout, 0)
            return (x * self._x_keep).astype(np.float32), None
        g = self._gates if self._cell != "SimpleRNN" else 1
        return x, {"x": list(masks((g, B, F), self.dropout, 0)) if self.dropout else None,
                   "h": list(masks((g, B, self.units), self.recurrent_dropout, 1))}

    def __call__(self, x, training=False, initial_state=None):
        if initial_state is None:
            return super().__call__(x, training=training)
        if _is_symbolic(x) or any(_is_symbolic(s) for s in
                                  (initial_state if isinstance(initial_state, (list, tuple)) else [initial_state])):
            return Layer.__call__(self, x, training=training, initial_state=initial_state)
        x = np.asarray(x, dtype=np.float32)
        if not self.built:
            self.build((None,) + x.shape[1:])
        return self.forward(x, training=training, initial_state=initial_state)

    def backward(self, dy, need_dx=True):
        """dx from the gradient of the output; with ``return_state``, ``dy`` may be the list [d output,
        d h (, d c)] (None for one that gets no gradient). The gradients of the initial states are left in
        ``self.initial_state_grads`` (a list, or None when the kernels ran)."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__} {self.name!r}: backward needs a training forward pass first")
        d_states = [None, None]
        if isinstance(dy, (list, tuple)):
            dy, d_states = dy[0], list(dy[1:]) + [None, None]
        cache, self._cache = self._cache, None
        out_shape = (cache["mask"].shape[0], self.units) if "saved" in cache else None
        if dy is None:
            dy = np.zeros(out_shape if not self.return_sequences else cache["mask"].shape + (self.units,), np.float32)
        dy = np.ascontiguousarray(dy, dtype=np.float32)
        self.initial_state_grads = None
        if "saved" in cache:  # the step-by-step recurrence (layers/_masked_rnn.py)
            dx, dk, du, db, dh0, dc0 = _masked_rnn.backward(
                cache, self.kernel, self.recurrent_kernel, self.use_bias,
                dy if self.return_sequences else None, None if self.return_sequences else dy,
                need_dx or self._x_keep is not None, d_states[0], d_states[1])
            self._kernel.grad[...] = dk
            self._recurrent_kernel.grad[...] = du
            if self.use_bias:
                self._bias.grad[...] = db
            self.initial_state_grads = [dh0] + ([dc0] if self._cell == "LSTM" else [])
        else:
            dx, _, _, _ = ops.rnn_backward(
                cache, self.kernel, self.recurrent_kernel, dy_seq=dy if self.return_sequences else None,
                dy_last=None if self.return_sequences else dy, use_bias=self.use_bias, need_dx=need_dx,
                dkernel_out=self._kernel.grad, drecurrent_kernel_out=self._recurrent_kernel.grad,
                dbias_out=self._bias.grad if self.use_bias else None)
        self._add_regularization_grads()
        if dx is not None and self._x_keep is not None:
            dx = (dx * self._x_keep).astype(np.float32)
        return dx

    # -- stepping (generation) -----------------------------------------------------------------------------------
    def initial_step_state(self, batch):
        """The zero state ``step`` starts from: [h] (LSTM: [h, c]), each (batch, units)."""
        zeros = np.zeros((batch, self.units), np.float32)
        return [zeros, zeros.copy()] if self._cell == "LSTM" else [zeros]

    def step(self, x_t, state):
        """One time step from ``state``: ``x_t`` (batch, 1, features) (or (batch, features)) gives ``(y_t,
        new_state)``, ``y_t`` as ``forward`` gives it for a sequence of length 1 ((batch, 1, units) with
        return_sequences, else (batch, units)). Running the steps one after another gives ``forward``'s h."""
        if self.go_backwards:
            raise NotImplementedError(f"{type(self).__name__} {self.name!r}: a go_backwards layer reads the "
                                      "sequence from its end and cannot run one step at a time")
        x_t = np.asarray(x_t, np.float32)
        if x_t.ndim == 2:
            x_t = x_t[:, None, :]
        x_t = self._check_input(x_t)
        hseq, cache = self._run(x_t, state[0], state[1] if len(state) > 1 else None, False)
        new_state = self._states(hseq, cache)
        return (hseq if self.return_sequences else new_state[0].copy()), new_state

    def _compiled_config(self, input_shape, offset):
        if self.return_state:
            raise NoCompiledForm(f"layer {self.name!r} returns its states: it runs layer by layer")
        if self.dropout or self.recurrent_dropout:
            raise NoCompiledForm(f"layer {self.name!r} has dropout: it runs layer by layer")
        weights = self._kernel_bias_offsets(offset, recurrent_kernel=self.recurrent_kernel)
        return {"kind": "Recurrent",
                "numbers": {"cell": ops.RNN_CELLS[self._cell], "units": self.units,
                            "reset_after": float(self._reset_after()), "go_backwards": float(self.go_backwards),
                            "return_sequences": float(self.return_sequences)},
                "weights": weights,
                "penalties": compiled_penalties(kernel=self.kernel_regularizer,
                                                recurrent_kernel=self.recurrent_regularizer,
                                                bias=self.bias_regularizer if self.use_bias else None)}

    # -- configuration -----------------------------------------------------------------------------------------
    def _head_config(self):
        return {**super().get_config(), "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "stateful": False, "unroll": self.unroll,
                "zero_output_for_mask": self.zero_output_for_mask, "units": self.units,
                "activation": self.activation}

    def _weights_config(self):
        return {"use_bias": self.use_bias,
                "kernel_initializer": _initializer_config(self.kernel_initializer, "GlorotUniform"),
                "recurrent_initializer": _initializer_config(self.recurrent_initializer, "Orthogonal"),
                "bias_initializer": _initializer_config(self.bias_initializer, "Zeros")}

    def _regularizers_config(self):
        return {"kernel_regularizer": _regularizer_config(self.kernel_regularizer, self),
                "recurrent_regularizer": _regularizer_config(self.recurrent_regularizer, self),
                "bias_regularizer": _regularizer_config(self.bias_regularizer, self),
                "activity_regularizer": None, "kernel_constraint": None, "recurrent_constraint": None,
                "bias_constraint": None, "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout}


class SimpleRNN(_RNN):
    """Fully connected RNN: ``h = tanh(x W + b + h_prev U)``."""

    _cell = "SimpleRNN"
    _gates = 1

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
                         bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                         bias_constraint=bias_constraint, dropout=dropout, recurrent_dropout=recurrent_dropout,
                         seed=seed, **kwargs)

    def get_config(self):
        return {**self._head_config(), **self._weights_config(), **self._regularizers_config()}


class GRU(_RNN):
    """Gated recurrent unit (Keras 3 / cuDNN form by default, ``reset_after=True``)."""

    _cell = "GRU"
    _gates = 3

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)

    def _reset_after(self):
        return self.reset_after

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def get_config(self):
        return {**self._head_config(), "recurrent_activation": self.recurrent_activation, **self._weights_config(),
                **self._regularizers_config(), "reset_after": self.reset_after, "seed": self.seed}


class _UnitForgetBias(initializers.Initializer):
    """LSTM's bias with unit_forget_bias: the bias initializer's values with the forget gate's set to 1."""

    def __init__(self, base, units):
        self.base, self.units = base, units

    def __call__(self, shape, dtype=None):
        u = self.units
        return np.concatenate([np.asarray(self.base((u,)), np.float32), np.ones(u, np.float32),
                               np.asarray(self.base((2 * u,)), np.float32)])


class LSTM(_RNN):
    """Long short-term memory (Hochreiter 1997), Keras 3's LSTM."""

    _cell = "LSTM"
    _gates = 4

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _bias_initializer(self):
        return _UnitForgetBias(self.bias_initializer, self.units) if self.unit_forget_bias else self.bias_initializer

    def get_config(self):
        config = {**self._head_config(), "recurrent_activation": self.recurrent_activation, **self._weights_config(),
                  "unit_forget_bias": self.unit_forget_bias, **self._regularizers_config(), "seed": self.seed}
        return config

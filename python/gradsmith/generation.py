"""``Sequential.generate``: token-by-token generation from a model whose input is token ids (or one-hot rows)
and whose last layer gives one score per token (a gradsmith extension: Keras has none).

The model runs statefully, one step per token: each layer with state implements ``initial_step_state(batch)``
and ``step(x_t, state) -> (y_t, new_state)`` (the recurrent layers); a layer that works on each time step on its
own (Embedding, Dense, Activation, Dropout in inference, ...) is stepped by its forward on a time axis of length
1. So a new token costs the same however long the text is: the prefix is never run again.

The next token is drawn from the distribution the loss trained: softmax of the scores when the loss is
``from_logits``, the probabilities of a softmax output, and ``clip(p, 1e-7, 1 - 1e-7) / sum(clip(p))`` for other
outputs under a probability loss (Keras's cross-entropy on probabilities). ``temperature`` divides the log
probabilities (0: the most likely token), ``top_k`` keeps the k most likely tokens.
"""
import numpy as np

from gradsmith import utils

__all__ = ["generate", "Stepper"]

_EPSILON = 1e-7


class Stepper:
    """The model's layers run one time step at a time from their state: ``feed(x_t)`` with ``x_t`` (batch, 1)
    token ids (or (batch, 1, features)) returns the model's output for that step, as running the whole
    sequence would give it at that position."""

    def __init__(self, model, batch):
        self.layers = list(model.layers)
        self.states = []
        for layer in self.layers:
            if hasattr(layer, "step") and hasattr(layer, "initial_step_state"):
                self.states.append(layer.initial_step_state(batch))
            elif getattr(layer, "_steps_pointwise", False):  # each time step on its own: forward on one step
                self.states.append(None)
            else:
                raise NotImplementedError(
                    f"generate: layer {layer.name!r} ({type(layer).__name__}) neither steps through time nor acts "
                    "on each time step on its own (give it step() and initial_step_state())")

        self.outputs = [None] * len(self.layers)  # a recurrent layer's last output: a masked step repeats it

    def feed(self, x_t):
        """One step; Keras's mask (Embedding(mask_zero=True) on the id 0) goes along as in the whole sequence:
        a recurrent layer keeps its state at a masked step and repeats its previous output (zeros at first)."""
        x, mask = x_t, None
        for i, layer in enumerate(self.layers):
            x_in = x
            if self.states[i] is not None:
                y, state = layer.step(x, self.states[i])
                if mask is not None:
                    m = np.asarray(mask, bool).reshape(-1, 1)
                    state = [np.where(m, new, old) for new, old in zip(state, self.states[i])]
                    prev = self.outputs[i] if self.outputs[i] is not None else np.zeros(y.shape, np.float32)
                    y = np.where(m.reshape((-1,) + (1,) * (y.ndim - 1)), y, prev).astype(np.float32)
                self.outputs[i] = y
                x, self.states[i] = y, state
            else:
                x = layer.forward(x, training=False)
            mask = layer.compute_mask(x_in, mask)
        return x


def _loss_from_logits(loss):
    kwargs = getattr(loss, "_fn_kwargs", None)
    if kwargs is None:
        kwargs = loss.get_config() if hasattr(loss, "get_config") else {}
    return bool(kwargs.get("from_logits", False))


def _output_is_softmax(model):
    last = model.layers[-1]
    return getattr(last, "activation", None) == "softmax"


def _log_probabilities(scores, from_logits):
    """Natural-log probabilities (float64) of the distribution the loss trained, per row."""
    s = np.asarray(scores, np.float64)
    if from_logits:
        s = s - s.max(axis=-1, keepdims=True)
        return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))
    p = np.clip(s, _EPSILON, 1.0 - _EPSILON)
    return np.log(p / p.sum(axis=-1, keepdims=True))


def _choose(logp, temperature, top_k, rng):
    """One token per row of log probabilities."""
    if temperature == 0:
        return np.argmax(logp, axis=-1)
    logp = logp / temperature
    if top_k is not None and top_k < logp.shape[-1]:
        kth = np.sort(logp, axis=-1)[:, -top_k][:, None]
        logp = np.where(logp >= kth, logp, -np.inf)
    logp = logp - logp.max(axis=-1, keepdims=True)
    p = np.exp(logp)
    cdf = np.cumsum(p, axis=-1)
    u = rng.random(len(p)) * cdf[:, -1]
    return np.minimum((cdf <= u[:, None]).sum(axis=-1), p.shape[-1] - 1)


def generate(model, start_tokens, num_generated=50, temperature=1.0, top_k=None, seed=None, stop_token=None):
    """Token ids: ``start_tokens`` followed by up to ``num_generated`` new ones (fewer when ``stop_token`` comes,
    which is kept). ``start_tokens`` is one sequence (returns one) or (batch, n) (returns (batch, n + new);
    ``stop_token`` then stops when every row has produced it). Greedy at ``temperature`` 0, sampled otherwise,
    from the ``top_k`` most likely tokens when given; ``seed`` makes the draws repeatable."""
    tokens = np.asarray(start_tokens)
    single = tokens.ndim == 1
    tokens = np.atleast_2d(tokens).astype(np.int64)
    if tokens.ndim != 2 or tokens.shape[1] < 1:
        raise ValueError(f"generate: start_tokens must be a non-empty sequence of token ids (or (batch, n)), got "
                         f"shape {np.shape(start_tokens)}")
    if isinstance(num_generated, bool) or not isinstance(num_generated, (int, np.integer)) or num_generated < 0:
        raise ValueError(f"generate: num_generated must be a non-negative integer, got {num_generated!r}")
    if not isinstance(temperature, (int, float, np.floating, np.integer)) or not temperature >= 0 \
            or not np.isfinite(temperature):
        raise ValueError(f"generate: temperature must be a finite number >= 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"generate: top_k must be a positive integer or None, got {top_k!r}")
    if not model.layers:
        raise ValueError("generate: the model has no layers")
    model._require_built("generate")
    shape = model.input_shape
    one_hot = len(shape) == 3  # (batch, steps, vocabulary): the tokens go in as one-hot rows
    vocabulary = shape[-1] if one_hot else None
    if one_hot and vocabulary is None:
        raise ValueError("generate: the model's one-hot input needs a known vocabulary size")
    if np.any(tokens < 0) or (one_hot and np.any(tokens >= vocabulary)):
        raise ValueError("generate: start_tokens holds ids outside the vocabulary")
    loss = getattr(model, "loss", None)
    from_logits = _loss_from_logits(loss) if loss is not None else not _output_is_softmax(model)
    rng = np.random.default_rng(seed) if seed is not None else utils.global_rng()
    batch = tokens.shape[0]

    def as_input(ids):
        if one_hot:
            x = np.zeros((batch, 1, vocabulary), np.float32)
            x[np.arange(batch), 0, ids] = 1.0
            return x
        # An Embedding first (``_takes_ids``) takes the ids as integers, as the model hands them to it.
        return ids.reshape(batch, 1).astype(np.int64 if getattr(model.layers[0], "_takes_ids", False) else np.float32)

    stepper = Stepper(model, batch)
    out = [tokens[:, i] for i in range(tokens.shape[1])]
    scores = None
    for ids in out:
        scores = stepper.feed(as_input(ids))
    done = np.zeros(batch, bool)
    for n in range(num_generated):
        s = np.asarray(scores)
        s = s.reshape(batch, -1) if s.ndim == 2 else s[:, -1]
        nxt = _choose(_log_probabilities(s, from_logits), float(temperature), top_k, rng).astype(np.int64)
        if stop_token is not None:
            nxt = np.where(done, stop_token, nxt)
        out.append(nxt)
        if stop_token is not None:
            done |= nxt == stop_token
            if done.all():
                break
        if n + 1 < num_generated:
            scores = stepper.feed(as_input(nxt))
    result = np.stack(out, axis=1)
    return result[0] if single else result

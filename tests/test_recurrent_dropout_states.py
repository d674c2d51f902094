"""Recurrent dropout and recurrent states as inputs and outputs: the step-by-step recurrence
(layers/_masked_rnn.py) against central differences in float64, with masks, dropout masks and gradients of
the initial and returned states; the layers' dropout (Keras's semantics: one mask per sample for the whole
sequence, none outside training) and training with it."""
import numpy as np
import pytest

import gradsmith as keras
from gradsmith.layers import GRU, LSTM, SimpleRNN, _masked_rnn

GATES = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}
VARIANTS = [("SimpleRNN", False), ("GRU", True), ("GRU", False), ("LSTM", False)]


def _loss_and_grads(cell, reset_after, masked, dropped, rng):
    B, T, F, u = 3, 4, 5, 6
    g = GATES[cell]
    x = rng.standard_normal((B, T, F))
    W, U = 0.5 * rng.standard_normal((F, g * u)), 0.5 * rng.standard_normal((u, g * u))
    b = 0.1 * rng.standard_normal((2, g * u) if cell == "GRU" and reset_after else (g * u,))
    h0 = rng.standard_normal((B, u))
    c0 = rng.standard_normal((B, u)) if cell == "LSTM" else None
    mask = rng.random((B, T)) > 0.3 if masked else None
    k = 1 if cell == "SimpleRNN" else g
    drop = {"x": list((rng.random((k, B, F)) > 0.3) / 0.7), "h": list((rng.random((k, B, u)) > 0.3) / 0.7)} \
        if dropped else None
    wy, wh, wc = rng.standard_normal((B, T, u)), rng.standard_normal((B, u)), rng.standard_normal((B, u))

    def loss(args):
        x_, W_, U_, b_, h_, c_ = args
        out, h, c, _ = _masked_rnn.forward(cell, x_, mask, W_, U_, b_, h_, c_, reset_after, False, False, drop)
        return (out * wy).sum() + (h * wh).sum() + ((c * wc).sum() if c is not None else 0.0)

    args = [x, W, U, b, h0, c0]
    f32 = [None if a is None else a.astype(np.float32) for a in args]
    _, _, _, cache = _masked_rnn.forward(cell, f32[0], mask, *f32[1:4], f32[4], f32[5], reset_after, False, True,
                                         None if drop is None else {k_: [m.astype(np.float32) for m in v]
                                                                   for k_, v in drop.items()})
    grads = _masked_rnn.backward(cache, f32[1], f32[2], True, wy.astype(np.float32), None, True,
                                 wh.astype(np.float32), None if c0 is None else wc.astype(np.float32))
    return loss, args, [grads[0], grads[1], grads[2], grads[3], grads[4], grads[5]]


@pytest.mark.parametrize("cell,reset_after", VARIANTS, ids=[f"{c}-{r}" for c, r in VARIANTS])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dropped", [False, True])
def test_stepwise_gradients_match_central_differences(monkeypatch, cell, reset_after, masked, dropped):
    """Every gradient the step-by-step recurrence returns (inputs, weights, bias, initial h and c), with the
    returned states' gradients fed in, against central differences of the same recurrence in float64."""
    rng = np.random.default_rng(7)
    loss, args, grads = _loss_and_grads(cell, reset_after, masked, dropped, rng)
    monkeypatch.setattr(_masked_rnn, "_F32", np.float64)
    eps = 1e-6
    for arg, grad in zip(args, grads):
        if arg is None:
            assert grad is None
            continue
        for _ in range(5):
            idx = tuple(int(rng.integers(0, s)) for s in arg.shape)
            plus, minus = arg.copy(), arg.copy()
            plus[idx] += eps
            minus[idx] -= eps
            numeric = (loss([plus if a is arg else a for a in args]) -
                       loss([minus if a is arg else a for a in args])) / (2 * eps)
            assert abs(numeric - grad[idx]) <= 1e-4 * (1 + abs(numeric)), (idx, numeric, grad[idx])


@pytest.mark.parametrize("cls", [SimpleRNN, GRU, LSTM])
@pytest.mark.parametrize("rates", [(0.4, 0.0), (0.0, 0.4), (0.3, 0.3)])
def test_dropout_only_while_training_and_gradients_follow_the_masks(cls, rates):
    """Outside training the output is the plain recurrence's; in training it differs, the same mask holds
    for a whole call, backward's dx is zero exactly on dropped input features (dropout alone), and the
    weight gradients equal the step-by-step recurrence's with the masks the layer drew."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5, 6)).astype(np.float32)
    layer = cls(7, dropout=rates[0], recurrent_dropout=rates[1], seed=11, return_sequences=True)
    plain = cls(7, return_sequences=True)
    layer.build(x.shape)
    plain.build(x.shape)
    plain.set_weights(layer.get_weights())
    np.testing.assert_array_equal(layer(x, training=False), plain(x))
    y = layer.forward(x, training=True)
    assert not np.allclose(y, plain(x))
    dx = layer.backward(np.ones_like(y))
    if rates[1] == 0.0:
        keep = layer._x_keep[:, 0, :]  # (batch, features): the same at every step
        dropped = np.broadcast_to((keep == 0)[:, None, :], x.shape)
        assert dropped.any() and np.all(dx[dropped] == 0)
        assert np.all(dx[~dropped] != 0)
    # Two training calls draw different masks; a layer with the same seed draws the same ones.
    y2 = layer.forward(x, training=True)
    assert not np.array_equal(y, y2)
    twin = cls(7, dropout=rates[0], recurrent_dropout=rates[1], seed=11, return_sequences=True)
    twin.build(x.shape)
    twin.set_weights(layer.get_weights())
    np.testing.assert_array_equal(twin.forward(x, training=True), y)


@pytest.mark.parametrize("cls", [GRU, LSTM])
def test_training_with_dropout_learns_and_saves_its_rates(tmp_path, cls):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6, 3)).astype(np.float32)
    y = (x[:, :, 0].sum(1) > 0).astype(np.float32)
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((6, 3)), cls(8, dropout=0.2, recurrent_dropout=0.2),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0) < first
    path = tmp_path / "m.keras"
    model.save(path)
    back = keras.models.load_model(path)
    assert back.layers[0].dropout == 0.2 and back.layers[0].recurrent_dropout == 0.2
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_bad_rate_or_seed_is_refused():
    with pytest.raises(ValueError, match="dropout"):
        GRU(4, dropout=1.0)
    with pytest.raises(ValueError, match="recurrent_dropout"):
        LSTM(4, recurrent_dropout=-0.1)
    with pytest.raises(ValueError, match="seed"):
        SimpleRNN(4, seed="x")

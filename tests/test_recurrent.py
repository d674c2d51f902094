"""The recurrent kernels (cpp/cpu/recurrent.cpp through gradsmith.ops) and layers against the float64 reference
(tests/reference/recurrent.py), their bits across thread counts, stepping against whole sequences, and the
Orthogonal initializer."""
import numpy as np
import pytest

import gradsmith as keras
from gradsmith import initializers, ops
from gradsmith.layers import GRU, LSTM, SimpleRNN
from helpers import assert_bitwise_equal, num_threads
from reference import recurrent as ref

GATES = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}
# (batch, steps, in, units): odd sizes, one step, one sample, a wide layer.
SIZES = [(3, 5, 4, 7), (1, 1, 3, 2), (1, 9, 1, 5), (5, 1, 6, 3), (4, 6, 33, 17)]
VARIANTS = [("SimpleRNN", True), ("GRU", True), ("GRU", False), ("LSTM", True)]


def _inputs(rng, cell, reset_after, b, t, i, u, use_bias=True):
    g = GATES[cell]
    x = rng.standard_normal((b, t, i)).astype(np.float32)
    w = (rng.standard_normal((i, g * u)) / np.sqrt(i)).astype(np.float32)
    uu = (rng.standard_normal((u, g * u)) / np.sqrt(u)).astype(np.float32)
    shape = (2, g * u) if cell == "GRU" and reset_after else (g * u,)
    bias = (0.3 * rng.standard_normal(shape)).astype(np.float32) if use_bias else None
    return x, w, uu, bias


def _err(got, want):
    return np.max(np.abs(np.asarray(got, np.float64) - want)) / max(1.0, np.max(np.abs(want)))


@pytest.mark.parametrize("size", SIZES, ids=[str(s) for s in SIZES])
@pytest.mark.parametrize("cell,reset_after", VARIANTS, ids=[f"{c}-{r}" for c, r in VARIANTS])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("sequences", [True, False])
def test_rnn_kernels_match_the_reference(rng, threads, cell, reset_after, size, go_backwards, sequences):
    b, t, i, u = size
    use_bias = not (cell == "SimpleRNN" and go_backwards)
    x, w, uu, bias = _inputs(rng, cell, reset_after, b, t, i, u, use_bias)
    h0 = rng.standard_normal((b, u)).astype(np.float32)
    c0 = rng.standard_normal((b, u)).astype(np.float32) if cell == "LSTM" else None
    hseq, cache = ops.rnn_forward(cell, x, w, uu, bias, h0, c0, reset_after=reset_after, go_backwards=go_backwards,
                                  training=True)
    want, h_last, c_last, tape = ref.rnn_forward(cell, x, w, uu, bias, h0, c0, reset_after, go_backwards)
    assert _err(hseq, want) < 1e-5
    if cell == "LSTM":
        assert _err(cache["c_last"], c_last) < 1e-5
    dy = rng.standard_normal(hseq.shape if sequences else hseq[:, 0].shape).astype(np.float32)
    got = ops.rnn_backward(cache, w, uu, dy_seq=dy if sequences else None, dy_last=None if sequences else dy,
                           use_bias=use_bias)
    want = ref.rnn_backward(cell, x, w, uu, tape, dy if sequences else None, None if sequences else dy,
                            reset_after, use_bias)
    for name, g_, w_ in zip(("dx", "dkernel", "drecurrent_kernel", "dbias"), got, want):
        if w_ is None:
            assert g_ is None
        else:
            assert _err(g_, w_) < 2e-5, name


@pytest.mark.parametrize("cell,reset_after", VARIANTS, ids=[f"{c}-{r}" for c, r in VARIANTS])
def test_rnn_bits_do_not_depend_on_the_thread_count(rng, cell, reset_after):
    x, w, uu, bias = _inputs(rng, cell, reset_after, 37, 7, 45, 70)
    results = []
    for n in (1, 2, 3):
        with num_threads(n):
            hseq, cache = ops.rnn_forward(cell, x, w, uu, bias, reset_after=reset_after, training=True)
            results.append((hseq, *ops.rnn_backward(cache, w, uu, dy_seq=np.ones_like(hseq))))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert_bitwise_equal(b, a)


def test_inference_and_training_forward_give_the_same_bits(rng):
    x, w, uu, bias = _inputs(rng, "GRU", True, 4, 6, 5, 3)
    a, _ = ops.rnn_forward("GRU", x, w, uu, bias, training=False)
    b, _ = ops.rnn_forward("GRU", x, w, uu, bias, training=True)
    assert_bitwise_equal(a, b)


@pytest.mark.parametrize("make", [lambda **k: SimpleRNN(5, **k), lambda **k: GRU(5, **k),
                                  lambda **k: GRU(5, reset_after=False, **k), lambda **k: LSTM(5, **k)],
                         ids=["SimpleRNN", "GRU", "GRU-v1", "LSTM"])
def test_stepping_gives_the_whole_sequence(rng, make):
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    whole = make(return_sequences=True, return_state=True)
    seq, *states = whole(x)
    stepper = make(return_sequences=True)
    stepper.build((None, 6, 3))
    stepper.set_weights(whole.get_weights())
    state = stepper.initial_step_state(2)
    outs = []
    for t in range(6):
        y, state = stepper.step(x[:, t:t + 1], state)
        assert y.shape == (2, 1, 5)
        outs.append(y[:, 0])
    assert_bitwise_equal(np.stack(outs, axis=1), seq)
    for a, b in zip(state, states):
        assert_bitwise_equal(a, b)


def test_layers_have_keras_weight_shapes_outputs_and_states(rng):
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    gru, gru1, lstm, simple = GRU(5), GRU(5, reset_after=False), LSTM(5), SimpleRNN(5)
    for layer in (gru, gru1, lstm, simple):
        assert layer(x).shape == (2, 5)
    assert [w.shape for w in gru.get_weights()] == [(3, 15), (5, 15), (2, 15)]
    assert [w.shape for w in gru1.get_weights()] == [(3, 15), (5, 15), (15,)]
    assert [w.shape for w in lstm.get_weights()] == [(3, 20), (5, 20), (20,)]
    assert [w.shape for w in simple.get_weights()] == [(3, 5), (5, 5), (5,)]
    np.testing.assert_array_equal(lstm.get_weights()[2], np.r_[np.zeros(5), np.ones(5), np.zeros(10)])
    out = LSTM(4, return_sequences=True, return_state=True)(x)
    assert [a.shape for a in out] == [(2, 4, 4), (2, 4), (2, 4)]
    assert [a.shape for a in GRU(4, return_state=True)(x)] == [(2, 4), (2, 4)]
    # go_backwards: the sequence output is in processing order (Keras 3), i.e. the forward layer on x reversed.
    back = GRU(3, go_backwards=True, return_sequences=True)
    y = back(x)
    fwd = GRU(3, return_sequences=True)
    fwd.build((None, 4, 3))
    fwd.set_weights(back.get_weights())
    assert_bitwise_equal(fwd(x[:, ::-1]), y)


def test_unsupported_options_say_so():
    with pytest.raises(NotImplementedError, match="tanh"):
        SimpleRNN(3, activation="relu")
    with pytest.raises(ValueError, match="rank 3"):
        GRU(3).build((None, 4))
    assert GRU(3, dropout=0.0).dropout == 0.0


def test_orthogonal_is_keras_orthogonal():
    for shape in [(5, 15), (15, 5), (4, 4), (2, 3, 4)]:
        w = initializers.get("orthogonal")(shape)
        flat = w.reshape(-1, shape[-1]).astype(np.float64)
        small = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
        np.testing.assert_allclose(small, np.eye(small.shape[0]), atol=1e-5)
    a = initializers.Orthogonal(gain=2.0, seed=3)((6, 6))
    np.testing.assert_array_equal(a, initializers.Orthogonal(gain=2.0, seed=3)((6, 6)))
    np.testing.assert_allclose(a.T @ a, 4 * np.eye(6), atol=1e-4)
    assert initializers.Orthogonal().get_config() == {"seed": None, "gain": 1.0}


def test_a_recurrent_model_trains_with_regularizers(rng):
    x = rng.standard_normal((16, 5, 3)).astype(np.float32)
    y = rng.standard_normal((16, 1)).astype(np.float32)
    model = keras.Sequential([keras.Input((5, 3)), LSTM(4, return_sequences=True, kernel_regularizer="l2"),
                              GRU(3, recurrent_regularizer="l1"), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    history = model.fit(x, y, epochs=5, batch_size=8, verbose=0).history["loss"]
    assert history[-1] < history[0]


def _rnn_model(kind, optimizer):
    L = keras.layers
    stacks = {
        "gru": [GRU(6, return_sequences=True, kernel_regularizer="l2"), GRU(5, reset_after=False, go_backwards=True)],
        "lstm": [LSTM(7, return_sequences=True, go_backwards=True), LSTM(4, recurrent_regularizer="l1")],
        "simple": [SimpleRNN(5, return_sequences=True), SimpleRNN(3, use_bias=False)],
        "mixed": [LSTM(4, return_sequences=True), GRU(3, return_sequences=True), SimpleRNN(5)],
    }
    model = keras.Sequential([keras.Input((6, 3))] + stacks[kind] + [L.Dense(3, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("kind", ["gru", "lstm", "simple", "mixed"])
def test_recurrent_models_train_in_the_plan_bit_for_bit_with_the_layer_path(rng, threads, kind, optimizer):
    from test_compiled_step import _fit_both

    x = rng.standard_normal((40, 6, 3)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    planned, plain = _fit_both(lambda: _rnn_model(kind, optimizer), x, y, batch_size=16)
    assert planned._compiled_step() is not None, planned._plan_reason


def test_a_model_built_on_one_sequence_length_runs_on_others_as_in_keras():
    """Keras checks only the rank of a model's input; the layers take the other sizes or say why not."""
    import gradsmith as keras

    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.layers.Embedding(20, 8), keras.layers.GRU(16, return_sequences=True),
                              keras.layers.Dense(20)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = rng.integers(0, 20, (16, 12))
    model.fit(x, x, epochs=1, verbose=0)
    assert model.predict(rng.integers(0, 20, (2, 30)), verbose=0).shape == (2, 30, 20)
    short = rng.integers(0, 20, (4, 7))
    model.fit(short, short, epochs=1, verbose=0)
    assert np.isfinite(model.evaluate(short, short, verbose=0))
    dense = keras.Sequential([keras.layers.Dense(3, input_shape=(5,))])
    with pytest.raises(ValueError, match="last axis 5"):
        dense.predict(np.ones((2, 6), np.float32), verbose=0)
    with pytest.raises(ValueError, match="input shape"):
        dense.predict(np.ones((2, 5, 1, 1), np.float32), verbose=0)

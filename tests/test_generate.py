"""Sequential.generate: stepping the model token by token gives what running the whole sequence gives; greedy
decoding, seeded sampling, top_k and stop tokens; the distribution follows the loss."""
import numpy as np
import pytest

import gradsmith as keras
from gradsmith import generation
from gradsmith.layers import GRU, LSTM, SimpleRNN, Dense, Activation

V = 7


class TokenStandIn(keras.layers.Layer):
    """A stand-in for Embedding: token ids (batch, steps) -> rows of a fixed table (batch, steps, 4)."""

    _steps_pointwise = True

    def build(self, input_shape):
        self.table = np.random.default_rng(0).standard_normal((V, 4)).astype(np.float32)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (4,)

    def forward(self, x, training=False):
        return self.table[np.asarray(x, np.int64)]


def _one_hot_model(final="linear", loss_logits=True, steps=None):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((steps, V)), Dense(5, activation="tanh"),
                              GRU(6, return_sequences=True), LSTM(5, return_sequences=True),
                              SimpleRNN(4, return_sequences=True), Dense(V, activation=final)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=loss_logits))
    return model


def _one_hot(ids):
    return np.eye(V, dtype=np.float32)[np.asarray(ids)]


def test_stepping_gives_the_outputs_of_the_whole_sequence():
    model = _one_hot_model(steps=9)
    ids = np.random.default_rng(2).integers(0, V, (3, 9))
    whole = model.predict(_one_hot(ids), verbose=0)
    stepper = generation.Stepper(model, 3)
    steps = np.concatenate([stepper.feed(_one_hot(ids[:, t:t + 1])) for t in range(9)], axis=1)
    np.testing.assert_array_equal(steps, whole)


def test_greedy_generation_is_the_argmax_of_the_whole_sequence_each_step():
    model = _one_hot_model(steps=None)
    out = model.generate([1, 4, 2], num_generated=6, temperature=0)
    assert out.shape == (9,) and list(out[:3]) == [1, 4, 2]
    for n in range(3, 9):
        scores = model.predict(_one_hot(out[None, :n]), verbose=0)
        assert out[n] == np.argmax(scores[0, -1])


def test_sampling_is_seeded_and_top_k_restricts_it():
    model = _one_hot_model()
    a = model.generate([3], num_generated=20, seed=5)
    np.testing.assert_array_equal(a, model.generate([3], num_generated=20, seed=5))
    assert not np.array_equal(a, model.generate([3], num_generated=20, seed=6))
    np.testing.assert_array_equal(model.generate([3], num_generated=10, top_k=1, seed=1),
                                  model.generate([3], num_generated=10, temperature=0))
    assert len(model.generate([3, 1], num_generated=0)) == 2


def test_stop_token_ends_generation_and_is_kept():
    model = _one_hot_model()
    greedy = model.generate([0], num_generated=12, temperature=0)
    stop = int(greedy[3])
    out = model.generate([0], num_generated=12, temperature=0, stop_token=stop)
    first = list(greedy[1:]).index(stop) + 1
    np.testing.assert_array_equal(out, greedy[:first + 1])


def test_batches_generate_row_by_row():
    model = _one_hot_model()
    rows = model.generate([[1, 2], [5, 0]], num_generated=4, temperature=0)
    assert rows.shape == (2, 6)
    np.testing.assert_array_equal(rows[1], model.generate([5, 0], num_generated=4, temperature=0))


def test_the_distribution_is_the_one_the_loss_trained():
    logits = np.array([[2.0, 0.5, -1.0]])
    np.testing.assert_allclose(np.exp(generation._log_probabilities(logits, True)),
                               np.exp(logits) / np.exp(logits).sum(), rtol=1e-12)
    p = np.array([[0.0, 0.3, 0.9]])
    clipped = np.clip(p, 1e-7, 1 - 1e-7)
    np.testing.assert_allclose(np.exp(generation._log_probabilities(p, False)), clipped / clipped.sum(), rtol=1e-12)
    # A softmax output under a probability loss samples its own probabilities: sampled frequencies follow them.
    model = _one_hot_model(final="softmax", loss_logits=False)
    assert not generation._loss_from_logits(model.loss)
    rng = np.random.default_rng(0)
    probs = np.array([[0.1, 0.6, 0.3]])
    draws = [generation._choose(np.log(probs), 1.0, None, rng)[0] for _ in range(4000)]
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / 4000, probs[0], atol=0.03)
    # top_k=2 never draws the least likely one.
    draws = [generation._choose(np.log(probs), 1.0, 2, rng)[0] for _ in range(500)]
    assert 0 not in draws


def test_token_id_inputs_step_through_an_embedding_like_first_layer():
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((None,)), TokenStandIn(), LSTM(8, return_sequences=True), Dense(V),
                              Activation("softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    out = model.generate([2, 3], num_generated=5, temperature=0)
    for n in range(2, 7):
        scores = model.predict(out[None, :n].astype(np.float32), verbose=0)
        assert out[n] == np.argmax(scores[0, -1])


def test_layers_that_mix_time_steps_cannot_be_stepped():
    model = keras.Sequential([keras.Input((4, V)), keras.layers.Conv1D(3, 2), keras.layers.Flatten(), Dense(V)])
    with pytest.raises(NotImplementedError, match="Conv1D"):
        model.generate([1], num_generated=2)
    with pytest.raises(ValueError, match="temperature"):
        _one_hot_model().generate([1], temperature=-1)


def test_each_token_is_one_step_and_the_prefix_is_never_run_again():
    model = _one_hot_model()
    calls = []
    gru = model.layers[1]
    original = gru.step

    def counted(x_t, state):
        calls.append(np.asarray(x_t).shape)
        return original(x_t, state)

    gru.step = counted
    out = model.generate([1, 2, 3, 4], num_generated=10, temperature=0)
    assert len(out) == 14
    assert len(calls) == 4 + 9 and all(shape[1] == 1 for shape in calls)  # one time step a call

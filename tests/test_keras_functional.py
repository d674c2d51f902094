"""The functional API, gradsmith.Model(inputs, outputs), for chains of layers."""
import numpy as np
import pytest

import gradsmith as keras


def _data(rng):
    x = rng.standard_normal((96, 12)).astype(np.float32)
    return x, (x[:, :3].sum(axis=1) > 0).astype(np.float32)


def _functional(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(12,))
    x = keras.layers.Dense(16, activation="relu")(inputs)
    x = keras.layers.Dropout(0.25, seed=5)(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs=inputs, outputs=outputs, name="chain")


def _sequential(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input(shape=(12,)), keras.layers.Dense(16, activation="relu"),
                             keras.layers.Dropout(0.25, seed=5), keras.layers.Dense(1, activation="sigmoid")])


def test_a_functional_chain_trains_as_its_sequential_twin(rng, tmp_path):
    x, y = _data(rng)
    results = []
    functional, sequential = _functional(3), _sequential(4)
    sequential.set_weights(functional.get_weights())  # the same start (draw order differs between the two)
    for model in (functional, sequential):
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        keras.utils.set_random_seed(9)
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0).history
        results.append((history, model.predict(x, verbose=0), model.get_weights()))
    (h1, p1, w1), (h2, p2, w2) = results
    assert h1 == h2
    np.testing.assert_array_equal(p1, p2)
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)


def test_a_functional_model_is_a_model_with_its_inputs_and_outputs(tmp_path, rng):
    model = _functional(0)
    assert isinstance(model, keras.Model) and model.name == "chain"
    assert len(model.layers) == 3 and model.count_params() == 12 * 16 + 16 + 16 + 1
    assert model.inputs[0].shape == (None, 12) and model.outputs[0].shape == (None, 1)
    model.compile(optimizer="sgd", loss="mse")
    x, y = _data(rng)
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "chain.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_lists_of_one_input_and_output_are_accepted():
    inputs = keras.Input(shape=(3,))
    outputs = keras.layers.Dense(2)(inputs)
    model = keras.Model([inputs], [outputs])
    assert model.outputs[0] is outputs


def test_graphs_beyond_a_chain_say_what_is_missing():
    a, b = keras.Input(shape=(3,)), keras.Input(shape=(3,))
    unused = keras.Model([a, b], keras.layers.Dense(1)(a))  # an input the outputs do not read is allowed
    assert unused.predict([np.ones((2, 3)), np.ones((2, 3))], verbose=0).shape == (2, 1)
    with pytest.raises(ValueError, match="not among the model's inputs"):
        keras.Model(a, keras.layers.Dense(1)(b))
    shared = keras.layers.Dense(3)
    twice = keras.Model(a, shared(shared(a)))  # one layer called twice: shared weights, a graph model
    assert twice.count_params() == 12 and len(twice.layers) == 1
    with pytest.raises(NotImplementedError, match="subclassed models"):
        keras.Model()
    with pytest.raises(TypeError, match="inputs must come from"):
        keras.Model(np.zeros(3), keras.layers.Dense(1)(a))

"""Subclassed models (``class MyModel(gradsmith.Model)`` with a ``call``): traced into a graph on the first
data, trained as the functional model of the same layers (a chain through the compiled step), with clear
errors for what a trace cannot follow."""
import numpy as np
import pytest

import gradsmith as keras

L = keras.layers


class MLP(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = L.Dense(16, activation="relu")
        self.drop = L.Dropout(0.2, seed=3)
        self.out = L.Dense(3)

    def call(self, inputs, training=False):
        return self.out(self.drop(self.hidden(inputs), training=training))


class Residual(keras.Model):
    def __init__(self):
        super().__init__(name="residual")
        self.a = L.Dense(6, activation="tanh")
        self.b = L.Dense(6)
        self.add = L.Add()
        self.head = L.Dense(1)

    def call(self, inputs):
        x = inputs["x"]
        h = self.a(x)
        for _ in range(2):  # Python around the layers: the same layer called twice shares its weights
            h = self.add([h, self.b(h)]) if _ == 0 else self.b(h)
        return self.head(L.concatenate([h, inputs["extra"]]))


class TextModel(keras.Model):
    def __init__(self):
        super().__init__()
        self.embed = L.Embedding(20, 8)
        self.rnn = L.GRU(8)
        self.out = L.Dense(1, activation="sigmoid")

    def call(self, ids):
        return self.out(self.rnn(self.embed(ids)))


def _data(rng, n=48):
    x = rng.standard_normal((n, 5)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)


def test_a_chain_trains_through_the_compiled_step_with_the_sequential_bits():
    rng = np.random.default_rng(0)
    x, y = _data(rng)
    runs = []
    for kind in ("subclassed", "subclassed-python", "sequential"):
        keras.utils.set_random_seed(4)
        if kind == "sequential":
            model = keras.Sequential([keras.Input((5,)), L.Dense(16, activation="relu"), L.Dropout(0.2, seed=3),
                                      L.Dense(3)])
        else:
            model = MLP()
            model.build((None, 5))
            if kind == "subclassed-python":
                model._chain = False
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        history = model.fit(x, y, epochs=3, batch_size=16, verbose=0, shuffle=False)
        if kind == "subclassed":
            assert model._plan is not None, model._plan_reason
        runs.append((model.get_weights(), history.history))
    for other in runs[1:]:
        for a, b in zip(runs[0][0], other[0]):
            np.testing.assert_array_equal(a, b)
        assert other[1] == runs[0][1]


def test_a_graph_with_dict_inputs_and_a_shared_layer_trains_and_saves(tmp_path):
    rng = np.random.default_rng(1)
    x = {"x": rng.standard_normal((40, 4)).astype(np.float32), "extra": rng.standard_normal((40, 2)).astype(np.float32)}
    y = rng.standard_normal((40, 1)).astype(np.float32)
    model = Residual()
    model.compile("adam", "mse")
    before = model.evaluate(x, y, verbose=0)  # traced here, from the first data
    model.fit(x, y, epochs=20, batch_size=8, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before
    assert model.name == "residual" and [type(l).__name__ for l in model.layers] == \
        ["Dense", "Dense", "Add", "Concatenate", "Dense"]
    path = tmp_path / "r.keras"
    model.save(path)
    back = keras.models.load_model(path)  # comes back as the functional model of its graph
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))


def test_integer_ids_trace_an_integer_input():
    rng = np.random.default_rng(2)
    ids = rng.integers(1, 20, (32, 6))
    y = (ids[:, 0] > 10).astype(np.float32)
    model = TextModel()
    model.compile("adam", "binary_crossentropy")
    model.fit(ids, y, epochs=2, verbose=0)
    assert model.inputs[0].input_dtype == "int64"
    assert model.predict(ids, verbose=0).shape == (32, 1)


def test_what_a_trace_cannot_follow_is_said():
    class Arithmetic(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = L.Dense(2)

        def call(self, x):
            return self.d(x) * 2.0

    with pytest.raises(NotImplementedError, match="could not be traced"):
        Arithmetic().predict(np.ones((2, 3), np.float32), verbose=0)
    with pytest.raises(ValueError, match="not built"):
        MLP().summary()
    with pytest.raises(TypeError, match="name= and trainable="):
        MLP(units=3)


def test_a_custom_training_loop_is_refused_not_ignored():
    class OwnStep(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = L.Dense(1)

        def call(self, x):
            return self.d(x)

        def train_step(self, data):
            raise AssertionError("never reached")

    with pytest.raises(NotImplementedError, match="train_step"):
        OwnStep()

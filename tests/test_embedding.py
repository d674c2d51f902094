"""Embedding: the kernels against the float64 reference, determinism for any thread count, the layer's
Keras surface (weight, config, ids of every dtype, errors), and the compiled step against the layer-by-layer
path (the same bits), including bad ids, which leave the model as it was."""
import numpy as np
import pytest

import gradsmith as keras
from gradsmith import ops

from reference import embedding as ref


def test_forward_and_backward_match_the_reference(rng):
    table = rng.standard_normal((13, 6)).astype(np.float32)
    ids = rng.integers(0, 13, (4, 7))
    ids[0, :3] = 5  # repeated ids: their gradients sum
    y = ops.embedding_forward(ids, table)
    assert y.shape == (4, 7, 6) and y.dtype == np.float32
    np.testing.assert_array_equal(y, ref.embedding_forward(ids, table).astype(np.float32))
    dy = rng.standard_normal((4, 7, 6)).astype(np.float32)
    g = ops.embedding_backward(ids, dy, 13)
    np.testing.assert_allclose(g, ref.embedding_backward(ids, dy, 13), rtol=1e-6, atol=1e-6)
    unused = np.setdiff1d(np.arange(13), ids)
    assert np.all(g[unused] == 0)


def test_backward_is_the_same_bits_for_any_thread_count(rng):
    ids = rng.integers(0, 50, 20000)
    dy = rng.standard_normal((20000, 33)).astype(np.float32)
    results = []
    before = keras.get_num_threads()
    for threads in (1, 2, 4):
        keras.set_num_threads(threads)
        try:
            results.append(ops.embedding_backward(ids, dy, 50))
        finally:
            keras.set_num_threads(before)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    # each row sums its ids in increasing position, in float32
    v = int(ids[0])
    rows = np.flatnonzero(ids == v)
    acc = np.zeros(33, np.float32)
    for k in rows:
        acc = acc + dy[k]
    np.testing.assert_array_equal(results[0][v], acc)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.float32, np.float64])
def test_ids_of_every_dtype(rng, dtype):
    table = rng.standard_normal((10, 3)).astype(np.float32)
    ids = rng.integers(0, 10, (5, 4))
    np.testing.assert_array_equal(ops.embedding_forward(ids.astype(dtype), table), table[ids])


def test_bad_ids_are_clear_errors(rng):
    table = np.zeros((10, 3), np.float32)
    with pytest.raises(ValueError, match=r"id 10 at \(1, 2\) is outside the vocabulary \[0, 10\)"):
        ops.embedding_forward(np.array([[0, 1, 2], [3, 4, 10]]), table)
    with pytest.raises(ValueError, match=r"id -1 at \(0,\) is outside"):
        ops.embedding_forward(np.array([-1, 2]), table)
    with pytest.raises(ValueError, match="not a whole number"):
        ops.embedding_forward(np.array([1.5, 2.0]), table)
    with pytest.raises(ValueError, match="not a whole number"):
        ops.embedding_forward(np.array([np.nan]), table)
    with pytest.raises(TypeError):
        ops.embedding_forward(np.array(["a"]), table)


def test_the_layer_has_keras_weight_config_and_defaults():
    layer = keras.layers.Embedding(100, 8, name="emb")
    y = layer(np.array([[1, 2, 3]]))
    assert y.shape == (1, 3, 8)
    assert [w.shape for w in layer.weights] == [(100, 8)]
    assert layer._weights[0].name.endswith("embeddings")
    assert np.all(np.abs(layer.embeddings) <= 0.05)  # 'uniform': RandomUniform(-0.05, 0.05)
    config = layer.get_config()
    assert config["input_dim"] == 100 and config["output_dim"] == 8 and config["mask_zero"] is False
    assert config["embeddings_initializer"]["class_name"] == "RandomUniform"
    again = keras.layers.Embedding.from_config(config)
    assert (again.input_dim, again.output_dim) == (100, 8)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="input_dim"):
            keras.layers.Embedding(bad, 4)


def test_large_int_ids_reach_the_layer_exactly(rng):
    layer = keras.layers.Embedding(2 ** 24 + 10, 1, embeddings_initializer="zeros")
    model = keras.Sequential([keras.Input((2,)), layer])
    layer._embeddings.value[2 ** 24 + 1] = 7.0  # float32 would read the id 2**24 + 1 as 2**24
    out = model.predict(np.array([[2 ** 24 + 1, 0]]), verbose=0)
    assert out[0, 0, 0] == 7.0 and out[0, 1, 0] == 0.0
    with pytest.raises(keras.layers.NoCompiledForm, match="2\\^24"):
        layer._compiled_config((2,), lambda a: 0)


def test_mask_zero_computes_the_mask():
    layer = keras.layers.Embedding(10, 2, mask_zero=True)
    np.testing.assert_array_equal(layer.compute_mask(np.array([[0, 3]])), [[False, True]])
    assert layer(np.array([[1, 2]])).shape == (1, 2, 2)
    assert layer(np.array([[0, 2]])).shape == (1, 2, 2)  # the mask goes along in a model (tests/test_masking.py)


def _text_model(head="pool", vocab=30, seed=3):
    keras.utils.set_random_seed(seed)
    body = {"pool": [keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(4, activation="softmax")],
            "flatten": [keras.layers.Flatten(), keras.layers.Dense(4, activation="softmax")],
            "steps": [keras.layers.Dense(vocab)]}[head]
    model = keras.Sequential([keras.Input((6,)), keras.layers.Embedding(vocab, 5,
                                                                         embeddings_regularizer="l2")] + body)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True) if head == "steps" \
        else "sparse_categorical_crossentropy"
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


@pytest.mark.parametrize("head", ["pool", "flatten"])
def test_compiled_step_matches_the_layer_by_layer_path(rng, head):
    x = rng.integers(0, 30, (40, 6))
    y = rng.integers(0, 4, 40)
    models = []
    for python_only in (False, True):
        model = _text_model(head)
        if python_only:
            model._compiled_step = lambda: None
        keras.utils.set_random_seed(5)
        h = model.fit(x, y, batch_size=8, epochs=2, verbose=0).history
        models.append((model, h))
    (planned, h1), (plain, h2) = models
    assert planned._plan is not None, planned._plan_reason
    np.testing.assert_array_equal(planned.parameters, plain.parameters)
    for key in h1:
        np.testing.assert_allclose(h1[key], h2[key], rtol=1e-12, err_msg=key)
    np.testing.assert_array_equal(planned.predict(x, verbose=0), plain.predict(x, verbose=0))


def test_bad_ids_in_the_compiled_step_leave_the_model_as_it_was(rng):
    model = _text_model("pool")
    x = rng.integers(0, 30, (16, 6))
    y = rng.integers(0, 4, 16)
    model.train_on_batch(x, y)
    assert model._plan is not None, model._plan_reason
    params, iterations = model.parameters.copy(), int(model.optimizer.iterations)
    for bad_value, message in ((30, r"input id 30 \(sample 3, position 4\) is outside the vocabulary \[0, 30\)"),
                               (-2, r"input id -2 \(sample 3, position 4\)"),
                               (2.5, "not a whole number")):
        bad = x.astype(np.float64) if isinstance(bad_value, float) else x.copy()
        bad[3, 4] = bad_value
        with pytest.raises(ValueError, match=message):
            model.train_on_batch(bad, y)
        np.testing.assert_array_equal(model.parameters, params)
        assert int(model.optimizer.iterations) == iterations
    model.train_on_batch(x, y)  # and it still trains


def test_functional_model_with_int_input(rng):
    inputs = keras.Input((6,), dtype="int32")
    h = keras.layers.Embedding(30, 5)(inputs)
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.GlobalAveragePooling1D()(h))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = rng.integers(0, 30, (16, 6)), rng.integers(0, 4, 16)
    model.fit(x, y, epochs=1, verbose=0)
    assert model._plan is not None, model._plan_reason
    table = model.layers[1].embeddings if type(model.layers[1]).__name__ == "Embedding" else model.layers[0].embeddings
    assert model.predict(x, verbose=0).shape == (16, 4) and table.shape == (30, 5)


def test_dense_after_an_embedding_counts_every_steps_flops():
    model = keras.Sequential([keras.Input((100,), dtype="int32"), keras.layers.Embedding(65, 256),
                              keras.layers.Dense(65)])
    assert model.layers[1].flops() == 100 * (2 * 256 * 65 + 65)
    assert model.layers[0].flops() == 0 and model.count_params() == 65 * 256 + 256 * 65 + 65

"""Sequential models: Keras's training API over the kernels, checked against the NumPy reference
and Keras's documented behaviour."""
import os
import sys

import numpy as np
import pytest

import gradsmith as keras
import reference as R

EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "examples")


def small_model(activation="relu", optimizer="sgd", loss="mse", metrics=None, seed=1):
    model = keras.Sequential([
        keras.layers.Dense(5, activation=activation, input_shape=(4,),
                           kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                           bias_initializer=keras.initializers.RandomUniform(seed=seed + 1)),
        keras.layers.Dense(3, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 2)),
    ])
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return model


def data(rng, n=16, classes=None):
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = rng.integers(0, classes, n) if classes else rng.standard_normal((n, 3)).astype(np.float32)
    return x, y


# --------------------------------------------------------------------------- the examples
def run_example(name, seed=0, **kwargs):
    """Run examples/<name>.py's main; the programs are unseeded as users write them, so seed here."""
    keras.utils.set_random_seed(seed)
    sys.path.insert(0, os.path.abspath(EXAMPLES))
    try:
        module = __import__(name)
        return module.main(**kwargs)
    finally:
        sys.path.pop(0)


def test_example_binary_classifier():
    acc, ds_acc = run_example("binary_classifier", n=600, epochs=5, verbose=0)
    assert acc > 0.8 and ds_acc > 0.8


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_example_linear_regression(seed):
    loss, prediction = run_example("linear_regression", seed=seed)
    assert isinstance(loss, float)
    assert prediction.shape == (2, 1) and prediction.dtype == np.float32
    # SGD(0.01) for 1000 epochs from a Glorot start: well on the way to the exact fit, not at it.
    assert loss < 0.05
    np.testing.assert_allclose(prediction.ravel(), [3, 4], atol=0.3)


def test_example_small_classifier():
    assert run_example("small_classifier") > 0.8


# --------------------------------------------------------------------------- numbers
def test_one_sgd_step_matches_the_reference(rng):
    """train_on_batch = forward, loss gradient, backward and SGD, all checked in float64."""
    model = small_model(activation="tanh", optimizer=keras.optimizers.SGD(learning_rate=0.1))
    x, y = data(rng)
    w1, b1, w2, b2 = [w.astype(np.float64) for w in model.get_weights()]
    h, z1 = R.dense_forward(x, w1, b1, "tanh")
    out, _ = R.dense_forward(h, w2, b2, "linear")
    loss = R.loss_value("mse", y, out)
    g = R.loss_grad("mse", y, out)
    dh, dw2, db2 = R.dense_backward(g, h, w2, out, "linear")
    _, dw1, db1 = R.dense_backward(dh, x, w1, z1, "tanh")
    want = [w - 0.1 * d for w, d in zip((w1, b1, w2, b2), (dw1, db1, dw2, db2))]

    got_loss = model.train_on_batch(x, y)
    assert got_loss == pytest.approx(loss, rel=1e-5)
    for got, expect in zip(model.get_weights(), want):
        np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-6)


def test_epoch_loss_is_the_sample_weighted_mean_of_batch_losses(rng):
    model = small_model()
    x, y = data(rng, n=10)
    before = model.get_weights()
    history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    model.set_weights(before)
    losses = [model.train_on_batch(x[i:i + 4], y[i:i + 4]) for i in range(0, 10, 4)]
    want = (losses[0] * 4 + losses[1] * 4 + losses[2] * 2) / 10
    assert history.history["loss"][0] == pytest.approx(want, rel=1e-6)


def test_weights_live_in_one_flat_buffer(rng):
    model = small_model()
    assert model.parameters.dtype == np.float32
    assert model.parameters.size == model.count_params() == 4 * 5 + 5 + 5 * 3 + 3
    for w in model.weights:
        assert np.shares_memory(w, model.parameters)
    kernel = model.layers[0].kernel
    assert kernel.shape == (4, 5)
    model.fit(*data(rng), epochs=1, verbose=0)
    assert np.shares_memory(model.layers[0].kernel, model.parameters)


# --------------------------------------------------------------------------- API surface
def test_history_and_evaluate_return_types(rng):
    model = small_model(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = data(rng, n=20, classes=3)
    history = model.fit(x, y, epochs=3, validation_data=(x, y), verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 for v in history.history.values())
    result = model.evaluate(x, y, verbose=0)
    assert isinstance(result, list) and len(result) == 2
    assert set(model.evaluate(x, y, verbose=0, return_dict=True)) == {"loss", "accuracy"}
    plain = small_model()
    xr, yr = data(rng)
    assert isinstance(plain.evaluate(xr, yr, verbose=0), float)


def test_predict_shapes_and_dtypes(rng):
    model = small_model()
    x = rng.integers(-3, 3, (7, 4))  # integers are accepted
    out = model.predict(x, batch_size=3, verbose=0)
    assert out.shape == (7, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, model.predict_on_batch(x))
    np.testing.assert_allclose(out, model.predict(x.tolist(), verbose=0))


def test_summary_lists_layers_and_counts(capsys):
    model = keras.Sequential([keras.Input(shape=(20,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.summary()
    out = capsys.readouterr().out
    assert "Dense" in out and "(None, 128)" in out and "2,688" in out and "Total params: 2,817" in out
    assert "FLOPs" in out


def test_set_weights_checks_everything_first(rng):
    model = small_model()
    before = model.get_weights()
    bad = [w + 1 for w in before]
    bad[-1] = np.zeros(4)
    with pytest.raises(ValueError, match="shape"):
        model.set_weights(bad)
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)


def test_get_layer_and_trainable(rng):
    model = small_model()
    first = model.get_layer(index=0)
    assert model.get_layer(first.name) is first
    with pytest.raises(ValueError):
        model.get_layer("nope")
    first.trainable = False
    frozen = first.get_weights()
    model.fit(*data(rng), epochs=2, verbose=0)
    for w, b in zip(first.get_weights(), frozen):
        np.testing.assert_array_equal(w, b)
    assert len(model.trainable_weights) == 2


def test_generator_and_dataset_inputs(rng):
    x, y = data(rng, n=32)

    def gen():
        for i in range(0, 32, 8):
            yield x[i:i + 8], y[i:i + 8]

    model = small_model()
    history = model.fit(gen(), epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1
    ds = keras.data.Dataset.from_tensor_slices((x, y)).batch(8)
    assert isinstance(model.evaluate(ds, verbose=0), float)


def test_validation_split_takes_the_last_samples(rng):
    x, y = data(rng, n=20)
    model = small_model()
    history = model.fit(x, y, validation_split=0.25, epochs=1, verbose=0, shuffle=False)
    expected_val = model.evaluate(x[15:], y[15:], verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(expected_val, rel=1e-6)


def test_class_weight_equals_sample_weight(rng):
    x, y = data(rng, n=12, classes=2)
    a = small_model(loss="sparse_categorical_crossentropy")
    b = small_model(loss="sparse_categorical_crossentropy")
    a.fit(x, y, class_weight={0: 0.5, 1: 2.0}, epochs=2, shuffle=False, verbose=0)
    b.fit(x, y, sample_weight=np.where(y == 0, 0.5, 2.0), epochs=2, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_dropout_only_while_training(rng):
    model = keras.Sequential([keras.layers.Dense(64, input_shape=(4,)), keras.layers.Dropout(0.5, seed=3)])
    x = rng.standard_normal((8, 4)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model(x))
    trained = model(x, training=True)
    assert np.mean(trained == 0) > 0.3


# --------------------------------------------------------------------------- saving
def test_save_and_load_round_trip(tmp_path, rng):
    x, y = data(rng)
    model = small_model(optimizer="adam")
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    # The optimizer state came along: one more step gives the same weights.
    model.train_on_batch(x, y)
    loaded.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_save_weights_and_load_weights(tmp_path, rng):
    model = small_model()
    path = tmp_path / "w.weights.h5"
    model.save_weights(path)
    other = small_model(seed=7)
    other.load_weights(path)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_failed_save_leaves_the_old_file(tmp_path, rng):
    model = small_model()
    path = tmp_path / "m.keras"
    model.save(path)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        model.save(tmp_path / "m.h5")  # wrong extension: refused before writing
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]  # no temporary files left


# --------------------------------------------------------------------------- bad input
def test_fit_before_compile_is_an_error(rng):
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(4,))])
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(*data(rng), verbose=0)


@pytest.mark.parametrize("case", ["length", "features", "dtype"])
def test_bad_data_raises_and_changes_nothing(rng, case):
    model = small_model()
    x, y = data(rng)
    if case == "length":
        y = y[:-1]
    elif case == "features":
        x = x[:, :3]
    else:
        x = x.astype(np.complex64)
    before = model.get_weights()
    with pytest.raises((ValueError, TypeError)):
        model.fit(x, y, verbose=0)
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)


def test_unknown_names_are_value_errors():
    with pytest.raises(ValueError):
        keras.layers.Dense(3, activation="relux")
    with pytest.raises(ValueError):
        keras.layers.Dense(0)
    with pytest.raises(ValueError):
        keras.layers.Dropout(1.0)


# --------------------------------------------------------------------------- seeds
def train_seeded(seed, threads):
    keras.set_num_threads(threads)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.layers.Dense(32, activation="relu", input_shape=(6,)),
                              keras.layers.Dropout(0.3), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    return model.get_weights()


def test_set_random_seed_gives_bit_identical_training_for_any_thread_count():
    before = keras.get_num_threads()
    try:
        a = train_seeded(42, 1)
        b = train_seeded(42, max(2, before))
        c = train_seeded(43, 1)
    finally:
        keras.set_num_threads(before)
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a, c))


def test_predict_on_zero_rows_is_empty(rng):
    model = small_model()
    out = model.predict(np.zeros((0, 4), np.float32), verbose=0)
    assert out.shape == (0, 3) and out.dtype == np.float32


def test_gelu_in_a_layer_is_kerass_exact_form(rng):
    """keras.activations.gelu (what activation='gelu' means) defaults to approximate=False."""
    x = rng.standard_normal((6, 4)).astype(np.float32)
    layer = keras.layers.Activation("gelu")
    np.testing.assert_allclose(layer(x), R.activation_forward(x, "gelu", approximate=False), rtol=1e-6, atol=1e-7)


def test_dropout_noise_shape_broadcasts_one_mask():
    """Keras's noise_shape: None entries take the input's size; (None, 1) keeps or drops whole rows."""
    layer = keras.layers.Dropout(0.4, noise_shape=(None, 1), seed=3)
    x = np.arange(1, 2001, dtype=np.float32).reshape(200, 10)
    y = layer(x, training=True)
    kept = np.all(y != 0, axis=1)
    assert np.all(kept | np.all(y == 0, axis=1))  # whole rows
    np.testing.assert_array_equal(y[kept], x[kept] / np.float32(0.6))
    assert 0.45 < kept.mean() < 0.75
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx != 0, y != 0)  # the same mask in backward
    np.testing.assert_array_equal(layer(x, training=False), x)
    assert not np.array_equal(layer(x, training=True), y)  # a new mask per call
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert clone.noise_shape == (None, 1)
    with pytest.raises(ValueError, match="noise_shape"):
        keras.layers.Dropout(0.5, noise_shape=(None, 3))(x, training=True)


def test_dropout_noise_shape_trains_through_the_compiled_step(tmp_path):
    model = keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(8),
                                  keras.layers.Dropout(0.5, noise_shape=(None, 1)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).standard_normal((32, 4)).astype(np.float32)
    model.fit(x, x[:, :1], epochs=2, verbose=0)
    assert model._plan is not None, model._plan_reason
    model.save(tmp_path / "m.keras")
    assert keras.saving.load_model(tmp_path / "m.keras").layers[1].noise_shape == (None, 1)

"""The training loop against hostile use (issue 14): shared layers, EMA, Ctrl-C, steps_per_epoch,
callbacks in evaluate / predict, bad data rejected before the first step, and absurd arguments.
Each test names the Keras 3 behaviour it checks."""
import signal
import threading
import time
import warnings

import numpy as np
import pytest

import gradsmith as keras
from gradsmith.layers import Dense

PATHS = ["compiled", "layer_by_layer"]


def dense(units, seed, **kwargs):
    return Dense(units, kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                 bias_initializer=keras.initializers.RandomUniform(seed=seed + 100), **kwargs)


def use_path(model, path):
    if path == "layer_by_layer":
        model._compiled_step = lambda: None  # every step through the Python layers
    return model


def regression(rng, n=48, features=4, out=1):
    return rng.standard_normal((n, features)).astype(np.float32), rng.standard_normal((n, out)).astype(np.float32)


# --------------------------------------------------------------------------- 6: a layer shared by two models
@pytest.mark.parametrize("path", PATHS)
def test_shared_layer_trains_through_either_model(rng, path, tmp_path):
    """Keras: a layer in two models is one set of weights; training A, then B, then A again updates them
    each time, and what the layer shows is what both models show, get and save. A's optimizer state
    carries over B's training (checked against a model that was never shared, given B's result)."""
    x, y = regression(rng)
    y3 = rng.standard_normal((48, 3)).astype(np.float32)
    trunk, head = dense(8, 1, input_shape=(4,), activation="tanh"), dense(1, 2)
    a = use_path(keras.Sequential([trunk, head]), path)
    a.compile(keras.optimizers.Adam(0.01), "mse")
    ref = keras.Sequential([dense(8, 1, input_shape=(4,), activation="tanh"), dense(1, 2)])
    ref.compile(keras.optimizers.Adam(0.01), "mse")
    np.testing.assert_array_equal(np.concatenate([w.ravel() for w in a.get_weights()]),
                                  np.concatenate([w.ravel() for w in ref.get_weights()]))

    a.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    ref.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    b = use_path(keras.Sequential(a.layers[:-1] + [dense(3, 3)]), path)  # transfer learning
    assert b.layers[0] is trunk
    b.compile("sgd", "mse")
    before_b = trunk.get_weights()
    b.fit(x, y3, batch_size=16, epochs=1, shuffle=False, verbose=0)
    after_b = trunk.get_weights()
    assert not np.array_equal(before_b[0], after_b[0])  # B trained the shared layer
    for got, want in zip(a.get_weights()[:2], after_b):  # ... and A sees it
        np.testing.assert_array_equal(got, want)

    ref.layers[0].set_weights(after_b)  # the reference: the same weights, its optimizer never disturbed
    a.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    ref.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    assert int(a.optimizer.iterations) == int(ref.optimizer.iterations) == 12
    for got, want in zip(a.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    for got, want in zip(trunk.get_weights(), a.get_weights()[:2]):  # the layer shows A's training
        np.testing.assert_array_equal(got, want)
    for got, want in zip(b.get_weights()[:2], trunk.get_weights()):  # ... and so does B
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(a.parameters[:trunk.count_params()],
                                  np.concatenate([w.ravel() for w in trunk.get_weights()]))

    # B again, then saving A saves the weights the layer shows now
    b.fit(x, y3, batch_size=16, epochs=1, shuffle=False, verbose=0)
    a.save(tmp_path / "a.keras")
    loaded = keras.models.load_model(tmp_path / "a.keras")
    for got, want in zip(loaded.get_weights(), a.get_weights()):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(loaded.get_weights()[0], trunk.get_weights()[0])


def test_shared_layer_evaluate_and_predict_see_the_latest_weights(rng):
    """predict through A's compiled step after B trained the shared layer uses B's result."""
    x, y = regression(rng)
    trunk = dense(8, 1, input_shape=(4,))
    a = keras.Sequential([trunk, dense(1, 2)])
    a.compile("sgd", "mse")
    a.fit(x, y, batch_size=16, verbose=0)  # A's compiled step exists
    b = keras.Sequential([trunk, dense(1, 4)])
    b.compile("sgd", "mse")
    b.fit(x, y * 3, batch_size=16, epochs=3, verbose=0)
    expected = (x @ trunk.get_weights()[0] + trunk.get_weights()[1]) @ a.layers[1].get_weights()[0] \
        + a.layers[1].get_weights()[1]
    np.testing.assert_allclose(a.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)
    loss = a.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(loss, np.mean((expected - y) ** 2), rtol=1e-5)


# --------------------------------------------------------------------------- 8: use_ema
def test_use_ema_ends_fit_with_the_moving_average(rng):
    """Keras: with use_ema the trainable weights are overwritten by their EMA at the end of fit
    (average = w after the first step, then m * average + (1 - m) * w after each)."""
    x, y = regression(rng, n=40)
    ema = keras.Sequential([dense(3, 5, input_shape=(4,)), dense(1, 6)])
    ema.compile(keras.optimizers.SGD(0.05, use_ema=True, ema_momentum=0.9), "mse")
    plain = keras.Sequential([dense(3, 5, input_shape=(4,)), dense(1, 6)])
    plain.compile(keras.optimizers.SGD(0.05), "mse")
    average = []

    class Track(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            weights = [w.astype(np.float32) for w in plain.get_weights()]
            momentum = np.float32(0.0 if not average else 0.9)
            if not average:
                average.extend(weights)
            else:
                average[:] = [momentum * a + (np.float32(1) - momentum) * w for a, w in zip(average, weights)]

    plain.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[Track()])
    ema.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert int(ema.optimizer.iterations) == 10
    for got, want in zip(ema.get_weights(), average):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert not np.allclose(ema.get_weights()[0], plain.get_weights()[0])


# --------------------------------------------------------------------------- 9: Ctrl-C during fit
def _interrupt_after_calls(monkeypatch, model, calls):
    """SIGINT raised right after the ``calls``-th call into C++ returns (the worst moment: before the
    Python side has counted the steps it ran). Returns the list of steps each call ran."""
    ran = []
    step = model._compiled_step()
    plan = step.plan

    class Plan:
        def __getattr__(self, name):
            return getattr(plan, name)

        def train_steps(self, x, *args):
            out = plan.train_steps(x, *args)
            ran.append(len(out[0]))
            if len(ran) == calls:
                signal.raise_signal(signal.SIGINT)
            return out

    step.plan = Plan()
    return ran


@pytest.mark.parametrize("run_seconds", [0.0, 0.25])
def test_ctrl_c_stops_between_steps_with_iterations_and_weights_consistent(rng, monkeypatch, run_seconds):
    """Ctrl-C in a verbose=0 fit: the epoch goes to C++ in bounded runs, the interrupt is raised after
    the run that was going, and the weights and optimizer.iterations are those after exactly the steps
    that ran (checked against a model trained for that many steps)."""
    x, y = regression(rng, n=400)
    model = keras.Sequential([dense(6, 7, input_shape=(4,)), dense(1, 8)])
    model.compile(keras.optimizers.Adam(0.01), "mse")
    model.build((None, 4))
    monkeypatch.setattr(type(model), "_RUN_SECONDS", run_seconds)
    monkeypatch.setattr(type(model), "_FIRST_RUN", 3)
    ran = _interrupt_after_calls(monkeypatch, model, calls=2)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    steps = sum(ran)
    assert len(ran) == 2 and ran[0] == 3 and steps <= 100  # an epoch is 100 steps: stopped inside the first
    assert int(model.optimizer.iterations) == steps
    ref = keras.Sequential([dense(6, 7, input_shape=(4,)), dense(1, 8)])
    ref.compile(keras.optimizers.Adam(0.01), "mse")
    ref.fit(x[:steps * 4], y[:steps * 4], batch_size=4, shuffle=False, verbose=0)
    for got, want in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(got, want)
    # the handler is Python's again, and training goes on from there
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert int(model.optimizer.iterations) == steps + 100


def test_ctrl_c_in_a_layer_by_layer_fit_stops_after_the_step(rng, monkeypatch):
    x, y = regression(rng, n=64)
    model = use_path(keras.Sequential([dense(6, 7, input_shape=(4,)), dense(1, 8)]), "layer_by_layer")
    model.compile(keras.optimizers.Adam(0.01), "mse")
    model.build((None, 4))
    apply = model.optimizer.apply
    calls = []

    def interrupted_apply(*args, **kwargs):  # SIGINT arrives in the middle of the update
        calls.append(1)
        if len(calls) == 5:
            signal.raise_signal(signal.SIGINT)
        return apply(*args, **kwargs)

    model.optimizer.apply = interrupted_apply
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=4, shuffle=False, verbose=0)
    assert int(model.optimizer.iterations) == 5
    ref = keras.Sequential([dense(6, 7, input_shape=(4,)), dense(1, 8)])
    ref.compile(keras.optimizers.Adam(0.01), "mse")
    ref.fit(x[:20], y[:20], batch_size=4, shuffle=False, verbose=0)
    for got, want in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_long_verbose0_epoch_is_interruptible_in_bounded_time(rng):
    """A real SIGINT from another thread, into an epoch of several seconds, ends fit within about a run
    (0.25 s) instead of at the end of the epoch."""
    x = rng.standard_normal((100_000, 64)).astype(np.float32)
    y = rng.standard_normal((100_000, 1)).astype(np.float32)
    model = keras.Sequential([dense(256, 1, input_shape=(64,), activation="relu"), dense(256, 2), dense(1, 3)])
    model.compile("adam", "mse")
    sent = []

    def interrupt():
        time.sleep(0.5)
        sent.append(time.perf_counter())
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=8, epochs=50, shuffle=False, verbose=0)
    latency = time.perf_counter() - sent[0]
    assert latency < 2.0, latency
    steps = int(model.optimizer.iterations)
    assert 0 < steps < 12_500  # inside the first epoch


# --------------------------------------------------------------------------- 10: steps_per_epoch
@pytest.mark.parametrize("path", PATHS)
def test_steps_per_epoch_continues_over_arrays_and_ends_early_with_a_warning(rng, path):
    """Keras 3 EpochIterator: 10 batches of data, steps_per_epoch=4: epochs of 4, 4, then 2 (the data
    ran out: a warning), then a new pass of 4."""
    x, y = regression(rng, n=40)
    seen = []

    class Rows(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(int(self.model.optimizer.iterations))

    model = use_path(keras.Sequential([dense(2, 1, input_shape=(4,)), dense(1, 2)]), path)
    model.compile("sgd", "mse")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=4, epochs=4, steps_per_epoch=4, shuffle=False, verbose=0, callbacks=[Rows()])
    assert seen == [4, 8, 10, 14]
    assert sum("ran out of data" in str(w.message) for w in caught) == 1
    # the same steps as one pass of the data then 4 more batches
    ref = keras.Sequential([dense(2, 1, input_shape=(4,)), dense(1, 2)])
    ref.compile("sgd", "mse")
    ref.fit(np.concatenate([x, x[:16]]), np.concatenate([y, y[:16]]), batch_size=4, shuffle=False, verbose=0)
    for got, want in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_steps_per_epoch_over_a_dataset_warns_when_it_runs_out(rng):
    x, y = regression(rng, n=40)
    ds = keras.data.Dataset.from_tensor_slices((x, y)).batch(4) if hasattr(keras, "data") else None
    if ds is None:
        pytest.skip("no gradsmith.data")
    model = keras.Sequential([dense(2, 1, input_shape=(4,)), dense(1, 2)])
    model.compile("sgd", "mse")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(ds, epochs=2, steps_per_epoch=15, verbose=0)
    assert int(model.optimizer.iterations) == 20
    assert sum("ran out of data" in str(w.message) for w in caught) == 2


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_steps_per_epoch_must_be_a_positive_integer(rng, bad):
    x, y = regression(rng, n=8)
    model = keras.Sequential([dense(1, 1, input_shape=(4,))])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="steps_per_epoch"):
        model.fit(x, y, steps_per_epoch=bad, verbose=0)


# --------------------------------------------------------------------------- callbacks in evaluate / predict
class Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def __getattribute__(self, name):
        if name.startswith("on_"):
            return lambda *args, **kwargs: object.__getattribute__(self, "calls").append(
                (name,) + args + tuple(kwargs.values()))
        return object.__getattribute__(self, name)


def test_evaluate_and_predict_call_their_hooks_with_keras_logs(rng):
    x, y = regression(rng, n=10)
    model = keras.Sequential([dense(1, 1, input_shape=(4,))])
    model.compile("sgd", "mse", metrics=["mae"])
    rec = Recorder()
    result = model.evaluate(x, y, batch_size=4, callbacks=[rec], verbose=0, return_dict=True)
    names = [c[0] for c in rec.calls]
    assert names == ["on_test_begin"] + ["on_test_batch_begin", "on_test_batch_end"] * 3 + ["on_test_end"]
    assert [c[1] for c in rec.calls[1:-1]] == [0, 0, 1, 1, 2, 2]
    assert sorted(rec.calls[2][2]) == ["loss", "mae"] and rec.calls[-1][1] == result

    rec = Recorder()
    out = model.predict(x, batch_size=4, callbacks=[rec], verbose=0)
    names = [c[0] for c in rec.calls]
    assert names == ["on_predict_begin"] + ["on_predict_batch_begin", "on_predict_batch_end"] * 3 + ["on_predict_end"]
    batches = [c[2]["outputs"] for c in rec.calls if c[0] == "on_predict_batch_end"]
    np.testing.assert_array_equal(np.concatenate(batches), out)
    assert [len(b) for b in batches] == [4, 4, 2]


# --------------------------------------------------------------------------- a failed fit leaves the weights
@pytest.mark.parametrize("label", [7, -1, np.nan, 0.5, 2 ** 64 - 1])
@pytest.mark.parametrize("path", PATHS)
def test_a_bad_sparse_label_anywhere_is_refused_before_the_first_step(rng, label, path):
    x = rng.standard_normal((64, 4)).astype(np.float32)
    dtype = np.uint64 if label == 2 ** 64 - 1 else np.float64 if isinstance(label, float) else np.int64
    y = np.zeros(64, dtype)
    y[61] = label
    model = use_path(keras.Sequential([dense(3, 1, input_shape=(4,))]), path)
    model.compile("sgd", "sparse_categorical_crossentropy")
    before = model.get_weights()
    shown = "18446744073709551615" if label == 2 ** 64 - 1 else None
    with pytest.raises(ValueError, match=shown or "label"):
        model.fit(x, y, batch_size=8, shuffle=False, verbose=0)
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)
    assert int(model.optimizer.iterations) == 0


def test_a_uint64_label_is_named_as_given_in_train_on_batch(rng):
    model = keras.Sequential([dense(3, 1, input_shape=(4,))])
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="18446744073709551615"):
        model.train_on_batch(rng.standard_normal((2, 4)).astype(np.float32), np.array([0, 2 ** 64 - 1], np.uint64))


@pytest.mark.parametrize("loss, val_y", [("mse", np.zeros((16, 3), np.float32)),
                                         ("sparse_categorical_crossentropy", np.full(16, 5))])
def test_bad_validation_targets_are_refused_before_the_first_step(rng, loss, val_y):
    x = rng.standard_normal((32, 4)).astype(np.float32)
    y = np.zeros((32, 1), np.float32) if loss == "mse" else np.zeros(32, np.int64)
    model = keras.Sequential([dense(1 if loss == "mse" else 3, 1, input_shape=(4,))])
    model.compile("sgd", loss)
    before = model.get_weights()
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(x, y, validation_data=(x[:16], val_y), verbose=0)
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)


def test_validation_inputs_of_the_wrong_width_are_refused_before_the_first_step(rng):
    x, y = regression(rng, n=32)
    model = keras.Sequential([dense(1, 1, input_shape=(4,))])
    model.compile("sgd", "mse")
    before = model.get_weights()
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(x, y, validation_data=(np.zeros((8, 5), np.float32), y[:8]), verbose=0)
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- 15: the loop's arguments
@pytest.mark.parametrize("freq", [0, -2, 1.5, "2", None])
def test_validation_freq_is_checked_before_training(rng, freq):
    x, y = regression(rng, n=16)
    model = keras.Sequential([dense(1, 1, input_shape=(4,))])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="validation_freq"):
        model.fit(x, y, validation_data=(x, y), validation_freq=freq, verbose=0)
    assert int(model.optimizer.iterations) == 0


def test_validation_freq_int_and_list(rng):
    """Keras _should_eval: an int validates every n-th (1-based) epoch, a list after the epochs listed."""
    x, y = regression(rng, n=16)
    model = keras.Sequential([dense(1, 1, input_shape=(4,))])
    model.compile("sgd", "mse")
    h = model.fit(x, y, validation_data=(x, y), validation_freq=2, epochs=5, verbose=0)
    assert len(h.history["val_loss"]) == 2
    h = model.fit(x, y, validation_data=(x, y), validation_freq=[1, 4], epochs=5, verbose=0)
    assert len(h.history["val_loss"]) == 2


@pytest.mark.parametrize("batch_size", [2 ** 63, 2 ** 64, 10 ** 30])
def test_an_absurd_batch_size_is_a_clear_error(rng, batch_size):
    x, y = regression(rng, n=16)
    model = keras.Sequential([dense(1, 1, input_shape=(4,))])
    model.compile("sgd", "mse")
    for call in (lambda: model.fit(x, y, batch_size=batch_size, verbose=0),
                 lambda: model.evaluate(x, y, batch_size=batch_size, verbose=0),
                 lambda: model.predict(x, batch_size=batch_size, verbose=0)):
        with pytest.raises(ValueError, match="batch_size"):
            call()


def test_a_batch_size_beyond_the_data_is_one_batch(rng):
    x, y = regression(rng, n=16)
    model = keras.Sequential([dense(1, 1, input_shape=(4,))])
    model.compile("sgd", "mse")
    model.fit(x, y, batch_size=2 ** 40, verbose=0)
    assert int(model.optimizer.iterations) == 1
    assert model.predict(x, batch_size=2 ** 40, verbose=0).shape == (16, 1)


def test_masked_arrays_are_refused_not_unmasked_silently(rng):
    x, y = regression(rng, n=16)
    model = keras.Sequential([dense(1, 1, input_shape=(4,))])
    model.compile("sgd", "mse")
    mx = np.ma.masked_array(x, mask=np.zeros(x.shape, bool))
    mx[3, 1] = np.ma.masked
    my = np.ma.masked_array(y, mask=np.zeros(y.shape, bool))
    my[0, 0] = np.ma.masked
    before = model.get_weights()
    for call in (lambda: model.fit(mx, y, verbose=0), lambda: model.fit(x, my, verbose=0),
                 lambda: model.evaluate(mx, y, verbose=0), lambda: model.predict(mx, verbose=0),
                 lambda: model.predict_on_batch(mx), lambda: model.train_on_batch(mx, y)):
        with pytest.raises(TypeError, match="masked"):
            call()
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)
    # a masked array with nothing masked loses nothing: it is taken
    model.fit(np.ma.masked_array(x), y, verbose=0)


# --------------------------------------------------------------------------- metrics on 1-D / 2-D / weighted inputs
# (metric, batches of (y_true, y_pred[, sample_weight]), the result worked out by hand with Keras 3's
# rules: accuracy and binary_accuracy are element-wise (keras-team/keras#19847), the Mean applies the
# weights, then reduces each sample by its mean, weights included).
METRIC_CASES = [
    ("binary 1-D, two batches", keras.metrics.BinaryAccuracy,
     [([1, 0, 1, 1], [0.9, 0.1, 0.2, 0.8]), ([1, 1], [0.9, 0.1])], 4 / 6),
    ("binary 1-D weighted", keras.metrics.BinaryAccuracy,
     [([1, 0, 1, 1], [0.9, 0.1, 0.2, 0.8], [1, 2, 3, 4])], (1 + 2 + 4) / 10),
    ("binary 2-D", keras.metrics.BinaryAccuracy, [([[1, 0], [1, 1]], [[0.9, 0.1], [0.2, 0.8]])], 0.75),
    ("binary 2-D, weight per sample", keras.metrics.BinaryAccuracy,
     [([[1, 0], [1, 1]], [[0.9, 0.1], [0.2, 0.8]], [1, 3])], (1 * 1 + 0.5 * 3) / 4),
    ("binary 2-D, weight per element", keras.metrics.BinaryAccuracy,
     [([[1, 0], [1, 1]], [[0.9, 0.1], [0.2, 0.8]], [[1, 0], [1, 1]])], (0.5 + 0.5) / (0.5 + 1.0)),
    ("binary (n, 1) is (n,)", keras.metrics.BinaryAccuracy,
     [([[1], [0], [1], [1]], [[0.9], [0.1], [0.2], [0.8]]), ([1, 1], [0.9, 0.1])], 4 / 6),
    ("accuracy 1-D, two batches", keras.metrics.Accuracy, [([1, 2, 3, 4], [0, 2, 3, 4]), ([1, 2], [1, 0])], 4 / 6),
    ("accuracy, Keras's docstring", keras.metrics.Accuracy,
     [([[1], [2], [3], [4]], [[0], [2], [3], [4]], [1, 1, 0, 0])], 0.5),
    ("categorical, Keras's docstring", keras.metrics.CategoricalAccuracy,
     [([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]], [0.7, 0.3])], 0.3),
    ("sparse 1-D labels, weighted", keras.metrics.SparseCategoricalAccuracy,
     [([2, 1], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]], [0.7, 0.3])], 0.3),
    ("mse 1-D is one sample per batch (mean over the last axis)", keras.metrics.MeanSquaredError,
     [([0, 1], [1, 1]), ([0, 0, 0, 2], [0, 0, 0, 0])], (0.5 + 1.0) / 2),
    ("mae 2-D weighted", keras.metrics.MeanAbsoluteError, [([[0, 1], [0, 0]], [[1, 1], [1, 0]], [1, 3])],
     (0.5 * 1 + 0.5 * 3) / 4),
]


@pytest.mark.parametrize("case", METRIC_CASES, ids=[c[0] for c in METRIC_CASES])
def test_metrics_match_keras_on_1d_2d_and_weighted_inputs(case):
    _, cls, batches, expected = case
    m = cls()
    for batch in batches:
        m.update_state(*[np.asarray(a, np.float32) for a in batch])
    assert isinstance(m.result(), float)
    assert m.result() == pytest.approx(expected, rel=1e-6)

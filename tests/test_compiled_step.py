"""The compiled training step (gradsmith.compiled_step, cpp/model/training_plan.*).

The layer-by-layer Python path is the step's twin: both call the same kernels
with the same arguments, so for every supported configuration a model trained
through the plan must end with bit-identical weights, optimizer state and
metrics. Configurations without a kernel must fall back, and say why.
"""
import numpy as np
import pytest

import gradsmith as keras
from gradsmith import _core

layers, optimizers, losses = keras.layers, keras.optimizers, keras.losses


def _data(rng, n, features, classes):
    x = rng.standard_normal((n, features)).astype(np.float32)
    labels = (np.abs(x[:, :3]).sum(axis=1) * 7).astype(np.int64) % classes
    return x, labels


def _targets(loss, labels, classes):
    if loss in ("sparse_categorical_crossentropy", "sparse_logits"):
        return labels
    if loss in ("categorical_crossentropy", "kl_divergence", "categorical_hinge", "cosine_similarity"):
        return np.eye(classes, dtype=np.float32)[labels]
    if loss == "mean_absolute_percentage_error":
        return (labels % 2 + 1).astype(np.float32)  # away from 0, which the loss divides by
    return (labels % 2).astype(np.float32)  # one unit


def _model(loss, optimizer, classes, *, dropout=0.0, regularizer=None, metrics=("accuracy",), loss_weights=None):
    keras.utils.set_random_seed(11)
    out_units, out_act = {"sparse_categorical_crossentropy": (classes, "softmax"), "sparse_logits": (classes, None),
                          "categorical_crossentropy": (classes, "softmax"), "kl_divergence": (classes, "softmax"),
                          "poisson": (1, "softplus"), "categorical_hinge": (classes, None),
                          "cosine_similarity": (classes, None),
                          "binary_crossentropy": (1, "sigmoid")}.get(loss, (1, None))
    stack = [layers.Dense(24, activation="relu", input_shape=(9,), kernel_regularizer=regularizer),
             layers.Dropout(dropout) if dropout else layers.Activation("linear"),
             layers.Dense(16, activation="tanh", bias_regularizer=regularizer),
             layers.Dense(out_units, activation=out_act)]
    model = keras.Sequential(stack)
    loss_obj = losses.SparseCategoricalCrossentropy(from_logits=True) if loss == "sparse_logits" else loss
    model.compile(optimizer=optimizer(), loss=loss_obj, metrics=list(metrics), loss_weights=loss_weights)
    return model


def _python_only(model):
    model._compiled_step = lambda: None
    return model


def _train_both(rng, loss, optimizer, classes=4, fit_kwargs=None, **model_kwargs):
    x, labels = _data(rng, 150, 9, classes)
    y = _targets(loss, labels, classes)
    planned = _model(loss, optimizer, classes, **model_kwargs)
    plain = _python_only(_model(loss, optimizer, classes, **model_kwargs))
    histories = []
    for model in (planned, plain):
        keras.utils.set_random_seed(5)  # the same shuffles
        histories.append(model.fit(x, y, batch_size=32, epochs=2, verbose=0, **(fit_kwargs or {})).history)
    return planned, plain, histories


def _assert_same(planned, plain, histories):
    assert planned._plan is not None, planned._plan_reason
    np.testing.assert_array_equal(planned.parameters, plain.parameters)
    for a, b in zip(planned.optimizer.variables, plain.optimizer.variables):
        np.testing.assert_array_equal(a, b)
    h_plan, h_plain = histories
    assert h_plan.keys() == h_plain.keys()
    for key in h_plan:
        # Loss values add penalties summed in another order: equal to rounding.
        np.testing.assert_allclose(h_plan[key], h_plain[key], rtol=1e-12, err_msg=key)


OPTIMIZERS = {
    "sgd": lambda: optimizers.SGD(learning_rate=0.05),
    "sgd_nesterov": lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
    "adam": lambda: optimizers.Adam(learning_rate=0.01),
    "adam_amsgrad_clipnorm": lambda: optimizers.Adam(amsgrad=True, clipnorm=0.5),
    "adamw_schedule": lambda: optimizers.AdamW(
        learning_rate=optimizers.schedules.ExponentialDecay(0.01, decay_steps=3, decay_rate=0.5)),
    "rmsprop_centered_momentum": lambda: optimizers.RMSprop(momentum=0.5, centered=True, global_clipnorm=1.0),
    "adagrad_clipvalue": lambda: optimizers.Adagrad(learning_rate=0.1, clipvalue=0.01),
    "adamax_clipnorm": lambda: optimizers.Adamax(learning_rate=0.01, clipnorm=0.5),
    "lion_weight_decay": lambda: optimizers.Lion(learning_rate=0.001, weight_decay=0.01),
}
LOSSES = ["binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy", "sparse_logits",
          "mean_squared_error", "huber", "mean_absolute_error", "log_cosh", "poisson", "mean_squared_logarithmic_error",
          "mean_absolute_percentage_error", "kl_divergence", "categorical_hinge", "cosine_similarity"]


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=str)
def test_plan_matches_python_path_per_optimizer(rng, threads, optimizer):
    _assert_same(*_train_both(rng, "binary_crossentropy", OPTIMIZERS[optimizer]))


@pytest.mark.parametrize("loss", LOSSES)
def test_plan_matches_python_path_per_loss(rng, isa, loss):
    metrics = ("accuracy",) if "entropy" in loss or loss == "sparse_logits" else ("mae",)
    _assert_same(*_train_both(rng, loss, OPTIMIZERS["adam"], metrics=metrics))


def test_plan_matches_with_dropout_penalties_weights_and_other_metrics(rng, threads):
    x, labels = _data(rng, 150, 9, 4)
    sw = rng.uniform(0.1, 2.0, len(x)).astype(np.float32)
    planned, plain, histories = _train_both(
        rng, "categorical_crossentropy", OPTIMIZERS["adam"], dropout=0.25, regularizer=keras.regularizers.L1L2(1e-3, 1e-2),
        metrics=("accuracy", keras.metrics.AUC(), "categorical_accuracy", keras.metrics.Precision()),
        loss_weights=0.5, fit_kwargs={"sample_weight": sw})
    _assert_same(planned, plain, histories)
    # Both paths advanced the dropout layer's counter alike.
    assert planned.layers[1]._calls[0] == plain.layers[1]._calls[0] > 0


def test_train_on_batch_uses_the_plan(rng):
    x, labels = _data(rng, 32, 9, 4)
    results = []
    for model in (_model("sparse_categorical_crossentropy", OPTIMIZERS["sgd"], 4),
                  _python_only(_model("sparse_categorical_crossentropy", OPTIMIZERS["sgd"], 4))):
        results.append([model.train_on_batch(x, labels) for _ in range(3)] + [model.parameters.copy()])
    planned, plain = results
    np.testing.assert_array_equal(planned[-1], plain[-1])
    np.testing.assert_allclose(np.array(planned[:-1]), np.array(plain[:-1]), rtol=1e-12)


def test_freezing_a_layer_rebuilds_the_plan(rng):
    x, labels = _data(rng, 64, 9, 4)
    model = _model("sparse_categorical_crossentropy", OPTIMIZERS["adam"], 4)
    model.fit(x, labels, epochs=1, verbose=0)
    first = model._plan
    frozen = model.layers[0].get_weights()
    model.layers[0].trainable = False
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")  # Keras: recompile after freezing
    model.fit(x, labels, epochs=1, verbose=0)
    assert model._plan is not None and model._plan is not first
    for before, after in zip(frozen, model.layers[0].get_weights()):
        np.testing.assert_array_equal(before, after)


class _Doubling(layers.Layer):
    def forward(self, x, training=False):
        return 2 * x

    def backward(self, dy, need_dx=True):
        return 2 * dy


@pytest.mark.parametrize("change, reason", [
    (lambda m: m.add(_Doubling()), "_Doubling"),
    (lambda m: m.compile(optimizer=optimizers.Adam(use_ema=True), loss="binary_crossentropy"), "EMA"),
    (lambda m: m.compile(optimizer="adam", loss=losses.BinaryCrossentropy(reduction="sum")), "reduction"),
    (lambda m: m.compile(optimizer="adam", loss=lambda t, p: (t - p) ** 2), "no kernel"),
], ids=["custom_layer", "ema", "sum_reduction", "custom_loss"])
def test_without_a_kernel_the_python_path_trains(rng, change, reason):
    x, labels = _data(rng, 64, 9, 2)
    y = (labels % 2).astype(np.float32)
    model = _model("binary_crossentropy", OPTIMIZERS["adam"], 2)
    change(model)
    if not model.built or model.loss is None:
        model.compile(optimizer="adam", loss="binary_crossentropy")
    before = model.parameters.copy()
    model.fit(x, y, epochs=1, verbose=0)
    assert model._plan is None and reason in model._plan_reason
    assert not np.array_equal(before, model.parameters)


def test_bad_labels_raise_and_leave_the_model_as_it_was(rng):
    x, labels = _data(rng, 32, 9, 4)
    model = _model("sparse_categorical_crossentropy", OPTIMIZERS["adam"], 4)
    model.train_on_batch(x, labels)
    params, iterations = model.parameters.copy(), int(model.optimizer.iterations)
    bad = labels.copy()
    bad[5] = 4
    with pytest.raises(ValueError, match=r"label 4 at index 5 is outside \[0, 4\)"):
        model.train_on_batch(x, bad)
    fractional = labels.astype(np.float64)
    fractional[2] = 0.5
    with pytest.raises(ValueError, match="not an integer class index"):
        model.train_on_batch(x, fractional)
    np.testing.assert_array_equal(params, model.parameters)
    assert int(model.optimizer.iterations) == iterations


@pytest.mark.skipif(not _core.counts_allocations, reason="a sanitizer build: its allocator replaces operator new")
def test_a_steady_step_allocates_nothing(rng, threads):
    x, labels = _data(rng, 256, 9, 4)
    before = _core.allocation_count()
    model = _model("sparse_categorical_crossentropy", OPTIMIZERS["rmsprop_centered_momentum"], 4, dropout=0.5)
    model.fit(x[:64], labels[:64], batch_size=64, epochs=1, verbose=0)  # sizes the arena and the scratch
    assert _core.allocation_count() > before  # the counter counts: building the plan allocated
    plan = model._plan.plan
    arena = plan.arena_size
    for start in range(0, 256, 64):
        model.train_on_batch(x[start:start + 64], labels[start:start + 64])
        assert plan.last_step_allocations == 0
    model.train_on_batch(x[:17], labels[:17])  # a smaller batch fits the same arena
    assert plan.last_step_allocations == 0 and plan.arena_size == arena


def test_the_last_predictions_are_a_copy_that_outlives_the_arena(rng):
    x, labels = _data(rng, 32, 9, 4)
    model = _model("sparse_categorical_crossentropy", OPTIMIZERS["adam"], 4)
    model.train_on_batch(x, labels)
    out = model._plan.plan.output()
    assert out.shape == (32, 4) and out.flags.owndata
    before = out.copy()
    model.predict(np.tile(x, (40, 1)), batch_size=1280, verbose=0)  # grows (reallocates) the arena
    np.testing.assert_array_equal(out, before)


class _Keeper(keras.metrics.Metric):
    """A custom metric that keeps every y_pred it is given (issue: they were views of the step's arena)."""

    def __init__(self, name="keeper"):
        super().__init__(name=name)
        self.kept = []

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.kept.append(y_pred)

    def result(self):
        return 0.0

    def reset_state(self):
        self.kept = []


def test_a_custom_metric_may_keep_the_predictions_it_is_given(rng):
    x = rng.standard_normal((512, 16)).astype(np.float32)
    y = rng.standard_normal((512, 64)).astype(np.float32)
    keeper = _Keeper()
    model = keras.Sequential([layers.Dense(64, input_shape=(16,))])
    model.compile("sgd", "mse", metrics=[keeper])
    model.fit(x[:256], y[:256], batch_size=128, epochs=1, verbose=0)
    assert model._plan is not None
    kept = [k.copy() for k in keeper.kept]
    assert len(kept) == 2 and not np.array_equal(kept[0], kept[1])  # each batch its own array
    model.predict(x, batch_size=512, verbose=0)  # grows the arena: the old one is freed
    for a, b in zip(keeper.kept, kept):
        np.testing.assert_array_equal(a, b)


def test_predict_from_several_threads_is_safe_and_right(rng):
    """A web server's workers: one fitted model, predict from several threads at once, with growing batch
    sizes (the arena regrows) and fixed ones; every result must equal the single-threaded one."""
    import threading

    x = rng.standard_normal((700, 9)).astype(np.float32)
    model = _model("sparse_categorical_crossentropy", OPTIMIZERS["adam"], 4)
    model.fit(x[:64], np.zeros(64, np.int64), epochs=1, verbose=0)
    expected = {n: model.predict(x[:n], batch_size=n, verbose=0) for n in (7, 100, 350, 700)}
    errors = []

    def worker(sizes):
        try:
            for _ in range(15):
                for n in sizes:
                    got = model.predict(x[:n], batch_size=n, verbose=0)
                    if not np.array_equal(got, expected[n]):
                        errors.append(n)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(s,)) for s in ((7, 100, 350, 700), (700, 7), (100, 100))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_fit_and_predict_in_two_threads_do_not_crash(rng):
    import threading

    x = rng.standard_normal((400, 9)).astype(np.float32)
    labels = (np.abs(x[:, :3]).sum(axis=1) * 7).astype(np.int64) % 4
    model = _model("sparse_categorical_crossentropy", OPTIMIZERS["adam"], 4)
    model.fit(x[:32], labels[:32], epochs=1, verbose=0)
    errors = []

    def predicting():
        try:
            for n in range(20, 400, 20):
                assert model.predict(x[:n], batch_size=n, verbose=0).shape == (n, 4)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=predicting)
    t.start()
    model.fit(x, labels, batch_size=16, epochs=3, verbose=0)
    t.join()
    assert errors == [] and np.all(np.isfinite(model.parameters))


def test_evaluate_and_predict_use_the_plan_and_match_the_python_path(rng):
    x, labels = _data(rng, 150, 9, 4)
    y = np.eye(4, dtype=np.float32)[labels]
    metrics = ("accuracy", keras.metrics.AUC())
    planned, plain, _ = _train_both(rng, "categorical_crossentropy", OPTIMIZERS["adam"], dropout=0.3,
                                    regularizer=keras.regularizers.L2(1e-3), metrics=metrics)
    assert planned._existing_compiled_step() is not None
    np.testing.assert_array_equal(planned.predict(x, batch_size=64, verbose=0), plain.predict(x, batch_size=64,
                                                                                               verbose=0))
    got = planned.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    want = plain.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    assert got.keys() == want.keys()
    for key in got:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, err_msg=key)
    # Dropout is off outside training: predicting twice gives the same bits.
    np.testing.assert_array_equal(planned.predict(x, verbose=0), planned.predict(x, verbose=0))


def test_evaluate_before_training_leaves_the_optimizer_unbuilt(rng):
    x, labels = _data(rng, 40, 9, 4)
    model = _model("sparse_categorical_crossentropy", OPTIMIZERS["adam"], 4)
    model.evaluate(x, labels, verbose=0)
    model.predict(x, verbose=0)
    assert model._plan is None and not model.optimizer.built


def test_whole_epoch_calls_match_step_by_step_calls(rng):
    """fit runs an epoch as one call unless a callback has batch hooks; both give the same bits."""
    x, labels = _data(rng, 150, 9, 4)
    seen = []
    results = []
    for callbacks in ([], [keras.callbacks.LambdaCallback(on_batch_end=lambda batch, logs: seen.append(batch))]):
        model = _model("sparse_categorical_crossentropy", OPTIMIZERS["adamw_schedule"], 4, dropout=0.2)
        keras.utils.set_random_seed(5)
        history = model.fit(x, labels, batch_size=32, epochs=2, verbose=0, callbacks=callbacks).history
        results.append((history, model.parameters.copy(), int(model.optimizer.iterations)))
    (h1, p1, i1), (h2, p2, i2) = results
    assert seen == list(range(5)) * 2 and i1 == i2 == 10
    np.testing.assert_array_equal(p1, p2)
    assert h1 == h2


def test_the_progress_bar_sees_runs_of_batches_and_the_results_do_not_change(rng, capsys):
    x, labels = _data(rng, 600, 9, 4)  # 19 batches of 32: runs of 16 and 3
    results = []
    for verbose in (0, 1, 2):
        model = _model("sparse_categorical_crossentropy", OPTIMIZERS["adam"], 4)
        keras.utils.set_random_seed(5)
        history = model.fit(x, labels, batch_size=32, epochs=2, verbose=verbose).history
        results.append((history, model.parameters.copy()))
    out = capsys.readouterr().out
    assert "19/19" in out and "Epoch 2/2" in out
    for history, params in results[1:]:
        assert history == results[0][0]
        np.testing.assert_array_equal(params, results[0][1])


def test_nan_labels_reach_the_python_paths_message_without_a_warning(rng):
    x, labels = _data(rng, 64, 9, 4)
    bad = labels.astype(np.float64)
    bad[10] = np.nan
    model = _model("sparse_categorical_crossentropy", OPTIMIZERS["adam"], 4)
    with pytest.raises(ValueError, match="not an integer class index"):  # warnings are errors here
        model.fit(x, bad, verbose=0)


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge"])
def test_hinge_losses_train_on_the_python_path(rng, loss):
    """Keras turns 0/1 targets into -1/1 after looking at each batch's labels, which the plan does not do."""
    x, labels = _data(rng, 64, 9, 2)
    model = _model(loss, OPTIMIZERS["sgd"], 2)
    history = model.fit(x, (labels % 2).astype(np.float32), batch_size=16, epochs=2, verbose=0).history
    assert model._plan is None and "hinge" in model._plan_reason
    assert np.all(np.isfinite(history["loss"])) and history["loss"][-1] < history["loss"][0]


# --------------------------------------------------------------------------- layer kinds of cpp/model/layers/
def _fit_both(make, x, y, epochs=2, batch_size=16):
    """The model ``make()`` builds, trained through the compiled step and layer by layer, from one seed."""
    out = []
    for python_only in (False, True):
        keras.utils.set_random_seed(3)
        model = make()
        if python_only:
            _python_only(model)
        keras.utils.set_random_seed(5)
        out.append((model, model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0).history))
    (planned, h1), (plain, h2) = out
    _assert_same(planned, plain, (h1, h2))
    np.testing.assert_array_equal(planned.predict(x, verbose=0), plain.predict(x, verbose=0))
    return planned, plain


def _bn_model(optimizer, **bn):
    model = keras.Sequential([layers.Dense(12, activation="relu", input_shape=(9,)),
                              layers.BatchNormalization(**bn), layers.Dense(6, activation="tanh"),
                              layers.BatchNormalization(momentum=0.9), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("bn", [{}, {"center": False}, {"scale": False, "epsilon": 0.1},
                                {"gamma_regularizer": "l2", "beta_regularizer": "l1"}],
                         ids=["default", "no_center", "no_scale", "regularized"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_batch_normalization_runs_in_the_plan_bit_for_bit(rng, threads, optimizer, bn):
    x, labels = _data(rng, 100, 9, 2)
    planned, plain = _fit_both(lambda: _bn_model(optimizer, **bn), x, (labels % 2).astype(np.float32))
    moving = [w for layer in planned.layers for w in layer._weights if "moving" in w.name]
    assert moving and all(not np.all(w.value == w.value.flat[0]) for w in moving)  # the state moved
    assert planned.evaluate(x, (labels % 2).astype(np.float32), verbose=0) == \
        plain.evaluate(x, (labels % 2).astype(np.float32), verbose=0)


def test_a_frozen_batch_normalization_uses_its_moving_statistics_in_the_plan(rng):
    x, labels = _data(rng, 64, 9, 2)
    y = (labels % 2).astype(np.float32)

    def make():
        model = _bn_model("adam")
        model.layers[1].moving_mean[...] = 0.25
        model.layers[1].trainable = False
        return model

    planned, _ = _fit_both(make, x, y)
    np.testing.assert_array_equal(planned.layers[1].moving_mean, np.full(12, 0.25, np.float32))


@pytest.mark.parametrize("noise_shape", [(None, 1), (1, None), (None, None), (1, 1)])
def test_dropout_with_a_noise_shape_runs_in_the_plan_bit_for_bit(rng, threads, noise_shape):
    x, labels = _data(rng, 96, 9, 3)

    def make():
        model = keras.Sequential([layers.Dense(16, activation="relu", input_shape=(9,)),
                                  layers.Dropout(0.4, noise_shape=noise_shape), layers.Dense(3)])
        model.compile(optimizer="adam", loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        return model

    _fit_both(make, x, labels)


def test_n_d_inputs_run_in_the_plan_dense_on_the_last_axis_noise_shapes_and_flatten(rng):
    """(batch, 6, 5) inputs: Dense along the last axis, BatchNormalization per feature of the last axis,
    a Dropout mask shared along axis 1, softmax along the last axis, then Flatten to the head."""
    x = rng.standard_normal((80, 6, 5)).astype(np.float32)
    y = (x.sum(axis=(1, 2)) > 0).astype(np.float32)

    def make():
        model = keras.Sequential([layers.Input((6, 5)), layers.Dense(7, activation="elu"),
                                  layers.BatchNormalization(), layers.Dropout(0.3, noise_shape=(None, 1, None)),
                                  layers.Activation("softmax"), layers.Flatten(),
                                  layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
        return model

    planned, _ = _fit_both(make, x, y)
    assert planned._plan.in_features == 30


def test_a_noise_shape_that_does_not_broadcast_takes_the_python_path_and_its_error(rng):
    model = keras.Sequential([layers.Dense(4, input_shape=(3,)), layers.Dropout(0.5, noise_shape=(None, 3)),
                              layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="noise_shape"):
        model.fit(np.ones((8, 3), np.float32), np.ones(8, np.float32), verbose=0)
    assert model._plan is None and "noise_shape" in model._plan_reason


def test_every_compiled_layer_kind_is_registered_by_its_keras_name():
    from gradsmith.layers.base import _REGISTRY

    # Keras class -> (its arguments, the input shape, the compiled kind it runs as)
    classes = {"Dense": ({"units": 2}, (3,), "Dense"), "Activation": ({"activation": "relu"}, (3,), "Activation"),
               "Dropout": ({"rate": 0.5}, (3,), "Dropout"), "Flatten": ({}, (3,), "Flatten"),
               "BatchNormalization": ({}, (3,), "BatchNormalization"), "Reshape": ({"target_shape": (3, 1)}, (3,), "Reshape"),
               "Conv2D": ({"filters": 2, "kernel_size": 2}, (4, 4, 3), "Conv"),
               "Conv1D": ({"filters": 2, "kernel_size": 2}, (4, 3), "Conv"),
               "MaxPooling2D": ({}, (4, 4, 3), "Pooling"), "AveragePooling1D": ({}, (4, 3), "Pooling"),
               "GlobalAveragePooling2D": ({}, (4, 4, 3), "Pooling"), "GlobalMaxPooling1D": ({}, (4, 3), "Pooling"),
               "Embedding": ({"input_dim": 5, "output_dim": 2}, (3,), "Embedding"),
               "GRU": ({"units": 2}, (4, 3), "Recurrent"), "LSTM": ({"units": 2}, (4, 3), "Recurrent"),
               "SimpleRNN": ({"units": 2, "return_sequences": True}, (4, 3), "Recurrent")}
    assert set(_core.kinds.layers) == {kind for _, _, kind in classes.values()}
    offset = lambda array: 0  # noqa: E731
    for name, (args, shape, kind) in classes.items():
        layer = _REGISTRY[name](**args)
        layer.build((None, *shape))
        assert layer._compiled_config(shape, offset)["kind"] == kind


def _runner_args(model):
    """The CpuRunner's arguments for a built, compiled model, to hand-edit."""
    from gradsmith import compiled_step

    step = compiled_step.CompiledStep(model)
    configs, _, _ = compiled_step._layer_configs(model, model.parameters)
    loss = compiled_step._loss_spec(model.loss, model.loss_weight)
    opt, ranges, slots = compiled_step._optimizer_spec(model.optimizer, model._trainable(), model.parameters)
    return step, configs, loss, opt, ranges, slots


@pytest.mark.parametrize("change, message", [
    (lambda c: c[0]["weights"].update(kernel=2**62), "outside the parameter buffer"),
    (lambda c: c[0]["weights"].update(bias=-5), "negative offset"),
    (lambda c: c[0]["numbers"].update(units=2**40), "overflows|outside"),
    (lambda c: c[0]["numbers"].update(units=2.5), "whole number"),
    (lambda c: c[0].update(input_shape=[2**30, 2**30]), "2\\^40"),
    (lambda c: c[1].update(kind="Conv9D"), "no compiled layer of this kind"),
    (lambda c: c[1].update(input_shape=[3]), "not the output shape"),
    (lambda c: c[0]["numbers"].update(activation=999), "activation"),
    (lambda c: c[0]["numbers"].update(activation=-1), "activation"),
], ids=["huge_offset", "negative_offset", "huge_units", "float_units", "huge_input", "unknown_kind", "no_chain",
        "huge_activation", "negative_activation"])
def test_the_runner_checks_layer_descriptions_without_overflow(rng, change, message):
    model = _model("binary_crossentropy", OPTIMIZERS["adam"], 2)
    model.build((None, 9))
    _, configs, loss, opt, ranges, slots = _runner_args(model)
    change(configs)
    with pytest.raises(ValueError, match=message):
        _core.CpuRunner(configs, loss, opt, model.parameters, model.gradients, ranges, slots, [])


def test_the_runner_checks_trainable_ranges_without_overflow(rng):
    model = _model("binary_crossentropy", OPTIMIZERS["adam"], 2)
    model.build((None, 9))
    _, configs, loss, opt, ranges, slots = _runner_args(model)
    for bad in ([(2**62, 0, 2**62)], [(0, 2**62, 2**62)], [(-1, 0, 4)], [(0, 0, -4)]):
        with pytest.raises(ValueError, match="trainable range"):
            _core.CpuRunner(configs, loss, opt, model.parameters, model.gradients, bad, slots, [])

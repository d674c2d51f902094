"""gradsmith.pruning (TensorFlow Model Optimization's magnitude pruning): the schedules' formulas, the masks,
pruned weights kept at exactly zero by the fused optimizer update (compiled step and layer by layer, the same
bits), strip_pruning and its files, and the errors."""
import numpy as np
import pytest

import gradsmith as keras
from gradsmith import ops, pruning


def test_schedules_follow_tfmot():
    s = pruning.ConstantSparsity(0.6, begin_step=10, end_step=30, frequency=5)
    assert [s(step)[0] for step in (9, 10, 12, 15, 30, 31)] == [False, True, False, True, True, False]
    assert s(15)[1] == 0.6
    p = pruning.PolynomialDecay(0.1, 0.9, begin_step=0, end_step=100, power=3, frequency=10)
    assert p(0) == (True, pytest.approx(0.1))
    assert p(50)[1] == pytest.approx(0.9 + (0.1 - 0.9) * 0.5 ** 3)
    assert p(100)[1] == pytest.approx(0.9) and p(200)[1] == pytest.approx(0.9) and not p(200)[0]
    assert pruning.ConstantSparsity(0.5, 0)(10 ** 6) == (True, 0.5)  # end_step -1: for ever, every 100
    assert pruning.PolynomialDecay.from_config(p.get_config()).get_config() == p.get_config()
    with pytest.raises(ValueError, match="sparsity"):
        pruning.ConstantSparsity(1.0, 0)
    with pytest.raises(ValueError, match="end_step"):
        pruning.PolynomialDecay(0.0, 0.5, 10, 5)


def test_magnitude_mask_keeps_the_largest():
    w = np.array([[0.5, -3.0, 0.1], [2.0, -0.2, 1.0]], np.float32)
    np.testing.assert_array_equal(pruning.magnitude_mask(w, 0.5), [[0, 1, 0], [1, 0, 1]])
    assert pruning.magnitude_mask(w, 0.0).all()
    ties = np.ones((2, 2), np.float32)
    assert pruning.magnitude_mask(ties, 0.5).all()  # ties with the threshold are kept, as TFMOT's >=


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop", "adagrad", "adamax", "lion"])
def test_the_fused_update_keeps_masked_weights_at_zero(optimizer):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 5)).astype(np.float32)
    mask = (rng.random((4, 5)) > 0.5).astype(np.float32)
    w *= mask
    plain = w.copy()
    opt, reference = keras.optimizers.get(optimizer), keras.optimizers.get(optimizer)
    for _ in range(3):
        g = rng.standard_normal((4, 5)).astype(np.float32)
        opt.apply([g], [w], keep=[mask])
        reference.apply([g], [plain])  # the same update without a mask
    assert np.all(w[mask == 0] == 0) and np.all(w[mask == 1] != 0)
    # an unmasked weight gets exactly the optimizer's own update (its state saw every gradient)
    np.testing.assert_array_equal(w[mask == 1], plain[mask == 1])
    with pytest.raises(TypeError, match="pruning masks"):
        with ops.pruning_masks("not a list"):
            ops.sgd_step([w], [w.copy()])


def _data():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((192, 8)).astype(np.float32)
    return x, (x[:, :2].sum(1) > 0).astype(np.float32)


def _base():
    keras.utils.set_random_seed(2)
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                             keras.layers.Dense(1, activation="sigmoid")])


def test_pruned_weights_stay_zero_with_the_same_bits_compiled_and_layer_by_layer():
    x, y = _data()
    base = _base()
    runs = []
    for compiled in (True, False):
        # masks made once, at step 0: between updates only the fused optimizer keeps them at zero
        model = pruning.prune_low_magnitude(base, pruning_schedule=pruning.ConstantSparsity(0.7, 0, frequency=10 ** 6))
        model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
        if not compiled:
            model._compiled_step = lambda: None
        history = model.fit(x, y, epochs=4, batch_size=32, verbose=0, shuffle=False,
                            callbacks=[pruning.UpdatePruningStep()])
        if compiled:
            assert model._plan is not None, model._plan_reason
        for layer in model.layers:
            mask = layer._weights[0].prune_mask
            assert (mask == 0).mean() == pytest.approx(0.7, abs=0.02)
            assert np.all(layer.kernel[mask == 0] == 0)
        runs.append((model.get_weights(), history.history))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]
    # the model pruned from was left as it was
    assert not hasattr(base.layers[0]._weights[0], "prune_mask") and np.all(base.layers[0].kernel != 0)


def test_polynomial_schedule_reaches_its_sparsity_and_strip_pruning_saves_a_plain_model(tmp_path):
    x, y = _data()
    model = pruning.prune_low_magnitude(_base(), pruning_schedule=pruning.PolynomialDecay(0.0, 0.8, 0, 18,
                                                                                         frequency=6))
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=4, batch_size=32, verbose=0, callbacks=[pruning.UpdatePruningStep()])
    kernel = model.layers[0].kernel
    assert (kernel == 0).mean() == pytest.approx(0.8, abs=0.02)
    plain = pruning.strip_pruning(model)
    assert not hasattr(plain.layers[0]._weights[0], "prune_mask")
    np.testing.assert_array_equal(plain.layers[0].kernel, kernel)
    plain.save(tmp_path / "pruned.keras")
    back = keras.models.load_model(tmp_path / "pruned.keras")
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_layer_pruned_where_the_model_is_defined():
    x, y = _data()
    model = keras.Sequential([keras.Input((8,)),
                              pruning.prune_low_magnitude(keras.layers.Dense(16, activation="relu"),
                                                          pruning_schedule=pruning.ConstantSparsity(0.5, 0)),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[pruning.UpdatePruningStep()])
    assert (model.layers[0].kernel == 0).mean() == pytest.approx(0.5, abs=0.02)
    assert not hasattr(model.layers[1]._weights[0], "prune_mask")


def test_errors():
    x, y = _data()
    model = _base()
    model.compile("sgd", "binary_crossentropy")
    with pytest.raises(ValueError, match="no pruned layer"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[pruning.UpdatePruningStep()])
    with pytest.raises(NotImplementedError, match="block"):
        pruning.prune_low_magnitude(model, block_size=(2, 2))
    dropout = keras.Sequential([keras.Input((8,)), pruning.prune_low_magnitude(keras.layers.Dropout(0.1)),
                                keras.layers.Dense(1)])
    dropout.compile("sgd", "mse")
    with pytest.raises(ValueError, match="no weights to prune"):
        dropout.fit(x, y, epochs=1, verbose=0, callbacks=[pruning.UpdatePruningStep()])
    built = keras.layers.Dropout(0.1)
    built.build((None, 4))
    with pytest.raises(ValueError, match="no weights to prune"):
        pruning.prune_low_magnitude(built)

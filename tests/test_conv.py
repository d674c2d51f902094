"""Convolution and pooling: the kernels against the float64 tap-by-tap reference (tests/reference/conv.py), the
layers against Keras's shapes, weights and configs, and the compiled step against the layer-by-layer path.

Tolerances. A convolution output is a float32 GEMM over K = kh * kw * cin terms (plus the bias): within
K * EPS32 of the sum of the terms' magnitudes, which the reference gives as the same convolution of |x| and
|W|. Gradients are sums over the batch's pixels: within (their count) * EPS32 of the sum of magnitudes.
Pooling picks or averages a few values: max is exact, average within a few EPS32.
"""
import numpy as np
import pytest

import gradsmith as keras
import reference as R
from gradsmith import layers, ops
from helpers import EPS32, assert_bitwise_equal, assert_within, num_threads
from test_compiled_step import _fit_both

# (batch, height, width, channels in, filters, kernel, strides, padding, dilation)
GEOMETRIES = [
    (1, 1, 1, 1, 1, (1, 1), (1, 1), "valid", (1, 1)),
    (2, 7, 9, 3, 5, (3, 3), (1, 1), "valid", (1, 1)),
    (1, 8, 8, 17, 4, (2, 2), (2, 2), "same", (1, 1)),       # 'same' with an even kernel
    (3, 10, 7, 2, 6, (5, 5), (2, 1), "same", (1, 1)),
    (2, 5, 5, 4, 3, (1, 1), (1, 1), "valid", (1, 1)),       # pointwise: no im2col
    (2, 6, 6, 4, 3, (1, 1), (2, 2), "valid", (1, 1)),       # 1x1 with strides: im2col
    (2, 9, 9, 3, 2, (3, 3), (1, 1), "same", (2, 2)),        # dilation
    (2, 1, 11, 3, 4, (1, 3), (1, 1), "causal", (1, 2)),     # Conv1D causal, dilated
    (1, 4, 4, 1, 17, (4, 4), (1, 1), "valid", (1, 1)),      # the kernel covers the image
    (33, 12, 12, 8, 16, (3, 3), (1, 1), "valid", (1, 1)),   # several dW groups and tiles
    (2, 40, 40, 30, 7, (3, 3), (1, 1), "same", (1, 1)),     # K = 270: several tiles per image
    # stride 1, kernel rows of >= 32 floats: the rows path (no im2col; dx by the turned kernel)
    (3, 9, 11, 16, 5, (2, 4), (1, 1), "same", (1, 1)),      # 'same' with an even kernel
    (2, 60, 70, 33, 20, (5, 3), (1, 1), "valid", (1, 1)),   # several row tiles forward and backward
    (1, 6, 5, 40, 3, (6, 1), (1, 1), "valid", (1, 1)),      # the kernel as tall as the image
    (2, 1, 30, 32, 4, (1, 5), (1, 1), "causal", (1, 1)),    # Conv1D, causal
]
IDS = [f"{g[0]}x{g[1]}x{g[2]}x{g[3]}-f{g[4]}-k{g[5][0]}{g[5][1]}-s{g[6][0]}{g[6][1]}-{g[7]}-d{g[8][0]}{g[8][1]}"
       for g in GEOMETRIES]


def _conv_inputs(rng, n, h, w, c, f, k):
    return (rng.standard_normal((n, h, w, c)).astype(np.float32), rng.standard_normal(k + (c, f)).astype(np.float32),
            rng.standard_normal(f).astype(np.float32))


@pytest.mark.parametrize("activation", ["linear", "relu", "tanh", "softmax"])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_conv_forward_and_backward_match_the_reference(rng, geometry, activation):
    n, h, w, c, f, k, s, pad, d = geometry
    x, kernel, bias = _conv_inputs(rng, n, h, w, c, f, k)
    args = dict(strides=s, padding=pad, dilation_rate=d)
    y, z = ops.conv2d_forward(x, kernel, bias, activation=activation, return_preactivation=True, **args)
    want_y, want_z = R.conv2d_forward(x, kernel, bias, activation=activation, **args)
    size, _ = R.conv2d_forward(np.abs(x), np.abs(kernel), np.abs(bias), **args)
    K = k[0] * k[1] * c + 1
    assert y.shape == want_y.shape and y.dtype == np.float32
    assert_within(z, want_z, 2 * K * EPS32 * size, "z")
    assert_within(y, want_y, 2 * K * EPS32 * size + 4 * EPS32 * np.abs(want_y), "y")

    dy = rng.standard_normal(y.shape).astype(np.float32)
    dkernel, dbias = np.full(kernel.shape, np.nan, np.float32), np.full(f, np.nan, np.float32)  # poisoned
    dx, dkernel, dbias = ops.conv2d_backward(dy, x, kernel, z, activation=activation, dkernel_out=dkernel,
                                             dbias_out=dbias, **args)
    # The reference at the kernel's own z: what is checked is the backward pass, not forward's rounding.
    z64 = z.astype(np.float64)
    want_dx, want_dk, want_db = R.conv2d_backward(dy, x, kernel, z64, activation=activation, **args)
    dz = R.activation_backward(dy.astype(np.float64), z64, activation)
    # Magnitudes: the same sums over |x|, |W| and |dz|, for the rounding of the sums; and the kernel's dz is
    # within a few EPS32 of max |dy| of the reference's (f' is rounded: tanh' = 1 - tanh^2 cancels), an error
    # that the linear maps carry as they are.
    mag_dx, mag_dk, mag_db = R.conv2d_backward(np.abs(dz), np.abs(x), np.abs(kernel), z64, **args)
    dz_err = np.full(dz.shape, 16 * EPS32 * np.abs(dy).max())
    err_dx, err_dk, err_db = R.conv2d_backward(dz_err, np.abs(x), np.abs(kernel), z64, **args)
    rows = n * y.shape[1] * y.shape[2]
    assert_within(dbias, want_db, 4 * rows * EPS32 * mag_db + err_db, "dbias")
    assert_within(dkernel, want_dk, 4 * rows * EPS32 * mag_dk + err_dk, "dkernel")
    assert_within(dx, want_dx, 4 * f * K * EPS32 * mag_dx + err_dx, "dx")


@pytest.mark.parametrize("geometry", [GEOMETRIES[i] for i in (1, 4, 9, 10, 12)], ids=[IDS[i] for i in (1, 4, 9, 10, 12)])
def test_conv_bits_do_not_depend_on_the_thread_count(rng, geometry):
    n, h, w, c, f, k, s, pad, d = geometry
    x, kernel, bias = _conv_inputs(rng, n, h, w, c, f, k)
    args = dict(strides=s, padding=pad, dilation_rate=d, activation="relu")
    results = []
    for threads in (1, 2, 3):
        with num_threads(threads):
            y, z = ops.conv2d_forward(x, kernel, bias, return_preactivation=True, **args)
            dy = np.ones_like(y)
            results.append((y, *ops.conv2d_backward(dy, x, kernel, z, **args)))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert_bitwise_equal(b, a)


def test_conv_backward_skips_dx_and_bias_when_asked(rng):
    x, kernel, _ = _conv_inputs(rng, 2, 6, 6, 3, 4, (3, 3))
    y = ops.conv2d_forward(x, kernel)
    dx, dk, db = ops.conv2d_backward(np.ones_like(y), x, kernel, None, need_dx=False, use_bias=False)
    assert dx is None and db is None and np.isfinite(dk).all()


def test_an_empty_batch_gives_zero_gradients(rng):
    x = np.zeros((0, 5, 5, 2), np.float32)
    kernel = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)
    y = ops.conv2d_forward(x, kernel)
    assert y.shape == (0, 3, 3, 4)
    dx, dk, db = ops.conv2d_backward(y, x, kernel, None, dkernel_out=np.full(kernel.shape, np.nan, np.float32))
    assert dx.shape == x.shape and not dk.any() and not db.any()


@pytest.mark.parametrize("bad, message", [
    (dict(kernel_shape=(6, 6, 3, 2)), "larger than the input"),
    (dict(kernel_shape=(2, 2, 4, 2)), "channels"),
    (dict(strides=0), "strides"),
    (dict(padding="full"), "padding"),
    (dict(padding="causal"), "causal"),
])
def test_conv_rejects_what_does_not_fit(rng, bad, message):
    x = rng.standard_normal((1, 5, 5, 3)).astype(np.float32)
    kernel = np.zeros(bad.pop("kernel_shape", (2, 2, 3, 2)), np.float32)
    with pytest.raises((ValueError, TypeError), match=message):
        ops.conv2d_forward(x, kernel, **bad)


# ---- pooling ---------------------------------------------------------------------------------------------
POOLS = [  # (shape, pool, strides, padding)
    ((2, 7, 9, 3), (2, 2), None, "valid"),
    ((2, 7, 9, 3), (3, 3), (2, 2), "same"),
    ((1, 5, 6, 17), (3, 2), (1, 2), "same"),     # overlapping windows
    ((3, 4, 4, 1), (4, 4), None, "valid"),
    ((2, 1, 9, 2), (1, 3), (1, 2), "valid"),     # 1-D
]


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("shape, pool, strides, padding", POOLS)
def test_pooling_matches_the_reference(rng, threads, shape, pool, strides, padding, mode):
    x = rng.standard_normal(shape).astype(np.float32)
    x[0, 0, :2, 0] = x[0, 0, 0, 0]  # a tie: the first maximum wins
    y, arg = ops.pool2d_forward(x, pool, strides, padding, mode, return_argmax=True)
    want, want_arg = R.pool2d_forward(x, pool, strides, padding, mode)
    assert_within(y, want, 4 * EPS32 * np.abs(want) + EPS32, "y")
    if mode == "max":
        assert_bitwise_equal(y, want.astype(np.float32))
        np.testing.assert_array_equal(arg, want_arg)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = ops.pool2d_backward(dy, x.shape, arg, pool, strides, padding, mode)
    want_dx = R.pool2d_backward(dy, x.shape, want_arg, pool, strides, padding, mode)
    assert_within(dx, want_dx, 16 * EPS32 * R.pool2d_backward(np.abs(dy), x.shape, want_arg, pool, strides, padding,
                                                              mode), "dx")


@pytest.mark.parametrize("mode", ["max", "average"])
def test_global_pooling_is_one_window_the_size_of_the_image(rng, mode):
    x = rng.standard_normal((3, 5, 6, 4)).astype(np.float32)
    y, arg = ops.pool2d_forward(x, mode=mode, global_pool=True, return_argmax=True)
    want = x.max(axis=(1, 2)) if mode == "max" else x.astype(np.float64).mean(axis=(1, 2))
    assert_within(y.reshape(3, 4), want, 8 * EPS32 * np.abs(x).max(), "y")
    dx = ops.pool2d_backward(np.ones_like(y), x.shape, arg, mode=mode, global_pool=True)
    if mode == "max":
        assert (dx.sum(axis=(1, 2)) == 1).all() and ((dx == 1) == (x == x.max(axis=(1, 2), keepdims=True))).all()
    else:
        np.testing.assert_allclose(dx, 1 / 30, rtol=1e-6)


def test_max_pooling_propagates_nan_and_handles_infinities():
    x = np.array([[1.0, np.nan], [3.0, 2.0]], np.float32).reshape(1, 2, 2, 1)
    y, arg = ops.pool2d_forward(x, 2, return_argmax=True)
    assert np.isnan(y).all() and arg.item() == 1
    x = np.full((1, 2, 2, 1), -np.inf, np.float32)
    y, arg = ops.pool2d_forward(x, 2, return_argmax=True)
    assert y.item() == -np.inf and arg.item() == 0
    dx = ops.pool2d_backward(np.ones((1, 1, 1, 1), np.float32), x.shape, arg)
    assert dx.ravel().tolist() == [1, 0, 0, 0]


def test_pool_backward_refuses_positions_outside_the_image():
    with pytest.raises(ValueError, match="inside the image"):
        ops.pool2d_backward(np.ones((1, 1, 1, 1), np.float32), (1, 2, 2, 1), np.full((1, 1, 1, 1), 7, np.float32))


# ---- layers ----------------------------------------------------------------------------------------------
def _seed_cnn(size=150):
    return keras.Sequential([
        layers.Conv2D(32, (3, 3), activation="relu", input_shape=(size, size, 3)), layers.MaxPooling2D(2, 2),
        layers.Conv2D(64, (3, 3), activation="relu"), layers.MaxPooling2D(2, 2),
        layers.Conv2D(128, (3, 3), activation="relu"), layers.MaxPooling2D(2, 2),
        layers.Flatten(), layers.Dense(512, activation="relu"), layers.Dropout(0.5),
        layers.Dense(1, activation="sigmoid")])


def test_the_seed_cnn_has_keras_shapes_names_and_parameter_counts():
    keras.backend.clear_session() if hasattr(keras, "backend") else None
    model = _seed_cnn()
    shapes = [layer.output_shape for layer in model.layers]
    assert shapes == [(None, 148, 148, 32), (None, 74, 74, 32), (None, 72, 72, 64), (None, 36, 36, 64),
                      (None, 34, 34, 128), (None, 17, 17, 128), (None, 36992), (None, 512), (None, 512), (None, 1)]
    assert [layer.count_params() for layer in model.layers] == [896, 0, 18496, 0, 73856, 0, 0, 18940416, 0, 513]
    assert model.count_params() == 19034177  # Keras's summary of this model
    assert model.layers[0]._kernel.shape == (3, 3, 3, 32)
    assert type(model.layers[1]).__name__ == "MaxPooling2D" and "max_pooling2d" in model.layers[1].name


def test_layer_configs_speak_keras():
    conv = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")
    config = conv.get_config()
    assert config["kernel_size"] == (3, 3) and config["strides"] == (2, 2) and config["dilation_rate"] == (1, 1)
    assert config["padding"] == "same" and config["data_format"] == "channels_last" and config["groups"] == 1
    again = layers.Conv2D.from_config(config)
    assert again.get_config() == config
    pool = layers.MaxPooling2D()
    assert pool.get_config()["pool_size"] == (2, 2) and pool.get_config()["strides"] == (2, 2)
    assert layers.GlobalAveragePooling2D(keepdims=True).get_config()["keepdims"] is True
    assert layers.Conv1D(4, 5, padding="causal").get_config()["kernel_size"] == (5,)
    with pytest.raises(ValueError, match="channels_last"):
        layers.Conv2D(4, 3, data_format="channels_first")
    with pytest.raises(ValueError, match="padding"):
        layers.Conv2D(4, 3, padding="causal")


def test_a_kernel_larger_than_its_input_is_a_clear_error():
    with pytest.raises(ValueError, match="larger than the input"):
        keras.Sequential([layers.Conv2D(2, 5, input_shape=(3, 3, 1))])


def test_conv1d_is_a_conv2d_one_pixel_high(rng):
    x = rng.standard_normal((2, 9, 3)).astype(np.float32)
    conv = layers.Conv1D(4, 3, padding="causal", dilation_rate=2)
    y = conv(x)
    want, _ = R.conv2d_forward(x[:, None], conv.kernel[None], conv.bias, padding="causal", dilation_rate=(1, 2))
    assert y.shape == (2, 9, 4)
    assert_within(y, want[:, 0], 20 * EPS32 * np.abs(want[:, 0]).max(), "y")


def _image_data(rng, n=48, size=12, channels=3, classes=3):
    x = rng.random((n, size, size, channels)).astype(np.float32)
    labels = (x[:, : size // 2].mean(axis=(1, 2, 3)) * 7).astype(np.int64) % classes
    return x, labels


CNNS = {
    "seed-like": lambda: [layers.Conv2D(16, 3, activation="relu", input_shape=(12, 12, 3)), layers.MaxPooling2D(),
                          layers.Conv2D(8, (2, 2), activation="relu"), layers.MaxPooling2D(2, 2), layers.Flatten(),
                          layers.Dense(16, activation="relu"), layers.Dropout(0.5),
                          layers.Dense(3, activation="softmax")],
    "same-strided-avg": lambda: [layers.Conv2D(5, 4, strides=2, padding="same", input_shape=(12, 12, 3),
                                               kernel_regularizer="l2", bias_regularizer="l1"),
                                 layers.BatchNormalization(), layers.Activation("tanh"),
                                 layers.AveragePooling2D(3, strides=1, padding="same"),
                                 layers.Conv2D(4, 3, dilation_rate=2, padding="same", use_bias=False),
                                 layers.GlobalMaxPooling2D(), layers.Dense(3, activation="softmax")],
    "pointwise-global-avg": lambda: [layers.Conv2D(7, 1, activation="elu", input_shape=(12, 12, 3)),
                                     layers.Dropout(0.3, noise_shape=(None, 1, 1, 7)),
                                     layers.MaxPooling2D(3, strides=2, padding="same"),
                                     layers.Reshape((36, 7)), layers.Conv1D(6, 3, padding="causal", activation="relu"),
                                     layers.MaxPooling1D(2), layers.GlobalAveragePooling1D(),
                                     layers.Dense(3, activation="softmax")],
}


@pytest.mark.parametrize("name", list(CNNS))
def test_cnns_train_in_the_plan_bit_for_bit_with_the_layer_path(rng, threads, name):
    x, labels = _image_data(rng)

    def make():
        model = keras.Sequential(CNNS[name]())
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    planned, plain = _fit_both(make, x, labels, epochs=2, batch_size=16)
    assert planned.evaluate(x, labels, verbose=0) == plain.evaluate(x, labels, verbose=0)


def test_a_cnn_learns_and_saves_and_loads(rng, tmp_path):
    x, labels = _image_data(rng, n=96)
    keras.utils.set_random_seed(1)
    model = keras.Sequential(CNNS["seed-like"]())
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, labels, epochs=8, batch_size=16, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    path = str(tmp_path / "cnn.keras")
    model.save(path)
    again = keras.models.load_model(path)
    assert [type(layer).__name__ for layer in again.layers] == [type(layer).__name__ for layer in model.layers]
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    weights = str(tmp_path / "cnn.weights.h5")
    model.save_weights(weights)
    keras.utils.set_random_seed(2)
    fresh = keras.Sequential(CNNS["seed-like"]())
    fresh.load_weights(weights)
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


def test_the_readme_cnn_program_runs_on_a_folder_of_images(tmp_path):
    """The image-classifier program with only its imports changed (and small sizes): flow_from_directory on
    JPEG folders, the Conv2D / MaxPooling2D stack, fit with steps_per_epoch and validation_steps, evaluate."""
    from PIL import Image

    from gradsmith.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
    from gradsmith.models import Sequential
    from gradsmith.preprocessing.image import ImageDataGenerator

    rng = np.random.default_rng(0)
    for split, n in (("train", 24), ("validation", 8)):
        for i in range(n):
            label = ("cats", "dogs")[i % 2]
            (tmp_path / split / label).mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (30 + i % 5, 28, 3), dtype=np.uint8)
            pixels[..., i % 2] = 255  # a colour cue per class
            Image.fromarray(pixels).save(tmp_path / split / label / f"{i}.jpg", quality=90)
    keras.utils.set_random_seed(0)
    train_datagen = ImageDataGenerator(rescale=1. / 255)
    validation_datagen = ImageDataGenerator(rescale=1. / 255)
    train_data = train_datagen.flow_from_directory(str(tmp_path / "train"), target_size=(20, 20), batch_size=8,
                                                   class_mode='binary')
    validation_data = validation_datagen.flow_from_directory(str(tmp_path / "validation"), target_size=(20, 20),
                                                             batch_size=8, class_mode='binary')
    model = Sequential([
        Conv2D(8, (3, 3), activation='relu', input_shape=(20, 20, 3)),
        MaxPooling2D(2, 2),
        Conv2D(16, (3, 3), activation='relu'),
        MaxPooling2D(2, 2),
        Flatten(),
        Dense(16, activation='relu'),
        Dropout(0.5),
        Dense(1, activation='sigmoid')
    ])
    model.compile(optimizer='adam', loss='binary_crossentropy', metrics=['accuracy'])
    history = model.fit(train_data, steps_per_epoch=3, epochs=4, validation_data=validation_data, validation_steps=1,
                        verbose=0)
    assert model._plan is not None, model._plan_reason
    assert len(history.history["val_accuracy"]) == 4 and int(model.optimizer.iterations) == 12
    accuracy = model.evaluate(validation_data, verbose=0)
    assert len(accuracy) == 2 and 0.0 <= accuracy[1] <= 1.0
    assert model.predict(validation_data, verbose=0).shape == (8, 1)


def test_a_fully_convolutional_model_takes_images_of_any_size(rng):
    model = keras.Sequential([keras.Input((None, None, 3)), layers.Conv2D(4, 3, activation="relu"),
                              layers.GlobalAveragePooling2D(), layers.Dense(1)])
    model.compile("adam", "mse")
    model.summary(print_fn=lambda *a, **k: None)  # FLOPs unknown until the size is: no error
    model.fit(rng.random((8, 10, 10, 3), dtype=np.float32), rng.random((8, 1), dtype=np.float32), verbose=0)
    assert "not known in full" in model._plan_reason  # the layer-by-layer path, and it says why
    assert model.predict(rng.random((2, 14, 12, 3), dtype=np.float32), verbose=0).shape == (2, 1)


@pytest.mark.parametrize("change, message", [
    (lambda c: c[0]["lists"].update(kernel_size=[2 ** 21, 3]), "2\\^20"),
    (lambda c: c[0]["lists"].update(strides=[0, 1]), "2\\^20"),
    (lambda c: c[0]["lists"].update(dilation_rate=[1]), "one value per axis"),
    (lambda c: c[0]["lists"].pop("kernel_size"), "one value per axis"),
    (lambda c: c[0]["numbers"].update(padding=7), "padding"),
    (lambda c: c[0]["numbers"].update(padding=float("nan")), "padding"),
    (lambda c: c[0]["numbers"].update(padding=2), "causal"),
    (lambda c: c[0]["lists"].update(kernel_size=[9, 9]), "larger than the input"),
    (lambda c: c[0]["numbers"].update(filters=0), "whole number"),
    (lambda c: c[0].update(input_shape=[6, 6]), "one value per axis"),  # read as a Conv1D's (steps, channels)
    (lambda c: c[1]["numbers"].update(mode=3), "max or average"),
    (lambda c: c[1]["lists"].update(pool_size=[2 ** 30, 2]), "2\\^20"),
    (lambda c: c[1]["lists"].update(pool_size=[7, 7]), "larger than the input"),
    (lambda c: c[2]["lists"].update(target_shape=[5, -2]), "positive"),
    (lambda c: c[2]["lists"].update(target_shape=[7]), "cannot reshape"),
], ids=["huge_kernel", "zero_stride", "short_dilation", "no_kernel_size", "bad_padding", "nan_padding",
        "causal_2d", "kernel_too_big", "zero_filters", "wrong_rank", "bad_pool_mode", "huge_pool", "pool_too_big",
        "negative_target", "wrong_target"])
def test_the_runner_checks_conv_pool_and_reshape_descriptions(change, message):
    """Hostile compiled-layer descriptions are clear errors before anything runs (no crash, no overflow)."""
    from gradsmith import _core
    from test_compiled_step import _runner_args

    model = keras.Sequential([layers.Conv2D(2, 3, input_shape=(6, 6, 1)), layers.MaxPooling2D(),
                              layers.Reshape((8,)), layers.Dense(1)])
    model.compile("adam", "mse")
    model.build((None, 6, 6, 1))
    _, configs, loss, opt, ranges, slots = _runner_args(model)
    assert [c["kind"] for c in configs] == ["Conv", "Pooling", "Reshape", "Dense"]
    change(configs)
    with pytest.raises(ValueError, match=message):
        _core.CpuRunner(configs, loss, opt, model.parameters, model.gradients, ranges, slots, [])

"""The random image layers: against Keras 3 with their factors fixed to one value (their output is then
deterministic: tests/data/make_keras_augmentation_fixtures.py), identity outside training, draws that do not
depend on how a batch is split, and the compiled step applying them as input transforms with the
layer-by-layer path's bits."""
import json
import os

import numpy as np
import pytest

import gradsmith as keras
from gradsmith.layers import (RandomBrightness, RandomContrast, RandomFlip, RandomRotation, RandomTranslation,
                              RandomZoom, Rescaling)

DATA = os.path.join(os.path.dirname(__file__), "data")
FIXED = {
    "rotate90_reflect_nearest": lambda: RandomRotation((0.25, 0.25), interpolation="nearest"),
    "rotate90_constant": lambda: RandomRotation((0.25, 0.25), fill_mode="constant", interpolation="nearest"),
    "rotate30_bilinear": lambda: RandomRotation((1 / 12, 1 / 12), fill_mode="wrap"),
    "zoom_width_only": lambda: RandomZoom((0.0, 0.0), (0.25, 0.25), fill_mode="nearest"),
    "zoom_out_nearest": lambda: RandomZoom((1 / 3, 1 / 3), interpolation="nearest"),
    "zoom_in_bilinear": lambda: RandomZoom((-0.4, -0.4), fill_mode="constant"),
    "translate_nearest": lambda: RandomTranslation((2 / 7, 2 / 7), (-1 / 7, -1 / 7), fill_mode="constant",
                                                   interpolation="nearest"),
    "translate_wrap": lambda: RandomTranslation((-3 / 7, -3 / 7), (2 / 7, 2 / 7), fill_mode="wrap",
                                                interpolation="nearest"),
    "brightness": lambda: RandomBrightness((0.2, 0.2)),
}
RANDOM = [lambda: RandomFlip(seed=1), lambda: RandomRotation(0.1, seed=1), lambda: RandomZoom(0.2, seed=1),
          lambda: RandomTranslation(0.2, 0.1, seed=1), lambda: RandomContrast(0.5, seed=1),
          lambda: RandomBrightness(0.3, seed=1)]


@pytest.fixture(scope="module")
def cases():
    with open(os.path.join(DATA, "keras_augmentation_cases.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("name", list(FIXED))
def test_fixed_transforms_match_keras(cases, name):
    x = np.asarray(cases["images"], np.float32)
    layer = FIXED[name]()
    np.testing.assert_allclose(layer(x, training=True), cases[name], rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("make", RANDOM)
def test_identity_outside_training_and_split_independent_draws(make):
    rng = np.random.default_rng(0)
    x = (rng.random((8, 9, 9, 3)) * 255).astype(np.float32)
    layer = make()
    np.testing.assert_array_equal(layer(x), x)
    whole = make()(x, training=True)
    split = make()
    parts = np.concatenate([split(x[:3], training=True), split(x[3:], training=True)])
    np.testing.assert_array_equal(whole, parts)
    assert not np.array_equal(whole, x)
    assert whole.shape == x.shape and whole.dtype == np.float32


def test_flip_gives_flipped_images_and_contrast_keeps_the_mean():
    rng = np.random.default_rng(1)
    x = (rng.random((64, 4, 5, 1)) * 255).astype(np.float32)
    y = RandomFlip("horizontal", seed=3)(x, training=True)
    flipped = [np.array_equal(a, b[:, ::-1]) for a, b in zip(y, x)]
    kept = [np.array_equal(a, b) for a, b in zip(y, x)]
    assert all(f or k for f, k in zip(flipped, kept)) and 16 < sum(flipped) < 48
    x = (rng.random((8, 4, 4, 2)) * 100 + 50).astype(np.float32)
    y = RandomContrast(0.3, seed=0)(x, training=True)
    np.testing.assert_allclose(y.mean(axis=(1, 2)), x.mean(axis=(1, 2)), rtol=1e-5)


def test_augmentation_first_keeps_the_compiled_step_with_the_same_bits():
    rng = np.random.default_rng(2)
    x = (rng.random((64, 8, 8, 3)) * 255).astype(np.float32)
    y = rng.integers(0, 2, 64)
    runs = []
    for compiled in (True, False):
        keras.utils.set_random_seed(7)
        model = keras.Sequential([keras.Input((8, 8, 3)), RandomFlip("horizontal", seed=5),
                                  RandomRotation(0.1, seed=6), Rescaling(1 / 255.0),
                                  keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.Flatten(),
                                  keras.layers.Dense(2)])
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        if not compiled:
            model._compiled_step = lambda: None
        model.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=False)
        if compiled:
            assert model._plan is not None, model._plan_reason
        runs.append((model.get_weights(), model.predict(x, verbose=0)))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        RandomFlip("diagonal")
    with pytest.raises(ValueError, match="fill_mode"):
        RandomRotation(0.1, fill_mode="mirror")
    with pytest.raises(ValueError, match="images"):
        keras.Sequential([keras.Input((5,)), RandomFlip()])
    with pytest.raises(ValueError, match="finite"):
        RandomZoom(float("nan"))

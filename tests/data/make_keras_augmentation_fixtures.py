"""Records tests/data/keras_augmentation_cases.json with Keras 3 (JAX backend): the random image layers with
factors fixed to one value (so their output is deterministic): rotation by 90 degrees, zoom, translation,
contrast and brightness, for the fill modes and interpolations.

    KERAS_BACKEND=jax python tests/data/make_keras_augmentation_fixtures.py
"""
import json
import os

import keras
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
L = keras.layers


def main():
    rng = np.random.default_rng(0)
    images = (rng.random((2, 7, 7, 2)) * 255).astype("float32")  # square, odd: no sample lands on a half pixel
    cases = {"images": images.tolist()}
    made = {
        "rotate90_reflect_nearest": L.RandomRotation((0.25, 0.25), interpolation="nearest"),
        "rotate90_constant": L.RandomRotation((0.25, 0.25), fill_mode="constant", interpolation="nearest"),
        "rotate30_bilinear": L.RandomRotation((1 / 12, 1 / 12), fill_mode="wrap"),
        "zoom_width_only": L.RandomZoom((0.0, 0.0), (0.25, 0.25), fill_mode="nearest"),
        "zoom_out_nearest": L.RandomZoom((1 / 3, 1 / 3), interpolation="nearest"),
        "zoom_in_bilinear": L.RandomZoom((-0.4, -0.4), fill_mode="constant"),
        "translate_nearest": L.RandomTranslation((2 / 7, 2 / 7), (-1 / 7, -1 / 7), fill_mode="constant",
                                                 interpolation="nearest"),
        "translate_wrap": L.RandomTranslation((-3 / 7, -3 / 7), (2 / 7, 2 / 7), fill_mode="wrap",
                                              interpolation="nearest"),
        "brightness": L.RandomBrightness((0.2, 0.2)),
    }
    for name, layer in made.items():
        cases[name] = np.asarray(layer(images, training=True)).tolist()
    with open(os.path.join(HERE, "keras_augmentation_cases.json"), "w") as f:
        json.dump(cases, f)


if __name__ == "__main__":
    main()

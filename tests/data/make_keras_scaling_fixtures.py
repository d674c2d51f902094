"""Records tests/data/keras_scaling_cases.json and keras_normalization.keras with Keras 3 (JAX backend):
Rescaling and Normalization (adapt over each axis choice, given statistics, invert) outputs, and a saved
model that starts with an adapted Normalization.

    KERAS_BACKEND=jax python tests/data/make_keras_scaling_fixtures.py
"""
import json
import os

import keras
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((20, 3, 4)) * [1, 10, 0.1, 0] + [3, -2, 0, 5]).astype("float32")
    query = rng.standard_normal((2, 3, 4)).astype("float32") * 4
    cases = {"data": data.tolist(), "query": query.tolist()}
    for name, make in [("last", lambda: keras.layers.Normalization()),
                       ("axis1", lambda: keras.layers.Normalization(axis=1)),
                       ("axis12", lambda: keras.layers.Normalization(axis=(1, 2))),
                       ("none", lambda: keras.layers.Normalization(axis=None)),
                       ("invert", lambda: keras.layers.Normalization(invert=True))]:
        layer = make()
        layer.adapt(data)
        cases[name] = {"y": np.asarray(layer(query)).tolist(),
                       "weights": [np.asarray(w).tolist() for w in layer.weights]}
    given = keras.layers.Normalization(mean=[1.0, 2.0, 3.0, 4.0], variance=[1.0, 4.0, 0.0, 9.0])
    cases["given"] = {"y": np.asarray(given(query)).tolist(), "config": {k: v for k, v in given.get_config().items()
                                                                        if k != "dtype"}}
    for name, layer in [("rescale", keras.layers.Rescaling(1 / 255.0)),
                        ("rescale_offset", keras.layers.Rescaling(2.0, offset=-1.0)),
                        ("rescale_channels", keras.layers.Rescaling([1.0, 2.0, 3.0, 4.0], offset=[0.5, 0, 0, -1]))]:
        cases[name] = {"y": np.asarray(layer(query)).tolist(),
                       "config": {k: v for k, v in layer.get_config().items() if k != "dtype"}}
    norm = keras.layers.Normalization()
    norm.adapt(data.reshape(-1, 4))
    model = keras.Sequential([keras.Input((4,)), norm, keras.layers.Dense(2)])
    model.save(os.path.join(HERE, "keras_normalization.keras"))
    cases["model_predict"] = np.asarray(model.predict(query.reshape(-1, 4), verbose=0)).tolist()
    with open(os.path.join(HERE, "keras_scaling_cases.json"), "w") as f:
        json.dump(cases, f)


if __name__ == "__main__":
    main()

"""Checks that real Keras 3 reads gradsmith's files of models used as layers (the other direction of
make_keras_nested_fixtures.py; not run by the tests, which have no Keras). Two steps, two environments:

    PYTHONPATH=python python tests/data/check_nested_in_keras.py write /tmp/nested     # gradsmith
    KERAS_BACKEND=jax /tmp/venv_keras/bin/python tests/data/check_nested_in_keras.py read /tmp/nested

``write`` trains outer = Sequential([Sequential([base (frozen, with BatchNormalization), functional head]),
Dense(3, softmax)]) and a functional Model(Input, Dense(2)(base(Input))) and saves them (.keras,
.weights.h5) with their predictions and the weights after one more train_on_batch. ``read`` loads them in
Keras and prints the largest differences (about 1e-7 when Keras agrees), raising if one is over 1e-5.
"""
import os
import sys

import numpy as np


def write(directory):
    import gradsmith as keras

    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 8)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 20)]
    base = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                             keras.layers.BatchNormalization(), keras.layers.Dense(8)])
    inp = keras.Input((8,))
    head = keras.Model(inp, keras.layers.Dense(6, activation="tanh")(inp))
    outer = keras.Sequential([keras.Sequential([base, head]), keras.layers.Dense(3, activation="softmax")])
    base.trainable = False
    outer.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy", metrics=["accuracy"])
    outer.fit(x, y, batch_size=8, epochs=2, verbose=0)
    outer.save(os.path.join(directory, "outer.keras"))
    outer.save_weights(os.path.join(directory, "outer.weights.h5"))
    pred = outer.predict(x, verbose=0)
    outer.train_on_batch(x, y)
    inp = keras.Input((8,))
    functional = keras.Model(inp, keras.layers.Dense(2)(base(inp)))
    functional.save(os.path.join(directory, "functional.keras"))
    np.savez(os.path.join(directory, "io.npz"), x=x, y=y, pred=pred, pred_functional=functional.predict(x, verbose=0),
             **{f"after_step_{i}": w for i, w in enumerate(outer.get_weights())})


def read(directory):
    import keras

    d = np.load(os.path.join(directory, "io.npz"))
    diffs = {}
    model = keras.saving.load_model(os.path.join(directory, "outer.keras"))
    assert [type(l).__name__ for l in model.layers[0].layers] == ["Sequential", "Functional"]
    assert len(model.trainable_weights) == 4
    diffs["predict"] = np.abs(model.predict(d["x"], verbose=0) - d["pred"]).max()
    model.train_on_batch(d["x"], d["y"])
    diffs["next step"] = max(np.abs(w.numpy() - d[f"after_step_{i}"]).max() for i, w in enumerate(model.weights))
    plain = keras.saving.load_model(os.path.join(directory, "outer.keras"), compile=False)
    plain.load_weights(os.path.join(directory, "outer.weights.h5"))
    diffs["weights file"] = np.abs(plain.predict(d["x"], verbose=0) - d["pred"]).max()
    functional = keras.saving.load_model(os.path.join(directory, "functional.keras"))
    diffs["functional"] = np.abs(functional.predict(d["x"], verbose=0) - d["pred_functional"]).max()
    print(keras.__version__, diffs)
    assert max(diffs.values()) < 1e-5, diffs


if __name__ == "__main__":
    {"write": write, "read": read}[sys.argv[1]](sys.argv[2])

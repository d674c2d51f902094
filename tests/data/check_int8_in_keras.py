"""Checks that real Keras 3 reads gradsmith's int8-quantized files (the other direction of
make_keras_int8_fixtures.py; not run by the tests, which have no Keras). Two steps, two environments:

    PYTHONPATH=python python tests/data/check_int8_in_keras.py write /tmp/int8     # gradsmith
    KERAS_BACKEND=jax /tmp/venv_keras/bin/python tests/data/check_int8_in_keras.py read /tmp/int8

``write`` quantizes a Dense MLP and an Embedding -> Dense (3-D) model in gradsmith, saves them (.keras) with
their inputs and predictions. ``read`` loads them in Keras, checks that every layer is int8-quantized with
the same int8 kernels, and prints the largest prediction differences, raising if one is over 1e-5.
"""
import os
import sys

import numpy as np


def write(directory):
    import gradsmith as keras

    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(3)
    mlp = keras.Sequential([keras.Input((20,)), keras.layers.Dense(32, activation="relu"),
                            keras.layers.Dense(5, activation="softmax")])
    x = (rng.standard_normal((16, 20)) * 3).astype(np.float32)
    emb = keras.Sequential([keras.Input((6,), dtype="int32"), keras.layers.Embedding(40, 12),
                            keras.layers.Dense(7, activation="tanh")])
    ids = rng.integers(0, 40, (9, 6)).astype(np.int32)
    out = {}
    for name, model, inputs in (("mlp", mlp, x), ("emb", emb, ids)):
        model.quantize("int8")
        model.save(os.path.join(directory, f"{name}.keras"))
        out[f"x_{name}"], out[f"pred_{name}"] = inputs, model.predict(inputs, verbose=0)
        for i, w in enumerate(model.get_weights()):
            out[f"{name}_w{i}"] = w
    np.savez(os.path.join(directory, "io.npz"), **out)


def read(directory):
    import keras

    io = np.load(os.path.join(directory, "io.npz"))
    for name in ("mlp", "emb"):
        model = keras.saving.load_model(os.path.join(directory, f"{name}.keras"))
        assert all(layer.quantization_mode == "int8" for layer in model.layers), name
        ours = [io[f"{name}_w{i}"] for i in range(sum(k.startswith(f"{name}_w") for k in io.files))]
        int8_ours = [w for w in ours if w.dtype == np.int8]
        int8_keras = [np.asarray(v.numpy()) for v in model.weights if str(v.dtype) == "int8"]
        assert len(int8_ours) == len(int8_keras) and all(np.array_equal(a, b) for a, b in zip(int8_ours, int8_keras))
        diff = float(np.max(np.abs(np.asarray(model.predict(io[f"x_{name}"], verbose=0)) - io[f"pred_{name}"])))
        print(f"{name}: largest prediction difference {diff:.3g}")
        if diff > 1e-5:
            raise SystemExit(f"{name}: Keras predicts differently ({diff})")


if __name__ == "__main__":
    {"write": write, "read": read}[sys.argv[1]](sys.argv[2])

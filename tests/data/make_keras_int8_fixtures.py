"""Writes the Keras-made int8 fixtures of tests/test_quantization.py. Run with real Keras 3.15 (not needed by the
tests):  KERAS_BACKEND=jax python tests/data/make_keras_int8_fixtures.py

keras_int8_mlp.keras: Input(12,) -> Dense(16, relu) -> Dense(4, softmax), ``model.quantize("int8")`` in Keras.
keras_int8_emb.keras: Input(5,) int ids -> Embedding(30, 8) -> Dense(6, tanh) on every step (a 3-D Dense),
    quantized in Keras.
keras_int8_io.npz: the inputs; each model's float32 weights before quantize (``<name>_float_<i>``, Keras's
    get_weights order) and its quantized variables after (``<name>_<layer>_<variable>``); Keras's predictions
    (``pred_<name>``); for the MLP, the biases after one SGD train_on_batch of the quantized model
    (``mlp_step_<layer>_bias``: Keras trains the bias and freezes the int8 kernel) and the predictions after it.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    keras.utils.set_random_seed(8)
    rng = np.random.default_rng(8)
    L = keras.layers
    out = {}

    def quantize(name, model, x):
        for i, w in enumerate(model.get_weights()):
            out[f"{name}_float_{i}"] = w
        model.quantize("int8")
        for layer in model.layers:
            for v in layer.weights:
                out[f"{name}_{layer.name}_{v.name}"] = np.asarray(v.numpy())
        out[f"x_{name}"] = x
        out[f"pred_{name}"] = np.asarray(model.predict(x, verbose=0))
        model.save(os.path.join(HERE, f"keras_int8_{name}.keras"))

    mlp = keras.Sequential([keras.Input((12,)), L.Dense(16, activation="relu", name="hidden"),
                            L.Dense(4, activation="softmax", name="out")])
    # Inputs on several scales (the per-row scale differs row to row), one row of zeros (scale 127 / 1e-7).
    x = (rng.standard_normal((24, 12)) * rng.uniform(0.01, 5.0, (24, 1))).astype(np.float32)
    x[3] = 0.0
    quantize("mlp", mlp, x)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 24)]
    mlp.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    mlp.train_on_batch(x, y)
    for layer in mlp.layers:
        out[f"mlp_step_{layer.name}_bias"] = np.asarray(layer.bias.numpy())
    out["y_mlp"] = y
    out["pred_mlp_after_step"] = np.asarray(mlp.predict(x, verbose=0))

    emb = keras.Sequential([keras.Input((5,), dtype="int32"), L.Embedding(30, 8, name="emb"),
                            L.Dense(6, activation="tanh", name="steps")])
    ids = rng.integers(0, 30, (10, 5)).astype(np.int32)
    quantize("emb", emb, ids)

    np.savez_compressed(os.path.join(HERE, "keras_int8_io.npz"), **out)


if __name__ == "__main__":
    main()

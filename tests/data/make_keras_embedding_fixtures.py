"""Writes the Keras-made Embedding fixtures of tests/test_embedding_keras.py. Run with real Keras 3 (not needed by
the tests):  KERAS_BACKEND=jax python tests/data/make_keras_embedding_fixtures.py

keras_emb_pool.keras: Input(6,) int ids -> Embedding(20, 8, L2 on the table) -> GlobalAveragePooling1D
    -> Dense(3, softmax); Adam + sparse_categorical_crossentropy + accuracy, after a few steps.
keras_emb_flatten.keras: Input(5,) -> Embedding(15, 4) -> Flatten -> Dense(1); SGD with momentum + mse.
keras_emb_steps.keras: Input(7,) -> Embedding(11, 6) -> Dense(11) on every step; RMSprop +
    SparseCategoricalCrossentropy(from_logits=True) over (batch, 7) labels (next-token style) + accuracy.
keras_emb_io.npz: inputs and targets, Keras's predictions, and the weights after one more train_on_batch in
    Keras (the optimizer state carried over).
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    keras.utils.set_random_seed(13)
    rng = np.random.default_rng(13)
    L = keras.layers
    out = {}

    def record(name, model, x, y, fit):
        model.fit(x, y, verbose=0, **fit)
        model.save(os.path.join(HERE, f"keras_emb_{name}.keras"))
        out[f"x_{name}"], out[f"y_{name}"] = x, y
        out[f"pred_{name}"] = model.predict(x, verbose=0)
        model.train_on_batch(x, y)
        out.update({f"{name}_after_step_{i}": w.numpy() for i, w in enumerate(model.weights)})

    pool = keras.Sequential([keras.Input((6,), dtype="int32"),
                             L.Embedding(20, 8, embeddings_regularizer=keras.regularizers.L2(0.01)),
                             L.GlobalAveragePooling1D(), L.Dense(3, activation="softmax")])
    pool.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    record("pool", pool, rng.integers(0, 20, (16, 6)).astype(np.int32), rng.integers(0, 3, 16),
           {"batch_size": 8, "epochs": 2})

    flat = keras.Sequential([keras.Input((5,), dtype="int32"), L.Embedding(15, 4), L.Flatten(), L.Dense(1)])
    flat.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1, momentum=0.9), loss="mse")
    record("flatten", flat, rng.integers(0, 15, (12, 5)).astype(np.int32),
           rng.standard_normal((12, 1)).astype(np.float32), {"batch_size": 4, "epochs": 2})

    steps = keras.Sequential([keras.Input((7,), dtype="int32"), L.Embedding(11, 6), L.Dense(11)])
    steps.compile(optimizer="rmsprop", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    record("steps", steps, rng.integers(0, 11, (10, 7)).astype(np.int32), rng.integers(0, 11, (10, 7)),
           {"batch_size": 5, "epochs": 2})
    np.savez(os.path.join(HERE, "keras_emb_io.npz"), **out, keras_version=np.array(keras.__version__))


if __name__ == "__main__":
    main()

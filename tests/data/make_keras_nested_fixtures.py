"""Writes the Keras-made fixtures of tests/test_nested_models.py (models used as layers). Run with real
Keras 3 (not needed by the tests):

    python -m venv /tmp/venv_keras && /tmp/venv_keras/bin/pip install keras jax jaxlib h5py
    KERAS_BACKEND=jax /tmp/venv_keras/bin/python tests/data/make_keras_nested_fixtures.py

keras_nested.keras / keras_nested.weights.h5: three levels of models,
    outer = Sequential([mid, Dense(3, softmax)]),
    mid = Sequential([base, head]),
    base = Sequential([Input(8), Dense(16, relu), BatchNormalization(), Dense(8)])   frozen (base.trainable = False)
    head = Model(Input(8), Dense(6, tanh))                                           a functional model
    compiled with Adam(0.01) + categorical_crossentropy + ['accuracy'] and fitted a few steps.
keras_nested_functional.keras: Model(Input(8), Dense(2)(base(Input))), a functional model holding the frozen
    base, not compiled.
keras_nested_io.npz: x, y, Keras's predictions (of keras_nested_functional.keras: pred_functional), outer.weights (Keras's order) after one more
    train_on_batch(x, y) (the optimizer state carried over), the trainable weight count, summary lines.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    keras.utils.set_random_seed(11)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((24, 8)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 24)]
    base = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(16, activation="relu"),
                             keras.layers.BatchNormalization(), keras.layers.Dense(8)], name="base")
    bn = base.layers[1]  # moving statistics away from their initial values
    bn.set_weights([bn.gamma.numpy(), bn.beta.numpy(), rng.standard_normal(16).astype(np.float32) * 0.1,
                    rng.uniform(0.5, 2.0, 16).astype(np.float32)])
    inp = keras.Input(shape=(8,))
    head = keras.Model(inp, keras.layers.Dense(6, activation="tanh")(inp), name="head")
    mid = keras.Sequential([base, head], name="mid")
    outer = keras.Sequential([mid, keras.layers.Dense(3, activation="softmax")], name="outer")
    base.trainable = False
    outer.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    outer.fit(x, y, batch_size=8, epochs=2, verbose=0)
    outer.save(os.path.join(HERE, "keras_nested.keras"))
    outer.save_weights(os.path.join(HERE, "keras_nested.weights.h5"))
    pred = outer.predict(x, verbose=0)
    lines = []
    outer.summary(print_fn=lambda line, **_: lines.append(line))
    outer.train_on_batch(x, y)
    inp = keras.Input(shape=(8,))
    functional = keras.Model(inp, keras.layers.Dense(2)(base(inp)), name="transfer")
    functional.save(os.path.join(HERE, "keras_nested_functional.keras"))
    np.savez(os.path.join(HERE, "keras_nested_io.npz"), x=x, y=y, pred=pred,
             pred_functional=functional.predict(x, verbose=0),
             **{f"after_step_{i}": w.numpy() for i, w in enumerate(outer.weights)},
             n_trainable=np.array(len(outer.trainable_weights)), summary=np.array("\n".join(lines)),
             keras_version=np.array(keras.__version__))


if __name__ == "__main__":
    main()

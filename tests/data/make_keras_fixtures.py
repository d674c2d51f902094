"""Writes the Keras-made fixtures of tests/test_keras_saving.py. Run with real Keras 3 (not needed by the
tests):  KERAS_BACKEND=jax python tests/data/make_keras_fixtures.py

keras_dense.keras / keras_dense.weights.h5: Input(4) -> Dense(5, relu) -> Dropout(0.1) -> Dense(3, softmax),
    Adam + categorical_crossentropy + ['accuracy'], after a few training steps.
keras_mixed.keras: Input(2, 3) -> Flatten -> Dense(4, tanh, L2) -> Activation(sigmoid) -> Dense(2, no bias),
    RMSprop(centered, momentum) + a MeanSquaredError object + metrics, after a few training steps.
keras_io.npz: the inputs and targets, Keras's predictions, and for keras_mixed the weights after one more
    train_on_batch(x_mixed, y_mixed) in Keras (the optimizer state carried over).
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((12, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 12)]
    dense = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(5, activation="relu"),
                              keras.layers.Dropout(0.1), keras.layers.Dense(3, activation="softmax")])
    dense.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    dense.fit(x, y, batch_size=4, epochs=2, verbose=0)
    dense.save(os.path.join(HERE, "keras_dense.keras"))
    dense.save_weights(os.path.join(HERE, "keras_dense.weights.h5"))

    xm = rng.standard_normal((10, 2, 3)).astype(np.float32)
    ym = rng.standard_normal((10, 2)).astype(np.float32)
    mixed = keras.Sequential([keras.Input(shape=(2, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(4, activation="tanh", kernel_regularizer=keras.regularizers.L2(0.01)),
                              keras.layers.Activation("sigmoid"), keras.layers.Dense(2, use_bias=False)])
    mixed.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.01, momentum=0.5, centered=True),
                  loss=keras.losses.MeanSquaredError(), metrics=["mae", keras.metrics.RootMeanSquaredError()])
    mixed.fit(xm, ym, batch_size=5, epochs=2, verbose=0)
    mixed.save(os.path.join(HERE, "keras_mixed.keras"))
    pred_mixed = mixed.predict(xm, verbose=0)
    mixed.train_on_batch(xm, ym)
    np.savez(os.path.join(HERE, "keras_io.npz"), x_dense=x, y_dense=y, pred_dense=dense.predict(x, verbose=0),
             x_mixed=xm, y_mixed=ym, pred_mixed=pred_mixed,
             **{f"mixed_after_step_{i}": w.numpy() for i, w in enumerate(mixed.weights)},
             keras_version=np.array(keras.__version__))


if __name__ == "__main__":
    main()

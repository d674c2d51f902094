"""Writes the Keras-made convolution fixtures of tests/test_conv_keras.py. Run with real Keras 3 (not needed by
the tests):  KERAS_BACKEND=jax python tests/data/make_keras_cnn_fixtures.py

keras_cnn2d.keras: Input(12, 12, 3) -> Conv2D(6, 3, relu) -> MaxPooling2D -> Conv2D(5, (2, 3), strides 2,
    'same', tanh, L2) -> BatchNormalization -> AveragePooling2D(2, strides 1, 'same') -> Conv2D(4, 1)
    -> GlobalMaxPooling2D -> Dense(3, softmax); Adam + categorical_crossentropy + accuracy, after a few steps.
keras_cnn1d.keras: Input(10, 4) -> Conv1D(5, 3, 'causal', dilation 2, relu) -> MaxPooling1D(2) ->
    Conv1D(3, 2, strides 2, 'same') -> Reshape((9,)) -> Dense(1); SGD with momentum + mse, after a few steps.
keras_cnn_io.npz: inputs and targets, Keras's predictions, and the weights after one more
    train_on_batch in Keras (the optimizer state carried over).
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    keras.utils.set_random_seed(11)
    rng = np.random.default_rng(11)
    L = keras.layers
    x2 = rng.standard_normal((16, 12, 12, 3)).astype(np.float32)
    y2 = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 16)]
    cnn2d = keras.Sequential([
        keras.Input((12, 12, 3)), L.Conv2D(6, 3, activation="relu"), L.MaxPooling2D(),
        L.Conv2D(5, (2, 3), strides=2, padding="same", activation="tanh",
                 kernel_regularizer=keras.regularizers.L2(0.01)),
        L.BatchNormalization(), L.AveragePooling2D(2, strides=1, padding="same"), L.Conv2D(4, 1),
        L.GlobalMaxPooling2D(), L.Dense(3, activation="softmax")])
    cnn2d.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    cnn2d.fit(x2, y2, batch_size=8, epochs=2, verbose=0)
    cnn2d.save(os.path.join(HERE, "keras_cnn2d.keras"))
    pred2 = cnn2d.predict(x2, verbose=0)
    cnn2d.train_on_batch(x2, y2)

    x1 = rng.standard_normal((8, 10, 4)).astype(np.float32)
    y1 = rng.standard_normal((8, 1)).astype(np.float32)
    cnn1d = keras.Sequential([
        keras.Input((10, 4)), L.Conv1D(5, 3, padding="causal", dilation_rate=2, activation="relu"),
        L.MaxPooling1D(2), L.Conv1D(3, 2, strides=2, padding="same"), L.Reshape((9,)), L.Dense(1)])
    cnn1d.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05, momentum=0.9), loss="mse")
    cnn1d.fit(x1, y1, batch_size=4, epochs=2, verbose=0)
    cnn1d.save(os.path.join(HERE, "keras_cnn1d.keras"))
    pred1 = cnn1d.predict(x1, verbose=0)
    cnn1d.train_on_batch(x1, y1)
    np.savez(os.path.join(HERE, "keras_cnn_io.npz"), x_cnn2d=x2, y_cnn2d=y2, pred_cnn2d=pred2,
             x_cnn1d=x1, y_cnn1d=y1, pred_cnn1d=pred1,
             **{f"cnn2d_after_step_{i}": w.numpy() for i, w in enumerate(cnn2d.weights)},
             **{f"cnn1d_after_step_{i}": w.numpy() for i, w in enumerate(cnn1d.weights)},
             keras_version=np.array(keras.__version__))


if __name__ == "__main__":
    main()

"""A small classifier as PyTorch users write it (logits out, cross-entropy from logits, plain SGD),
in Keras form; only the import differs from a Keras program."""
import numpy as np

import gradsmith as keras


def make_data(n, rng):
    x = rng.standard_normal((n, 10)).astype(np.float32)
    y = (x[:, :5].sum(axis=1) > x[:, 5:].sum(axis=1)).astype(np.int64)  # two classes
    return x, y


def main(epochs=100, seed=0):
    rng = np.random.default_rng(seed)
    x_train, y_train = make_data(800, rng)
    x_test, y_test = make_data(200, rng)
    model = keras.Sequential([
        keras.layers.Dense(10, activation="relu", input_shape=(10,)),
        keras.layers.Dense(2),
    ])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, epochs=epochs, verbose=0)
    logits = model.predict(x_test, verbose=0)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == y_test))
    print(f"held-out accuracy {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    main()

"""``python -m gradsmith.demo``: train a binary classifier the way Keras users write it
(``python -m gradsmith.demo cnn``: a convolutional classifier from a folder of images, gradsmith/demo_cnn.py;
``python -m gradsmith.demo text``: a character-level GRU that writes text, gradsmith/demo_text.py).

The data is scikit-learn's breast-cancer set (569 samples, 30 features) when
scikit-learn is installed, otherwise a generated set of the same size. The
features are standardized with the training split's statistics; a
30-128-64-1 network learns with Adam and binary cross-entropy, showing
Keras's progress bar, then prints the held-out accuracy. Exits non-zero if
the model did not learn (accuracy under 85%).
"""
import sys

import numpy as np

import gradsmith as keras


def load_data(seed=0):
    """(x, y, description): the breast-cancer set, or a generated stand-in of the same shape."""
    try:
        from sklearn.datasets import load_breast_cancer
    except ImportError:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((569, 30)).astype(np.float32)
        w = rng.standard_normal(30)
        y = (x @ w + 0.5 * np.sin(3 * x[:, 0]) > 0).astype(np.float32)
        return x, y, "generated data (install scikit-learn for the breast-cancer set)"
    data = load_breast_cancer()
    return data.data.astype(np.float32), data.target.astype(np.float32), "scikit-learn breast-cancer data"


def main(epochs=20, seed=0):
    keras.utils.set_random_seed(seed)
    x, y, source = load_data(seed)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    split = int(0.8 * len(x))
    mean, std = x[:split].mean(axis=0), x[:split].std(axis=0) + 1e-7
    x = (x - mean) / std
    x_train, x_test, y_train, y_test = x[:split], x[split:], y[:split], y[split:]

    info = keras.cpu_info()
    print(f"gradsmith {keras.__version__} on {info['isa']} with {info['threads']} threads; {source}: "
          f"{len(x_train)} training and {len(x_test)} test samples")
    model = keras.Sequential([
        keras.Input(shape=(x.shape[1],)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.summary()
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_data=(x_test, y_test))
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test loss {loss:.4f}, test accuracy {accuracy:.4f}")
    if not accuracy > 0.85:
        print("the model did not reach 85% test accuracy", file=sys.stderr)
        return 1
    return 0


def run(argv):
    if argv == ["cnn"]:
        from gradsmith import demo_cnn

        return demo_cnn.main()
    if argv == ["text"]:
        from gradsmith import demo_text

        return demo_text.main()
    if argv:
        print("usage: python -m gradsmith.demo [cnn | text]", file=sys.stderr)
        return 2
    return main()


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))

"""A binary classifier, as Keras users write it; only the import differs.

Standardize the features, train a 20-128-64-1 network with Adam and binary
cross-entropy, once from NumPy arrays and once from a Dataset.
"""
import numpy as np

import gradsmith as keras
from gradsmith.data import Dataset


def make_data(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 20)).astype(np.float32) * 3.0 + 1.0
    w = rng.standard_normal(20)
    y = (X @ w + 2.0 * np.sin(X[:, 0]) > w.sum()).astype(np.float32)
    return X, y


def build_model():
    model = keras.Sequential([
        keras.layers.Dense(128, activation="relu", input_shape=(20,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def main(n=1000, epochs=10, verbose=1):
    X, y = make_data(n)
    split = int(0.8 * n)
    mean, std = X[:split].mean(axis=0), X[:split].std(axis=0)
    X = (X - mean) / std  # standardize with the training set's statistics
    X_train, X_test, y_train, y_test = X[:split], X[split:], y[:split], y[split:]

    model = build_model()
    model.fit(X_train, y_train, batch_size=32, epochs=epochs, validation_data=(X_test, y_test), verbose=verbose)
    loss, acc = model.evaluate(X_test, y_test, verbose=0)
    print(f"arrays:  test loss {loss:.4f}, test accuracy {acc:.4f}")

    model = build_model()
    train_ds = Dataset.from_tensor_slices((X_train, y_train)).shuffle(len(X_train), seed=0).batch(32)
    test_ds = Dataset.from_tensor_slices((X_test, y_test)).batch(32)
    model.fit(train_ds, epochs=epochs, validation_data=test_ds, verbose=verbose)
    ds_loss, ds_acc = model.evaluate(test_ds, verbose=0)
    print(f"dataset: test loss {ds_loss:.4f}, test accuracy {ds_acc:.4f}")
    return acc, ds_acc


if __name__ == "__main__":
    main()

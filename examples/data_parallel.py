"""The binary classifier of binary_classifier.py, trained data-parallel: the same program alone or on N ranks.

    python examples/data_parallel.py                  # one process
    mpiexec -n 2 python examples/data_parallel.py     # two ranks, each on half of every batch of 32

Two lines make a Keras program data-parallel (before the model is built); nothing else changes. Every rank
starts from rank 0's weights, takes its share of each global batch, and the gradients are averaged over the
ranks before each update, so N ranks train the weights one process trains (to float32 rounding: see
docs/distribution.md). Only rank 0 prints and writes files. Needs ``pip install "gradsmith[mpi]"`` for
more than one process.
"""
import os
import sys

import numpy as np

import gradsmith as keras

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from binary_classifier import build_model, make_data  # noqa: E402


def main(n=1000, epochs=10, verbose=1, out=None):
    keras.distribution.initialize()  # joins the MPI job; a no-op in a single process
    keras.distribution.set_distribution(keras.distribution.DataParallel())
    chief = keras.distribution.rank() == 0

    keras.utils.set_random_seed(0)  # rank 0's draws are the ones used: its weights and shuffle seed
    X, y = make_data(n)
    split = int(0.8 * n)
    mean, std = X[:split].mean(axis=0), X[:split].std(axis=0)
    X = (X - mean) / std
    X_train, X_test, y_train, y_test = X[:split], X[split:], y[:split], y[split:]

    model = build_model()
    callbacks = [keras.callbacks.CSVLogger(os.path.join(out, "log.csv"))] if out else []
    model.fit(X_train, y_train, batch_size=32, epochs=epochs, validation_data=(X_test, y_test), verbose=verbose,
              callbacks=callbacks)
    loss, acc = model.evaluate(X_test, y_test, verbose=0)
    if chief:
        print(f"{keras.distribution.size()} process(es): test loss {loss:.6f}, test accuracy {acc:.4f}, "
              f"weights checksum {float(np.abs(model.parameters).astype(np.float64).sum()):.6f}")
        if out:
            model.save_weights(os.path.join(out, "final.weights.h5"))
    return loss, acc


if __name__ == "__main__":
    main()

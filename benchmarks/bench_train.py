"""Training throughput of the Keras API against PyTorch, Keras/TensorFlow and plain NumPy.

Program 1 of the API issue (a 20-128-64-1 binary classifier, 8000 samples,
batch 32, Adam, 10 epochs with validation on 2000) trained by gradsmith's
``fit``, by the usual PyTorch CPU loop (with gradsmith's thread count and with
one thread), by Keras on TensorFlow when installed, and by the NumPy trainer
of benchmarks/numpy_trainer.py; and the 784-1024-1024-10 MLP (batch 128,
60000 samples, one epoch) against PyTorch. Runs alternate; the table gives
median samples/s, ratios, spreads and gradsmith's share of the machine's
measured FLOP peak. A thin script over ``python -m gradsmith.bench --only
train``; it also times one ``train_on_batch`` of program 2 (Dense(1) on 2
features).

    python benchmarks/bench_train.py [--threads N] [--repeats N] [--quick] [--json out.json]
"""
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # see bench_gemm.py

import numpy as np  # noqa: E402

import gradsmith as keras  # noqa: E402
from gradsmith.bench.cli import main  # noqa: E402


def train_on_batch_us(repeats=2000):
    """Median microseconds of one train_on_batch of program 2 (the per-call overhead)."""
    x = np.array([[1, 2], [1, 3]], np.float32)
    y = np.array([3, 4], np.float32)
    model = keras.Sequential([keras.layers.Dense(units=1, input_shape=(2,))])
    model.compile(optimizer="sgd", loss="mean_squared_error")
    for _ in range(100):
        model.train_on_batch(x, y)
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeats):
            model.train_on_batch(x, y)
        samples.append((time.perf_counter() - t0) / repeats * 1e6)
    return statistics.median(samples)


if __name__ == "__main__":
    rc = main(["--only", "train", *sys.argv[1:]], prog=sys.argv[0])
    print(f"program 2: train_on_batch {train_on_batch_us():.1f} us (target < 10 us)")
    sys.exit(rc)

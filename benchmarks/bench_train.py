"""Training throughput of the Keras API against a plain PyTorch CPU loop, in one run.

Program 1 of the API issue: a 20-128-64-1 binary classifier, 8000 training
samples, batch 32, Adam, 10 epochs (with validation on 2000 samples), trained
by gradsmith's ``fit`` and, when PyTorch is installed, by the usual PyTorch
loop with the same thread count, and with one thread (PyTorch's OpenMP threads
spin, and on a small, shared machine one thread is often its faster setting:
the ratio is taken against the faster of the two). Runs alternate
(gradsmith, torch, gradsmith, ...) and the table gives the median samples per
second of each and the ratio.
It also times one ``train_on_batch`` of program 2 (Dense(1) on 2 features).

    python benchmarks/bench_train.py [--repeats 3] [--epochs 10]
"""
import argparse
import statistics
import time

import numpy as np

import gradsmith as keras


def data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 20)).astype(np.float32)
    y = (x @ rng.standard_normal(20) > 0).astype(np.float32)
    return x, y


def gradsmith_run(x, y, xv, yv, epochs):
    model = keras.Sequential([keras.layers.Dense(128, activation="relu", input_shape=(20,)),
                              keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=32, epochs=epochs, validation_data=(xv, yv), verbose=0)
    return len(x) * epochs / (time.perf_counter() - t0)


def torch_run(x, y, xv, yv, epochs):
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(20, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64),
                                torch.nn.ReLU(), torch.nn.Linear(64, 1), torch.nn.Sigmoid())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.BCELoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).reshape(-1, 1)
    xvt, yvt = torch.from_numpy(xv), torch.from_numpy(yv).reshape(-1, 1)
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            out = model(xt[idx])
            loss = loss_fn(out, yt[idx])
            loss.backward()
            opt.step()
        with torch.no_grad():
            for i in range(0, len(xvt), 32):
                loss_fn(model(xvt[i:i + 32]), yvt[i:i + 32])
    return len(x) * epochs / (time.perf_counter() - t0)


def train_on_batch_us(repeats=2000):
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=10)
    args = p.parse_args(argv)
    threads = keras.get_num_threads()
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    x, y = data(8000, 0)
    xv, yv = data(2000, 1)
    gs, pt, pt1 = [], [], []
    for _ in range(args.repeats):
        gs.append(gradsmith_run(x, y, xv, yv, args.epochs))
        if torch is not None:
            torch.set_num_threads(threads)
            pt.append(torch_run(x, y, xv, yv, args.epochs))
            torch.set_num_threads(1)
            pt1.append(torch_run(x, y, xv, yv, args.epochs))
    print(f"gradsmith {keras.__version__}, {keras.cpu_info()['isa']}, {threads} threads; "
          f"torch {torch.__version__ if torch else 'not installed'}")
    print(f"{'program 1 (samples/s)':32s} {'gradsmith':>12s} {'pytorch':>12s} {'ratio':>7s}")
    g = statistics.median(gs)
    if pt:
        t, t1 = statistics.median(pt), statistics.median(pt1)
        print(f"{'fit, 10 epochs, batch 32, Adam':32s} {g:12,.0f} {max(t, t1):12,.0f} {g / max(t, t1):7.2f}"
              f"   (target >= 5; torch {t:,.0f} with {threads} threads, {t1:,.0f} with 1)")
    else:
        print(f"{'fit, 10 epochs, batch 32, Adam':32s} {g:12,.0f} {'-':>12s}")
    print(f"program 2: train_on_batch {train_on_batch_us():.1f} us (target < 10 us)")


if __name__ == "__main__":
    main()

"""Train group: whole training runs, samples per second, against other trainers.

* The seed MLP (20-128-64-1, relu/relu/sigmoid, binary crossentropy, Adam,
  batch 32; 8000 samples, 10 epochs, validation on 2000 after each epoch):
  gradsmith's ``fit`` against the plain PyTorch CPU loop (with gradsmith's
  thread count and with one thread: PyTorch's OpenMP threads spin, and on a
  small machine one thread is often its faster setting), Keras on TensorFlow,
  and the hand-written NumPy trainer (benchmarks/numpy_trainer.py).
* The big MLP (784-1024-1024-10, relu/relu/softmax, sparse categorical
  crossentropy, Adam, batch 128, 60000 random samples, one epoch) against
  PyTorch (its softmax folded into CrossEntropyLoss, the usual PyTorch way).

Each run builds a fresh model; only the training call is timed. The FLOPs of
training are 3 products (forward, dW, dx) of 2*in*out per sample and layer,
less the first layer's dx, which nothing needs; the roof in samples/s is the
measured FLOP peak divided by that (validation passes are not counted).
"""

import time

import numpy as np

import gradsmith as keras
from gradsmith.bench import peers
from gradsmith.bench.common import interleave, progress, row

SMALL = {"name": "MLP 20-128-64-1 b32", "sizes": (20, 128, 64, 1), "acts": ("relu", "relu", "sigmoid"),
         "loss": "binary_crossentropy", "batch": 32, "samples": 8000, "val": 2000, "epochs": 10,
         "quick": (1024, 256, 1)}
BIG = {"name": "MLP 784-1024-1024-10 b128", "sizes": (784, 1024, 1024, 10), "acts": ("relu", "relu", "softmax"),
       "loss": "sparse_categorical_crossentropy", "batch": 128, "samples": 60000, "val": 0, "epochs": 1,
       "quick": (1024, 0, 1)}


def flops_per_sample(sizes):
    macs = sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
    return 2.0 * (3 * macs - sizes[0] * sizes[1])


def make_data(spec, n, seed):
    rng = np.random.default_rng(seed)
    if spec["loss"] == "binary_crossentropy":  # a linearly separable rule, as the seed program
        x = rng.standard_normal((n, spec["sizes"][0])).astype(np.float32)
        return x, (x @ rng.standard_normal(spec["sizes"][0]) > 0).astype(np.float32)
    x = rng.random((n, spec["sizes"][0]), dtype=np.float32)
    return x, rng.integers(0, spec["sizes"][-1], n)


def gradsmith_fit(spec, x, y, val, epochs):
    sizes, acts = spec["sizes"], spec["acts"]
    model = keras.Sequential([keras.layers.Dense(sizes[1], activation=acts[0], input_shape=(sizes[0],))] +
                             [keras.layers.Dense(o, activation=a) for o, a in zip(sizes[2:], acts[1:])])
    model.compile(optimizer="adam", loss=spec["loss"], metrics=["accuracy"])
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=spec["batch"], epochs=epochs, validation_data=val, verbose=0)
    return time.perf_counter() - t0


def torch_fit(torch, threads, spec, x, y, val, epochs):
    torch.set_num_threads(threads)
    sizes, acts = spec["sizes"], spec["acts"]
    layers = []
    for (i, o), act in zip(zip(sizes[:-1], sizes[1:]), acts):
        layers.append(torch.nn.Linear(i, o))
        if act == "relu":
            layers.append(torch.nn.ReLU())
        elif act == "sigmoid":
            layers.append(torch.nn.Sigmoid())
    model = torch.nn.Sequential(*layers)
    binary = spec["loss"] == "binary_crossentropy"
    loss_fn = torch.nn.BCELoss() if binary else torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)

    def tensors(a, b):
        bt = torch.from_numpy(b)
        return torch.from_numpy(a), bt.reshape(-1, 1) if binary else bt

    xt, yt = tensors(x, y)
    batch = spec["batch"]
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        if val is not None:
            xv, yv = tensors(*val)
            with torch.no_grad():
                for i in range(0, len(xv), batch):
                    loss_fn(model(xv[i:i + batch]), yv[i:i + batch])
    return time.perf_counter() - t0


def keras_fit(k, spec, x, y, val, epochs):
    sizes, acts = spec["sizes"], spec["acts"]
    model = k.Sequential([k.Input((sizes[0],))] + [k.layers.Dense(o, activation=a) for o, a in zip(sizes[1:], acts)])
    model.compile(optimizer=k.optimizers.Adam(), loss=spec["loss"], metrics=["accuracy"])
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=spec["batch"], epochs=epochs, validation_data=val, verbose=0)
    return time.perf_counter() - t0


def numpy_fit(trainer, spec, x, y, val, epochs):
    model = trainer.MLP(spec["sizes"], spec["acts"], seed=0)
    t0 = time.perf_counter()
    trainer.fit(model, x, y, loss=spec["loss"], batch_size=spec["batch"], epochs=epochs, validation_data=val)
    return time.perf_counter() - t0


def contenders(spec, threads):
    """[(peer label, fit(spec, x, y, val, epochs) or None, status)]; gradsmith first."""
    torch = peers.torch()
    out = [("gradsmith", gradsmith_fit, "ok")]
    thread_counts = (threads, 1) if spec is SMALL and threads > 1 else (threads,)
    for n in thread_counts:
        label = f"torch {n} thread{'s' if n > 1 else ''}"
        out.append((label, (lambda *a, n=n: torch_fit(torch, n, *a)) if torch else None,
                    "ok" if torch else peers.NOT_INSTALLED))
    if spec is SMALL:
        k = peers.keras()
        out.append(("keras/tensorflow", (lambda *a: keras_fit(k, *a)) if k else None,
                    "ok" if k else peers.NOT_INSTALLED))
        trainer = peers.numpy_trainer()
        out.append(("numpy trainer", (lambda *a: numpy_fit(trainer, *a)) if trainer else None,
                    "ok" if trainer else "benchmarks/numpy_trainer.py not found"))
    return out


def run(settings):
    rounds = settings.rounds_or(3)
    rows = []
    for spec in (SMALL, BIG):
        n, n_val, epochs = spec["quick"] if settings.quick else (spec["samples"], spec["val"], spec["epochs"])
        progress(f"  {spec['name']}: {n} samples, {epochs} epoch(s)")
        x, y = make_data(spec, n, 0)
        val = make_data(spec, n_val, 1) if n_val else None
        runs = contenders(spec, settings.threads)
        measured = [(label, fit) for label, fit, _ in runs if fit is not None]
        for _, fit in measured:  # warm-up: one epoch on two batches
            fit(spec, x[:2 * spec["batch"]], y[:2 * spec["batch"]], None, 1)
        samplers = [lambda fit=fit: fit(spec, x, y, val, epochs) for _, fit in measured]
        times = interleave(samplers, rounds, warmup=False)
        peers.set_threads(settings.threads)  # torch ran with one thread last
        rates = {label: [n * epochs / t for t in ts] for (label, _), ts in zip(measured, times)}
        fps = flops_per_sample(spec["sizes"])
        common = dict(roof=settings.peak["gflops"] * 1e9 / fps, flops_per_sample=fps, kernel=False,
                      params={k: spec[k] for k in ("sizes", "acts", "loss", "batch")} |
                      {"samples": n, "validation_samples": n_val, "epochs": epochs})
        for label, _, status in runs[1:]:
            rows.append(row("train", spec["name"], "samples/s", rates["gradsmith"], label, rates.get(label), status,
                            **common))
    return rows

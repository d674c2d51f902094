"""CNN group: the seed image classifier's training step, samples per second, against PyTorch and Keras.

The model is the README's CNN program (three Conv2D 3x3 + MaxPooling2D 2x2 blocks of 32, 64 and 128 filters
on 150x150x3 images, Flatten, Dense 512 relu, Dropout 0.5, Dense 1 sigmoid; binary crossentropy, Adam, batch
32). Data are in-memory arrays (the image pipeline is measured on its own, benchmarks/bench_images.py), the
same for every contender. Each contender builds its model once and takes one warm-up step (Keras traces its
step function then), and each sample times one epoch of ``steps`` batches on that model.

Peers: PyTorch with its own CPU convolutions, NCHW and channels_last, with gradsmith's thread count and with
one thread (its best is the row's figure, each layout and count kept in the JSON), and Keras on TensorFlow
(NHWC, oneDNN). FLOPs of a step: forward, dW and dx of every convolution and dense layer (2 per multiply-add),
less the first layer's dx, which nothing needs: about 41 GFLOP for a batch of 32.
"""


import numpy as np

import gradsmith as keras
from gradsmith.bench import peers
from gradsmith.bench.common import interleave, keras_style_epochs, peer_rows, progress, torch_epochs

SEED = {"size": 150, "filters": (32, 64, 128), "dense": 512, "batch": 32,
        "steps": 6, "quick": {"size": 40, "steps": 2}}


def shapes(size, filters):
    """[(input side, output side, cin, cout)] of each 3x3 'valid' convolution, each followed by a 2x2 pool."""
    out, side, cin = [], size, 3
    for f in filters:
        out.append((side, side - 2, cin, f))
        side, cin = (side - 2) // 2, f
    return out, side * side * cin


def flops_per_sample(spec):
    convs, flat = shapes(spec["size"], spec["filters"])
    total = 0.0
    for i, (_, o, cin, cout) in enumerate(convs):
        macs = o * o * 9 * cin * cout
        total += 2 * macs * (2 if i == 0 else 3)  # forward, dW, and dx after the first layer
    for i, o in ((flat, spec["dense"]), (spec["dense"], 1)):
        total += 2 * 3 * i * o
    return total


def make_data(spec, n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, spec["size"], spec["size"], 3), dtype=np.float32)
    return x, (x[:, :, : spec["size"] // 2].mean(axis=(1, 2, 3)) > 0.5).astype(np.float32)


def gradsmith_model(spec):
    layers = keras.layers
    body = []
    for i, f in enumerate(spec["filters"]):
        extra = {"input_shape": (spec["size"], spec["size"], 3)} if i == 0 else {}
        body += [layers.Conv2D(f, (3, 3), activation="relu", **extra), layers.MaxPooling2D(2, 2)]
    model = keras.Sequential(body + [layers.Flatten(), layers.Dense(spec["dense"], activation="relu"),
                                     layers.Dropout(0.5), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def gradsmith_trainer(spec, x, y):
    model = gradsmith_model(spec)
    return keras_style_epochs(model, x, y, spec["batch"])


def torch_trainer(torch, threads, channels_last, spec, x, y):
    nn = torch.nn
    body, cin = [], 3
    for f in spec["filters"]:
        body += [nn.Conv2d(cin, f, 3), nn.ReLU(), nn.MaxPool2d(2)]
        cin = f
    _, flat = shapes(spec["size"], spec["filters"])
    model = nn.Sequential(*body, nn.Flatten(), nn.Linear(flat, spec["dense"]), nn.ReLU(), nn.Dropout(0.5),
                          nn.Linear(spec["dense"], 1), nn.Sigmoid())
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        xt = xt.contiguous(memory_format=torch.channels_last)
    yt = torch.from_numpy(y).reshape(-1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.BCELoss()
    b = spec["batch"]

    def step(i):
        opt.zero_grad()
        loss = loss_fn(model(xt[i:i + b]), yt[i:i + b])
        loss.backward()
        opt.step()

    return torch_epochs(torch, threads, step, len(xt), b)


def keras_trainer(k, spec, x, y):
    body = [k.Input((spec["size"], spec["size"], 3))]
    for f in spec["filters"]:
        body += [k.layers.Conv2D(f, (3, 3), activation="relu"), k.layers.MaxPooling2D(2, 2)]
    model = k.Sequential(body + [k.layers.Flatten(), k.layers.Dense(spec["dense"], activation="relu"),
                                 k.layers.Dropout(0.5), k.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return keras_style_epochs(model, x, y, spec["batch"])


def run(settings):
    spec = dict(SEED)
    if settings.quick:
        spec.update(spec["quick"])
    rounds = settings.rounds_or(3)
    n = spec["batch"] * spec["steps"]
    spec["name"] = f"seed CNN {spec['size']}x{spec['size']}x3 b{spec['batch']}"
    progress(f"  {spec['name']}: {spec['steps']} steps of {spec['batch']} images of {spec['size']}x{spec['size']}")
    x, y = make_data(spec, n)
    torch = peers.torch()
    contenders = [("gradsmith", gradsmith_trainer(spec, x, y))]
    torch_variants = []
    if torch:
        for threads in sorted({settings.threads, 1}, reverse=True):
            for layout in ("NCHW", "channels_last"):
                label = f"torch {layout} {threads} thread{'s' if threads > 1 else ''}"
                torch_variants.append(label)
                contenders.append((label, torch_trainer(torch, threads, layout != "NCHW", spec, x, y)))
    k = peers.keras()
    if k:
        contenders.append(("keras/tensorflow", keras_trainer(k, spec, x, y)))
    times = interleave([epoch for _, epoch in contenders], rounds)
    peers.set_threads(settings.threads)
    rates = {label: [n / t for t in ts] for (label, _), ts in zip(contenders, times)}
    fps = flops_per_sample(spec)
    common = dict(roof=settings.peak["gflops"] * 1e9 / fps, flops_per_sample=fps, kernel=False,
                  params={"size": spec["size"], "filters": spec["filters"], "dense": spec["dense"],
                          "batch": spec["batch"], "steps": spec["steps"]})
    return peer_rows("cnn", spec["name"], "samples/s", rates, torch_variants, "ok" if k else peers.NOT_INSTALLED,
                     **common)

"""RNN group: a character-level GRU language model's training step, sequences per second, against PyTorch and
Keras.

The model is the text-generation program's (Embedding -> GRU(return_sequences=True) -> Dense(vocabulary),
sparse categorical cross-entropy from logits, Adam), at two sizes:

* small: vocabulary 65, embedding 64, GRU 256, sequences of 64, batch 32;
* tutorial: the TensorFlow text-generation tutorial's, vocabulary 65, embedding 256, GRU 1024, sequences of
  100, batch 64.

Data are random token ids, the same for every contender. Each contender builds its model once and takes one
warm-up step (Keras traces then); each sample times an epoch of ``steps`` batches. Peers: PyTorch's nn.GRU
(batch first, with gradsmith's thread count and with one thread, its best is the row's figure) and Keras on
TensorFlow. FLOPs of a step: forward, the weights' gradients and the inputs' gradients of the GRU (input
projection 2 * E * 3U and recurrent product 2 * U * 3U a token) and of the Dense layer (2 * U * V a token),
three times the forward products.
"""


import numpy as np

import gradsmith as keras
from gradsmith.bench import peers
from gradsmith.bench.common import interleave, keras_style_epochs, peer_rows, progress, torch_epochs

CASES = [
    {"vocab": 65, "embed": 64, "units": 256, "seq": 64, "batch": 32,
     "steps": 8, "quick": {"units": 32, "seq": 8, "steps": 2}},
    {"vocab": 65, "embed": 256, "units": 1024, "seq": 100, "batch": 64,
     "steps": 3, "quick": None},
]


def flops_per_sequence(c):
    per_token = 2 * 3 * c["units"] * (c["embed"] + c["units"]) + 2 * c["units"] * c["vocab"]
    return 3.0 * per_token * c["seq"]


def make_data(c, n, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, c["vocab"], (n, c["seq"] + 1))
    return ids[:, :-1].astype(np.int32), ids[:, 1:].astype(np.int32)


def gradsmith_trainer(c, x, y):
    model = keras.Sequential([keras.layers.Embedding(c["vocab"], c["embed"]),
                              keras.layers.GRU(c["units"], return_sequences=True),
                              keras.layers.Dense(c["vocab"])])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return keras_style_epochs(model, x, y, c["batch"])


def torch_trainer(torch, threads, c, x, y):
    nn = torch.nn

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(c["vocab"], c["embed"])
            self.gru = nn.GRU(c["embed"], c["units"], batch_first=True)
            self.dense = nn.Linear(c["units"], c["vocab"])

        def forward(self, ids):
            return self.dense(self.gru(self.embed(ids))[0])

    model = Model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x.astype(np.int64)), torch.from_numpy(y.astype(np.int64))
    b = c["batch"]

    def step(i):
        opt.zero_grad()
        logits = model(xt[i:i + b])
        loss = loss_fn(logits.reshape(-1, c["vocab"]), yt[i:i + b].reshape(-1))
        loss.backward()
        opt.step()

    return torch_epochs(torch, threads, step, len(xt), b)


def keras_trainer(k, c, x, y):
    model = k.Sequential([k.Input((c["seq"],), dtype="int32"), k.layers.Embedding(c["vocab"], c["embed"]),
                          k.layers.GRU(c["units"], return_sequences=True), k.layers.Dense(c["vocab"])])
    model.compile(optimizer="adam", loss=k.losses.SparseCategoricalCrossentropy(from_logits=True))
    return keras_style_epochs(model, x, y, c["batch"])


def run(settings):
    rows = []
    for case in CASES:
        c = dict(case)
        if settings.quick:
            if c["quick"] is None:
                continue
            c.update(c["quick"])
        rounds = settings.rounds_or(3)
        n = c["batch"] * c["steps"]
        c["name"] = f"GRU {c['units']}, emb {c['embed']}, seq {c['seq']}, b{c['batch']}"
        progress(f"  {c['name']}: {c['steps']} steps")
        x, y = make_data(c, n)
        torch = peers.torch()
        contenders = [("gradsmith", gradsmith_trainer(c, x, y))]
        torch_labels = []
        if torch:
            for threads in sorted({settings.threads, 1}, reverse=True):
                label = f"torch {threads} thread{'s' if threads > 1 else ''}"
                torch_labels.append(label)
                contenders.append((label, torch_trainer(torch, threads, c, x, y)))
        k = peers.keras()
        if k:
            contenders.append(("keras/tensorflow", keras_trainer(k, c, x, y)))
        times = interleave([epoch for _, epoch in contenders], rounds)
        peers.set_threads(settings.threads)
        rates = {label: [n / t for t in ts] for (label, _), ts in zip(contenders, times)}
        fps = flops_per_sequence(c)
        common = dict(roof=settings.peak["gflops"] * 1e9 / fps, flops_per_sample=fps, kernel=False,
                      params={key: c[key] for key in ("vocab", "embed", "units", "seq", "batch", "steps")})
        rows += peer_rows("rnn", c["name"], "sequences/s", rates, torch_labels,
                          "ok" if k else peers.NOT_INSTALLED, **common)
    return rows

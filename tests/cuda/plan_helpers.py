"""Training a plan of layer descriptions on the GPU and on the CPU alike, for the tests that compare them
(test_conv_pool.py, test_rnn_plan.py)."""
import numpy as np

from gradsmith import _core, compiled_step, ops, optimizers


def train_plan(device, layers, n, x, y, epochs, batch, keep=None):
    """Adam, binary cross-entropy, lr 0.01, weights drawn from one seed: (the losses, the weights, the
    predictions) after ``epochs`` over (x, y) in batches of ``batch``, through the CPU or the CUDA runner;
    ``keep``: a pruning mask laid out as the weights (its zeros zero them first)."""
    rng = np.random.default_rng(11)
    params = (rng.standard_normal(n) * 0.4).astype(np.float32)
    if keep is not None:
        params *= keep
    slots = [np.zeros(n, np.float32), np.zeros(n, np.float32), None]
    loss = {"kind": ops._LOSS_KINDS["binary_crossentropy"], "from_logits": False, "label_smoothing": 0.0,
            "delta": 1.0, "weight": 1.0}
    opt = {"kind": compiled_step._KINDS[optimizers.Adam], "weight_decay": 0.0, "momentum": 0.0, "beta_1": 0.9,
           "beta_2": 0.999, "epsilon": 1e-7, "rho": 0.9, "nesterov": False, "clip_kind": 0, "clip": 0.0}
    runner = _core.CudaRunner if device == "cuda" else _core.CpuRunner
    plan = runner(layers, loss, opt, params, np.zeros_like(params), [(0, 0, n)], slots, [])
    if device == "cuda":
        plan.upload()
    if keep is not None:
        plan.set_keep(keep)
    flat = x.reshape(len(x), -1)  # the runner takes rows of features
    losses = []
    steps = len(x) // batch
    for epoch in range(epochs):
        values, _ = plan.train_steps(flat, y, None, None, batch, np.full(steps, 0.01), epoch * steps + 1)
        losses.extend(values.tolist())
    if device == "cuda":
        plan.download()
    return np.array(losses), params, plan.predict(flat)

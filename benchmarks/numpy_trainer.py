"""A plain NumPy MLP trainer: what a user without a framework writes.

float32 throughout; forward passes with @, backpropagation by hand, Adam with
Keras's defaults (lr 1e-3, beta_1 0.9, beta_2 0.999, epsilon 1e-7), batches
drawn from a fresh permutation every epoch, and the validation loss after
each epoch. Hidden layers are relu or linear; the output is sigmoid with
binary crossentropy or softmax with sparse categorical crossentropy. It is
the NumPy peer of the train group of ``python -m gradsmith.bench``; run it
alone to train the seed 20-128-64-1 classifier:

    python benchmarks/numpy_trainer.py [--epochs 10]
"""
import argparse
import time

import numpy as np

EPS = 1e-7  # Keras's clip of probabilities in crossentropy


class MLP:
    """Dense layers with Glorot-uniform kernels and zero biases (Keras's defaults).

    ``params`` is [W0, b0, W1, b1, ...]; W has shape (in, out)."""

    def __init__(self, sizes, activations, seed=0, dtype=np.float32):
        rng = np.random.default_rng(seed)
        self.activations = tuple(activations)
        self.params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            self.params += [rng.uniform(-limit, limit, (fan_in, fan_out)).astype(dtype), np.zeros(fan_out, dtype)]

    def forward(self, x):
        """Every layer's output, input first: [x, a1, ..., probabilities]."""
        outs = [x]
        for i, act in enumerate(self.activations):
            z = outs[-1] @ self.params[2 * i]
            z += self.params[2 * i + 1]
            if act == "relu":
                np.maximum(z, 0, out=z)
            elif act == "sigmoid":
                with np.errstate(over="ignore"):  # exp(-z) = inf for z < -88 gives 0, as it should
                    z = 1 / (1 + np.exp(-z))
            elif act == "softmax":
                z -= z.max(axis=1, keepdims=True)
                np.exp(z, out=z)
                z /= z.sum(axis=1, keepdims=True)
            outs.append(z)
        return outs


def loss_value(p, y, loss):
    """Mean crossentropy of probabilities p (batch, classes) against y."""
    p = np.clip(p, EPS, 1 - EPS)
    if loss == "binary_crossentropy":
        y = y.reshape(p.shape)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def loss_and_grads(model, x, y, loss):
    """Loss of a batch and its gradients, in the order of model.params.

    Sigmoid + binary crossentropy and softmax + crossentropy share one output
    gradient: dL/dz = (p - target) / batch. Back through a layer:
    dW = a^T dz, db = column sums of dz, da = dz W^T, and relu passes da
    where its output is positive."""
    outs = model.forward(x)
    p = outs[-1]
    value = loss_value(p, y, loss)
    dz = p.copy()
    if loss == "binary_crossentropy":
        dz -= y.reshape(p.shape)
    else:
        dz[np.arange(len(y)), y] -= 1
    dz /= len(x)
    grads = [None] * len(model.params)
    for i in reversed(range(len(model.activations))):
        grads[2 * i] = outs[i].T @ dz
        grads[2 * i + 1] = dz.sum(axis=0)
        if i > 0:
            dz = dz @ model.params[2 * i].T
            if model.activations[i - 1] == "relu":
                dz *= outs[i] > 0
    return value, grads


class Adam:
    """Keras's Adam: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
    w -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)."""

    def __init__(self, params, lr=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        self.lr, self.b1, self.b2, self.eps = lr, beta_1, beta_2, epsilon
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, params, grads):
        self.t += 1
        # A Python float: a NumPy float64 scalar would turn the float32 update into float64.
        alpha = float(self.lr * np.sqrt(1 - self.b2 ** self.t) / (1 - self.b1 ** self.t))
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m += (1 - self.b1) * (g - m)
            v += (1 - self.b2) * (g * g - v)
            p -= alpha * m / (np.sqrt(v) + self.eps)


def fit(model, x, y, loss, batch_size=32, epochs=1, validation_data=None, seed=0):
    """Train with Adam; returns {'loss': [mean batch loss per epoch], 'val_loss': [...]}."""
    rng = np.random.default_rng(seed)
    opt = Adam(model.params)
    history = {"loss": [], "val_loss": []}
    for _ in range(epochs):
        perm = rng.permutation(len(x))
        total = 0.0
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            value, grads = loss_and_grads(model, x[idx], y[idx], loss)
            opt.step(model.params, grads)
            total += value * len(idx)
        history["loss"].append(total / len(x))
        if validation_data is not None:
            xv, yv = validation_data
            history["val_loss"].append(loss_value(model.forward(xv)[-1], yv, loss))
    return history


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10000, 20)).astype(np.float32)
    y = (x @ rng.standard_normal(20) > 0).astype(np.float32)
    model = MLP((20, 128, 64, 1), ("relu", "relu", "sigmoid"))
    t0 = time.perf_counter()
    h = fit(model, x[:8000], y[:8000], "binary_crossentropy", 32, args.epochs, (x[8000:], y[8000:]))
    elapsed = time.perf_counter() - t0
    for e, (loss, val) in enumerate(zip(h["loss"], h["val_loss"]), 1):
        print(f"epoch {e:2d}: loss {loss:.4f}  val_loss {val:.4f}")
    print(f"{8000 * args.epochs / elapsed:,.0f} samples/s")


if __name__ == "__main__":
    main()

"""Pruning inside the GPU's fused update (plan_backend.cu's fused_update_kernel with a keep mask): a small
dense plan trained on the GPU and on the CPU with the same mask gives the same losses and weights, and every
masked weight stays exactly zero."""
import numpy as np
import pytest

from gradsmith import cuda, ops
from plan_helpers import train_plan

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not cuda.is_available(), reason=f"no CUDA device: {cuda.unavailable_reason()}")]


def _dense(name, shape, units, activation, kernel, bias):
    kind, param = ops._activation(activation, 0.2, 1.0, False)
    return {"kind": "Dense", "name": name, "input_shape": list(shape),
            "numbers": {"units": units, "activation": kind, "activation_param": float(param)},
            "weights": {"kernel": kernel, "bias": bias}}


def test_masked_weights_stay_zero_on_the_gpu_as_on_the_cpu():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32).reshape(-1, 1)
    layers = [_dense("hidden", (5,), 6, "relu", 0, 30), _dense("head", (6,), 1, "sigmoid", 36, 42)]
    n = 43
    keep = np.ones(n, np.float32)
    keep[rng.choice(30, 20, replace=False)] = 0  # 20 of the hidden kernel's 30 weights pruned
    keep[36:38] = 0
    cpu_losses, cpu_w, _ = train_plan("cpu", layers, n, x, y, epochs=3, batch=8, keep=keep)
    gpu_losses, gpu_w, _ = train_plan("cuda", layers, n, x, y, epochs=3, batch=8, keep=keep)
    assert np.all(cpu_w[keep == 0] == 0) and np.all(gpu_w[keep == 0] == 0)
    assert np.any(cpu_w[keep == 1] != 0)
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-5)
    np.testing.assert_allclose(gpu_w, cpu_w, rtol=1e-4, atol=1e-6)

"""The recurrent layers' compiled step on the GPU (cpp/cuda/recurrent.cu through the plan) against the CPU plan.

Marked `cuda`; skipped where no GPU can be used. The GEMMs sum in another order than the CPU's: float32
tolerances, and a second GPU run must give the same bits. Sizes are tiny: the CPU emulator runs every GPU thread
as a fiber."""
import numpy as np
import pytest

from gradsmith import cuda, ops
from plan_helpers import train_plan

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not cuda.is_available(), reason=f"no CUDA device: {cuda.unavailable_reason()}")]

GATES = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}


def _stack(steps, features, specs):
    """Layer descriptions and the parameter count of recurrent layers (cell, units, options) then a Dense head."""
    layers, offset, shape = [], 0, [steps, features]
    for i, (cell, units, opts) in enumerate(specs):
        gu = GATES[cell] * units
        reset_after = cell == "GRU" and opts.get("reset_after", True)
        weights = {"kernel": offset, "recurrent_kernel": offset + shape[-1] * gu}
        offset += shape[-1] * gu + units * gu
        if opts.get("use_bias", True):
            weights["bias"] = offset
            offset += (2 if reset_after else 1) * gu
        sequences = opts.get("return_sequences", False)
        layers.append({"kind": "Recurrent", "name": f"rnn_{i}", "input_shape": list(shape),
                       "numbers": {"cell": ops.RNN_CELLS[cell], "units": units, "reset_after": float(reset_after),
                                   "go_backwards": float(opts.get("go_backwards", False)),
                                   "return_sequences": float(sequences)},
                       "weights": weights, "penalties": {"recurrent_kernel": (0.0, opts.get("l2", 0.0))}})
        shape = [steps, units] if sequences else [units]
    kind, param = ops._activation("sigmoid", 0.2, 1.0, False)
    layers.append({"kind": "Dense", "name": "head", "input_shape": list(shape),
                   "numbers": {"units": 1, "activation": kind, "activation_param": float(param)},
                   "weights": {"kernel": offset, "bias": offset + shape[-1]}})
    return layers, offset + shape[-1] + 1


MODELS = {
    "gru-lstm": [("GRU", 4, {"return_sequences": True, "l2": 1e-3}), ("LSTM", 3, {"go_backwards": True})],
    "gru1-simple": [("GRU", 3, {"reset_after": False, "go_backwards": True, "return_sequences": True}),
                    ("SimpleRNN", 2, {"use_bias": False})],
}


def _train(device, name, x, y, epochs):
    layers, n = _stack(x.shape[1], x.shape[2], MODELS[name])
    return train_plan(device, layers, n, x, y, epochs, batch=4)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_recurrent_models_train_on_the_gpu_as_on_the_cpu(rng, name):
    x = rng.standard_normal((8, 5, 3)).astype(np.float32)
    y = (x[:, :, 0].mean(axis=1) > 0).astype(np.float32)[:, None]
    cpu_loss, cpu_w, cpu_p = _train("cpu", name, x, y, 2)
    gpu_loss, gpu_w, gpu_p = _train("cuda", name, x, y, 2)
    np.testing.assert_allclose(gpu_loss, cpu_loss, rtol=1e-4)
    np.testing.assert_allclose(gpu_w, cpu_w, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(gpu_p, cpu_p, rtol=1e-3, atol=1e-5)
    again_loss, again_w, _ = _train("cuda", name, x, y, 2)
    np.testing.assert_array_equal(again_loss, gpu_loss)  # a GPU run repeats bit for bit
    np.testing.assert_array_equal(again_w, gpu_w)

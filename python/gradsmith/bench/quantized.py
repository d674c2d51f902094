"""int8 group: ``predict`` of a quantized model against our float32 predict and PyTorch's dynamic int8.

The model is the 784-1024-1024-10 MLP (relu, relu, softmax), ``model.quantize("int8")`` in gradsmith (Keras 3's
int8: per-row activation scales on the fly, int8 kernels with per-column scales, the product on the int8 GEMM)
and ``torch.ao.quantization.quantize_dynamic(model, {Linear}, qint8)`` in PyTorch (FBGEMM: the same dynamic
scheme, per-tensor activation and weight scales). Each sample times one ``predict`` of ``rows`` samples in
batches of ``batch`` (gradsmith) or the same loop of forward calls under ``torch.inference_mode`` (PyTorch), all
contenders interleaved. Rows:

* int8 predict against our float32 predict of the same model (target >= 2.5x) and against PyTorch's int8
  (target >= 1.2x); roof: the machine's int8 peak (``machine.int8_peak``, vpdpbusd chains) over the model's
  2 x multiply-adds per sample, so "of peak" is the int8 GEMM's share of the VNNI peak inside predict;
* the int8 GEMM alone (1024 x 784 x 1024, ``ops.quantized_matmul`` on packed weights) against the int8 peak;
* the ``.keras`` file of the int8 model against the float32 one (times smaller).

Before any timing, the int8 predictions (ours and PyTorch's) are checked against float32's and the int8 GEMM
against NumPy's exact int64 product.
"""
import os
import tempfile

import numpy as np

import gradsmith as keras
from gradsmith import machine, ops
from gradsmith.bench import peers
from gradsmith.bench.common import calibrated, interleave, progress, row

SIZES = (784, 1024, 1024, 10)
CASES = ({"batch": 1024, "rows": 4096}, {"batch": 32, "rows": 1024})
QUICK = {"batch": 64, "rows": 256}


def macs_per_sample():
    return sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))


def gradsmith_model(seed=0):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((SIZES[0],))]
    for i, units in enumerate(SIZES[1:]):
        layers.append(keras.layers.Dense(units, activation="softmax" if i == len(SIZES) - 2 else "relu"))
    return keras.Sequential(layers)


def torch_models(torch, model):
    """(float32, dynamic int8) PyTorch copies of gradsmith's float32 model (same weights)."""
    nn = torch.nn
    mods = []
    for i, layer in enumerate(model.layers):
        lin = nn.Linear(*layer.kernel.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.kernel.T)))
            lin.bias.copy_(torch.from_numpy(layer.bias))
        mods += [lin, nn.Softmax(-1) if i == len(model.layers) - 1 else nn.ReLU()]
    f32 = nn.Sequential(*mods).eval()
    q = torch.ao.quantization.quantize_dynamic(f32, {nn.Linear}, dtype=torch.qint8)
    return f32, q


def torch_predict(torch, model, x, batch, threads):
    xt = torch.from_numpy(x)

    def call():
        torch.set_num_threads(threads)
        with torch.inference_mode():
            for i in range(0, len(xt), batch):
                model(xt[i:i + batch])
    return call


def check_predictions(qmodel, fmodel, tq8, torch, x):
    """Before any timing: the int8 model's class probabilities stay within 0.02 of float32's (and PyTorch's
    int8 model's, when there is one), or the run stops."""
    want = fmodel.predict(x, verbose=0)
    got = qmodel.predict(x, verbose=0)
    if not np.max(np.abs(got - want)) < 0.02:
        raise RuntimeError(f"int8 predictions differ from float32 by {np.max(np.abs(got - want)):.3g}")
    if tq8 is not None:
        with torch.inference_mode():
            theirs = tq8(torch.from_numpy(x)).numpy()
        if not np.max(np.abs(theirs - want)) < 0.02:
            raise RuntimeError(f"PyTorch's int8 predictions differ from float32 by {np.max(np.abs(theirs - want)):.3g}")


def file_sizes(model, qmodel):
    with tempfile.TemporaryDirectory() as d:
        model.save(os.path.join(d, "f.keras"))
        qmodel.save(os.path.join(d, "q.keras"))
        return os.path.getsize(os.path.join(d, "f.keras")), os.path.getsize(os.path.join(d, "q.keras"))


def run(settings):
    rounds = settings.rounds_or(5)
    # The roof is measured again after the cases and the larger figure kept: a neighbour busy during one
    # short measurement would otherwise lower the roof under figures that were timed at a quieter moment.
    peak8 = machine.int8_peak(refresh=True)
    fmodel = gradsmith_model()
    qmodel = gradsmith_model()
    qmodel.set_weights(fmodel.get_weights())
    qmodel.quantize("int8")
    torch = peers.torch()
    tf32 = tq8 = None
    if torch is not None:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # quantize_dynamic's deprecation notice (it moves to torchao)
            tf32, tq8 = torch_models(torch, fmodel)
    fps = 2.0 * macs_per_sample()
    rows = []
    for case in ([QUICK] if settings.quick else CASES):
        batch, n = case["batch"], case["rows"]
        name = f"MLP 784-1024-1024-10 predict b{batch}"
        progress(f"  {name}: {n} rows")
        x = np.random.default_rng(1).standard_normal((n, SIZES[0])).astype(np.float32)
        check_predictions(qmodel, fmodel, tq8, torch, x[:batch])
        contenders = [("int8", lambda: qmodel.predict(x, batch_size=batch, verbose=0)),
                      ("float32", lambda: fmodel.predict(x, batch_size=batch, verbose=0))]
        if torch is not None:
            contenders += [("torch int8", torch_predict(torch, tq8, x, batch, settings.threads)),
                           ("torch float32", torch_predict(torch, tf32, x, batch, settings.threads))]
        times = interleave([calibrated(c, 0.2) for _, c in contenders], rounds)
        peers.set_threads(settings.threads)
        rates = {label: [n / t for t in ts] for (label, _), ts in zip(contenders, times)}
        common = dict(roof=None, flops_per_sample=fps, kernel=False, params={"batch": batch, "rows": n},
                      target={"gradsmith float32": 2.5, "torch int8 (quantize_dynamic)": 1.2})
        rows.append(row("int8", name, "samples/s", rates["int8"], "gradsmith float32", rates["float32"], **common))
        if torch is not None:
            rows.append(row("int8", name, "samples/s", rates["int8"], "torch int8 (quantize_dynamic)",
                            rates["torch int8"], **common))
            rows.append(row("int8", name, "samples/s", rates["int8"], "torch float32", rates["torch float32"],
                            **common))
        else:
            rows.append(row("int8", name, "samples/s", rates["int8"], "torch int8", None, peers.NOT_INSTALLED,
                            **common))
    # The int8 GEMM alone, on packed weights: its share of the VNNI peak.
    m, k, n = (256, 256, 256) if settings.quick else (1024, 784, 1024)
    rng = np.random.default_rng(2)
    a = rng.integers(-127, 128, (m, k)).astype(np.int8)
    b = ops.QuantizedKernel(rng.integers(-127, 128, (k, n)).astype(np.int8))
    # Checked before it is timed: exact against NumPy's int64 product on a few rows.
    if not np.array_equal(ops.quantized_matmul(a[:16], b), a[:16].astype(np.int64) @ b._b.astype(np.int64)):
        raise RuntimeError("the int8 GEMM disagrees with NumPy's int64 product")
    (ts,) = interleave([calibrated(lambda: ops.quantized_matmul(a, b), 0.1)], rounds)
    gops = [2.0 * m * n * k / t / 1e9 for t in ts]
    rows.append(row("int8", f"int8 GEMM {m}x{k}x{n} (s32)", "GOP/s", gops, "-", None, "no peer", kernel=False))
    if peak8:
        again = machine.int8_peak(refresh=True)
        peak8["gops"] = max(peak8["gops"], again["gops"])
        progress(f"  int8 peak: {peak8['gops']:.0f} GOP/s ({peak8['isa']}, the larger of two measurements)")
        for r in rows:  # each row's share of the roof, in its own unit
            r["roof"] = peak8["gops"] * 1e9 / fps if r["unit"] == "samples/s" else peak8["gops"]
            r["peak_fraction"] = r["gradsmith"]["median"] / r["roof"]
    else:
        progress("  int8 peak: none (no AVX-512 VNNI path)")
    f_bytes, q_bytes = file_sizes(fmodel, qmodel)
    rows.append(row("int8", "MLP .keras file, int8 vs float32", "x smaller", [f_bytes / q_bytes], "float32 file",
                    [1.0], kernel=False, bytes={"float32": f_bytes, "int8": q_bytes}))
    return rows

"""The CUDA kernels against their CPU twins (marked `cuda`; skipped where no GPU
can be used). Outputs are poisoned with NaN before each call so an element a
kernel fails to write shows; inputs are random, never zeros."""
import numpy as np
import pytest

from gradsmith import _core, cuda, ops

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not cuda.is_available(), reason=f"no CUDA device: {cuda.unavailable_reason()}")]

SIZES = [1, 3, 4, 5, 1000, 65537]


def _device(a):
    return cuda.DeviceArray.from_numpy(np.ascontiguousarray(a, np.float32))


def _poisoned(shape):
    return cuda.DeviceArray.from_numpy(np.full(shape, np.nan, np.float32))


def test_device_array_round_trip_and_interface(rng):
    a = rng.standard_normal((3, 5)).astype(np.float32)
    d = _device(a)
    np.testing.assert_array_equal(d.numpy(), a)
    iface = d.__cuda_array_interface__
    assert iface["shape"] == (3, 5) and iface["typestr"] == "<f4" and iface["version"] == 3
    assert iface["data"] == (d.ptr, False) and cuda.memory_allocated() >= a.nbytes
    del d
    cuda.synchronize()


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "leaky_relu", "elu", "selu", "gelu", "silu",
                                  "softplus", "softsign", "hard_sigmoid", "exponential"])
def test_activations_match_the_cpu(rng, name, n):
    kind, param = ops._activation(name, 0.2, 1.0, False)
    x = rng.standard_normal(n).astype(np.float32) * 3
    dy = rng.standard_normal(n).astype(np.float32)
    y, dx = _poisoned(n), _poisoned(n)
    _core.cuda_activation_forward(_device(x), y, kind, param)
    _core.cuda_activation_backward(_device(dy), _device(x), dx, kind, param)
    np.testing.assert_allclose(y.numpy(), ops.activation_forward(x, name, approximate=False), rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(dx.numpy(), ops.activation_backward(dy, x, name, approximate=False), rtol=2e-6,
                               atol=1e-6)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.9])
def test_dropout_gives_the_cpu_mask(rng, n, rate):
    x = rng.standard_normal(n).astype(np.float32) + 5  # never zero: a kept element is never 0
    y = _poisoned(n)
    _core.cuda_dropout(_device(x), y, rate, 1234, 7)
    np.testing.assert_array_equal(y.numpy(), ops.dropout_forward(x, rate, 1234, 7))


@pytest.mark.parametrize("kind", ["sgd", "momentum", "adam", "rmsprop", "adagrad", "adamax", "lion"])
def test_fused_optimizer_matches_the_cpu(rng, kind):
    n = 10007
    w = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    s = [rng.uniform(0.1, 1, n).astype(np.float32) for _ in range(3)]
    cpu_w, cpu_s = w.copy(), [a.copy() for a in s]
    dw, dg, ds = _device(w), _device(g), [_device(a) for a in s]
    if kind in ("sgd", "momentum"):
        m = 0.9 if kind == "momentum" else 0.0
        ops.sgd_step(cpu_w, g, cpu_s[0] if m else None, learning_rate=0.1, momentum=m)
        _core.cuda_optimizer_step(0, dw, dg, ds[0] if m else None, None, None, 0.1, 0.0, False, 0.0, momentum=m)
    elif kind == "adam":
        ops.adam_step(cpu_w, g, cpu_s[0], cpu_s[1], step=3, learning_rate=0.01)
        _core.cuda_optimizer_step(1, dw, dg, ds[0], ds[1], None, 0.01, 0.0, False, 0.0, beta_1=0.9, beta_2=0.999,
                                  epsilon=1e-7, step=3)
    elif kind == "rmsprop":
        ops.rmsprop_step(cpu_w, g, cpu_s[0], learning_rate=0.01)
        _core.cuda_optimizer_step(2, dw, dg, ds[0], None, None, 0.01, 0.0, False, 0.0, rho=0.9, epsilon=1e-7)
    elif kind in ("adamax", "lion"):  # through gradsmith.ops on device arrays: the same call as on the CPU
        step = ops.adamax_step if kind == "adamax" else ops.lion_step
        extra = {"step": 2} if kind == "adamax" else {}
        states = (cpu_s[0], cpu_s[1]) if kind == "adamax" else (cpu_s[0],)
        step(cpu_w, g, *states, learning_rate=0.01, **extra)
        step(dw, dg, *(ds[:2] if kind == "adamax" else ds[:1]), learning_rate=0.01, **extra)
    else:
        ops.adagrad_step(cpu_w, g, cpu_s[0], learning_rate=0.01)
        _core.cuda_optimizer_step(3, dw, dg, ds[0], None, None, 0.01, 0.0, False, 0.0, epsilon=1e-7)
    np.testing.assert_allclose(dw.numpy(), cpu_w, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ds[0].numpy(), cpu_s[0], rtol=1e-6, atol=1e-7)


def test_cupy_sees_the_same_memory(rng):
    cupy = pytest.importorskip("cupy")
    a = rng.standard_normal(17).astype(np.float32)
    d = _device(a)
    view = cupy.asarray(d)
    view *= 2
    np.testing.assert_array_equal(d.numpy(), 2 * a)


GEMM_SHAPES = [(1, 1, 1), (7, 9, 13), (128, 128, 8), (129, 130, 17), (300, 70, 257), (33, 1000, 5)]


@pytest.mark.parametrize("m, n, k", GEMM_SHAPES, ids=str)
@pytest.mark.parametrize("ta, tb", [(False, False), (True, False), (False, True), (True, True)],
                         ids=["NN", "TN", "NT", "TT"])
def test_gemm_matches_the_cpu(rng, m, n, k, ta, tb):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    c = rng.standard_normal((m, n)).astype(np.float32)
    out = _device(c)
    _core.cuda_gemm(_device(a), _device(b), out, ta, tb, 1.5, 0.5)
    expected = ops.matmul(a, b, transpose_a=ta, transpose_b=tb, alpha=1.5, beta=0.5, out=c.copy())
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-4 * np.sqrt(k))


@pytest.mark.parametrize("precision", ["highest", "tf32"])
def test_gemm_with_more_column_tiles_than_a_grid_dimension_holds(rng, precision):
    """N = 65535 * 128 + 5: more tiles of 128 columns than gridDim.y can count (65535)."""
    from gradsmith import config

    if precision != "highest" and getattr(_core, "cuda_emulated", False):
        pytest.skip("65537 blocks of wmma take about 50 s on the CPU emulator; the float32 kernel's run covers the "
                    "same grid code (gemm_grid) there")
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal((3, 65535 * 128 + 5)).astype(np.float32)
    out = _poisoned((2, b.shape[1]))
    config.set_matmul_precision(precision)
    try:
        if precision != "highest" and not _core.cuda_matmul_uses_tensor_cores():
            pytest.skip("no TF32 tensor cores")
        _core.cuda_gemm(_device(a), _device(b), out, False, False, 1.0, 0.0)
    finally:
        config.set_matmul_precision("highest")
    # Errors relative to sum |a_ik b_kj|: float32 sums, or inputs rounded to TF32 (10 bits).
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    err = np.abs(out.numpy() - a.astype(np.float64) @ b.astype(np.float64)) / scale
    assert err.max() <= (1e-6 if precision == "highest" else 2.0 ** -10 * 4)


@pytest.mark.parametrize("activation", ["linear", "relu", "tanh", "gelu", "softmax"])
def test_dense_forward_and_backward_match_the_cpu(rng, activation):
    batch, fan_in, units = 37, 50, 70
    x = rng.standard_normal((batch, fan_in)).astype(np.float32)
    w = rng.standard_normal((fan_in, units)).astype(np.float32) * 0.2
    b = rng.standard_normal(units).astype(np.float32)
    dy = rng.standard_normal((batch, units)).astype(np.float32)
    kind, param = ops._activation(activation, 0.2, 1.0, False)
    y, z = _poisoned((batch, units)), _poisoned((batch, units))
    dx, dW, db, dz = _poisoned((batch, fan_in)), _poisoned((fan_in, units)), _poisoned(units), _poisoned((batch, units))
    dx_, dw_, db_ = _device(x), _device(w), _device(b)
    _core.cuda_dense_forward(dx_, dw_, db_, y, z, kind, param)
    _core.cuda_dense_backward(_device(dy), dx_, dw_, z, kind, param, dz, dx, dW, db)
    y_cpu, z_cpu = ops.dense_forward(x, w, b, activation, return_preactivation=True, approximate=False)
    dx_cpu, dw_cpu, db_cpu = ops.dense_backward(dy, x, w, z_cpu, activation, approximate=False)
    for got, want in ((y, y_cpu), (z, z_cpu), (dx, dx_cpu), (dW, dw_cpu), (db, db_cpu)):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("rows, cols", [(1, 1), (5, 3), (300, 10), (64, 1000)])
def test_softmax_and_column_sums_match_the_cpu(rng, rows, cols):
    z = rng.standard_normal((rows, cols)).astype(np.float32) * 4
    dy = rng.standard_normal((rows, cols)).astype(np.float32)
    y, dz, sums = _poisoned((rows, cols)), _poisoned((rows, cols)), _poisoned(cols)
    _core.cuda_softmax_forward(_device(z), y)
    _core.cuda_softmax_backward(_device(dy), _device(z), dz)
    _core.cuda_col_sums(_device(dy), sums)
    np.testing.assert_allclose(y.numpy(), ops.activation_forward(z, "softmax"), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dz.numpy(), ops.activation_backward(dy, z, "softmax"), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sums.numpy(), ops.sum_rows(dy), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("loss, from_logits", [("mean_squared_error", False), ("mean_absolute_error", False),
                                               ("huber", False), ("binary_crossentropy", False),
                                               ("binary_crossentropy", True), ("categorical_crossentropy", False),
                                               ("categorical_crossentropy", True),
                                               ("sparse_categorical_crossentropy", True)])
def test_losses_match_the_cpu_and_repeat_bit_for_bit(rng, loss, from_logits):
    rows, cols = 257, 6
    kind = ops._LOSS_KINDS[loss]
    logits = rng.standard_normal((rows, cols)).astype(np.float32)
    pred = logits if from_logits or loss in ("mean_squared_error", "mean_absolute_error", "huber") else \
        (ops.activation_forward(logits, "softmax") if "categorical" in loss else ops.activation_forward(logits,
                                                                                                          "sigmoid"))
    labels = rng.integers(0, cols, rows)
    sparse = loss.startswith("sparse")
    true = None if sparse else (np.eye(cols, dtype=np.float32)[labels] if "categorical" in loss
                                else rng.uniform(0, 1, (rows, cols)).astype(np.float32))
    weights = rng.uniform(0.5, 2, rows).astype(np.float32)
    grad = _poisoned((rows, cols))
    args = (kind, from_logits, 0.1 if "entropy" in loss else 0.0, 1.0, None if sparse else _device(true),
            labels if sparse else None, _device(pred), _device(weights), grad)
    value = _core.cuda_loss(*args)
    assert _core.cuda_loss(*args) == value  # a fixed summation order: the same bits every run
    cpu_value, cpu_grad = ops.loss_and_grad(loss, labels if sparse else true, pred, sample_weight=weights,
                                            from_logits=from_logits,
                                            label_smoothing=0.1 if "entropy" in loss else 0.0)
    assert value == pytest.approx(cpu_value, rel=1e-5)
    np.testing.assert_allclose(grad.numpy(), cpu_grad, rtol=1e-5, atol=1e-8)


def test_ops_matmul_on_device_arrays_returns_a_device_array(rng):
    a = rng.standard_normal((33, 20)).astype(np.float32)
    b = rng.standard_normal((20, 17)).astype(np.float32)
    c = ops.matmul(_device(a), _device(b))
    assert isinstance(c, cuda.DeviceArray) and c.owned
    np.testing.assert_allclose(c.numpy(), a @ b, rtol=1e-4, atol=1e-4)


def test_cupy_arrays_go_through_ops_without_a_copy(rng):
    cupy = pytest.importorskip("cupy")
    a = cupy.asarray(rng.standard_normal((8, 5)).astype(np.float32))
    b = cupy.asarray(rng.standard_normal((5, 3)).astype(np.float32))
    out = cupy.empty((8, 3), dtype=cupy.float32)
    ops.matmul(a, b, out=out)  # gradsmith writes into CuPy's memory
    np.testing.assert_allclose(cupy.asnumpy(out), cupy.asnumpy(a) @ cupy.asnumpy(b), rtol=1e-4, atol=1e-4)


def test_dlpack_hands_memory_to_torch(rng):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("PyTorch without CUDA")
    a = rng.standard_normal((4, 6)).astype(np.float32)
    t = torch.from_dlpack(_device(a))
    np.testing.assert_array_equal(t.cpu().numpy(), a)


def test_ops_functions_take_device_arrays_and_keep_results_there(rng):
    x = rng.standard_normal((20, 12)).astype(np.float32)
    w = (rng.standard_normal((12, 7)) * 0.3).astype(np.float32)
    b = rng.standard_normal(7).astype(np.float32)
    dy = rng.standard_normal((20, 7)).astype(np.float32)
    y, z = ops.dense_forward(_device(x), _device(w), _device(b), "tanh", return_preactivation=True)
    assert isinstance(y, cuda.DeviceArray)
    y_cpu, z_cpu = ops.dense_forward(x, w, b, "tanh", return_preactivation=True)
    np.testing.assert_allclose(y.numpy(), y_cpu, rtol=1e-5, atol=1e-6)
    grads = ops.dense_backward(_device(dy), _device(x), _device(w), z, "tanh")
    for got, want in zip(grads, ops.dense_backward(dy, x, w, z_cpu, "tanh")):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-5)
    for name in ("relu", "softmax"):
        np.testing.assert_allclose(ops.activation_forward(_device(dy), name).numpy(),
                                   ops.activation_forward(dy, name), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(ops.activation_backward(_device(x[:, :7]), _device(dy), name).numpy(),
                                   ops.activation_backward(x[:, :7], dy, name), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ops.dropout_forward(_device(x), 0.3, 9, 2).numpy(), ops.dropout_forward(x, 0.3, 9, 2))
    np.testing.assert_allclose(ops.sum_rows(_device(dy)).numpy(), ops.sum_rows(dy), rtol=1e-5, atol=1e-5)
    labels = rng.integers(0, 7, 20)
    value, grad = ops.loss_and_grad("sparse_categorical_crossentropy", labels, _device(dy), from_logits=True)
    cpu_value, cpu_grad = ops.loss_and_grad("sparse_categorical_crossentropy", labels, dy, from_logits=True)
    assert value == pytest.approx(cpu_value, rel=1e-5)
    np.testing.assert_allclose(grad.numpy(), cpu_grad, rtol=1e-5, atol=1e-8)


def test_ops_optimizer_steps_take_device_arrays(rng):
    n = 3001
    w, g, m, v = (rng.standard_normal(n).astype(np.float32) for _ in range(4))
    v = np.abs(v)
    cpu = [a.copy() for a in (w, m, v)]
    dev = [_device(a) for a in (w, m, v)]
    ops.adam_step(cpu[0], g, cpu[1], cpu[2], step=4, learning_rate=0.01, clipvalue=0.5)
    ops.adam_step(dev[0], _device(g), dev[1], dev[2], step=4, learning_rate=0.01, clipvalue=0.5)
    for got, want in zip(dev, cpu):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)



@pytest.mark.parametrize("clip", [{"clipnorm": 0.3}, {"global_clipnorm": 0.3}, {"clipnorm": 1e9}])
def test_ops_optimizer_steps_clip_by_norm_on_device(rng, clip):
    sizes = [257, 3001, 1]
    ws, gs, ms = ([rng.standard_normal(n).astype(np.float32) for n in sizes] for _ in range(3))
    cpu_w, cpu_m = [a.copy() for a in ws], [a.copy() for a in ms]
    dev_w, dev_m = [_device(a) for a in ws], [_device(a) for a in ms]
    ops.sgd_step(cpu_w, gs, cpu_m, learning_rate=0.1, momentum=0.9, **clip)
    ops.sgd_step(dev_w, [_device(a) for a in gs], dev_m, learning_rate=0.1, momentum=0.9, **clip)
    for got, want in zip(dev_w + dev_m, cpu_w + cpu_m):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)

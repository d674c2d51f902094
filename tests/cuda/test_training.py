"""Training on the GPU (compile(device='cuda')) and the tensor-core GEMMs, against the CPU.

Marked `cuda`; skipped where no GPU can be used. The GPU sums in other orders
than the CPU (GEMM tiles, block reductions), so results agree to float32
tolerances, not bits; repeated GPU runs must agree bit for bit."""
import numpy as np
import pytest

import gradsmith as keras
from gradsmith import _core, config, cuda, compiled_step

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not cuda.is_available(), reason=f"no CUDA device: {cuda.unavailable_reason()}")]

layers = keras.layers

# The CPU emulator (GRADSMITH_CUDA=EMULATE) runs every GPU thread as a fiber: fewer rows and epochs there.
EMULATED = getattr(_core, "cuda_emulated", False)


@pytest.fixture
def precision():
    """Set a matmul precision for the test, then back to 'highest'."""
    yield config.set_matmul_precision
    config.set_matmul_precision("highest")


# Relative error of a product of K terms with inputs rounded to p mantissa bits, as a bound on
# |C - C_exact| / (|A| |B|)_ij: about sqrt(K) * 2^-p for random signs; stated per precision.
TOLERANCE = {"tf32": 2.0 ** -10 * 4, "bf16": 2.0 ** -7 * 4}


@pytest.mark.parametrize("name", ["tf32", "bf16"])
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (17, 33, 9), (128, 128, 32), (200, 130, 77), (257, 511, 300)])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_tensor_core_gemm_is_within_its_stated_tolerance(rng, precision, name, m, n, k, ta, tb):
    if not _core.cuda_matmul_uses_tensor_cores() and not _tensor_capable():
        pytest.skip("this GPU has no TF32/BF16 tensor cores (compute capability < 8.0)")
    precision(name)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    out = cuda.DeviceArray.from_numpy(c0)
    _core.cuda_gemm(cuda.DeviceArray.from_numpy(a), cuda.DeviceArray.from_numpy(b), out, ta, tb, 0.5, 0.25)
    A = (a.T if ta else a).astype(np.float64)
    B = (b.T if tb else b).astype(np.float64)
    exact = 0.5 * A @ B + 0.25 * c0
    scale = 0.5 * np.abs(A) @ np.abs(B) + 1e-30
    err = np.abs(out.numpy() - exact) / scale
    assert err.max() <= TOLERANCE[name], f"max scaled error {err.max():.3g}"
    again = cuda.DeviceArray.from_numpy(c0)
    _core.cuda_gemm(cuda.DeviceArray.from_numpy(a), cuda.DeviceArray.from_numpy(b), again, ta, tb, 0.5, 0.25)
    np.testing.assert_array_equal(out.numpy(), again.numpy())  # deterministic


def _tensor_capable():
    config.set_matmul_precision("tf32")
    try:
        return _core.cuda_matmul_uses_tensor_cores()
    finally:
        config.set_matmul_precision("highest")


def _seed_mlp(device, optimizer="adam", loss="binary_crossentropy", dropout=0.0, clip=None):
    keras.utils.set_random_seed(7)
    out = 1 if loss in ("binary_crossentropy", "mse") else 5
    stack = [layers.Input((20,)), layers.Dense(128, activation="relu", kernel_regularizer=keras.regularizers.l2(1e-4)),
             layers.Dense(64, activation="relu")]
    if dropout:
        stack.append(layers.Dropout(dropout))
    stack.append(layers.Dense(out, activation={"binary_crossentropy": "sigmoid", "mse": None}.get(loss, "softmax")))
    model = keras.Sequential(stack)
    opt = keras.optimizers.get({"class_name": optimizer, "config": dict([clip]) if clip else {}})
    model.compile(optimizer=opt, loss=loss, metrics=["accuracy"], device=device)
    return model


def _data(n, loss):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, 20)).astype(np.float32)
    score = x[:, :4].sum(1)
    if loss == "sparse_categorical_crossentropy":
        return x, (np.abs(score) * 2).astype(np.int64) % 5
    return x, (score > 0).astype(np.float32)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop", "adagrad", "adamax", "lion"])
def test_seed_mlp_on_the_gpu_follows_the_cpu_loss_curve(optimizer):
    x, y = _data(600 if EMULATED else 4000, "binary_crossentropy")
    curves, models = [], []
    for device in ("cpu", "cuda"):
        model = _seed_mlp(device, optimizer)
        keras.utils.set_random_seed(1)
        curves.append(model.fit(x, y, batch_size=32, epochs=2 if EMULATED else 4, validation_split=0.1,
                                verbose=0).history)
        models.append(model)
    assert models[1]._plan is not None and models[1]._plan.on_device
    for key in curves[0]:
        np.testing.assert_allclose(curves[1][key], curves[0][key], rtol=2e-2, atol=2e-3, err_msg=key)
    np.testing.assert_allclose(models[1].predict(x[:100], verbose=0), models[0].predict(x[:100], verbose=0),
                               rtol=5e-2, atol=5e-3)


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "mse"])
@pytest.mark.parametrize("clip", [None, ("clipvalue", 0.01), ("clipnorm", 0.05), ("global_clipnorm", 0.05)])
def test_one_step_matches_the_cpu(loss, clip):
    x, y = _data(96, loss)
    weights = []
    for device in ("cpu", "cuda"):
        model = _seed_mlp(device, "adam", loss, dropout=0.3, clip=clip)
        value = model.train_on_batch(x, y)
        weights.append((value, model.get_weights(), [np.asarray(v) for v in model.optimizer.variables]))
    np.testing.assert_allclose(weights[1][0], weights[0][0], rtol=1e-5)
    for a, b in zip(weights[0][1] + weights[0][2], weights[1][1] + weights[1][2]):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


def test_gpu_training_repeats_bit_for_bit_and_resident_equals_staged(monkeypatch):
    x, y = _data(300 if EMULATED else 1000, "sparse_categorical_crossentropy")
    results = []
    for staged in (False, False, True):
        if staged:
            monkeypatch.setattr(compiled_step.CompiledStep, "keep_on_device", lambda self, b: False)
        model = _seed_mlp("cuda", "adam", "sparse_categorical_crossentropy", dropout=0.2)
        keras.utils.set_random_seed(4)
        history = model.fit(x, y, batch_size=50, epochs=2, verbose=0).history
        results.append((history, model.get_weights()))
    for history, w in results[1:]:
        assert history == results[0][0]
        for a, b in zip(w, results[0][1]):
            np.testing.assert_array_equal(a, b)


def test_out_of_memory_is_an_error_and_the_model_still_trains():
    model = _seed_mlp("cuda")
    x, y = _data(64, "binary_crossentropy")
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    before = model.get_weights()
    cuda.empty_cache()  # blocks other tests left in the cache are free memory too: the allocator gives them back
    free = cuda.mem_get_info()[0]
    # A batch whose activations (some 900 floats a row in this model) cannot fit, whose inputs (20) can.
    rows = int(free // (4 * 600))
    with pytest.raises(MemoryError, match="out of memory"):
        model.train_on_batch(np.zeros((rows, 20), np.float32), np.zeros(rows, np.float32))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)


def _layer_kind_model(device):
    """Dense on (batch, 6, 5) inputs, BatchNormalization per last-axis feature, a Dropout mask shared
    along axis 1, softmax along the last axis, Flatten, and a sigmoid head: every layer kind of
    cpp/model/layers/ in one model."""
    keras.utils.set_random_seed(7)
    model = keras.Sequential([layers.Input((6, 5)), layers.Dense(7, activation="elu"), layers.BatchNormalization(),
                              layers.Dropout(0.3, noise_shape=(None, 1, None)), layers.Activation("softmax"),
                              layers.Flatten(), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"], device=device)
    return model


def test_every_layer_kind_trains_on_the_gpu_as_on_the_cpu(rng):
    x = rng.standard_normal((256, 6, 5)).astype(np.float32)
    y = (x.sum(axis=(1, 2)) > 0).astype(np.float32)
    runs = []
    for device in ("cpu", "cuda", "cuda"):
        model = _layer_kind_model(device)
        keras.utils.set_random_seed(3)
        history = model.fit(x, y, batch_size=32, epochs=3, verbose=0).history
        assert model._plan is not None and model._plan.on_device == (device == "cuda"), model._plan_reason
        runs.append((history["loss"], model.get_weights(), model.predict(x, verbose=0)))
    (cpu_loss, cpu_w, cpu_p), (gpu_loss, gpu_w, gpu_p), (again_loss, again_w, _) = runs
    np.testing.assert_allclose(gpu_loss, cpu_loss, rtol=1e-4)
    for a, b in zip(gpu_w, cpu_w):  # moving statistics included
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(gpu_p, cpu_p, rtol=1e-3, atol=1e-5)
    assert gpu_loss == again_loss  # a GPU run repeats bit for bit
    for a, b in zip(gpu_w, again_w):
        np.testing.assert_array_equal(a, b)

"""int8 quantization: the int8 GEMM (every CPU path, exact int32), the quantized Dense and Embedding against the
float64 twin (tests/reference/quantized.py), and Keras 3.15's own quantized models (tests/data/keras_int8_*,
made by make_keras_int8_fixtures.py): same int8 kernels and scales, same predictions, same training step,
files that load both ways."""
import os
import zipfile

import numpy as np
import pytest

import gradsmith as keras
from gradsmith import _core, ops
from keras_fixtures import DATA, load_io
from reference import quantized as ref

# Sizes around every tile and group edge: MR (4, 12), NR (16, 32), groups of 4 along K, one column, one row.
SHAPES = [(1, 1, 1), (1, 5, 1), (3, 4, 7), (4, 16, 16), (5, 17, 33), (12, 64, 32), (13, 31, 65), (25, 3, 100),
          (37, 129, 10), (100, 250, 70), (256, 784, 300)]


def int8(rng, shape, low=-127):
    return rng.integers(low, 128, shape).astype(np.int8)


@pytest.mark.parametrize("m,k,n", SHAPES)
def test_int8_gemm_is_exact_on_every_path(isa, threads, rng, m, k, n):
    a, b = int8(rng, (m, k)), int8(rng, (k, n))
    got = ops.quantized_matmul(a, b)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, a.astype(np.int64) @ b.astype(np.int64))


def test_int8_gemm_extremes_do_not_saturate(isa):
    """All +-127 (the AVX2 path's pairs reach 2 * 127 * 127; the VNNI path's shifted bytes 255 * 127)."""
    for sa, sb in [(127, 127), (-127, 127), (127, -127), (-127, -127)]:
        a = np.full((13, 1000), sa, np.int8)
        b = np.full((1000, 35), sb, np.int8)
        np.testing.assert_array_equal(ops.quantized_matmul(a, b), np.full((13, 35), sa * sb * 1000))


def test_int8_gemm_paths_follow_the_cpu_path():
    assert _core.qgemm_isa() in ("avx512_vnni", "avx2", "scalar")
    before = _core.current_isa()
    try:
        _core.set_isa("scalar")
        assert _core.qgemm_isa() == "scalar"
        if "avx512" in _core.supported_isas() and _core.cpu_has_vnni():
            _core.set_isa("avx512")
            assert _core.qgemm_isa() == "avx512_vnni"
    finally:
        _core.set_isa(before)


def test_packed_kernel_is_repacked_for_another_path(rng):
    if len(_core.supported_isas()) < 2:
        pytest.skip("one CPU path only")
    a, b = int8(rng, (9, 21)), int8(rng, (21, 40))
    qb = ops.QuantizedKernel(b)
    before = _core.current_isa()
    try:
        for name in _core.supported_isas():
            _core.set_isa(name)
            np.testing.assert_array_equal(ops.quantized_matmul(a, qb), a.astype(np.int64) @ b.astype(np.int64))
        packed, colsum, isa = qb.packing()
        other = [n for n in _core.supported_isas() if n != before][0]
        _core.set_isa(other)
        with pytest.raises(ValueError, match="pack them again"):
            _core.qgemm_s32(a, packed, colsum, isa, 40)
    finally:
        _core.set_isa(before)


def test_int8_gemm_refuses_minus_128_and_wrong_dtypes():
    with pytest.raises(ValueError, match=r"\[-127, 127\]"):
        ops.quantized_matmul(np.full((2, 3), -128, np.int8), np.ones((3, 2), np.int8))
    with pytest.raises(TypeError, match="int8"):
        ops.quantized_matmul(np.ones((2, 3), np.float32), np.ones((3, 2), np.int8))
    with pytest.raises(ValueError, match="inner dimensions"):
        ops.quantized_matmul(np.ones((2, 3), np.int8), np.ones((4, 2), np.int8))


@pytest.mark.parametrize("activation", ["linear", "relu", "tanh", "softmax", "gelu"])
@pytest.mark.parametrize("m,k,n", [(1, 7, 3), (13, 33, 35), (70, 200, 64)])
def test_quantized_dense_forward_matches_the_twin(isa, threads, rng, activation, m, k, n):
    x = (rng.standard_normal((m, k)) * rng.uniform(0.01, 10, (m, 1))).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    q, scale = ref.abs_max_quantize(w, axis=0)
    got = ops.quantized_dense_forward(x, q, scale.reshape(-1), bias, activation, approximate=False)
    want = ref.quantized_dense_forward(x, q, scale.reshape(-1), bias, activation, approximate=False)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)


def test_quantized_dense_is_the_same_on_every_path(rng):
    x = rng.standard_normal((50, 97)).astype(np.float32)
    q, scale = ref.abs_max_quantize(rng.standard_normal((97, 45)), axis=0)
    before = _core.current_isa()
    try:
        outs = []
        for name in _core.supported_isas():
            _core.set_isa(name)
            outs.append(ops.quantized_dense_forward(x, q, scale.reshape(-1), None, "relu"))
    finally:
        _core.set_isa(before)
    for other in outs[1:]:
        np.testing.assert_array_equal(other, outs[0])


def _mlp(units=(16, 4), activations=("relu", "softmax"), names=("hidden", "out"), inputs=12):
    return keras.Sequential([keras.Input((inputs,))] + [keras.layers.Dense(u, activation=a, name=nm)
                                                        for u, a, nm in zip(units, activations, names)])


def test_quantize_gives_keras_int8_kernels_scales_and_predictions():
    io = load_io("keras_int8_io.npz")
    model = _mlp()
    model.set_weights([io[f"mlp_float_{i}"] for i in range(4)])
    model.quantize("int8")
    for layer in model.layers:
        np.testing.assert_array_equal(layer.kernel, io[f"mlp_{layer.name}_kernel"])
        np.testing.assert_array_equal(layer.kernel_scale, io[f"mlp_{layer.name}_kernel_scale"])
        np.testing.assert_array_equal(layer.bias, io[f"mlp_{layer.name}_bias"])
        assert layer.quantization_mode == "int8" and layer.kernel.dtype == np.int8
    np.testing.assert_allclose(model.predict(io["x_mlp"], verbose=0), io["pred_mlp"], rtol=1e-6, atol=1e-7)


def test_quantized_training_step_matches_keras():
    """Keras trains the bias of a quantized Dense and freezes its int8 kernel and scale."""
    io = load_io("keras_int8_io.npz")
    model = keras.models.load_model(os.path.join(DATA, "keras_int8_mlp.keras"))
    kernels = [layer.kernel.copy() for layer in model.layers]
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    model.train_on_batch(io["x_mlp"], io["y_mlp"])
    for layer, kernel in zip(model.layers, kernels):
        np.testing.assert_allclose(layer.bias, io[f"mlp_step_{layer.name}_bias"], rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(layer.kernel, kernel)
    np.testing.assert_allclose(model.predict(io["x_mlp"], verbose=0), io["pred_mlp_after_step"], rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("name", ["mlp", "emb"])
def test_keras_quantized_files_load_and_predict(name):
    io = load_io("keras_int8_io.npz")
    model = keras.models.load_model(os.path.join(DATA, f"keras_int8_{name}.keras"))
    for layer in model.layers:
        assert layer.quantization_mode == "int8"
        for w in layer._weights:
            key = f"{name}_{layer.name}_{w.name.split('/')[-1]}"
            np.testing.assert_array_equal(w.value, io[key])
    got = model.predict(io[f"x_{name}"], verbose=0)
    np.testing.assert_allclose(got, io[f"pred_{name}"], rtol=1e-6, atol=1e-7)


def test_embedding_and_nd_dense_match_the_twin():
    io = load_io("keras_int8_io.npz")
    model = keras.models.load_model(os.path.join(DATA, "keras_int8_emb.keras"))
    emb, dense = model.layers
    ids = io["x_emb"]
    rows = ref.quantized_embedding_forward(ids, emb.embeddings, emb.embeddings_scale)
    want = ref.quantized_dense_forward(rows.astype(np.float32), dense.kernel, dense.kernel_scale, dense.bias, "tanh")
    np.testing.assert_allclose(model.predict(ids, verbose=0), want, rtol=1e-5, atol=1e-6)


def test_saved_quantized_model_has_keras_layout_and_loads_back(tmp_path):
    """Our file is what Keras writes (checked against the Keras-made file's config and weights layout)."""
    import h5py

    io = load_io("keras_int8_io.npz")
    model = _mlp()
    model.set_weights([io[f"mlp_float_{i}"] for i in range(4)])
    model.quantize("int8")
    path = str(tmp_path / "q.keras")
    model.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_array_equal(again.predict(io["x_mlp"], verbose=0), model.predict(io["x_mlp"], verbose=0))

    def layout(file):
        with zipfile.ZipFile(file) as z:
            import json
            config = json.loads(z.read("config.json"))
            with z.open("model.weights.h5") as f, h5py.File(io_bytes(f.read()), "r") as h5:
                datasets = {}
                h5.visititems(lambda n, o: datasets.__setitem__(n, (o.dtype.str, o.shape))
                              if isinstance(o, h5py.Dataset) else None)
        layers = [(l["class_name"], l["config"]["dtype"], strip(l["config"].get("quantization_config")))
                  for l in config["config"]["layers"] if l["class_name"] == "Dense"]
        return layers, datasets

    def strip(obj):  # Keras marks objects it may share between layers; the mark carries no meaning here
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k != "shared_object_id"}
        return obj

    def io_bytes(data):
        import io as io_mod
        return io_mod.BytesIO(data)

    ours, keras_made = layout(path), layout(os.path.join(DATA, "keras_int8_mlp.keras"))
    assert ours[0] == keras_made[0]
    assert ours[1] == keras_made[1]
    assert ours[1]["layers/dense/vars/0"][0] == "|i1"


def test_quantized_weights_and_errors():
    model = _mlp()
    with pytest.raises(NotImplementedError, match="int4"):
        model.quantize("int4")
    unbuilt = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="built"):
        unbuilt.quantize("int8")
    model.quantize("int8", filters="hidden")
    assert [l.quantization_mode for l in model.layers] == ["int8", None]
    assert [w.dtype for w in model.layers[0].weights] == [np.int8, np.float32, np.float32]
    with pytest.raises(ValueError, match="already quantized"):
        model.layers[0].quantize("int8")
    with pytest.raises(ValueError, match="read-only"):
        model.layers[0].kernel[0, 0] = 1
    # set_weights reaches the int8 kernel and the packed copy follows it
    x = np.ones((2, 12), np.float32)
    before = model.predict(x, verbose=0)
    weights = model.get_weights()
    weights[0] = np.zeros_like(weights[0])
    model.set_weights(weights)
    after = model.predict(x, verbose=0)
    assert not np.array_equal(before, after)
    np.testing.assert_allclose(model.layers[0](x), np.maximum(model.layers[0].bias, 0)[None].repeat(2, 0))


def test_quantized_model_size_is_about_a_quarter(tmp_path):
    model = _mlp(units=(256, 10), inputs=300)
    model.save(str(tmp_path / "f.keras"))
    model.quantize("int8")
    model.save(str(tmp_path / "q.keras"))
    ratio = os.path.getsize(tmp_path / "q.keras") / os.path.getsize(tmp_path / "f.keras")
    assert 0.2 < ratio < 0.35


@pytest.mark.parametrize("kernel_size,strides,padding,dilation", [
    ((3, 3), (1, 1), "same", (1, 1)), ((3, 2), (2, 2), "valid", (1, 1)), ((2, 3), (2, 1), "same", (1, 1)),
    ((3, 3), (1, 1), "valid", (2, 2)), ((1, 1), (1, 1), "valid", (1, 1))])
def test_int8_conv2d_matches_the_twin(rng, kernel_size, strides, padding, dilation):
    """Conv2D int8 is an opt-in extension (model.quantize(..., convolutions=True)); Keras has none."""
    x = rng.random((3, 11, 9, 5)).astype(np.float32) - 0.3
    model = keras.Sequential([keras.Input((11, 9, 5)), keras.layers.Conv2D(
        7, kernel_size, strides=strides, padding=padding, dilation_rate=dilation, activation="relu")])
    before = model.predict(x, verbose=0)
    model.quantize("int8")
    assert model.layers[0].quantization_mode is None  # Keras's quantize leaves convolutions alone
    model.quantize("int8", convolutions=True)
    conv = model.layers[0]
    assert conv.quantization_mode == "int8" and conv.kernel.dtype == np.int8 and conv.kernel.shape == \
        kernel_size + (5, 7)
    got = model.predict(x, verbose=0)
    want = ref.quantized_conv2d_forward(x, conv.kernel, conv.kernel_scale, conv.bias, strides, padding, dilation,
                                        "relu")
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(got, before, atol=0.02 * np.abs(before).max())  # int8 stays near float32


def test_int8_conv1d_causal_and_file_round_trip(rng, tmp_path):
    x = rng.standard_normal((4, 20, 3)).astype(np.float32)
    model = keras.Sequential([keras.Input((20, 3)), keras.layers.Conv1D(6, 3, padding="causal", dilation_rate=2),
                              keras.layers.Flatten(), keras.layers.Dense(2)])
    model.quantize("int8", convolutions=True)
    conv = model.layers[0]
    # causal: (k - 1) * dilation zeros on the left, then valid
    x_padded = np.concatenate([np.zeros((4, 4, 3), np.float32), x], axis=1)
    want = ref.quantized_conv2d_forward(x_padded[:, None], conv.kernel[None], conv.kernel_scale, conv.bias,
                                        (1, 1), "valid", (1, 2))[:, 0]
    np.testing.assert_allclose(conv(x), want, rtol=2e-6, atol=2e-6)
    path = str(tmp_path / "conv_int8.keras")
    model.save(path)
    again = keras.models.load_model(path)
    assert again.layers[0].quantization_mode == "int8"
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(NotImplementedError, match="inference only"):
        model.train_on_batch(x, np.zeros((4, 2), np.float32))


@pytest.mark.skipif(not os.environ.get("GRADSMITH_KERAS_PYTHON"),
                    reason="set GRADSMITH_KERAS_PYTHON to a Python with Keras 3 to have Keras read our int8 files")
def test_keras_reads_our_int8_files(tmp_path):
    """tests/data/check_int8_in_keras.py: write here, read in Keras (its own interpreter), same predictions."""
    import subprocess
    import sys

    script = os.path.join(DATA, "check_int8_in_keras.py")
    here = os.path.dirname(os.path.dirname(keras.__file__))
    subprocess.run([sys.executable, script, "write", str(tmp_path)], check=True,
                   env=dict(os.environ, PYTHONPATH=here))
    done = subprocess.run([os.environ["GRADSMITH_KERAS_PYTHON"], script, "read", str(tmp_path)],
                          env=dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "jax")),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mlp: largest prediction difference" in done.stdout

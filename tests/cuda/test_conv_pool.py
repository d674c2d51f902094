"""The convolution and pooling kernels on the GPU (cpp/cuda/conv.cu, pool.cu) against the CPU's (gradsmith.ops),
and the compiled step of a small CNN on the GPU against the CPU plan.

Marked `cuda`; skipped where no GPU can be used. Pooling computes the CPU's formulas element by element: the
same bits. The convolution's GEMM sums in another order than the CPU's: float32 tolerances, and a second GPU
run must give the same bits. Shapes are tiny: the CPU emulator runs every GPU thread as a fiber. Outputs are
poisoned with NaN so an element a kernel fails to write shows."""
import numpy as np
import pytest

from gradsmith import _core, cuda, ops
from plan_helpers import train_plan

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not cuda.is_available(), reason=f"no CUDA device: {cuda.unavailable_reason()}")]

PADDINGS = {"valid": 0, "same": 1, "causal": 2}


def _device(a):
    return cuda.DeviceArray.from_numpy(np.ascontiguousarray(a, np.float32))


def _poisoned(shape):
    return cuda.DeviceArray.from_numpy(np.full(shape, np.nan, np.float32))


# (batch, height, width, channels, kernel, filters, strides, padding, dilation, activation)
CONV_CASES = [
    (1, 1, 1, 1, (1, 1), 1, (1, 1), "valid", (1, 1), "linear"),     # a 1x1 image: the pointwise GEMM
    (2, 5, 5, 17, (1, 1), 3, (1, 1), "same", (1, 1), "relu"),       # pointwise, 17 channels
    (2, 4, 5, 3, (1, 1), 2, (2, 2), "valid", (1, 1), "linear"),     # 1x1 with stride 2: im2col
    (1, 5, 5, 1, (5, 5), 4, (1, 1), "valid", (1, 1), "tanh"),       # a 5x5 kernel the size of the image
    (2, 7, 6, 3, (3, 3), 5, (2, 2), "same", (1, 1), "relu"),        # stride 2, 'same'
    (1, 6, 7, 2, (2, 4), 3, (1, 1), "same", (1, 1), "linear"),      # even kernels, 'same' (odd pad after)
    (2, 9, 8, 17, (3, 2), 2, (1, 2), "valid", (2, 3), "gelu"),      # dilation; 102 taps: two tap tiles
    (2, 5, 5, 2, (3, 3), 70, (1, 1), "same", (1, 1), "softmax"),    # 70 filters: two filter tiles; softmax
    (2, 1, 9, 3, (1, 3), 4, (1, 1), "causal", (1, 2), "elu"),       # Conv1D, causal
    (3, 7, 7, 3, (3, 3), 4, (1, 1), "same", (1, 1), "sigmoid"),     # emulated build: chunks cut image 2
    (2, 6, 5, 8, (3, 3), 6, (2, 1), "same", (1, 2), "relu"),        # 8 channels: moved 4 at a time
    (3, 7, 7, 4, (3, 3), 3, (1, 1), "same", (1, 1), "linear"),      # 4 at a time, and chunks cut image 2
]
CONV_IDS = ["1x1-image", "pointwise-17ch", "1x1-stride2", "5x5", "stride2-same", "even-same", "dilated",
            "70-filters-softmax", "causal-1d", "chunked", "4-channels", "4-channels-chunked"]


def _conv_inputs(rng, case):
    batch, h, w, c, (kh, kw), f, strides, padding, dilation, activation = case
    x = rng.standard_normal((batch, h, w, c)).astype(np.float32)
    kernel = (rng.standard_normal((kh, kw, c, f)) / np.sqrt(kh * kw * c)).astype(np.float32)
    bias = rng.standard_normal(f).astype(np.float32)
    y, z = ops.conv2d_forward(x, kernel, bias, strides, padding, dilation, activation, approximate=False,
                              return_preactivation=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    return x, kernel, bias, y, z, dy


def _gpu_conv(case, x, kernel, bias, dy, use_bias=True, need_dx=True):
    batch, h, w, c, _, f, strides, padding, dilation, activation = case
    kind, param = ops._activation(activation, 0.2, 1.0, False)
    pad = PADDINGS[padding]
    y_shape = dy.shape
    y, z = _poisoned(y_shape), _poisoned(y_shape)
    dx_, kernel_ = _device(x), _device(kernel)
    bias_ = _device(bias) if use_bias else None
    _core.cuda_conv2d_forward(dx_, kernel_, bias_, y, z, kind, param, list(strides), list(dilation), pad)
    dx = _poisoned(x.shape) if need_dx else None
    dW, db = _poisoned(kernel.shape), _poisoned(bias.shape) if use_bias else None
    _core.cuda_conv2d_backward(_device(dy), dx_, kernel_, z, kind, param, list(strides), list(dilation), pad, dx, dW,
                               db)
    out = {"y": y.numpy(), "z": z.numpy(), "dkernel": dW.numpy()}
    if need_dx:
        out["dx"] = dx.numpy()
    if use_bias:
        out["dbias"] = db.numpy()
    return out


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv_forward_and_backward_match_the_cpu_and_repeat_bit_for_bit(rng, case):
    x, kernel, bias, y, z, dy = _conv_inputs(rng, case)
    _, _, _, _, _, _, strides, padding, dilation, activation = case
    gpu = _gpu_conv(case, x, kernel, bias, dy)
    dx, dkernel, dbias = ops.conv2d_backward(dy, x, kernel, z, strides, padding, dilation, activation,
                                             approximate=False)
    cpu = {"y": y, "z": z, "dx": dx, "dkernel": dkernel, "dbias": dbias}
    for name, want in cpu.items():
        # Sums of up to a few hundred products of O(1) values: float32 rounding, a little over sqrt(n) ulps.
        np.testing.assert_allclose(gpu[name], want, rtol=1e-4, atol=1e-4, err_msg=name)
    again = _gpu_conv(case, x, kernel, bias, dy)
    for name in gpu:
        np.testing.assert_array_equal(again[name], gpu[name], err_msg=name)


@pytest.mark.skipif(getattr(_core, "cuda_emulated", False),
                    reason="the emulated build cuts the tiny shapes above into chunks and groups already; this one "
                           "takes some 20 s there")
def test_conv_across_the_devices_chunks_and_groups(rng):
    """On a GPU the im2col chunks hold about 8M floats and dW is summed over groups of 1024+ rows: 3x3 taps over
    256 channels make chunks of 3584 rows, which end inside the second 48x48 image, and 4608 rows make 5
    groups."""
    case = (2, 48, 48, 256, (3, 3), 8, (1, 1), "same", (1, 1), "relu")
    x, kernel, bias, y, z, dy = _conv_inputs(rng, case)
    gpu = _gpu_conv(case, x, kernel, bias, dy)
    dx, dkernel, dbias = ops.conv2d_backward(dy, x, kernel, z, (1, 1), "same", (1, 1), "relu", approximate=False)
    for name, want in {"y": y, "z": z, "dx": dx, "dkernel": dkernel, "dbias": dbias}.items():
        # dW and db sum 4608 products each: a looser absolute bound than the small cases'.
        tol = 1e-3 if name in ("dkernel", "dbias") else 1e-4
        np.testing.assert_allclose(gpu[name], want, rtol=tol, atol=tol, err_msg=name)
    again = _gpu_conv(case, x, kernel, bias, dy)
    for name in gpu:
        np.testing.assert_array_equal(again[name], gpu[name], err_msg=name)


def test_conv_backward_without_dx_or_bias(rng):
    case = CONV_CASES[4]
    x, kernel, bias, _, z, dy = _conv_inputs(rng, case)
    _, _, _, _, _, _, strides, padding, dilation, activation = case
    full = _gpu_conv(case, x, kernel, bias, dy)
    part = _gpu_conv(case, x, kernel, bias, dy, use_bias=False, need_dx=False)
    # Without a bias the forward differs; the kernel gradient of the same z must not.
    kind, param = ops._activation(activation, 0.2, 1.0, False)
    dW = _poisoned(kernel.shape)
    _core.cuda_conv2d_backward(_device(dy), _device(x), _device(kernel), _device(z), kind, param, list(strides),
                               list(dilation), PADDINGS[padding], None, dW, None)
    _, want, _ = ops.conv2d_backward(dy, x, kernel, z, strides, padding, dilation, activation, use_bias=False,
                                     need_dx=False, approximate=False)
    np.testing.assert_allclose(dW.numpy(), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(dW.numpy(), full["dkernel"])
    assert set(part) == {"y", "z", "dkernel"}


def test_conv_checks_its_arguments(rng):
    x, kernel = _device(np.ones((1, 4, 4, 2))), _device(np.ones((3, 3, 2, 5)))
    with pytest.raises(ValueError, match="out"):
        _core.cuda_conv2d_forward(x, kernel, None, _poisoned((1, 4, 4, 5)), None, 0, 0.0, [1, 1], [1, 1], 0)
    with pytest.raises(ValueError, match="channels"):
        _core.cuda_conv2d_forward(x, _device(np.ones((3, 3, 3, 5))), None, _poisoned((1, 2, 2, 5)), None, 0, 0.0,
                                  [1, 1], [1, 1], 0)
    with pytest.raises(ValueError, match="larger than the input"):
        _core.cuda_conv2d_forward(x, _device(np.ones((5, 5, 2, 5))), None, _poisoned((1, 1, 1, 5)), None, 0, 0.0,
                                  [1, 1], [1, 1], 0)


# (batch, height, width, channels, pool, strides, padding, global)
POOL_CASES = [
    (1, 1, 1, 1, (1, 1), (1, 1), "valid", False),
    (2, 5, 5, 17, (2, 2), (2, 2), "valid", False),
    (1, 5, 5, 1, (3, 3), (2, 2), "same", False),
    (2, 6, 7, 3, (2, 3), (1, 2), "same", False),
    (2, 5, 4, 3, (3, 2), (1, 1), "valid", False),    # overlapping windows
    (1, 1, 9, 2, (1, 4), (1, 3), "same", False),     # one row: the 1-D layers
    (2, 4, 5, 3, (1, 1), (1, 1), "valid", True),     # global
]
POOL_IDS = ["1x1", "2x2-17ch", "3x3-stride2-same", "2x3-same", "overlapping", "1d-same", "global"]


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_pooling_gives_the_cpu_bits(rng, case, mode):
    batch, h, w, c, pool, strides, padding, global_pool = case
    # Small whole numbers: ties in the max windows (the first maximum wins), and one NaN.
    x = rng.integers(-3, 4, (batch, h, w, c)).astype(np.float32) + rng.choice([0, 0.5], (batch, h, w, c))
    if x.size > 4:
        x.flat[x.size // 3] = np.nan
    y, arg = ops.pool2d_forward(x, pool, strides, padding, mode, global_pool=global_pool, return_argmax=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = ops.pool2d_backward(dy, x.shape, arg, pool, strides, padding, mode, global_pool=global_pool)
    mode_kind = _core.kinds.pool_modes[mode]
    pad = PADDINGS[padding]
    y_gpu = _poisoned(y.shape)
    arg_gpu = _poisoned(y.shape) if mode == "max" else None
    _core.cuda_pool2d_forward(_device(x), y_gpu, arg_gpu, mode_kind, global_pool, list(pool), list(strides), pad)
    dx_gpu = _poisoned(x.shape)
    _core.cuda_pool2d_backward(_device(dy), arg_gpu, dx_gpu, mode_kind, global_pool, list(pool), list(strides), pad)
    np.testing.assert_array_equal(y_gpu.numpy(), y)
    if mode == "max":
        np.testing.assert_array_equal(arg_gpu.numpy(), arg)
    np.testing.assert_array_equal(dx_gpu.numpy(), dx)


def test_pooling_in_inference_writes_no_argmax(rng):
    x = rng.standard_normal((1, 4, 4, 2)).astype(np.float32)
    y = _poisoned((1, 2, 2, 2))
    _core.cuda_pool2d_forward(_device(x), y, None, _core.kinds.pool_modes["max"], False, [2, 2], [2, 2], 0)
    np.testing.assert_array_equal(y.numpy(), ops.pool2d_forward(x, 2, 2, "valid", "max"))
    with pytest.raises(ValueError, match="argmax"):
        _core.cuda_pool2d_backward(_device(np.ones((1, 2, 2, 2))), None, _poisoned((1, 4, 4, 2)),
                                   _core.kinds.pool_modes["max"], False, [2, 2], [2, 2], 0)


def _conv(name, shape, filters, k, padding, activation, kernel, bias, dilation=None, l2=0.0):
    kind, param = ops._activation(activation, 0.2, 1.0, False)
    return {"kind": "Conv", "name": name, "input_shape": list(shape),
            "numbers": {"filters": filters, "padding": PADDINGS[padding], "activation": kind,
                        "activation_param": float(param)},
            "lists": {"kernel_size": list(k), "strides": [1] * len(k), "dilation_rate": dilation or [1] * len(k)},
            "weights": {"kernel": kernel, "bias": bias}, "penalties": {"kernel": (0.0, l2)}}


def _pool(name, shape, mode, size=None, strides=None, padding="valid"):
    config = {"kind": "Pooling", "name": name, "input_shape": list(shape),
              "numbers": {"mode": _core.kinds.pool_modes[mode], "padding": PADDINGS[padding]}}
    if size is None:
        config["numbers"]["global"] = 1.0
    else:
        config["lists"] = {"pool_size": list(size), "strides": list(strides)}
    return config


def _head(shape, kernel, bias):
    kind, param = ops._activation("sigmoid", 0.2, 1.0, False)
    return {"kind": "Dense", "name": "head", "input_shape": list(shape),
            "numbers": {"units": 1, "activation": kind, "activation_param": float(param)},
            "weights": {"kernel": kernel, "bias": bias}}


# The layer descriptions the Python layers send, and the model's parameter count: the plan level, so every kind
# of cpp/model/layers/ these use runs on the backend under test.
CNNS = {
    # (7, 6, 2) images: Conv2D 3x3 'same' relu (L2 on its kernel), MaxPooling2D 2x2 'same', Conv2D 2x2 tanh,
    # AveragePooling2D 2x2 stride 1, Reshape, Dense sigmoid
    "2d": ((7, 6, 2), [_conv("conv_a", (7, 6, 2), 4, (3, 3), "same", "relu", 0, 72, l2=1e-3),
                       _pool("max", (7, 6, 4), "max", (2, 2), (2, 2), "same"),
                       _conv("conv_b", (4, 3, 4), 3, (2, 2), "valid", "tanh", 76, 124),
                       _pool("average", (3, 2, 3), "average", (2, 2), (1, 1)),
                       {"kind": "Reshape", "name": "reshape", "input_shape": [2, 1, 3], "numbers": {},
                        "lists": {"target_shape": [6]}},
                       _head((6,), 127, 133)], 134),
    # (9, 3) sequences: Conv1D causal, kernel 3, dilation 2, elu; AveragePooling1D 2 'same' stride 1;
    # GlobalMaxPooling1D; Dense sigmoid
    "1d": ((9, 3), [_conv("conv", (9, 3), 4, (3,), "causal", "elu", 0, 36, dilation=[2]),
                    _pool("average", (9, 4), "average", (2,), (1,), "same"),
                    _pool("global_max", (9, 4), "max"),
                    _head((4,), 40, 44)], 45),
}


def _train_cnn(device, name, x, y, epochs):
    """Adam, binary cross-entropy, batches of 8: the losses, the weights and the predictions after `epochs`."""
    _, layers, n = CNNS[name]
    return train_plan(device, layers, n, x, y, epochs, batch=8)


@pytest.mark.parametrize("name", sorted(CNNS))
def test_a_small_cnn_trains_on_the_gpu_as_on_the_cpu(rng, name):
    x = rng.standard_normal((16,) + CNNS[name][0]).astype(np.float32)
    y = (x[..., 0].mean(axis=tuple(range(1, x.ndim - 1))) > 0).astype(np.float32)[:, None]
    cpu_loss, cpu_w, cpu_p = _train_cnn("cpu", name, x, y, 3)
    gpu_loss, gpu_w, gpu_p = _train_cnn("cuda", name, x, y, 3)
    np.testing.assert_allclose(gpu_loss, cpu_loss, rtol=1e-4)
    np.testing.assert_allclose(gpu_w, cpu_w, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(gpu_p, cpu_p, rtol=1e-3, atol=1e-5)
    assert cpu_loss[-1] < cpu_loss[0]  # it learns
    again_loss, again_w, _ = _train_cnn("cuda", name, x, y, 3)
    np.testing.assert_array_equal(again_loss, gpu_loss)  # a GPU run repeats bit for bit
    np.testing.assert_array_equal(again_w, gpu_w)

"""The int8 Dense on the GPU (cuda/qgemm.cu, __dp4a) against its CPU twin (cpu/qgemm.cpp): the same per-row
quantization and exact int32 sums, so the same outputs (bit for bit with relu or none; the CPU's activations
to float rounding otherwise), at sizes around the 16 x 16 tiles and the groups of 4, with and without bias;
outputs are poisoned with NaN first so an element the kernel fails to write shows."""
import numpy as np
import pytest

from gradsmith import cuda, ops

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not cuda.is_available(), reason=f"no CUDA device: {cuda.unavailable_reason()}")]


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 7), (16, 64, 16), (17, 67, 33), (40, 130, 10)])
@pytest.mark.parametrize("activation", ["linear", "relu", "tanh", "softmax"])
@pytest.mark.parametrize("with_bias", [True, False])
def test_int8_dense_on_the_gpu_matches_the_cpu(rng, m, k, n, activation, with_bias):
    x = (rng.standard_normal((m, k)) * rng.uniform(0.01, 10, (m, 1))).astype(np.float32)
    x[0, 0] = 0.0
    kernel = ops.QuantizedKernel(rng.integers(-127, 128, (k, n)).astype(np.int8))
    scale = rng.uniform(1, 300, n).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32) if with_bias else None
    want = ops.quantized_dense_forward(x, kernel, scale, bias, activation)
    out = cuda.DeviceArray.from_numpy(np.full((m, n), np.nan, np.float32))
    got = ops.quantized_dense_forward(cuda.DeviceArray.from_numpy(x), kernel, scale, bias, activation, out=out)
    assert got is out
    if activation in ("linear", "relu"):
        np.testing.assert_array_equal(got.numpy(), want)
    else:
        np.testing.assert_allclose(got.numpy(), want, rtol=2e-6, atol=1e-7)


def test_int8_dense_on_the_gpu_checks_shapes(rng):
    kernel = ops.QuantizedKernel(np.ones((4, 3), np.int8))
    x = cuda.DeviceArray.from_numpy(np.ones((2, 5), np.float32))
    with pytest.raises(ValueError, match="features"):
        ops.quantized_dense_forward(x, kernel, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="kernel_scale"):
        ops.quantized_dense_forward(cuda.DeviceArray.from_numpy(np.ones((2, 4), np.float32)), kernel,
                                    np.ones(4, np.float32))

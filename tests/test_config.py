"""gradsmith.config: devices and matmul precision."""
import pytest

import gradsmith
from gradsmith import config, cuda


def test_cpu_is_the_default_and_parses():
    assert config.get_default_device() == "cpu"
    assert config.parse_device("cpu") == ("cpu", 0) and config.parse_device(" CPU ") == ("cpu", 0)


@pytest.mark.parametrize("spec, error", [("tpu", ValueError), ("cuda:x", ValueError), ("cpu:1", ValueError),
                                         (0, TypeError), (None, TypeError)])
def test_bad_devices_are_explained(spec, error):
    with pytest.raises(error):
        config.parse_device(spec)


@pytest.mark.skipif(cuda.is_available(), reason="a GPU is present")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "gpu"])
def test_asking_for_cuda_without_it_gives_the_reason(spec):
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        config.parse_device(spec)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        config.set_default_device(spec)
    model = gradsmith.Sequential([gradsmith.layers.Dense(1, input_shape=(2,))])
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        model.compile(optimizer="sgd", loss="mse", device=spec)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        with gradsmith.device(spec):
            pass
    assert config.get_default_device() == "cpu"  # nothing changed


def test_device_context_restores_the_default():
    with gradsmith.device("cpu") as name:
        assert name == "cpu" and config.get_default_device() == "cpu"
    model = gradsmith.Sequential([gradsmith.layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer="sgd", loss="mse", device="cpu")
    assert model.device == "cpu"


def test_matmul_precision_is_checked():
    assert config.get_matmul_precision() == "highest"
    config.set_matmul_precision("tf32")
    try:
        assert config.get_matmul_precision() == "tf32"
    finally:
        config.set_matmul_precision("highest")
    with pytest.raises(ValueError, match="highest, tf32, bf16"):
        config.set_matmul_precision("fp8")

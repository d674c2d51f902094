"""The CUDA emulator's own checks (GRADSMITH_CUDA=EMULATE builds only): test-only kernels with planted bugs
(cpp/cuda/emulator/test_kernels.cu) must be caught, each with the kernel's name in the error."""
import numpy as np
import pytest

from gradsmith import _core, cuda

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not getattr(_core, "cuda_emulated", False),
                                 reason="needs the emulated CUDA build (GRADSMITH_CUDA=EMULATE)")]


@pytest.fixture
def settings():
    """Change the emulator's settings for one test, then put them back."""
    before = _core.cuda_emulator_settings()
    yield _core.cuda_emulator_configure
    _core.cuda_emulator_configure(**before)


def _run(name, x):
    return np.asarray(_core.cuda_emulator_test_kernel(name, np.asarray(x, np.float32).tolist()), np.float32)


def test_the_emulated_device_says_what_it_is():
    assert cuda.is_available() and cuda.device_count() == 1
    assert "emulator" in cuda.get_device_name(0)
    free, total = cuda.mem_get_info()
    assert total == _core.cuda_emulator_settings()["memory_bytes"] and 0 < free <= total


def test_a_correct_block_reduction_sums_in_every_thread_order(settings):
    x = np.arange(256, dtype=np.float32)
    for seed in (0, 1, 2, 3):
        settings(shuffle_seed=seed)
        assert _run("tree_sum", x)[0] == x.sum()


def test_a_missing_barrier_gives_wrong_and_varying_sums_when_threads_are_shuffled(settings):
    x = np.arange(256, dtype=np.float32)
    sums = set()
    for seed in range(1, 6):
        settings(shuffle_seed=seed)
        sums.add(float(_run("tree_sum_no_barrier", x)[0]))
    assert x.sum() not in sums and len(sums) > 1, sums


def test_an_out_of_bounds_write_fails_naming_the_kernel():
    with pytest.raises(RuntimeError, match="write_past_end_kernel wrote outside device memory"):
        _run("write_past_end", np.ones(100))
    _run("tree_sum", np.ones(256))  # reported once: the next launch is clean


def test_a_divergent_barrier_fails_naming_the_kernel():
    with pytest.raises(RuntimeError, match="early_return_kernel.*divergent __syncthreads"):
        _run("early_return", np.ones(256))


def test_a_host_pointer_given_to_a_kernel_fails_naming_the_kernel():
    with pytest.raises(RuntimeError, match="copy_kernel: pointer argument 0 .* is not device memory"):
        _run("host_pointer", np.ones(10))


def test_a_misaligned_vector_load_fails_naming_the_kernel():
    with pytest.raises(RuntimeError, match="misaligned address.*misaligned_load_kernel"):
        _run("misaligned_load", np.ones(64))


def test_shared_memory_starts_as_nan():
    y = _run("unwritten_shared", np.zeros(256))
    assert (y[0::2] == 1).all() and np.isnan(y[1::2]).all()


def test_new_device_memory_is_poisoned(settings):
    settings(poison=True)
    assert np.isnan(cuda.DeviceArray([5]).numpy()).all()


def test_the_memory_limit_gives_out_of_memory(settings):
    settings(memory_bytes=64 << 20)
    cuda.empty_cache()
    with pytest.raises(MemoryError, match="out of memory"):
        cuda.DeviceArray([32 << 20])  # 128 MiB of float32
    cuda.DeviceArray([1 << 20])  # 4 MiB still fits


def test_a_missing_event_wait_shows_when_streams_are_deferred(settings):
    x = np.arange(1, 100, dtype=np.float32)
    settings(defer_streams=True)
    results = [_run("staged_copy_missing_wait", x) for _ in range(20)]
    assert any(np.isnan(r).all() for r in results)  # the kernel read the buffer before the copy landed
    for _ in range(20):
        np.testing.assert_array_equal(_run("staged_copy", x), x)

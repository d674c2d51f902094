"""Training with device='cuda', run here with the GPU plan replaced by a stand-in.

The stand-in keeps its own copies of the weights, gradients and optimizer
state (the "device" memory) and runs the CPU plan on them, with the CUDA
plan's interface: upload / download, staged train_steps, a dataset kept on the
device and gathered in each epoch's order, test_step, predict, output. With
it, a model compiled for 'cuda' must train to bit-identical weights, optimizer
state and logs as the same model on the CPU, which checks the host side of
GPU training on any machine: when weights cross between host and device
(per epoch, around a step, before callbacks read them), that the shuffles are
the CPU's, that a failed run leaves the host as it was. tests/cuda checks the
CUDA kernels themselves where a GPU is present.
"""
import numpy as np
import pytest

import gradsmith as keras
from gradsmith import _core, config, cuda

layers = keras.layers


class StandInDevicePlan:
    """_core.CudaRunner's interface over the CPU plan and private copies of the buffers."""

    instances = []

    def __init__(self, layer_specs, loss, optimizer, params, grads, trainable, slots, metrics):
        self.host_params, self.host_slots = params, slots
        self.params, self.grads = params.copy(), grads.copy()
        self.slots = [None if s is None else s.copy() for s in slots]
        self.plan = _core.CpuRunner(layer_specs, loss, optimizer, self.params, self.grads, trainable,
                                       self.slots, metrics)
        self.sparse = loss["kind"] == keras.ops._SPARSE
        self.dataset = None
        self.uploads = self.downloads = 0
        self.fail_after = None  # steps before a simulated device error
        StandInDevicePlan.instances.append(self)

    def upload(self):
        self.uploads += 1
        self.params[...] = self.host_params
        for d, h in zip(self.slots, self.host_slots):
            if d is not None:
                d[...] = h

    def download(self):
        self.downloads += 1
        self.host_params[...] = self.params
        for d, h in zip(self.slots, self.host_slots):
            if d is not None:
                h[...] = d

    def _tick(self, steps):
        if self.fail_after is not None:
            self.fail_after -= steps
            if self.fail_after < 0:
                raise RuntimeError("simulated device failure")

    def train_step(self, x, y, labels, sw, lr, step, output=False):
        result = self.plan.train_step(x, y, labels, sw, lr, step, output=output)
        self._tick(1)  # a failure found when the results come back: the steps ran on the "device"
        return result

    def train_steps(self, x, y, labels, sw, batch_size, lrs, first_step):
        result = self.plan.train_steps(x, y, labels, sw, batch_size, lrs, first_step)
        self._tick(len(lrs))
        return result

    def set_dataset(self, x, y, labels, sw):
        self.dataset = (x.copy(), None if y is None else y.copy(), None if labels is None else labels.copy(),
                        None if sw is None else sw.copy())

    def train_steps_resident(self, order, batch_size, lrs, first_step):
        x, y, labels, sw = (None if a is None else np.ascontiguousarray(a[order]) for a in self.dataset)
        return self.train_steps(x, y, labels, sw, batch_size, lrs, first_step)

    def test_step(self, x, y, labels, sw, output=False):
        return self.plan.test_step(x, y, labels, sw, output=output)

    def predict(self, x):
        return self.plan.predict(x)

    def output(self):
        return self.plan.output()


@pytest.fixture
def stand_in(monkeypatch):
    """'cuda' compiles with the stand-in plan."""
    StandInDevicePlan.instances = []
    # raising=False: a build without CUDA (a sanitizer build) has no CudaRunner to replace
    monkeypatch.setattr(_core, "CudaRunner", StandInDevicePlan, raising=False)
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "device_count", lambda: 1)
    return StandInDevicePlan


def _model(device, loss="sparse_categorical_crossentropy", optimizer="adam", dropout=0.25, metrics=("accuracy",)):
    keras.utils.set_random_seed(3)
    out = 1 if loss == "binary_crossentropy" else 4
    model = keras.Sequential([layers.Input((7,)), layers.Dense(16, activation="relu",
                                                               kernel_regularizer=keras.regularizers.l2(1e-3)),
                              layers.Dropout(dropout), layers.Dense(out, activation="sigmoid" if out == 1 else
                                                                    "softmax")])
    model.compile(optimizer=optimizer, loss=loss, metrics=list(metrics), device=device)
    return model


def _data(n=203):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 7)).astype(np.float32)
    labels = (np.abs(x[:, :2]).sum(1) * 3).astype(np.int64) % 4
    return x, labels


def _same(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    for va, vb in zip(a.optimizer.variables, b.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(va), np.asarray(vb))


@pytest.mark.parametrize("verbose", [0, 1])
@pytest.mark.parametrize("resident", [True, False])
def test_fit_on_the_device_matches_the_cpu(stand_in, monkeypatch, capsys, verbose, resident):
    if not resident:  # a dataset too large for the device: each epoch's batches are staged
        monkeypatch.setattr(stand_in, "set_dataset", lambda self, *a: (_ for _ in ()).throw(MemoryError("full")))
    x, labels = _data()
    histories, models = [], []
    for device in ("cpu", "cuda"):
        model = _model(device)
        keras.utils.set_random_seed(9)
        histories.append(model.fit(x, labels, batch_size=16, epochs=3, validation_split=0.2,
                                   verbose=verbose).history)
        models.append(model)
    capsys.readouterr()
    assert models[1]._plan.on_device and not models[0]._plan.on_device
    assert histories[0] == histories[1]
    _same(*models)
    plan = stand_in.instances[0]
    assert (plan.dataset is not None) == resident
    # one upload per epoch and per validation pass, one download per epoch: never per batch
    assert plan.downloads == 3 and plan.uploads == 6
    np.testing.assert_array_equal(models[0].predict(x, verbose=0), models[1].predict(x, verbose=0))
    assert models[0].evaluate(x, labels, verbose=0) == models[1].evaluate(x, labels, verbose=0)


def test_callbacks_with_batch_hooks_see_the_trained_weights(stand_in):
    x, labels = _data()
    seen = {"cpu": [], "cuda": []}
    for device in ("cpu", "cuda"):
        model = _model(device)
        cb = keras.callbacks.LambdaCallback(
            on_batch_end=lambda b, logs, d=device, m=model: seen[d].append(m.get_weights()[0].sum()),
            on_epoch_end=lambda e, logs, d=device, m=model: seen[d].append(m.get_weights()[1].sum()))
        keras.utils.set_random_seed(9)
        model.fit(x, labels, batch_size=32, epochs=2, verbose=0, callbacks=[cb])
    assert seen["cpu"] == seen["cuda"] and len(seen["cpu"]) == 2 * 7 + 2


def test_train_on_batch_and_schedules_on_the_device(stand_in):
    x, labels = _data(64)
    results = []
    for device in ("cpu", "cuda"):
        schedule = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=2, decay_rate=0.5)
        model = _model(device, optimizer=keras.optimizers.SGD(schedule, momentum=0.9))
        results.append([model.train_on_batch(x[i:i + 16], labels[i:i + 16]) for i in range(0, 64, 16)])
        keras.utils.set_random_seed(2)
        results.append(model.fit(x, labels, batch_size=8, epochs=2, verbose=0).history)
        results.append(model.optimizer.iterations)
    assert results[:3] == results[3:]


def test_weights_set_between_calls_reach_the_device(stand_in):
    x, labels = _data(64)
    cpu_model, gpu_model = _model("cpu"), _model("cuda")
    for model in (cpu_model, gpu_model):
        keras.utils.set_random_seed(1)
        model.fit(x, labels, epochs=1, verbose=0)
        model.set_weights([w * 0.5 for w in model.get_weights()])
        keras.utils.set_random_seed(1)
        model.fit(x, labels, epochs=1, verbose=0)
    _same(cpu_model, gpu_model)


def test_a_failed_device_run_leaves_the_host_as_it_was(stand_in):
    """The device ran the steps (weights, optimizer state and Dropout counters moved there), then the run
    failed: the host keeps the weights, the step count and the mask counters it had."""
    x, labels = _data(64)
    model = _model("cuda")
    model.fit(x, labels, epochs=1, verbose=0)
    for run in (lambda: model.fit(x, labels, epochs=1, verbose=0), lambda: model.train_on_batch(x, labels)):
        before, iterations = model.get_weights(), model.optimizer.iterations
        calls = int(model.layers[1]._calls[0])
        stand_in.instances[0].fail_after = 0
        with pytest.raises(RuntimeError, match="simulated device failure"):
            run()
        stand_in.instances[0].fail_after = None
        for a, b in zip(before, model.get_weights()):
            np.testing.assert_array_equal(a, b)
        assert model.optimizer.iterations == iterations and int(model.layers[1]._calls[0]) == calls


def test_a_model_the_gpu_plan_cannot_take_warns_and_trains_on_the_cpu(stand_in):
    x, labels = _data(64)
    model = _model("cuda", optimizer=keras.optimizers.Adam(use_ema=True))
    with pytest.warns(RuntimeWarning, match="trains on the CPU"):
        model.fit(x, labels, epochs=1, verbose=0)
    assert model._plan is None and "EMA" in model._plan_reason


def test_only_cuda_0_trains(stand_in, monkeypatch):
    monkeypatch.setattr(cuda, "device_count", lambda: 2)
    with pytest.raises(ValueError, match="cuda:0"):
        _model("cuda:1")

"""The compiled training step: a whole ``train_step`` as ONE call into C++.

When every part of a compiled model has a kernel (every layer has a compiled
form: ``Layer._compiled_config``, a kind of cpp/model/layers/; a built-in loss
with Keras's default reduction; SGD, Adam, AdamW, RMSprop, Adagrad, Adamax or
Lion without EMA, gradient accumulation, loss scaling or weight-decay
exclusions; L1/L2 regularizers), ``model.fit`` and ``train_on_batch`` run each
step through ``_core.CpuRunner`` (cpp/bindings/cpu_runner.cpp, which runs
model::Plan, cpp/model/plan.h): forward, loss, accuracy counts, backward,
penalties and the fused optimizer update with no Python in between; ``fit``
hands it whole epochs of array data when no callback needs batch hooks, and
``evaluate`` / ``predict`` use its forward pass once training has built it.
Anything else takes the layer-by-layer Python path, which calls the same
kernels one at a time; both give bit-identical weights.

``build(model)`` returns a CompiledStep, or None with the reason kept in
``model._plan_reason`` (handy when asking why a model is slow).

A model compiled with ``device='cuda'`` gets the same step on the GPU
(``_core.CudaRunner``, cpp/cuda/cuda_runner.h). The weights and optimizer
state the model shows (get_weights, save) stay in host memory; the runner
mirrors them on the device. ``session()`` uploads them once, runs any number
of steps on the device, and copies them back at the end: fit opens one per
epoch, evaluate and predict one per call. A step outside a session copies them
both ways itself.
"""
import contextlib

import numpy as np

from gradsmith import _core, layers as L, losses, metrics as M, ops, optimizers as O, pruning

__all__ = ["CompiledStep", "build"]

_COUNT_BINARY, _COUNT_CATEGORICAL, _COUNT_SPARSE = (_core.kinds.counts[k] for k in ("binary", "categorical", "sparse"))
_MAX_COUNTED = 8  # metric counts one step returns (the binding's limit)


_NO_SESSION = contextlib.nullcontext()


class _NotPlannable(Exception):
    """Raised while building: this model takes the Python path (the message says why)."""


def _layer_configs(model, params):
    """Each layer's description for the C++ plan (``layer._compiled_config``), with its kind, name and
    per-sample input shape; the model's output must be (batch, features) for the loss kernels. A model
    used as a layer contributes its own layers, in order (``_leaf_layers``): its weights are views of
    this model's buffer like the others'."""
    shape = tuple(model._input_layer.shape)
    base = params.__array_interface__["data"][0]

    def offset(array):
        return (array.__array_interface__["data"][0] - base) // 4

    configs, transforms = [], []
    for layer in model._leaf_layers():
        if not configs and getattr(layer, "_input_transform", False):
            transforms.append(layer)  # a fixed function of the input (Rescaling, ...): applied before the plan
            shape = layer.compute_output_shape(shape)
            continue
        if any(d is None for d in shape[1:]):
            raise _NotPlannable(f"layer {layer.name!r} sees inputs of shape {shape}, not known in full")
        try:
            config = layer._compiled_config(tuple(int(d) for d in shape[1:]), offset)
        except L.NoCompiledForm as e:
            raise _NotPlannable(str(e)) from None
        if config["kind"] not in _core.kinds.layers:
            raise _NotPlannable(f"layer {layer.name!r}: the compiled step has no layer kind {config['kind']!r}")
        configs.append({**config, "name": layer.name, "input_shape": [int(d) for d in shape[1:]]})
        shape = layer.compute_output_shape(shape)
    if not configs or len(shape) < 2 or any(d is None for d in shape[1:]):
        raise _NotPlannable(f"the model's output has shape {shape}: the compiled step's losses take (batch, n)")
    return configs, transforms, tuple(int(d) for d in shape[1:])


def _loss_spec(loss, loss_weight):
    if not isinstance(loss, losses.LossFunctionWrapper) or type(loss).value_and_grad is not losses.Loss.value_and_grad \
            or type(loss).call is not losses.LossFunctionWrapper.call:
        raise _NotPlannable(f"loss {type(loss).__name__} has no kernel")
    spec = loss._kernel_spec()
    if spec is None or loss.reduction != "sum_over_batch_size":
        raise _NotPlannable(f"loss {loss.name!r} with reduction {loss.reduction!r} has no kernel")
    kernel, kwargs = spec
    if kwargs.get("ignore_class") is not None:
        raise _NotPlannable("ignore_class has no kernel")
    if ops._LOSS_KINDS[kernel] in ops._HINGES:
        raise _NotPlannable("hinge losses check each batch's labels (0/1 or -1/1) in Python")
    return {"kind": ops._LOSS_KINDS[kernel], "from_logits": bool(kwargs.get("from_logits", False)),
            "label_smoothing": float(kwargs.get("label_smoothing", 0.0)), "delta": float(kwargs.get("delta", 1.0)),
            "weight": float(loss_weight)}


# Which slot buffer the kernel reads as state 0, 1, 2 (cpu::OptimizerArgs s0, s1, s2).
_SLOTS = {O.SGD: ("momentum", None, None), O.Adam: ("momentum", "velocity", "velocity_hat"),
          O.AdamW: ("momentum", "velocity", "velocity_hat"),
          O.RMSprop: ("velocity", "momentum", "average_gradient"), O.Adagrad: ("accumulator", None, None),
          O.Adamax: ("momentum", "norm", None), O.Lion: ("momentum", None, None)}
_KINDS = {O.SGD: ops._SGD, O.Adam: ops._ADAM, O.AdamW: ops._ADAM, O.RMSprop: ops._RMSPROP, O.Adagrad: ops._ADAGRAD,
          O.Adamax: ops._ADAMAX, O.Lion: ops._LION}


def _optimizer_spec(opt, trainable, params):
    if type(opt) not in _SLOTS:
        raise _NotPlannable(f"optimizer {type(opt).__name__} has no fused kernel in the plan")
    if opt.use_ema or opt.gradient_accumulation_steps or opt.loss_scale_factor is not None \
            or opt._exclude_ids or opt._exclude_names is not None:
        raise _NotPlannable("EMA, gradient accumulation, loss scaling and weight-decay exclusions run in Python")
    shapes = [w.shape for w in trainable]
    if not opt.built:
        opt.build([w.value for w in trainable])
    elif opt._shapes != shapes:
        raise _NotPlannable("the optimizer was built for other variables")
    clip = {"clipnorm": None, "clipvalue": None, "global_clipnorm": None, **opt._clip()}
    clip_kind, clip = ops._clip(**clip)
    # Trainable weights as (parameter offset, slot offset, size) runs. Neighbours merge into one run
    # (one long pass), except under clipnorm, which Keras applies to each weight by its own norm.
    base = params.__array_interface__["data"][0]
    ranges, slot = [], 0
    for w in trainable:
        start = (w.value.__array_interface__["data"][0] - base) // 4
        if ranges and clip_kind != ops._CLIP_NORM and ranges[-1][0] + ranges[-1][2] == start \
                and ranges[-1][1] + ranges[-1][2] == slot:
            ranges[-1][2] += w.size
        else:
            ranges.append([start, slot, w.size])
        slot += w.size
    slots = [opt._slots[name][0] if name in opt._slots else None for name in _SLOTS[type(opt)]]
    spec = {"kind": _KINDS[type(opt)], "weight_decay": float(opt.weight_decay or 0.0),
            "momentum": float(getattr(opt, "momentum", 0.0)), "beta_1": float(getattr(opt, "beta_1", 0.9)),
            "beta_2": float(getattr(opt, "beta_2", 0.999)), "epsilon": float(getattr(opt, "epsilon", 1e-7)),
            "rho": float(getattr(opt, "rho", 0.9)), "nesterov": bool(getattr(opt, "nesterov", False)),
            "clip_kind": clip_kind, "clip": float(clip)}
    return spec, [tuple(r) for r in ranges], slots


def _metric_split(model, sparse, out):
    """Metrics whose update is a correct-count the plan makes, and the rest (updated in Python)."""
    counted, other = [], []
    for m in model.compiled_metrics:
        kind = None
        if type(m) is M.BinaryAccuracy and not sparse:
            kind = (_COUNT_BINARY, float(np.float32(m.threshold)))
        elif type(m) is M.CategoricalAccuracy and not sparse:
            kind = (_COUNT_CATEGORICAL, 0.0)
        elif type(m) is M.SparseCategoricalAccuracy and sparse and out > 1:
            kind = (_COUNT_SPARSE, 0.0)
        if kind is not None and len(counted) < _MAX_COUNTED:
            counted.append((m, kind))
        else:
            other.append(m)
    return counted, other


class CompiledStep:
    """A model's steps through ``_core.CpuRunner`` (or ``CudaRunner``): ``run`` (one training step), ``run_epoch`` (a
    whole epoch of arrays in one call), ``test`` (evaluate's step) and ``predict``. Each returns None for
    data the plan does not take, and the caller then uses the layer-by-layer Python path."""

    def __init__(self, model):
        params = model.parameters
        model._resolve_metrics()
        configs, self._transforms, self.out_shape = _layer_configs(model, params)
        self.out = int(np.prod(self.out_shape))
        trainable = model._trainable()
        if not trainable:
            raise _NotPlannable("no trainable weights")
        loss = _loss_spec(model.loss, model.loss_weight)
        self.sparse = loss["kind"] == ops._SPARSE
        if len(self.out_shape) != 1 and not self.sparse:
            raise _NotPlannable(f"the model's output has shape {(None,) + self.out_shape}: the compiled step's "
                                "losses take (batch, n), the sparse cross-entropy also (batch, ..., classes)")
        # The sparse loss over a time axis: outputs (T, classes) take labels (batch, T), one per step; the
        # plan's loss and counts run over batch * T rows (Keras: the mean over batch and time).
        self.label_width = self.out // self.out_shape[-1] if self.sparse and self.out else 1
        self.classes = self.out // self.label_width
        opt_spec, ranges, slots = _optimizer_spec(model.optimizer, trainable, params)
        self.counted, self.other = _metric_split(model, self.sparse, self.classes)
        self.weighted = model.compiled_weighted_metrics
        self.input_shape = tuple(model._input_layer.shape[1:])
        self.in_features = int(np.prod(self.input_shape, dtype=np.int64))
        # An Embedding first: its ids must reach the plan's float32 rows exactly (whole numbers below 2^24)
        self._exact_inputs = bool(getattr(model._first_layer(), "_takes_ids", False))
        self.optimizer = model.optimizer
        self.on_device = getattr(model, "device", "cpu") != "cpu"
        runner = _core.CudaRunner if self.on_device else _core.CpuRunner
        self.plan = runner(configs, loss, opt_spec, params, model.gradients, ranges, slots,
                               [kind for _, kind in self.counted])
        self.refresh_keep(model)
        self._in_session = False
        self._dropout_calls = [c["counter"] for c in configs if c.get("counter") is not None]
        self._dataset_of = None  # the ArrayBatches whose rows are on the device (train_epoch_resident)

    def refresh_keep(self, model):
        """Hand the plan the model's pruning masks (gradsmith.pruning), laid out as its parameters, or none."""
        self._keep = pruning.keep_array(model, model._parameters)
        if self._keep is not None or getattr(self, "_had_keep", False):
            self.plan.set_keep(self._keep)
            self._had_keep = self._keep is not None

    def session(self, training=True):
        """On the device: the host weights and optimizer state uploaded once for the block, and (training)
        copied back at its end. If the block fails, the host keeps the weights it had before it, and the
        optimizer's step count and the Dropout layers' mask counters are put back. On the CPU (or inside a session), nothing to do."""
        if not self.on_device or self._in_session:
            return _NO_SESSION
        return self._device_session(training)

    @contextlib.contextmanager
    def _device_session(self, training):
        iterations = self.optimizer._iterations
        calls = [int(c[0]) for c in self._dropout_calls]
        self.plan.upload()
        self._in_session = True
        try:
            yield
        except BaseException:
            self.optimizer._iterations = iterations
            for counter, value in zip(self._dropout_calls, calls):
                counter[0] = value
            raise
        else:
            if training:
                self.plan.download()
        finally:
            self._in_session = False

    def _targets(self, y, n):
        """y as the plan takes it: int64 labels (n,) for the sparse loss, else float32 (n, out); None when
        the batch needs the Python path (its checks and messages, or shapes only it handles)."""
        if y is None:
            return None
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            return None
        if self.sparse:
            lead = self.out_shape[:-1]
            if y.shape == (n,) + lead + (1,):
                y = y.reshape((n,) + lead)
            if y.shape != (n,) + lead:
                return None
            y = y.reshape(n * self.label_width)
            if y.dtype.kind == "u" and y.size and y.max() >= self.classes:
                return None  # e.g. 2**64 - 1, which int64 reads as -1: the Python path names the label as given
            if y.dtype.kind != "i" or y.dtype != np.int64:
                if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
                    return None  # NaN or infinite labels: the Python path explains
                labels = y.astype(np.int64)
                if y.dtype.kind == "f" and not np.array_equal(labels, y):
                    return None  # non-integral labels: the Python path explains
                y = labels
            return np.ascontiguousarray(y)
        t = np.ascontiguousarray(y, dtype=np.float32)
        if t.shape == (n,) and self.out == 1:
            t = t.reshape(n, 1)
        return t if t.shape == (n, self.out) else None

    def _inputs(self, x, training=False):
        """x as the plan's (n, features) float32 rows, or None for the Python path. The model's leading input
        transforms run first (random augmentation only when ``training``)."""
        x = np.asarray(x)
        if x.dtype.kind not in "biuf" or x.ndim < 2 or x.shape[1:] != self.input_shape or len(x) == 0:
            return None
        rows = np.ascontiguousarray(x, dtype=np.float32)
        if self._exact_inputs and x.dtype != np.float32 and not np.array_equal(rows, x):
            return None  # ids float32 cannot hold (above 2^24, or fractions it rounds away): the Python path explains
        for layer in self._transforms:  # the model's leading input transforms, as the layer-by-layer path runs them
            rows = np.ascontiguousarray(layer.forward(rows, training=training), dtype=np.float32)
        return rows.reshape(len(x), self.in_features)

    def _batch(self, x, y, sample_weight, training=False):
        """(x, targets, sample weights) as the plan takes them, or None for the Python path."""
        x = self._inputs(x, training)
        if x is None:
            return None
        n = len(x)
        t = self._targets(y, n)
        if t is None:
            return None
        sw = None
        if sample_weight is not None:
            sw = np.asarray(sample_weight)
            if sw.dtype.kind not in "biuf" or sw.shape not in ((n,), (n, 1)):
                return None
            sw = np.ascontiguousarray(sw, dtype=np.float32).reshape(n)
            if self.label_width > 1:  # Keras broadcasts a sample's weight over its steps
                sw = np.repeat(sw, self.label_width)
        return x, t, sw

    def _update_metrics(self, counts, n, y, sample_weight, y_pred=None):
        """The counted metrics from the step's counts; the others from ``y_pred``, the step's predictions
        (a new array, which a metric may keep)."""
        for (m, (kind, _)), correct in zip(self.counted, counts):
            # Keras over a time axis: total += each sample's mean over its steps, count += samples
            m._add_counts(correct / self.out if kind == _COUNT_BINARY else correct / self.label_width, n)
        if y_pred is not None:
            y_pred = y_pred.reshape((len(y_pred),) + self.out_shape)
        if self.other or self.weighted:
            for m in self.other:
                m.update_state(y, y_pred)
            for m in self.weighted:
                m.update_state(y, y_pred, sample_weight=sample_weight)

    def run(self, x, y, sample_weight):
        """One training step: (loss, samples), or None for a batch the plan does not take."""
        batch = self._batch(x, y, sample_weight, training=True)
        if batch is None:
            return None
        xb, t, sw = batch
        opt = self.optimizer
        lr = float(opt._current_learning_rate())
        labels, t = (t, None) if self.sparse else (None, t)
        with self.session():
            if self.other or self.weighted:  # the predictions too, for the metrics counted in Python
                value, counts, y_pred = self.plan.train_step(xb, t, labels, sw, lr, opt._iterations + 1, True)
            else:  # positional arguments only: keywords cost a pybind11 call about a microsecond
                value, counts = self.plan.train_step(xb, t, labels, sw, lr, opt._iterations + 1)
                y_pred = None
            opt._iterations += 1
        self._update_metrics(counts, len(xb), y, sample_weight, y_pred)
        return value, len(xb)

    def gradients(self, x, y, sample_weight, scale=1.0, first_row=0, rank_sum=None, global_rows=0):
        """``run`` without the update (data-parallel training, gradsmith._data_parallel): the batch's
        gradients times ``scale`` left in the model's gradient buffer (Dropout drawing the masks of rows
        ``first_row``.. of the global batch; BatchNormalization's statistics over its ``global_rows`` rows,
        ``rank_sum`` summing over the ranks), the metrics updated with its rows; (loss, samples), or None for
        a batch the plan does not take. ``apply_gradients`` then makes the update."""
        if self.on_device:
            return None
        batch = self._batch(x, y, sample_weight)
        if batch is None:
            return None
        xb, t, sw = batch
        labels, t = (t, None) if self.sparse else (None, t)
        value, counts = self.plan.gradient_step(xb, t, labels, sw, scale, first_row, rank_sum, global_rows)
        y_pred = self.plan.output() if self.other or self.weighted else None
        self._update_metrics(counts, len(xb), y, sample_weight, y_pred)
        return value, len(xb)

    def apply_gradients(self):
        """The fused optimizer update from the model's gradient buffer as it is: ``run``'s second half."""
        opt = self.optimizer
        self.plan.apply_gradients(float(opt._current_learning_rate()), opt._iterations + 1)
        opt._iterations += 1

    def _epoch_lrs(self, steps):
        """The learning rate of each of the next ``steps`` steps, or None when it is a callable without a
        step (then the steps go one by one through Python)."""
        opt = self.optimizer
        lr = opt._learning_rate
        if callable(lr) and not isinstance(lr, O.schedules.LearningRateSchedule):
            return None
        start = opt._iterations
        if isinstance(lr, O.schedules.LearningRateSchedule):  # Keras: schedule(iterations) at each step
            return np.array([float(lr(start + s)) for s in range(steps)], dtype=np.float64)
        return np.full(steps, float(lr), dtype=np.float64)

    def _accumulate(self, values, counts, n, batch_size, loss_sum, count):
        """Each step's loss and counts onto the running sums, with the same float operations, in the same
        order, as the batch-by-batch loop."""
        for s in range(len(values)):
            rows = min(batch_size, n - s * batch_size)
            loss_sum += float(values[s]) * rows
            count += rows
            for (m, (kind, _)), correct in zip(self.counted, counts[s]):
                m._add_counts(int(correct) / self.out if kind == _COUNT_BINARY else int(correct) / self.label_width,
                              rows)
        return loss_sum, count

    def run_epoch(self, x, y, sample_weight, batch_size, loss_sum=0.0, count=0):
        """Every batch of (x, y, sample_weight) as one call into C++ (``train_steps``): (loss sum,
        samples) accumulated onto ``loss_sum`` and ``count`` as the batch-by-batch loop accumulates them,
        or None when a metric needs the predictions in Python or the learning rate is a callable without
        a step."""
        if self.other or self.weighted:
            return None
        batch = self._batch(x, y, sample_weight, training=True)
        if batch is None:
            return None
        xb, t, sw = batch
        if self.sparse and t.size and (t.min() < 0 or t.max() >= self.classes):
            return None  # a label out of range: step by step, the error names its batch as before
        n = len(xb)
        steps = (n + batch_size - 1) // batch_size
        lrs = self._epoch_lrs(steps)
        if lrs is None:
            return None
        opt = self.optimizer
        labels, t = (t, None) if self.sparse else (None, t)
        with self.session():
            values, counts = self.plan.train_steps(xb, t, labels, sw, int(batch_size), lrs, opt._iterations + 1)
            opt._iterations += steps
        return self._accumulate(values, counts, n, batch_size, loss_sum, count)

    def keep_on_device(self, batches):
        """Upload an ArrayBatches' rows to the device once (for ``run_epoch_resident``): True when they are
        there, False when they cannot be (not on a device, data the plan does not take, too large)."""
        if not self.on_device or self.other or self.weighted or self._transforms:
            return False
        if self._dataset_of is batches:
            return True
        batch = self._batch(batches.x, batches.y, batches.sample_weight)
        if batch is None:
            return False
        xb, t, sw = batch
        if self.sparse and t.size and (t.min() < 0 or t.max() >= self.classes):
            return False
        labels, t = (t, None) if self.sparse else (None, t)
        try:
            self.plan.set_dataset(xb, t, labels, sw)
        except MemoryError:  # gradsmith._core.CudaOutOfMemoryError: stage each epoch's batches instead
            self._dataset_of = None
            return False
        self._dataset_of = batches
        return True

    def run_epoch_resident(self, order, batch_size, loss_sum=0.0, count=0):
        """``run_epoch`` over the rows ``order`` of the dataset ``keep_on_device`` uploaded, gathered on the
        device: no batch crosses the bus. None when the learning rate needs Python at each step."""
        n = len(order)
        steps = (n + batch_size - 1) // batch_size
        lrs = self._epoch_lrs(steps)
        if lrs is None:
            return None
        opt = self.optimizer
        with self.session():
            values, counts = self.plan.train_steps_resident(np.ascontiguousarray(order, dtype=np.int64),
                                                            int(batch_size), lrs, opt._iterations + 1)
            opt._iterations += steps
        return self._accumulate(values, counts, n, batch_size, loss_sum, count)

    def test(self, x, y, sample_weight):
        """evaluate's step: (loss, samples), or None for the Python path; weights untouched."""
        batch = self._batch(x, y, sample_weight)
        if batch is None:
            return None
        xb, t, sw = batch
        labels, t = (t, None) if self.sparse else (None, t)
        with self.session(training=False):
            if self.other or self.weighted:
                value, counts, y_pred = self.plan.test_step(xb, t, labels, sw, True)
            else:
                value, counts = self.plan.test_step(xb, t, labels, sw)
                y_pred = None
        self._update_metrics(counts, len(xb), y, sample_weight, y_pred)
        return value, len(xb)

    def predict(self, x):
        """Predictions for a batch (a new array), or None for the Python path."""
        xb = self._inputs(x)
        if xb is None:
            return None
        with self.session(training=False):
            return self.plan.predict(xb).reshape((len(xb),) + self.out_shape)


def build(model):
    """A CompiledStep for the model, or None (the reason goes to ``model._plan_reason``)."""
    try:
        step = CompiledStep(model)
    except _NotPlannable as e:
        model._plan_reason = str(e)
        return None
    model._plan_reason = None
    return step

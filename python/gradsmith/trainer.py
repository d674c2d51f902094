"""The training loop: compile / fit / evaluate / predict and the *_on_batch calls (Keras 3's Trainer).

A model class inherits it (``class Sequential(Trainer)``, as Keras 3's
``class Model(Trainer, Layer)``) and gives it the model: ``built``,
``_layers``, ``_prepare_batch`` / ``_ensure_built_from`` (input checks and
building from a batch), ``_forward`` / ``_backward`` / ``_regularization``
(the math layer by layer) and ``_trainable`` (the weights the optimizer
updates).

From ``model.fit`` to a kernel: fit -> ``EpochIterator`` (gradsmith.epoch_iterator:
each epoch's data, drawn once) -> a whole epoch (or runs of batches between
progress-bar updates) through ``CompiledStep.run_epoch`` (gradsmith.compiled_step:
the C++ plan: forward, fused loss, backward, fused optimizer over the model's
one flat parameter buffer) -> callbacks. A model with a part that has no
kernel steps batch by batch through ``_python_train_step``:
    -> layer.forward for each layer        (ops.dense_forward: GEMM + bias + activation epilogue)
    -> loss.value_and_grad                 (ops.loss_and_grad: value and dL/dy_pred in one pass)
    -> layer.backward in reverse           (ops.dense_backward: fused f'(z), bias sums, two GEMMs)
    -> optimizer.apply                     (one fused ops.*_step over every trainable weight)
"""
import contextlib
import signal
import sys
import threading
import time
import warnings

import numpy as np

from gradsmith import _core, _data_parallel, callbacks as callbacks_mod, compiled_step, config, data_adapter, distribution
from gradsmith import epoch_iterator, losses, pruning
from gradsmith import metrics as metrics_mod, ops, optimizers, profiler
from gradsmith.losses.reduction import squeeze_or_expand_to_same_rank, y_pred_mask

__all__ = ["Trainer"]


class Trainer:
    """compile, fit, evaluate, predict, train_on_batch / test_on_batch / predict_on_batch, and the steps."""

    _dp = None  # inside fit / evaluate / predict under DataParallel on several ranks: the process group

    def __init__(self):
        self.optimizer = None
        self.loss = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self._compile_config = None
        self._plan = self._plan_key = None  # the compiled training step (gradsmith.compiled_step)
        self._plan_reason = None
        self._interrupts = _NO_DEFER  # fit's Ctrl-C guard (_DeferInterrupts)

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True, device=None):
        """Keras's compile, plus ``device``: 'cpu', 'cuda' or 'cuda:N' (default: gradsmith.config's
        default device). A CUDA device that cannot be used raises RuntimeError with the reason."""
        where = config.parse_device(device) if device is not None else config._state["device"]
        if where[0] == "cuda" and where[1] != 0:
            raise ValueError(f"device 'cuda:{where[1]}': models train on cuda:0 for now")
        self.device = "cpu" if where[0] == "cpu" else "cuda:0"

        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss) if loss is not None else None
        if loss_weights is not None and not isinstance(loss_weights, (int, float)):
            if isinstance(loss_weights, (list, tuple)) and len(loss_weights) == 1:
                loss_weights = loss_weights[0]
            else:
                raise ValueError("loss_weights: a Sequential model has one output; give one number")
        self.loss_weight = 1.0 if loss_weights is None else float(loss_weights)
        self._metric_ids = list(metrics or [])
        self._weighted_metric_ids = list(weighted_metrics or [])
        self.compiled_metrics = None  # resolved on first use, when the output shape is known
        self._plan = self._plan_key = None
        self.compiled = True
        self._compile_config = {
            "optimizer": optimizers.serialize(self.optimizer) if hasattr(optimizers, "serialize") else None,
            "loss": loss if isinstance(loss, str) else (losses.serialize(self.loss)
                                                         if hasattr(losses, "serialize") and self.loss else None),
            "metrics": [m for m in self._metric_ids if isinstance(m, str)],
            "loss_weights": loss_weights,
        }

    def get_compile_config(self):
        """compile's arguments as Keras 3 saves them (``compile_config`` of a ``.keras`` file)."""
        saved = self._compile_config or {}
        loss = saved.get("loss")
        if loss is None and self.loss is not None:
            loss = losses.serialize(self.loss)

        def metric_list(ids):
            if not ids:
                return None
            return [m if isinstance(m, (str, dict)) else metrics_mod.serialize(m) for m in ids]

        return {"optimizer": optimizers.serialize(self.optimizer) if self.optimizer is not None else None,
                "loss": loss,
                "loss_weights": saved.get("loss_weights"),
                "metrics": metric_list(getattr(self, "_metric_ids", None)),
                "weighted_metrics": metric_list(getattr(self, "_weighted_metric_ids", None)),
                "run_eagerly": False, "steps_per_execution": 1, "jit_compile": "auto"}

    def compile_from_config(self, config):
        """``compile(**config)`` from ``get_compile_config``'s dict (or Keras 3's), as Keras's
        ``compile_from_config``: names and serialized objects go to compile as they are (it resolves them
        as when a user passes them); an unknown metric fails here, not in the first fit."""
        def one_output(value, what):
            if isinstance(value, (list, tuple)) and what == "loss" or (isinstance(value, dict)
                                                                      and not _is_serialized(value)):
                raise ValueError(f"{what} {value!r}: a Sequential model has one output")
            return value

        def metric_list(value, what):
            if value is None:
                return None
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"{what} {value!r}: expected a list of metrics")
            # Keras writes a built-in metric function as {'class_name': 'function', 'config': name}: give
            # compile its name, as a user would (gradsmith's metrics resolve names of metric functions)
            return [m["config"] if _is_serialized(m) and m["class_name"] == "function" and isinstance(
                m.get("config"), str) else one_output(m, what) for m in value]

        optimizer = config.get("optimizer")
        self.compile(optimizer=optimizer if optimizer is not None else "rmsprop",
                     loss=one_output(config.get("loss"), "loss"), loss_weights=config.get("loss_weights"),
                     metrics=metric_list(config.get("metrics"), "metrics"),
                     weighted_metrics=metric_list(config.get("weighted_metrics"), "weighted_metrics"))
        self._resolve_metrics()

    def _resolve_metrics(self):
        if self.compiled_metrics is None:
            shape = self._layers[-1].output_shape if self._layers else None
            self.compiled_metrics = [metrics_mod.resolve(m, self.loss, shape) for m in self._metric_ids]
            self.compiled_weighted_metrics = [metrics_mod.resolve(m, self.loss, shape)
                                              for m in self._weighted_metric_ids]
        return self.compiled_metrics

    @property
    def metrics_names(self):
        self._resolve_metrics()
        return ["loss"] + [m.name for m in self.compiled_metrics + self.compiled_weighted_metrics]

    def _check_compiled(self, what):
        if not self.compiled:
            raise RuntimeError("You must call `compile()` before using the model.")
        if self.loss is None:
            raise ValueError(f"{what}: the model was compiled without a loss")

    # ------------------------------------------------------------------ steps
    def _plan_key_now(self):
        return (self.trainable, self.optimizer, self.loss, tuple(l.trainable for l in self._layers))

    def _compiled_step(self):
        """The model's C++ training step (gradsmith.compiled_step), rebuilt when what it was built from
        changes; None when some part has no kernel (then steps run layer by layer)."""
        self._claim_weights()  # a model sharing a layer may have moved the weights the plan points at
        key = self._plan_key_now()
        if self._plan_key != key:
            self._plan = compiled_step.build(self) if self.built else None
            self._plan_key = key if self.built else None
            if self.built and self._plan is None and self.device != "cpu":
                warnings.warn(f"model {self.name!r} trains on the CPU, not {self.device}: {self._plan_reason}",
                              RuntimeWarning, stacklevel=3)
        return self._plan

    def _existing_compiled_step(self):
        """The compiled step if training has built one that is still current, else None: evaluate and
        predict use it but never build one (building would build the optimizer, which Keras's evaluate
        does not)."""
        self._claim_weights()
        if self._plan is not None and self._plan_key == self._plan_key_now():
            return self._plan
        return None

    def _inference_session(self):
        """evaluate's and predict's batches share one upload of the weights when the model is on a GPU."""
        step = self._existing_compiled_step()
        return step.session(training=False) if step is not None else contextlib.nullcontext()

    def _train_step(self, x, y, sw):
        """One optimizer step on a batch; returns (loss value: weighted loss + regularization, samples)."""
        if self._dp is not None:  # fit under DataParallel: this rank's share, gradients summed over ranks
            return _data_parallel.train_step(self._dp, self, x, y, sw)
        if self._ensure_built_from(x):
            step = self._compiled_step()  # which claims back the weights a model sharing a layer took
            if step is not None:
                result = step.run(x, y, sw)
                if result is not None:
                    return result
        return self._python_train_step(x, y, sw)

    def _python_train_step(self, x, y, sw):
        """The same step layer by layer, one kernel call at a time (layers/ -> ops.py)."""
        if _core.profiler_enabled():
            with profiler.record_function("train_step"):
                return self._python_train_step_body(x, y, sw)
        return self._python_train_step_body(x, y, sw)

    def _python_train_step_body(self, x, y, sw):
        value, rows = self._python_gradients(x, y, sw)
        self._apply_gradients()
        return value, rows

    def _python_gradients(self, x, y, sw):
        """Forward, loss and backward layer by layer: the gradients in the model's buffer (w.grad views it) and
        the metrics updated; (loss value with the penalties, rows). Data-parallel training sums the gradients
        over the ranks before ``_apply_gradients``."""
        x, y, sw = self._prepare_batch(x, y, sw)
        y_pred = self._forward(x, training=True)
        value, grad = self._loss_and_grad(x, y, y_pred, sw, with_grad=True)
        self._backward(grad)
        value += self._regularization()  # Keras adds the penalties of the weights the step starts from
        self._update_metrics(y, y_pred, sw)
        return value, len(x)

    def _loss_and_grad(self, x, y, y_pred, sw, with_grad):
        """The compiled loss of a batch (times ``loss_weight``) and, with ``with_grad``, its gradient with
        respect to y_pred (else None). A model whose loss reads more than (y, y_pred) overrides this
        (gradsmith.Distiller)."""
        with y_pred_mask(self._output_mask):
            if not with_grad:
                return self.loss(y, y_pred, sample_weight=sw) * self.loss_weight, None
            value, grad = self.loss.value_and_grad(y, y_pred, sw)
        if self.loss_weight != 1.0:
            value *= self.loss_weight
            grad *= np.float32(self.loss_weight)
        return value, grad

    def _apply_gradients(self):
        """The fused optimizer update of the trainable weights from their gradients (the layer-by-layer path),
        pruned weights kept at zero (gradsmith.pruning)."""
        trainable = self._trainable()
        if trainable:
            self.optimizer.apply([w.grad for w in trainable], [w.value for w in trainable],
                                 keep=pruning.keep_masks(trainable))

    def _test_step(self, x, y, sw):
        if self._dp is not None:  # this rank's share of the batch; the logs sum over ranks
            return _data_parallel.test_step(self._dp, self, x, y, sw)
        return self._test_step_here(x, y, sw)

    def _test_step_here(self, x, y, sw):
        step = self._existing_compiled_step()
        if step is not None:
            result = step.test(x, y, sw)
            if result is not None:
                return result
        x, y, sw = self._prepare_batch(x, y, sw)
        y_pred = self._forward(x, training=False)
        value, _ = self._loss_and_grad(x, y, y_pred, sw, with_grad=False)
        self._update_metrics(y, y_pred, sw)
        return value + self._regularization(), len(x)

    def _update_metrics(self, y, y_pred, sw):
        mask = self._output_mask
        for m in self._resolve_metrics():
            m.update_state(y, y_pred, **_masked_weights(m, mask, None))
        for m in self.compiled_weighted_metrics:
            m.update_state(y, y_pred, **_masked_weights(m, mask, sw))

    def _reset_metrics(self):
        for m in self._resolve_metrics() + self.compiled_weighted_metrics:
            m.reset_state()

    def _logs(self, loss_sum, count, prefix="", local_loss=False):
        """The logs from the loss sum over ``count`` samples and the metrics. Under DataParallel, over every
        rank (a collective): the metric states summed, and with ``local_loss`` (evaluate) the loss sum too."""
        if self._dp is not None:
            return _data_parallel.reduce_logs(self._dp, self, loss_sum, count, prefix, local_loss)
        return self._logs_here(loss_sum, count, prefix)

    def _logs_here(self, loss_sum, count, prefix=""):
        logs = {prefix + "loss": float(loss_sum / count) if count else float("nan")}
        for m in self.compiled_metrics + self.compiled_weighted_metrics:
            r = m.result()
            logs[prefix + m.name] = float(r) if np.ndim(r) == 0 else np.asarray(r)
        return logs

    # ------------------------------------------------------------------ fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs; returns a History whose ``.history`` holds the per-epoch logs.

        Everything that can be checked before the first step is (arguments, array labels against the
        loss, validation arrays against the model), so a failed fit leaves the weights as they were.
        Ctrl-C stops it between two steps: the weights and optimizer state are those after the last
        step that ran, and ``optimizer.iterations`` counts exactly those steps."""
        self._check_compiled("fit")
        validation_freq = _check_validation_freq(validation_freq)
        train, val = epoch_iterator.train_and_validation(
            x, y, sample_weight, batch_size, steps_per_epoch, shuffle, class_weight, validation_split,
            validation_data, validation_batch_size, validation_steps)
        self._check_arrays_before_training(train, val)
        verbose = 1 if verbose == "auto" else int(verbose)
        group = self._data_parallel_group("fit")
        if group is not None and group.size == 1:  # alone: the ordinary fit, its shuffle seeded as N ranks seed it
            _data_parallel.prepare_fit(group, self, train, val, epochs)
        elif group is not None:
            with _data_parallel.running(group, self, "fit"):
                _data_parallel.prepare_fit(group, self, train, val, epochs)
                callbacks, verbose = _data_parallel.rank_callbacks(group, callbacks, verbose)
                return self._fit(train, val, callbacks, verbose, epochs, initial_epoch, validation_freq)
        return self._fit(train, val, callbacks, verbose, epochs, initial_epoch, validation_freq)

    def _data_parallel_group(self, what):
        """The process group ``what`` (fit, evaluate, predict) runs over under DataParallel, else None."""
        group = distribution._active()
        if group is None:
            return None
        _data_parallel.check_model(group, self, what)
        self._dp_synced = False  # each fit starts from rank 0's weights
        return group

    def _fit(self, train, val, callbacks, verbose, epochs, initial_epoch, validation_freq):
        history = callbacks_mod.History()
        cbs = callbacks_mod.CallbackList(callbacks, add_history=False, add_progbar=verbose != 0, model=self,
                                         verbose=verbose, epochs=epochs, steps=train.num_batches())
        cbs.append(history)
        self.history = history
        self.stop_training = False
        self._resolve_metrics()
        batch_hooks = cbs.implements_batch_hooks("train")  # else no per-batch logs are built
        if self._dp is not None:  # logs are collectives: every rank makes them where any rank needs them
            batch_hooks = self._dp.any(batch_hooks)
        # fit's own progress bar only redraws now and then: it is fed once per run of batches.
        progress_only = batch_hooks and cbs.batch_hooks_only_from("train", callbacks_mod.ProgbarLogger)
        with _DeferInterrupts() as self._interrupts:
            try:
                self._fit_epochs(train, val, cbs, epochs, initial_epoch, validation_freq, batch_hooks, progress_only)
            finally:
                self._interrupts = _NO_DEFER
                # Keras: with use_ema the trainable weights become their moving averages at the end of
                # fit (its ``finally``, so also after an interrupt).
                if self.optimizer is not None and epochs > initial_epoch and self.built:
                    self.optimizer.finalize_variable_values([w.value for w in self._trainable()])
        return history

    def _fit_epochs(self, train, val, cbs, epochs, initial_epoch, validation_freq, batch_hooks, progress_only):
        cbs.on_train_begin()
        logs = None
        for epoch in range(initial_epoch, epochs):
            self._reset_metrics()
            cbs.on_epoch_begin(epoch)
            loss_sum, count = 0.0, 0
            # With no callback asking for batch hooks, the epoch goes to the compiled step in runs of
            # batches (as long as a progress-bar update apart, or about _RUN_SECONDS each: Ctrl-C is
            # looked at between runs).
            ran = arrays = None
            if train.array_data is not None:
                if self._dp is not None:  # batch by batch: each step's gradients are summed over ranks
                    arrays = train.epoch_arrays()
                elif not batch_hooks or progress_only:
                    ran, arrays = self._train_epoch(train, cbs if batch_hooks else None)
                else:
                    arrays = train.epoch_arrays()
            if ran is not None:
                loss_sum, count = ran
            for step, (xb, yb, swb) in enumerate(() if ran is not None else train.batches(arrays)):
                if batch_hooks:
                    cbs.on_train_batch_begin(step)
                with self._interrupts.step():  # a step runs whole: Ctrl-C waits for its end
                    value, n = self._train_step(xb, yb, swb)
                loss_sum += value * n
                count += n
                if batch_hooks:
                    cbs.on_train_batch_end(step, self._logs(loss_sum, count))
                if self.stop_training:
                    break
            if count == 0:
                print("Warning: your input ran out of data; training stops.", file=sys.stderr)
                break
            logs = self._logs(loss_sum, count)
            if val is not None and _should_validate(epoch, validation_freq):
                val.reset()  # Keras: each validation starts from the data's beginning
                val_logs = self._evaluate_batches(val, cbs)
                logs.update({"val_" + k: v for k, v in val_logs.items()})
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end(logs)

    def _check_arrays_before_training(self, train, val):
        """What fit can check of array data before any weight changes (Keras finds these at some batch):
        labels the sparse loss cannot take anywhere in y (out of range, NaN, not integers), y or
        validation data whose shape does not fit the model. Vectorized; the model is not built here
        (building draws the initial weights after the first shuffle, as the epochs expect)."""
        in_shape = self._input_layer.shape[1:] if getattr(self, "_input_layer", None) is not None else None
        if train.array_data is not None and in_shape is None:
            in_shape = train.array_data.x.shape[1:]
        out_shape = self._output_shape_for(in_shape)
        for what, data in (("y", train), ("validation_data", val)):
            if data is None or data.array_data is None:
                continue
            arrays = data.array_data
            if what == "validation_data" and in_shape is not None and (
                    len(in_shape) != arrays.x.ndim - 1 or
                    any(e is not None and e != d for e, d in zip(in_shape, arrays.x.shape[1:]))):
                raise ValueError(f"validation_data: x of shape {arrays.x.shape} does not match the model's input "
                                 f"shape {(None,) + tuple(in_shape)}")
            if arrays.y is None or out_shape is None or len(arrays.y) == 0:
                continue
            label = "y" if what == "y" else "validation_data: y"
            spec = self.loss._kernel_spec() if isinstance(self.loss, losses.Loss) else None
            if spec is not None and spec[0] == "sparse_categorical_crossentropy" and len(out_shape) == 2:
                labels, ignore = arrays.y, spec[1].get("ignore_class")
                if ignore is not None and labels.dtype.kind in "iuf":
                    labels = labels[labels.reshape(len(labels), -1)[:, 0] != ignore] if labels.ndim else labels
                try:
                    ops._sparse_labels(labels, len(labels), int(out_shape[-1]))
                except (ValueError, TypeError) as e:
                    raise type(e)(f"{label}: {str(e).removeprefix('y_true: ')} (nothing was trained)") from None
                continue
            # Any other loss: a bad y fails the first step, before any update; validation y must have
            # the training y's per-sample shape (else that of the output, for a loss with a kernel, which
            # takes y as the output's shape, or (n,) / (n, 1) for one output).
            if what == "validation_data":
                if train.array_data is not None and train.array_data.y is not None:
                    want = _per_sample(train.array_data.y.shape)
                elif spec is not None:
                    want = _per_sample(out_shape)
                else:
                    continue
                if _per_sample(arrays.y.shape) != want:
                    raise ValueError(f"validation_data: y of shape {arrays.y.shape} does not match the training "
                                     f"targets (per-sample shape {want}; the model's output shape is "
                                     f"{(None,) + tuple(out_shape[1:])})")

    def _output_shape_for(self, in_shape):
        """The model's output shape for inputs of per-sample shape ``in_shape``, without building it;
        None when a layer cannot tell."""
        if in_shape is None or not self._layers:
            return None
        if self.built:
            return tuple(self._layers[-1].output_shape)
        shape = (None,) + tuple(in_shape)
        try:
            for layer in self._layers:
                shape = layer.compute_output_shape(shape)
        except Exception:  # noqa: BLE001 - an unbuilt layer that needs its build; the first step checks
            return None
        return tuple(shape) if shape is not None and all(d is not None for d in shape[1:]) else None

    # Batches per call into the compiled step while a progress bar is shown (it redraws at most every 50 ms).
    _PROGRESS_RUN = 16
    # Without one, runs of about this many seconds: Ctrl-C is seen between runs. Ample next to the
    # ~20 us a call costs, so one epoch of a small model is still one call.
    _RUN_SECONDS = 0.25
    _FIRST_RUN = 64  # batches in the first run of a step whose speed is not known yet

    def _run_length(self, step, batch_size, n):
        """Samples for the next call into the compiled step when no progress bar sets it: about
        _RUN_SECONDS from the speed the last runs measured (``step._seconds_per_sample``)."""
        per_sample = getattr(step, "_seconds_per_sample", None)
        if per_sample is None:
            return self._FIRST_RUN * batch_size
        batches = int(self._RUN_SECONDS / max(per_sample * batch_size, 1e-9))
        return max(1, batches) * batch_size

    def _train_epoch(self, train, progress=None):
        """An epoch of array data (an EpochIterator over arrays, whose shuffle this draws) through the
        compiled step: ((loss sum, samples), None), or (None, the epoch's arrays) when the model or the
        data needs the batch-by-batch loop. The epoch goes in runs of batches: with ``progress`` (the
        callbacks, whose only batch hook is the progress bar) the bar is fed after each; without, runs
        of about _RUN_SECONDS, with Ctrl-C honoured between them. On a GPU the epoch is one session
        (weights uploaded once, copied back at its end, also after Ctrl-C), and data that fits stays on
        the device across epochs, each epoch's shuffle gathered there."""
        # On the CPU the shuffle is drawn before the model is built (building draws initial weights).
        batch_size = train.batch_size
        drawn = train.epoch_arrays() if self.device == "cpu" else None
        step = self._compiled_step() if self._ensure_built_from(train.first_rows()) else None
        order = None
        if drawn is None and step is not None and step.keep_on_device(train.array_data):
            order = train.epoch_order()  # the rows stay on the device; this epoch's order is gathered there
        elif self.device != "cpu":
            drawn = train.epoch_arrays()
        if step is None or (drawn is None and order is None):
            return None, drawn
        n = len(order) if order is not None else len(drawn[0])
        steps = (n + batch_size - 1) // batch_size
        loss_sum, count = 0.0, 0
        interrupts = self._interrupts
        with interrupts.step(), step.session():  # Ctrl-C: the session ends normally, then it is raised
            start = 0
            while start < n and not interrupts.pending:
                run = self._PROGRESS_RUN * batch_size if progress is not None else \
                    self._run_length(step, batch_size, n)
                part = slice(start, start + run)
                t0 = time.perf_counter()
                if order is not None:
                    done = step.run_epoch_resident(order[part], batch_size, loss_sum, count)
                else:
                    x, y, sw = (None if a is None else a[part] for a in drawn)
                    done = step.run_epoch(x, y, sw, batch_size, loss_sum, count)
                if done is None:  # only the first run can refuse (the rest is the same data): nothing trained yet
                    return None, train.gather(order) if order is not None else drawn
                ran = min(run, n - start)
                if ran >= batch_size:
                    step._seconds_per_sample = (time.perf_counter() - t0) / ran
                loss_sum, count = done
                start += run
                if progress is not None:
                    progress.on_train_batch_end(min(steps, start // batch_size) - 1, self._logs(loss_sum, count))
                    if self.stop_training:
                        break
        return (loss_sum, count), None

    # ------------------------------------------------------------------ evaluate and predict
    def _evaluate_batches(self, batches, cbs=None):
        self._reset_metrics()
        loss_sum, count = 0.0, 0
        batch_hooks = cbs is not None and cbs.implements_batch_hooks("test")
        local = self._dp is not None  # each rank's loss sum is its share's, summed over ranks in the logs
        if local:
            batch_hooks = self._dp.any(batch_hooks)
        if cbs is not None:
            cbs.on_test_begin()
        with self._inference_session():
            for step, (xb, yb, swb) in enumerate(batches):
                if batch_hooks:
                    cbs.on_test_batch_begin(step)
                value, n = self._test_step(xb, yb, swb)
                loss_sum += value * n
                count += n
                if batch_hooks:
                    logs = self._logs(loss_sum, count, local_loss=local)
                    if cbs is not None:
                        cbs.on_test_batch_end(step, logs)
        logs = self._logs(loss_sum, count, local_loss=local)
        if cbs is not None:
            cbs.on_test_end(logs)
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """Loss (and metrics) over the data: a float, a list [loss, metrics...], or a dict with return_dict.
        ``callbacks`` get on_test_begin / on_test_batch_begin / on_test_batch_end (the running logs) /
        on_test_end (the final logs), as Keras calls them."""
        self._check_compiled("evaluate")
        batches = epoch_iterator.EpochIterator(x, y, sample_weight, batch_size, steps_per_epoch=steps)
        batches.reset()  # as Keras's evaluate (a PyDataset's on_epoch_end)
        verbose = 1 if verbose == "auto" else int(verbose)
        group = self._data_parallel_group("evaluate") if self._dp is None else None
        if group is not None and group.size > 1:
            with _data_parallel.running(group, self, "evaluate"):
                group.check_same(evaluate_batches=batches.num_batches())
                _data_parallel.check_metrics(group, self)
                _data_parallel.sync_weights(group, self)
                callbacks, verbose = _data_parallel.rank_callbacks(group, callbacks, verbose)
                return self._evaluate(batches, verbose, callbacks, return_dict)
        return self._evaluate(batches, verbose, callbacks, return_dict)

    def _evaluate(self, batches, verbose, callbacks, return_dict):
        cbs = callbacks_mod.CallbackList(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose,
                                         epochs=1, steps=batches.num_batches())
        logs = self._evaluate_batches(batches, cbs)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for every sample of x, as one float32 NumPy array. ``callbacks`` get on_predict_begin /
        on_predict_batch_begin / on_predict_batch_end (logs ``{'outputs': the batch's predictions}``) /
        on_predict_end, as Keras calls them."""
        batches = epoch_iterator.EpochIterator(x, None, None, batch_size, steps_per_epoch=steps)
        verbose = 1 if verbose == "auto" else int(verbose)
        group = self._data_parallel_group("predict") if self._dp is None else None
        if group is not None and group.size > 1:
            with _data_parallel.running(group, self, "predict"):
                group.check_same(predict_batches=batches.num_batches())
                _data_parallel.sync_weights(group, self)
                return self._predict(batches, verbose, callbacks, group)
        return self._predict(batches, verbose, callbacks, None)

    def _predict(self, batches, verbose, callbacks, group):
        cbs = None
        if callbacks is not None:  # Keras adds no progress bar to predict's hooks unless asked
            cbs = callbacks_mod.CallbackList(callbacks, model=self, verbose=verbose, epochs=1,
                                             steps=batches.num_batches())
            cbs.on_predict_begin()
        batch_hooks = cbs is not None and cbs.implements_batch_hooks("predict")
        outs = []
        step = self._existing_compiled_step()
        with self._inference_session():
            for i, (xb, _, _) in enumerate(batches):
                if batch_hooks:
                    cbs.on_predict_batch_begin(i)
                if group is not None:  # this rank's share, every rank's rows gathered back
                    y_pred = _data_parallel.predict_batch(group, self, step, xb)
                else:
                    y_pred = step.predict(xb) if step is not None else None
                if y_pred is None:
                    xb, _, _ = self._prepare_batch(xb, None, None)
                    y_pred = self._forward(xb, training=False)
                outs.append(y_pred)
                if batch_hooks:
                    cbs.on_predict_batch_end(i, {"outputs": y_pred})
        if cbs is not None:
            cbs.on_predict_end()
        if not outs:  # zero rows: an empty array of the output's shape
            if not self.built:
                raise ValueError("predict: no data, and the model has no input shape to size the output")
            shapes = self.output_shape if isinstance(self.output_shape, list) else [self.output_shape]
            empty = [np.zeros((0,) + tuple(s[1:]), np.float32) for s in shapes]
            return empty if isinstance(self.output_shape, list) else empty[0]
        if isinstance(outs[0], list):  # a model of several outputs: one array per output
            return [np.concatenate(parts, axis=0) for parts in zip(*outs)]
        return np.concatenate(outs, axis=0)

    # ------------------------------------------------------------------ one batch
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        self._check_compiled("train_on_batch")
        if isinstance(x, _MASKED) or isinstance(y, _MASKED) or isinstance(sample_weight, _MASKED):
            _reject_masked(x, y, sample_weight)
        if class_weight is not None:
            sample_weight = data_adapter.class_sample_weights(y, sample_weight, class_weight)
        self._reset_metrics()
        value, n = self._train_step(x, y, sample_weight)
        return self._batch_result(value, n, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        self._check_compiled("test_on_batch")
        _reject_masked(x, y, sample_weight)
        self._reset_metrics()
        value, n = self._test_step(x, y, sample_weight)
        return self._batch_result(value, n, return_dict)

    def _batch_result(self, value, n, return_dict):
        logs = self._logs(value * n, n)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict_on_batch(self, x):
        x, _, _ = self._prepare_batch(x, None, None)
        return self._forward(x, training=False)


def _masked_weights(metric, mask, sw):
    """update_state's sample_weight for ``metric`` when y_pred carries Keras's ``mask``: MeanMetricWrapper
    (accuracy, crossentropy, ...) folds the mask into the sample weights (Keras apply_mask, reduction 'sum':
    ``sw * mask``, or the mask alone); the other metrics do not read the mask, as in Keras."""
    if mask is None or not isinstance(metric, metrics_mod.MeanMetricWrapper):
        return {} if sw is None else {"sample_weight": sw}
    m = np.asarray(mask, np.float32)
    if sw is None:
        return {"sample_weight": m}
    m, w = squeeze_or_expand_to_same_rank(m, np.asarray(sw, np.float32))
    return {"sample_weight": w * m}


def _check_validation_freq(freq):
    """Keras's validation_freq: validate every ``freq`` epochs (an int >= 1), or after the (1-based)
    epochs listed; anything else is refused before training."""
    if isinstance(freq, (int, np.integer)) and not isinstance(freq, bool):
        if freq < 1:
            raise ValueError(f"validation_freq must be an integer >= 1 or a list of epochs, got {freq!r}")
        return int(freq)
    if isinstance(freq, (list, tuple)) and all(isinstance(e, (int, np.integer)) and not isinstance(e, bool)
                                               for e in freq):
        return [int(e) for e in freq]
    raise ValueError(f"Expected `validation_freq` to be a list or int. Received: validation_freq={freq!r} of the "
                     f"type {type(freq)}.")


_MASKED = np.ma.MaskedArray


def _reject_masked(x, y, sample_weight):
    # The common case (no masked array) is three isinstance calls: this runs on every *_on_batch call.
    if isinstance(x, _MASKED) or isinstance(y, _MASKED) or isinstance(sample_weight, _MASKED):
        for a, name in ((x, "x"), (y, "y"), (sample_weight, "sample_weight")):
            if isinstance(a, _MASKED):
                data_adapter.reject_masked(a, name)


def _per_sample(shape):
    """A target's per-sample shape, a trailing 1 dropped ((n,) and (n, 1) are the same targets)."""
    shape = tuple(shape[1:])
    return shape[:-1] if shape[-1:] == (1,) else shape


def _should_validate(epoch, freq):
    """Keras ``_should_eval``: the 1-based epoch is a multiple of an int ``freq``, or listed in it."""
    epoch += 1
    return epoch % freq == 0 if isinstance(freq, int) else epoch in freq


class _DeferInterrupts:
    """Ctrl-C during fit without a half-done step: while a step (or a run of steps in one C++ call)
    runs, SIGINT only marks itself pending; KeyboardInterrupt is raised as the step ends, so the
    weights, the optimizer state and ``iterations`` all stand after the same last step. Outside steps
    (callbacks, data loading) it is raised at once, as usual. Installed only from the main thread and
    only over Python's default handler (a handler of the user's is left alone)."""

    def __init__(self):
        self.pending = False
        self._depth = 0
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        return False

    def _handle(self, signum, frame):
        if self._depth:
            self.pending = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def step(self):
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self.pending and not self._depth:
            self.pending = False
            raise KeyboardInterrupt


class _NoDefer:
    """Outside fit: steps are not guarded."""

    pending = False

    def step(self):
        return contextlib.nullcontext()


_NO_DEFER = _NoDefer()


def _is_serialized(obj):
    return isinstance(obj, dict) and "class_name" in obj

"""Sequential models: compile / fit / evaluate / predict with Keras 3's names and defaults.

From ``model.fit`` to a kernel:
  fit (batch loop, callbacks)  ->  _train_step
    -> layer.forward for each layer        (ops.dense_forward: GEMM + bias + activation epilogue)
    -> loss.value_and_grad                 (ops.loss_and_grad: value and dL/dy_pred in one pass)
    -> layer.backward in reverse           (ops.dense_backward: fused f'(z), bias sums, two GEMMs)
    -> optimizer.apply                     (one fused ops.*_step over every trainable weight)

All weights live in one flat float32 buffer (``model.parameters``) and their
gradients in another; each layer's weights are views of them.
"""
import contextlib
import sys
import warnings

import numpy as np

from gradsmith import _core, data_adapter, layers as layers_mod

__all__ = ["Sequential", "Model", "load_model"]


def _num_samples(x):
    try:
        return len(x)
    except TypeError:
        return None


class Sequential:
    """A linear stack of layers: ``Sequential([Dense(64, activation='relu', input_shape=(20,)), Dense(1)])``."""

    def __init__(self, layers=None, name=None, trainable=True):
        self.name = name if name is not None else layers_mod._unique_name("sequential")
        self.trainable = trainable
        self._layers = []
        self._input_layer = None
        self.built = False
        self.optimizer = None
        self.loss = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self._compile_config = None
        self._plan = self._plan_key = None  # the compiled training step (gradsmith.compiled_step)
        self._plan_reason = None
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------------ structure
    @property
    def layers(self):
        return list(self._layers)

    def add(self, layer):
        if isinstance(layer, layers_mod.InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError("Input must be the first entry of a Sequential model")
            self._input_layer = layer
            return
        if not isinstance(layer, layers_mod.Layer):
            raise TypeError(f"Sequential.add: expected a layer, got {type(layer).__name__}")
        if any(existing is layer for existing in self._layers):
            raise ValueError(f"layer {layer.name!r} is already in the model")
        if layer.name in {existing.name for existing in self._layers}:
            raise ValueError(f"the model already has a layer named {layer.name!r}; layer names must be unique")
        self._layers.append(layer)
        self.built = False
        if len(self._layers) == 1 and self._input_layer is None and layer._declared_input_shape is not None:
            self._input_layer = layers_mod.InputLayer(batch_shape=layer._declared_input_shape)
        if self._input_layer is not None:
            self.build(self._input_layer.shape)

    def pop(self):
        if not self._layers:
            raise IndexError("there is no layer to pop")
        layer = self._layers.pop()
        self.built = False
        if self._input_layer is not None and self._layers:
            self.build(self._input_layer.shape)
        return layer

    def get_layer(self, name=None, index=None):
        if index is not None:
            if not -len(self._layers) <= index < len(self._layers):
                raise ValueError(f"index {index} is out of range for a model of {len(self._layers)} layers")
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; layers are {[l.name for l in self._layers]}")

    def build(self, input_shape=None):
        """Build every layer from the input shape and gather all weights into one flat buffer."""
        if input_shape is None:
            if self._input_layer is None:
                raise ValueError("build() needs an input shape: give Input(shape=...) or input_shape=")
            input_shape = self._input_layer.shape
        input_shape = tuple(input_shape)
        if self._input_layer is None:
            self._input_layer = layers_mod.InputLayer(batch_shape=input_shape)
        shape = input_shape
        for layer in self._layers:
            if not layer.built:
                layer.build(shape)
            shape = layer.compute_output_shape(shape)
            layer.output_shape = shape
        self._gather_weights()
        self.built = True

    def _gather_weights(self):
        """One flat buffer for the values and one for the gradients; each weight becomes a view."""
        weights = [w for layer in self._layers for w in layer._weights]
        total = sum(w.size for w in weights)
        params = np.zeros(total, np.float32)
        grads = np.zeros(total, np.float32)
        offset = 0
        for w in weights:
            view = params[offset:offset + w.size].reshape(w.shape)
            view[...] = w.value
            w.value = view
            w.grad = grads[offset:offset + w.size].reshape(w.shape)
            offset += w.size
        self.parameters, self.gradients = params, grads
        self._plan = self._plan_key = None
        # An optimizer built for the old buffers would update stale views: start it afresh.
        if self.optimizer is not None:
            self.optimizer = type(self.optimizer).from_config(self.optimizer.get_config())

    def _trainable(self):
        if not self.trainable:
            return []
        return [w for layer in self._layers if layer.trainable for w in layer._weights if w.trainable]

    @property
    def weights(self):
        return [w.value for w in self._all_weights()]

    @property
    def trainable_weights(self):
        return [w.value for w in self._trainable()]

    @property
    def non_trainable_weights(self):
        trainable = {id(w) for w in self._trainable()}
        return [w.value for w in self._all_weights() if id(w) not in trainable]

    def _all_weights(self):
        return [w for layer in self._layers for w in layer._weights]

    def count_params(self):
        self._require_built("count_params")
        return sum(w.size for w in self._all_weights())

    def get_weights(self):
        return [w.value.copy() for w in self._all_weights()]

    def set_weights(self, weights):
        """Copy a list of arrays (as get_weights returns) into the model; all shapes are checked first."""
        self._require_built("set_weights")
        layers_mod.assign_weights(self._all_weights(), weights, f"model {self.name!r}")

    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"{what}: the model is not built yet; give it an input shape (Input(shape=...) or "
                             "input_shape= on the first layer) or call it on data first")

    def _ensure_built(self, x):
        if not self.built:
            self.build((None,) + tuple(np.shape(x)[1:]))

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True, device=None):
        """Keras's compile, plus ``device``: 'cpu', 'cuda' or 'cuda:N' (default: gradsmith.config's
        default device). A CUDA device that cannot be used raises RuntimeError with the reason."""
        from gradsmith import config, losses, metrics as metrics_mod, optimizers

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
        self._metrics_mod = metrics_mod
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

    def _resolve_metrics(self):
        if self.compiled_metrics is None:
            shape = self._layers[-1].output_shape if self._layers else None
            self.compiled_metrics = [self._metrics_mod.resolve(m, self.loss, shape) for m in self._metric_ids]
            self.compiled_weighted_metrics = [self._metrics_mod.resolve(m, self.loss, shape)
                                              for m in self._weighted_metric_ids]
        return self.compiled_metrics

    @property
    def metrics_names(self):
        self._resolve_metrics()
        return ["loss"] + [m.name for m in self.compiled_metrics + self.compiled_weighted_metrics]

    # ------------------------------------------------------------------ math
    def _forward(self, x, training):
        for layer in self._layers:
            x = layer.forward(x, training=training)
        return x

    def _backward(self, dy):
        n = len(self._layers)
        for i in range(n - 1, -1, -1):
            dy = self._layers[i].backward(dy, need_dx=i > 0)

    def _regularization(self):
        return sum(layer.regularization_loss() for layer in self._layers)

    def _check_compiled(self, what):
        if not self.compiled:
            raise RuntimeError("You must call `compile()` before using the model.")
        if self.loss is None:
            raise ValueError(f"{what}: the model was compiled without a loss")

    def _prepare_batch(self, x, y, sw):
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"x: expected numeric data, got dtype {x.dtype}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        self._ensure_built(x)
        expected = self._input_layer.shape[1:]
        if len(expected) != x.ndim - 1 or any(e is not None and e != d for e, d in zip(expected, x.shape[1:])):
            raise ValueError(f"input of shape {x.shape} does not match the model's input shape "
                             f"{(None,) + tuple(expected)}")
        return x, y, sw

    def _plan_key_now(self):
        return (self.trainable, self.optimizer, self.loss, tuple(l.trainable for l in self._layers))

    def _compiled_step(self):
        """The model's C++ training step (gradsmith.compiled_step), rebuilt when what it was built from
        changes; None when some part has no kernel (then steps run layer by layer)."""
        key = self._plan_key_now()
        if self._plan_key != key:
            from gradsmith import compiled_step

            self._plan = compiled_step.build(self) if self.built else None
            self._plan_key = key if self.built else None
            if self.built and self._plan is None and self.device != "cpu":
                warnings.warn(f"model {self.name!r} trains on the CPU, not {self.device}: {self._plan_reason}",
                              RuntimeWarning, stacklevel=3)
        return self._plan

    def _train_step(self, x, y, sw):
        """One optimizer step on a batch; returns (loss value: weighted loss + regularization, samples)."""
        if self._ensure_built_from(x):
            step = self._compiled_step()
            if step is not None:
                result = step.run(x, y, sw)
                if result is not None:
                    return result
        return self._python_train_step(x, y, sw)

    # Batches per call into the compiled step while a progress bar is shown (it redraws at most every 50 ms).
    _PROGRESS_RUN = 16

    def _train_epoch(self, train, batch_size, progress=None):
        """An epoch of array data (an ArrayBatches, whose shuffle this draws) through the compiled step:
        ((loss sum, samples), None), or (None, the epoch's arrays) when the model or the data needs the
        batch-by-batch loop. With ``progress`` (the callbacks, whose only batch hook is the progress
        bar), runs of batches, the bar fed after each. On a GPU the epoch is one session (weights
        uploaded once, copied back at its end), and data that fits stays on the device across epochs,
        each epoch's shuffle gathered there."""
        # On the CPU the shuffle is drawn before the model is built (building draws initial weights).
        drawn = train.epoch() if self.device == "cpu" else None
        step = self._compiled_step() if self._ensure_built_from(train.x[:1]) else None
        if drawn is None and step is not None and step.keep_on_device(train):
            order = train.epoch_order()

            def run_part(part, loss_sum, count):
                return step.run_epoch_resident(order[part], batch_size, loss_sum, count)

            def arrays():
                return tuple(None if a is None else a[order] for a in (train.x, train.y, train.sample_weight))
        else:
            if self.device != "cpu":
                drawn = train.epoch()
            if step is None or drawn is None:
                return None, drawn
            x, y, sw = drawn

            def run_part(part, loss_sum, count):
                return step.run_epoch(x[part], None if y is None else y[part], None if sw is None else sw[part],
                                      batch_size, loss_sum, count)

            def arrays():
                return drawn
        with step.session():
            ran = self._train_runs(run_part, train.num_samples, batch_size, progress)
        return (ran, None) if ran is not None else (None, arrays())

    def _train_runs(self, run_part, n, batch_size, progress):
        if progress is None:
            return run_part(slice(0, n), 0.0, 0)
        run = self._PROGRESS_RUN * batch_size
        steps = (n + batch_size - 1) // batch_size
        loss_sum, count = 0.0, 0
        for start in range(0, n, run):
            done = run_part(slice(start, start + run), loss_sum, count)
            if done is None:  # only the first run can refuse (the rest is the same data): nothing trained yet
                return None
            loss_sum, count = done
            progress.on_train_batch_end(min(steps, (start + run) // batch_size) - 1, self._logs(loss_sum, count))
            if self.stop_training:
                break
        return loss_sum, count

    def _python_train_step(self, x, y, sw):
        """The same step layer by layer, one kernel call at a time (layers.py -> ops.py)."""
        if _core.profiler_enabled():
            from gradsmith import profiler

            with profiler.record_function("train_step"):
                return self._python_train_step_body(x, y, sw)
        return self._python_train_step_body(x, y, sw)

    def _python_train_step_body(self, x, y, sw):
        x, y, sw = self._prepare_batch(x, y, sw)
        y_pred = self._forward(x, training=True)
        value, grad = self.loss.value_and_grad(y, y_pred, sw)
        if self.loss_weight != 1.0:
            value *= self.loss_weight
            grad *= np.float32(self.loss_weight)
        self._backward(grad)
        value += self._regularization()  # Keras adds the penalties of the weights the step starts from
        trainable = self._trainable()
        if trainable:
            self.optimizer.apply([w.grad for w in trainable], [w.value for w in trainable])
        self._update_metrics(y, y_pred, sw)
        return value, len(x)

    def _ensure_built_from(self, x):
        """Build from a batch's shape if needed; False when x cannot be a batch (the Python path explains)."""
        if not self.built:
            try:
                self._ensure_built(np.asarray(x))
            except (ValueError, TypeError):
                return False
        return self.built

    def _existing_compiled_step(self):
        """The compiled step if training has built one that is still current, else None: evaluate and
        predict use it but never build one (building would build the optimizer, which Keras's evaluate
        does not)."""
        if self._plan is not None and self._plan_key == self._plan_key_now():
            return self._plan
        return None

    def _inference_session(self):
        """evaluate's and predict's batches share one upload of the weights when the model is on a GPU."""
        step = self._existing_compiled_step()
        return step.session(training=False) if step is not None else contextlib.nullcontext()

    def _test_step(self, x, y, sw):
        step = self._existing_compiled_step()
        if step is not None:
            result = step.test(x, y, sw)
            if result is not None:
                return result
        x, y, sw = self._prepare_batch(x, y, sw)
        y_pred = self._forward(x, training=False)
        value = self.loss(y, y_pred, sample_weight=sw) * self.loss_weight + self._regularization()
        self._update_metrics(y, y_pred, sw)
        return value, len(x)

    def _update_metrics(self, y, y_pred, sw):
        for m in self._resolve_metrics():
            m.update_state(y, y_pred)
        for m in self.compiled_weighted_metrics:
            m.update_state(y, y_pred, sample_weight=sw)

    def _reset_metrics(self):
        for m in self._resolve_metrics() + self.compiled_weighted_metrics:
            m.reset_state()

    def _logs(self, loss_sum, count, prefix=""):
        logs = {prefix + "loss": float(loss_sum / count) if count else float("nan")}
        for m in self.compiled_metrics + self.compiled_weighted_metrics:
            r = m.result()
            logs[prefix + m.name] = float(r) if np.ndim(r) == 0 else np.asarray(r)
        return logs

    # ------------------------------------------------------------------ fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs; returns a History whose ``.history`` holds the per-epoch logs."""
        from gradsmith import callbacks as callbacks_mod

        self._check_compiled("fit")
        if validation_split and validation_data is None:
            if not isinstance(x, (np.ndarray, list, tuple)):
                raise ValueError("validation_split is only supported for array inputs; pass validation_data")
            (x, y, sample_weight), validation_data = data_adapter.split_validation(x, y, sample_weight,
                                                                                  validation_split)
        if class_weight is not None:
            sample_weight = self._class_sample_weights(y, sample_weight, class_weight)
        train = data_adapter.adapt(x, y, sample_weight, batch_size, shuffle=bool(shuffle), steps=steps_per_epoch)
        val = None
        if validation_data is not None:
            if isinstance(validation_data, tuple) and len(validation_data) in (2, 3):
                vx, vy, vsw = data_adapter.unpack(validation_data)
                val = data_adapter.adapt(vx, vy, vsw, validation_batch_size or batch_size, steps=validation_steps)
            else:
                val = data_adapter.adapt(validation_data, steps=validation_steps)
        verbose = 1 if verbose == "auto" else int(verbose)
        history = callbacks_mod.History()
        cbs = callbacks_mod.CallbackList(callbacks, add_history=False, add_progbar=verbose != 0, model=self,
                                         verbose=verbose, epochs=epochs, steps=train.num_batches())
        cbs.append(history)
        self.history = history
        self.stop_training = False
        self._resolve_metrics()
        batch_hooks = cbs.implements_batch_hooks("train")  # else no per-batch logs are built
        # fit's own progress bar only redraws now and then: it is fed once per run of batches.
        progress_only = batch_hooks and cbs.batch_hooks_only_from("train", callbacks_mod.ProgbarLogger)
        cbs.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            self._reset_metrics()
            cbs.on_epoch_begin(epoch)
            loss_sum, count = 0.0, 0
            # With no callback asking for batch hooks, the whole epoch is one call into the compiled step
            # (runs of batches between progress-bar updates when that is the only hook).
            ran = arrays = None
            if isinstance(train, data_adapter.ArrayBatches):
                if not batch_hooks or progress_only:
                    ran, arrays = self._train_epoch(train, train.batch_size, cbs if batch_hooks else None)
                else:
                    arrays = train.epoch()
            if ran is not None:
                loss_sum, count = ran
            for step, (xb, yb, swb) in enumerate(() if ran is not None else
                                                 train.batches(arrays) if arrays is not None else train):
                if batch_hooks:
                    cbs.on_train_batch_begin(step)
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
            if val is not None and (epoch + 1) % validation_freq == 0:
                val_logs = self._evaluate_batches(val, cbs)
                logs.update({"val_" + k: v for k, v in val_logs.items()})
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end()
        return history

    @staticmethod
    def _class_sample_weights(y, sample_weight, class_weight):
        if y is None:
            raise ValueError("class_weight needs y")
        y = np.asarray(y)
        labels = np.argmax(y, axis=-1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(len(y)).round().astype(int)
        try:
            w = np.array([class_weight[int(c)] for c in labels], dtype=np.float32)
        except KeyError as e:
            raise ValueError(f"class_weight has no entry for class {e.args[0]}") from None
        return w if sample_weight is None else w * np.asarray(sample_weight, np.float32).reshape(len(w))

    def _evaluate_batches(self, batches, cbs=None):
        self._reset_metrics()
        loss_sum, count = 0.0, 0
        batch_hooks = cbs is not None and cbs.implements_batch_hooks("test")
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
                    cbs.on_test_batch_end(step, self._logs(loss_sum, count))
        logs = self._logs(loss_sum, count)
        if cbs is not None:
            cbs.on_test_end(logs)
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """Loss (and metrics) over the data: a float, a list [loss, metrics...], or a dict with return_dict."""
        from gradsmith import callbacks as callbacks_mod

        self._check_compiled("evaluate")
        batches = data_adapter.adapt(x, y, sample_weight, batch_size, steps=steps)
        verbose = 1 if verbose == "auto" else int(verbose)
        cbs = callbacks_mod.CallbackList(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose,
                                         epochs=1, steps=batches.num_batches())
        logs = self._evaluate_batches(batches, cbs)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for every sample of x, as one float32 NumPy array."""
        batches = data_adapter.adapt(x, None, None, batch_size, steps=steps)
        outs = []
        step = self._existing_compiled_step()
        with self._inference_session():
            for xb, _, _ in batches:
                y_pred = step.predict(xb) if step is not None else None
                if y_pred is None:
                    xb, _, _ = self._prepare_batch(xb, None, None)
                    y_pred = self._forward(xb, training=False)
                outs.append(y_pred)
        if not outs:  # zero rows: an empty array of the output's shape
            if not self.built:
                raise ValueError("predict: no data, and the model has no input shape to size the output")
            return np.zeros((0,) + tuple(self._layers[-1].output_shape[1:]), np.float32)
        return np.concatenate(outs, axis=0)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        self._check_compiled("train_on_batch")
        if class_weight is not None:
            sample_weight = self._class_sample_weights(y, sample_weight, class_weight)
        self._reset_metrics()
        value, n = self._train_step(x, y, sample_weight)
        return self._batch_result(value, n, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        self._check_compiled("test_on_batch")
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

    def __call__(self, x, training=False):
        x, _, _ = self._prepare_batch(x, None, None)
        return self._forward(x, training=training)

    # ------------------------------------------------------------------ summary
    def summary(self, print_fn=None):
        """Prints each layer's type, output shape and parameter count, then the totals and forward FLOPs."""
        self._require_built("summary")
        print_fn = print_fn or print
        rows = [(f"{l.name} ({type(l).__name__})", str(l.output_shape), f"{l.count_params():,}")
                for l in self._layers]
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
                  for i, h in enumerate(("Layer (type)", "Output Shape", "Param #"))]
        line = "-" * (sum(widths) + 6)
        fmt = f"{{:<{widths[0]}}}   {{:<{widths[1]}}}   {{:>{widths[2]}}}"
        print_fn(f'Model: "{self.name}"')
        print_fn(line)
        print_fn(fmt.format("Layer (type)", "Output Shape", "Param #"))
        print_fn(line)
        for r in rows:
            print_fn(fmt.format(*r))
        print_fn(line)
        total = self.count_params()
        trainable = sum(np.size(w) for w in self.trainable_weights)
        print_fn(f" Total params: {total:,}")
        print_fn(f" Trainable params: {trainable:,}")
        print_fn(f" Non-trainable params: {total - trainable:,}")
        print_fn(f" Forward FLOPs per sample: {sum(l.flops(1) for l in self._layers):,}")

    # ------------------------------------------------------------------ config and saving
    def get_config(self):
        layer_configs = [layers_mod.serialize(l) for l in self._layers]
        if self._input_layer is not None:
            layer_configs.insert(0, layers_mod.serialize(self._input_layer))
        return {"name": self.name, "trainable": self.trainable, "layers": layer_configs}

    @classmethod
    def from_config(cls, config):
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for lc in config["layers"]:
            model.add(layers_mod.deserialize(lc))
        return model

    def save(self, filepath, overwrite=True):
        """Save architecture, weights, compile configuration and optimizer state to a ``.keras`` file,
        written to a temporary name and renamed (see gradsmith.saving)."""
        from gradsmith import saving

        saving.save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True):
        """Save the weights to ``filepath`` (see gradsmith.saving), written atomically."""
        from gradsmith import saving

        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath):
        """Load weights saved by save_weights or save; on any error the model is left as it was."""
        from gradsmith import saving

        saving.load_weights(self, filepath)


class Model(Sequential):
    """The functional API: ``Model(inputs, outputs)`` over layers called one after another.

        inputs = gradsmith.Input(shape=(784,))
        x = gradsmith.layers.Dense(64, activation="relu")(inputs)
        outputs = gradsmith.layers.Dense(10)(x)
        model = gradsmith.Model(inputs=inputs, outputs=outputs, name="mnist_model")

    The layers from ``inputs`` to ``outputs`` must form one chain (each layer called once, on the
    previous one's output); the model then trains, evaluates, predicts and saves as the Sequential
    model of those layers (and is saved as one). Branches, merges, several inputs or outputs, and
    subclassing Model with a ``call`` method are not supported yet and say so.
    """

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True, **kwargs):
        if kwargs:
            raise TypeError(f"Model: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
        if inputs is None or outputs is None:
            raise NotImplementedError("gradsmith.Model needs inputs= and outputs= (the functional API); "
                                      "subclassed models with a call() method are not supported yet")
        inputs, outputs = self._single(inputs, "inputs"), self._single(outputs, "outputs")
        if not isinstance(inputs, layers_mod.InputLayer):
            raise TypeError(f"Model: inputs must come from gradsmith.Input(...), got {type(inputs).__name__}")
        chain, t = [], outputs
        while isinstance(t, layers_mod.KerasTensor):
            chain.append(t.layer)
            t = t.parent
        if t is not inputs:
            raise ValueError("Model: outputs were not computed from these inputs")
        self.inputs, self.outputs = [inputs], [outputs]
        super().__init__(layers=[inputs] + chain[::-1], name=name if name is not None else
                         layers_mod._unique_name("functional"), trainable=trainable)

    @classmethod
    def from_config(cls, config):
        """A model saved from Model(inputs, outputs) is a Sequential config: it comes back as Sequential."""
        return Sequential.from_config(config)

    @staticmethod
    def _single(value, what):
        if isinstance(value, (list, tuple)):
            if len(value) != 1:
                raise NotImplementedError(f"Model: several {what} are not supported yet; give one")
            value = value[0]
        if isinstance(value, dict):
            raise NotImplementedError(f"Model: {what} given as a dict are not supported yet")
        return value


def load_model(filepath, compile=True):
    """Load a model saved by ``model.save`` (see gradsmith.saving)."""
    from gradsmith import saving

    return saving.load_model(filepath, compile=compile)

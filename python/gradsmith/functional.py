"""Functional models that are graphs: several inputs and outputs, branches and merges (``Add``,
``Concatenate``), and recurrent states passed between layers (``return_state`` / ``initial_state``, as an
encoder-decoder uses them).

    enc_in, dec_in = gradsmith.Input((None, 8)), gradsmith.Input((None, 8))
    _, h, c = LSTM(64, return_state=True)(enc_in)
    y = Dense(8)(LSTM(64, return_sequences=True)(dec_in, initial_state=[h, c]))
    model = gradsmith.Model([enc_in, dec_in], y)

``gradsmith.Model(inputs, outputs)`` makes one of these when the layers are not one chain (a chain stays the
Sequential model of its layers, with its compiled training step). A graph runs layer by layer: the calls
(``layers.base.Node``) in an order where each comes after the calls its inputs come from, forward; the
gradients back in the reverse order, summed where a tensor feeds several calls. A layer may be called
several times (shared weights): its gradients are summed over its calls. Training with several outputs takes one loss per
output (a list, a dict by output name, or one loss for all), ``loss_weights`` and per-output metrics, and
logs ``<output>_loss`` and ``<output>_<metric>`` as Keras 3 does.
"""
import sys

import numpy as np

from gradsmith import config as config_mod, data_adapter, layers as layers_mod, losses, metrics as metrics_mod, models, saving
from gradsmith.layers.base import KerasTensor, _shape_list, deserialize, implied_weights, is_builtin, serialize
from gradsmith.layers.input_layer import InputLayer
from gradsmith.losses.reduction import y_pred_mask
from gradsmith.models import Model, Sequential, _READS_MASK_IN_KERAS

__all__ = ["Functional", "is_chain"]


def _flatten(value, what):
    """(list of endpoints, dict keys or None, whether a single one was given)."""
    if isinstance(value, dict):
        if not value:
            raise ValueError(f"Model: {what} is an empty dict")
        return list(value.values()), list(value), False
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"Model: {what} is empty")
        return list(value), None, False
    return [value], None, True


def _nodes_to(outputs, inputs):
    """The calls that compute ``outputs`` from ``inputs``, each after the calls it reads from (a depth-first
    walk with its own stack: deep graphs do not hit Python's recursion limit)."""
    order, state = [], {}
    allowed = {id(i) for i in inputs}

    def node_of(tensor):
        """The call that made ``tensor``; None for an input (which must be one of the model's)."""
        if isinstance(tensor, InputLayer):
            if id(tensor) not in allowed:
                raise ValueError(f"Model: the outputs depend on the input {tensor.name!r}, which is not among the "
                                 "model's inputs")
            return None
        if not isinstance(tensor, KerasTensor) or tensor.node is None:
            raise TypeError(f"Model: expected tensors made by calling layers on gradsmith.Input(...), got "
                            f"{tensor!r:.100}")
        return tensor.node

    for out in outputs:
        first = node_of(out)
        stack = [] if first is None or state.get(id(first)) == "done" else [(first, iter(first.inputs))]
        if stack:
            state[id(first)] = "open"
        while stack:
            node, pending = stack[-1]
            for t in pending:
                inner = node_of(t)
                if inner is None or state.get(id(inner)) == "done":
                    continue
                if state.get(id(inner)) == "open":
                    raise ValueError("Model: the layers' calls form a cycle")
                state[id(inner)] = "open"
                stack.append((inner, iter(inner.inputs)))
                break
            else:
                stack.pop()
                state[id(node)] = "done"
                order.append(node)
    return order


def _keras_layer_order(outputs):
    """The layers of the graph in Keras 3's ``Functional.layers`` order (keras/src/ops/function.py, map_graph):
    by depth, deepest (nearest the inputs) first, where an output call has depth 0 and a call's inputs come from
    calls at least one deeper; ties in the order a depth-first walk from the outputs first meets the layers.
    Keras names the layers' weight groups and orders the optimizer's variables by it, so files agree."""
    def parent(t):
        return t if isinstance(t, InputLayer) else t.node

    def op(n):
        return n if isinstance(n, InputLayer) else n.layer

    def inputs_of(n):
        return [] if isinstance(n, InputLayer) else n.inputs

    op_index, finished, post_order = {}, set(), []
    for out in outputs:  # the depth-first walk of Keras's _build_map, without recursion
        start = parent(out)
        if id(start) in finished:
            continue
        op_index.setdefault(id(op(start)), len(op_index))
        stack = [(start, iter(inputs_of(start)))]
        while stack:
            n, it = stack[-1]
            for t in it:
                child = parent(t)
                if id(child) in finished or any(child is m for m, _ in stack):
                    continue
                op_index.setdefault(id(op(child)), len(op_index))
                stack.append((child, iter(inputs_of(child))))
                break
            else:
                stack.pop()
                finished.add(id(n))
                post_order.append(n)
    node_depth, op_depth, ops = {}, {}, {}
    for n in reversed(post_order):
        depth = max(node_depth.setdefault(id(n), 0), op_depth.get(id(op(n)), 0))
        op_depth[id(op(n))] = depth
        ops[id(op(n))] = op(n)
        node_depth[id(n)] = depth
        for t in inputs_of(n):
            p = parent(t)
            node_depth[id(p)] = max(depth + 1, node_depth.get(id(p), 0))
    order = sorted(ops, key=lambda k: (-op_depth[k], op_index[k]))
    return [ops[k] for k in order if not isinstance(ops[k], InputLayer)]


def is_chain(inputs, outputs):
    """True when ``Model(inputs, outputs)`` is one chain: one input, one output, each call on the previous
    call's one output (the Sequential model of the layers)."""
    ins, _, _ = _flatten(inputs, "inputs")
    outs, _, single_out = _flatten(outputs, "outputs")
    if len(ins) != 1 or len(outs) != 1 or isinstance(inputs, dict) or isinstance(outputs, dict):
        return False
    t, seen = outs[0], set()
    while isinstance(t, KerasTensor):
        node = t.node
        if node is None or len(node.outputs) != 1 or node.initial_state or isinstance(node.args, list) \
                or id(node.layer) in seen:
            return False
        seen.add(id(node.layer))
        t = node.args
    return t is ins[0]


def _add(grads, tensor, g):
    key = id(tensor)
    grads[key] = g if key not in grads else grads[key] + g


class Functional(Model):
    """A functional model whose layers form a graph (see the module's docstring)."""

    _own_training_step = True  # its step is not the Trainer's (DataParallel across ranks refuses it)

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True, **kwargs):
        if kwargs:
            raise TypeError(f"Model: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
        Sequential.__init__(self, name=name if name is not None else layers_mod._unique_name("functional"),
                            trainable=trainable)
        self._set_graph(inputs, outputs)
        self.build()

    def _set_graph(self, inputs, outputs):
        """The calls from ``inputs`` to ``outputs``, in order, and the layers they use (each once)."""
        ins, input_keys, single_input = _flatten(inputs, "inputs")
        outs, output_keys, single_output = _flatten(outputs, "outputs")
        for i in ins:
            if not isinstance(i, InputLayer):
                raise TypeError(f"Model: inputs must come from gradsmith.Input(...), got {type(i).__name__}")
        if len({id(i) for i in ins}) != len(ins):
            raise ValueError("Model: an input is given twice")
        nodes = _nodes_to(outs, ins)
        names, calls = set(), {}
        for node in nodes:
            calls[id(node.layer)] = calls.get(id(node.layer), 0) + 1
            if calls[id(node.layer)] > 1:
                continue  # a shared layer: one set of weights, several calls
            if node.layer.name in names:
                raise ValueError(f"Model: two layers are named {node.layer.name!r}; layer names must be unique")
            names.add(node.layer.name)
        layers = _keras_layer_order(outs)
        self._input_keys, self._single_input = input_keys, single_input
        self._output_keys, self._single_output = output_keys, single_output
        self._nodes, self._layers = nodes, layers
        self._shared = {key for key, count in calls.items() if count > 1}  # id() of layers called several times
        self._node_states = {}  # a shared layer's state after each of its training calls (for its backward)
        self.inputs, self.outputs = ins, outs
        self._input_layer = ins[0]
        # One chain (a traced subclassed model can be): the compiled step runs it as it runs a Sequential model.
        self._chain = is_chain(inputs, outputs) and not isinstance(inputs, dict) and self._single_input

    # ------------------------------------------------------------------ structure
    @property
    def _declared_input_shape(self):
        return None  # a graph model is not the start of a Sequential one

    @property
    def output_names(self):
        return list(self._output_keys) if self._output_keys is not None else [t.layer.name for t in self.outputs]

    def build(self, input_shape=None):
        """The layers were built as they were called: gather their weights into the model's buffer."""
        self._gather_weights()
        self.input_shape = [tuple(i.shape) for i in self.inputs]
        self.output_shape = [tuple(t.shape) for t in self.outputs]
        if len(self.inputs) == 1:
            self.input_shape = self.input_shape[0]
        if self._single_output:
            self.output_shape = self.output_shape[0]
        self.built = True

    def compute_output_shape(self, input_shape):
        return self.output_shape

    def _first_layer(self):
        return None

    def _compiled_step(self):
        if getattr(self, "_chain", False):
            return Sequential._compiled_step(self)
        self._plan_reason = "a functional model with branches, merges or several inputs or outputs runs layer " \
                            "by layer"
        return None

    def _existing_compiled_step(self):
        return Sequential._existing_compiled_step(self) if getattr(self, "_chain", False) else None

    def _check_arrays_before_training(self, train, val):
        return None  # each batch is checked as it comes (_prepare_batch)

    def _output_shape_for(self, in_shape):
        return None

    # ------------------------------------------------------------------ data
    def _prepare_batch(self, x, y, sw):
        """x as one array per input, in the inputs' order (from a list, a tuple, a dict by input name or key,
        or one array for one input), each converted and checked against its Input."""
        if isinstance(x, data_adapter.Columns):
            x = x.unpack()
        if isinstance(x, dict):
            keys = self._input_keys or [i.name for i in self.inputs]
            missing = [k for k in keys if k not in x]
            if missing:
                raise ValueError(f"x: no data for the input(s) {missing}; the model's inputs are {keys}")
            x = [x[k] for k in keys]
        elif not isinstance(x, (list, tuple)):
            x = [x]
        if len(x) != len(self.inputs):
            raise ValueError(f"model {self.name!r} has {len(self.inputs)} input(s), x gives {len(x)}")
        out, rows = [], None
        for value, inp in zip(x, self.inputs):
            data_adapter.reject_masked(value, f"x for {inp.name!r}")
            a = np.asarray(value)
            if a.dtype.kind not in "biuf":
                raise TypeError(f"x for input {inp.name!r}: expected numeric data, got dtype {a.dtype}")
            integer = a.dtype.kind in "biu" and inp.input_dtype in ("int32", "int64")
            a = np.ascontiguousarray(a, dtype=np.int64 if integer else np.float32)
            want = inp.shape[1:]
            if a.ndim != len(want) + 1 or any(w is not None and w != d for w, d in zip(want, a.shape[1:])):
                raise ValueError(f"input {inp.name!r} takes arrays of shape {(None,) + tuple(want)}, got {a.shape}")
            if rows is not None and len(a) != rows:
                raise ValueError(f"x: the inputs have different numbers of samples ({rows} and {len(a)})")
            rows = len(a)
            out.append(a)
        return out, y, sw

    def _targets(self, y, what="y"):
        """y (or sample weights) as one array (or None) per output: a list, a dict by output name, or (sample
        weights only) one array for every output."""
        if isinstance(y, data_adapter.Columns):
            y = y.unpack()
        if self._single_output:
            return [y]
        if isinstance(y, dict):
            names = self.output_names
            unknown = [k for k in y if k not in names]
            if unknown:
                raise ValueError(f"{what}: {unknown} are not outputs of the model; its outputs are {names}")
            return [y.get(k) for k in names]
        if what == "sample_weight" and not isinstance(y, (list, tuple)):
            return [y] * len(self.outputs)
        if not isinstance(y, (list, tuple)) or len(y) != len(self.outputs):
            raise ValueError(f"model {self.name!r} has {len(self.outputs)} outputs: {what} must be a list of "
                             f"{len(self.outputs)} arrays or a dict by output name ({self.output_names})")
        return list(y)

    # ------------------------------------------------------------------ math
    def _forward(self, x, training):
        """Each call in order on the values of its inputs; Keras's masks go along each tensor."""
        values = {id(i): v for i, v in zip(self.inputs, x)}
        masks = {}
        for node in self._nodes:
            layer = node.layer
            if isinstance(node.args, list):
                args = [values[id(t)] for t in node.args]
                mask = [masks.get(id(t)) for t in node.args]
                if all(m is None for m in mask):
                    mask = None
            else:
                args, mask = values[id(node.args)], masks.get(id(node.args))
            if mask is not None and not getattr(layer, "supports_masking", False) \
                    and type(layer).__name__ in _READS_MASK_IN_KERAS:
                raise NotImplementedError(f"layer {layer.name!r} ({type(layer).__name__}) gets a mask, which it "
                                          "reads in Keras and gradsmith does not support for it yet")
            layer._input_mask = mask
            try:
                if node.initial_state:
                    y = layer.forward(args, training=training,
                                      initial_state=[values[id(t)] for t in node.initial_state])
                else:
                    y = layer.forward(args, training=training)
            finally:
                layer._input_mask = None
            if training and id(layer) in self._shared:
                self._node_states[id(node)] = dict(layer.__dict__)  # what this call's backward needs
            out_mask = layer.compute_mask(args, mask)
            ys = list(y) if len(node.outputs) > 1 else [y]
            if len(ys) != len(node.outputs):
                raise ValueError(f"layer {layer.name!r} returned {len(ys)} outputs, its call made "
                                 f"{len(node.outputs)}")
            out_masks = list(out_mask) if isinstance(out_mask, list) else [out_mask] + [None] * (len(ys) - 1)
            for t, v, m in zip(node.outputs, ys, out_masks):
                values[id(t)] = v
                masks[id(t)] = m
        outs = [values[id(t)] for t in self.outputs]
        out_masks = [masks.get(id(t)) for t in self.outputs]
        self._output_mask = out_masks[0] if self._single_output else out_masks
        return outs[0] if self._single_output else outs

    def _backward(self, dy):
        """The gradients from the outputs' back through each call, in reverse order. A call none of whose
        outputs gets a gradient is skipped, and its layer's weight gradients are zero."""
        grads = {}
        for t, g in zip(self.outputs, [dy] if self._single_output else dy):
            if g is not None:
                _add(grads, t, np.asarray(g, np.float32))
        # A shared layer's weight gradients are the sum over its calls (its penalty's gradient counted once).
        shared_sums = {id(l): [np.zeros(w.shape, np.float32) for w in l._weights if w.grad is not None]
                       for l in self._layers if id(l) in self._shared}
        for node in reversed(self._nodes):
            layer = node.layer
            gs = [grads.pop(id(t), None) for t in node.outputs]
            if all(g is None for g in gs):
                if id(layer) not in self._shared:
                    for w in layer._weights:
                        if w.grad is not None:
                            w.grad[...] = 0
                continue
            need_dx = any(not isinstance(t, InputLayer) for t in node.inputs)
            d = gs[0] if len(gs) == 1 else gs
            if id(layer) in self._shared:
                layer.__dict__.update(self._node_states.pop(id(node)))
            dx = layer.backward(d, need_dx=need_dx)
            if id(layer) in self._shared:
                for acc, w in zip(shared_sums[id(layer)], [w for w in layer._weights if w.grad is not None]):
                    acc += w.grad
                    if w.regularizer is not None:
                        acc -= w.regularizer.gradient(w.value)
            if isinstance(node.args, list):
                dxs = list(dx) if dx is not None else [None] * len(node.args)
            else:
                dxs = [dx]
            if node.initial_state:
                states = getattr(layer, "initial_state_grads", None) or [None] * len(node.initial_state)
                dxs += list(states)
            for t, g in zip(node.inputs, dxs):
                if g is not None and not isinstance(t, InputLayer):
                    _add(grads, t, g)
        for layer in self._layers:
            if id(layer) in shared_sums:
                for acc, w in zip(shared_sums[id(layer)], [w for w in layer._weights if w.grad is not None]):
                    if w.regularizer is not None:
                        acc += w.regularizer.gradient(w.value)
                    w.grad[...] = acc
        self._node_states.clear()

    def forward(self, x, training=False):
        return self._forward(x if isinstance(x, (list, tuple)) else [x], training=training)

    def backward(self, dy, need_dx=True):
        raise NotImplementedError(f"model {self.name!r}: a functional model with branches, merges or several "
                                  "inputs or outputs cannot be a layer of another model yet")

    def __call__(self, x, training=False):
        if layers_mod.base.is_symbolic(x):
            raise NotImplementedError(f"model {self.name!r}: a functional model with branches, merges or several "
                                      "inputs or outputs cannot be a layer of another model yet")
        xs, _, _ = self._prepare_batch(x, None, None)
        return self._pack(self._forward(xs, training=training))

    def _pack(self, outs):
        if self._output_keys is not None:
            return dict(zip(self._output_keys, outs))
        return outs

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        out = super().predict(x, batch_size=batch_size, verbose=verbose, steps=steps, callbacks=callbacks)
        return out if self._single_output else self._pack(out)

    def predict_on_batch(self, x):
        xs, _, _ = self._prepare_batch(x, None, None)
        return self._pack(self._forward(xs, training=False))

    # ------------------------------------------------------------------ losses and metrics per output
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                **kwargs):
        """Keras's compile. With several outputs: ``loss`` one for all, a list (one per output, None for an
        output without a loss) or a dict by output name; ``loss_weights`` and ``metrics`` likewise."""
        if self._single_output:
            return super().compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights, metrics=metrics,
                                   weighted_metrics=weighted_metrics, **kwargs)
        n, names = len(self.outputs), self.output_names
        per_loss = self._per_output(loss, "loss", lambda v: v is None or not isinstance(v, (list, tuple, dict)))
        if all(l is None for l in per_loss):
            per_loss = None
        weights = self._per_output(1.0 if loss_weights is None else loss_weights, "loss_weights",
                                   lambda v: isinstance(v, (int, float)), default=1.0)
        per_metrics = self._per_output_metrics(metrics, "metrics")
        per_weighted = self._per_output_metrics(weighted_metrics, "weighted_metrics")
        super().compile(optimizer=optimizer, loss=None, metrics=None, weighted_metrics=None, **kwargs)
        self._output_losses = None if per_loss is None else \
            [None if l is None else losses.get(l) for l in per_loss]
        self.loss = self._output_losses and _OutputLosses(self._output_losses)
        self._output_loss_weights = [float(w) for w in weights]
        self._output_metric_ids, self._output_weighted_ids = per_metrics, per_weighted
        self._output_metrics = None
        self._compile_config.update(loss=loss, loss_weights=loss_weights, metrics=metrics)
        self._output_loss_sums = np.zeros(n)
        self._output_counts = 0
        del names

    def _per_output(self, value, what, is_one, default=None):
        n, names = len(self.outputs), self.output_names
        if isinstance(value, dict):
            unknown = [k for k in value if k not in names]
            if unknown:
                raise ValueError(f"{what}: {unknown} are not outputs of the model; its outputs are {names}")
            return [value.get(k, default) for k in names]
        if isinstance(value, (list, tuple)):
            if len(value) != n:
                raise ValueError(f"{what}: the model has {n} outputs, got a list of {len(value)}")
            return list(value)
        if not is_one(value):
            raise ValueError(f"{what}: expected one value, a list of {n} or a dict by output name, got {value!r}")
        return [value] * n

    def _per_output_metrics(self, value, what):
        n, names = len(self.outputs), self.output_names
        if value is None:
            return [[] for _ in range(n)]
        if isinstance(value, dict):
            unknown = [k for k in value if k not in names]
            if unknown:
                raise ValueError(f"{what}: {unknown} are not outputs of the model; its outputs are {names}")
            per = [value.get(k) for k in names]
        elif isinstance(value, (list, tuple)) and len(value) == n and \
                all(v is None or isinstance(v, (list, tuple)) for v in value):
            per = list(value)
        elif isinstance(value, (list, tuple)) and len(value) == n:
            per = [[v] for v in value]
        else:
            raise ValueError(f"{what}: a model with {n} outputs takes a list of {n} (lists of) metrics or a dict by "
                             f"output name ({names}), got {value!r}")
        return [[] if v is None else (list(v) if isinstance(v, (list, tuple)) else [v]) for v in per]

    def _multi(self):
        return not self._single_output and getattr(self, "_output_metric_ids", None) is not None

    def _resolve_metrics(self):
        if not self._multi():
            return super()._resolve_metrics()
        if self._output_metrics is None:
            losses_ = self._output_losses or [None] * len(self.outputs)
            self._output_metrics = [
                ([metrics_mod.resolve(m, loss, t.shape) for m in ids],
                 [metrics_mod.resolve(m, loss, t.shape) for m in wids])
                for ids, wids, loss, t in zip(self._output_metric_ids, self._output_weighted_ids, losses_,
                                              self.outputs)]
            self.compiled_metrics = [m for plain, _ in self._output_metrics for m in plain]
            self.compiled_weighted_metrics = [m for _, weighted in self._output_metrics for m in weighted]
        return self.compiled_metrics

    @property
    def metrics_names(self):
        if not self._multi():
            return super().metrics_names
        self._resolve_metrics()
        return list(self._logs_here(0.0, 1).keys())

    def _reset_metrics(self):
        super()._reset_metrics()
        if self._multi():
            self._output_loss_sums[:] = 0
            self._output_counts = 0

    def _logs_here(self, loss_sum, count, prefix=""):
        if not self._multi():
            return super()._logs_here(loss_sum, count, prefix)
        logs = {prefix + "loss": float(loss_sum / count) if count else float("nan")}
        names = self.output_names
        for i, name in enumerate(names):
            if self._output_losses is not None and self._output_losses[i] is not None:
                logs[f"{prefix}{name}_loss"] = float(self._output_loss_sums[i] / self._output_counts) \
                    if self._output_counts else float("nan")
            plain, weighted = self._output_metrics[i]
            for m in plain + weighted:
                r = m.result()
                logs[f"{prefix}{name}_{m.name}"] = float(r) if np.ndim(r) == 0 else np.asarray(r)
        return dict(sorted(logs.items()))  # Keras 3 logs a multi-output model's entries in name order

    def _update_metrics(self, y, y_pred, sw):
        if not self._multi():
            return super()._update_metrics(y, y_pred, sw)
        from gradsmith.trainer import _masked_weights
        masks = self._output_mask
        for i, (plain, weighted) in enumerate(self._output_metrics):
            if y[i] is None:
                continue
            for m in plain:
                m.update_state(y[i], y_pred[i], **_masked_weights(m, masks[i], None))
            for m in weighted:
                m.update_state(y[i], y_pred[i], **_masked_weights(m, masks[i], sw[i]))

    def _losses_of(self, y, preds, sw, with_grads):
        """(weighted total, [per-output loss], [per-output gradient of the total] or None) of one batch."""
        masks = [self._output_mask] if self._single_output else self._output_mask
        losses_ = self._output_losses if self._multi() else [self.loss]
        weights = self._output_loss_weights if self._multi() else [self.loss_weight]
        total, values, grads = 0.0, [], []
        for i, (loss, w) in enumerate(zip(losses_, weights)):
            if loss is None or y[i] is None:
                if loss is not None and y[i] is None:
                    raise ValueError(f"y: no targets for the output {self.output_names[i]!r}, which has a loss")
                values.append(0.0)
                grads.append(None)
                continue
            with y_pred_mask(masks[i]):
                if with_grads:
                    v, g = loss.value_and_grad(y[i], preds[i], sw[i])
                    grads.append(g * np.float32(w) if w != 1.0 else g)
                else:
                    v = loss(y[i], preds[i], sample_weight=sw[i])
            values.append(float(v))
            total += w * float(v)
        return total, values, grads if with_grads else None

    def _python_train_step_body(self, x, y, sw):
        xs, y, sw = self._prepare_batch(x, y, sw)
        rows = len(xs[0])
        y, sw = self._targets(y), self._targets(sw, "sample_weight")
        out = self._forward(xs, training=True)
        preds = [out] if self._single_output else out
        total, values, grads = self._losses_of(y, preds, sw, with_grads=True)
        self._backward(grads[0] if self._single_output else grads)
        total += self._regularization()
        self._apply_gradients()
        self._record_output_losses(values, rows)
        self._update_metrics(y[0] if self._single_output else y, out, sw[0] if self._single_output else sw)
        return total, rows

    def _test_step(self, x, y, sw):
        xs, y, sw = self._prepare_batch(x, y, sw)
        rows = len(xs[0])
        y, sw = self._targets(y), self._targets(sw, "sample_weight")
        out = self._forward(xs, training=False)
        preds = [out] if self._single_output else out
        total, values, _ = self._losses_of(y, preds, sw, with_grads=False)
        total += self._regularization()
        self._record_output_losses(values, rows)
        self._update_metrics(y[0] if self._single_output else y, out, sw[0] if self._single_output else sw)
        return total, rows

    def _record_output_losses(self, values, rows):
        if self._multi():
            self._output_loss_sums += np.asarray(values) * rows
            self._output_counts += rows

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        if class_weight is not None and not self._single_output:
            raise ValueError("class_weight is not supported for a model with several outputs")
        return super().train_on_batch(x, y, sample_weight, class_weight, return_dict)

    # ------------------------------------------------------------------ config
    def get_config(self):
        """Keras 3's Functional config: each layer with its call's inbound node, the inputs and outputs."""
        made_by, calls = {}, {}
        for node in self._nodes:
            k = calls.setdefault(id(node.layer), [])
            for i, t in enumerate(node.outputs):
                made_by[id(t)] = (node.layer.name, len(k), i)
            k.append(node)

        def ref(t):
            return [t.name, 0, 0] if isinstance(t, InputLayer) else list(made_by[id(t)])

        def tensor(t):
            return {"class_name": "__keras_tensor__",
                    "config": {"shape": _shape_list(t.shape), "dtype": getattr(t, "input_dtype", "float32"),
                               "keras_history": ref(t)}}

        def inbound(node):
            args = [tensor(t) for t in node.args] if isinstance(node.args, list) else tensor(node.args)
            kwargs = {"initial_state": [tensor(t) for t in node.initial_state]} if node.initial_state else {}
            return {"args": [args], "kwargs": kwargs}

        entries = [{**serialize(i), "name": i.name, "inbound_nodes": []} for i in self.inputs]
        for layer in self._layers:
            entries.append({**serialize(layer), "name": layer.name,
                            "inbound_nodes": [inbound(node) for node in calls[id(layer)]]})

        def endpoints(tensors, keys, single):
            refs = [ref(t) for t in tensors]
            if keys is not None:
                return dict(zip(keys, refs))
            return refs[0] if single else refs

        return {"name": self.name, "trainable": self.trainable, "layers": entries,
                "input_layers": endpoints(self.inputs, self._input_keys, self._single_input),
                "output_layers": endpoints(self.outputs, self._output_keys, self._single_output)}

    @classmethod
    def from_config(cls, config):
        return from_config(config)

    def get_compile_config(self):
        config = super().get_compile_config()
        if self._multi():
            saved = self._compile_config
            config.update(loss=saved.get("loss"), loss_weights=saved.get("loss_weights"),
                          metrics=saved.get("metrics"), weighted_metrics=None)
        return config

    def compile_from_config(self, config):
        if self._single_output:
            return super().compile_from_config(config)
        optimizer = config.get("optimizer")
        self.compile(optimizer=optimizer if optimizer is not None else "rmsprop", loss=config.get("loss"),
                     loss_weights=config.get("loss_weights"), metrics=config.get("metrics"))
        self._resolve_metrics()

    def _serialize_as_layer(self):
        raise NotImplementedError(f"model {self.name!r}: a functional model with branches, merges or several "
                                  "inputs or outputs cannot be a layer of another model yet")

    def get_build_config(self):
        self._require_built("get_build_config")
        return {"input_shape": None}

    def build_from_config(self, config):
        pass  # built from its config

    def __reduce__(self):
        from gradsmith import saving
        return saving._unpickle_model, (saving._keras_bytes(self),)


class _OutputLosses:
    """The losses of a model's several outputs (``Functional.compile``): what ``model.loss`` is then."""

    def __init__(self, per_output):
        self.per_output = per_output
        self.name = "loss"

    def _kernel_spec(self):
        return None


def _history(entry):
    """(layer name, call index, tensor index) of a ``__keras_tensor__`` argument."""
    if isinstance(entry, dict) and entry.get("class_name") == "__keras_tensor__":
        history = (entry.get("config") or {}).get("keras_history")
        if isinstance(history, list) and len(history) == 3 and isinstance(history[0], str) and \
                all(isinstance(v, int) and not isinstance(v, bool) for v in history[1:]):
            return history[0], history[1], history[2]
    raise ValueError(f"not a Keras tensor reference: {entry!r:.200}")


def from_config(config, build=True):
    """A Keras 3 Functional config (any graph of single-call layers) as a gradsmith model: a chain comes back
    as the chain Model (Sequential-based: its size is checked before anything is allocated; ``build=False``
    leaves it unbuilt), anything else as a Functional, whose layers are checked one by one against
    ``gradsmith.config.get_max_weights()`` before each is built."""
    if _config_is_chain(config):
        try:
            return models._functional_from_config(config, build=build)
        except NotImplementedError:
            pass  # layers off the chain: a graph
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ValueError(f"a Functional configuration is a dict with a list of layers, got {config!r:.200}")
    if "input_layers" not in config or "output_layers" not in config:
        raise ValueError("a Functional configuration names its input_layers and output_layers; this one has none "
                         "(a Sequential model's configuration?)")
    if not isinstance(config.get("name"), (str, type(None))):
        raise ValueError(f"the model's name must be a string, got {config.get('name')!r}")
    made, pending = {}, []
    for entry in config["layers"]:
        if not isinstance(entry, dict):
            raise ValueError(f"not a layer configuration: {entry!r:.200}")
        name = entry.get("name", (entry.get("config") or {}).get("name"))
        if not isinstance(name, str) or (name, 0) in made or any(name == p[0] for p in pending):
            raise ValueError(f"a functional model's layers need distinct names, got {name!r}")
        nodes = entry.get("inbound_nodes") or []
        if not isinstance(nodes, list) or len(nodes) > 1024:
            raise ValueError(f"layer {name!r}: inbound_nodes must be a list (of at most 1024 calls)")
        layer = deserialize({k: v for k, v in entry.items() if k not in ("name", "inbound_nodes")})
        if isinstance(layer, InputLayer):
            made[(name, 0)] = [layer]
            continue
        if not nodes or not all(isinstance(n, dict) for n in nodes):
            raise ValueError(f"layer {name!r} has no inbound node")
        for k, node in enumerate(nodes):
            pending.append((name, layer, node, k))

    def value(ref):
        layer_name, call, index = _history(ref)
        outs = made.get((layer_name, call))
        if outs is None:
            return None
        if not 0 <= index < len(outs):
            raise ValueError(f"layer {layer_name!r} has no output {index}")
        return outs[index]

    total = 0
    while pending:
        progress = False
        for item in list(pending):
            name, layer, node, k = item
            if any(p[1] is layer and p[3] < k for p in pending):
                continue  # a shared layer's calls in their order
            args, kwargs = node.get("args"), node.get("kwargs") or {}
            if not isinstance(args, list) or len(args) != 1 or not isinstance(kwargs, dict):
                raise NotImplementedError(f"layer {name!r}: a call with arguments {args!r:.200} is not supported")
            arg = args[0]
            x = [value(a) for a in arg] if isinstance(arg, list) else value(arg)
            state = kwargs.get("initial_state")
            states = [value(a) for a in state] if isinstance(state, list) else None
            if x is None or (isinstance(x, list) and any(v is None for v in x)) or \
                    (states is not None and any(v is None for v in states)):
                continue
            if k == 0:
                total += _checked_size(layer, [tuple(v.shape) for v in x] if isinstance(x, list) else tuple(x.shape),
                                       total)
            out = layer(x, initial_state=states) if states is not None else layer(x)
            made[(name, k)] = list(out) if isinstance(out, list) else [out]
            pending.remove(item)
            progress = True
        if not progress:
            raise ValueError(f"the functional model's layers {[p[0] for p in pending]} read outputs of layers it "
                             "does not have")

    def endpoints(value_, what):
        if isinstance(value_, dict):
            return {k: endpoint(v, what) for k, v in value_.items()}
        if isinstance(value_, list) and len(value_) == 3 and isinstance(value_[0], str):
            return endpoint(value_, what)
        if isinstance(value_, list) and value_:
            return [endpoint(v, what) for v in value_]
        raise ValueError(f"a functional model's {what} must name layers, got {value_!r:.200}")

    def endpoint(ref, what):
        if not (isinstance(ref, list) and len(ref) == 3 and isinstance(ref[0], str)):
            raise ValueError(f"a functional model's {what} must name layers, got {ref!r:.200}")
        return value({"class_name": "__keras_tensor__", "config": {"keras_history": ref}}) or \
            _missing(ref[0], what)

    inputs = endpoints(config["input_layers"], "input_layers")
    outputs = endpoints(config["output_layers"], "output_layers")
    model = Model(inputs=inputs, outputs=outputs, name=config.get("name"),
                  trainable=bool(config.get("trainable", True)))
    return model


def _config_is_chain(config):
    """Whether a Functional config may be one chain: one input, one output, each layer called once on one
    tensor that is another layer's first output, without recurrent states."""
    def one_ref(value):
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
            value = value[0]
        return isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and value[1:] == [0, 0]

    if not (one_ref(config.get("input_layers")) and one_ref(config.get("output_layers"))):
        return False
    for entry in config.get("layers") or []:
        nodes = entry.get("inbound_nodes") if isinstance(entry, dict) else None
        if not nodes:
            continue
        node = nodes[0] if isinstance(nodes, list) and len(nodes) == 1 else None
        args = node.get("args") if isinstance(node, dict) else None
        if not isinstance(args, list) or len(args) != 1 or not isinstance(args[0], dict) or \
                "initial_state" in (node.get("kwargs") or {}):
            return False
        history = (args[0].get("config") or {}).get("keras_history")
        if not (isinstance(history, list) and len(history) == 3 and history[1:] == [0, 0]):
            return False
    return True


def _checked_size(layer, shape, total):
    """The number of weights ``layer`` will make for inputs of ``shape``, nothing allocated; ValueError when
    the model's total would pass the limit."""
    if layer.built or not is_builtin(layer):
        return 0
    sizes, _ = implied_weights(layer, shape)
    limit = config_mod.get_max_weights()
    if total + sum(sizes) > limit:
        raise ValueError(f"the functional model's weights would hold more than the limit of {limit:,} values (at "
                         f"layer {layer.name!r}); raise it with gradsmith.config.set_max_weights (or max_weights= "
                         "when loading a file)")
    return sum(sizes)


def _missing(name, what):
    raise ValueError(f"the functional model's {what} name {name!r}, which is not one of its layers")


class Subclassed(Functional):
    """A subclassed model (``class MyModel(gradsmith.Model)`` with layers made in ``__init__`` and a ``call``
    that composes them). ``call`` is traced once, on symbolic inputs shaped like the first data the model
    sees (or ``build(input_shape)``): the calls it makes are the model's graph, which then trains, evaluates
    and predicts as a functional model. ``call`` may use gradsmith's layers (and Python around them), not
    tensor arithmetic on their outputs; whatever it does with the ``training`` flag is fixed by the trace
    (``training=False``)."""

    # Keras's hooks for a training loop of one's own (GradientTape / jax.grad): gradsmith has no autodiff to run
    # them, so a subclass that overrides one is refused rather than trained with the hook silently ignored.
    _OWN_LOOP_HOOKS = ("train_step", "test_step", "predict_step", "compute_loss")

    def __init__(self, *args, name=None, trainable=True, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}: Model.__init__ takes name= and trainable= in a subclassed "
                            f"model, got {args!r:.100} {sorted(kwargs)}")
        hooks = [h for h in self._OWN_LOOP_HOOKS if any(h in vars(c) for c in type(self).__mro__
                                                         if not c.__module__.startswith("gradsmith."))]
        if hooks:
            raise NotImplementedError(f"{type(self).__name__} overrides {', '.join(hooks)}: a training loop of one's "
                                      "own needs automatic differentiation, which gradsmith does not have; gradsmith "
                                      "trains a subclassed model by tracing its call() (use gradsmith.Distiller for "
                                      "distillation)")
        Sequential.__init__(self, name=name if name is not None else
                            layers_mod._unique_name(layers_mod.base._snake(type(self).__name__)), trainable=trainable)
        self.inputs = self.outputs = None
        self._nodes, self._shared, self._node_states = [], set(), {}
        self._input_keys = self._output_keys = None
        self._single_input = self._single_output = True

    def call(self, inputs, training=False):
        raise NotImplementedError(f"{type(self).__name__} defines no call()")

    def _trace(self, inputs):
        try:
            outputs = self.call(inputs)
        except (TypeError, AttributeError, ValueError) as e:
            raise NotImplementedError(
                f"model {self.name!r}: its call() could not be traced on symbolic inputs ({type(e).__name__}: {e}). "
                "gradsmith runs subclassed models whose call() composes gradsmith layers; arithmetic on "
                "tensors (x + y, keras.ops...) needs a layer (Add, Multiply, Activation, ...)") from None
        self._set_graph(inputs, outputs)
        self._check_size(None)
        Functional.build(self)

    def _check_size(self, input_shape):
        limit = config_mod.get_max_weights()
        total = sum(w.size for layer in self._layers for w in layer._weights)
        if total > limit:
            raise ValueError(f"model {self.name!r}: its weights hold {total:,} values, more than the limit of "
                             f"{limit:,}; raise it with gradsmith.config.set_max_weights")

    def build(self, input_shape=None):
        """Trace ``call`` on float32 inputs of ``input_shape`` (a shape, or a list of shapes for several)."""
        if self.built:
            return
        if input_shape is None:
            raise ValueError(f"model {self.name!r}: build() needs an input shape")
        several = isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple))
        shapes = list(input_shape) if several else [input_shape]
        inputs = [layers_mod.Input(batch_shape=tuple(s)) for s in shapes]
        self._trace(inputs if several else inputs[0])

    def _trace_from_data(self, x):
        if isinstance(x, data_adapter.Columns):
            x = x.unpack()

        def one(a, name=None):
            a = np.asarray(a)
            dtype = "int64" if a.dtype.kind in "biu" else "float32"
            return layers_mod.Input(shape=a.shape[1:], dtype=dtype, name=name)

        if isinstance(x, dict):
            self._trace({k: one(v, k) for k, v in x.items()})
        elif isinstance(x, (list, tuple)) and all(np.ndim(v) >= 1 for v in x) and \
                data_adapter.is_structure(list(map(np.asarray, x))):
            self._trace([one(v) for v in x])
        else:
            self._trace(one(x))

    def _ensure_built(self, x):
        if not self.built:
            self._trace_from_data(x)

    def _ensure_built_from(self, x):
        if not self.built:
            self._trace_from_data(x)
        return self.built

    def _prepare_batch(self, x, y, sw):
        if not self.built:
            self._trace_from_data(x)
        return super()._prepare_batch(x, y, sw)

    def get_config(self):
        self._require_built("get_config")
        return super().get_config()


models._GRAPH_MODEL.append(sys.modules[__name__])
saving.register_model_class(Functional, "Functional")

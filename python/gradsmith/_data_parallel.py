"""fit / evaluate / predict under gradsmith.distribution's DataParallel: the trainer's steps split over ranks.

One training step on a global batch of N rows, on rank r of R (``distribution.share``: rows [lo, hi)):

    gradients   CpuRunner.gradient_step on rows [lo, hi), scale n_r / N, first row lo
                -> the flat gradient buffer holds n_r / N times the mean over this rank's rows (penalties'
                   added): the plan scales dL/dy_pred before backward, no pass over the buffer; Dropout
                   draws the masks of global rows lo..; BatchNormalization sums its statistics over the ranks
                   through group.sum_ inside the pass (the layer-by-layer path scales the buffer after)
    all-reduce  g = sum over ranks of g                     one MPI_Allreduce of the whole buffer
    stats       [loss * n_r, n_r, N, N * N] summed          the global loss; N and N^2 check every rank's batch
    update      CpuRunner.apply_gradients (the fused optimizer) with the same learning rate and step everywhere

Metrics are updated on each rank's rows and summed over ranks (their state variables, ``_state_names``) when
logs are made, so each log is a collective: every rank makes logs at the same points (batch hooks run on every
rank when any rank has them).
"""
import contextlib
import time

import numpy as np

from gradsmith import callbacks as callbacks_mod
from gradsmith import layers as L
from gradsmith import metrics as M
from gradsmith.callbacks.callback_list import _flatten_callbacks
from gradsmith.distribution import DistributionError

__all__ = []

# Seconds spent in the gradient all-reduce and the steps that ran one, since the process started (or a
# benchmark zeroed them): benchmarks/bench_mpi.py reads them.
TIMES = {"allreduce": 0.0, "steps": 0}


def rank_callbacks(group, callbacks, verbose):
    """The callbacks and verbosity this rank runs fit with: rank 0 all of them; the others no progress bar
    and none that writes files (ModelCheckpoint, CSVLogger, TensorBoard)."""
    if group.rank == 0:
        return callbacks, verbose
    writers = (callbacks_mod.ModelCheckpoint, callbacks_mod.CSVLogger, callbacks_mod.TensorBoard,
               callbacks_mod.ProgbarLogger)
    kept = [cb for cb in _flatten_callbacks(callbacks) if not isinstance(cb, writers)]
    return kept, 0


def check_model(group, model, what):
    """Refuse what data parallelism would get silently wrong across ranks (several processes only)."""
    if group.size == 1:
        return
    if getattr(model, "device", "cpu") != "cpu":
        raise DistributionError(f"{what}: DataParallel across processes trains on the CPU; the model is compiled "
                                f"for {model.device} (the GPU path is not built yet: docs/distribution.md)")
    if getattr(model, "_own_training_step", False):
        raise DistributionError(f"{what}: DataParallel across processes runs Sequential models and functional chains; "
                                f"model {model.name!r} ({type(model).__name__}) has a training step of its own "
                                "(several inputs or outputs, a subclassed model, a Distiller), which does not split "
                                "over ranks yet")


def _leaf_layers(model):
    leaves = getattr(model, "_leaf_layers", None)
    return list(leaves()) if leaves is not None else list(model._layers)


# Metrics whose state is made on the first update (its shape comes from the data), so they list no
# _state_names: the state variables, every one a sum over samples.
_LAZY_STATES = ((M.AUC, ("true_positives", "true_negatives", "false_positives", "false_negatives")),
                (M.FBetaScore, ("true_positives", "false_positives", "false_negatives", "intermediate_weights")),
                (M.R2Score, ("num_samples", "squared_sum", "sum", "total_mse", "count")))


def _state_names(metric):
    """The names of a metric's state variables, each a sum over samples (so summed over ranks), or ():
    ``_state_names``, and the attributes holding the arrays ``variables`` lists besides (Precision's false
    positives)."""
    for cls, lazy in _LAZY_STATES:
        if isinstance(metric, cls):
            return lazy
    names = list(getattr(metric, "_state_names", ()))
    try:
        variables = metric.variables
    except (AttributeError, TypeError, ValueError):
        variables = []
    for v in variables:
        if isinstance(v, np.ndarray) and v.ndim:
            names += [k for k, a in vars(metric).items() if a is v and k not in names]
    return tuple(names)


def check_metrics(group, model):
    """Every metric's state can be summed over ranks (checked before training, on every rank alike)."""
    if group.size == 1:
        return
    for m in model._resolve_metrics() + model.compiled_weighted_metrics:
        if not _state_names(m):
            raise DistributionError(f"metric {m.name!r} ({type(m).__name__}) under DataParallel across processes: "
                                    "its state is not known to be sums over samples, so it cannot be combined "
                                    "over ranks; compute it after training, in one process")


def prepare_fit(group, model, train, val, epochs):
    """Before fit's first epoch: the same data and epochs on every rank, and each epoch's shuffle drawn from
    one seed of rank 0's (so it is the same on every rank, and alone the same as on N ranks)."""
    arrays = train.array_data
    check_metrics(group, model)
    group.check_same(the_training_samples=None if arrays is None else arrays.num_samples,
                     the_batch_size=None if arrays is None else arrays.batch_size,
                     the_batches_per_epoch=train.num_batches(),
                     the_validation_batches=None if val is None else val.num_batches(), epochs=epochs)
    if arrays is not None and arrays.shuffle:
        seed = group.bcast(int(arrays._rng.integers(2 ** 63)) if group.rank == 0 else None)
        arrays._rng = np.random.default_rng(seed)


def _batch_norms(model):
    """The BatchNormalization layers that train on the batch's statistics (summed over ranks)."""
    return [layer for layer in _leaf_layers(model) if isinstance(layer, L.BatchNormalization) and layer.trainable]


def _no_rows_batch_norm(group, model):
    """A rank without rows in a step joins the sums over ranks its BatchNormalization layers make (C, C for the
    forward statistics, layer by layer; 2C for backward, in reverse), adding zeros."""
    layers = _batch_norms(model)
    for layer in layers:
        group.sum_(np.zeros(layer._moving_mean.size))
        group.sum_(np.zeros(layer._moving_mean.size))
    for layer in reversed(layers):
        group.sum_(np.zeros(2 * layer._moving_mean.size))


def _dropouts(model):
    return [layer for layer in _leaf_layers(model) if isinstance(layer, L.Dropout) and float(layer.rate) > 0.0]


def sync_dropout(group, model):
    """Every rank's Dropout layers draw rank 0's masks: its seeds and call counters (a seed drawn from an
    unseeded generator differs between processes). The compiled step is rebuilt if one changed."""
    layers = _dropouts(model)
    if group.size == 1 or not layers:
        return
    mine = [(int(layer._seed), int(layer._calls[0])) for layer in layers]
    chief = group.bcast(mine)
    if chief != mine:
        for layer, (seed, calls) in zip(layers, chief):
            layer._seed = seed
            layer._calls[0] = calls
        model._plan = model._plan_key = None


def sync_weights(group, model):
    """evaluate's and predict's start: every rank uses rank 0's weights (the same after fit; a model loaded
    or built on each rank on its own may differ)."""
    if group.size == 1 or not model.built:
        return
    group.check_same(the_model_parameters=int(model.parameters.size))
    group.bcast_(model.parameters)


def sync_model(group, model, step):
    """At fit's first step: every rank's model and optimizer are rank 0's (weights with non-trainable state,
    optimizer slots and iterations), after checking they are the same size."""
    params = model.parameters
    opt = model.optimizer
    trainable = model._trainable()
    if trainable and not opt.built:
        opt.build([w.value for w in trainable])
    slots = sorted(opt._slots.items()) if opt._slots else []
    group.check_same(the_model_parameters=int(params.size),
                     the_trainable_weights=[tuple(w.shape) for w in trainable],
                     the_optimizer_slots=[(k, int(flat.size)) for k, (flat, _) in slots])
    if group.size == 1:
        return
    group.bcast_(params)
    for _, (flat, _) in slots:
        group.bcast_(flat)
    opt._iterations = group.bcast(int(opt._iterations))


def train_step(group, model, x, y, sw):
    """One data-parallel step on the global batch (x, y, sw): (global loss value, global rows)."""
    x = np.asarray(x)
    rows = len(x)
    lo, hi = group.share(rows)
    xl = x[lo:hi]
    yl = None if y is None else np.asarray(y)[lo:hi]
    swl = None if sw is None else np.asarray(sw)[lo:hi]
    model._ensure_built_from(x[:1])
    synced = getattr(model, "_dp_synced", False)
    if not synced:
        sync_dropout(group, model)
    step = model._compiled_step() if model.built else None
    if not synced:
        sync_model(group, model, step)
        model._dp_synced = True
    grads = model.gradients
    value, n = 0.0, 0
    scale = (hi - lo) / rows if group.size > 1 else 1.0  # this rank's weight in the global mean
    if hi > lo:
        # The plan scales dL/dy_pred before backward (no pass over the gradient buffer); the layer-by-layer
        # path scales the buffer after.
        norms = group.size > 1 and bool(_batch_norms(model))
        ran = step.gradients(xl, yl, swl, scale, lo, group.sum_ if norms else None, rows) if step is not None \
            else None
        if ran is None:
            if group.size > 1 and (_dropouts(model) or norms):
                raise RuntimeError("Dropout and BatchNormalization under DataParallel across processes need the "
                                   "compiled step (masks by global row, statistics summed over ranks); this model "
                                   "or batch takes the layer-by-layer path: "
                                   f"{model._plan_reason or 'a batch the plan does not take'}")
            ran = model._python_gradients(xl, yl, swl)
            if scale != 1.0:
                grads *= np.float32(scale)
        value, n = ran
    else:
        grads.fill(0.0)  # fewer rows than ranks: this rank adds nothing, but its Dropout masks move on
        for layer in _dropouts(model):
            layer._calls[0] += 1
        _no_rows_batch_norm(group, model)
    if group.size > 1:
        t0 = time.perf_counter()
        group.sum_(grads)
        TIMES["allreduce"] += time.perf_counter() - t0
        TIMES["steps"] += 1
    stats = np.array([value * n, n, rows, float(rows) * rows], np.float64)
    group.sum_(stats)
    if stats[2] != rows * group.size or stats[3] != float(rows) * rows * group.size:
        raise DistributionError(f"the ranks disagree on the size of a global batch (this rank has {rows} rows): "
                                "every rank must see the same batches (seed any shuffle of a Dataset)")
    if rows < group.size:  # the ranks without rows did not move BatchNormalization's statistics: rank 0's
        for layer in _batch_norms(model):
            group.bcast_(layer._moving_mean.value)
            group.bcast_(layer._moving_variance.value)
    if step is not None:  # the fused update from the summed buffer (also after layer-by-layer gradients)
        step.apply_gradients()
    else:
        model._apply_gradients()
    return float(stats[0] / stats[1]) if stats[1] else 0.0, rows


def reduce_logs(group, model, loss_sum, count, prefix, local_loss):
    """The model's logs over every rank: metric states summed (then put back), and the loss sum too when it is
    this rank's own (evaluate)."""
    metrics = model.compiled_metrics + model.compiled_weighted_metrics
    names = [_state_names(m) for m in metrics]
    saved = [[np.array(getattr(m, name), copy=True) for name in state] for m, state in zip(metrics, names)]
    if group.size > 1:
        flat = np.concatenate([np.asarray(v, np.float64).ravel() for state in saved for v in state] +
                              [np.array([loss_sum, count], np.float64) if local_loss else np.zeros(0)])
        group.sum_(flat)
        at = 0
        for m, state, state_names in zip(metrics, saved, names):
            for name, v in zip(state_names, state):
                size = np.asarray(v).size
                setattr(m, name, flat[at:at + size].reshape(np.shape(v)).astype(np.asarray(v).dtype))
                at += size
        if local_loss:
            loss_sum, count = float(flat[at]), int(flat[at + 1])
    try:
        return model._logs_here(loss_sum, count, prefix)
    finally:
        if group.size > 1:
            for m, state, state_names in zip(metrics, saved, names):
                for name, v in zip(state_names, state):
                    setattr(m, name, v if np.ndim(v) else v[()])


def test_step(group, model, x, y, sw):
    """evaluate's step on this rank's share of the batch: (loss value, rows) of that share, summed over ranks
    when the logs are made."""
    x = np.asarray(x)
    lo, hi = group.share(len(x))
    if hi <= lo:
        return 0.0, 0
    return model._test_step_here(x[lo:hi], None if y is None else np.asarray(y)[lo:hi],
                                 None if sw is None else np.asarray(sw)[lo:hi])


def predict_batch(group, model, step, x):
    """predict on this rank's share of the batch, the rows of every rank gathered back in order."""
    x = np.asarray(x)
    lo, hi = group.share(len(x))
    local = step.predict(x[lo:hi]) if step is not None and hi > lo else None
    if hi <= lo:
        local = np.zeros((0,) + tuple(model._layers[-1].output_shape[1:]), np.float32)
    elif local is None:
        xl, _, _ = model._prepare_batch(x[lo:hi], None, None)
        local = model._forward(xl, training=False)
    return group.gather_rows(np.asarray(local, np.float32), len(x))


@contextlib.contextmanager
def running(group, model, what):
    """fit / evaluate / predict over ``group``: the model's steps and logs go through this module while
    inside; an error on one rank of several ends the job (printed with the rank first), so no rank hangs in a
    collective. DistributionError is raised on every rank alike, so it is raised as usual."""
    previous = getattr(model, "_dp", None)
    model._dp = group
    try:
        yield
    except DistributionError:
        raise
    except BaseException as e:  # noqa: BLE001 - any failure, Ctrl-C included, must not leave ranks waiting
        if group.size > 1:
            group.abort(what, e)
        raise
    finally:
        model._dp = previous

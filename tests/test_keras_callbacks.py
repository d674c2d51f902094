"""gradsmith.callbacks against Keras 3's documented behaviour (keras/src/callbacks/*.py).

Each callback runs on a small fake model (exactly the interface the callbacks
use: stop_training, optimizer.learning_rate, get_weights/set_weights,
save/save_weights) and a scripted sequence of logs, with the hooks called in
the order fit() calls them.
"""
import csv
import io
import math
import os
import sys

import numpy as np
import pytest

from gradsmith import callbacks as cb


# --------------------------------------------------------------------------- fakes
class FakeOptimizer:
    def __init__(self, learning_rate=0.1):
        self.learning_rate = learning_rate


class FakeMetric:
    def __init__(self, name, direction):
        self.name = name
        self._direction = direction


class FakeModel:
    """The model interface the callbacks rely on, and nothing else."""

    def __init__(self, learning_rate=0.1, metrics=None, metrics_names=None):
        self.stop_training = False
        self.optimizer = FakeOptimizer(learning_rate)
        self.history = None
        self._weights = [np.zeros((2, 2), np.float32), np.zeros(3, np.float32)]
        self.saved = []  # (method, path)
        if metrics is not None:
            self.metrics = metrics
        if metrics_names is not None:
            self.metrics_names = metrics_names

    def get_weights(self):
        return [w.copy() for w in self._weights]

    def set_weights(self, weights):
        assert [w.shape for w in weights] == [w.shape for w in self._weights]
        self._weights = [np.array(w, np.float32) for w in weights]

    def train_a_batch(self, epoch):
        # The weights during / after epoch e are all e + 1: restored weights identify their epoch.
        self._weights = [np.full_like(w, epoch + 1.0) for w in self._weights]

    def weights_epoch(self):
        return int(self._weights[0][0, 0]) - 1

    def save(self, path):
        self.saved.append(("save", path))
        with open(path, "w") as f:
            f.write(f"model after epoch {self.weights_epoch() + 1}")

    def save_weights(self, path):
        self.saved.append(("save_weights", path))
        with open(path, "w") as f:
            f.write(f"weights after epoch {self.weights_epoch() + 1}")


def run_fit(callbacks, epoch_logs, model=None, steps=2, batch_logs=None, verbose=0):
    """Drive the hooks as fit() does; returns (model, history, number of epochs run).

    ``epoch_logs``: one dict per epoch (copied before each on_epoch_end).
    ``batch_logs(epoch, step)``: the logs of each train batch (default: the epoch's loss).
    """
    model = model or FakeModel()
    history = cb.History()
    cbs = cb.CallbackList(callbacks, add_history=False, add_progbar=False, model=model, verbose=verbose,
                          epochs=len(epoch_logs), steps=steps)
    cbs.append(history)
    model.stop_training = False
    cbs.on_train_begin()
    run = 0
    for epoch, logs in enumerate(epoch_logs):
        cbs.on_epoch_begin(epoch)
        for step in range(steps):
            cbs.on_train_batch_begin(step)
            model.train_a_batch(epoch)
            blogs = batch_logs(epoch, step) if batch_logs else {"loss": logs.get("loss", 1.0)}
            cbs.on_train_batch_end(step, blogs)
            if model.stop_training:
                break
        run += 1
        cbs.on_epoch_end(epoch, dict(logs))  # as Keras: also after a stop inside the epoch
        if model.stop_training:
            break
    cbs.on_train_end()
    return model, history, run


def val_losses(values):
    return [{"loss": 1.0, "val_loss": v} for v in values]


# --------------------------------------------------------------------------- base, list, history
def test_callback_base_has_every_hook_and_batch_aliases():
    calls = []

    class Old(cb.Callback):
        def on_batch_begin(self, batch, logs=None):
            calls.append(("begin", batch))

        def on_batch_end(self, batch, logs=None):
            calls.append(("end", batch, logs))

    c = Old()
    for hook in ("on_train_begin", "on_train_end", "on_test_begin", "on_test_end", "on_predict_begin",
                 "on_predict_end"):
        getattr(c, hook)(None)
    for hook in ("on_epoch_begin", "on_epoch_end", "on_test_batch_begin", "on_test_batch_end",
                 "on_predict_batch_begin", "on_predict_batch_end"):
        getattr(c, hook)(0, None)
    c.on_train_batch_begin(3)
    c.on_train_batch_end(3, {"loss": 1.0})
    assert calls == [("begin", 3), ("end", 3, {"loss": 1.0})]
    assert c.params is None and c.model is None
    c.set_params({"epochs": 2})
    m = FakeModel()
    c.set_model(m)
    assert c.params == {"epochs": 2} and c.model is m


def test_callback_list_order_params_model_and_defaults():
    order = []

    class Rec(cb.Callback):
        def __init__(self, tag):
            super().__init__()
            self.tag = tag

        def on_epoch_end(self, epoch, logs=None):
            order.append((self.tag, epoch))

    a, b = Rec("a"), Rec("b")
    model = FakeModel()
    cbs = cb.CallbackList([a, [b]], add_history=True, add_progbar=True, model=model, verbose=0, epochs=3,
                          steps=5)
    assert [type(c) for c in cbs.callbacks] == [Rec, Rec, cb.History, cb.ProgbarLogger]
    assert model.history is cbs.callbacks[2]
    assert a.params == {"verbose": 0, "epochs": 3, "steps": 5} and a.model is model
    cbs.on_epoch_end(0, {"loss": 1.0})
    assert order == [("a", 0), ("b", 0)]
    # an existing History / ProgbarLogger is not duplicated
    h, p = cb.History(), cb.ProgbarLogger()
    cbs = cb.CallbackList([h, p], add_history=True, add_progbar=True)
    assert cbs.callbacks == [h, p]
    # append gives the newcomer the list's model and params
    cbs = cb.CallbackList([], model=model, verbose=0, epochs=1, steps=1)
    c = Rec("c")
    cbs.append(c)
    assert c.model is model and c.params["epochs"] == 1


def test_callback_list_batch_logs_are_python_floats_sorted_and_shared():
    seen = []

    class Rec(cb.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(logs)

        def on_epoch_end(self, epoch, logs=None):
            logs["extra"] = 1.0

    cbs = cb.CallbackList([Rec(), Rec()])
    cbs.on_train_batch_end(0, {"loss": np.float32(0.5), "accuracy": np.array(0.25)})
    assert list(seen[0]) == ["accuracy", "loss"]
    assert type(seen[0]["loss"]) is float and type(seen[0]["accuracy"]) is float
    logs = {"loss": 1.0}
    cbs.on_epoch_end(0, logs)
    assert logs["extra"] == 1.0  # the same dict went through every callback


def test_history_records_every_epoch():
    logs = [{"loss": 1.0, "accuracy": 0.5, "val_loss": 1.2}, {"loss": 0.8, "accuracy": 0.6, "val_loss": 1.1},
            {"loss": 0.7, "accuracy": 0.7, "val_loss": 1.0}]
    model, history, run = run_fit([], logs)
    assert run == 3
    assert history.epoch == [0, 1, 2]
    assert history.history == {"loss": [1.0, 0.8, 0.7], "accuracy": [0.5, 0.6, 0.7], "val_loss": [1.2, 1.1, 1.0]}
    assert model.history is history


def test_lambda_callback():
    calls = []
    lc = cb.LambdaCallback(on_epoch_begin=lambda epoch, logs: calls.append(("eb", epoch)),
                           on_epoch_end=lambda epoch, logs: calls.append(("ee", epoch, logs["loss"])),
                           on_train_begin=lambda logs: calls.append(("tb",)),
                           on_train_end=lambda logs: calls.append(("te",)),
                           on_train_batch_begin=lambda batch, logs: calls.append(("bb", batch)),
                           on_train_batch_end=lambda batch, logs: calls.append(("be", batch, logs["loss"])),
                           on_test_begin=lambda logs: calls.append(("test",)))
    run_fit([lc], [{"loss": 0.5}], steps=2)
    assert calls == [("tb",), ("eb", 0), ("bb", 0), ("be", 0, 0.5), ("bb", 1), ("be", 1, 0.5), ("ee", 0, 0.5),
                     ("te",)]
    lc.on_test_begin({})
    assert calls[-1] == ("test",)


# --------------------------------------------------------------------------- EarlyStopping
def test_early_stopping_patience_counts_epochs_without_improvement():
    # Keras's docstring example: patience=3 on a loss that never improves again -> 4 epochs run.
    es = cb.EarlyStopping(monitor="loss", patience=3)
    _, history, run = run_fit([es], [{"loss": v} for v in [1.0, 1.1, 1.2, 1.3, 1.4, 1.5]])
    assert run == 4 and es.stopped_epoch == 3 and len(history.history["loss"]) == 4


def test_early_stopping_improvement_resets_wait():
    es = cb.EarlyStopping(patience=2)
    model, _, run = run_fit([es], val_losses([1.0, 0.9, 0.95, 0.8, 0.85, 0.86, 0.87]))
    assert run == 6 and es.stopped_epoch == 5 and model.stop_training
    assert es.best == 0.8 and es.best_epoch == 3


def test_early_stopping_patience_zero_stops_at_first_non_improvement():
    es = cb.EarlyStopping(patience=0)
    _, _, run = run_fit([es], val_losses([1.0, 0.9, 0.9, 0.5]))
    assert run == 3 and es.stopped_epoch == 2  # equal is not better


def test_early_stopping_min_delta():
    losses = [1.0, 0.95, 0.9, 0.85]
    es = cb.EarlyStopping(patience=1, min_delta=0.1)
    _, _, run = run_fit([es], val_losses(losses))
    assert run == 2  # 0.05 improvements are below min_delta
    es = cb.EarlyStopping(patience=1, min_delta=-0.1)  # Keras takes abs(min_delta)
    assert es.min_delta == 0.1
    es = cb.EarlyStopping(patience=1)
    _, _, run = run_fit([es], val_losses(losses))
    assert run == 4


@pytest.mark.parametrize("monitor", ["val_accuracy", "accuracy", "val_acc", "val_auc", "binary_accuracy",
                                     "val_precision", "recall", "f1_score"])
def test_early_stopping_auto_mode_maximizes_accuracy_like_names(monitor):
    es = cb.EarlyStopping(monitor=monitor, patience=1)
    logs = [{"loss": 1.0, monitor: v} for v in [0.5, 0.6, 0.55, 0.54]]
    _, _, run = run_fit([es], logs)
    assert es.monitor_op is np.greater
    assert run == 3 and es.best == 0.6


@pytest.mark.parametrize("monitor", ["loss", "val_loss", "val_mean_squared_error", "mae",
                                     "val_sparse_categorical_crossentropy"])
def test_early_stopping_auto_mode_minimizes_losses_and_errors(monitor):
    es = cb.EarlyStopping(monitor=monitor, patience=1)
    run_fit([es], [{"loss": 1.0, monitor: 1.0}])
    assert es.monitor_op is np.less


def test_early_stopping_mode_auto_uses_metric_direction_else_raises():
    # A metric object of the model carrying Keras's `_direction` decides.
    model = FakeModel(metrics=[FakeMetric("score", "up")])
    es = cb.EarlyStopping(monitor="val_score", patience=0)
    run_fit([es], [{"val_score": 1.0}], model=model)
    assert es.monitor_op is np.greater
    # A name Keras cannot place raises, as Keras does; explicit modes work.
    with pytest.raises(ValueError, match="mode='max'"):
        run_fit([cb.EarlyStopping(monitor="val_score")], [{"val_score": 1.0}])
    es = cb.EarlyStopping(monitor="val_score", mode="max", patience=0)
    _, _, run = run_fit([es], [{"val_score": v} for v in [1.0, 2.0, 1.5, 3.0]])
    assert run == 3
    es = cb.EarlyStopping(monitor="val_accuracy", mode="min", patience=0)
    _, _, run = run_fit([es], [{"val_accuracy": v} for v in [0.5, 0.6, 0.7]])
    assert run == 2 and es.monitor_op is np.less
    with pytest.warns(UserWarning, match="unknown"):
        es = cb.EarlyStopping(mode="sideways")
    assert es.mode == "auto"


def test_early_stopping_restore_best_weights():
    es = cb.EarlyStopping(patience=2, restore_best_weights=True)
    model, _, run = run_fit([es], val_losses([1.0, 0.5, 0.7, 0.8, 0.9]))
    assert run == 4
    assert model.weights_epoch() == 1 and es.best_epoch == 1
    # without restore the last weights stay
    es = cb.EarlyStopping(patience=2)
    model, _, _ = run_fit([es], val_losses([1.0, 0.5, 0.7, 0.8, 0.9]))
    assert model.weights_epoch() == 3
    # Keras restores the best weights also when training runs to the end without stopping
    es = cb.EarlyStopping(patience=10, restore_best_weights=True)
    model, _, run = run_fit([es], val_losses([1.0, 0.5, 0.7]))
    assert run == 3 and model.weights_epoch() == 1


def test_early_stopping_baseline():
    # Not beating the baseline: the wait keeps counting through improvements ...
    es = cb.EarlyStopping(patience=2, baseline=0.5)
    _, _, run = run_fit([es], val_losses([0.9, 0.8, 0.85, 0.7]))
    assert run == 3 and es.stopped_epoch == 2
    es = cb.EarlyStopping(patience=2)
    _, _, run = run_fit([es], val_losses([0.9, 0.8, 0.85, 0.7]))
    assert run == 4
    # ... and beating it restarts the wait.
    es = cb.EarlyStopping(patience=2, baseline=0.85)
    _, _, run = run_fit([es], val_losses([0.9, 0.8, 0.82, 0.83, 0.84]))
    assert run == 4 and es.stopped_epoch == 3
    # restore_best_weights restores the best epoch even when none beat the baseline
    es = cb.EarlyStopping(patience=2, baseline=0.1, restore_best_weights=True)
    model, _, run = run_fit([es], val_losses([0.9, 0.8, 0.85, 0.86]))
    assert run == 3 and model.weights_epoch() == 1


def test_early_stopping_start_from_epoch():
    logs = val_losses([1.0, 2.0, 3.0, 4.0, 5.0])
    es = cb.EarlyStopping(patience=0, start_from_epoch=2)
    _, _, run = run_fit([es], logs)
    assert run == 4 and es.stopped_epoch == 3
    es = cb.EarlyStopping(patience=0)
    _, _, run = run_fit([es], logs)
    assert run == 2


def test_early_stopping_missing_monitor_warns_and_never_stops():
    es = cb.EarlyStopping(monitor="val_loss", patience=0)
    with pytest.warns(UserWarning, match="val_loss"):
        _, _, run = run_fit([es], [{"loss": v} for v in [1.0, 2.0, 3.0]])
    assert run == 3


def test_early_stopping_is_reusable_and_verbose(capsys):
    es = cb.EarlyStopping(patience=1, verbose=1, restore_best_weights=True)
    run_fit([es], val_losses([0.1, 0.2, 0.3]))
    out = capsys.readouterr().out
    assert "Epoch 2: early stopping" in out
    assert "Restoring model weights from the end of the best epoch: 1." in out
    # a second fit starts from scratch (best, wait, weights reset in on_train_begin)
    model, _, run = run_fit([es], val_losses([5.0, 4.0, 3.0]))
    assert run == 3 and es.best == 3.0 and model.weights_epoch() == 2


# --------------------------------------------------------------------------- ModelCheckpoint
def test_model_checkpoint_formats_epoch_one_based_and_logs(tmp_path):
    path = str(tmp_path / "ckpt-{epoch:02d}-{val_loss:.2f}.keras")
    mc = cb.ModelCheckpoint(path)
    model, _, _ = run_fit([mc], val_losses([0.9, 0.8123, 0.85]))
    names = [os.path.basename(p) for _, p in model.saved]
    assert names == ["ckpt-01-0.90.keras", "ckpt-02-0.81.keras", "ckpt-03-0.85.keras"]
    assert {m for m, _ in model.saved} == {"save"}
    assert (tmp_path / "ckpt-02-0.81.keras").read_text() == "model after epoch 2"


def test_model_checkpoint_save_best_only(tmp_path):
    path = str(tmp_path / "best-{epoch}.keras")
    mc = cb.ModelCheckpoint(path, save_best_only=True)
    model, _, _ = run_fit([mc], val_losses([0.9, 0.8, 0.85, 0.7, 0.75]))
    assert [os.path.basename(p) for _, p in model.saved] == ["best-1.keras", "best-2.keras", "best-4.keras"]
    assert mc.best == 0.7
    # a fixed name is overwritten by each better model
    fixed = str(tmp_path / "best.keras")
    mc = cb.ModelCheckpoint(fixed, save_best_only=True)
    model, _, _ = run_fit([mc], val_losses([0.9, 0.8, 0.85, 0.7, 0.75]))
    assert len(model.saved) == 3
    assert (tmp_path / "best.keras").read_text() == "model after epoch 4"


def test_model_checkpoint_mode_max_and_auto(tmp_path):
    path = str(tmp_path / "m-{epoch}.keras")
    logs = [{"val_accuracy": v} for v in [0.5, 0.7, 0.6, 0.8]]
    model, _, _ = run_fit([cb.ModelCheckpoint(path, monitor="val_accuracy", save_best_only=True)], logs)
    assert [os.path.basename(p) for _, p in model.saved] == ["m-1.keras", "m-2.keras", "m-4.keras"]
    model, _, _ = run_fit([cb.ModelCheckpoint(path, monitor="val_accuracy", save_best_only=True, mode="min")],
                          logs)
    assert [os.path.basename(p) for _, p in model.saved] == ["m-1.keras"]


def test_model_checkpoint_initial_value_threshold(tmp_path):
    mc = cb.ModelCheckpoint(str(tmp_path / "t-{epoch}.keras"), save_best_only=True, initial_value_threshold=0.75)
    model, _, _ = run_fit([mc], val_losses([0.9, 0.8, 0.7, 0.72]))
    assert [os.path.basename(p) for _, p in model.saved] == ["t-3.keras"]


def test_model_checkpoint_weights_only_and_file_name_rules(tmp_path):
    mc = cb.ModelCheckpoint(str(tmp_path / "sub" / "w-{epoch}.weights.h5"), save_weights_only=True)
    model, _, _ = run_fit([mc], val_losses([0.9, 0.8]))
    assert [m for m, _ in model.saved] == ["save_weights", "save_weights"]
    assert (tmp_path / "sub" / "w-2.weights.h5").read_text() == "weights after epoch 2"  # folder created
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        cb.ModelCheckpoint(str(tmp_path / "w.keras"), save_weights_only=True)
    with pytest.raises(ValueError, match=r"\.keras"):
        cb.ModelCheckpoint(str(tmp_path / "model.npz"))
    with pytest.raises(ValueError, match=r"\.keras"):  # legacy .h5: model.save would refuse it at epoch end
        cb.ModelCheckpoint(str(tmp_path / "model.h5"))
    with pytest.raises(ValueError, match="save_freq"):
        cb.ModelCheckpoint(str(tmp_path / "m.keras"), save_freq="batch")


def test_model_checkpoint_save_freq_in_batches(tmp_path):
    path = str(tmp_path / "b-{epoch}-{batch}.keras")
    mc = cb.ModelCheckpoint(path, save_freq=2)
    model, _, _ = run_fit([mc], val_losses([0.9, 0.8]), steps=3)
    # batches seen: e1b1 e1b2* e1b3 e2b1* e2b2 e2b3*  (every 2nd batch, counted across epochs)
    assert [os.path.basename(p) for _, p in model.saved] == ["b-1-2.keras", "b-2-1.keras", "b-2-3.keras"]


def test_model_checkpoint_missing_key_and_missing_monitor(tmp_path):
    mc = cb.ModelCheckpoint(str(tmp_path / "m-{val_auc:.2f}.keras"))
    with pytest.raises(KeyError, match="val_auc"):
        run_fit([mc], val_losses([0.9]))
    mc = cb.ModelCheckpoint(str(tmp_path / "m.keras"), save_best_only=True)
    with pytest.warns(UserWarning, match="val_loss"):
        model, _, _ = run_fit([mc], [{"loss": 1.0}])
    assert len(model.saved) == 1  # Keras saves when it cannot compare


def test_model_checkpoint_verbose_messages(tmp_path, capsys):
    path = str(tmp_path / "v.keras")
    run_fit([cb.ModelCheckpoint(path, save_best_only=True, verbose=1)], val_losses([0.9, 0.95]))
    out = capsys.readouterr().out
    assert f"Epoch 1: val_loss improved from inf to 0.90000, saving model to {path}" in out
    assert "Epoch 2: val_loss did not improve from 0.90000" in out


# --------------------------------------------------------------------------- ReduceLROnPlateau
def lr_trace(callback, logs, lr=0.1):
    """The learning rate during each epoch, and the history."""
    seen = []
    rec = cb.LambdaCallback(on_epoch_begin=lambda epoch, logs: seen.append(round(model.optimizer.learning_rate, 9)))
    model = FakeModel(learning_rate=lr)
    _, history, _ = run_fit([rec, callback], logs, model=model)
    return seen, history, model


def test_reduce_lr_on_plateau_timing():
    r = cb.ReduceLROnPlateau(factor=0.5, patience=2)
    seen, history, model = lr_trace(r, val_losses([1.0] * 7))
    # e0 sets the best; e1, e2 wait -> reduce at the end of e2; e3, e4 -> reduce at e4; ...
    assert seen == [0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    # Keras logs the learning rate of the epoch (before this epoch's reduction)
    assert [round(v, 9) for v in history.history["learning_rate"]] == seen
    assert math.isclose(model.optimizer.learning_rate, 0.0125)


def test_reduce_lr_on_plateau_improvement_resets_wait():
    r = cb.ReduceLROnPlateau(factor=0.5, patience=2)
    seen, _, _ = lr_trace(r, val_losses([1.0, 1.0, 0.9, 0.9, 0.8, 0.8, 0.8]))
    # plateaus of one epoch each; only the last two epochs (5, 6) make a plateau of length 2
    assert seen == [0.1] * 7
    assert r.wait == 0 and r.model.optimizer.learning_rate == pytest.approx(0.05)


def test_reduce_lr_on_plateau_cooldown():
    seen, _, _ = lr_trace(cb.ReduceLROnPlateau(factor=0.5, patience=1), val_losses([1.0] * 6))
    assert seen == [0.1, 0.1, 0.05, 0.025, 0.0125, 0.00625]
    r = cb.ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2)
    seen, _, model = lr_trace(r, val_losses([1.0] * 7))
    # reductions at the end of epochs 1, 3 and 5: after each, the cooldown epoch(s) do not count
    assert seen == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125]
    assert model.optimizer.learning_rate == pytest.approx(0.0125)


def test_reduce_lr_on_plateau_min_lr_and_min_delta():
    r = cb.ReduceLROnPlateau(factor=0.1, patience=1, min_lr=0.005)
    _, _, model = lr_trace(r, val_losses([1.0] * 6))
    assert model.optimizer.learning_rate == pytest.approx(0.005)
    # improvements smaller than min_delta (default 1e-4) count as none
    r = cb.ReduceLROnPlateau(factor=0.5, patience=1)
    seen, _, _ = lr_trace(r, val_losses([1.0, 0.99995, 0.99992, 0.99991]))
    assert seen == [0.1, 0.1, 0.05, 0.025]
    r = cb.ReduceLROnPlateau(factor=0.5, patience=1, min_delta=0.0)
    seen, _, _ = lr_trace(r, val_losses([1.0, 0.99995, 0.99992, 0.99991]))
    assert seen == [0.1] * 4


def test_reduce_lr_on_plateau_modes_and_errors():
    logs = [{"val_accuracy": v} for v in [0.5, 0.6, 0.7, 0.8]]
    seen, _, _ = lr_trace(cb.ReduceLROnPlateau(monitor="val_accuracy", patience=1), logs)
    assert seen == [0.1] * 4  # auto -> max: rising accuracy is improvement
    seen, _, _ = lr_trace(cb.ReduceLROnPlateau(monitor="val_accuracy", patience=1, mode="min", factor=0.5), logs)
    assert seen == [0.1, 0.1, 0.05, 0.025]
    with pytest.raises(ValueError, match="factor"):
        cb.ReduceLROnPlateau(factor=1.0)
    with pytest.warns(UserWarning, match="val_loss"):
        lr_trace(cb.ReduceLROnPlateau(), [{"loss": 1.0}])


def test_reduce_lr_on_plateau_verbose(capsys):
    lr_trace(cb.ReduceLROnPlateau(factor=0.5, patience=1, verbose=1), val_losses([1.0, 1.0]))
    assert "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.05." in capsys.readouterr().out


# --------------------------------------------------------------------------- LearningRateScheduler
def test_learning_rate_scheduler_sets_lr_at_epoch_begin():
    def schedule(epoch, lr):
        return lr if epoch < 2 else lr * 0.5

    seen_in_batches = []
    model = FakeModel(learning_rate=0.1)
    rec = cb.LambdaCallback(on_train_batch_begin=lambda b, logs: seen_in_batches.append(
        round(model.optimizer.learning_rate, 9)))
    _, history, _ = run_fit([cb.LearningRateScheduler(schedule), rec], [{"loss": 1.0}] * 4, model=model, steps=1)
    assert seen_in_batches == [0.1, 0.1, 0.05, 0.025]
    assert [round(v, 9) for v in history.history["learning_rate"]] == [0.1, 0.1, 0.05, 0.025]


def test_learning_rate_scheduler_keras_docstring_example():
    def scheduler(epoch, lr):
        return lr if epoch < 10 else lr * math.exp(-0.1)

    model = FakeModel(learning_rate=0.01)
    run_fit([cb.LearningRateScheduler(scheduler)], [{"loss": 1.0}] * 15, model=model, steps=1)
    assert round(model.optimizer.learning_rate, 5) == 0.00607


def test_learning_rate_scheduler_old_api_and_bad_output(capsys):
    model = FakeModel(learning_rate=0.1)
    run_fit([cb.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1), verbose=1)], [{"loss": 1.0}] * 3,
            model=model, steps=1)
    assert model.optimizer.learning_rate == pytest.approx(0.1 / 3)
    assert "Epoch 2: LearningRateScheduler setting learning rate to 0.05." in capsys.readouterr().out
    with pytest.raises(ValueError, match="float"):
        run_fit([cb.LearningRateScheduler(lambda epoch, lr: 1)], [{"loss": 1.0}], steps=1)


# --------------------------------------------------------------------------- TerminateOnNaN
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_terminate_on_nan_stops_at_the_batch(bad, capsys):
    ended = []
    model, history, run = run_fit(
        [cb.TerminateOnNaN(), cb.LambdaCallback(on_train_end=lambda logs: ended.append(True))],
        [{"loss": 1.0}] * 3, steps=4,
        batch_logs=lambda e, s: {"loss": bad if (e, s) == (1, 2) else 0.5})
    assert model.stop_training and run == 2 and ended == [True]
    assert history.history["loss"] == [1.0, 1.0]  # Keras ends the interrupted epoch too
    assert "Batch 2: Invalid loss, terminating training" in capsys.readouterr().out


def test_terminate_on_nan_keeps_going_on_finite_loss_and_can_raise():
    model, _, run = run_fit([cb.TerminateOnNaN()], [{"loss": 1.0}] * 3, steps=2)
    assert run == 3 and not model.stop_training
    with pytest.raises(RuntimeError, match="NaN or Inf loss"):
        run_fit([cb.TerminateOnNaN(raise_error=True)], [{"loss": float("nan")}], steps=1)


# --------------------------------------------------------------------------- CSVLogger
def read_rows(path, sep=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=sep))


def test_csv_logger_header_sorted_and_rows(tmp_path):
    path = str(tmp_path / "log.csv")
    logs = [{"loss": 0.5, "val_loss": 0.6, "accuracy": 0.7}, {"loss": 0.25, "val_loss": 0.3, "accuracy": 0.8}]
    run_fit([cb.CSVLogger(path)], logs)
    assert read_rows(path) == [["epoch", "accuracy", "loss", "val_loss"], ["0", "0.7", "0.5", "0.6"],
                               ["1", "0.8", "0.25", "0.3"]]
    # overwritten by default
    run_fit([cb.CSVLogger(path)], logs[:1])
    assert len(read_rows(path)) == 2


def test_csv_logger_append_and_separator(tmp_path):
    path = str(tmp_path / "log.csv")
    logs = [{"loss": 0.5}, {"loss": 0.25}]
    run_fit([cb.CSVLogger(path, separator=";", append=True)], logs)
    run_fit([cb.CSVLogger(path, separator=";", append=True)], logs[:1])
    assert read_rows(path, ";") == [["epoch", "loss"], ["0", "0.5"], ["1", "0.25"], ["0", "0.5"]]


def test_csv_logger_expected_val_columns_and_missing_values(tmp_path):
    path = str(tmp_path / "log.csv")
    model = FakeModel(metrics_names=["loss", "val_loss"])
    run_fit([cb.CSVLogger(path)], [{"loss": 0.5}, {"loss": 0.4, "val_loss": 0.3}], model=model)
    assert read_rows(path) == [["epoch", "loss", "val_loss"], ["0", "0.5", "NA"], ["1", "0.4", "0.3"]]


# --------------------------------------------------------------------------- ProgbarLogger
def progbar_fit(verbose, epochs=2, steps=4, validation=True):
    model = FakeModel()
    cbs = cb.CallbackList([], add_progbar=True, model=model, verbose=verbose, epochs=epochs, steps=steps)
    cbs.on_train_begin()
    for epoch in range(epochs):
        cbs.on_epoch_begin(epoch)
        for step in range(steps):
            cbs.on_train_batch_begin(step)
            cbs.on_train_batch_end(step, {"loss": 0.5, "accuracy": 0.9})
        logs = {"loss": 0.1234, "accuracy": 0.9}
        if validation:
            cbs.on_test_begin()
            for step in range(2):
                cbs.on_test_batch_end(step, {"loss": 9.0})
            cbs.on_test_end({"loss": 9.0})
            logs.update(val_loss=0.00001234, val_accuracy=0.8)
        cbs.on_epoch_end(epoch, logs)
    cbs.on_train_end()


def test_progbar_verbose1_not_a_terminal_prints_one_final_line_per_epoch(capsys):
    progbar_fit(verbose=1)
    out = capsys.readouterr().out
    assert "\r" not in out and "\b" not in out and "\x1b" not in out
    lines = out.splitlines()
    assert len(lines) == 4
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    for line in (lines[1], lines[3]):
        assert line.startswith("4/4 " + "━" * 20 + " ")
        # batch logs reach the bar with sorted keys, as Keras's CallbackList passes them
        assert line.endswith(" - accuracy: 0.9000 - loss: 0.1234 - val_loss: 1.2340e-05 - val_accuracy: 0.8000")
        assert "/step" in line


def test_progbar_verbose2_one_line_per_epoch(capsys):
    progbar_fit(verbose=2, epochs=3)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 and lines[0] == "Epoch 1/3"
    assert lines[1].startswith("4/4 - ") and "s - " in lines[1] and "/step - " in lines[1]
    assert lines[1].endswith("- loss: 0.1234 - accuracy: 0.9000 - val_loss: 1.2340e-05 - val_accuracy: 0.8000")


def test_progbar_single_epoch_has_no_epoch_line_and_verbose0_is_silent(capsys):
    progbar_fit(verbose=1, epochs=1, validation=False)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("4/4")
    progbar_fit(verbose=0)
    assert capsys.readouterr().out == ""


def test_progbar_evaluate_outside_fit_and_unknown_steps(capsys):
    cbs = cb.CallbackList([], add_progbar=True, model=FakeModel(), verbose=1, epochs=1, steps=None)
    cbs.on_test_begin()
    for step in range(3):
        cbs.on_test_batch_end(step, {"loss": 0.5})
    cbs.on_test_end({"loss": 0.25})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("3/3 ") and lines[0].endswith("- loss: 0.2500")


def test_progbar_on_a_terminal_redraws_in_place(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    monkeypatch.setattr(sys, "stdout", out)
    progbar_fit(verbose=1, epochs=1, steps=3, validation=False)
    text = out.getvalue()
    assert "\r" in text and "\x1b[1m" in text and text.endswith("\n")
    assert text.count("\n") == 1  # one bar, redrawn, finished once
    assert "3/3" in text and "loss: 0.1234" in text

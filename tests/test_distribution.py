"""gradsmith.distribution: data-parallel fit / evaluate / predict on MPI against one process.

The share arithmetic and the single-process behaviour run everywhere; the tests that start ``mpiexec -n 2``
and ``-n 3`` (on small models, a few seconds each) need the ``mpi`` extra (mpi4py and an MPI, e.g. the mpich
wheel: ``pip install "gradsmith[mpi]"``) and are skipped without it. They compare N ranks with one process on
the same global batches: weights, history, evaluate, predict and the files callbacks write.
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gradsmith as keras
from gradsmith import distribution

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where this gradsmith was imported from (installed, or PYTHONPATH=python): the children import the same one.
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(keras.__file__)))


def _mpiexec():
    """mpiexec beside the running Python (a venv with the mpich wheel), else on PATH; None without mpi4py."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    return shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")


MPIEXEC = _mpiexec()
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason='needs mpi4py and mpiexec: pip install "gradsmith[mpi]"')


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_DIR, env.get("PYTHONPATH")]))
    env.pop("OMP_NUM_THREADS", None)
    for var in distribution._SIZE_VARS + ("PMI_RANK", "PMI_FD"):
        env.pop(var, None)  # the single-process runs must not look launched
    return env


def _run(script, args, ranks=None, timeout=60, check=True):
    """Run ``script`` alone (ranks None) or under ``mpiexec -n ranks``; the finished process."""
    cmd = [sys.executable, str(script), *map(str, args)]
    if ranks is not None:
        cmd = [MPIEXEC, "-n", str(ranks)] + cmd
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


# ---------------------------------------------------------------- the share arithmetic (no MPI)

@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("rows", [0, 1, 2, 3, 5, 11, 32, 33])
def test_shares_are_contiguous_and_the_first_ranks_take_one_more(rows, size):
    spans = [distribution.share(rows, r, size) for r in range(size)]
    counts = distribution.shares(rows, size)
    assert [hi - lo for lo, hi in spans] == counts
    assert spans[0][0] == 0 and spans[-1][1] == rows
    assert all(spans[r][1] == spans[r + 1][0] for r in range(size - 1))
    assert max(counts) - min(counts) <= 1 and counts == sorted(counts, reverse=True)


def test_importing_gradsmith_does_not_import_mpi4py():
    code = "import sys, gradsmith; gradsmith.distribution.initialize(); print('mpi4py' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_several_processes_without_mpi4py_say_how_to_get_it():
    code = textwrap.dedent("""
        import sys
        sys.modules["mpi4py"] = None  # as if not installed
        import gradsmith
        try:
            gradsmith.distribution.initialize(num_processes=2)
        except gradsmith.distribution.DistributionError as e:
            print(e)
    """)
    done = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert 'pip install "gradsmith[mpi]"' in done.stdout


def test_one_process_under_data_parallel_trains_as_the_plain_step():
    """Alone, DataParallel is the ordinary fit (with shuffle=False, the same shuffle), evaluate and predict."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((70, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.float32)

    def model():
        keras.utils.set_random_seed(5)
        m = keras.Sequential([keras.layers.Dense(8, activation="relu", input_shape=(6,)),
                              keras.layers.Dense(1, activation="sigmoid")])
        m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        return m

    plain = model()
    plain.fit(X, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    distribution.set_distribution(distribution.DataParallel())
    try:
        assert distribution.size() == 1 and distribution.rank() == 0
        parallel = model()
        h = parallel.fit(X, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        ev = parallel.evaluate(X, y, verbose=0)
        pred = parallel.predict(X, verbose=0)
    finally:
        distribution.set_distribution(None)
    np.testing.assert_array_equal(parallel.parameters, plain.parameters)
    assert h.history["accuracy"] == plain.history.history["accuracy"]
    assert ev == plain.evaluate(X, y, verbose=0)
    np.testing.assert_array_equal(pred, plain.predict(X, verbose=0))


@pytest.mark.parametrize("size", [2, 3])
def test_shares_of_a_batch_sum_to_its_gradient(size):
    """The plan's half of a data-parallel step without MPI: each share's gradients, scaled by its rows and
    with Dropout drawing the global rows' masks (first_row), add up to the whole batch's gradients."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((37, 10)).astype(np.float32)
    y = rng.integers(0, 3, 37)
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.layers.Dense(16, activation="relu", input_shape=(10,)), keras.layers.Dropout(0.3),
                              keras.layers.Dense(8, activation="tanh", kernel_regularizer=keras.regularizers.L2(0.01)),
                              keras.layers.Dropout(0.5, noise_shape=(None, 1)),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.train_on_batch(X[:4], y[:4])  # builds the compiled step
    step = model._compiled_step()
    dropouts = [layer for layer in model._layers if isinstance(layer, keras.layers.Dropout)]
    calls = [int(layer._calls[0]) for layer in dropouts]

    def gradients(rows, scale, first):
        for layer, c in zip(dropouts, calls):
            layer._calls[0] = c  # every share draws this step's masks
        step.gradients(X[rows], y[rows], None, scale, first)
        return model.gradients.copy()

    whole = gradients(slice(0, 37), 1.0, 0)
    spans = [distribution.share(37, r, size) for r in range(size)]
    total = sum(gradients(slice(lo, hi), (hi - lo) / 37, lo) for lo, hi in spans)
    np.testing.assert_allclose(total, whole, rtol=1e-5, atol=1e-7)
    unkeyed = sum(gradients(slice(lo, hi), (hi - lo) / 37, 0) for lo, hi in spans)
    assert np.abs(unkeyed - whole).max() > 1e-3  # the masks of local rows would be other masks


_METRIC_ARGS = {"MeanIoU": {"num_classes": 3}, "IoU": {"num_classes": 3, "target_class_ids": [0, 1]},
                "OneHotIoU": {"num_classes": 3, "target_class_ids": [0, 1]}, "OneHotMeanIoU": {"num_classes": 3},
                "PrecisionAtRecall": {"recall": 0.5}, "RecallAtPrecision": {"precision": 0.5},
                "SensitivityAtSpecificity": {"specificity": 0.5}, "SpecificityAtSensitivity": {"sensitivity": 0.5}}
_METRICS = sorted(name for name, cls in vars(keras.metrics).items() if isinstance(cls, type)
                  and issubclass(cls, keras.metrics.Metric) and name not in ("Metric", "MeanMetricWrapper"))


@pytest.mark.filterwarnings("ignore::SyntaxWarning")  # a categorical metric tried on binary data first
@pytest.mark.parametrize("name", _METRICS)
def test_every_metric_summed_over_shares_gives_the_whole_batch_result(name):
    """Logs under DataParallel sum each metric's state variables over the ranks (_data_parallel._state_names):
    for every metric, the sums over two shares' states give the result of the whole batch."""
    from gradsmith import _data_parallel
    rng = np.random.default_rng(0)
    cases = [(rng.integers(0, 2, (40, 1)).astype(np.float32), rng.random((40, 1)).astype(np.float32)),
             (np.eye(3, dtype=np.float32)[rng.integers(0, 3, 40)], rng.dirichlet(np.ones(3), 40).astype(np.float32)),
             (rng.integers(0, 3, 40), rng.dirichlet(np.ones(3), 40).astype(np.float32)),
             (rng.random((40, 3)).astype(np.float32), rng.random((40, 3)).astype(np.float32))]
    cls = getattr(keras.metrics, name)
    for y_true, y_pred in cases:
        whole, first, second = (cls(**_METRIC_ARGS.get(name, {})) for _ in range(3))
        if name in ("Mean", "Sum"):
            y_true, y_pred = y_pred[:, 0], None
        try:
            for m, rows in ((whole, slice(0, 40)), (first, slice(0, 25)), (second, slice(25, 40))):
                m.update_state(y_true[rows]) if y_pred is None else m.update_state(y_true[rows], y_pred[rows])
            result = np.asarray(whole.result(), np.float64)
        except (ValueError, TypeError):
            continue  # data of another kind: the next case
        if np.all(np.isnan(result)):
            continue
        names = _data_parallel._state_names(first)
        assert names, f"{name}: no state variables known"
        for state in names:
            setattr(first, state, np.asarray(getattr(first, state)) + np.asarray(getattr(second, state)))
        np.testing.assert_allclose(np.asarray(first.result(), np.float64), result, rtol=1e-5, atol=1e-6)
        return
    pytest.fail(f"{name}: no case of data it takes")


# ---------------------------------------------------------------- N ranks against one process

TRAIN = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import gradsmith as keras

    out, case = sys.argv[1], sys.argv[2]
    keras.distribution.initialize()
    keras.distribution.set_distribution(keras.distribution.DataParallel())
    rank = keras.distribution.rank()
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    n = 203 if case != "mismatch" or rank == 0 else 204  # 203 = 6 batches of 32 and one of 11
    if case in ("dropout", "batchnorm"):
        n = 193  # the last batch has 1 row: the other ranks have none in that step
    X = rng.standard_normal((n, 12)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.float32)
    model = keras.Sequential([keras.layers.Dense(16, activation="relu", input_shape=(12,)),
                              keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dense(1, activation="sigmoid")])
    if case == "batchnorm":  # statistics over the global batch: summed over ranks in forward and backward
        # (no weight whose gradient is zero, as a bias before a BatchNormalization's centering: Adam would turn
        # the rounding noise that is its gradient into steps of the learning rate's size)
        model = keras.Sequential([keras.layers.BatchNormalization(center=False, input_shape=(12,)),
                                  keras.layers.Dense(16, use_bias=False), keras.layers.BatchNormalization(momentum=0.9),
                                  keras.layers.Activation("relu"), keras.layers.Dense(1, activation="sigmoid")])
    if case == "dropout":  # masks by global row: one per element, and one per sample (noise_shape)
        keras.utils.set_random_seed(1 + rank)  # unseeded Dropout layers: rank 0's seeds are used
        model = keras.Sequential([keras.layers.Dense(16, activation="relu", input_shape=(12,)),
                                  keras.layers.Dropout(0.2), keras.layers.Dense(8, activation="tanh"),
                                  keras.layers.Dropout(0.3, noise_shape=(None, 1)),
                                  keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy",
                  metrics=["accuracy", "mse", keras.metrics.AUC(name="auc"), keras.metrics.Precision(name="precision")])

    class Fail(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if rank == 1 and batch == 3:
                if case == "die":
                    os._exit(7)  # no Python left to say anything: the launcher ends the others
                raise RuntimeError("rank one gives up")

    callbacks = [keras.callbacks.CSVLogger(f"{out}/log.csv"),
                 keras.callbacks.ModelCheckpoint(f"{out}/best.weights.h5", save_weights_only=True,
                                                 save_best_only=True, monitor="val_loss"),
                 keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=1)]
    if case in ("fail", "die"):
        callbacks.append(Fail())
    try:
        h = model.fit(X, y, batch_size=32, epochs=6, validation_data=(X[:61], y[:61]), callbacks=callbacks,
                      verbose=0)
    except keras.distribution.DistributionError as e:
        print(f"rank {rank}: {e}")
        sys.exit(3)
    ev = model.evaluate(X, y, batch_size=25, verbose=0)
    pred = model.predict(X[:50], batch_size=16, verbose=0)
    np.save(f"{out}/w{rank}.npy", model.parameters)
    if rank == 0:
        np.save(f"{out}/pred.npy", pred)
        json.dump({"history": h.history, "evaluate": ev, "epochs": len(h.history["loss"]),
                   "iterations": int(model.optimizer.iterations), "threads": keras.get_num_threads(),
                   "cores": len(os.sched_getaffinity(0))}, open(f"{out}/result.json", "w"))
""")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The training script alone and on 2 and 3 ranks: {ranks: its output folder} (1: alone)."""
    if MPIEXEC is None:
        pytest.skip('needs mpi4py and mpiexec: pip install "gradsmith[mpi]"')
    base = tmp_path_factory.mktemp("distribution")
    script = base / "train.py"
    script.write_text(TRAIN)
    outs = {}
    for case in ("ok", "dropout", "batchnorm"):
        for ranks in (1, 2, 3):
            out = base / f"{case}{ranks}"
            out.mkdir()
            _run(script, [out, case], ranks=None if ranks == 1 else ranks)
            outs[ranks if case == "ok" else (case, ranks)] = out
    return outs


def _result(out):
    return json.loads((out / "result.json").read_text())


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_train_the_weights_one_process_trains(runs, ranks):
    alone = np.load(runs[1] / "w0.npy")
    for r in range(ranks):  # every rank ends with the same weights (they all apply the same summed update)
        np.testing.assert_array_equal(np.load(runs[ranks] / f"w{r}.npy"), np.load(runs[ranks] / "w0.npy"))
    # float32 summation order: a share's row sums are added across ranks, not in one pass
    np.testing.assert_allclose(np.load(runs[ranks] / "w0.npy"), alone, rtol=0, atol=1e-6)


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_report_the_history_evaluate_and_predictions_of_one_process(runs, ranks):
    one, many = _result(runs[1]), _result(runs[ranks])
    assert many["epochs"] == one["epochs"] and many["iterations"] == one["iterations"]
    assert set(many["history"]) == {f"{prefix}{key}" for prefix in ("", "val_")
                                    for key in ("loss", "accuracy", "mse", "auc", "precision")}
    for key, values in one["history"].items():
        np.testing.assert_allclose(many["history"][key], values, rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(many["evaluate"], one["evaluate"], rtol=1e-5)
    np.testing.assert_allclose(np.load(runs[ranks] / "pred.npy"), np.load(runs[1] / "pred.npy"), atol=1e-6)


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_each_rank_runs_on_its_part_of_the_cores(runs, ranks):
    many = _result(runs[ranks])
    assert many["threads"] == max(1, many["cores"] // ranks)


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_rank_zero_writes_the_files_of_one_process(runs, ranks):
    def rows(out):
        with open(out / "log.csv") as f:
            return list(csv.DictReader(f))

    one, many = rows(runs[1]), rows(runs[ranks])
    assert [r["epoch"] for r in many] == [r["epoch"] for r in one]
    for a, b in zip(one, many):
        for key in a:
            np.testing.assert_allclose(float(b[key]), float(a[key]), rtol=1e-5, err_msg=key)
    assert (runs[ranks] / "best.weights.h5").exists()


@needs_mpi
def test_a_rank_that_raises_ends_the_job_with_its_message(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    done = _run(script, [tmp_path, "fail"], ranks=2, check=False, timeout=60)
    assert done.returncode != 0
    assert "rank 1 of 2 failed in fit: RuntimeError: rank one gives up" in done.stderr
    assert not (tmp_path / "result.json").exists()


@needs_mpi
def test_a_rank_that_dies_ends_the_job(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    done = _run(script, [tmp_path, "die"], ranks=2, check=False, timeout=60)  # a hang would time out
    assert done.returncode != 0
    assert not (tmp_path / "result.json").exists()


@needs_mpi
def test_ranks_with_different_data_are_named_at_the_start(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    done = _run(script, [tmp_path, "mismatch"], ranks=2, check=False, timeout=60)
    assert done.returncode != 0
    for r in (0, 1):  # the same message on every rank
        assert f"rank {r}: the ranks disagree on the training samples (rank 0: 203, rank 1: 204)" in done.stdout


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_batch_normalization_normalizes_by_the_global_batch(runs, ranks):
    """Its statistics (and their gradients) are summed over the ranks inside the pass, and the moving ones
    move alike on every rank, also in a step where some ranks have no rows."""
    alone = np.load(runs[("batchnorm", 1)] / "w0.npy")
    for r in range(ranks):
        np.testing.assert_array_equal(np.load(runs[("batchnorm", ranks)] / f"w{r}.npy"),
                                      np.load(runs[("batchnorm", ranks)] / "w0.npy"))
    np.testing.assert_allclose(np.load(runs[("batchnorm", ranks)] / "w0.npy"), alone, rtol=1e-5, atol=1e-6)
    one, many = _result(runs[("batchnorm", 1)]), _result(runs[("batchnorm", ranks)])
    np.testing.assert_allclose(many["history"]["loss"], one["history"]["loss"], rtol=1e-5)
    np.testing.assert_allclose(many["evaluate"], one["evaluate"], rtol=1e-5)


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_dropout_draws_one_process_masks_by_global_row(runs, ranks):
    """Each rank's share draws the masks of its rows of the global batch (Dropout's seed is rank 0's)."""
    alone = np.load(runs[("dropout", 1)] / "w0.npy")
    for r in range(ranks):
        np.testing.assert_array_equal(np.load(runs[("dropout", ranks)] / f"w{r}.npy"),
                                      np.load(runs[("dropout", ranks)] / "w0.npy"))
    np.testing.assert_allclose(np.load(runs[("dropout", ranks)] / "w0.npy"), alone, rtol=0, atol=1e-6)
    one, many = _result(runs[("dropout", 1)]), _result(runs[("dropout", ranks)])
    np.testing.assert_allclose(many["history"]["loss"], one["history"]["loss"], rtol=1e-5)


@needs_mpi
def test_the_example_program_gives_one_process_results_on_two_ranks(tmp_path):
    example = os.path.join(ROOT, "examples", "data_parallel.py")

    def numbers(done):
        line = [ln for ln in done.stdout.splitlines() if "process(es): test loss" in ln]
        assert len(line) == 1, done.stdout  # rank 0 prints, once
        words = line[0].replace(",", "").split()
        return int(words[0]), float(words[4]), float(words[7]), float(words[10])

    ranks1, loss1, acc1, sum1 = numbers(_run(example, []))
    ranks2, loss2, acc2, sum2 = numbers(_run(example, [], ranks=2))
    assert (ranks1, ranks2) == (1, 2)
    assert acc2 == acc1
    np.testing.assert_allclose([loss2, sum2], [loss1, sum1], rtol=1e-5)

"""Data-parallel training on MPI: one process against N ranks for the 784-1024-1024-10 MLP.

The big MLP of bench_train.py (relu/relu/softmax, sparse categorical crossentropy, Adam, global batch 128,
random data) trained by ``fit``:

* alone, the ordinary fit (whole epochs in one C++ call; DataParallel alone is the same);
* on N ranks under ``mpiexec -n N`` (each rank on 128 / N rows of every batch, its threads the cores / N).

Per configuration: samples/s over the global batches, the step time, and the time of the gradient
all-reduce per step (gradsmith._data_parallel.TIMES, timed inside fit). Then the all-reduce alone on the
model's gradient buffer (1.86 M floats, 7.4 MB): gradsmith's (``MPI_Allreduce`` in place over its own
communicator, as fit calls it) against mpi4py's own ``Allreduce`` of the same buffer into a second one, as
bus bandwidth (bytes * 2 (N - 1) / N per second, the figure NCCL's tests quote). Runs alternate between the
configurations; the table gives medians over all runs.

    python benchmarks/bench_mpi.py [--ranks 2] [--steps 40] [--rounds 3] [--json out.json]

Needs ``pip install "gradsmith[mpi]"``; mpiexec is taken from beside the running Python, else from PATH.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

SIZES = (784, 1024, 1024, 10)
BATCH = 128


def _model(keras):
    model = keras.Sequential([keras.layers.Dense(1024, activation="relu", input_shape=(784,)),
                              keras.layers.Dense(1024, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def worker(mode, steps, repeats):
    """One configuration's measurements, printed by rank 0 as a JSON line."""
    import gradsmith as keras
    from gradsmith import _data_parallel

    if mode != "plain":
        keras.distribution.initialize()
        keras.distribution.set_distribution(keras.distribution.DataParallel())
    dist = keras.distribution
    rank, size = (dist.rank(), dist.size()) if mode != "plain" else (0, 1)
    rng = np.random.default_rng(0)
    n = BATCH * steps
    x = rng.random((n, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], n)
    keras.utils.set_random_seed(0)
    model = _model(keras)
    model.fit(x[:4 * BATCH], y[:4 * BATCH], batch_size=BATCH, epochs=1, verbose=0)  # warm-up: arena, threads
    fits, reduces = [], []
    for _ in range(repeats):
        before = dict(_data_parallel.TIMES)
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        fits.append(time.perf_counter() - t0)
        ran = _data_parallel.TIMES["steps"] - before["steps"]
        if ran:
            reduces.append((_data_parallel.TIMES["allreduce"] - before["allreduce"]) / ran)
    result = {"mode": mode, "ranks": size, "threads": keras.get_num_threads(), "steps": steps, "fit_s": fits,
              "allreduce_s": reduces}
    if size > 1:
        result.update(_bandwidth(dist, model.gradients))
    if rank == 0:
        print("RESULT " + json.dumps(result), flush=True)


def _bandwidth(dist, grads, repeats=30):
    """Median seconds of gradsmith's all-reduce of the gradient buffer and of mpi4py's own Allreduce of it."""
    from mpi4py import MPI

    group = dist._group()
    comm = MPI.COMM_WORLD
    buf = np.array(grads, copy=True)
    send, recv = np.array(grads, copy=True), np.empty_like(grads)
    ours, theirs = [], []
    for _ in range(3):
        group.sum_(buf)
        comm.Allreduce(send, recv, op=MPI.SUM)
    for _ in range(repeats):  # alternating, each timed from a barrier
        comm.Barrier()
        t0 = time.perf_counter()
        group.sum_(buf)
        ours.append(time.perf_counter() - t0)
        comm.Barrier()
        t0 = time.perf_counter()
        comm.Allreduce(send, recv, op=MPI.SUM)
        theirs.append(time.perf_counter() - t0)
    return {"bytes": int(grads.nbytes), "ours_s": ours, "mpi4py_s": theirs}


def _launch(mode, ranks, steps, repeats):
    here = os.path.abspath(__file__)
    cmd = [sys.executable, here, "--worker", mode, "--steps", str(steps), "--repeats", str(repeats)]
    if mode == "parallel" and ranks > 1:
        mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
        if mpiexec is None:
            sys.exit('bench_mpi: no mpiexec: pip install "gradsmith[mpi]"')
        cmd = [mpiexec, "-n", str(ranks)] + cmd
    env = {k: v for k, v in os.environ.items() if k not in ("PMI_SIZE", "PMI_RANK", "PMI_FD")}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    sys.exit(f"bench_mpi: {' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--steps", type=int, default=40, help="global batches of 128 per timed fit")
    ap.add_argument("--rounds", type=int, default=3, help="alternations of the configurations")
    ap.add_argument("--repeats", type=int, default=3, help="timed fits per configuration and round")
    ap.add_argument("--json")
    ap.add_argument("--worker", choices=("plain", "parallel"))
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.steps, args.repeats)

    configs = [("plain", 1), ("parallel", args.ranks)]
    runs = {c: [] for c in configs}
    for _ in range(args.rounds):
        for mode, ranks in configs:
            runs[(mode, ranks)].append(_launch(mode, ranks, args.steps, args.repeats))

    rows, out = [], []
    base = None
    for (mode, ranks), results in runs.items():
        fits = [t for r in results for t in r["fit_s"]]
        fit = statistics.median(fits)
        sps = BATCH * args.steps / fit
        base = base or sps
        step_ms = fit / args.steps * 1e3
        red = [t for r in results for t in r["allreduce_s"]]
        red_ms = statistics.median(red) * 1e3 if red else 0.0
        name = "1 process, plain fit" if mode == "plain" else f"{ranks} rank{'s' if ranks > 1 else ''}, DataParallel"
        spread = f"{BATCH * args.steps / max(fits):,.0f}-{BATCH * args.steps / min(fits):,.0f}"
        rows.append(f"| {name} | {results[0]['threads']} | {sps:,.0f} ({spread}) | {sps / base:.2f} | {step_ms:.2f} | "
                    f"{red_ms:.2f} | {100 * red_ms / step_ms:.0f}% |")
        entry = {"config": name, "threads_per_rank": results[0]["threads"], "samples_per_s": sps,
                 "step_ms": step_ms, "allreduce_ms": red_ms, "fit_s": fits}
        if ranks > 1:
            nbytes = results[0]["bytes"]
            ours = statistics.median([t for r in results for t in r["ours_s"]])
            theirs = statistics.median([t for r in results for t in r["mpi4py_s"]])
            bus = 2 * (ranks - 1) / ranks * nbytes
            entry.update({"bytes": nbytes, "ours_ms": ours * 1e3, "mpi4py_ms": theirs * 1e3,
                          "ours_busbw_GBs": bus / ours / 1e9, "mpi4py_busbw_GBs": bus / theirs / 1e9})
        out.append(entry)

    print(f"MLP 784-1024-1024-10, global batch {BATCH}, Adam, {args.steps} steps per fit; medians of "
          f"{args.rounds} x {args.repeats} fits per row")
    print("| configuration | threads per rank | samples/s (min-max) | vs plain | step ms | all-reduce ms per step | "
          "all-reduce share |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    for e in out:
        if "bytes" in e:
            print(f"\nAll-reduce of the gradient buffer ({e['bytes'] / 1e6:.2f} MB, {args.ranks} ranks): gradsmith "
                  f"{e['ours_ms']:.2f} ms ({e['ours_busbw_GBs']:.2f} GB/s bus), mpi4py Allreduce "
                  f"{e['mpi4py_ms']:.2f} ms ({e['mpi4py_busbw_GBs']:.2f} GB/s bus), ratio "
                  f"{e['mpi4py_ms'] / e['ours_ms']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

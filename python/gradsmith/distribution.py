"""Data-parallel training across processes and machines on MPI, with Keras 3's ``keras.distribution`` names.

A program adds, before building its model::

    keras.distribution.initialize()                                  # joins the MPI job; a no-op alone
    keras.distribution.set_distribution(keras.distribution.DataParallel())

and ``mpiexec -n 4 python train.py`` runs it on four ranks. Under ``DataParallel``, ``fit``:

- broadcasts rank 0's weights (with non-trainable state) and optimizer state at its first step, after
  checking that every rank has the same model size and data (a wrong launch raises the same
  ``DistributionError`` on every rank);
- draws each epoch's shuffle from one seed that rank 0 draws and broadcasts;
- gives each rank a contiguous share of every global batch (``share``: the first ``rows % size`` ranks take
  one row more), runs forward and backward on it (``CpuRunner.gradient_step``), scales its gradients by
  ``rows_on_this_rank / rows`` and sums the flat gradient buffer over the ranks (one ``Allreduce``), so the
  buffer holds the single-process mean; then the one fused optimizer update (``apply_gradients``);
- draws Dropout masks by global row (each share draws one process's coins for its rows), with rank 0's
  Dropout seeds; sums BatchNormalization's statistics over the ranks inside the pass (the global batch's);
- reports the loss and metrics over all ranks (metric states are summed when logs are made), shown by rank 0's
  progress bar only; callbacks that write files (ModelCheckpoint, CSVLogger) run on rank 0 only.

``evaluate`` and ``predict`` split every batch the same way (``predict`` gathers the rows back, so every rank
returns all predictions). A rank that raises inside fit / evaluate / predict prints the error with its rank
and ends the job (``MPI_Abort``), so no rank waits forever in a collective.

Nothing here imports mpi4py until a program asks for several processes: ``import gradsmith`` never does.
A single process (no ``mpiexec``, or ``-n 1``) needs no MPI at all and runs the ordinary fit, its shuffle
drawn from one seed as N ranks draw it: the reference N ranks are compared against.
"""
import os
import sys
import traceback

import numpy as np

__all__ = ["initialize", "DataParallel", "set_distribution", "distribution", "list_devices", "rank", "size",
           "local_size", "process_id", "num_processes", "barrier", "share", "shares", "DistributionError"]

_INSTALL = 'pip install "gradsmith[mpi]" (mpi4py and the MPICH wheel), or mpi4py against your system MPI'

# Launchers' environment variables that give the job's size: MPICH / Intel MPI (Hydra) and Slurm's PMI,
# Open MPI, MVAPICH, and Slurm inside an srun step.
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS")

_state = {"group": None, "distribution": None}


class DistributionError(RuntimeError):
    """The ranks of a data-parallel job disagree (model size, data size, batch), or MPI is missing."""


def _launched_size():
    """The number of processes the launcher started (1 when not under one)."""
    for var in _SIZE_VARS:
        value = os.environ.get(var)
        if value and value.isdigit():
            return int(value)
    return 1


class _Group:
    """The processes of the job: rank, size and the few collectives training needs. With ``comm`` None (a
    single process) every collective is the identity."""

    def __init__(self, comm=None, local=1):
        self.comm = comm
        self.rank = comm.Get_rank() if comm is not None else 0
        self.size = comm.Get_size() if comm is not None else 1
        self.local_size = local
        if comm is not None:
            from mpi4py import MPI
            self._mpi = MPI

    def share(self, rows):
        return share(rows, self.rank, self.size)

    def sum_(self, buf):
        """Sum a contiguous float32 / float64 array over the ranks, in place (MPI_Allreduce)."""
        if self.comm is not None:
            self.comm.Allreduce(self._mpi.IN_PLACE, buf, op=self._mpi.SUM)
        return buf

    def bcast_(self, buf):
        """Rank 0's contents of a contiguous array into every rank's, in place."""
        if self.comm is not None:
            self.comm.Bcast(buf, root=0)
        return buf

    def bcast(self, obj):
        return self.comm.bcast(obj, root=0) if self.comm is not None else obj

    def allgather(self, obj):
        return self.comm.allgather(obj) if self.comm is not None else [obj]

    def any(self, flag):
        return any(self.allgather(bool(flag))) if self.comm is not None else bool(flag)

    def gather_rows(self, local, rows):
        """Every rank's ``local`` rows (its share of ``rows``, in rank order) as one array on every rank."""
        if self.comm is None:
            return local
        local = np.ascontiguousarray(local, dtype=np.float32)
        per_row = int(np.prod(local.shape[1:], dtype=np.int64))
        out = np.empty((rows,) + local.shape[1:], np.float32)
        counts = [n * per_row for n in shares(rows, self.size)]
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64).tolist()
        self.comm.Allgatherv(local, [out, counts, displs, self._mpi.FLOAT])
        return out

    def check_same(self, **named):
        """Raise DistributionError on every rank unless every rank has the same value of each keyword (one
        allgather); the message names the first that differs and each rank's value of it."""
        every = self.allgather(named)
        for what in named:
            values = [v[what] for v in every]
            if any(v != values[0] for v in values):
                listing = ", ".join(f"rank {r}: {v}" for r, v in enumerate(values))
                raise DistributionError(f"the ranks disagree on {what.replace('_', ' ')} ({listing}): every rank "
                                        "must run the same program on the same data")

    def abort(self, where, exc):
        """Print the error with this rank's number, then end every rank of the job."""
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        sys.stderr.write(f"{text}gradsmith.distribution: rank {self.rank} of {self.size} failed in {where}: "
                         f"{type(exc).__name__}: {exc}\ngradsmith.distribution: ending the MPI job (MPI_Abort) so "
                         "that no rank waits for it\n")
        sys.stderr.flush()
        self.comm.Abort(1)


def share(rows, rank, size):
    """(start, stop) of ``rank``'s contiguous share of ``rows`` rows among ``size`` ranks: the first
    ``rows % size`` ranks take one row more."""
    base, extra = divmod(int(rows), int(size))
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def shares(rows, size):
    """Every rank's number of rows of ``rows``, in rank order."""
    base, extra = divmod(int(rows), int(size))
    return [base + (1 if r < extra else 0) for r in range(size)]


def _join_mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise DistributionError(f"this program runs in several processes, which needs MPI: {_INSTALL} "
                                f"({e})") from None
    comm = MPI.COMM_WORLD.Dup()  # our own communicator: the program's messages never mix with ours
    comm.Set_errhandler(MPI.ERRORS_RETURN)  # a failed collective raises (mpi4py's MPI.Exception)
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    group = _Group(comm, local.Get_size())
    local.Free()
    return group


def initialize(job_addresses=None, num_processes=None, process_id=None):
    """Join the job this process was launched in (``mpiexec``, ``srun``): a no-op in a single process.

    Keras 3's signature: ``job_addresses`` is not needed (MPI's launcher knows the hosts) and must be None;
    ``num_processes`` and ``process_id``, when given, are checked against the job. In a job of several
    processes, the threads each process runs its kernels on default to the cores divided by the processes
    on this machine (unless OMP_NUM_THREADS sets them, or the program calls set_num_threads after)."""
    if job_addresses is not None:
        raise ValueError("initialize: job_addresses is not used with MPI (the launcher places the processes); "
                         "pass None")
    launched = _launched_size()
    wanted = launched if num_processes is None else int(num_processes)
    if _state["group"] is None:
        if wanted > 1 or launched > 1 or "mpi4py" in sys.modules:
            group = _join_mpi()
        else:
            group = _Group()
        _state["group"] = group
        if group.size > 1 and "OMP_NUM_THREADS" not in os.environ:
            from gradsmith import set_num_threads
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            set_num_threads(max(1, cores // max(1, group.local_size)))
    group = _state["group"]
    if num_processes is not None and int(num_processes) != group.size:
        raise DistributionError(f"initialize: num_processes={num_processes}, but the job has {group.size} "
                                f"process(es); launch with mpiexec -n {num_processes}")
    if process_id is not None and int(process_id) != group.rank:
        raise DistributionError(f"initialize: process_id={process_id}, but this process is rank {group.rank}")


def _group():
    if _state["group"] is None:
        initialize()
    return _state["group"]


def rank():
    """This process's rank in the job (0 alone)."""
    return _group().rank


def size():
    """The number of processes in the job (1 alone)."""
    return _group().size


process_id = rank
num_processes = size


def local_size():
    """The number of processes of the job on this machine."""
    return _group().local_size


def barrier():
    """Wait until every rank gets here."""
    g = _group()
    if g.comm is not None:
        g.comm.Barrier()


def list_devices(device_type=None):
    """Keras's list_devices: here one CPU per process, ``['cpu:0', ..., 'cpu:N-1']``."""
    if device_type not in (None, "cpu", "CPU"):
        return []
    return [f"cpu:{r}" for r in range(size())]


class DataParallel:
    """Keras 3's DataParallel: every process holds the whole model and trains on its share of each batch;
    gradients are averaged over the processes before each update. ``devices`` (Keras's argument) may name
    the processes' devices as ``list_devices()`` does; ``auto_shard_dataset`` must stay True (each rank takes
    its share of every global batch)."""

    def __init__(self, device_mesh=None, devices=None, auto_shard_dataset=True):
        if device_mesh is not None:
            raise ValueError("DataParallel: device meshes are not supported; pass devices=None")
        if not auto_shard_dataset:
            raise ValueError("DataParallel: auto_shard_dataset=False is not supported: each rank takes its share "
                             "of every global batch")
        group = _group()
        if devices is not None and len(devices) != group.size:
            raise ValueError(f"DataParallel: {len(devices)} devices for a job of {group.size} process(es): "
                             "one device per process")
        self.devices = list(devices) if devices is not None else list_devices()
        self.batch_dim_name = "batch"
        self.auto_shard_dataset = True

    @property
    def num_processes(self):
        return _group().size

    @property
    def process_id(self):
        return _group().rank

    def get_config(self):
        return {"devices": self.devices}

    def __repr__(self):
        return f"<DataParallel processes={self.num_processes}>"


def set_distribution(value):
    """Make ``value`` (a DataParallel, or None for none) the distribution fit / evaluate / predict use."""
    if value is not None and not isinstance(value, DataParallel):
        raise TypeError(f"set_distribution: expected a DataParallel or None, got {type(value).__name__}")
    _state["distribution"] = value


def distribution():
    """The distribution set by set_distribution, or None."""
    return _state["distribution"]


def _active():
    """The process group fit / evaluate / predict train over, or None when no DataParallel is set."""
    if _state["distribution"] is None:
        return None
    return _group()

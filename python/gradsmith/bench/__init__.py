"""gradsmith.bench: gradsmith against its peers and against the machine, in one table.

    python -m gradsmith.bench [--only gemm,train,optimizer] [--quick] [--repeats N]
                              [--threads N] [--json out.json] [--plot out.png]

Groups (each module's docstring gives the cases and how figures are counted):

* ``gemm``: ops.matmul against NumPy's @ and torch.matmul, square and the
  products of dense training, in GFLOP/s and as a share of the FLOP peak;
* ``train``: model.fit against PyTorch, Keras/TensorFlow and a plain NumPy
  trainer, in samples/s and as a share of the FLOP peak;
* ``optimizer``: fused Adam and SGD steps against torch.optim, in GB/s and as
  a share of the copy bandwidth;
* ``int8``: predict of the int8-quantized 784-1024-1024-10 MLP against our
  float32 predict and PyTorch's dynamic int8, as a share of the int8 (VNNI)
  peak; the int8 GEMM alone; the int8 file size against float32.

The peaks are gradsmith.machine.peak(). Contenders of a case run interleaved
(A B A B ...); the table gives medians, and the spread of the samples.
Missing peers (PyTorch, TensorFlow) read "not installed". ``--plot`` needs
matplotlib; without it the run prints a message, skips the chart and exits 0.

``--json`` writes one object: ``schema`` (1), ``created``, ``seconds``,
``machine`` (the peaks: gflops, gbps, threads, isa), ``threads``, ``isa``,
``cpu``, ``versions`` (gradsmith, numpy, python, torch, tensorflow, keras),
``quick``, ``repeats`` (null: each group's default), ``groups`` and
``rows``: one per (case, peer) with ``group``, ``case``, ``unit``,
``gradsmith`` and ``peer_figure`` (each {median, min, max, q1, q3, n,
samples} of rates, or null), ``peer``, ``peer_status`` ('ok', 'not
installed', ...), ``ratio`` (gradsmith / peer medians), ``roof`` (the
measured peak in the row's unit), ``peak_fraction``, ``params``, ``kernel``,
and for kernels ``flops``, ``bytes`` and ``intensity`` per call.
"""

from gradsmith.bench.cli import main

__all__ = ["main"]

"""Optimizer-step bandwidth: gradsmith's fused Adam and SGD-with-momentum steps
against torch.optim (fused=True; foreach variants where fused is unavailable).

One step over 10M and 50M float32 parameters, counted as 28 bytes per
parameter for Adam (read param, grad, m, v; write param, m, v) and 20 for SGD
with momentum (read param, grad, momentum; write param, momentum); the table
gives the median effective GB/s of each, the ratio, the spread, and
gradsmith's share of the machine's measured copy bandwidth.
A thin script over ``python -m gradsmith.bench --only optimizer``.

    python benchmarks/bench_optimizer.py [--threads N] [--repeats N] [--quick] [--json out.json]
"""
import os
import sys

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # see bench_gemm.py

from gradsmith.bench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["--only", "optimizer", *sys.argv[1:]], prog=sys.argv[0]))

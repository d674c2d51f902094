"""GEMM throughput: gradsmith.ops.matmul against NumPy's @ (OpenBLAS) and torch.matmul.

Square products (1024^3, 2048^3, 4096^3) and the three products of a dense
layer's training step (forward x@W, dW = x^T dz, dx = dz W^T) at batch 32,
128 and 256 for the layers of the seed and big MLPs. Contenders run
interleaved into preallocated outputs; the table gives the median GFLOP/s of
each, the ratio, the spread of the samples and gradsmith's share of the
machine's measured FLOP peak. Results are checked against NumPy first.
A thin script over ``python -m gradsmith.bench --only gemm``.

    python benchmarks/bench_gemm.py [--threads N] [--repeats N] [--quick] [--json out.json] [--plot out.png]
"""
import os
import sys

# OpenBLAS's idle threads spin ~0.1 s after each call, taking a core from
# whatever runs next; let them sleep at once. Read only when NumPy loads.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from gradsmith.bench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["--only", "gemm", *sys.argv[1:]], prog=sys.argv[0]))

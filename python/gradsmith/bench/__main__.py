"""``python -m gradsmith.bench``: see gradsmith/bench/__init__.py."""

import os
import sys

# OpenBLAS's idle threads spin for about 2**28 cycles (~0.1 s) after each call,
# taking a core from whatever runs next: interleaved with it, gradsmith would
# be measured on part of the machine. OPENBLAS_THREAD_TIMEOUT=4 lets them sleep
# after 2**4 cycles, but OpenBLAS reads it only when NumPy loads, which
# importing gradsmith has already done: start the interpreter again with it
# set (only when this process was started as `python -m gradsmith.bench`).
argv = sys.orig_argv
if ("OPENBLAS_THREAD_TIMEOUT" not in os.environ and os.name == "posix"
        and any(a == "-m" and b == "gradsmith.bench" for a, b in zip(argv, argv[1:]))):
    os.execve(sys.executable, argv, {**os.environ, "OPENBLAS_THREAD_TIMEOUT": "4"})

from gradsmith.bench.cli import main  # noqa: E402

sys.exit(main())

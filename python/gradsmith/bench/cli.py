"""Command line of ``python -m gradsmith.bench``: run the groups, print one table."""

import argparse
import platform
import time

import gradsmith
from gradsmith import machine
from gradsmith.bench import cnn, gemm, optimizer, peers, quantized, report, rnn, train
from gradsmith.bench.common import Settings, progress

GROUPS = {"gemm": gemm, "train": train, "optimizer": optimizer, "cnn": cnn, "rnn": rnn, "int8": quantized}


def parse(argv, prog=None):
    p = argparse.ArgumentParser(prog=prog or "python -m gradsmith.bench",
                                description="gradsmith against NumPy, PyTorch and Keras, and against the "
                                            "machine's measured peaks, in one table.")
    p.add_argument("--only", default=",".join(GROUPS),
                   help=f"comma-separated groups to run (default: all of {', '.join(GROUPS)})")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one round (a smoke test; figures are noise)")
    p.add_argument("--repeats", type=int, default=0,
                   help="interleaved rounds per case (default: gemm 5, optimizer 5, train 3, cnn 3, rnn 3, int8 5; 1 with --quick)")
    p.add_argument("--threads", type=int, default=0, help="threads for every contender (default: gradsmith's)")
    p.add_argument("--json", metavar="PATH", help="write every figure, the machine's peaks and versions here")
    p.add_argument("--plot", metavar="PATH", help="draw a roofline chart (PNG) here; needs matplotlib")
    args = p.parse_args(argv)
    args.groups = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown or not args.groups:
        p.error(f"--only: unknown group(s) {unknown}; choose from {', '.join(GROUPS)}")
    if args.repeats < 0 or args.threads < 0:
        p.error("--repeats and --threads must be >= 1")
    return args


def cpu_name():
    """The CPU's model name where Linux tells it, else the architecture."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run(args):
    """Run the chosen groups; returns the result written by --json."""
    threads = args.threads or gradsmith.get_num_threads()
    peers.set_threads(threads)
    progress(f"measuring the machine's peaks ({threads} threads)")
    peak = machine.peak()
    settings = Settings(quick=args.quick, rounds=args.repeats, threads=threads, peak=peak)
    rows = []
    t0 = time.perf_counter()
    for name in args.groups:
        progress(f"{name}:")
        rows += GROUPS[name].run(settings)
    return {"schema": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": time.perf_counter() - t0,
            "machine": peak, "threads": threads, "isa": peak["isa"], "cpu": cpu_name(),
            "versions": peers.versions(), "quick": args.quick, "repeats": args.repeats or None,
            "groups": args.groups, "rows": rows}


def main(argv=None, prog=None):
    """Run the command line (argv: its arguments; default sys.argv[1:]); returns the exit status."""
    args = parse(argv, prog)
    if args.plot and report.matplotlib_pyplot() is None:
        progress(report.NO_MATPLOTLIB)  # said up front on stderr, and on stdout at the end; the run exits 0
    result = run(args)
    m, v = result["machine"], result["versions"]
    print(f"gradsmith {v['gradsmith']}  isa={m['isa']}  threads={m['threads']}  "
          f"measured peak {m['gflops']:.0f} GFLOP/s, copy {m['gbps']:.1f} GB/s  |  numpy {v['numpy']}  "
          f"torch {v['torch']}  tensorflow {v['tensorflow']}")
    print(report.table(result["rows"]))
    if args.json:
        report.write_json(args.json, result)
        print(f"figures written to {args.json}")
    if args.plot and report.roofline(args.plot, result):
        print(f"roofline written to {args.plot}")
    return 0

"""The outputs of a benchmark run: the table, the JSON file, the roofline chart."""

import json

COLUMNS = ("case", "unit", "gradsmith", "peer", "peer figure", "ratio", "spread", "of peak")


def _figure(x):
    return f"{x:,.0f}" if x >= 1000 else f"{x:.3g}" if x < 10 else f"{x:.1f}"


def _spread(s):
    """(max - min) / median in percent."""
    return f"{100 * (s['max'] - s['min']) / s['median']:.0f}%" if s and s["median"] > 0 else "-"


def table(rows):
    """One line per (case, peer); spread is (max - min) / median of gradsmith's / the peer's samples."""
    lines = []
    for r in rows:
        pf = r["peer_figure"]
        lines.append((r["case"], r["unit"], _figure(r["gradsmith"]["median"]), r["peer"],
                      _figure(pf["median"]) if pf else r["peer_status"],
                      f"{r['ratio']:.2f}" if r["ratio"] is not None else "-",
                      f"{_spread(r['gradsmith'])}/{_spread(pf)}",
                      f"{100 * r['peak_fraction']:.0f}%" if r["peak_fraction"] is not None else "-"))
    widths = [max(len(c), *(len(line[i]) for line in lines)) if lines else len(c) for i, c in enumerate(COLUMNS)]
    left = (0, 1, 3)  # text columns; figures are right-aligned

    def fmt(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [fmt(COLUMNS), "  ".join("-" * w for w in widths)] + [fmt(line) for line in lines]
    out.append("ratio: gradsmith / peer (higher is better); spread: (max - min) / median of gradsmith's / the "
               "peer's samples; of peak: gradsmith's share of the measured roof (GEMM and training: FLOP peak; "
               "optimizers: copy bandwidth)")
    return "\n".join(out)


def write_json(path, result):
    with open(path, "w") as f:
        json.dump(result, f, indent=1)


def matplotlib_pyplot():
    """matplotlib.pyplot with a file-only backend, or None when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


NO_MATPLOTLIB = "--plot: matplotlib is not installed, so no chart is drawn (pip install matplotlib)"


def roofline(path, result):
    """Draw arithmetic intensity (FLOP/byte) against GFLOP/s: the two roofs
    (measured FLOP peak, copy bandwidth x intensity) and each kernel of the run
    as a point. Returns False (after printing why) without matplotlib."""
    plt = matplotlib_pyplot()
    if plt is None:
        print(NO_MATPLOTLIB)
        return False
    peak = result["machine"]
    points = {}  # one point per kernel case (rows repeat it per peer)
    for r in result["rows"]:
        if r.get("kernel"):
            points[r["case"]] = (r["intensity"], r["gradsmith"]["median"] * (1 if r["unit"] == "GFLOP/s" else
                                                                             r["intensity"]), r["group"])
    fig, ax = plt.subplots(figsize=(8, 5.5))
    lo = min([p[0] for p in points.values()] + [0.05]) / 2
    hi = max([p[0] for p in points.values()] + [peak["gflops"] / peak["gbps"]]) * 2
    xs = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    ax.plot(xs, [min(peak["gflops"], peak["gbps"] * x) for x in xs], "k-", lw=1.5, label="measured roof")
    ax.axhline(peak["gflops"], color="k", ls=":", lw=0.8)
    for group, color in (("gemm", "tab:blue"), ("optimizer", "tab:red")):
        mine = [(c, p) for c, p in points.items() if p[2] == group]
        if mine:
            ax.scatter([p[0] for _, p in mine], [p[1] for _, p in mine], color=color, s=18, label=group, zorder=3)
        for case, p in mine:
            if "^3" in case or group == "optimizer":
                ax.annotate(case, (p[0], p[1]), fontsize=7, xytext=(4, -8), textcoords="offset points")
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP / byte)", ylabel="GFLOP/s",
           title=f"gradsmith roofline: {peak['isa']}, {peak['threads']} threads, "
                 f"{peak['gflops']:.0f} GFLOP/s, {peak['gbps']:.1f} GB/s")
    ax.set_ylim(bottom=max(1e-3, min([p[1] for p in points.values()] + [peak["gflops"]]) / 3))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True

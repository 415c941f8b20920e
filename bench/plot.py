#!/usr/bin/env python3
"""plot.py — turns porta-bench's JSON into PNG charts.

    python3 bench/plot.py results.json --out charts/

writes, for each op in the results, <op>.png (bars per case, one per device and anchor,
with the ratio to the best anchor above porta's bars) and roofline.png (every matmul and
attention result as GFLOP/s against arithmetic intensity, under the machine's measured
f32 peak and memory-bandwidth roofs). Needs matplotlib (Debian: python3-matplotlib).
"""
import argparse
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

REQUIRED_RESULT_KEYS = ("op", "case", "device", "impl", "median_s", "min_s", "max_s", "first_call_s", "rel_err", "ok")
ANCHORS = ("openblas", "clblast", "mpi")


def load(path):
    """The JSON, checked against the schema porta-bench documents."""
    with open(path) as f:
        data = json.load(f)
    for key in ("machine", "version", "date", "results"):
        if key not in data:
            sys.exit(f"plot.py: {path}: missing top-level key '{key}'")
    for i, result in enumerate(data["results"]):
        missing = [k for k in REQUIRED_RESULT_KEYS if k not in result]
        if "gflops" not in result and "gbps" not in result:
            missing.append("gflops or gbps")
        if missing:
            sys.exit(f"plot.py: {path}: result {i} lacks {', '.join(missing)}")
    return data


def rate(result):
    return result.get("gflops", result.get("gbps"))


def series_name(result):
    """A device for porta's kernels ("cpu", "opencl:0 unfused"), the anchor's name otherwise."""
    if result["impl"] in ANCHORS:
        return result["impl"]
    return result["device"] if result["impl"] == "porta" else f"{result['device']} {result['impl']}"


def title(data, what):
    machine = data["machine"]
    line = f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores · porta {data['version']} · {data['date'][:10]}"
    start, end = machine.get("cache_fed_share_start"), machine.get("cache_fed_share_end")
    if start is not None and end is not None:  # near 100%: the caches were the run's own
        line += f" · cache-fed FMA {100 * start:.0f}%→{100 * end:.0f}% of peak"
    return f"{what}\n{line}"


def bar_chart(data, op, results, path):
    cases = list(dict.fromkeys(r["case"] for r in results))
    series = list(dict.fromkeys(series_name(r) for r in results))
    best_anchor = {}
    for r in results:
        if r["impl"] in ANCHORS and r["ok"] and rate(r):
            best_anchor[r["case"]] = max(best_anchor.get(r["case"], 0), rate(r))
    unit = "GB/s (busbw)" if op == "allreduce" else "GFLOP/s"
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(cases) + 3), 5.5))
    for s, name in enumerate(series):
        xs, ys, labels = [], [], []
        for c, case in enumerate(cases):
            for r in results:
                if r["case"] == case and series_name(r) == name and rate(r):
                    xs.append(c + (s - (len(series) - 1) / 2) * width)
                    ys.append(rate(r))
                    ratio = rate(r) / best_anchor[case] if case in best_anchor else None
                    mark = "" if r["ok"] else "FAIL "
                    labels.append(mark + (f"{ratio:.2f}x" if ratio is not None and r["impl"] not in ANCHORS else ""))
        bars = ax.bar(xs, ys, width, label=name)
        for bar, label in zip(bars, labels):
            if label:
                ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                            fontsize=6, rotation=90, xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels(cases, rotation=30, ha="right", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel(unit + " (log scale)")
    ax.set_title(title(data, f"porta-bench: {op} (labels: ratio to the best anchor)"), fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def roofline_chart(data, results, path):
    machine = data["machine"]
    peak, bandwidth = machine.get("peak_gflops"), machine.get("bandwidth_gbps")
    fig, ax = plt.subplots(figsize=(10, 5.5))
    points = [r for r in results if r.get("gflops") and r.get("bytes") and r.get("flops")]
    intensities = [r["flops"] / r["bytes"] for r in points] or [1.0]
    lo, hi = min(intensities) / 2, max(intensities) * 2
    if peak and bandwidth:
        ridge = peak / bandwidth
        xs = [lo, ridge, max(hi, ridge * 2)]
        ax.plot(xs, [min(peak, x * bandwidth) for x in xs], color="black", linewidth=1.5,
                label=f"roof: {peak:.0f} GFLOP/s, {bandwidth:.1f} GB/s (measured)")
    markers = {"matmul": "o", "attention": "s"}
    for name in dict.fromkeys(series_name(r) for r in points):
        for op, marker in markers.items():
            mine = [r for r in points if series_name(r) == name and r["op"] == op]
            if mine:
                ax.scatter([r["flops"] / r["bytes"] for r in mine], [r["gflops"] for r in mine], marker=marker,
                           label=f"{name} {op}", s=22, alpha=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (flop per compulsory byte)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(title(data, "porta-bench roofline"), fontsize=9)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("json", help="porta-bench --json output")
    parser.add_argument("--out", default=".", help="directory for the PNG files")
    args = parser.parse_args()
    data = load(args.json)
    os.makedirs(args.out, exist_ok=True)
    written = []
    for op in dict.fromkeys(r["op"] for r in data["results"]):
        results = [r for r in data["results"] if r["op"] == op]
        path = os.path.join(args.out, f"{op}.png")
        bar_chart(data, op, results, path)
        written.append(path)
    flops_results = [r for r in data["results"] if r["op"] in ("matmul", "attention")]
    if flops_results:
        path = os.path.join(args.out, "roofline.png")
        roofline_chart(data, flops_results, path)
        written.append(path)
    print("plot.py: wrote " + ", ".join(written))


if __name__ == "__main__":
    main()

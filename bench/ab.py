#!/usr/bin/env python3
"""ab.py — is a change faster? Two builds' Google Benchmark binaries, run in alternation.

    python3 bench/ab.py OLD/bench/porta-bench-matmul NEW/bench/porta-bench-matmul \\
        --filter 'matmul/2048x2048x2048_nn/f32/cpu:0/packed' --pairs 8

runs OLD and NEW one after the other PAIRS times (swapping which goes first every pair)
and prints, per benchmark, the sorted speedups OLD time / NEW time of the pairs and their
median. On a shared machine a lone timing drifts by several percent from minute to minute;
neighbouring runs drift together, so only a shift that (nearly) every pair shows is real.
Run OLD against itself first to see how far the pairs scatter there. The environment is
passed on (e.g. PORTA_BENCH_DEVICES=cpu). OLD can come from a worktree of the base commit:

    git worktree add /tmp/old <commit> && cd /tmp/old && cmake --preset release &&
        cmake --build build/release -j2 --target porta-bench-matmul
"""
import argparse
import json
import statistics
import subprocess
import sys


def times(binary, args):
    """real_time of each benchmark of one run, by name."""
    command = [binary, f"--benchmark_filter={args.filter}", f"--benchmark_min_time={args.min_time}",
               "--benchmark_format=json"]
    try:
        run = subprocess.run(command, capture_output=True, text=True)
    except OSError as error:
        sys.exit(f"ab.py: cannot run {binary}: {error}")
    if run.returncode != 0 or not run.stdout.strip():
        sys.exit(f"ab.py: {binary} exited with {run.returncode} and no results for {args.filter!r}:\n{run.stderr.strip()}")
    return {b["name"]: b["real_time"] for b in json.loads(run.stdout)["benchmarks"]
            if b.get("run_type", "iteration") == "iteration"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--filter", required=True, help="--benchmark_filter for both binaries")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds per benchmark per run")
    args = parser.parse_args()

    speedups = {}
    for pair in range(args.pairs):
        if pair % 2 == 0:
            old, new = times(args.old, args), times(args.new, args)
        else:
            new, old = times(args.new, args), times(args.old, args)
        for name, old_time in old.items():
            if name in new:
                speedups.setdefault(name, []).append(old_time / new[name])
    if not speedups:
        sys.exit(f"ab.py: no benchmark matches {args.filter!r} in both binaries")
    print(f"speedup NEW over OLD (OLD time / NEW time), {args.pairs} pairs:")
    for name, values in speedups.items():
        values.sort()
        print(f"{name}  median {statistics.median(values):.3f}  ({' '.join(f'{v:.3f}' for v in values)})")


if __name__ == "__main__":
    main()

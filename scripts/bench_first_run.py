"""First run and warm start of `lateint search`: this checkout beside an older revision, in one run.

For each revision (a checkout on ``PYTHONPATH``): the first search of a fresh install (an empty
numba cache directory, so every kernel the search needs is compiled), then warm searches (the
cache filled), each a new ``lateint search`` process timed start to exit; and the compile time of
each kernel the first search compiled (numba's ``Dispatcher.compile``, in-process; a kernel's time
includes the helpers it calls). Runs alternate
between revisions so load on the machine hits both alike.

    git worktree add /tmp/before <rev>
    OPENBLAS_NUM_THREADS=1 python scripts/bench_first_run.py INDEX --before /tmp/before --out docs/benchmarks.md

INDEX must be an index both revisions can open read-only (same schema version).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchutil import REPO, write_section

QUERY = "coffee consumption and cancer risk"
PROFILE = """
import sys, time
from numba.core import dispatcher
compile_ = dispatcher.Dispatcher.compile
depth = [0]
def timed(self, sig):
    start = time.perf_counter()
    depth[0] += 1
    try:
        return compile_(self, sig)
    finally:
        depth[0] -= 1
        if depth[0] == 0 and self.py_func.__module__.startswith("lateint_lite"):
            print(f"compiled\\t{self.py_func.__name__}\\t{time.perf_counter() - start:.2f}", file=sys.stderr)
dispatcher.Dispatcher.compile = timed
from lateint_lite.cli import main
main(["search", sys.argv[1], sys.argv[2], "-k", "3"])
"""


def timed_search(checkout: Path, index: Path, cache: Path) -> float:
    """Seconds of one `lateint search` process (interpreter start to exit)."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "NUMBA_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "lateint_lite", "search", str(index), QUERY, "-k", "3"],
        env=env,
        check=True,
        capture_output=True,
        cwd=cache,
    )
    return time.perf_counter() - start


def kernel_compiles(checkout: Path, index: Path, cache: Path) -> dict[str, float]:
    """Kernel name -> seconds compiling it, for a first search with an empty cache."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "NUMBA_CACHE_DIR": str(cache)}
    command = [sys.executable, "-c", PROFILE, str(index), QUERY]
    err = subprocess.run(command, env=env, check=True, capture_output=True, text=True, cwd=cache).stderr
    times: dict[str, float] = {}
    for line in err.splitlines():
        fields = line.split("\t")
        if len(fields) == 3 and fields[0] == "compiled":
            times[fields[1]] = times.get(fields[1], 0.0) + float(fields[2])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("index", type=Path)
    parser.add_argument("--before", type=Path, required=True, help="checkout of the older revision")
    parser.add_argument("--rounds", type=int, default=3, help="first runs per revision")
    parser.add_argument("--warm", type=int, default=5, help="warm runs per revision")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    checkouts = {"before": args.before.resolve(), "after": REPO}
    first: dict[str, list[float]] = {k: [] for k in checkouts}
    warm: dict[str, list[float]] = {k: [] for k in checkouts}
    kernels: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for label, checkout in checkouts.items():
                cache = Path(tmp) / f"{label}-{round_}"
                cache.mkdir()
                first[label].append(timed_search(checkout, args.index, cache))
        for _ in range(args.warm):
            for label, checkout in checkouts.items():
                warm[label].append(timed_search(checkout, args.index, Path(tmp) / f"{label}-0"))
        for label, checkout in checkouts.items():
            cache = Path(tmp) / f"{label}-profile"
            cache.mkdir()
            kernels[label] = kernel_compiles(checkout, args.index, cache)
    rows = [
        "| revision | first search, empty cache (median of runs) | runs | warm search (median) | warm runs |",
        "|---|---:|---|---:|---|",
    ]
    for label in checkouts:
        rows.append(
            f"| {label} | {np.median(first[label]):.2f} s | {', '.join(f'{t:.1f}' for t in first[label])} "
            f"| {np.median(warm[label]):.2f} s | {', '.join(f'{t:.2f}' for t in warm[label])} |"
        )
    rows += ["", "| kernel compiled by the first search | before s | after s |", "|---|---:|---:|"]
    names = sorted(set(kernels["before"]) | set(kernels["after"]), key=lambda n: -kernels["before"].get(n, 0.0))
    for name in names:
        cells = [kernels[label].get(name) for label in checkouts]
        rows.append(f"| `{name}` | " + " | ".join("" if c is None else f"{c:.2f}" for c in cells) + " |")
    rows.append(f"| total | {sum(kernels['before'].values()):.2f} | {sum(kernels['after'].values()):.2f} |")
    body = "\n".join(rows) + (
        f"\n\nIndex: `{args.index}`; query {QUERY!r}, k=3; each number is one `python -m lateint_lite search` "
        "process from start to exit; an empty NUMBA_CACHE_DIR per first run."
    )
    write_section(args.out, "First run and warm start (bench_first_run.py)", body)


if __name__ == "__main__":
    main()

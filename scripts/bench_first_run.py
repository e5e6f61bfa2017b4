"""First run and warm start of `lateint search`: two set-ups side by side, in one run.

For each set-up: the first search of a fresh install (an empty numba cache directory, so every
kernel the search needs is compiled), then warm searches (the cache filled), each a new
``lateint search`` process timed start to exit; and the compile time of each kernel the first
search compiled (numba's ``Dispatcher.compile``, in-process; a kernel's time includes the
helpers it calls). Runs alternate between set-ups so load on the machine hits both alike.

The two set-ups are this checkout beside an older revision (``--before``, a checkout on
``PYTHONPATH``), or this checkout's default beside ``LATEINT_KERNELS=numba`` (``--tiers``).

    git worktree add /tmp/before <rev>
    OPENBLAS_NUM_THREADS=1 python scripts/bench_first_run.py INDEX --before /tmp/before --out docs/benchmarks.md
    OPENBLAS_NUM_THREADS=1 python scripts/bench_first_run.py INDEX --tiers --out docs/benchmarks.md

INDEX must be an index both set-ups can open read-only (same schema version).
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


def environment(setup: tuple[Path, dict[str, str]], cache: Path) -> dict[str, str]:
    """The process environment of a set-up (checkout, extra variables) with its numba cache."""
    checkout, extra = setup
    env = {k: v for k, v in os.environ.items() if k != "LATEINT_KERNELS"}
    return {**env, **extra, "PYTHONPATH": str(checkout), "NUMBA_CACHE_DIR": str(cache)}


def timed_search(setup: tuple[Path, dict[str, str]], index: Path, cache: Path) -> float:
    """Seconds of one `lateint search` process (interpreter start to exit)."""
    env = environment(setup, cache)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "lateint_lite", "search", str(index), QUERY, "-k", "3"],
        env=env,
        check=True,
        capture_output=True,
        cwd=cache,
    )
    return time.perf_counter() - start


def kernel_compiles(setup: tuple[Path, dict[str, str]], index: Path, cache: Path) -> dict[str, float]:
    """Kernel name -> seconds compiling it, for a first search with an empty cache."""
    env = environment(setup, cache)
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
    versus = parser.add_mutually_exclusive_group(required=True)
    versus.add_argument("--before", type=Path, help="checkout of the older revision")
    versus.add_argument("--tiers", action="store_true", help="this checkout's default vs LATEINT_KERNELS=numba")
    parser.add_argument("--rounds", type=int, default=3, help="first runs per revision")
    parser.add_argument("--warm", type=int, default=5, help="warm runs per revision")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.tiers:
        checkouts = {"LATEINT_KERNELS=numba": (REPO, {"LATEINT_KERNELS": "numba"}), "default": (REPO, {})}
    else:
        checkouts = {"before": (args.before.resolve(), {}), "after": (REPO, {})}
    labels = list(checkouts)
    first: dict[str, list[float]] = {k: [] for k in checkouts}
    warm: dict[str, list[float]] = {k: [] for k in checkouts}
    kernels: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for label, setup in checkouts.items():
                cache = Path(tmp) / f"{labels.index(label)}-{round_}"
                cache.mkdir()
                first[label].append(timed_search(setup, args.index, cache))
        for _ in range(args.warm):
            for label, setup in checkouts.items():
                warm[label].append(timed_search(setup, args.index, Path(tmp) / f"{labels.index(label)}-0"))
        for label, setup in checkouts.items():
            cache = Path(tmp) / f"{labels.index(label)}-profile"
            cache.mkdir()
            kernels[label] = kernel_compiles(setup, args.index, cache)
    rows = [
        "| set-up | first search, empty cache (median of runs) | runs | warm search (median) | warm runs |",
        "|---|---:|---|---:|---|",
    ]
    for label in checkouts:
        rows.append(
            f"| {label} | {np.median(first[label]):.2f} s | {', '.join(f'{t:.1f}' for t in first[label])} "
            f"| {np.median(warm[label]):.2f} s | {', '.join(f'{t:.2f}' for t in warm[label])} |"
        )
    rows += ["", f"| kernel compiled by the first search | {labels[0]} s | {labels[1]} s |", "|---|---:|---:|"]
    names = sorted(set(kernels[labels[0]]) | set(kernels[labels[1]]), key=lambda n: -kernels[labels[0]].get(n, 0.0))
    for name in names:
        cells = [kernels[label].get(name) for label in checkouts]
        rows.append(f"| `{name}` | " + " | ".join("" if c is None else f"{c:.2f}" for c in cells) + " |")
    rows.append(f"| total | {sum(kernels[labels[0]].values()):.2f} | {sum(kernels[labels[1]].values()):.2f} |")
    body = "\n".join(rows) + (
        f"\n\nIndex: `{args.index}`; query {QUERY!r}, k=3; each number is one `python -m lateint_lite search` "
        "process from start to exit; an empty NUMBA_CACHE_DIR per first run."
    )
    write_section(args.out, "First run and warm start (bench_first_run.py)", body)


if __name__ == "__main__":
    main()

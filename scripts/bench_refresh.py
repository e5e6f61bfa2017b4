"""Search and refresh on a kept index: this checkout against another, alternating.

Runs ``bench_scale.py``'s search phase (fresh process: open + first search, RSS, pruned
latency over ``--queries`` queries, then five rounds of "another process adds one document,
time the next search" and "drop the cached state, time a full reload") on an existing file
(``bench_scale.py --keep`` leaves one), once with this checkout and once with ``--baseline``'s
(a git worktree of an older commit), alternating so both see the same minutes of a noisy VM.
Each checkout runs its own ``bench_scale.py``. The file grows by a few one-document segments
per run, which the merge policy folds away.

    OPENBLAS_NUM_THREADS=1 python scripts/bench_refresh.py /tmp/lateint-bench/one1m.lateint \\
        --baseline /tmp/wt-old --rounds 3 --write docs/benchmarks.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from benchutil import REPO, run_in_checkout, write_section

SECTION = "Search and refresh at 1M documents, two checkouts (bench_refresh.py)"

CHILD = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1] + "/scripts")
import bench_scale
import lateint_lite as li

def main():
    import multiprocessing
    # the search phase as bench_scale runs it: in a spawned worker (its refresh writer is a child of this one)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        r = pool.apply(bench_scale.search_phase, (Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), False))
    keys = ("load_s", "rss_mib", "p50_ms", "p95_ms", "exhaustive_ms", "refresh_ms", "reload_ms")
    print(json.dumps({**dict(zip(keys, r)), "module": li.__file__}))

if __name__ == "__main__":
    main()
"""

#: What each row reports, in order: (column title, key, format).
COLUMNS = (
    ("open + first search s", "load_s", "{:.1f}"),
    ("RSS after load MiB", "rss_mib", "{:,.0f}"),
    ("pruned p50 ms", "p50_ms", "{:.1f}"),
    ("pruned p95 ms", "p95_ms", "{:.1f}"),
    ("first search after another process's 1-doc add ms", "refresh_ms", "{:.1f}"),
    ("full reload + search ms", "reload_ms", "{:,.0f}"),
)


def one_run(checkout: Path, index: Path, dim: int, queries: int) -> dict[str, float]:
    """The search phase of ``checkout`` on ``index`` in a fresh process."""
    row = run_in_checkout(checkout, CHILD, [str(checkout), str(index), str(dim), str(queries)], index.parent)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("index", type=Path, help="a built index of synthetic documents (bench_scale.py --keep)")
    parser.add_argument("--baseline", type=Path, required=True, help="checkout of the commit to compare against")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    setups = {"baseline": args.baseline.resolve(), "this checkout": REPO}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in setups}
    index = args.index.resolve()
    for r in range(args.rounds):
        for name, checkout in setups.items() if r % 2 == 0 else reversed(setups.items()):
            row = one_run(checkout, index, args.dim, args.queries)
            runs[name].append(row)
            print(f"round {r + 1}: {name}: p50 {row['p50_ms']:.1f} ms, refresh {row['refresh_ms']:.1f} ms", flush=True)
    lines = [
        f"`bench_scale.py`'s search phase on `{index.name}` (dim {args.dim}, {args.queries} queries, k=10), "
        "one fresh process per run, set-ups alternating. Each cell: the median over runs (each run's "
        "refresh and reload are already medians of 5 rounds), then every run's value.",
        "",
        "| set-up | " + " | ".join(title for title, _, _ in COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    medians: dict[str, dict[str, float]] = {}
    for name in setups:
        medians[name] = {key: float(np.median([run[key] for run in runs[name]])) for _, key, _ in COLUMNS}
        cells = [
            f"{fmt.format(medians[name][key])} ({', '.join(fmt.format(run[key]) for run in runs[name])})"
            for _, key, fmt in COLUMNS
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    base, new = medians["baseline"], medians["this checkout"]
    lines += [
        "",
        f"Ratios (baseline / this checkout, medians): pruned p50 {base['p50_ms'] / new['p50_ms']:.2f}x, "
        f"first search after another process's add {base['refresh_ms'] / new['refresh_ms']:.2f}x, "
        f"RSS after load {base['rss_mib'] / new['rss_mib']:.2f}x.",
    ]
    write_section(args.write, SECTION, "\n".join(lines))


if __name__ == "__main__":
    main()

"""Ingest throughput of precomputed vectors: this checkout against another, alternating.

Each round copies a built index (e.g. the 100k-document file ``bench_scale.py --keep`` leaves)
and adds ``--docs`` new synthetic documents to the copy in a fresh process, once with this
checkout's lateint_lite and once with ``--baseline``'s (a git worktree of an older commit),
alternating so both see the same minutes of a noisy VM. Only ``add()`` is timed: the documents
are generated first. Ratios from one run are the result; absolute numbers vary with the host.

    OPENBLAS_NUM_THREADS=1 python scripts/bench_ingest.py /tmp/idx/syn100k.lateint \\
        --baseline /tmp/wt-old --docs 10000 --rounds 3 --write docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from benchutil import REPO, run_in_checkout, write_section

SECTION = "Ingest throughput, precomputed vectors (bench_ingest.py)"

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[4])
import lateint_lite as li
from synthetic import Generator, VectorsOnly
path, n, dim, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[5])
gen = Generator(dim)
with li.open(path, encoder=VectorsOnly(dim)) as idx:
    idx.add(gen.batch(5_000_000, 5_000_020), batch_size=1000)  # compiles kernels outside the timing
    docs = gen.batch(4_000_000, 4_000_000 + n)
    t = time.perf_counter()
    idx.add(docs, batch_size=batch)
    seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "module": li.__file__}))
"""


def one_add(checkout: Path, index: Path, docs: int, dim: int, batch: int, workdir: Path) -> float:
    """Seconds one fresh process of ``checkout`` takes to add ``docs`` documents to a copy of
    ``index`` with ``add(batch_size=batch)``."""
    copy = workdir / "copy.lateint"
    shutil.copyfile(index, copy)
    args = [str(copy), str(docs), str(dim), str(REPO / "scripts"), str(batch)]
    row = run_in_checkout(checkout, CHILD, args, workdir)
    copy.unlink()
    return float(row["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("index", type=Path, help="a built index of synthetic documents (bench_scale.py --keep)")
    parser.add_argument("--baseline", type=Path, required=True, help="checkout of the commit to compare against")
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1000, help="add()'s batch_size (its default is 64)")
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    setups = {"baseline": args.baseline.resolve(), "this checkout": REPO}
    times: dict[str, list[float]] = {name: [] for name in setups}
    with tempfile.TemporaryDirectory(dir=args.index.parent) as tmp:
        for r in range(args.rounds):
            for name, checkout in setups.items() if r % 2 == 0 else reversed(setups.items()):
                seconds = one_add(checkout, args.index, args.docs, args.dim, args.batch_size, Path(tmp))
                times[name].append(seconds)
                print(f"round {r + 1}: {name}: {seconds:.1f} s ({args.docs / seconds:.0f} docs/s)", flush=True)
    base, new = (float(np.median(times[name])) for name in setups)
    lines = [
        f"Adding {args.docs:,} synthetic documents (dim {args.dim}, ~100 tokens each) to a copy of "
        f"`{args.index.name}` with `add(batch_size={args.batch_size})`, one fresh process per add, "
        "set-ups alternating; only `add()` timed.",
        "",
        "| set-up | median s | docs/s | runs s |",
        "|---|---:|---:|---|",
    ]
    for name, seconds in zip(setups, (base, new), strict=True):
        runs = ", ".join(f"{t:.1f}" for t in times[name])
        lines.append(f"| {name} | {seconds:.1f} | {args.docs / seconds:,.0f} | {runs} |")
    lines += ["", f"This checkout adds {base / new:.2f}x as many documents per second as the baseline."]
    body = "\n".join(lines)
    write_section(args.write, SECTION, body)


if __name__ == "__main__":
    main()

"""Cost of explained matches: the same searches with and without highlights, in one run.

python scripts/bench_explain.py --index scifact.lateint --queries ../shared/data/scifact/queries.jsonl.gz
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from benchutil import write_section

import lateint_lite as li
from lateint_lite.sources import read_jsonl


def timed(idx: li.Index, queries: list[str], k: int, mode: str, highlight: bool) -> list[float]:
    times = []
    for query in queries:
        start = time.perf_counter()
        idx.search(query, k=k, mode=mode, highlight=highlight)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", required=True)
    parser.add_argument("--queries", required=True, help="BEIR queries.jsonl[.gz]")
    parser.add_argument("--max-queries", type=int, default=300)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    queries = [o["text"] for o in read_jsonl(args.queries) if isinstance(o.get("text"), str)][: args.max_queries]
    rows = [
        "| mode | p50 ms without | p50 ms with | mean extra ms per search | extra ms per hit | hits with highlights |"
    ]
    rows.append("|---|---:|---:|---:|---:|---:|")
    with li.open(args.index, readonly=True) as idx:
        idx.search(queries[0], k=args.k)  # load state, compile kernels
        for mode in ("maxsim", "bm25", "hybrid"):
            off, on = [], []
            for query in queries:  # alternate so that drift on a noisy machine hits both sides alike
                off += timed(idx, [query], args.k, mode, False)
                on += timed(idx, [query], args.k, mode, True)
            hits = [h for q in queries[:50] for h in idx.search(q, k=args.k, mode=mode)]
            covered = sum(1 for h in hits if h.highlights) / max(len(hits), 1)
            extra = (np.mean(on) - np.mean(off)) * 1e3
            rows.append(
                f"| {mode} | {np.median(off) * 1e3:.1f} | {np.median(on) * 1e3:.1f} | {extra:.2f} | "
                f"{extra / args.k:.3f} | {covered:.0%} |"
            )
        documents = len(idx)
    summary = (
        f"Index: {args.index} ({documents} documents); {len(queries)} queries, k={args.k}; each query searched "
        "without and then with highlights, alternating. Extra per hit = (mean with - mean without) / k."
    )
    write_section(args.out, "Explained matches: cost (bench_explain.py)", "\n".join(rows) + "\n\n" + summary)


if __name__ == "__main__":
    main()

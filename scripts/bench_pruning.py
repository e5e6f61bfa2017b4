#!/usr/bin/env python3
"""Recall-latency curve of pruned search (issue 11): PLAID settings against exact MaxSim.

Synthetic (HardGenerator, precomputed vectors, dim 128): recall@10 against float32
exact MaxSim, share of queries whose source document is in the top 10, p50/p95
latency; exhaustive search over the same index in the same run for the speed ratio.
BEIR (an index built from a dataset by the default model): nDCG@10 and latency.

    OPENBLAS_NUM_THREADS=1 python scripts/bench_pruning.py --docs 10000 --write docs/benchmarks.md
    OPENBLAS_NUM_THREADS=1 python scripts/bench_pruning.py --docs 0 --index /tmp/scifact.lateint \\
        --dataset ../shared/data/scifact --write docs/benchmarks.md
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from benchutil import percentiles, write_section
from synthetic import HardGenerator, VectorsOnly, exact_top, recall_at

import lateint_lite as li
from lateint_lite.evaluation import load_beir, metrics

QUERIES = 200
#: label -> search options (k=10); "default" is whatever the library does without options
SETTINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "1 cell, 0.5, 256": {"ncells": 1, "threshold": 0.5, "ndocs": 256},
    "2 cells, 0.45, 512": {"ncells": 2, "threshold": 0.45, "ndocs": 512},
    "2 cells, 0.45, 1024": {"ncells": 2, "threshold": 0.45, "ndocs": 1024},
    "4 cells, 0.45, 1024": {"ncells": 4, "threshold": 0.45, "ndocs": 1024},
    "4 cells, 0.4, 4096": {"ncells": 4, "threshold": 0.4, "ndocs": 4096},
    "2 cells, no threshold, 1024": {"ncells": 2, "threshold": float("-inf"), "ndocs": 1024},
    "8 cells, no threshold, 4096": {"ncells": 8, "threshold": float("-inf"), "ndocs": 4096},
}


def timed(fn, items) -> tuple[list, list[float]]:
    out, times = [], []
    for item in items:
        started = time.perf_counter()
        out.append(fn(item))
        times.append(time.perf_counter() - started)
    return out, times


def synthetic(
    n_docs: int, noise: float, workdir: Path, settings: dict[str, dict[str, Any]], n_queries: int, keep: Path | None
) -> str:
    gen = HardGenerator(dim=128, noise=noise)
    queries = [gen.query(q, n_docs) for q in range(n_queries)]
    path = keep or workdir / "pruning.lateint"
    truth_file = path.with_name(path.name + f".truth{n_queries}.npy")
    if not path.exists():
        _build_synthetic(gen, n_docs, path)
    if not truth_file.exists():
        docs = [gen.document(i) for i in range(n_docs)]
        np.save(truth_file, np.asarray(exact_top([q for q, _ in queries], docs, 10)))
        del docs
    truth = np.load(truth_file).tolist()
    with li.open(path, readonly=True, encoder=VectorsOnly(128)) as idx:
        idx.warm_up()
        vectors = [q for q, _ in queries]
        exhaustive, ex_times = timed(
            lambda q: [int(h.id) for h in idx.search_vectors(q, k=10, exact=True, highlight=False)], vectors
        )
        rows = [_row("exhaustive over the codec", exhaustive, ex_times, truth, queries, ex_times)]
        for label, options in settings.items():
            found, times = timed(
                lambda q, o=options: [int(h.id) for h in idx.search_vectors(q, k=10, **o, highlight=False)], vectors
            )
            rows.append(_row(label, found, times, truth, queries, ex_times))
            print(rows[-1], flush=True)
    return (
        f"HardGenerator (noise {noise}), {n_docs:,} documents, {n_queries} queries, k=10.\n\n"
        "| setting | recall@10 vs float exact | source in top 10 | p50 / p95 ms | speedup vs exhaustive |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows)
    )


def _build_synthetic(gen: HardGenerator, n_docs: int, path: Path) -> None:
    """A built index of the first ``n_docs`` documents of ``gen`` at ``path``."""
    with li.open(path, create=True, encoder=VectorsOnly(128), auto_build=False) as idx:
        for lo in range(0, n_docs, 5000):
            batch = range(lo, min(n_docs, lo + 5000))
            idx.add([{"id": f"{i}", "text": f"document {i}", "vectors": gen.document(i)} for i in batch])
        idx.build()


def _row(label, found, times, truth, queries, ex_times) -> str:
    p50, p95 = percentiles(times)
    source = np.mean([src in f for f, (_, src) in zip(found, queries, strict=True)])
    ratio = np.median(ex_times) / np.median(times)
    return f"| {label} | {recall_at(found, truth, 10):.3f} | {source:.3f} | {p50:.1f} / {p95:.1f} | {ratio:.1f} |"


def beir(index: Path, dataset_dir: Path, settings: dict[str, dict[str, Any]]) -> str:
    dataset = load_beir(dataset_dir)
    items = list(dataset.queries.items())
    rows = []
    with li.open(index, readonly=True) as idx:
        encoded = idx.encoder.encode_queries([t for _, t in items])
        idx.warm_up()
        runs = {"exhaustive over the codec": {"exact": True}, **settings}
        ex_p50 = None
        for label, options in runs.items():
            hits, times = timed(lambda v, o=options: idx.search_vectors(v, k=10, **o, highlight=False), encoded)
            run = {q: {h.id: float(11 - h.rank) for h in hs} for (q, _), hs in zip(items, hits, strict=True)}
            p50, p95 = percentiles(times)
            ex_p50 = ex_p50 or p50
            ndcg = 100 * metrics(run, dataset.qrels)["ndcg_at_10"]
            rows.append(f"| {label} | {ndcg:.2f} | {p50:.1f} / {p95:.1f} | {ex_p50 / p50:.1f} |")
            print(rows[-1], flush=True)
    return (
        f"{dataset.name} ({index.name}), {len(items)} test queries, k=10, query encoding not timed.\n\n"
        "| setting | nDCG@10 | p50 / p95 ms | speedup vs exhaustive |\n|---|---|---|---|\n" + "\n".join(rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, nargs="*", default=[10_000], help="synthetic collection sizes")
    parser.add_argument("--noise", type=float, default=HardGenerator().noise)
    parser.add_argument("--queries", type=int, default=QUERIES, help="synthetic queries")
    parser.add_argument(
        "--keep", type=Path, help="synthetic index file kept (with its truth) and reused by later runs; one size"
    )
    parser.add_argument("--index", type=Path, help="a built BEIR index (with --dataset)")
    parser.add_argument("--dataset", type=Path)
    parser.add_argument("--only", help="settings whose label contains this text (default: all)")
    parser.add_argument("--title", default="Pruning recall-latency curve (bench_pruning.py)")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    settings = {k: v for k, v in SETTINGS.items() if not args.only or args.only in k}
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.docs or []:
            if n:
                parts.append(synthetic(n, args.noise, Path(tmp), settings, args.queries, args.keep))
    if args.index and args.dataset:
        parts.append(beir(args.index, args.dataset, settings))
    write_section(args.write, args.title, "\n\n".join(parts))


if __name__ == "__main__":
    main()

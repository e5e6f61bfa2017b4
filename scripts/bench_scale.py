#!/usr/bin/env python3
"""Synthetic scale run: how build time, latency, memory and file size grow.

Documents are clustered random token vectors (no text encoder): each document
draws ~100 tokens (50-150) around 3 of 4096 topic centres, with token-to-centre
cosine ~0.75. The run follows the recommended flow for large collections:
add a training slice (int8), ``build()`` with the centroid count of the full
collection, then add the rest, already compressed, in batches.

    OPENBLAS_NUM_THREADS=1 python scripts/bench_scale.py --docs 100000 --dim 128 --write docs/benchmarks.md

Rows accumulate in the markdown section (one per --docs/--dim run).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import multiprocessing
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from benchutil import machine, percentiles
from synthetic import Generator, VectorsOnly

import lateint_lite as li
from lateint_lite.clustering import plaid_centroid_count

SECTION = "## Synthetic scale, all columns (bench_scale.py --write)"
HEADER = (
    "| docs | tokens | dim | centroids | build: train + encode s (training slice) | ingest s (all docs) "
    "| ingest peak RSS MiB "
    "| file MiB | B/token | open + load s | RSS after load MiB (fresh process) | pruned p50/p95 ms | exhaustive p50 ms "
    "| speedup | segments | search after another process's 1-doc add ms | full reload + search ms | date |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def rss_mib() -> float:
    try:
        text = Path("/proc/self/status").read_text()
        return int(re.search(r"VmRSS:\s*(\d+)", text).group(1)) / 1024
    except (OSError, AttributeError):
        return float("nan")


def search_phase(path: Path, dim: int, queries: int, exhaustive: bool) -> tuple:
    """In a fresh process: open + first search, RSS, pruned (and exhaustive) latency."""
    gen = Generator(dim)
    t0 = time.perf_counter()
    idx = li.open(path, encoder=VectorsOnly(dim))
    idx.search_vectors(gen.query(0), k=10, highlight=False)
    load_s = time.perf_counter() - t0
    rss = rss_mib()
    pruned = []
    for q in range(1, queries + 1):
        vectors = gen.query(q)
        t = time.perf_counter()
        idx.search_vectors(vectors, k=10, highlight=False)
        pruned.append(time.perf_counter() - t)
    p50, p95 = percentiles(pruned)
    e50 = None
    if exhaustive:
        idx.search_vectors(gen.query(0), k=10, exact=True, highlight=False)
        full = []
        for q in range(1, min(queries, 20) + 1):
            vectors = gen.query(q)
            t = time.perf_counter()
            idx.search_vectors(vectors, k=10, exact=True, highlight=False)
            full.append(time.perf_counter() - t)
        e50 = percentiles(full)[0]
    refresh_ms, reload_ms = refresh_phase(idx, path, gen)
    idx.close()
    return load_s, rss, p50, p95, e50, refresh_ms, reload_ms


def add_one(path: Path, dim: int, doc_id: str) -> None:
    """Another process's write: one document."""
    with li.open(path, encoder=VectorsOnly(dim)) as writer:
        doc = Generator(dim).batch(0, 1)[0]
        writer.add([{**doc, "id": doc_id}])


def refresh_phase(idx: li.Index, path: Path, gen: Generator, rounds: int = 5) -> tuple[float, float]:
    """Median ms of the first search after another process added one document (the reader
    refreshes: loads the new segment), and of a search after dropping the cached state (what
    every commit cost before segments: a full reload), both in this run."""
    refresh, reload = [], []
    for r in range(rounds):
        # a separate process (this one may be a pool worker, which cannot start children itself)
        doc_id = f"refresh-{time.time_ns()}"  # unique, so a --reuse run can add again
        command = [sys.executable, __file__, "--add-one", doc_id, "--path", str(path), "--dim", str(gen.dim)]
        subprocess.run(command, check=True)
        t = time.perf_counter()
        idx.search_vectors(gen.query(1000 + r), k=10, highlight=False)
        refresh.append(time.perf_counter() - t)
        idx._cache.clear()
        t = time.perf_counter()
        idx.search_vectors(gen.query(2000 + r), k=10, highlight=False)
        reload.append(time.perf_counter() - t)
    return 1000 * float(np.median(refresh)), 1000 * float(np.median(reload))


#: Seconds spent generating synthetic vectors, left out of the ingest time (the issue measures an
#: ingest of precomputed vectors; generating them took ~0.35 ms per document, 350 s at 1M).
GENERATING = [0.0]


def generated(gen: Generator, start: int, stop: int) -> list[dict]:
    """Documents start..stop, generated before the add that times them."""
    t = time.perf_counter()
    docs = gen.batch(start, stop)
    GENERATING[0] += time.perf_counter() - t
    return docs


def run(
    n_docs: int,
    dim: int,
    path: Path,
    train_docs: int,
    batch: int,
    exhaustive: bool,
    queries: int,
    keep: bool,
    reuse: bool = False,
) -> str:
    gen = Generator(dim)
    expected_tokens = 100 * n_docs
    k = plaid_centroid_count(expected_tokens)
    report = None
    started = time.perf_counter()
    if reuse and path.exists():  # search phases only, on the file a --keep run left
        with li.open(path, encoder=VectorsOnly(dim)) as idx:
            info = idx.info().to_dict()
    else:
        path.unlink(missing_ok=True)
        with li.open(path, create=True, encoder=VectorsOnly(dim), auto_build=False) as idx:
            first = min(train_docs, n_docs)
            idx.add(generated(gen, 0, first), batch_size=1000)
            report = idx.build(n_centroids=k, compact=True).to_dict()
            for lo in range(first, n_docs, batch):
                idx.add(generated(gen, lo, min(lo + batch, n_docs)), batch_size=1000)
                print(
                    f"  {min(lo + batch, n_docs):,} / {n_docs:,} docs, {time.perf_counter() - started:.0f} s",
                    flush=True,
                )
            info = idx.info().to_dict()
    ingest_s = time.perf_counter() - started - GENERATING[0]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # this process only ingests
    size = path.stat().st_size

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        load_s, rss, p50, p95, e50, refresh_ms, reload_ms = pool.apply(search_phase, (path, dim, queries, exhaustive))
    if not keep:
        path.unlink()
    exhaustive_cell = "-" if e50 is None else f"{e50:.0f}"
    build_cell = (
        "-"
        if report is None
        else (f"{report['train_seconds']:.1f} + {report['encode_seconds']:.1f} ({report['tokens']:,} tokens)")
    )
    ingest_cell = "- | -" if report is None else f"{ingest_s:.0f} (+{GENERATING[0]:.0f} generating) | {peak_mib:,.0f}"
    speedup = "-" if e50 is None else f"{e50 / p50:.0f}x"
    return (
        f"| {n_docs:,} | {info['tokens']:,} | {dim} | {info['n_centroids']:,} "
        f"| {build_cell} | {ingest_cell} | {size / 2**20:,.0f} | {info['bytes_per_token']:.1f} "
        f"| {load_s:.1f} | {rss:,.0f} "
        f"| {p50:.1f}/{p95:.1f} | {exhaustive_cell} | {speedup} | {info['segments']} | {refresh_ms:.1f} "
        f"| {reload_ms:.0f} | {time.strftime('%Y-%m-%d')} |"
    )


def record(path: Path, row: str, command: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if SECTION not in text:
        text = text.rstrip() + (
            f"\n\n{SECTION}\n\n_{machine()}_\n\nEach row: `{command}` with its --docs/--dim. Build = k-means + "
            "encoding of the training slice into codes (no text encoder); ingest = everything, including "
            "adding the remaining documents compressed.\n\n" + HEADER + "\n"
        )
    lines = text.split("\n")
    end = next(
        i for i in range(lines.index(SECTION) + 1, len(lines) + 1) if i == len(lines) or lines[i].startswith("## ")
    )
    last_row = max(i for i in range(lines.index(SECTION), end) if lines[i].startswith("|"))
    lines.insert(last_row + 1, row)
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--train-docs", type=int, default=20_000, help="documents added before build()")
    parser.add_argument("--batch", type=int, default=20_000, help="documents per add() after build")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--no-exhaustive", action="store_true", help="skip exhaustive search (1M docs)")
    parser.add_argument("--path", type=Path, default=Path("/tmp/lateint-bench/scale.lateint"))
    parser.add_argument("--keep", action="store_true", help="keep the index file")
    parser.add_argument("--write", type=Path)
    parser.add_argument("--reuse", action="store_true", help="search phases only, on an existing --path file")
    parser.add_argument("--add-one", metavar="ID", help=argparse.SUPPRESS)  # the refresh phase's writer
    args = parser.parse_args()
    if args.add_one:
        add_one(args.path, args.dim, args.add_one)
        return
    args.path.parent.mkdir(parents=True, exist_ok=True)
    row = run(
        args.docs,
        args.dim,
        args.path,
        args.train_docs,
        args.batch,
        not args.no_exhaustive,
        args.queries,
        args.keep,
        args.reuse,
    )
    print(HEADER)
    print(row)
    if args.write:
        record(
            args.write,
            row,
            "OPENBLAS_NUM_THREADS=1 python scripts/bench_scale.py --docs N --dim D --write docs/benchmarks.md",
        )


if __name__ == "__main__":
    main()

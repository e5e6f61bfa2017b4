#!/usr/bin/env python3
"""Life-cycle costs on a built SciFact index: upsert/delete throughput, filtered search
latency against unfiltered, and a timed multi-process reader/writer run.

Token vectors come from bench_search.py's cache (the encoder is not timed here); every
document gets a synthetic ``bucket`` (0-99) in its metadata so filters of known
selectivity exist.

    OPENBLAS_NUM_THREADS=1 python scripts/bench_lifecycle.py --write docs/benchmarks.md
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import sys
import threading
import time
from pathlib import Path

from bench_search import encode_dataset
from benchutil import DEFAULT_DATA, percentiles, write_section

import lateint_lite as li
from lateint_lite.encoder import OnnxEncoder

FILTERS = {
    "none": None,
    "50 % (bucket < 50)": {"bucket": {"lt": 50}},
    "10 % (bucket < 10)": {"bucket": {"lt": 10}},
    "1 % (bucket = 7)": {"bucket": 7},
}


def build_index(path: Path, data) -> None:
    if path.exists():
        path.unlink()
    docs = [
        {"id": doc_id, "text": text, "vectors": data.doc_vectors(i), "meta": {"bucket": i % 100}}
        for i, (doc_id, text) in enumerate(zip(data.ids, data.texts, strict=True))
    ]
    with li.open(path, create=True, auto_build=False) as idx:
        idx.add(docs, batch_size=512)
        idx.build()


def write_throughput(path: Path, data, batch: int, rounds: int) -> tuple[float, float]:
    """(upserted docs/s, deleted docs/s), each call one transaction of ``batch`` documents."""
    with li.open(path) as idx:
        upsert_s = delete_s = 0.0
        for r in range(rounds):
            chunk = range(r * batch, (r + 1) * batch)
            docs = [
                {"id": data.ids[i], "text": data.texts[i], "vectors": data.doc_vectors(i), "meta": {"bucket": i % 100}}
                for i in chunk
            ]
            start = time.perf_counter()
            idx.upsert(docs)
            upsert_s += time.perf_counter() - start
        victims = [data.ids[i] for i in range(len(data.ids) - rounds * batch, len(data.ids))]
        for r in range(rounds):
            start = time.perf_counter()
            idx.delete(victims[r * batch : (r + 1) * batch])
            delete_s += time.perf_counter() - start
    total = rounds * batch
    return total / upsert_s, total / delete_s


def filtered_latency(path: Path, data) -> list[tuple[str, int, float, float]]:
    rows = []
    with li.open(path, readonly=True) as idx:
        idx.search_vectors(data.query_vectors[0], k=10, highlight=False)
        for label, where in FILTERS.items():
            times, lengths = [], []
            for query in data.query_vectors:
                start = time.perf_counter()
                hits = idx.search_vectors(query, k=10, where=where, highlight=False)
                times.append(time.perf_counter() - start)
                lengths.append(len(hits))
            p50, p95 = percentiles(times)
            rows.append((label, min(lengths), p50, p95))
    return rows


def thread_throughput(path: Path, data, thread_counts: tuple[int, ...] = (1, 2, 4)) -> list[tuple[int, float]]:
    """Queries/s of pruned k=10 searches when ``n`` threads share one Index (kernels serialized by a lock)."""
    rows = []
    with li.open(path, readonly=True) as idx:
        idx.search_vectors(data.query_vectors[0], k=10, highlight=False)
        for n in thread_counts:
            shards = [data.query_vectors[i::n] for i in range(n)]

            def work(queries: list) -> None:
                for query in queries:
                    idx.search_vectors(query, k=10, highlight=False)

            threads = [threading.Thread(target=work, args=(shard,)) for shard in shards]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            rows.append((n, len(data.query_vectors) / (time.perf_counter() - start)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/lateint-bench"))
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    data = encode_dataset(args.data / "scifact", args.cache, OnnxEncoder.from_model())
    path = args.cache / "lifecycle.lateint"
    build_index(path, data)
    ups, dels = write_throughput(path, data, args.batch, args.rounds)
    latency = filtered_latency(path, data)
    throughput = thread_throughput(path, data)
    synthetic = args.cache / "concurrency.lateint"
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from fakes import HashEncoder
    from workers import DIM, group_docs, run_reader_writer

    if synthetic.exists():
        synthetic.unlink()
    with li.open(synthetic, create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as idx:
        for group in range(200):
            idx.add(group_docs(group))
        idx.build(residual_dim=16)
    writes, reads, errors, partial = run_reader_writer(str(synthetic), args.seconds)
    body = [
        f"SciFact, built index (2-bit, r=128), document vectors precomputed (encoder not timed); "
        f"{args.rounds} calls of {args.batch} documents each.",
        "",
        "| operation | documents/s |",
        "|---|---|",
        f"| upsert (replace existing ids; one transaction per call) | {ups:.0f} |",
        f"| delete (one transaction per call) | {dels:.0f} |",
        "",
        "Filtered search, k=10, 300 test queries (query encoding excluded):",
        "",
        "| filter | fewest hits returned | p50 ms | p95 ms |",
        "|---|---|---|---|",
        *[f"| {label} | {n} | {p50:.1f} | {p95:.1f} |" for label, n, p50, p95 in latency],
        "",
        "Threads sharing one Index (pruned k=10, 300 queries split across the threads; parallel kernels "
        "are serialized by one lock, each kernel already using both cores):",
        "",
        "| threads | queries/s |",
        "|---|---|",
        *[f"| {n} | {qps:.0f} |" for n, qps in throughput],
        "",
        f"Concurrency ({args.seconds:.0f} s, one writer process adding/upserting/deleting groups of 5 documents "
        f"per transaction, two reader processes checking every result): {writes} write transactions, "
        f"{reads} searches, {errors} errors, {partial} inconsistent results.",
    ]
    write_section(args.write, "Life cycle (bench_lifecycle.py)", "\n".join(body))
    path.unlink()
    synthetic.unlink()


if __name__ == "__main__":
    main()

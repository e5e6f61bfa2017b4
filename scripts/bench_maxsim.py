#!/usr/bin/env python3
"""MaxSim kernel throughput and exhaustive search latency.

1. Kernel GFLOP/s next to numpy float32 matmul GFLOP/s, measured in the same run
   on synthetic documents (2000 docs x ~240 tokens, the SciFact shape), for the
   int8 and float32 kernels at 1 and all numba threads, plus the per-document
   numpy reference (what a plain-numpy engine would do).
2. Exhaustive (exact) search over a SciFact index: query encoding and search
   timed separately over the 300 test queries; nDCG@10 when ir-measures is
   installed.

    OPENBLAS_NUM_THREADS=1 python scripts/bench_maxsim.py --index /tmp/scifact.lateint \
        --write docs/benchmarks.md

Builds the SciFact index first when --index does not exist (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import sys
import time
from pathlib import Path

import numba
import numpy as np
from benchutil import DEFAULT_DATA, REPO, best_of, percentiles, write_section

import lateint_lite as li
from lateint_lite import kernels
from lateint_lite.evaluation import load_beir, metrics
from lateint_lite.sources import read_documents

sys.path.insert(0, str(REPO / "tests"))


def synthetic(dim: int, n_docs: int = 2000, mean_len: int = 240, seed: int = 0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(mean_len // 2, mean_len * 3 // 2, n_docs)
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    vectors = rng.standard_normal((offsets[-1], dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scales = (np.abs(vectors).max(axis=1) / 127).astype(np.float32)
    values = np.rint(vectors / scales[:, None]).astype(np.int8)
    query = rng.standard_normal((32, dim)).astype(np.float32)
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    return query, vectors, values, scales, offsets


def kernel_table(repeat: int) -> str:
    rows = [
        "| dim | tokens | numpy matmul (1 thread) | numpy per-doc MaxSim | f32 kernel 1 thr | f32 kernel "
        f"{numba.config.NUMBA_NUM_THREADS} thr | int8 kernel 1 thr | int8 kernel {numba.config.NUMBA_NUM_THREADS} thr "
        "| int8 kernel / matmul |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    all_threads = numba.config.NUMBA_NUM_THREADS
    for dim in (128, 384):
        query, vectors, values, scales, offsets = synthetic(dim)
        flops = 2.0 * query.shape[0] * vectors.shape[0] * dim
        kernels.maxsim_f32(query, vectors, offsets)
        kernels.maxsim_int8(query, values, scales, offsets)
        matmul = flops / best_of(lambda: query @ vectors.T, repeat) / 1e9
        reference = flops / best_of(lambda: reference.maxsim_f32_reference(query, vectors, offsets), 2) / 1e9
        result = {}
        for threads in (1, all_threads):
            numba.set_num_threads(threads)
            result[("f32", threads)] = (
                flops / best_of(lambda: kernels.maxsim_f32(query, vectors, offsets), repeat) / 1e9
            )
            result[("int8", threads)] = (
                flops / best_of(lambda: kernels.maxsim_int8(query, values, scales, offsets), repeat) / 1e9
            )
        numba.set_num_threads(all_threads)
        ratio = result[("int8", all_threads)] / matmul
        rows.append(
            f"| {dim} | {vectors.shape[0]:,} | {matmul:.1f} | {reference:.1f} | {result[('f32', 1)]:.1f} | "
            f"{result[('f32', all_threads)]:.1f} | {result[('int8', 1)]:.1f} | {result[('int8', all_threads)]:.1f} "
            f"| {ratio:.2f}x |"
        )
    return (
        "GFLOP/s (2 x query tokens x document tokens x dim per second), 32 query tokens, best of "
        f"{repeat}.\n\n" + "\n".join(rows)
    )


def search_table(index_path: Path, data: Path) -> str:
    folder = data / "scifact"
    build_note = ""
    if not index_path.exists():
        start = time.perf_counter()
        with li.open(index_path, create=True, auto_build=False) as idx:  # int8, exhaustive
            idx.add(list(read_documents(str(folder / "corpus.jsonl.gz"))), progress=True)
        build_note = f"Index built in {time.perf_counter() - start:.0f} s. "
    dataset = load_beir(folder)
    queries, qrels = dataset.queries, dataset.qrels
    with li.open(index_path, readonly=True) as idx:
        info = idx.info().to_dict()
        encoder = idx.encoder
        start = time.perf_counter()
        idx.warm_up()  # loads every token vector once per open
        load_s = time.perf_counter() - start
        encode_s, search_s = [], []
        run: dict[str, dict[str, float]] = {}
        for qid, text in queries.items():
            t0 = time.perf_counter()
            vectors = encoder.encode_queries([text])[0]
            t1 = time.perf_counter()
            hits = idx.search_vectors(vectors, k=100, exact=True, highlight=False)
            t2 = time.perf_counter()
            encode_s.append(t1 - t0)
            search_s.append(t2 - t1)
            run[qid] = {h.id: h.score for h in hits}
    enc50, enc95 = percentiles(encode_s)
    s50, s95 = percentiles(search_s)
    return (
        f"{build_note}SciFact: {info['documents']:,} documents, {info['tokens']:,} tokens, codec {info['codec']} "
        f"({info['bytes_per_token']} B/token), file {info['file_bytes'] / 2**20:.0f} MiB "
        f"(payload {info['payload_bytes'] / 2**20:.0f} MiB, text {info['text_bytes'] / 2**20:.1f} MiB). "
        f"Loading all token vectors into memory: {load_s:.2f} s (once per open).\n\n"
        "| stage | p50 ms | p95 ms |\n|---|---|---|\n"
        f"| query encoding (ONNX, {len(queries)} test queries) | {enc50:.1f} | {enc95:.1f} |\n"
        f"| exhaustive exact MaxSim + top-100 + fetch | {s50:.1f} | {s95:.1f} |\n\n"
        f"nDCG@10 of exhaustive MaxSim (int8 storage): {100 * metrics(run, qrels)['ndcg_at_10']:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, default=Path("/tmp/lateint-bench/scifact.lateint"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-search", action="store_true", help="only the synthetic kernel table")
    parser.add_argument("--write", type=Path, help="markdown file to update (e.g. docs/benchmarks.md)")
    args = parser.parse_args()
    args.index.parent.mkdir(parents=True, exist_ok=True)
    body = "### Kernel vs matmul\n\n" + kernel_table(args.repeat)
    if not args.skip_search:
        body += "\n\n### Exhaustive search over SciFact\n\n" + search_table(args.index, args.data)
    write_section(args.write, "MaxSim kernel and exhaustive search (bench_maxsim.py)", body)


if __name__ == "__main__":
    main()

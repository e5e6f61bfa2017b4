#!/usr/bin/env python3
"""Search quality and latency with many unmerged segments vs one, on a built BEIR index.

A copy of a built index (e.g. the one scripts/eval_beir.py caches) is laid out as N
segments of consecutive documents, each with its own inverted lists written by the same
code a write uses (``segments.append``), as if N writes had added the collection and no
merge had run; then ``optimize()`` makes it one segment again. In one run, per layout:
pruned and exact nDCG@10 / R@100 over the dataset's test queries (encoded once, outside
the timing) and the latency of pruned search.

    OPENBLAS_NUM_THREADS=1 python scripts/bench_segments.py --index /tmp/lateint-eval/scifact.lateint \\
        --dataset ../shared/data/scifact --segments 20 --write docs/benchmarks.md
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from benchutil import command_line, machine, percentiles

import lateint_lite as li
from lateint_lite import segments
from lateint_lite.encoder import OnnxEncoder
from lateint_lite.evaluation import RETRIEVE_K, load_beir, metrics
from lateint_lite.manifest import load_manifest

SECTION = "## Many segments vs one (bench_segments.py)"


def split_into_segments(idx: li.Index, n_segments: int) -> None:
    """Lay the index out as ``n_segments`` segments of consecutive documents, in one write."""
    store = idx._store
    with store.write():
        codec = idx._cache.current().codec
        doc_ids = [d for d, _ in store.doc_token_counts()]
        store.clear_segments()
        for chunk in np.array_split(np.asarray(doc_ids), n_segments):
            ids = chunk.tolist()
            rows = store.iter_codes(ids[0], ids[-1])
            segments.append(store, ids, [(r.doc_id, codec.cells(r)) for r in rows])


def measure(idx: li.Index, queries: dict[str, np.ndarray], qrels: dict) -> dict[str, float]:
    """Pruned and exact quality, pruned latency (ms p50/p95), over every query."""
    out: dict[str, float] = {}
    for name, options in (("pruned", {}), ("exact", {"exact": True})):
        run, times = {}, []
        idx.search_vectors(next(iter(queries.values())), k=RETRIEVE_K, highlight=False, **options)  # warm
        for qid, vectors in queries.items():
            started = time.perf_counter()
            hits = idx.search_vectors(vectors, k=RETRIEVE_K, highlight=False, **options)
            times.append(time.perf_counter() - started)
            run[qid] = {h.id: float(RETRIEVE_K + 1 - h.rank) for h in hits}
        values = metrics(run, qrels)
        out[f"{name}_ndcg"] = 100 * values["ndcg_at_10"]
        out[f"{name}_recall"] = 100 * values["recall_at_100"]
        if name == "pruned":
            out["p50"], out["p95"] = percentiles(times)
    times = []
    for vectors in queries.values():  # the default k
        started = time.perf_counter()
        idx.search_vectors(vectors, k=10, highlight=False)
        times.append(time.perf_counter() - started)
    out["p50_k10"] = percentiles(times)[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True, help="a built index of the dataset (copied, not changed)")
    parser.add_argument("--dataset", type=Path, required=True, help="BEIR folder (queries + qrels)")
    parser.add_argument("--segments", type=int, default=20)
    parser.add_argument("--model", default="minilm-l6-v2", help="the model the index was built with")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    data = load_beir(args.dataset)
    with tempfile.TemporaryDirectory(dir=args.index.parent) as tmp:
        path = Path(tmp) / "copy.lateint"
        shutil.copyfile(args.index, path)
        # eval_beir.py builds with an encoder object, so the file names no model to load by itself
        encoder = OnnxEncoder(load_manifest(args.model))
        with li.open(path, encoder=encoder) as idx:
            if not idx.is_built:
                raise SystemExit(f"{args.index}: not built")
            texts = list(data.queries.items())
            encoded = idx.encoder.encode_queries([t for _, t in texts])
            queries = {qid: v for (qid, _), v in zip(texts, encoded, strict=True)}
            split_into_segments(idx, args.segments)
            assert idx.info().segments == args.segments
            many = measure(idx, queries, data.qrels)
            idx.optimize()
            assert idx.info().segments == 1
            one = measure(idx, queries, data.qrels)
    lines = [
        f"| {data.name} | {n} | {r['pruned_ndcg']:.2f} / {r['pruned_recall']:.2f} | {r['exact_ndcg']:.2f} "
        f"| {r['p50']:.1f} / {r['p95']:.1f} | {r['p50'] / one['p50']:.2f}x | {r['p50_k10']:.1f} "
        f"| {r['p50_k10'] / one['p50_k10']:.2f}x | {time.strftime('%Y-%m-%d')} |"
        for n, r in ((args.segments, many), (1, one))
    ]
    print("\n".join(lines))
    if args.write:
        text = args.write.read_text()
        if SECTION not in text:
            text = text.rstrip() + (
                f"\n\n{SECTION}\n\n_{machine()}_\n\n`{command_line()}`\n\nThe same built index laid out as N "
                "segments (lists written per segment, as N writes would) and, after `optimize()`, as one. "
                "Queries encoded once outside the timing; quality and the first latency at k = 100, "
                "then pruned p50 at k = 10.\n\n"
                "| dataset | segments | pruned nDCG@10 / R@100 | exact nDCG@10 | pruned p50 / p95 ms (k = 100) "
                "| vs 1 segment | pruned p50 ms (k = 10) | vs 1 segment | date |\n"
                "|---|---|---|---|---|---|---|---|---|\n"
            )
        args.write.write_text(text.rstrip() + "\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

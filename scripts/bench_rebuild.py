#!/usr/bin/env python3
"""Does rebuilding lose quality? (issue 18)

1. Synthetic (HardGenerator, dim 128, precomputed vectors, default 2-bit codec): recall@10 of
   exhaustive search over the codec and of the default pruned search against float32 exact
   MaxSim, after the first build and after one and two more builds, (a) from the vectors
   passed again (the default path now) and (b) with ``lossy=True`` (what every rebuild did
   before: decode the stored codes, train and re-encode on them).
2. Text (a BEIR set through the default model): exact-search nDCG@10 after ``add`` (which
   builds automatically) and after the README's extra ``build()``, against one build.

    OPENBLAS_NUM_THREADS=1 python scripts/bench_rebuild.py --docs 10000 --dataset scifact --write docs/benchmarks.md
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import tempfile
import time
from pathlib import Path

from benchutil import DEFAULT_DATA, write_section
from synthetic import HardGenerator, VectorsOnly, exact_top, recall_at

import lateint_lite as li
from lateint_lite.evaluation import RETRIEVE_K, load_beir, metrics
from lateint_lite.sources import read_documents

QUERIES = 200


def synthetic(n_docs: int, workdir: Path) -> str:
    gen = HardGenerator(dim=128)
    docs = gen.batch(0, n_docs)
    vectors = {d["id"]: d["vectors"] for d in docs}
    queries = [gen.query(q, n_docs) for q in range(QUERIES)]
    truth = exact_top([q for q, _ in queries], [d["vectors"] for d in docs], 10)

    def measure(idx: li.Index) -> tuple[float, float, float]:
        exact = [[int(h.id[3:]) for h in idx.search_vectors(q, k=10, exact=True, highlight=False)] for q, _ in queries]
        pruned = [[int(h.id[3:]) for h in idx.search_vectors(q, k=10, highlight=False)] for q, _ in queries]
        source = sum(src in p for p, (_, src) in zip(pruned, queries, strict=True)) / len(queries)
        return recall_at(exact, truth, 10), recall_at(pruned, truth, 10), source

    rows = []
    for label, kwargs in (
        ("vectors passed again (default)", {"vectors": vectors}),
        ("lossy=True (before)", {"lossy": True}),
    ):
        path = workdir / f"synthetic-{label[:6]}.lateint"
        with li.open(path, create=True, encoder=VectorsOnly(128), auto_build=False) as idx:
            idx.add(docs, batch_size=1000)
            started = time.perf_counter()
            idx.build()
            first_s = time.perf_counter() - started
            results = [measure(idx)]
            for _ in range(2):
                started = time.perf_counter()
                report = idx.build(**kwargs)
                rebuild_s = time.perf_counter() - started
                results.append(measure(idx))
            rows.append(
                f"| {label} | {report.n_centroids:,} | "
                + " | ".join(f"{e:.3f} / {p:.3f}" for e, p, _ in results)
                + f" | {results[0][2]:.3f} → {results[-1][2]:.3f} | {idx.info().lossy_generations} "
                f"| {first_s:.1f} / {rebuild_s:.1f} |"
            )
    return (
        f"HardGenerator, {n_docs:,} documents of precomputed vectors (dim 128), {QUERIES} queries of 32 tokens; "
        "recall@10 against float32 exact MaxSim, `exhaustive over the codec / default pruned search`.\n\n"
        "| rebuild source | centroids | first build | + 1 rebuild | + 2 rebuilds | source doc in pruned top 10 "
        "| lossy generations | build s first / rebuild |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )


def text(dataset_dir: Path, workdir: Path) -> str:
    dataset = load_beir(dataset_dir)
    docs = list(read_documents(str(dataset.corpus)))

    def ndcg(idx: li.Index) -> float:
        run = {}
        for qid, query in dataset.queries.items():
            hits = idx.search(query, k=RETRIEVE_K, exact=True, highlight=False)
            run[qid] = {h.id: float(RETRIEVE_K + 1 - h.rank) for h in hits}
        return 100 * metrics(run, dataset.qrels)["ndcg_at_10"]

    with li.open(workdir / "text.lateint", create=True) as idx:
        started = time.perf_counter()
        idx.add(docs)  # builds automatically at the end (int8 source)
        add_s = time.perf_counter() - started
        after_add = ndcg(idx)
        started = time.perf_counter()
        report = idx.build()  # the README's extra build: re-encodes every document from its text
        rebuild_s = time.perf_counter() - started
        after_build = ndcg(idx)
        again = idx.build()
        after_two = ndcg(idx)
    return (
        f"{dataset.name}: {len(docs):,} documents through the default model, exact search (every document "
        "scored over the codec), nDCG@10.\n\n"
        "| state | nDCG@10 | seconds |\n|---|---|---|\n"
        f"| `add` (builds automatically from the stored int8 tokens) | {after_add:.2f} | {add_s:.0f} (add + build) |\n"
        f"| + `build()` (re-encodes every document from its text) | {after_build:.2f} | {rebuild_s:.0f} "
        f"(train {report.train_seconds:.0f} + encode {report.encode_seconds:.0f}) |\n"
        f"| + another `build()` | {after_two:.2f} | {again.train_seconds + again.encode_seconds:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=10_000, help="synthetic documents (0 skips)")
    parser.add_argument("--dataset", default="scifact", help="BEIR folder under --data (empty skips)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--write", type=Path, help="markdown file to add the section to")
    args = parser.parse_args()
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.docs:
            parts.append(synthetic(args.docs, Path(tmp)))
        if args.dataset:
            parts.append(text(args.data / args.dataset, Path(tmp)))
    write_section(args.write, "Rebuilds and quantization loss (bench_rebuild.py)", "\n\n".join(parts))


if __name__ == "__main__":
    main()

"""Compare models on a SciFact slice: every judged document plus random others, all test queries.

Quick model comparison (minutes, not the hour a full BEIR encode takes on 2 cores): for each model,
an unbuilt index of the slice (exact MaxSim over int8 tokens, passages as configured), the 300
SciFact test queries, nDCG@10 and R@100 by ir-measures, plus encode throughput and query latency.

    OPENBLAS_NUM_THREADS=1 python scripts/eval_models_slice.py --models minilm-l6-v2 FOLDER_OR_NAME --docs 1000
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from benchutil import DEFAULT_DATA, write_section

import lateint_lite as li
from lateint_lite.evaluation import load_beir, metrics
from lateint_lite.sources import read_documents


def slice_of(data: Path, n_docs: int, seed: int) -> tuple[list[dict], object]:
    dataset = load_beir(data / "scifact")
    corpus = list(read_documents(str(dataset.corpus)))
    judged = {d for rel in dataset.qrels.values() for d in rel}
    chosen = [d for d in corpus if d["id"] in judged]
    others = [d for d in corpus if d["id"] not in judged]
    chosen += random.Random(seed).sample(others, max(0, n_docs - len(chosen)))
    return chosen, dataset


def evaluate_model(model: str, docs: list[dict], dataset: object) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        li.open(Path(tmp) / "slice.lateint", create=True, model=model, auto_build=False) as idx,
    ):
        started = time.perf_counter()
        idx.add(docs)
        encode_s = time.perf_counter() - started
        run: dict[str, dict[str, float]] = {}
        latencies = []
        for qid, text in dataset.queries.items():
            started = time.perf_counter()
            hits = idx.search(text, k=100, exact=True, highlight=False)
            latencies.append(time.perf_counter() - started)
            run[qid] = {h.id: float(101 - h.rank) for h in hits}
        values = metrics(run, dataset.qrels)
        latencies.sort()
        return {
            "name": idx.config.model.name,
            "ndcg": 100 * values["ndcg_at_10"],
            "recall": 100 * values["recall_at_100"],
            "docs_per_s": len(docs) / encode_s,
            "tokens": idx.info().tokens,
            "query_ms": 1000 * latencies[len(latencies) // 2],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    docs, dataset = slice_of(args.data, args.docs, args.seed)
    rows = [
        "| model | nDCG@10 | R@100 | tokens stored | encode docs/s | search p50 ms (exact, incl. query encode) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for model in args.models:
        r = evaluate_model(model, docs, dataset)
        rows.append(
            f"| {r['name']} | {r['ndcg']:.2f} | {r['recall']:.2f} | {r['tokens']:,} | {r['docs_per_s']:.1f} "
            f"| {r['query_ms']:.0f} |"
        )
        print(rows[-1], flush=True)
    body = "\n".join(rows) + (
        f"\n\nSciFact slice: {len(docs)} documents (every judged one plus random others, seed {args.seed}), "
        f"{len(dataset.queries)} test queries; unbuilt index (int8 tokens, exact MaxSim), default passages."
    )
    write_section(args.out, "Models on a SciFact slice (eval_models_slice.py)", body)


if __name__ == "__main__":
    main()

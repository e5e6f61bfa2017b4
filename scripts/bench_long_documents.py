"""Long documents: does search find an answer that sits past the first passage?

Builds long documents from real text: each is four unrelated SciFact abstracts followed by the
abstract judged relevant to one test query (so the answer is always last), indexes them twice with
the default model, truncated at the document length (``max_passages=1``, as releases before
passages did) and split into passages (the default), and reports how often the query's long
document ranks first and in the top 10, by MaxSim and by BM25 (which always saw the whole text).

    OPENBLAS_NUM_THREADS=1 python scripts/bench_long_documents.py --queries 100 --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from benchutil import DEFAULT_DATA, write_section

import lateint_lite as li
from lateint_lite.encoder import OnnxEncoder
from lateint_lite.evaluation import load_beir
from lateint_lite.manifest import load_manifest
from lateint_lite.sources import read_documents

FILLERS = 4


def long_documents(data: Path, n_queries: int, seed: int) -> tuple[list[dict], dict[str, str]]:
    """(documents, query text -> id of the long document holding its judged abstract)."""
    dataset = load_beir(data / "scifact")
    corpus = {d["id"]: d["text"] for d in read_documents(str(dataset.corpus))}
    rng = random.Random(seed)
    judged = [(q, next(iter(rel))) for q, rel in sorted(dataset.qrels.items()) if len(rel) == 1]
    chosen = rng.sample(judged, n_queries)
    used = {doc for _, doc in chosen}
    others = [d for d in corpus if d not in used]
    docs, wanted = [], {}
    for n, (qid, relevant) in enumerate(chosen):
        parts = [corpus[d] for d in rng.sample(others, FILLERS)] + [corpus[relevant]]
        docs.append({"id": f"long-{n}", "text": "\n\n".join(parts)})
        wanted[dataset.queries[qid]] = f"long-{n}"
    return docs, wanted


def ranks(idx: li.Index, wanted: dict[str, str], mode: str) -> tuple[float, float]:
    first = top10 = 0
    for query, doc_id in wanted.items():
        ids = [h.id for h in idx.search(query, k=10, mode=mode, exact=True, highlight=False)]
        first += ids[:1] == [doc_id]
        top10 += doc_id in ids
    return first / len(wanted), top10 / len(wanted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    docs, wanted = long_documents(args.data, args.queries, args.seed)
    manifest = load_manifest()
    rows = ["| documents | MaxSim top-1 | MaxSim top-10 | BM25 top-1 | BM25 top-10 | tokens stored | encode s |"]
    rows.append("|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, passages in (
            ("truncated at 256 tokens", 1),
            ("split into passages", manifest.document.max_passages),
        ):
            document = dataclasses.replace(manifest.document, max_passages=passages)
            encoder = OnnxEncoder(dataclasses.replace(manifest, document=document))
            with li.open(Path(tmp) / f"{passages}.lateint", create=True, encoder=encoder, auto_build=False) as idx:
                started = time.perf_counter()
                idx.add(docs)
                seconds = time.perf_counter() - started
                maxsim, bm25 = ranks(idx, wanted, "maxsim"), ranks(idx, wanted, "bm25")
                tokens = idx.info().tokens
            rows.append(
                f"| {label} | {maxsim[0]:.0%} | {maxsim[1]:.0%} | {bm25[0]:.0%} | {bm25[1]:.0%} | {tokens:,} | "
                f"{seconds:.0f} |"
            )
            print(rows[-1], flush=True)
    summary = (
        f"{len(docs)} long documents, each {FILLERS} random SciFact abstracts followed by the abstract judged "
        f"relevant to one test query (queries with a single judged document, seed {args.seed}); exact MaxSim over "
        "the unbuilt index, so the codec plays no part."
    )
    write_section(
        args.out, "Long documents: passages vs truncation (bench_long_documents.py)", "\n".join(rows) + "\n\n" + summary
    )


if __name__ == "__main__":
    main()

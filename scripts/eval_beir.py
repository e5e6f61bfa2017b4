#!/usr/bin/env python3
"""Evaluate lateint-lite on BEIR datasets: every mode in one run, beside published baselines.

Builds (or reuses) one index per dataset and encoder configuration under --cache,
runs the test queries in each mode (top 100 per query) and reports nDCG@10,
Recall@100, MRR@10 and queries/s (query encoding included) with ir-measures.

    OPENBLAS_NUM_THREADS=1 python scripts/eval_beir.py --datasets scifact nfcorpus --write docs/benchmarks.md

Encoder options (for the "encoder options" experiment): --query-max-length,
--query-expand N (ColBERT [MASK] padding to N tokens), --doc-max-length and
--skiplist punctuation change the encoder; --max-passages 1 truncates documents at the document
length as releases before passages did; document-side options get their own index.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import dataclasses
import time
from pathlib import Path

from benchutil import DEFAULT_DATA, write_section

import lateint_lite as li
from lateint_lite.encoder import PUNCTUATION, OnnxEncoder
from lateint_lite.evaluation import DEFAULT_MODES, MODES, evaluate, load_beir
from lateint_lite.manifest import load_manifest
from lateint_lite.sources import read_documents

PUBLISHED = {  # nDCG@10 from the papers / BEIR leaderboard, as given in DESIGN.md
    "scifact": {"BM25 (BEIR)": 66.5, "ColBERTv2": 69.3, "answerai-colbert-small-v1": 74.8},
    "nfcorpus": {"BM25 (BEIR)": 32.5, "ColBERTv2": 33.8, "answerai-colbert-small-v1": 37.3},
}


def make_encoder(args: argparse.Namespace) -> OnnxEncoder:
    manifest = load_manifest(args.model)
    query = dataclasses.replace(
        manifest.query,
        max_length=args.query_max_length or manifest.query.max_length,
        expand_to=args.query_expand or manifest.query.expand_to,
    )
    document = dataclasses.replace(
        manifest.document,
        max_length=args.doc_max_length or manifest.document.max_length,
        max_passages=args.max_passages or manifest.document.max_passages,
    )
    batch = args.max_batch_size or manifest.max_batch_size
    manifest = dataclasses.replace(manifest, query=query, document=document, max_batch_size=batch)
    return OnnxEncoder(manifest, skiplist=PUNCTUATION if args.skiplist == "punctuation" else None)


def index_name(dataset: str, args: argparse.Namespace) -> str:
    parts = [dataset]
    if args.model:
        parts.append(Path(args.model).name)
    if args.doc_max_length:
        parts.append(f"doc{args.doc_max_length}")
    if args.skiplist:
        parts.append(args.skiplist)
    if args.max_passages:
        parts.append(f"passages{args.max_passages}")
    if args.max_batch_size:
        parts.append(f"batch{args.max_batch_size}")
    return "-".join(parts) + ".lateint"


def run(name: str, args: argparse.Namespace, encoder: OnnxEncoder) -> str:
    dataset = load_beir(args.data / name)
    path = args.cache / index_name(name, args)
    build_note = f"reused `{path}`"
    with li.open(path, create=True, encoder=encoder) as idx:
        if len(idx) == 0:
            started = time.perf_counter()
            idx.add(list(read_documents(str(dataset.corpus))), progress=True)
            build_note = f"index built in {time.perf_counter() - started:.0f} s (encoding + compression)"
        info = idx.info().to_dict()
        results = evaluate(idx.search, dataset, args.modes, progress=True)
    rows = [
        f"**{name}**: {info['documents']:,} documents, {info['tokens']:,} tokens, {len(dataset.queries)} test "
        f"queries; {info['codec']} codec, {info['bytes_per_token']} B/token, file "
        f"{info['file_bytes'] / 2**20:.1f} MiB; {build_note}.",
        "",
        "| mode | nDCG@10 | R@100 | MRR@10 | queries/s | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| {r.mode} | {100 * r.ndcg_at_10:.2f} | {100 * r.recall_at_100:.2f} | {100 * r.mrr_at_10:.2f} "
            f"| {r.queries_per_second:.1f} | {r.seconds:.0f} |"
        )
    for label, value in PUBLISHED.get(name, {}).items():
        rows.append(f"| published: {label} | {value:.1f} | | | | |")
    text = "\n".join(rows)
    print(text, flush=True)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["scifact", "nfcorpus"])
    parser.add_argument("--model", help="model name or folder (default: the default model)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/lateint-eval"))
    parser.add_argument("--modes", nargs="+", default=list(DEFAULT_MODES))
    parser.add_argument("--query-max-length", type=int)
    parser.add_argument("--query-expand", type=int)
    parser.add_argument("--doc-max-length", type=int)
    parser.add_argument("--skiplist", choices=["punctuation"])
    parser.add_argument("--max-passages", type=int, help="passages per document (1: truncate at the document length)")
    parser.add_argument(
        "--max-batch-size", type=int, help="documents per ONNX run (default: the manifest's; MiniLM: 1)"
    )
    parser.add_argument("--title", default="BEIR evaluation (eval_beir.py)")
    parser.add_argument("--write", type=Path, help="markdown file to update (e.g. docs/benchmarks.md)")
    args = parser.parse_args()
    unknown = [m for m in args.modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode {unknown[0]}")
    args.cache.mkdir(parents=True, exist_ok=True)
    encoder = make_encoder(args)
    sections = [run(name, args, encoder) for name in args.datasets]
    write_section(args.write, args.title, "\n\n".join(sections))


if __name__ == "__main__":
    main()

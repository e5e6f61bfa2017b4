#!/usr/bin/env python3
"""How many coarse groups must a token's assignment probe? Quality of probe 2, 3, 4 (default).

A two-level codebook assigns each token to the best fine centroid of its ``probe`` best coarse
groups (``clustering.DEFAULT_PROBE``); the assignment is most of an add's time (issue 12: the 1M
ingest target), and the fine products grow with ``probe``. This builds copies of one unbuilt
index (int8 tokens, e.g. ``lateint add IDX corpus --no-build``) with each probe and the same
seed, so the codebooks are equal and only the codes differ, then reports the share of codes
equal to the default's, the pruned search's nDCG@10 and R@100, and how many of exact MaxSim's
top 10 over the unbuilt (int8) copy the pruned search finds.

    OPENBLAS_NUM_THREADS=1 python scripts/bench_probe.py /tmp/idx/unbuilt.lateint \\
        --dataset ../shared/data/scifact --probes 4 3 2 --write docs/benchmarks.md
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
from benchutil import write_section

import lateint_lite as li
from lateint_lite import clustering
from lateint_lite.evaluation import RETRIEVE_K, load_beir, metrics

SECTION = "Assignment probe: quality of probe 2, 3, 4 (bench_probe.py)"
TOP = 10


def ranked(idx: li.Index, queries: dict[str, str], k: int, **options: object) -> dict[str, list[str]]:
    return {q: [h.id for h in idx.search(text, k=k, highlight=False, **options)] for q, text in queries.items()}


def stored_codes(idx: li.Index) -> np.ndarray:
    """Every stored token's centroid code, documents in doc_id order."""
    chunks = [
        np.frombuffer(row.codes, dtype=np.uint16)
        for ids in idx._store.doc_id_chunks(1000)
        for row in idx._store.token_payloads(ids)
    ]
    return np.concatenate(chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("unbuilt", type=Path, help="an index of the dataset's corpus, never built (int8 tokens)")
    parser.add_argument("--dataset", type=Path, required=True, help="BEIR folder of the same corpus")
    parser.add_argument("--probes", type=int, nargs="+", default=[4, 3, 2])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    data = load_beir(args.dataset)
    with li.open(args.unbuilt, readonly=True) as idx:
        exact = ranked(idx, data.queries, TOP, exact=True)
    rows, codes = [], {}
    default = clustering.Codebook.assign.__defaults__
    with tempfile.TemporaryDirectory(dir=args.unbuilt.parent) as tmp:
        for probe in args.probes:
            clustering.Codebook.assign.__defaults__ = (probe,)
            path = Path(tmp) / f"probe{probe}.lateint"
            shutil.copyfile(args.unbuilt, path)
            try:
                with li.open(path) as idx:
                    started = time.perf_counter()
                    idx.build(seed=args.seed)
                    build_s = time.perf_counter() - started
                    pruned = ranked(idx, data.queries, RETRIEVE_K)
                    codes[probe] = stored_codes(idx)
            finally:
                clustering.Codebook.assign.__defaults__ = default
            run = {q: {d: float(RETRIEVE_K - r) for r, d in enumerate(ids)} for q, ids in pruned.items()}
            values = metrics(run, {q: data.qrels[q] for q in data.queries})
            found = np.mean([len(set(pruned[q][:TOP]) & set(exact[q])) / max(1, len(exact[q])) for q in exact])
            rows.append((probe, build_s, values["ndcg_at_10"], values["recall_at_100"], found))
            print(f"probe {probe}: build {build_s:.1f} s, nDCG@10 {100 * values['ndcg_at_10']:.2f}", flush=True)
    reference = codes[max(codes)]
    lines = [
        f"{args.dataset.name}: {len(data.queries)} test queries; builds of one unbuilt copy, seed {args.seed} "
        f"(the same codebook), codes compared with probe {max(codes)}'s; exact top {TOP}: exhaustive "
        "MaxSim over the unbuilt int8 copy.",
        "",
        "| probe | build s | codes equal | pruned nDCG@10 | R@100 | exact top-10 found |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for probe, build_s, ndcg, recall, found in rows:
        equal = 100 * float(np.mean(codes[probe] == reference))
        lines.append(
            f"| {probe} | {build_s:.1f} | {equal:.2f} % | {100 * ndcg:.2f} | {100 * recall:.2f} | {100 * found:.1f} % |"
        )
    body = "\n".join(lines)
    print(body)
    write_section(args.write, SECTION, body)


if __name__ == "__main__":
    main()

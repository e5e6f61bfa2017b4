"""Dump every search mode's results on a BEIR set to JSON, and compare two dumps.

A refactoring check: run ``dump`` with the old code and with the new code (on a
copy of the same index file, and on an index built afresh by the new code),
then ``compare``. Results must have the same ids in the same order and scores
equal within a float tolerance. Uses the public API only, so any release can
produce a dump.

    OPENBLAS_NUM_THREADS=1 python scripts/results_snapshot.py dump IDX ../shared/data/scifact before.json
    OPENBLAS_NUM_THREADS=1 python scripts/results_snapshot.py compare before.json after.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

#: name -> (k, keyword arguments of Index.search_many)
RUNS: dict[str, tuple[int, dict[str, object]]] = {
    "exact@100": (100, {"mode": "maxsim", "exact": True}),
    "pruned@10": (10, {"mode": "maxsim"}),
    "pruned@100": (100, {"mode": "maxsim"}),
    "pooled@100": (100, {"mode": "pooled"}),
    "bm25@100": (100, {"mode": "bm25"}),
    "hybrid@10": (10, {"mode": "hybrid", "fusion": "score"}),
    "hybrid-rrf@10": (10, {"mode": "hybrid", "fusion": "rrf"}),
}
RERANK_DEPTH = 20


def dump(index_path: str, dataset: str, out: str, limit: int | None) -> None:
    import lateint_lite as li
    from lateint_lite.evaluation import load_beir

    data = load_beir(dataset)
    items = list(data.queries.items())[:limit]
    texts = [t for _, t in items]
    result: dict[str, object] = {"index": index_path, "dataset": dataset, "runs": {}}
    with li.open(index_path, readonly=True) as idx:
        for name, (k, kwargs) in RUNS.items():
            started = time.perf_counter()
            hits = idx.search_many(texts, k, **kwargs)
            result["runs"][name] = {q: [[h.id, h.score] for h in hs] for (q, _), hs in zip(items, hits, strict=True)}
            print(f"{name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        reranked = {}
        for (qid, text), hs in zip(items, idx.search_many(texts, RERANK_DEPTH, mode="bm25"), strict=True):
            if hs:
                reranked[qid] = [[h.id, h.score] for h in idx.rerank(text, [h.id for h in hs])]
        result["runs"]["rerank-bm25@20"] = reranked
    Path(out).write_text(json.dumps(result))


def compare(a_path: str, b_path: str, tolerance: float) -> int:
    a = json.loads(Path(a_path).read_text())["runs"]
    b = json.loads(Path(b_path).read_text())["runs"]
    failures = 0
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            print(f"{name}: only in {'first' if name in a else 'second'} dump")
            failures += 1
            continue
        order_diffs = 0
        worst = 0.0
        for qid in sorted(set(a[name]) | set(b[name])):
            ra, rb = a[name].get(qid, []), b[name].get(qid, [])
            if [h[0] for h in ra] != [h[0] for h in rb]:
                order_diffs += 1
                continue
            for (_, sa), (_, sb) in zip(ra, rb, strict=True):
                worst = max(worst, abs(sa - sb))
        ok = order_diffs == 0 and worst <= tolerance
        failures += not ok
        print(
            f"{name:<16} queries {len(a[name]):>4}  different rankings {order_diffs:>3}  "
            f"max |score diff| {worst:.2e}  {'OK' if ok else 'DIFFERENT'}"
        )
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("dump")
    p.add_argument("index")
    p.add_argument("dataset")
    p.add_argument("out")
    p.add_argument("--queries", type=int, help="only the first N test queries")
    p = sub.add_parser("compare")
    p.add_argument("first")
    p.add_argument("second")
    p.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.index, args.dataset, args.out, args.queries)
        return 0
    return compare(args.first, args.second, args.tolerance)


if __name__ == "__main__":
    sys.exit(main())

"""Read kernels in numba vs numpy: what one short-lived search process costs, and each query after.

For each tier, ``--rounds`` fresh processes each: import lateint_lite and open the index, load
the resident search state (codes, inverted lists, centroid tables) and run a first query, then
``--queries`` more queries one by one. The numba tier's kernels come from a warm on-disk cache
(a warm-up process runs first), so its start-up is numba's import and cache loads, not a
compile. Processes alternate between tiers so load on the machine hits both alike.

    OPENBLAS_NUM_THREADS=1 python scripts/bench_kernel_tiers.py [TEXT_INDEX...] \
        [--vector-index PATH...] --write docs/benchmarks.md

A text index is queried with BEIR queries (``--queries-from`` a queries.jsonl[.gz]); an index
of precomputed vectors (bench_scale.py --keep) with the synthetic generator's query vectors.
``--beir FOLDER`` (with one text index built from that dataset) also runs every test query in
both tiers, pruned and exact, and reports nDCG@10 per tier and how many rankings differ.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from benchutil import DEFAULT_DATA, REPO, write_section

CHILD = """
import json, sys, time
start = time.perf_counter()
sys.path.insert(0, {scripts!r})
import lateint_lite as li
from lateint_lite import kernels
path, tier, texts_json, n_queries, dim = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
texts = json.loads(texts_json)
kernels.use_tier(tier)
if texts:
    idx = li.open(path, readonly=True)
    run = lambda i: idx.search(texts[i % len(texts)], k=10)
else:
    from synthetic import Generator, VectorsOnly
    idx = li.open(path, readonly=True, encoder=VectorsOnly(dim))
    generator = Generator(dim)
    run = lambda i: idx.search_vectors(generator.query(i), k=10)
run(0)
first = time.perf_counter() - start
times = []
for i in range(1, n_queries + 1):
    t = time.perf_counter()
    run(i)
    times.append(time.perf_counter() - t)
print(json.dumps({{"first": first, "times": times, "numba": "numba" in sys.modules, "tokens": idx.n_tokens}}))
"""


def query_texts(path: Path | None, n: int) -> list[str]:
    if path is None:
        return []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return [json.loads(line)["text"] for _, line in zip(range(n), f, strict=False)]


def child(index: Path, tier: str, texts: list[str], n_queries: int, dim: int) -> dict:
    code = CHILD.format(scripts=str(REPO / "scripts"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("LATEINT_KERNELS", None)
    command = [sys.executable, "-c", code, str(index), tier, json.dumps(texts), str(n_queries), str(dim)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{index} ({tier}): {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def quality(index: Path, folder: Path, exact_queries: int) -> str:
    """Markdown rows: nDCG@10 / R@100 per tier and mode, and rankings that differ between tiers."""
    import lateint_lite as li
    from lateint_lite import kernels
    from lateint_lite.evaluation import MODES, RETRIEVE_K, load_beir, metrics

    dataset = load_beir(folder)
    rows = [
        "| mode | tier | nDCG@10 | R@100 | queries whose top 10 differs between tiers | largest score difference |",
        "|---|---|---:|---:|---:|---:|",
    ]
    with li.open(index, readonly=True) as idx:
        for mode in ("pruned", "exact"):
            queries = dict(list(dataset.queries.items())[: exact_queries if mode == "exact" else None])
            hits = {}
            for tier in kernels.KERNEL_TIERS:
                with kernels.tier_in_use(tier):
                    hits[tier] = {q: idx.search(text, k=RETRIEVE_K, **MODES[mode]) for q, text in queries.items()}
            differ = sum(
                [h.id for h in hits["numba"][q][:10]] != [h.id for h in hits["numpy"][q][:10]] for q in queries
            )
            gap = max(
                abs(a.score - b.score)
                for q in queries
                for a, b in zip(hits["numba"][q][:10], hits["numpy"][q][:10], strict=False)
                if a.id == b.id
            )
            for tier, run in hits.items():
                ranked = {q: {h.id: float(RETRIEVE_K + 1 - h.rank) for h in found} for q, found in run.items()}
                values = metrics(ranked, {q: dataset.qrels[q] for q in queries if q in dataset.qrels})
                rows.append(
                    f"| {mode} | {tier} | {100 * values['ndcg_at_10']:.2f} | {100 * values['recall_at_100']:.2f} "
                    f"| {differ} of {len(queries)} | {gap:.1e} |"
                )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("indexes", type=Path, nargs="*", help="indexes of text (searched with query texts)")
    parser.add_argument("--vector-index", type=Path, action="append", default=[], help="bench_scale.py index")
    parser.add_argument("--dim", type=int, default=128, help="dimension of the vector indexes")
    parser.add_argument("--queries-from", type=Path, default=DEFAULT_DATA / "scifact" / "queries.jsonl.gz")
    parser.add_argument("--queries", type=int, default=30, help="queries after the first, per process")
    parser.add_argument("--rounds", type=int, default=3, help="processes per tier and index (0: quality only)")
    parser.add_argument("--beir", type=Path, help="BEIR folder of the (one) text index: quality per tier")
    parser.add_argument("--exact-queries", type=int, default=50, help="test queries for the exact mode")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    rows = [
        "| index | stored tokens | tier | process: start, open, load, first query (median s) | "
        "later queries p50 / p95 ms | numba imported |",
        "|---|---:|---|---:|---:|---|",
    ]
    text_queries = query_texts(args.queries_from, args.queries + 1)
    for index in [*args.indexes, *args.vector_index] if args.rounds else []:
        texts = text_queries if index in args.indexes else []
        child(index, "numba", texts, 1, args.dim)  # fills numba's on-disk cache for this index's kernels
        runs: dict[str, list[dict]] = {"numba": [], "numpy": []}
        for _ in range(args.rounds):
            for tier in runs:
                runs[tier].append(child(index, tier, texts, args.queries, args.dim))
        for tier, results in runs.items():
            later = np.concatenate([r["times"] for r in results]) * 1e3
            rows.append(
                f"| `{index.name}` | {results[0]['tokens']:,} | {tier} "
                f"| {np.median([r['first'] for r in results]):.2f} "
                f"| {np.percentile(later, 50):.1f} / {np.percentile(later, 95):.1f} | {results[0]['numba']} |"
            )
        print(rows[-2], rows[-1], sep="\n", flush=True)
    body = "\n".join(rows) + (
        f"\n\n{args.rounds} processes per tier and index (alternating), k=10 pruned search; each process "
        f"runs 1 + {args.queries} queries. Text indexes are queried with the first queries of "
        f"`{args.queries_from.name}`; vector indexes with synthetic query vectors. numba's cache is warm."
    )
    if args.beir is not None:
        where = f"`{args.beir.name}` on `{args.indexes[0].name}`"
        body += f"\n\nEvery test query of {where}, both tiers in one process:\n\n"
        body += quality(args.indexes[0], args.beir, args.exact_queries)
    write_section(args.write, "Read kernels: numba vs numpy tier (bench_kernel_tiers.py)", body)


if __name__ == "__main__":
    main()

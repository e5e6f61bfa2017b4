#!/usr/bin/env python3
"""Pruned vs exhaustive search, and size levers, on BEIR datasets.

For each dataset the corpus and test queries are encoded once with the default
model (float32 vectors cached under --cache), then every variant is built from
those vectors through ``Index.add(vectors=...)`` and measured in the same run:

- exact float MaxSim over the encoder's float32 vectors (numpy-free numba kernel): the reference;
- the unbuilt int8 index (exhaustive);
- built indexes (residual codec) at several nbits / residual dims / pooling factors:
  bytes per token, file size, build time, nDCG@10 and Recall@100 of pruned
  (PLAID defaults) and exhaustive search over the decoded vectors, and
  p50/p95 latency of both (query encoding timed separately).

    OPENBLAS_NUM_THREADS=1 python scripts/bench_search.py --datasets scifact nfcorpus \\
        --write docs/benchmarks.md
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from benchutil import DEFAULT_DATA, percentiles, write_section

import lateint_lite as li
from lateint_lite import kernels
from lateint_lite.encoder import PUNCTUATION, OnnxEncoder
from lateint_lite.evaluation import load_beir, metrics
from lateint_lite.sources import read_documents


@dataclass
class Encoded:
    ids: list[str]
    texts: list[str]
    vectors: np.ndarray  # float32 (n_tokens, dim)
    offsets: np.ndarray  # int64 (n_docs + 1)
    query_ids: list[str]
    query_vectors: list[np.ndarray]
    qrels: dict[str, dict[str, int]]
    query_encode_s: list[float]

    def doc_vectors(self, i: int) -> np.ndarray:
        return self.vectors[self.offsets[i] : self.offsets[i + 1]]


def encode_dataset(folder: Path, cache: Path, encoder: OnnxEncoder, tag: str = "") -> Encoded:
    """Encode corpus + test queries once; corpus vectors are cached as .npy (``tag`` names the variant)."""
    dataset = load_beir(folder)
    docs = list(read_documents(str(dataset.corpus)))
    qrels, texts = dataset.qrels, dataset.queries
    query_ids = sorted(qrels, key=lambda q: (len(q), q))
    stem = cache / f"{folder.name}{tag}"
    if not (stem.with_suffix(".vectors.npy")).exists():
        start = time.perf_counter()
        encoded = encoder.encode_documents([d["text"] for d in docs])
        print(f"{folder.name}: encoded {len(docs)} documents in {time.perf_counter() - start:.0f} s")
        np.save(stem.with_suffix(".vectors.npy"), np.concatenate(encoded))
        np.save(stem.with_suffix(".offsets.npy"), np.cumsum([0] + [len(v) for v in encoded]))
    encoder.encode_queries([texts[query_ids[0]]])
    query_vectors, timings = [], []
    for qid in query_ids:
        start = time.perf_counter()
        query_vectors.append(encoder.encode_queries([texts[qid]])[0])
        timings.append(time.perf_counter() - start)
    return Encoded(
        ids=[str(d["id"]) for d in docs],
        texts=[d["text"] for d in docs],
        vectors=np.load(stem.with_suffix(".vectors.npy")),
        offsets=np.load(stem.with_suffix(".offsets.npy")).astype(np.int64),
        query_ids=query_ids,
        query_vectors=query_vectors,
        qrels=qrels,
        query_encode_s=timings,
    )


def evaluate(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    result = metrics(run, qrels)
    return {"ndcg10": 100 * result["ndcg_at_10"], "r100": 100 * result["recall_at_100"]}


def float_reference(data: Encoded) -> tuple[dict[str, float], list[float]]:
    """Exhaustive MaxSim over the float32 vectors: quality and latency."""
    run: dict[str, dict[str, float]] = {}
    times = []
    for qid, query in zip(data.query_ids, data.query_vectors, strict=True):
        start = time.perf_counter()
        scores = kernels.maxsim_f32(query, data.vectors, data.offsets)
        best = np.argsort(-scores)[:100]
        times.append(time.perf_counter() - start)
        run[qid] = {data.ids[i]: float(scores[i]) for i in best}
    return evaluate(run, data.qrels), times


def _run(idx: li.Index, data: Encoded, k: int, exact: bool) -> tuple[dict[str, dict[str, float]], list[float]]:
    run: dict[str, dict[str, float]] = {}
    times = []
    for qid, query in zip(data.query_ids, data.query_vectors, strict=True):
        start = time.perf_counter()
        hits = idx.search_vectors(query, k=k, exact=exact, highlight=False)
        times.append(time.perf_counter() - start)
        run[qid] = {h.id: h.score for h in hits}
    return run, times


def measure(idx: li.Index, data: Encoded, exact: bool) -> tuple[dict[str, float], list[float]]:
    """nDCG@10 from a k=10 run, Recall@100 from a k=100 run; latency of the k=10 run
    (exhaustive: one k=100 run serves both, its top 10 being the exact top 10)."""
    idx.search_vectors(data.query_vectors[0], k=10, exact=exact, highlight=False)  # load resident state
    if exact:
        run, times = _run(idx, data, 100, True)
        return evaluate(run, data.qrels), times
    run10, times = _run(idx, data, 10, False)
    run100, _ = _run(idx, data, 100, False)
    return {"ndcg10": evaluate(run10, data.qrels)["ndcg10"], "r100": evaluate(run100, data.qrels)["r100"]}, times


def build_variant(path: Path, data: Encoded, build: dict | None) -> tuple[li.Index, float]:
    if path.exists():
        path.unlink()
    idx = li.open(path, create=True, model=None, auto_build=False)
    docs = [
        {"id": doc_id, "text": text, "vectors": data.doc_vectors(i)}
        for i, (doc_id, text) in enumerate(zip(data.ids, data.texts, strict=True))
    ]
    idx.add(docs, batch_size=512)
    seconds = 0.0
    if build is not None:
        start = time.perf_counter()
        idx.build(**build)
        seconds = time.perf_counter() - start
    return idx, seconds


VARIANTS: list[tuple[str, dict | None]] = [
    ("int8, not built (exhaustive)", None),
    ("residual 2-bit, r=128 (default)", {"nbits": 2, "residual_dim": 128}),
    ("residual 1-bit, r=128", {"nbits": 1, "residual_dim": 128}),
    ("residual 4-bit, r=128", {"nbits": 4, "residual_dim": 128}),
    ("residual 1-bit, r=256", {"nbits": 1, "residual_dim": 256}),
    ("residual 2-bit, r=dim (no projection)", {"nbits": 2, "residual_dim": None}),
    ("default + token pooling 2", {"nbits": 2, "residual_dim": 128, "pool_factor": 2}),
    ("default + token pooling 3", {"nbits": 2, "residual_dim": 128, "pool_factor": 3}),
    ("default + punctuation skiplist", {"nbits": 2, "residual_dim": 128, "skiplist": True}),
]


def run_dataset(name: str, data_dir: Path, cache: Path, encoder: OnnxEncoder, variants: list) -> str:
    data = encode_dataset(data_dir / name, cache, encoder)
    skipping: Encoded | None = None
    ref, ref_times = float_reference(data)
    enc50, enc95 = percentiles(data.query_encode_s)
    text_bytes = sum(len(t.encode()) for t in data.texts)
    lines = [
        f"**{name}**: {len(data.ids):,} documents, {data.vectors.shape[0]:,} tokens, "
        f"{len(data.query_ids)} test queries; text {text_bytes / 2**20:.1f} MiB. "
        f"Query encoding p50 {enc50:.1f} ms, p95 {enc95:.1f} ms (not included below).",
        "",
        "| variant | tokens stored | B/token | payload MiB | file MiB | file / (payload+text) | build s "
        "| nDCG@10 pruned | R@100 pruned | nDCG@10 exhaustive | R@100 exhaustive | pruned p50/p95 ms "
        "| exhaustive p50/p95 ms | pruned vs float |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| float32 exact (reference) | {data.vectors.shape[0]:,} | {4 * data.vectors.shape[1]} "
        f"| {data.vectors.nbytes / 2**20:.0f} | - | - | - | - | - | {ref['ndcg10']:.2f} "
        f"| {ref['r100']:.2f} | - | {percentiles(ref_times)[0]:.0f}/{percentiles(ref_times)[1]:.0f} | 100% |",
    ]
    for label, build in variants:
        path = cache / f"{name}-variant.lateint"
        source = data
        if build is not None and build.get("skiplist"):
            if skipping is None:
                punct = OnnxEncoder(encoder.manifest, skiplist=PUNCTUATION)
                skipping = encode_dataset(data_dir / name, cache, punct, tag="-punct")
            source = skipping
            build = {k: v for k, v in build.items() if k != "skiplist"}
        idx, build_s = build_variant(path, source, build)
        info = idx.info().to_dict()
        exhaustive, ex_times = measure(idx, source, exact=True)
        if build is None:
            pruned, pr_times = exhaustive, ex_times
        else:
            pruned, pr_times = measure(idx, source, exact=False)
        idx.close()
        size = path.stat().st_size
        ratio = size / (info["payload_bytes"] + text_bytes)
        p50, p95 = percentiles(pr_times)
        e50, e95 = percentiles(ex_times)
        pruned_cell = f"{pruned['ndcg10']:.2f}" if build else "-"
        recall_cell = f"{pruned['r100']:.2f}" if build else "-"
        lines.append(
            f"| {label} | {info['tokens']:,} | {info['bytes_per_token']:.1f} | {info['payload_bytes'] / 2**20:.1f} "
            f"| {size / 2**20:.1f} | {ratio:.2f} | {build_s:.1f} "
            f"| {pruned_cell} | {recall_cell} | {exhaustive['ndcg10']:.2f} | {exhaustive['r100']:.2f} "
            f"| {p50:.1f}/{p95:.1f} | {e50:.0f}/{e95:.0f} | {100 * pruned['ndcg10'] / ref['ndcg10']:.1f}% |"
        )
        print(lines[-1], flush=True)
        path.unlink()
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["scifact", "nfcorpus"])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/lateint-bench"))
    parser.add_argument("--only", help="run only the variants whose label contains this text (e.g. default)")
    parser.add_argument("--title", default="Pruned vs exhaustive search and size levers (bench_search.py)")
    parser.add_argument("--write", type=Path, help="markdown file to update (e.g. docs/benchmarks.md)")
    args = parser.parse_args()
    variants = [v for v in VARIANTS if args.only is None or args.only in v[0]]
    args.cache.mkdir(parents=True, exist_ok=True)
    encoder = OnnxEncoder.from_model()
    sections = [run_dataset(name, args.data, args.cache, encoder, variants) for name in args.datasets]
    body = (
        "Pruned = PLAID defaults for k (nDCG@10 from k=10 searches, Recall@100 from k=100 searches); "
        "exhaustive = exact MaxSim over every document's decoded vectors. Latency is search only "
        "(k=10 pruned, k=100 exhaustive), one query at a time.\n\n" + "\n\n".join(sections)
    )
    write_section(args.write, args.title, body)


if __name__ == "__main__":
    main()

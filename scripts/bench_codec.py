#!/usr/bin/env python3
"""Where does the residual codec lose? Each cause measured in isolation (issue 11).

Token vectors of a collection are encoded and decoded by codec variants that differ
from the default in one respect; every document is then scored exhaustively over
the decoded vectors (no pruning), so the numbers are the codec's loss alone:

- synthetic (HardGenerator, dim 128): recall@10 / @100 against float32 exact MaxSim;
- a BEIR set (canonical int8 token vectors of an unbuilt index of it): nDCG@10.

    OPENBLAS_NUM_THREADS=1 python scripts/bench_codec.py --docs 10000 --write docs/benchmarks.md
    OPENBLAS_NUM_THREADS=1 python scripts/bench_codec.py --docs 0 --index /tmp/scifact-int8.lateint \\
        --dataset ../shared/data/scifact [--model NAME] --write docs/benchmarks.md
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from benchutil import write_section
from synthetic import HardGenerator, exact_top, recall_at

import lateint_lite as li
from lateint_lite.clustering import plaid_centroid_count, train_codebook
from lateint_lite.codecs.residual import ResidualCodec, _bucket_tables, _orthonormal_basis, _quantized_codebook
from lateint_lite.kernels import maxsim_f32


@dataclass(frozen=True)
class Variant:
    """One codec configuration; the default is the library's default codec."""

    label: str
    nbits: int = 2
    residual_dim: int | None = 128
    per_centroid: int = 16  # training points per centroid
    iterations: int = 10
    int8_centroids: bool = True
    centroid_rule: Callable[[int], int] = plaid_centroid_count
    weights: str = "quantile"  # bucket values: "quantile" midpoints or conditional "mean"s (Lloyd)
    centroids_only: bool = False
    token_scale: bool = False  # quantize r/|r| and store |r| per token (float16, +2 B)


def train(variant: Variant, vectors: np.ndarray, seed: int) -> ResidualCodec:
    rng = np.random.default_rng(seed)
    k = min(variant.centroid_rule(len(vectors)), 65536)
    n_sample = min(len(vectors), max(65536, variant.per_centroid * k))
    order = rng.permutation(len(vectors))
    sample = vectors[np.sort(order[:n_sample])]
    heldout = vectors[np.sort(order[n_sample : n_sample + 65536])] if n_sample < len(vectors) else sample
    book = train_codebook(sample, min(k, len(sample)), seed=seed, iterations=variant.iterations)
    if variant.int8_centroids:
        book = _quantized_codebook(book)
    residuals = heldout - book.centroids[book.assign(heldout)]
    if variant.token_scale:
        residuals = residuals / np.maximum(np.linalg.norm(residuals, axis=1, keepdims=True), 1e-12)
    dim = vectors.shape[1]
    r = dim if variant.residual_dim is None or variant.residual_dim >= dim else variant.residual_dim
    basis = None if r == dim else _orthonormal_basis(residuals, r)
    projected = residuals if basis is None else residuals @ basis
    cutoffs, weights = _bucket_tables(projected, variant.nbits)
    if variant.weights == "mean":
        weights = _conditional_means(projected, cutoffs, weights)
    return ResidualCodec(codebook=book, basis=basis, cutoffs=cutoffs, weights=weights, nbits=variant.nbits)


def _conditional_means(projected: np.ndarray, cutoffs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each bucket's value = the mean of the held-out values that fall in it (Lloyd's step)."""
    out = weights.copy()
    for j in range(projected.shape[1]):
        buckets = np.searchsorted(cutoffs[j], projected[:, j], side="left")
        for b in range(weights.shape[1]):
            members = projected[buckets == b, j]
            if members.size:
                out[j, b] = members.mean()
    return out.astype(np.float32)


def decoded(variant: Variant, codec: ResidualCodec, vectors: np.ndarray) -> np.ndarray:
    out = np.empty_like(vectors)
    for lo in range(0, len(vectors), 200_000):
        chunk = vectors[lo : lo + 200_000]
        if variant.token_scale:
            out[lo : lo + len(chunk)] = _scaled_round_trip(codec, chunk)
            continue
        codes, packed = codec.encode_tokens(chunk)
        if variant.centroids_only:
            out[lo : lo + len(chunk)] = codec.codebook.centroids[codes.astype(np.int64)]
        else:
            out[lo : lo + len(chunk)] = codec.decode_tokens(codes, packed)
    return out


def _scaled_round_trip(codec: ResidualCodec, vectors: np.ndarray) -> np.ndarray:
    """Encode r/|r| with the codec's buckets, keep |r| as float16, decode C + |r| B w, renormalize."""
    from lateint_lite.kernels import decode_residuals, encode_residuals

    codes = codec.codebook.assign(vectors)
    centroids = codec.codebook.centroids[codes]
    residual = vectors - centroids
    norms = np.linalg.norm(residual, axis=1, keepdims=True)
    unit = residual / np.maximum(norms, 1e-12)
    packed = encode_residuals(
        unit,
        np.zeros(len(unit), np.int64),
        np.zeros((1, unit.shape[1]), np.float32),
        codec.basis,
        codec.cutoffs,
        codec.nbits,
    )
    w = decode_residuals(packed, codec.weights, codec.nbits)
    back = w if codec.basis is None else w @ codec.basis.T
    out = centroids + norms.astype(np.float16).astype(np.float32) * back
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def scores_top(queries: list[np.ndarray], vectors: np.ndarray, offsets: np.ndarray, k: int) -> list[list[int]]:
    out = []
    for q in queries:
        scores = maxsim_f32(q, vectors, offsets)
        out.append(np.argsort(-scores, kind="stable")[:k].tolist())
    return out


VARIANTS = [
    Variant("default: 2-bit, int8 centroids, 16 points/centroid, 10 iterations, quantile weights"),
    Variant("centroid codes only (2 B/token)", centroids_only=True),
    Variant("float32 centroids", int8_centroids=False),
    Variant("64 training points per centroid", per_centroid=64),
    Variant("20 k-means iterations", iterations=20),
    Variant("bucket weights = conditional means", weights="mean"),
    Variant("4x centroids", centroid_rule=lambda n: 4 * plaid_centroid_count(n)),
    Variant("1/4 centroids", centroid_rule=lambda n: plaid_centroid_count(n) // 4),
    Variant("4-bit (66 B/token at dim 128)", nbits=4),
    Variant("1-bit, 256 residual directions", nbits=1, residual_dim=256),
    Variant("per-token residual scale (float16, +2 B)", token_scale=True),
    Variant("per-token scale + conditional means", token_scale=True, weights="mean"),
]


def selected(variant: Variant, only: list[str] | None) -> bool:
    """Whether ``--only`` (any of its texts in the label) keeps this variant."""
    return not only or any(text in variant.label for text in only)


def per_variant(
    vectors: np.ndarray, seeds: list[int], only: list[str] | None, measure: Callable[[np.ndarray], Any]
) -> Iterator[tuple[Variant, list[Any], int, float]]:
    """For each selected variant: (variant, ``measure(decoded vectors)`` per seed, centroids, seconds)."""
    for variant in VARIANTS:
        if not selected(variant, only):
            continue
        started = time.perf_counter()
        results, size = [], 0
        for seed in seeds:
            codec = train(variant, vectors, seed)
            results.append(measure(decoded(variant, codec, vectors)))
            size = codec.codebook.size
        yield variant, results, size, time.perf_counter() - started


def bytes_per_token(variant: Variant, dim: int) -> float:
    if variant.centroids_only:
        return 2
    r = dim if variant.residual_dim is None else min(variant.residual_dim, dim)
    return 2 + r * variant.nbits / 8 + (2 if variant.token_scale else 0)


def synthetic(n_docs: int, seeds: list[int], only: list[str] | None, noise: float) -> str:
    gen = HardGenerator(dim=128, noise=noise)
    docs = [gen.document(i) for i in range(n_docs)]
    queries = [gen.query(q, n_docs)[0] for q in range(200)]
    vectors = np.concatenate(docs)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int64)
    truth = exact_top(queries, docs, 100)
    rows = []
    for variant, found_per_seed, size, seconds in per_variant(
        vectors, seeds, only, lambda dec: scores_top(queries, dec, offsets, 100)
    ):
        r10 = [recall_at(found, truth, 10) for found in found_per_seed]
        r100 = [recall_at(found, truth, 100) for found in found_per_seed]
        rows.append(
            f"| {variant.label} | {bytes_per_token(variant, 128):.0f} | {size:,} "
            f"| {np.mean(r10):.3f} ± {np.std(r10):.3f} | {np.mean(r100):.3f} | {seconds:.0f} |"
        )
        print(rows[-1], flush=True)
    return (
        f"HardGenerator (noise {noise}), {n_docs:,} documents ({len(vectors):,} tokens, dim 128), 200 queries; "
        "exhaustive MaxSim over "
        f"decoded vectors, recall against float32 exact MaxSim; mean ± std over seeds {seeds}.\n\n"
        "| codec variant | B/token | centroids | recall@10 | recall@100 | s |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
    )


def unbuilt_index(path: Path, dataset_dir: Path, model: str) -> None:
    """The dataset's corpus encoded by ``model`` into an index that keeps its int8 tokens (no build)."""
    from lateint_lite.evaluation import load_beir
    from lateint_lite.sources import read_documents

    dataset = load_beir(dataset_dir)
    started = time.perf_counter()
    with li.open(path, create=True, model=model, auto_build=False) as idx:
        idx.add(list(read_documents(str(dataset.corpus))), progress=True)
    print(f"{path}: encoded in {time.perf_counter() - started:.0f} s", flush=True)


def beir(index: Path, dataset_dir: Path, seeds: list[int], only: list[str] | None) -> str:
    """Codec variants on the canonical token vectors of an unbuilt (int8) index: exact nDCG@10."""
    from lateint_lite.codecs import Int8Codec
    from lateint_lite.evaluation import load_beir, metrics

    dataset = load_beir(dataset_dir)
    with li.open(index, readonly=True) as idx:
        if idx.is_built:
            raise SystemExit(f"{index} is built; give an unbuilt (int8) index of the dataset")
        rows = list(idx._store.iter_token_payloads())
        codec = Int8Codec(idx.dim)
        docs = [codec.decode(row) for row in rows]
        by_id = idx._store.documents_by_doc_ids([row.doc_id for row in rows])
        ids = [by_id[row.doc_id].ext_id for row in rows]
        items = list(dataset.queries.items())
        queries = [
            q / np.linalg.norm(q, axis=1, keepdims=True) for q in idx.encoder.encode_queries([t for _, t in items])
        ]
    vectors = np.concatenate(docs)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int64)

    def ndcg(decoded_vectors: np.ndarray) -> float:
        run = {}
        for (qid, _), q in zip(items, queries, strict=True):
            scores = maxsim_f32(q, decoded_vectors, offsets)
            top = np.argsort(-scores, kind="stable")[:100]
            run[qid] = {ids[i]: float(100 - r) for r, i in enumerate(top)}
        return 100 * metrics(run, dataset.qrels)["ndcg_at_10"]

    out = [f"| float (canonical int8 tokens, no codec) | {4 * vectors.shape[1] + 4} | - | {ndcg(vectors):.2f} | |"]
    print(out[-1], flush=True)
    for variant, values, size, _ in per_variant(vectors, seeds, only, ndcg):
        out.append(
            f"| {variant.label} | {bytes_per_token(variant, vectors.shape[1]):.0f} | {size:,} "
            f"| {np.mean(values):.2f} ± {np.std(values):.2f} | {' / '.join(f'{v:.2f}' for v in values)} |"
        )
        print(out[-1], flush=True)
    return (
        f"{dataset.name}: {len(docs):,} documents, {len(vectors):,} tokens (dim {vectors.shape[1]}), "
        f"{len(items)} test queries; exhaustive MaxSim over decoded vectors, nDCG@10, "
        f"mean ± std over seeds {seeds}.\n\n"
        "| codec variant | B/token | centroids | nDCG@10 | per seed |\n|---|---|---|---|---|\n" + "\n".join(out)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--only", nargs="+", help="run only the variants whose label contains one of these texts")
    parser.add_argument("--noise", type=float, default=HardGenerator().noise, help="HardGenerator noise")
    parser.add_argument("--index", type=Path, help="an unbuilt (int8) index of a BEIR dataset (with --dataset)")
    parser.add_argument("--dataset", type=Path)
    parser.add_argument("--title", default="Codec loss by cause (bench_codec.py)")
    parser.add_argument("--write", type=Path)
    parser.add_argument(
        "--model", help="with --index and --dataset: write the unbuilt index with this model first if it is missing"
    )
    args = parser.parse_args()
    if args.index and args.dataset and args.model and not args.index.exists():
        unbuilt_index(args.index, args.dataset, args.model)
    parts = []
    if args.docs:
        parts.append(synthetic(args.docs, args.seeds, args.only, args.noise))
    if args.index and args.dataset:
        parts.append(beir(args.index, args.dataset, args.seeds, args.only))
    write_section(args.write, args.title, "\n\n".join(parts))


if __name__ == "__main__":
    main()

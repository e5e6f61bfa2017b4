#!/usr/bin/env python3
"""Where does the residual codec lose? Each cause measured in isolation (issue 11).

Token vectors of a collection are encoded and decoded by codec variants that differ
from the default in one respect; every document is then scored exhaustively over
the decoded vectors (no pruning), so the numbers are the codec's loss alone:

- synthetic (HardGenerator, dim 128): recall@10 / @100 against float32 exact MaxSim;
- a BEIR set (canonical int8 token vectors of an unbuilt index of it): nDCG@10.

    OPENBLAS_NUM_THREADS=1 python scripts/bench_codec.py --docs 10000 --write docs/benchmarks.md
    OPENBLAS_NUM_THREADS=1 python scripts/bench_codec.py --docs 0 --beir /tmp/scifact-int8.lateint \\
        --dataset ../shared/data/scifact --write docs/benchmarks.md
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from benchutil import write_section
from synthetic import HardGenerator, exact_top, recall_at

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
        codes, packed = codec.encode_tokens(chunk)
        if variant.centroids_only:
            out[lo : lo + len(chunk)] = codec.codebook.centroids[codes.astype(np.int64)]
        else:
            out[lo : lo + len(chunk)] = codec.decode_tokens(codes, packed)
    return out


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
]


def bytes_per_token(variant: Variant, dim: int) -> float:
    if variant.centroids_only:
        return 2
    r = dim if variant.residual_dim is None else min(variant.residual_dim, dim)
    return 2 + r * variant.nbits / 8


def synthetic(n_docs: int, seeds: list[int]) -> str:
    gen = HardGenerator(dim=128)
    docs = [gen.document(i) for i in range(n_docs)]
    queries = [gen.query(q, n_docs)[0] for q in range(200)]
    vectors = np.concatenate(docs)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int64)
    truth = exact_top(queries, docs, 100)
    rows = []
    for variant in VARIANTS:
        r10, r100 = [], []
        started = time.perf_counter()
        for seed in seeds:
            codec = train(variant, vectors, seed)
            found = scores_top(queries, decoded(variant, codec, vectors), offsets, 100)
            r10.append(recall_at(found, truth, 10))
            r100.append(recall_at(found, truth, 100))
        rows.append(
            f"| {variant.label} | {bytes_per_token(variant, 128):.0f} | {codec.codebook.size:,} "
            f"| {np.mean(r10):.3f} ± {np.std(r10):.3f} | {np.mean(r100):.3f} | {time.perf_counter() - started:.0f} |"
        )
        print(rows[-1], flush=True)
    return (
        f"HardGenerator, {n_docs:,} documents ({len(vectors):,} tokens, dim 128), 200 queries; exhaustive MaxSim over "
        f"decoded vectors, recall against float32 exact MaxSim; mean ± std over seeds {seeds}.\n\n"
        "| codec variant | B/token | centroids | recall@10 | recall@100 | s |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    body = synthetic(args.docs, args.seeds)
    write_section(args.write, "Codec loss by cause (bench_codec.py)", body)


if __name__ == "__main__":
    main()

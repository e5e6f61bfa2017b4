"""Combining ranked lists: reciprocal-rank fusion and normalized score fusion.

Both take ranked lists of (doc_id, score), best first, and return one fused
list of (doc_id, fused score), best first; ties keep the order in which
documents were first seen.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

Key = TypeVar("Key", bound=Hashable)  # a doc_id inside one index, an id across shards

#: RRF's constant from Cormack et al. (2009); not tuned on any test set here.
RRF_K = 60


def reciprocal_rank_fusion(rankings: Sequence[Sequence[tuple[Key, float]]], k: int = RRF_K) -> list[tuple[Key, float]]:
    """sum over lists of 1 / (k + rank), rank starting at 1."""
    fused: dict[Key, float] = {}
    for ranking in rankings:
        for rank, (doc_id, _) in enumerate(ranking, start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda item: -item[1])


def normalized_score_fusion(
    rankings: Sequence[Sequence[tuple[Key, float]]], weights: Sequence[float]
) -> list[tuple[Key, float]]:
    """Weighted sum of min-max normalized scores; a list that misses a document adds 0."""
    fused: dict[Key, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        if not ranking:
            continue
        scores = [s for _, s in ranking]
        low, high = min(scores), max(scores)
        span = high - low
        for doc_id, score in ranking:
            value = (score - low) / span if span > 0 else 1.0
            fused[doc_id] = fused.get(doc_id, 0.0) + weight * value
    return sorted(fused.items(), key=lambda item: -item[1])

"""Search stages over a token matrix: scoring and top-k selection."""

from __future__ import annotations

import numpy as np

from .tokens import TokenMatrix


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, best first; equal scores keep index order."""
    k = min(k, scores.size)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
    order = np.lexsort((part, -scores[part]))
    return part[order].astype(np.int64)


def exhaustive_search(query: np.ndarray, matrix: TokenMatrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact MaxSim against every document: (doc_ids, scores), best first."""
    scores = matrix.maxsim(query)
    best = top_k(scores, k)
    return matrix.doc_ids[best], scores[best]

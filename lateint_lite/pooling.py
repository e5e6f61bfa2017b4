"""Token pooling of whole documents: keep about 1/factor of each document's token vectors
(cluster means, see ``kernels.pooling``), applied at build time and to every later add."""

from __future__ import annotations

import numpy as np

from .kernels import pool_documents


def pool_vectors(vectors: list[np.ndarray], factor: int) -> list[np.ndarray]:
    """Token pooling of each document's vectors (factor 1 returns them unchanged)."""
    if factor <= 1 or not vectors:
        return vectors
    offsets = np.cumsum([0] + [len(v) for v in vectors]).astype(np.int64)
    pooled, new_offsets = pool_documents(np.concatenate(vectors), offsets, factor)
    return [pooled[new_offsets[i] : new_offsets[i + 1]] for i in range(len(vectors))]

"""Token pooling: keep about 1/factor of each passage's token vectors (cluster means, see
``kernels.pooling``), applied at build time and to every later add. Passages are pooled one by
one, so a pooled document keeps its passages."""

from __future__ import annotations

import numpy as np

from . import kernels
from .passages import DocumentTokens


def pool_vectors(docs: list[DocumentTokens], factor: int) -> list[DocumentTokens]:
    """Token pooling of each document's passages (factor 1 returns them unchanged)."""
    if factor <= 1 or not docs:
        return docs
    lengths = np.concatenate([d.lengths for d in docs])
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    pooled, new_offsets = kernels.pool_documents(np.concatenate([d.vectors for d in docs]), offsets, factor)
    new_lengths = np.diff(new_offsets)
    out, first = [], 0
    for doc in docs:
        last = first + doc.n_passages
        out.append(doc.with_vectors(pooled[new_offsets[first] : new_offsets[last]], new_lengths[first:last]))
        first = last
    return out

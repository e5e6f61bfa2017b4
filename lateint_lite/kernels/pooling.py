"""Token pooling: cluster each document's tokens and keep the unit cluster means; each
document's mean token (its pooled vector)."""

from __future__ import annotations

import numpy as np
from numba import prange

from ..errors import InvalidInputError
from ._checks import check_offsets, matrix_operand
from ._runtime import PARALLEL_LOCK, Float32Array, Int64Array, jit


@jit(parallel=True, fastmath=True)
def _pool_documents(vectors, offsets, factor, iterations):  # pragma: no cover - compiled
    """Cluster each document's tokens into ceil(n / factor) groups; return unit group means.

    Seeds are tokens at evenly spaced positions (deterministic), then a few
    spherical k-means steps within the document.
    """
    n_docs = offsets.shape[0] - 1
    dim = vectors.shape[1]
    counts = np.empty(n_docs, dtype=np.int64)
    for d in range(n_docs):
        n = offsets[d + 1] - offsets[d]
        counts[d] = max(1, (n + factor - 1) // factor)
    new_offsets = np.zeros(n_docs + 1, dtype=np.int64)
    for d in range(n_docs):
        new_offsets[d + 1] = new_offsets[d] + counts[d]
    out = np.empty((new_offsets[n_docs], dim), dtype=np.float32)
    for d in prange(n_docs):
        start = offsets[d]
        n = offsets[d + 1] - start
        m = counts[d]
        means = np.empty((m, dim), dtype=np.float32)
        for g in range(m):
            src = start + (g * n) // m
            for t in range(dim):
                means[g, t] = vectors[src, t]
        assign = np.zeros(n, dtype=np.int64)
        for _ in range(iterations):
            for i in range(n):
                best = np.float32(-np.inf)
                for g in range(m):
                    acc = np.float32(0.0)
                    for t in range(dim):
                        acc += vectors[start + i, t] * means[g, t]
                    if acc > best:
                        best = acc
                        assign[i] = g
            sums = np.zeros((m, dim), dtype=np.float32)
            sizes = np.zeros(m, dtype=np.int64)
            for i in range(n):
                g = assign[i]
                sizes[g] += 1
                for t in range(dim):
                    sums[g, t] += vectors[start + i, t]
            for g in range(m):
                if sizes[g] == 0:
                    continue
                norm = np.float32(0.0)
                for t in range(dim):
                    norm += sums[g, t] * sums[g, t]
                norm = np.sqrt(max(norm, np.float32(1e-24)))
                for t in range(dim):
                    means[g, t] = sums[g, t] / norm
        for g in range(m):
            for t in range(dim):
                out[new_offsets[d] + g, t] = means[g, t]
    return out, new_offsets


def pool_documents(
    vectors: Float32Array, offsets: Int64Array, factor: int, iterations: int = 4
) -> tuple[Float32Array, Int64Array]:
    """Token pooling: (pooled unit vectors, new offsets) keeping ~1/factor of each document's tokens."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    check_offsets(offsets, vectors.shape[0])
    if factor < 1 or iterations < 0:
        raise InvalidInputError("pool factor must be >= 1")
    with PARALLEL_LOCK:
        return _pool_documents(vectors, offsets, int(factor), int(iterations))


@jit(parallel=True)
def _document_means(vectors, offsets, means):  # pragma: no cover - compiled
    """means[d] = the mean of rows offsets[d]:offsets[d+1], float32 summed row after row then
    divided by the count: ``vectors[a:b].mean(axis=0)``'s own order, so the same bits."""
    dim = vectors.shape[1]
    for d in prange(offsets.shape[0] - 1):
        start, stop = offsets[d], offsets[d + 1]
        for t in range(dim):
            means[d, t] = np.float32(0.0)
        for i in range(start, stop):
            for t in range(dim):
                means[d, t] += vectors[i, t]
        count = np.float32(stop - start)
        for t in range(dim):
            means[d, t] = means[d, t] / count


def document_means(vectors: Float32Array, offsets: Int64Array) -> Float32Array:
    """Each document's mean token (float32, (n_docs, dim)) for documents of consecutive rows
    ``offsets[d]:offsets[d+1]``, each at least one row: bit for bit ``mean(axis=0)`` per document."""
    vectors = matrix_operand(vectors, np.float32)
    check_offsets(offsets, vectors.shape[0])
    means = np.empty((offsets.size - 1, vectors.shape[1]), dtype=np.float32)
    if means.size:
        with PARALLEL_LOCK:
            _document_means(vectors, offsets, means)
    return means

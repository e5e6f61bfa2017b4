"""MaxSim over flat token matrices (int8 with per-token scales, or float32), and dense dot products
(BLAS on threads)."""

from __future__ import annotations

import numpy as np
from numba import prange

from ._checks import dot_operands, f32_operands, int8_operands
from ._runtime import PARALLEL_LOCK, Float32Array, Int8Array, Int64Array, in_threads, jit, thread_count
from ._tiles import _tile_maxsim


@jit(parallel=True, fastmath=True)
def _maxsim_int8(query, values, scales, offsets, positions):  # pragma: no cover - compiled
    nq, dim = query.shape
    out = np.empty(positions.shape[0], dtype=np.float32)
    for p in prange(positions.shape[0]):
        doc = positions[p]
        start = offsets[doc]
        n = offsets[doc + 1] - start
        tile = np.zeros((n + n % 2, dim), dtype=np.float32)
        for t in range(n):
            s = scales[start + t]
            for k in range(dim):
                tile[t, k] = np.float32(values[start + t, k]) * s
        best = np.empty(nq, dtype=np.float32)
        _tile_maxsim(query, tile, n, best)
        out[p] = best.sum()
    return out


@jit(parallel=True, fastmath=True)
def _maxsim_f32(query, vectors, offsets, positions):  # pragma: no cover - compiled
    nq, dim = query.shape
    out = np.empty(positions.shape[0], dtype=np.float32)
    for p in prange(positions.shape[0]):
        doc = positions[p]
        start = offsets[doc]
        n = offsets[doc + 1] - start
        tile = np.zeros((n + n % 2, dim), dtype=np.float32)
        tile[:n] = vectors[start : start + n]
        best = np.empty(nq, dtype=np.float32)
        _tile_maxsim(query, tile, n, best)
        out[p] = best.sum()
    return out


def maxsim_int8(
    query: Float32Array,
    values: Int8Array,
    scales: Float32Array,
    offsets: Int64Array,
    positions: Int64Array | None = None,
) -> Float32Array:
    """MaxSim of ``query`` against int8 documents (rows offsets[d]:offsets[d+1]).

    Returns float32 scores for ``positions`` (default: every document).
    """
    query, scales, positions = int8_operands(query, values, scales, offsets, positions)
    with PARALLEL_LOCK:
        return _maxsim_int8(query, values, scales, offsets, positions)


def maxsim_f32(
    query: Float32Array, vectors: Float32Array, offsets: Int64Array, positions: Int64Array | None = None
) -> Float32Array:
    """MaxSim of ``query`` against float32 documents laid out flat with offsets."""
    query, vectors, positions = f32_operands(query, vectors, offsets, positions)
    with PARALLEL_LOCK:
        return _maxsim_f32(query, vectors, offsets, positions)


#: Fewest rows of ``a`` per thread in :func:`dot_matrix` (below it a thread costs more than it saves).
DOT_MIN_ROWS = 4096


def dot_matrix(a: Float32Array, b: Float32Array) -> Float32Array:
    """``a @ b.T`` in float32: BLAS, the rows of ``a`` split over :func:`in_threads`.

    S = C·Qᵀ of a search (65,536 centroids x 32 query tokens x 128): 12.3 ms in the numba 4x2
    tiles on 2 threads this replaced, 12.8 ms for one single-threaded BLAS call, so half
    that on two (docs/ARCHITECTURE.md, "Search on a 1M-document index")."""
    a, b = dot_operands(a, b)
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.float32)
    b_t = b.T

    def block(lo: int, hi: int) -> None:
        np.matmul(a[lo:hi], b_t, out=out[lo:hi])

    if out.size:
        in_threads(block, a.shape[0], max(DOT_MIN_ROWS, -(-a.shape[0] // thread_count())))
    return out

"""Numba kernels: the only module that imports numba.

Every kernel takes flat arrays plus offsets, does no bounds checks of its own,
and has a plain-numpy ``*_reference`` twin that tests compare it against (also
under ``NUMBA_DISABLE_JIT=1``). Public wrappers validate shapes, dtypes and
offsets first: nothing read from a file reaches a kernel unchecked.

Parallel kernels share numba's default threading layer, which is not safe to
enter from several Python threads at once, so wrappers hold
:data:`PARALLEL_LOCK` while a parallel kernel runs.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit, prange

from .errors import CorruptIndexError, InvalidInputError

PARALLEL_LOCK = threading.Lock()


@njit(fastmath=True, cache=True, inline="always")
def _tile_maxsim(query, tile, n, best):  # pragma: no cover - compiled
    """best[i] = max over the first n rows t of tile of dot(query[i], tile[t]).

    A 4 x 2 register tile: 4 query tokens and 2 document tokens share each
    loaded element (measured best of 2x4, 4x2 and plain loops, see
    docs/ARCHITECTURE.md). ``tile`` has an even number of rows; rows past n
    are ignored.
    """
    nq, dim = query.shape
    rows = tile.shape[0]
    full = nq - nq % 4
    for i0 in range(0, full, 4):
        b0 = np.float32(-np.inf)
        b1 = np.float32(-np.inf)
        b2 = np.float32(-np.inf)
        b3 = np.float32(-np.inf)
        for t in range(0, rows, 2):
            c00 = np.float32(0.0)
            c01 = np.float32(0.0)
            c10 = np.float32(0.0)
            c11 = np.float32(0.0)
            c20 = np.float32(0.0)
            c21 = np.float32(0.0)
            c30 = np.float32(0.0)
            c31 = np.float32(0.0)
            for k in range(dim):
                x0 = tile[t, k]
                x1 = tile[t + 1, k]
                q = query[i0, k]
                c00 += q * x0
                c01 += q * x1
                q = query[i0 + 1, k]
                c10 += q * x0
                c11 += q * x1
                q = query[i0 + 2, k]
                c20 += q * x0
                c21 += q * x1
                q = query[i0 + 3, k]
                c30 += q * x0
                c31 += q * x1
            b0 = max(b0, c00)
            b1 = max(b1, c10)
            b2 = max(b2, c20)
            b3 = max(b3, c30)
            if t + 1 < n:
                b0 = max(b0, c01)
                b1 = max(b1, c11)
                b2 = max(b2, c21)
                b3 = max(b3, c31)
        best[i0] = b0
        best[i0 + 1] = b1
        best[i0 + 2] = b2
        best[i0 + 3] = b3
    for i in range(full, nq):
        b = np.float32(-np.inf)
        for t in range(n):
            acc = np.float32(0.0)
            for k in range(dim):
                acc += query[i, k] * tile[t, k]
            b = max(b, acc)
        best[i] = b


@njit(parallel=True, fastmath=True, cache=True)
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


@njit(parallel=True, fastmath=True, cache=True)
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


def check_offsets(offsets: np.ndarray, n_rows: int) -> None:
    """Offsets must start at 0, never decrease, have non-empty spans and end at n_rows."""
    if offsets.ndim != 1 or offsets.size < 1 or offsets.dtype != np.int64:
        raise CorruptIndexError("offsets must be a 1-d int64 array")
    if offsets[0] != 0 or offsets[-1] != n_rows or (np.diff(offsets) <= 0).any():
        raise CorruptIndexError("offsets are not a strictly increasing 0..n_rows partition")


def _check_query(query: np.ndarray, dim: int) -> np.ndarray:
    query = np.ascontiguousarray(query, dtype=np.float32)
    if query.ndim != 2 or query.shape[1] != dim or query.shape[0] == 0:
        raise InvalidInputError(f"query must be a non-empty (n, {dim}) matrix, got shape {query.shape}")
    return query


def _check_positions(positions: np.ndarray | None, n_docs: int) -> np.ndarray:
    if positions is None:
        return np.arange(n_docs, dtype=np.int64)
    positions = np.ascontiguousarray(positions, dtype=np.int64)
    if positions.ndim != 1 or (positions.size and (positions.min() < 0 or positions.max() >= n_docs)):
        raise InvalidInputError("document positions out of range")
    return positions


def maxsim_int8(
    query: np.ndarray,
    values: np.ndarray,
    scales: np.ndarray,
    offsets: np.ndarray,
    positions: np.ndarray | None = None,
) -> np.ndarray:
    """MaxSim of ``query`` against int8 documents (rows offsets[d]:offsets[d+1]).

    Returns float32 scores for ``positions`` (default: every document).
    """
    if values.dtype != np.int8 or values.ndim != 2 or scales.shape != (values.shape[0],):
        raise CorruptIndexError("int8 token matrix and scales do not match")
    check_offsets(offsets, values.shape[0])
    query = _check_query(query, values.shape[1])
    positions = _check_positions(positions, offsets.size - 1)
    with PARALLEL_LOCK:
        return _maxsim_int8(query, values, scales.astype(np.float32, copy=False), offsets, positions)


def maxsim_f32(
    query: np.ndarray, vectors: np.ndarray, offsets: np.ndarray, positions: np.ndarray | None = None
) -> np.ndarray:
    """MaxSim of ``query`` against float32 documents laid out flat with offsets."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise InvalidInputError("document vectors must be a 2-d matrix")
    check_offsets(offsets, vectors.shape[0])
    query = _check_query(query, vectors.shape[1])
    positions = _check_positions(positions, offsets.size - 1)
    with PARALLEL_LOCK:
        return _maxsim_f32(query, vectors, offsets, positions)


# -- numpy references -----------------------------------------------------------------


def maxsim_f32_reference(
    query: np.ndarray, vectors: np.ndarray, offsets: np.ndarray, positions: np.ndarray | None = None
) -> np.ndarray:
    """Plain-numpy MaxSim, one matmul per document."""
    n_docs = offsets.size - 1
    positions = np.arange(n_docs) if positions is None else positions
    query = np.asarray(query, dtype=np.float32)
    return np.array(
        [(query @ vectors[offsets[d] : offsets[d + 1]].T).max(axis=1).sum() for d in positions], dtype=np.float32
    )


def maxsim_int8_reference(
    query: np.ndarray,
    values: np.ndarray,
    scales: np.ndarray,
    offsets: np.ndarray,
    positions: np.ndarray | None = None,
) -> np.ndarray:
    """Plain-numpy MaxSim over dequantized int8 documents."""
    vectors = values.astype(np.float32) * scales[:, None]
    return maxsim_f32_reference(query, vectors, offsets, positions)

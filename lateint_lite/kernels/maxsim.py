"""MaxSim over flat token matrices (int8 with per-token scales, or float32), and dense dot products."""

from __future__ import annotations

import numpy as np
from numba import prange

from ._checks import dot_operands, f32_operands, int8_operands
from ._runtime import PARALLEL_LOCK, Float32Array, Int8Array, Int64Array, jit
from ._tiles import _dot4x2, _tile_maxsim


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


@jit(parallel=True, fastmath=True)
def _dot_matrix_tiles(a, b_pad, out):  # pragma: no cover - compiled
    """out[i, j] = a[i] . b_pad[j] for the first ``4 * (len(a) // 4)`` rows of ``a``, in blocks of
    4 rows (parallel) x 2 columns; ``b_pad`` has an even number of rows, ``out`` as many columns.

    No array expressions here (allocation, slice assignment): under ``parallel=True`` they turn
    into parfors whose error paths pulled numba's string formatting into this kernel, 8.1 of
    its 8.5 s first compile (docs/ARCHITECTURE.md, "First run"). The wrapper pads and finishes.
    """
    dim = a.shape[1]
    m = b_pad.shape[0]
    for blk in prange(a.shape[0] // 4):
        i = blk * 4
        for j in range(0, m, 2):
            c00, c01, c10, c11, c20, c21, c30, c31 = _dot4x2(a, i, b_pad, j, dim)
            out[i, j] = c00
            out[i + 1, j] = c10
            out[i + 2, j] = c20
            out[i + 3, j] = c30
            out[i, j + 1] = c01
            out[i + 1, j + 1] = c11
            out[i + 2, j + 1] = c21
            out[i + 3, j + 1] = c31


def _dot_matrix(a: Float32Array, b: Float32Array) -> Float32Array:
    """``a @ b.T`` for contiguous float32 matrices (unchecked; see :func:`dot_matrix`)."""
    m = b.shape[0]
    b_pad = b if m % 2 == 0 else np.concatenate([b, np.zeros((1, b.shape[1]), np.float32)])
    out = np.empty((a.shape[0], b_pad.shape[0]), dtype=np.float32)
    _dot_matrix_tiles(a, b_pad, out)
    full = a.shape[0] - a.shape[0] % 4
    if full < a.shape[0]:
        out[full:] = a[full:] @ b_pad.T  # at most 3 rows
    return np.ascontiguousarray(out[:, :m]) if b_pad is not b else out


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


def dot_matrix(a: Float32Array, b: Float32Array) -> Float32Array:
    """``a @ b.T`` in float32 with numba threads (no BLAS)."""
    a, b = dot_operands(a, b)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]), np.float32)
    with PARALLEL_LOCK:
        return _dot_matrix(a, b)

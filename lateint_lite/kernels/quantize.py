"""Per-token int8 quantization: the rounding every build starts from (``codecs.canonical``),
and the unit rows it gives back.

The canonical form was first defined by numpy formulas (``l2_normalize`` then this rounding;
``unit_rows`` of the values). The fused kernels here give the same bits: IEEE float32 element
by element (no fastmath), and row norms summed in numpy's own order (its pairwise summation,
:func:`_pairwise_squares`), so indexes written before them and after them agree."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import prange

from ._checks import matrix_operand
from ._runtime import PARALLEL_LOCK, Float32Array, Int8Array, jit


@jit(parallel=True)
def _quantize_int8(vectors, values, scales):  # pragma: no cover - compiled
    """scales[i] = max|v_i| / 127 (1 for a zero row); values[i] = clip(rint(v_i / scales[i])).

    IEEE float32 arithmetic (no fastmath), element by element: the same bits as the numpy
    formula it replaces (tests/reference.py)."""
    limit = np.float32(127.0)
    for i in prange(vectors.shape[0]):
        peak = np.float32(0.0)
        for t in range(vectors.shape[1]):
            peak = max(peak, abs(vectors[i, t]))
        scale = peak / limit if peak > 0 else np.float32(1.0)
        scales[i] = scale
        for t in range(vectors.shape[1]):
            q = np.rint(vectors[i, t] / scale)
            values[i, t] = np.int8(min(max(q, -limit), limit))


#: numpy's pairwise summation block (``PW_BLOCKSIZE`` in numpy's umath loops).
PAIRWISE_BLOCK = 128


@jit(inline="always")
def _square(row, i):  # pragma: no cover - compiled
    """row[i] ** 2 in float32 (the product rounded before it is summed, as numpy's ``x * x``)."""
    x = np.float32(row[i])
    return x * x


@jit(inline="always")
def _block_squares(row, lo, n):  # pragma: no cover - compiled
    """numpy's pairwise float32 sum of ``row[lo:lo+n] ** 2`` for ``n <= PAIRWISE_BLOCK``: under 8
    terms one by one; else 8 interleaved accumulators combined pairwise, the rest one by one."""
    if n < 8:
        total = np.float32(0.0)
        for i in range(lo, lo + n):
            total += _square(row, i)
        return total
    r0, r1, r2, r3 = _square(row, lo), _square(row, lo + 1), _square(row, lo + 2), _square(row, lo + 3)
    r4, r5, r6, r7 = _square(row, lo + 4), _square(row, lo + 5), _square(row, lo + 6), _square(row, lo + 7)
    end = lo + n - n % 8
    for i in range(lo + 8, end, 8):
        r0 += _square(row, i)
        r1 += _square(row, i + 1)
        r2 += _square(row, i + 2)
        r3 += _square(row, i + 3)
        r4 += _square(row, i + 4)
        r5 += _square(row, i + 5)
        r6 += _square(row, i + 6)
        r7 += _square(row, i + 7)
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(end, lo + n):
        total += _square(row, i)
    return total


@jit()
def _pairwise_squares(row, lo, n):  # pragma: no cover - compiled
    """float32 sum of ``row[lo:lo+n] ** 2`` in numpy's order for ``add.reduce`` over a contiguous
    row: blocks of up to 128 terms (:func:`_block_squares`); a longer run splits in two at a
    multiple of 8, each half summed the same way, left + right. The split tree is walked with an
    explicit stack (numba's on-disk cache cannot reload a recursive function)."""
    if n <= PAIRWISE_BLOCK:
        return _block_squares(row, lo, n)
    starts = np.empty(64, dtype=np.int64)  # a split at least halves the run: depth < 64
    lengths = np.empty(64, dtype=np.int64)
    stages = np.empty(64, dtype=np.int64)  # 0: split next, 1: left summed, 2: right summed
    lefts = np.empty(64, dtype=np.float32)
    top = 0
    starts[0], lengths[0], stages[0] = lo, n, 0
    value = np.float32(0.0)
    while True:
        m = lengths[top]
        half = m // 2
        half -= half % 8
        if m <= PAIRWISE_BLOCK:
            value = _block_squares(row, starts[top], m)
        elif stages[top] == 0:
            stages[top] = 1
            starts[top + 1], lengths[top + 1], stages[top + 1] = starts[top], half, 0
            top += 1
            continue
        elif stages[top] == 1:
            lefts[top] = value
            stages[top] = 2
            starts[top + 1], lengths[top + 1], stages[top + 1] = starts[top] + half, m - half, 0
            top += 1
            continue
        else:
            value = lefts[top] + value
        if top == 0:
            return value
        top -= 1


@jit()
def _row_norm(row):  # pragma: no cover - compiled
    """``max(norm(row), 1e-12)`` in float32, the norm as ``np.linalg.norm`` computes it."""
    return max(np.sqrt(_pairwise_squares(row, 0, row.shape[0])), np.float32(1e-12))


@jit(parallel=True)
def _canonical_int8(vectors, values):  # pragma: no cover - compiled
    """values[i] = the int8 rounding of vectors[i] / max(norm(vectors[i]), 1e-12)."""
    limit = np.float32(127.0)
    for i in prange(vectors.shape[0]):
        norm = _row_norm(vectors[i])
        peak = np.float32(0.0)
        for t in range(vectors.shape[1]):
            peak = max(peak, abs(vectors[i, t] / norm))
        scale = peak / limit if peak > 0 else np.float32(1.0)
        for t in range(vectors.shape[1]):
            q = np.rint((vectors[i, t] / norm) / scale)
            values[i, t] = np.int8(min(max(q, -limit), limit))


@jit(parallel=True)
def _unit_rows_int8(values, rows):  # pragma: no cover - compiled
    """rows[i] = values[i] / max(norm(values[i]), 1e-12) in float32."""
    for i in prange(values.shape[0]):
        norm = _row_norm(values[i])
        for t in range(values.shape[1]):
            rows[i, t] = np.float32(values[i, t]) / norm


def canonical_int8(vectors: Float32Array) -> Int8Array:
    """The int8 values of ``quantize_int8(l2_normalize(vectors))`` (the canonical form's values),
    in one pass; the rows must be finite."""
    return _row_by_row(_canonical_int8, matrix_operand(vectors, np.float32), np.int8)


def unit_rows_int8(values: Int8Array) -> Float32Array:
    """int8 rows scaled to unit length, float32 (``codecs.int8.unit_rows``)."""
    return _row_by_row(_unit_rows_int8, matrix_operand(values, np.int8), np.float32)


def _row_by_row(kernel: Callable[[np.ndarray, np.ndarray], None], matrix: np.ndarray, dtype: type) -> np.ndarray:
    """``kernel(matrix, out)`` into a new array of ``matrix``'s shape and ``dtype``."""
    out: np.ndarray = np.empty(matrix.shape, dtype=dtype)
    if matrix.size:
        with PARALLEL_LOCK:
            kernel(matrix, out)
    return out


def quantize_int8(vectors: Float32Array) -> tuple[Int8Array, Float32Array]:
    """(int8 values (n, dim), float32 scales (n,)) with ``values * scales ~ vectors``, row by row;
    the rows must be finite (callers check input vectors first)."""
    vectors = matrix_operand(vectors, np.float32)
    values = np.empty(vectors.shape, dtype=np.int8)
    scales = np.empty(vectors.shape[0], dtype=np.float32)
    if vectors.size:
        with PARALLEL_LOCK:
            _quantize_int8(vectors, values, scales)
    return values, scales

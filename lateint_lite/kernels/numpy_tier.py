"""The search kernels in plain numpy: what a short-lived process runs instead of numba.

Loading numba and its cached machine code costs ~0.9 s per process before any work (import
0.3 s, CPU-target registries 0.4-0.5 s), and a first run compiles for ~10 s; a one-shot
``lateint search`` on a small index spends far less than that on the search itself. These
functions take the same arguments, run the same operand checks (``_checks``) and return
the same values as the numba kernels up to float32 summation order; tests/test_kernels.py
compares the two tiers (and both with tests/reference.py). Work is cut into blocks of at
most :data:`BLOCK_TOKENS` tokens, so memory stays bounded on any index.

Only the kernels a read needs have a numpy form; writes (k-means, residual encoding,
pooling, varint encoding) always run in numba (:mod:`lateint_lite.kernels`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..errors import CorruptIndexError
from ._checks import (
    cell_operands,
    centroid_operands,
    dot_operands,
    f32_operands,
    int8_operands,
    residual_operands,
    score_table,
    varint_rows,
    weights_operands,
)
from ._runtime import BoolArray, Float32Array, Int8Array, Int64Array, UInt8Array, UInt16Array

#: Tokens scored per block (a block holds its tokens' decoded vectors and query scores).
BLOCK_TOKENS = 16_384
#: A varint longer than this many bytes would overflow 63 bits.
MAX_VARINT_BYTES = 9


def bucket_lut(weights: Float32Array, nbits: int) -> Float32Array:
    """Lookup table (row_bytes, 256, 8 // nbits): the weights a packed byte decodes to."""
    weights = np.asarray(weights, dtype=np.float32)
    r = weights.shape[0]
    if nbits not in (1, 2, 4, 8) or weights.shape != (r, 1 << nbits) or (r * nbits) % 8:
        raise CorruptIndexError(f"bucket weights {weights.shape} do not fit {nbits}-bit packing")
    per_byte = 8 // nbits
    byte_values = np.arange(256)
    shifts = np.arange(per_byte) * nbits
    buckets = (byte_values[:, None] >> shifts) & ((1 << nbits) - 1)  # (256, per_byte)
    dims = np.arange(r).reshape(-1, per_byte)  # (row_bytes, per_byte)
    return np.ascontiguousarray(weights[dims[:, None, :], buckets[None, :, :]], dtype=np.float32)


def _blocks(offsets: Int64Array, positions: Int64Array) -> Iterator[tuple[slice, Int64Array, Int64Array]]:
    """(slice of ``positions``, their token rows, each document's first row within the block)
    for consecutive documents holding at most BLOCK_TOKENS tokens (or one longer document)."""
    lengths = offsets[positions + 1] - offsets[positions]
    ends = np.cumsum(lengths)
    first = 0
    while first < positions.size:
        done = ends[first - 1] if first else 0
        last = max(first + 1, int(np.searchsorted(ends, done + BLOCK_TOKENS, side="right")))
        block = lengths[first:last]
        starts = np.zeros(block.size, dtype=np.int64)
        np.cumsum(block[:-1], out=starts[1:])
        rows = np.repeat(offsets[positions[first:last]] - starts, block) + np.arange(int(block.sum()))
        yield slice(first, last), rows, starts
        first = last


def _best_per_document(sims_t: Float32Array, starts: Int64Array) -> Float32Array:
    """Sum over query tokens (rows) of each document's best column (columns starts[i]..starts[i+1]-1).

    Query tokens as rows: ``reduceat`` along contiguous rows, and ``np.take`` along axis 1 to
    gather, were 6x faster than gathering and reducing token rows (fancy indexing) here.
    """
    return np.maximum.reduceat(sims_t, starts, axis=1).sum(axis=0, dtype=np.float32)


def dot_matrix(a: Float32Array, b: Float32Array) -> Float32Array:
    """``a @ b.T`` in float32 (BLAS)."""
    a, b = dot_operands(a, b)
    return np.ascontiguousarray(a @ b.T, dtype=np.float32)


def maxsim_int8(
    query: Float32Array,
    values: Int8Array,
    scales: Float32Array,
    offsets: Int64Array,
    positions: Int64Array | None = None,
) -> Float32Array:
    """MaxSim of ``query`` against int8 documents (rows offsets[d]:offsets[d+1])."""
    query, scales, positions = int8_operands(query, values, scales, offsets, positions)
    out = np.empty(positions.size, dtype=np.float32)
    for part, rows, starts in _blocks(offsets, positions):
        tokens = np.take(values, rows, axis=0).astype(np.float32) * np.take(scales, rows)[:, None]
        out[part] = _best_per_document(query @ tokens.T, starts)
    return out


def maxsim_f32(
    query: Float32Array, vectors: Float32Array, offsets: Int64Array, positions: Int64Array | None = None
) -> Float32Array:
    """MaxSim of ``query`` against float32 documents laid out flat with offsets."""
    query, vectors, positions = f32_operands(query, vectors, offsets, positions)
    out = np.empty(positions.size, dtype=np.float32)
    for part, rows, starts in _blocks(offsets, positions):
        out[part] = _best_per_document(query @ np.take(vectors, rows, axis=0).T, starts)
    return out


#: numpy types as wide as the coordinates one packed byte decodes to, so one lookup fetches them all.
_BYTE_WIDE = {1: np.float32, 2: np.float64, 4: np.complex128}


def _lut_decode(packed: UInt8Array, lut: Float32Array) -> Float32Array:
    """Quantized residual coordinates (n, r) of packed rows, one table lookup per byte
    (``np.take`` of the byte's coordinates as one wide item: 3x faster than fancy indexing)."""
    row_bytes, _, per_byte = lut.shape
    n = packed.shape[0]
    flat = packed.astype(np.intp) + (np.arange(row_bytes, dtype=np.intp) * 256)
    wide = _BYTE_WIDE.get(per_byte)
    if wide is None:  # 1-bit codes: 8 coordinates per byte
        return np.take(lut.reshape(row_bytes * 256, per_byte), flat, axis=0).reshape(n, row_bytes * per_byte)
    table = np.ascontiguousarray(lut).reshape(row_bytes * 256 * per_byte).view(wide)
    return np.take(table, flat).view(np.float32).reshape(n, row_bytes * per_byte)


def decode_residuals(packed: UInt8Array, weights: Float32Array, nbits: int) -> Float32Array:
    """Quantized residual coordinates (n, r) of packed rows."""
    packed, weights = weights_operands(packed, weights, nbits)
    return _lut_decode(packed, bucket_lut(weights, nbits))


def maxsim_residual(
    q_basis: Float32Array,
    scores_t: Float32Array,
    codes: UInt16Array,
    packed: UInt8Array,
    lut: Float32Array,
    centroid_basis: Float32Array,
    centroid_norm2: Float32Array,
    offsets: Int64Array,
    positions: Int64Array | None = None,
    *,
    trusted: bool = False,
) -> Float32Array:
    """Exact MaxSim over residual-coded documents: a token is v = C[c] + B w, so
    q.v = S[q, c] + (qB).w and |v|^2 = |C[c]|^2 + 2 (C[c]B).w + |w|^2 (renormalized)."""
    q_basis, scores_t, codes, packed, lut, centroid_basis, centroid_norm2, offsets, positions = residual_operands(
        q_basis, scores_t, codes, packed, lut, centroid_basis, centroid_norm2, offsets, positions, trusted
    )
    out = np.empty(positions.size, dtype=np.float32)
    scores = np.ascontiguousarray(scores_t.T)  # (nq, K)
    for part, rows, starts in _blocks(offsets, positions):
        cent = np.take(codes, rows).astype(np.intp)
        w = _lut_decode(np.take(packed, rows, axis=0), lut)
        cross = np.einsum("ij,ij->i", np.take(centroid_basis, cent, axis=0), w)
        norm2 = np.take(centroid_norm2, cent) + 2.0 * cross + np.einsum("ij,ij->i", w, w)
        inv_norm = (1.0 / np.sqrt(np.maximum(norm2, np.float32(1e-12)))).astype(np.float32)
        sims_t = (q_basis @ w.T + np.take(scores, cent, axis=1)) * inv_norm
        out[part] = _best_per_document(sims_t, starts)
    return out


def centroid_best(scores_t: Float32Array) -> Float32Array:
    """Each centroid's best score over the query tokens."""
    return score_table(scores_t).max(axis=1)


def select_cells(scores_t: Float32Array, ncells: int, threshold: float) -> tuple[Int64Array, BoolArray]:
    """(sorted unique ids of each query token's ``ncells`` best centroids, keep mask of
    centroids scoring >= threshold for some query token). Among equal scores the lower
    centroid id is taken, as the numba kernel does."""
    scores_t = np.ascontiguousarray(scores_t, dtype=np.float32)
    ncells = max(1, min(int(ncells), scores_t.shape[0]))
    keep = (scores_t >= np.float32(threshold)).any(axis=1)
    by_token = scores_t.T  # (nq, K)
    kth = -np.partition(-by_token, ncells - 1, axis=1)[:, ncells - 1 : ncells]
    above = by_token > kth
    tied = by_token == kth
    wanted = ncells - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= wanted))
    return np.flatnonzero(chosen.any(axis=0)).astype(np.int64), keep


def gather_candidates(cells: Int64Array, ivf_offsets: Int64Array, ivf_positions: Int64Array, n_docs: int) -> Int64Array:
    """Sorted unique document positions in the inverted lists of ``cells``."""
    cells = cell_operands(cells, ivf_offsets)
    mark = np.zeros(n_docs, dtype=np.bool_)
    for c in cells:
        mark[ivf_positions[ivf_offsets[c] : ivf_offsets[c + 1]]] = True
    return np.flatnonzero(mark).astype(np.int64)


def centroid_maxsim(
    scores_t: Float32Array,
    codes: UInt16Array,
    offsets: Int64Array,
    positions: Int64Array,
    keep: BoolArray | None = None,
    *,
    trusted: bool = False,
) -> Float32Array:
    """Centroid-only MaxSim of documents at ``positions``; ``keep`` prunes centroids (a pruned
    token scores nothing; every query token contributes at least 0)."""
    scores_t, codes, offsets, positions, keep = centroid_operands(scores_t, codes, offsets, positions, keep, trusted)
    scores = np.maximum(np.ascontiguousarray(scores_t.T), np.float32(0.0))  # (nq, K)
    pruning = not keep.all()
    out = np.empty(positions.size, dtype=np.float32)
    for part, rows, starts in _blocks(offsets, positions):
        cent = np.take(codes, rows).astype(np.intp)
        if pruning:  # only tokens of kept centroids count: gather those alone
            out[part] = _best_of_kept_tokens(scores, cent, np.take(keep, cent), starts)
        else:
            out[part] = _best_per_document(np.take(scores, cent, axis=1), starts)
    return out


def _best_of_kept_tokens(scores: Float32Array, cent: Int64Array, kept: BoolArray, starts: Int64Array) -> Float32Array:
    """Centroid MaxSim from the tokens whose centroid is kept; a document with none scores 0."""
    before = np.zeros(kept.size + 1, dtype=np.int64)
    np.cumsum(kept, out=before[1:])
    kept_starts = before[starts]
    counts = np.diff(np.append(kept_starts, before[-1]))
    out = np.zeros(starts.size, dtype=np.float32)
    if before[-1]:
        out[counts > 0] = _best_per_document(np.take(scores, cent[kept], axis=1), kept_starts[counts > 0])
    return out


def varint_decode_lists(blobs: list[bytes], max_value: int) -> tuple[Int64Array, Int64Array]:
    """CSR (offsets, values) of many varint-coded rows (count, then gaps); CorruptIndexError on
    any damage: a truncated or overlong varint, trailing bytes, a zero gap, a value out of range."""
    data, row_offsets = varint_rows(blobs)
    decoded = _varint_decode(data, row_offsets, max_value)
    if decoded is None:
        raise CorruptIndexError("an inverted list is damaged (truncated, unsorted or out of range)")
    return decoded


def _varint_decode(data: UInt8Array, row_offsets: Int64Array, max_value: int) -> tuple[Int64Array, Int64Array] | None:
    """(offsets, values), or None when the bytes are not well-formed rows."""
    n_rows = row_offsets.size - 1
    if n_rows == 0:
        return np.zeros(1, dtype=np.int64), np.empty(0, dtype=np.int64)
    row_starts, row_ends = row_offsets[:-1], row_offsets[1:]
    if (row_ends <= row_starts).any() or (data[row_ends - 1] >= 0x80).any():
        return None  # an empty row, or a varint running past the end of its row
    ends = np.flatnonzero(data < 0x80)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    if (lengths > MAX_VARINT_BYTES).any():
        return None
    shifts = 7 * (np.arange(data.size, dtype=np.int64) - np.repeat(starts, lengths))
    numbers = np.add.reduceat((data & 0x7F).astype(np.int64) << shifts, starts)
    if (numbers < 0).any():
        return None
    first = np.searchsorted(starts, row_starts)  # every row starts a varint: rows end on one
    counts = numbers[first]
    if (counts != np.diff(np.append(first, starts.size)) - 1).any():
        return None  # truncated, or trailing bytes
    offsets = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    is_gap = np.ones(starts.size, dtype=np.bool_)
    is_gap[first] = False
    gaps = numbers[is_gap]
    row_of_gap = np.repeat(np.arange(n_rows), counts)
    later_in_row = np.ones(gaps.size, dtype=np.bool_)
    later_in_row[offsets[:-1][counts > 0]] = False
    if (gaps[later_in_row] == 0).any():
        return None
    totals = np.cumsum(gaps)
    before_row = np.concatenate([[0], totals])[offsets[:-1]]
    values = totals - before_row[row_of_gap]
    if values.size and (values.min() < 0 or values.max() > max_value or (np.diff(values)[later_in_row[1:]] <= 0).any()):
        return None
    return offsets, values

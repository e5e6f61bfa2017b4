"""The residual codec's kernels: bucket encoding, decoding, and exact MaxSim over codes + packed residuals."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import prange

from ..errors import InvalidInputError
from ._checks import check_codes, residual_operands, weights_operands
from ._runtime import PARALLEL_LOCK, Float32Array, Int64Array, UInt8Array, UInt16Array, in_threads, jit
from ._tiles import _dot4x2

#: Tokens per BLAS projection of residuals onto the basis (two float32 copies: 12 MiB at dim 384).
PROJECT_BLOCK = 4096
#: Tokens per work item of the parallel residual encoder (its scratch row is reused).
ENCODE_BLOCK = 256


@jit(inline="always")
def _bucket(value, cutoffs, j):  # pragma: no cover - compiled
    """How many of row j's ascending cutoffs lie below ``value``, counted without branches
    (a binary search measured 3x slower at the default 3 cutoffs: it does not pipeline)."""
    below = 0
    for q in range(cutoffs.shape[1]):
        below += cutoffs[j, q] < value
    return below


@jit(inline="always")
def _pack_values(value, cutoffs, nbits, out, row):  # pragma: no cover - compiled
    """out[row] = the bucket indices of one token's residual values, nbits each; value j sits
    in byte j*nbits // 8 at bit (j*nbits) % 8. Each byte is assembled in a register."""
    per_byte = 8 // nbits
    for byte in range(out.shape[1]):
        packed = 0
        for s in range(per_byte):
            j = byte * per_byte + s
            packed |= _bucket(value[j], cutoffs, j) << (s * nbits)
        out[row, byte] = packed


@jit(parallel=True, fastmath=True)
def _encode_residuals(vectors, codes, centroids, cutoffs, nbits):  # pragma: no cover - compiled
    """Packed bucket indices of v - centroid for every token (no projection: r = dim)."""
    n, dim = vectors.shape
    out = np.empty((n, dim * nbits // 8), dtype=np.uint8)
    for blk in prange((n + ENCODE_BLOCK - 1) // ENCODE_BLOCK):
        value = np.empty(dim, dtype=np.float32)
        for i in range(blk * ENCODE_BLOCK, min(n, (blk + 1) * ENCODE_BLOCK)):
            c = codes[i]
            for t in range(dim):
                value[t] = vectors[i, t] - centroids[c, t]
            _pack_values(value, cutoffs, nbits, out, i)
    return out


@jit(nogil=True)
def _pack_buckets(values, cutoffs, nbits, out):  # pragma: no cover - compiled
    """out[i] = packed bucket indices of row i of ``values`` (already projected), serially."""
    for i in range(values.shape[0]):
        _pack_values(values[i], cutoffs, nbits, out, i)


@jit(inline="always")
def _unpack_row(packed, row, r, nbits, weights, dest):  # pragma: no cover - compiled
    """dest[j] = weights[j, bucket of value j] for one packed token row."""
    mask = (1 << nbits) - 1
    for j in range(r):
        bit = j * nbits
        bucket = (packed[row, bit // 8] >> (bit % 8)) & mask
        dest[j] = weights[j, bucket]


@jit(parallel=True)
def _decode_residuals(packed, weights, nbits):  # pragma: no cover - compiled
    """Quantized residual coordinates (n, r) from packed bucket indices."""
    n = packed.shape[0]
    r = weights.shape[0]
    out = np.empty((n, r), dtype=np.float32)
    for i in prange(n):
        _unpack_row(packed, i, r, nbits, weights, out[i])
    return out


@jit(inline="always")
def _lut_row(packed, row, lut, dest):  # pragma: no cover - compiled
    """dest = quantized residual coordinates of one packed row, one table lookup per byte."""
    per_byte = lut.shape[2]
    for b in range(lut.shape[0]):
        value = packed[row, b]
        for s in range(per_byte):
            dest[b * per_byte + s] = lut[b, value, s]


@jit(fastmath=True)
def _residual_doc_maxsim(
    q_basis, scores_t, codes, packed, lut, centroid_basis, centroid_norm2, start, n
):  # pragma: no cover - compiled
    """Exact MaxSim of one document (tokens start..start+n-1) over decoded, renormalized
    residual-coded tokens, without decoding to dim.

    A token decodes to v = C[c] + B w (w: quantized residual coordinates, B
    orthonormal), so q.v = S[q, c] + (qB).w and |v|^2 = |C[c]|^2 + 2 (C[c]B).w + |w|^2.
    ``scores_t`` is S transposed (K, nq); ``q_basis`` is qB (nq, r). A plain function called
    from the parallel loop, not inlined: parfor analysis of this body cost 2.5 s of the
    kernel's first compile and bought nothing (docs/ARCHITECTURE.md, "First run").
    """
    nq, r = q_basis.shape
    rows = n + n % 2
    tile = np.empty((rows, r), dtype=np.float32)  # np.empty, not np.zeros: no fill parfor
    inv_norm = np.empty(rows, dtype=np.float32)
    cent = np.empty(rows, dtype=np.int64)
    for j in range(r):
        tile[rows - 1, j] = np.float32(0.0)  # the padding row of an odd-length document
    inv_norm[rows - 1] = np.float32(0.0)
    for t in range(n):
        c = np.int64(codes[start + t])
        cent[t] = c
        _lut_row(packed, start + t, lut, tile[t])
        cross = np.float32(0.0)
        sq = np.float32(0.0)
        for j in range(r):
            w = tile[t, j]
            cross += centroid_basis[c, j] * w
            sq += w * w
        norm2 = centroid_norm2[c] + 2.0 * cross + sq
        inv_norm[t] = 1.0 / np.sqrt(max(norm2, np.float32(1e-12)))
    cent[rows - 1] = cent[n - 1]
    total = np.float32(0.0)
    full = nq - nq % 4
    for i0 in range(0, full, 4):
        b0 = np.float32(-np.inf)
        b1 = np.float32(-np.inf)
        b2 = np.float32(-np.inf)
        b3 = np.float32(-np.inf)
        for t in range(0, rows, 2):
            c00, c01, c10, c11, c20, c21, c30, c31 = _dot4x2(q_basis, i0, tile, t, r)
            ca = cent[t]
            cb = cent[t + 1]
            na = inv_norm[t]
            nb = inv_norm[t + 1]
            b0 = max(b0, (c00 + scores_t[ca, i0]) * na)
            b1 = max(b1, (c10 + scores_t[ca, i0 + 1]) * na)
            b2 = max(b2, (c20 + scores_t[ca, i0 + 2]) * na)
            b3 = max(b3, (c30 + scores_t[ca, i0 + 3]) * na)
            if t + 1 < n:
                b0 = max(b0, (c01 + scores_t[cb, i0]) * nb)
                b1 = max(b1, (c11 + scores_t[cb, i0 + 1]) * nb)
                b2 = max(b2, (c21 + scores_t[cb, i0 + 2]) * nb)
                b3 = max(b3, (c31 + scores_t[cb, i0 + 3]) * nb)
        total += b0 + b1 + b2 + b3
    for i in range(full, nq):
        b = np.float32(-np.inf)
        for t in range(n):
            acc = np.float32(0.0)
            for j in range(r):
                acc += q_basis[i, j] * tile[t, j]
            b = max(b, (acc + scores_t[cent[t], i]) * inv_norm[t])
        total += b
    return total


@jit(parallel=True, fastmath=True)
def _maxsim_residual(
    q_basis, scores_t, codes, packed, lut, centroid_basis, centroid_norm2, offsets, positions
):  # pragma: no cover - compiled
    """:func:`_residual_doc_maxsim` of every document at ``positions``, in parallel."""
    out = np.empty(positions.shape[0], dtype=np.float32)
    for p in prange(positions.shape[0]):
        doc = positions[p]
        start = offsets[doc]
        out[p] = _residual_doc_maxsim(
            q_basis, scores_t, codes, packed, lut, centroid_basis, centroid_norm2, start, offsets[doc + 1] - start
        )
    return out


def encode_residuals(
    vectors: Float32Array,
    codes: npt.NDArray[np.integer],
    centroids: Float32Array,
    basis: Float32Array | None,
    cutoffs: Float32Array,
    nbits: int,
) -> UInt8Array:
    """Packed bucket indices (n, r*nbits/8) of each vector's residual to its centroid."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    codes = check_codes(codes, centroids.shape[0]).astype(np.int64)
    dim = vectors.shape[1]
    projection = None if basis is None else np.ascontiguousarray(basis, dtype=np.float32)
    r = dim if projection is None else projection.shape[1]
    if (
        centroids.shape[1] != dim
        or codes.shape != (vectors.shape[0],)
        or (projection is not None and projection.shape[0] != dim)
    ):
        raise InvalidInputError("vectors, codes, centroids and basis do not match")
    if cutoffs.shape != (r, (1 << nbits) - 1) or nbits not in (1, 2, 4, 8) or (r * nbits) % 8:
        raise InvalidInputError(f"cutoffs {cutoffs.shape} do not fit {r} values x {nbits} bits")
    cutoffs = np.ascontiguousarray(cutoffs, np.float32)
    if projection is None:
        with PARALLEL_LOCK:
            return _encode_residuals(vectors, codes, centroids, cutoffs, nbits)
    out = np.empty((vectors.shape[0], r * nbits // 8), dtype=np.uint8)

    def block(lo: int, hi: int) -> None:
        residual = vectors[lo:hi] - centroids[codes[lo:hi]]
        _pack_buckets(np.ascontiguousarray(residual @ projection), cutoffs, nbits, out[lo:hi])

    in_threads(block, vectors.shape[0], PROJECT_BLOCK)
    return out


def decode_residuals(packed: UInt8Array, weights: Float32Array, nbits: int) -> Float32Array:
    """Quantized residual coordinates (n, r) of packed rows."""
    packed, weights = weights_operands(packed, weights, nbits)
    with PARALLEL_LOCK:
        return _decode_residuals(packed, weights, nbits)


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
    """Exact MaxSim of a query against residual-coded documents (see ``_maxsim_residual``).

    ``lut`` comes from :func:`bucket_lut`. ``trusted=True`` skips the O(tokens)
    code and offset checks for arrays the caller validated when it loaded them.
    """
    operands = residual_operands(
        q_basis, scores_t, codes, packed, lut, centroid_basis, centroid_norm2, offsets, positions, trusted
    )
    with PARALLEL_LOCK:
        return _maxsim_residual(*operands)

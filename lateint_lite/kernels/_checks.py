"""Argument checks shared by the kernel wrappers: kernels do no bounds checks of their own,
so everything that indexes memory is validated here first (arrays read from a file included).
"""

from __future__ import annotations

import numpy as np

from ..errors import CorruptIndexError, InvalidInputError


def check_offsets(offsets: np.ndarray, n_rows: int) -> None:
    """Offsets must start at 0, never decrease, have non-empty spans and end at n_rows."""
    if offsets.ndim != 1 or offsets.size < 1 or offsets.dtype != np.int64:
        raise CorruptIndexError("offsets must be a 1-d int64 array")
    if offsets[0] != 0 or offsets[-1] != n_rows or (np.diff(offsets) <= 0).any():
        raise CorruptIndexError("offsets are not a strictly increasing 0..n_rows partition")


def check_offsets_loose(offsets: np.ndarray, n_rows: int) -> None:
    """Offsets start at 0, never decrease (empty rows allowed) and end at n_rows."""
    if (
        offsets.ndim != 1
        or offsets.size < 1
        or offsets[0] != 0
        or offsets[-1] != n_rows
        or (np.diff(offsets) < 0).any()
    ):
        raise InvalidInputError("offsets are not a non-decreasing 0..n partition")


def check_query(query: np.ndarray, dim: int) -> np.ndarray:
    query = np.ascontiguousarray(query, dtype=np.float32)
    if query.ndim != 2 or query.shape[1] != dim or query.shape[0] == 0:
        raise InvalidInputError(f"query must be a non-empty (n, {dim}) matrix, got shape {query.shape}")
    return query


def check_positions(positions: np.ndarray | None, n_docs: int) -> np.ndarray:
    if positions is None:
        return np.arange(n_docs, dtype=np.int64)
    positions = np.ascontiguousarray(positions, dtype=np.int64)
    if positions.ndim != 1 or (positions.size and (positions.min() < 0 or positions.max() >= n_docs)):
        raise InvalidInputError("document positions out of range")
    return positions


def check_codes(codes: np.ndarray, n_centroids: int) -> np.ndarray:
    codes = np.ascontiguousarray(codes)
    if codes.ndim != 1 or codes.dtype.kind not in "iu":
        raise CorruptIndexError("centroid codes must be a 1-d integer array")
    if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= n_centroids):
        raise CorruptIndexError(f"centroid code out of range (codebook has {n_centroids} centroids)")
    return codes


def check_packed(packed: np.ndarray, n_tokens: int, r: int, nbits: int) -> np.ndarray:
    if nbits not in (1, 2, 4, 8) or (r * nbits) % 8:
        raise CorruptIndexError(f"unsupported residual layout: {r} values x {nbits} bits")
    if packed.dtype != np.uint8 or packed.shape != (n_tokens, r * nbits // 8):
        raise CorruptIndexError(f"packed residuals have shape {packed.shape}, expected ({n_tokens}, {r * nbits // 8})")
    return np.ascontiguousarray(packed)


# Operand checks of whole kernels: the numba wrappers and the numpy tier call the same ones,
# so both tiers refuse exactly the same inputs.


def dot_operands(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous float32 ``a`` (m, d) and ``b`` (n, d) for ``a @ b.T``."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise InvalidInputError(f"shapes {a.shape} and {b.shape} do not match")
    return a, b


def matrix_operand(array: np.ndarray, dtype: type) -> np.ndarray:
    """A contiguous 2-d array of ``dtype`` (rows x dims)."""
    array = np.ascontiguousarray(array, dtype=dtype)
    if array.ndim != 2:
        raise InvalidInputError(f"expected an (n, dim) matrix, got shape {array.shape}")
    return array


def score_table(scores_t: np.ndarray) -> np.ndarray:
    """Contiguous float32 centroid scores (centroids, query tokens >= 1)."""
    scores_t = np.ascontiguousarray(scores_t, dtype=np.float32)
    if scores_t.ndim != 2 or scores_t.shape[1] == 0:
        raise InvalidInputError(f"expected a (centroids, query tokens >= 1) matrix, got shape {scores_t.shape}")
    return scores_t


def int8_operands(
    query: np.ndarray, values: np.ndarray, scales: np.ndarray, offsets: np.ndarray, positions: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query, float32 scales, positions) of a MaxSim over int8 documents."""
    if values.dtype != np.int8 or values.ndim != 2 or scales.shape != (values.shape[0],):
        raise CorruptIndexError("int8 token matrix and scales do not match")
    check_offsets(offsets, values.shape[0])
    query = check_query(query, values.shape[1])
    return query, scales.astype(np.float32, copy=False), check_positions(positions, offsets.size - 1)


def f32_operands(
    query: np.ndarray, vectors: np.ndarray, offsets: np.ndarray, positions: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query, contiguous float32 vectors, positions) of a MaxSim over float32 documents."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise InvalidInputError("document vectors must be a 2-d matrix")
    check_offsets(offsets, vectors.shape[0])
    return check_query(query, vectors.shape[1]), vectors, check_positions(positions, offsets.size - 1)


def weights_operands(packed: np.ndarray, weights: np.ndarray, nbits: int) -> tuple[np.ndarray, np.ndarray]:
    """(packed, float32 weights) of a residual decode."""
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    r = weights.shape[0]
    if weights.shape != (r, 1 << nbits):
        raise CorruptIndexError(f"bucket weights have shape {weights.shape}, expected ({r}, {1 << nbits})")
    return check_packed(packed, packed.shape[0], r, nbits), weights


def residual_operands(
    q_basis: np.ndarray,
    scores_t: np.ndarray,
    codes: np.ndarray,
    packed: np.ndarray,
    lut: np.ndarray,
    centroid_basis: np.ndarray,
    centroid_norm2: np.ndarray,
    offsets: np.ndarray,
    positions: np.ndarray | None,
    trusted: bool,
) -> tuple[np.ndarray, ...]:
    """Every operand of a residual MaxSim, checked and contiguous, in argument order.

    ``trusted=True`` skips the O(tokens) code and offset checks for arrays the caller
    validated when it loaded them.
    """
    n_centroids = scores_t.shape[0]
    row_bytes, _, per_byte = lut.shape
    r = row_bytes * per_byte
    if q_basis.shape[1] != r or scores_t.shape[1] != q_basis.shape[0] or q_basis.shape[0] == 0:
        raise InvalidInputError("query projections do not match the codec")
    if centroid_basis.shape != (n_centroids, r) or centroid_norm2.shape != (n_centroids,):
        raise CorruptIndexError("centroid tables do not match the codec")
    if lut.shape[1] != 256 or per_byte not in (1, 2, 4, 8):
        raise CorruptIndexError("bucket lookup table has the wrong shape")
    if not trusted:
        codes = check_codes(codes, n_centroids)
        packed = check_packed(packed, codes.shape[0], r, 8 // per_byte)
        check_offsets(offsets, codes.shape[0])
    return (
        np.ascontiguousarray(q_basis, np.float32),
        np.ascontiguousarray(scores_t, np.float32),
        codes,
        packed,
        lut,
        np.ascontiguousarray(centroid_basis, np.float32),
        np.ascontiguousarray(centroid_norm2, np.float32),
        offsets,
        check_positions(positions, offsets.size - 1),
    )


def centroid_operands(
    scores_t: np.ndarray,
    codes: np.ndarray,
    offsets: np.ndarray,
    positions: np.ndarray,
    keep: np.ndarray | None,
    trusted: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(scores_t, codes, offsets, positions, keep) of a centroid-only MaxSim, checked."""
    n_centroids = scores_t.shape[0]
    if keep is None:
        keep = np.ones(n_centroids, dtype=np.bool_)
    if keep.shape != (n_centroids,) or keep.dtype != np.bool_:
        raise InvalidInputError("keep must be a boolean mask over centroids")
    if not trusted:
        codes = check_codes(codes, n_centroids)
        check_offsets(offsets, codes.shape[0])
    positions = check_positions(positions, offsets.size - 1)
    return np.ascontiguousarray(scores_t, np.float32), codes, offsets, positions, keep


def cell_operands(cells: np.ndarray, ivf_offsets: np.ndarray) -> np.ndarray:
    """int64 cell ids, each naming one inverted list."""
    cells = np.ascontiguousarray(cells, dtype=np.int64)
    if cells.size and (cells.min() < 0 or cells.max() >= ivf_offsets.size - 1):
        raise InvalidInputError("cell ids out of range")
    return cells


def varint_rows(blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """(concatenated bytes, row offsets) of varint-coded rows."""
    lengths = np.fromiter((len(b) for b in blobs), dtype=np.int64, count=len(blobs))
    row_offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=row_offsets[1:])
    return np.frombuffer(b"".join(blobs), dtype=np.uint8), row_offsets

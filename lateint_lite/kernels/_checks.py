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

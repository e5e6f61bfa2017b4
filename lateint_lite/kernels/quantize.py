"""Per-token int8 quantization: the rounding every build starts from (``codecs.canonical``)."""

from __future__ import annotations

import numpy as np
from numba import prange

from ..errors import InvalidInputError
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


def quantize_int8(vectors: Float32Array) -> tuple[Int8Array, Float32Array]:
    """(int8 values (n, dim), float32 scales (n,)) with ``values * scales ~ vectors``, row by row;
    the rows must be finite (callers check input vectors first)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise InvalidInputError(f"expected an (n, dim) matrix, got shape {vectors.shape}")
    values = np.empty(vectors.shape, dtype=np.int8)
    scales = np.empty(vectors.shape[0], dtype=np.float32)
    if vectors.size:
        with PARALLEL_LOCK:
            _quantize_int8(vectors, values, scales)
    return values, scales

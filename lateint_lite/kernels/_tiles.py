"""Register-tiled dot-product building blocks shared by the MaxSim and PLAID kernels (k-means
assigns with BLAS, see kernels.kmeans).

Inlined into their callers by numba; nothing here is called from Python.
"""

from __future__ import annotations

import numpy as np

from ._runtime import jit


@jit(fastmath=True, inline="always")
def _dot4x2(a, i0, b, j0, dim):  # pragma: no cover - compiled
    """Dot products of rows i0..i0+3 of a with rows j0, j0+1 of b (8 values)."""
    c00 = np.float32(0.0)
    c01 = np.float32(0.0)
    c10 = np.float32(0.0)
    c11 = np.float32(0.0)
    c20 = np.float32(0.0)
    c21 = np.float32(0.0)
    c30 = np.float32(0.0)
    c31 = np.float32(0.0)
    for k in range(dim):
        x0 = b[j0, k]
        x1 = b[j0 + 1, k]
        q = a[i0, k]
        c00 += q * x0
        c01 += q * x1
        q = a[i0 + 1, k]
        c10 += q * x0
        c11 += q * x1
        q = a[i0 + 2, k]
        c20 += q * x0
        c21 += q * x1
        q = a[i0 + 3, k]
        c30 += q * x0
        c31 += q * x1
    return c00, c01, c10, c11, c20, c21, c30, c31


@jit(fastmath=True, inline="always")
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
            c00, c01, c10, c11, c20, c21, c30, c31 = _dot4x2(query, i0, tile, t, dim)
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

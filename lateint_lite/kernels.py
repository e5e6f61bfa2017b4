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


@njit(fastmath=True, cache=True, inline="always")
def _best_in_range(tile, centroids, lo, hi, b0, b1, b2, b3, a0, a1, a2, a3):  # pragma: no cover - compiled
    """Improve (best score, argmax) of the 4 rows of ``tile`` over centroids lo..hi-1."""
    dim = tile.shape[1]
    pairs_end = hi - (hi - lo) % 2
    for j in range(lo, pairs_end, 2):
        c00, c01, c10, c11, c20, c21, c30, c31 = _dot4x2(tile, 0, centroids, j, dim)
        if c00 > b0:
            b0, a0 = c00, j
        if c01 > b0:
            b0, a0 = c01, j + 1
        if c10 > b1:
            b1, a1 = c10, j
        if c11 > b1:
            b1, a1 = c11, j + 1
        if c20 > b2:
            b2, a2 = c20, j
        if c21 > b2:
            b2, a2 = c21, j + 1
        if c30 > b3:
            b3, a3 = c30, j
        if c31 > b3:
            b3, a3 = c31, j + 1
    if pairs_end < hi:
        last = hi - 1
        d0 = np.float32(0.0)
        d1 = np.float32(0.0)
        d2 = np.float32(0.0)
        d3 = np.float32(0.0)
        for t in range(dim):
            x = centroids[last, t]
            d0 += tile[0, t] * x
            d1 += tile[1, t] * x
            d2 += tile[2, t] * x
            d3 += tile[3, t] * x
        if d0 > b0:
            b0, a0 = d0, last
        if d1 > b1:
            b1, a1 = d1, last
        if d2 > b2:
            b2, a2 = d2, last
        if d3 > b3:
            b3, a3 = d3, last
    return b0, b1, b2, b3, a0, a1, a2, a3


@njit(parallel=True, fastmath=True, cache=True)
def _nearest_rows(points, centroids):  # pragma: no cover - compiled
    """For each point, the centroid with the largest dot product and that dot product."""
    n, dim = points.shape
    k = centroids.shape[0]
    codes = np.empty(n, dtype=np.int64)
    best = np.empty(n, dtype=np.float32)
    n_blocks = (n + 3) // 4
    for blk in prange(n_blocks):
        tile = np.empty((4, dim), dtype=np.float32)
        for r in range(4):
            src = min(blk * 4 + r, n - 1)
            for t in range(dim):
                tile[r, t] = points[src, t]
        ninf = np.float32(-np.inf)
        zero = np.int64(0)
        b0, b1, b2, b3, a0, a1, a2, a3 = _best_in_range(
            tile, centroids, 0, k, ninf, ninf, ninf, ninf, zero, zero, zero, zero
        )
        scores = np.array([b0, b1, b2, b3], dtype=np.float32)
        args = np.array([a0, a1, a2, a3], dtype=np.int64)
        for r in range(4):
            i = blk * 4 + r
            if i < n:
                best[i] = scores[r]
                codes[i] = args[r]
    return codes, best


@njit(parallel=True, fastmath=True, cache=True)
def _dot_matrix(a, b):  # pragma: no cover - compiled
    """a @ b.T for float32 row-major matrices, parallel over blocks of 4 rows of ``a``.

    Meant for a tall ``a`` (centroids) and a short ``b`` (query tokens).
    """
    n, dim = a.shape
    m = b.shape[0]
    out = np.empty((n, m), dtype=np.float32)
    b_pad = np.zeros((m + m % 2, dim), dtype=np.float32)
    b_pad[:m] = b
    full = n - n % 4
    for blk in prange(full // 4):
        i = blk * 4
        for j in range(0, m, 2):
            c00, c01, c10, c11, c20, c21, c30, c31 = _dot4x2(a, i, b_pad, j, dim)
            out[i, j] = c00
            out[i + 1, j] = c10
            out[i + 2, j] = c20
            out[i + 3, j] = c30
            if j + 1 < m:
                out[i, j + 1] = c01
                out[i + 1, j + 1] = c11
                out[i + 2, j + 1] = c21
                out[i + 3, j + 1] = c31
    for i in range(full, n):
        for j in range(m):
            acc = np.float32(0.0)
            for t in range(dim):
                acc += a[i, t] * b[j, t]
            out[i, j] = acc
    return out


@njit(cache=True)
def _select_cells(scores_t, ncells, threshold):  # pragma: no cover - compiled
    """One pass over S^T (K, nq): each query token's ``ncells`` best centroids, and
    which centroids reach ``threshold`` for some query token."""
    k, nq = scores_t.shape
    top_score = np.full((nq, ncells), -np.inf, dtype=np.float32)
    top_cell = np.full((nq, ncells), -1, dtype=np.int64)
    keep = np.zeros(k, dtype=np.bool_)
    for c in range(k):
        for i in range(nq):
            v = scores_t[c, i]
            if v >= threshold:
                keep[c] = True
            if v > top_score[i, ncells - 1]:
                slot = ncells - 1
                while slot > 0 and top_score[i, slot - 1] < v:
                    top_score[i, slot] = top_score[i, slot - 1]
                    top_cell[i, slot] = top_cell[i, slot - 1]
                    slot -= 1
                top_score[i, slot] = v
                top_cell[i, slot] = c
    return top_cell, keep


@njit(parallel=True, fastmath=True, cache=True)
def _potential_with(points, center, dist):  # pragma: no cover - compiled
    """Sum over points of min(dist[i], squared distance to ``center``)."""
    total = 0.0
    for i in prange(points.shape[0]):
        acc = np.float32(0.0)
        for t in range(points.shape[1]):
            acc += points[i, t] * center[t]
        d = max(np.float32(2.0) - np.float32(2.0) * acc, np.float32(0.0))
        total += min(d, dist[i])
    return total


@njit(parallel=True, fastmath=True, cache=True)
def _closer(points, center, dist):  # pragma: no cover - compiled
    """dist[i] = min(dist[i], squared distance of unit point i to ``center``)."""
    for i in prange(points.shape[0]):
        acc = np.float32(0.0)
        for t in range(points.shape[1]):
            acc += points[i, t] * center[t]
        d = max(np.float32(2.0) - np.float32(2.0) * acc, np.float32(0.0))
        if d < dist[i]:
            dist[i] = d


@njit(cache=True)
def _sample_index(dist, u):  # pragma: no cover - compiled
    """Index drawn with probability proportional to dist, for a uniform draw u."""
    n = dist.shape[0]
    total = 0.0
    for i in range(n):
        total += dist[i]
    if total <= 0.0:
        return min(int(u * n), n - 1)
    target = u * total
    running = 0.0
    for i in range(n):
        running += dist[i]
        if running > target:
            return i
    return n - 1


@njit(cache=True)
def _kmeanspp(points, k, uniforms):  # pragma: no cover - compiled
    """Greedy k-means++ seeding: D^2-sample ``trials`` candidates per seed and keep the
    one that lowers the total potential most (as scikit-learn does). ``uniforms`` is
    (k, trials) draws in [0, 1); row 0 column 0 picks the first seed uniformly."""
    n = points.shape[0]
    trials = uniforms.shape[1]
    chosen = np.empty(k, dtype=np.int64)
    chosen[0] = min(int(uniforms[0, 0] * n), n - 1)
    dist = np.full(n, np.float32(np.inf), dtype=np.float32)
    _closer(points, points[chosen[0]], dist)
    for j in range(1, k):
        best_potential = np.inf
        best = 0
        for trial in range(trials):
            candidate = _sample_index(dist, uniforms[j, trial])
            potential = _potential_with(points, points[candidate], dist)
            if potential < best_potential:
                best_potential = potential
                best = candidate
        chosen[j] = best
        _closer(points, points[best], dist)
    return chosen


@njit(cache=True)
def _centroid_sums(points, codes, k):  # pragma: no cover - compiled
    """Per-centroid sums of assigned points and their counts."""
    dim = points.shape[1]
    sums = np.zeros((k, dim), dtype=np.float64)
    counts = np.zeros(k, dtype=np.int64)
    for i in range(points.shape[0]):
        c = codes[i]
        counts[c] += 1
        for t in range(dim):
            sums[c, t] += points[i, t]
    return sums, counts


@njit(parallel=True, fastmath=True, cache=True)
def _assign_in_group_order(points, order, starts, fine, group_offsets, best, arg):  # pragma: no cover
    """Improve best/arg of points grouped by coarse cell: ``order[starts[g]:starts[g+1]]``
    are the points to compare with the fine centroids of group g (4 x 2 register tiles).
    Each point appears in one group per call, so threads never write the same slot."""
    dim = points.shape[1]
    for g in prange(starts.shape[0] - 1):
        lo = starts[g]
        hi = starts[g + 1]
        tile = np.empty((4, dim), dtype=np.float32)
        for b in range(lo, hi, 4):
            m = min(4, hi - b)
            for r in range(4):
                src = order[b + min(r, m - 1)]
                for t in range(dim):
                    tile[r, t] = points[src, t]
            i0 = order[b]
            i1 = order[b + min(1, m - 1)]
            i2 = order[b + min(2, m - 1)]
            i3 = order[b + min(3, m - 1)]
            b0, b1, b2, b3, a0, a1, a2, a3 = _best_in_range(
                tile,
                fine,
                group_offsets[g],
                group_offsets[g + 1],
                best[i0],
                best[i1],
                best[i2],
                best[i3],
                arg[i0],
                arg[i1],
                arg[i2],
                arg[i3],
            )
            scores = np.array([b0, b1, b2, b3], dtype=np.float32)
            args = np.array([a0, a1, a2, a3], dtype=np.int64)
            for r in range(m):
                idx = order[b + r]
                best[idx] = scores[r]
                arg[idx] = args[r]


@njit(parallel=True, fastmath=True, cache=True)
def _encode_residuals(vectors, codes, centroids, basis, cutoffs, nbits):  # pragma: no cover - compiled
    """Bucket indices of (v - centroid) projected on ``basis``, packed nbits per value.

    ``basis`` is (dim, r); an empty (0, 0) basis means the identity (r = dim).
    Value j of a token sits in byte j*nbits // 8 at bit (j*nbits) % 8.
    """
    n, dim = vectors.shape
    r = dim if basis.shape[0] == 0 else basis.shape[1]
    basis_t = np.ascontiguousarray(basis.T)
    n_cut = cutoffs.shape[1]
    row_bytes = r * nbits // 8
    out = np.zeros((n, row_bytes), dtype=np.uint8)
    for i in prange(n):
        residual = np.empty(dim, dtype=np.float32)
        c = codes[i]
        for t in range(dim):
            residual[t] = vectors[i, t] - centroids[c, t]
        for j in range(r):
            if basis.shape[0] == 0:
                value = residual[j]
            else:
                value = np.float32(0.0)
                for t in range(dim):
                    value += residual[t] * basis_t[j, t]
            bucket = 0
            while bucket < n_cut and value > cutoffs[j, bucket]:
                bucket += 1
            bit = j * nbits
            out[i, bit // 8] |= np.uint8(bucket << (bit % 8))
    return out


@njit(inline="always")
def _unpack_row(packed, row, r, nbits, weights, dest):  # pragma: no cover - compiled
    """dest[j] = weights[j, bucket of value j] for one packed token row."""
    mask = (1 << nbits) - 1
    for j in range(r):
        bit = j * nbits
        bucket = (packed[row, bit // 8] >> (bit % 8)) & mask
        dest[j] = weights[j, bucket]


@njit(parallel=True, cache=True)
def _decode_residuals(packed, weights, nbits):  # pragma: no cover - compiled
    """Quantized residual coordinates (n, r) from packed bucket indices."""
    n = packed.shape[0]
    r = weights.shape[0]
    out = np.empty((n, r), dtype=np.float32)
    for i in prange(n):
        _unpack_row(packed, i, r, nbits, weights, out[i])
    return out


@njit(inline="always")
def _lut_row(packed, row, lut, dest):  # pragma: no cover - compiled
    """dest = quantized residual coordinates of one packed row, one table lookup per byte."""
    per_byte = lut.shape[2]
    for b in range(lut.shape[0]):
        value = packed[row, b]
        for s in range(per_byte):
            dest[b * per_byte + s] = lut[b, value, s]


@njit(parallel=True, fastmath=True, cache=True)
def _maxsim_residual(
    q_basis, scores_t, codes, packed, lut, centroid_basis, centroid_norm2, offsets, positions
):  # pragma: no cover - compiled
    """Exact MaxSim over decoded, renormalized residual-coded tokens, without decoding to dim.

    A token decodes to v = C[c] + B w (w: quantized residual coordinates, B
    orthonormal), so q.v = S[q, c] + (qB).w and |v|^2 = |C[c]|^2 + 2 (C[c]B).w + |w|^2.
    ``scores_t`` is S transposed (K, nq); ``q_basis`` is qB (nq, r).
    """
    nq, r = q_basis.shape
    out = np.empty(positions.shape[0], dtype=np.float32)
    for p in prange(positions.shape[0]):
        doc = positions[p]
        start = offsets[doc]
        n = offsets[doc + 1] - start
        rows = n + n % 2
        tile = np.zeros((rows, r), dtype=np.float32)
        inv_norm = np.zeros(rows, dtype=np.float32)
        cent = np.zeros(rows, dtype=np.int64)
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
        out[p] = total
    return out


@njit(parallel=True, cache=True)
def _centroid_maxsim(scores_t, codes, offsets, positions, keep):  # pragma: no cover - compiled
    """Approximate MaxSim from centroid scores alone: sum_i max_t S[i, code_t].

    Tokens whose centroid has ``keep[c] == False`` are skipped (PLAID's centroid
    pruning) and every query token contributes at least 0, so a document whose
    tokens are all pruned scores 0.
    """
    nq = scores_t.shape[1]
    out = np.empty(positions.shape[0], dtype=np.float32)
    for p in prange(positions.shape[0]):
        doc = positions[p]
        best = np.zeros(nq, dtype=np.float32)
        for t in range(offsets[doc], offsets[doc + 1]):
            c = np.int64(codes[t])
            if keep[c]:
                for i in range(nq):
                    v = scores_t[c, i]
                    if v > best[i]:
                        best[i] = v
        out[p] = best.sum()
    return out


@njit(cache=True)
def _gather_candidates(cells, ivf_offsets, ivf_positions, n_docs):  # pragma: no cover - compiled
    """Sorted unique document positions listed under any of ``cells``."""
    mark = np.zeros(n_docs, dtype=np.bool_)
    count = 0
    for c in cells:
        for k in range(ivf_offsets[c], ivf_offsets[c + 1]):
            d = ivf_positions[k]
            if not mark[d]:
                mark[d] = True
                count += 1
    out = np.empty(count, dtype=np.int64)
    j = 0
    for d in range(n_docs):
        if mark[d]:
            out[j] = d
            j += 1
    return out


@njit(cache=True)
def _varint_encode_lists(offsets, values):  # pragma: no cover - compiled
    """Rows (count, gaps...) of many strictly increasing lists: (bytes, row byte offsets)."""
    n_rows = offsets.shape[0] - 1
    out = np.empty(10 * (values.shape[0] + n_rows), dtype=np.uint8)
    row_offsets = np.zeros(n_rows + 1, dtype=np.int64)
    pos = 0
    for row in range(n_rows):
        previous = np.int64(0)
        for i in range(offsets[row] - 1, offsets[row + 1]):
            if i < offsets[row]:
                x = np.uint64(offsets[row + 1] - offsets[row])
            else:
                x = np.uint64(values[i] - previous)
                previous = values[i]
            while x >= 0x80:
                out[pos] = np.uint8((x & np.uint64(0x7F)) | np.uint64(0x80))
                x >>= np.uint64(7)
                pos += 1
            out[pos] = np.uint8(x)
            pos += 1
        row_offsets[row + 1] = pos
    return out[:pos], row_offsets


@njit(cache=True)
def _read_varint(data, pos, end):  # pragma: no cover - compiled
    """(value, next position); next position -1 if the varint overruns ``end`` or 63 bits."""
    value = np.int64(0)
    shift = 0
    while pos < end:
        byte = np.int64(data[pos])
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 56:
            return value, -1
    return value, -1


@njit(cache=True)
def _varint_decode_lists(data, row_offsets, max_value):  # pragma: no cover - compiled
    """Decode concatenated rows (count, gaps...) into CSR (offsets, values).

    Returns status 0 on success; 1 if a row is truncated, has trailing bytes,
    a zero gap (not strictly increasing) or a value above ``max_value``.
    Every read is bounds-checked: the bytes come from the file.
    """
    n_rows = row_offsets.shape[0] - 1
    offsets = np.zeros(n_rows + 1, dtype=np.int64)
    for row in range(n_rows):
        count, pos = _read_varint(data, row_offsets[row], row_offsets[row + 1])
        if pos < 0 or count < 0 or count > row_offsets[row + 1] - pos:
            return offsets, np.empty(0, dtype=np.int64), 1
        offsets[row + 1] = offsets[row] + count
    values = np.empty(offsets[n_rows], dtype=np.int64)
    for row in range(n_rows):
        count, pos = _read_varint(data, row_offsets[row], row_offsets[row + 1])
        current = np.int64(0)
        for k in range(count):
            gap, pos = _read_varint(data, pos, row_offsets[row + 1])
            if pos < 0 or (k > 0 and gap == 0):
                return offsets, values, 1
            current += gap
            if current > max_value:
                return offsets, values, 1
            values[offsets[row] + k] = current
        if pos != row_offsets[row + 1]:
            return offsets, values, 1
    return offsets, values, 0


@njit(parallel=True, fastmath=True, cache=True)
def _pool_documents(vectors, offsets, factor, iterations):  # pragma: no cover - compiled
    """Cluster each document's tokens into ceil(n / factor) groups; return unit group means.

    Seeds are tokens at evenly spaced positions (deterministic), then a few
    spherical k-means steps within the document.
    """
    n_docs = offsets.shape[0] - 1
    dim = vectors.shape[1]
    counts = np.empty(n_docs, dtype=np.int64)
    for d in range(n_docs):
        n = offsets[d + 1] - offsets[d]
        counts[d] = max(1, (n + factor - 1) // factor)
    new_offsets = np.zeros(n_docs + 1, dtype=np.int64)
    for d in range(n_docs):
        new_offsets[d + 1] = new_offsets[d] + counts[d]
    out = np.empty((new_offsets[n_docs], dim), dtype=np.float32)
    for d in prange(n_docs):
        start = offsets[d]
        n = offsets[d + 1] - start
        m = counts[d]
        means = np.empty((m, dim), dtype=np.float32)
        for g in range(m):
            src = start + (g * n) // m
            for t in range(dim):
                means[g, t] = vectors[src, t]
        assign = np.zeros(n, dtype=np.int64)
        for _ in range(iterations):
            for i in range(n):
                best = np.float32(-np.inf)
                for g in range(m):
                    acc = np.float32(0.0)
                    for t in range(dim):
                        acc += vectors[start + i, t] * means[g, t]
                    if acc > best:
                        best = acc
                        assign[i] = g
            sums = np.zeros((m, dim), dtype=np.float32)
            sizes = np.zeros(m, dtype=np.int64)
            for i in range(n):
                g = assign[i]
                sizes[g] += 1
                for t in range(dim):
                    sums[g, t] += vectors[start + i, t]
            for g in range(m):
                if sizes[g] == 0:
                    continue
                norm = np.float32(0.0)
                for t in range(dim):
                    norm += sums[g, t] * sums[g, t]
                norm = np.sqrt(max(norm, np.float32(1e-24)))
                for t in range(dim):
                    means[g, t] = sums[g, t] / norm
        for g in range(m):
            for t in range(dim):
                out[new_offsets[d] + g, t] = means[g, t]
    return out, new_offsets


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


def nearest_centroids(points: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index, dot product) of the highest-dot-product centroid for every point."""
    points = np.ascontiguousarray(points, dtype=np.float32)
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    if points.ndim != 2 or centroids.ndim != 2 or points.shape[1] != centroids.shape[1] or centroids.shape[0] == 0:
        raise InvalidInputError(f"points {points.shape} and centroids {centroids.shape} do not match")
    if points.shape[0] == 0:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    with PARALLEL_LOCK:
        return _nearest_rows(points, centroids)


ASSIGN_CHUNK = 65_536


def nearest_in_groups(
    points: np.ndarray, coarse: np.ndarray, fine: np.ndarray, group_offsets: np.ndarray, probe: int
) -> np.ndarray:
    """Two-level assignment: best fine centroid within the ``probe`` best coarse groups.

    Points are scored against the coarse centroids, then, per probe level,
    sorted by group so each group's fine centroids are compared with blocks of
    its points through the register-tiled kernel.
    """
    points = np.ascontiguousarray(points, dtype=np.float32)
    coarse = np.ascontiguousarray(coarse, dtype=np.float32)
    fine = np.ascontiguousarray(fine, dtype=np.float32)
    check_offsets(group_offsets, fine.shape[0])
    n_groups = coarse.shape[0]
    if group_offsets.size != n_groups + 1 or points.shape[1] != coarse.shape[1] != fine.shape[1]:
        raise CorruptIndexError("codebook arrays do not match")
    if probe < 1:
        raise InvalidInputError("probe must be at least 1")
    probe = min(int(probe), n_groups)
    codes = np.empty(points.shape[0], dtype=np.int64)
    for lo in range(0, points.shape[0], ASSIGN_CHUNK):
        chunk = points[lo : lo + ASSIGN_CHUNK]
        with PARALLEL_LOCK:
            scores = _dot_matrix(chunk, coarse)
        top = np.argpartition(-scores, probe - 1, axis=1)[:, :probe] if probe < n_groups else None
        best = np.full(chunk.shape[0], -np.inf, dtype=np.float32)
        arg = np.zeros(chunk.shape[0], dtype=np.int64)
        for level in range(probe):
            groups = np.arange(chunk.shape[0]) * 0 + level if top is None else top[:, level]
            order = np.argsort(groups, kind="stable").astype(np.int64)
            starts = np.searchsorted(groups[order], np.arange(n_groups + 1)).astype(np.int64)
            with PARALLEL_LOCK:
                _assign_in_group_order(chunk, order, starts, fine, group_offsets, best, arg)
        codes[lo : lo + chunk.shape[0]] = arg
    return codes


def _check_codes(codes: np.ndarray, n_centroids: int) -> np.ndarray:
    codes = np.ascontiguousarray(codes)
    if codes.ndim != 1 or codes.dtype.kind not in "iu":
        raise CorruptIndexError("centroid codes must be a 1-d integer array")
    if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= n_centroids):
        raise CorruptIndexError(f"centroid code out of range (codebook has {n_centroids} centroids)")
    return codes


def _check_packed(packed: np.ndarray, n_tokens: int, r: int, nbits: int) -> np.ndarray:
    if nbits not in (1, 2, 4, 8) or (r * nbits) % 8:
        raise CorruptIndexError(f"unsupported residual layout: {r} values x {nbits} bits")
    if packed.dtype != np.uint8 or packed.shape != (n_tokens, r * nbits // 8):
        raise CorruptIndexError(f"packed residuals have shape {packed.shape}, expected ({n_tokens}, {r * nbits // 8})")
    return np.ascontiguousarray(packed)


def encode_residuals(
    vectors: np.ndarray,
    codes: np.ndarray,
    centroids: np.ndarray,
    basis: np.ndarray | None,
    cutoffs: np.ndarray,
    nbits: int,
) -> np.ndarray:
    """Packed bucket indices (n, r*nbits/8) of each vector's residual to its centroid."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    codes = _check_codes(codes, centroids.shape[0]).astype(np.int64)
    dim = vectors.shape[1]
    basis_arr = np.zeros((0, 0), np.float32) if basis is None else np.ascontiguousarray(basis, dtype=np.float32)
    r = dim if basis is None else basis_arr.shape[1]
    if (
        centroids.shape[1] != dim
        or codes.shape != (vectors.shape[0],)
        or (basis is not None and basis_arr.shape[0] != dim)
    ):
        raise InvalidInputError("vectors, codes, centroids and basis do not match")
    if cutoffs.shape != (r, (1 << nbits) - 1) or nbits not in (1, 2, 4, 8) or (r * nbits) % 8:
        raise InvalidInputError(f"cutoffs {cutoffs.shape} do not fit {r} values x {nbits} bits")
    with PARALLEL_LOCK:
        return _encode_residuals(vectors, codes, centroids, basis_arr, np.ascontiguousarray(cutoffs, np.float32), nbits)


def decode_residuals(packed: np.ndarray, weights: np.ndarray, nbits: int) -> np.ndarray:
    """Quantized residual coordinates (n, r) of packed rows."""
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    r = weights.shape[0]
    if weights.shape != (r, 1 << nbits):
        raise CorruptIndexError(f"bucket weights have shape {weights.shape}, expected ({r}, {1 << nbits})")
    packed = _check_packed(packed, packed.shape[0], r, nbits)
    with PARALLEL_LOCK:
        return _decode_residuals(packed, weights, nbits)


def bucket_lut(weights: np.ndarray, nbits: int) -> np.ndarray:
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


def maxsim_residual(
    q_basis: np.ndarray,
    scores_t: np.ndarray,
    codes: np.ndarray,
    packed: np.ndarray,
    lut: np.ndarray,
    centroid_basis: np.ndarray,
    centroid_norm2: np.ndarray,
    offsets: np.ndarray,
    positions: np.ndarray | None = None,
    *,
    trusted: bool = False,
) -> np.ndarray:
    """Exact MaxSim of a query against residual-coded documents (see ``_maxsim_residual``).

    ``lut`` comes from :func:`bucket_lut`. ``trusted=True`` skips the O(tokens)
    code and offset checks for arrays the caller validated when it loaded them.
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
        codes = _check_codes(codes, n_centroids)
        packed = _check_packed(packed, codes.shape[0], r, 8 // per_byte)
        check_offsets(offsets, codes.shape[0])
    positions = _check_positions(positions, offsets.size - 1)
    with PARALLEL_LOCK:
        return _maxsim_residual(
            np.ascontiguousarray(q_basis, np.float32),
            np.ascontiguousarray(scores_t, np.float32),
            codes,
            packed,
            lut,
            np.ascontiguousarray(centroid_basis, np.float32),
            np.ascontiguousarray(centroid_norm2, np.float32),
            offsets,
            positions,
        )


def centroid_maxsim(
    scores_t: np.ndarray,
    codes: np.ndarray,
    offsets: np.ndarray,
    positions: np.ndarray,
    keep: np.ndarray | None = None,
    *,
    trusted: bool = False,
) -> np.ndarray:
    """Centroid-only MaxSim of documents at ``positions``; ``keep`` prunes centroids."""
    n_centroids = scores_t.shape[0]
    if keep is None:
        keep = np.ones(n_centroids, dtype=np.bool_)
    if keep.shape != (n_centroids,) or keep.dtype != np.bool_:
        raise InvalidInputError("keep must be a boolean mask over centroids")
    if not trusted:
        codes = _check_codes(codes, n_centroids)
        check_offsets(offsets, codes.shape[0])
    positions = _check_positions(positions, offsets.size - 1)
    with PARALLEL_LOCK:
        return _centroid_maxsim(np.ascontiguousarray(scores_t, np.float32), codes, offsets, positions, keep)


def gather_candidates(cells: np.ndarray, ivf_offsets: np.ndarray, ivf_positions: np.ndarray, n_docs: int) -> np.ndarray:
    """Sorted unique document positions in the inverted lists of ``cells``."""
    cells = np.ascontiguousarray(cells, dtype=np.int64)
    if cells.size and (cells.min() < 0 or cells.max() >= ivf_offsets.size - 1):
        raise InvalidInputError("cell ids out of range")
    return _gather_candidates(cells, ivf_offsets, ivf_positions, n_docs)


def varint_encode(values: np.ndarray) -> bytes:
    """Compact bytes of a strictly increasing sequence of non-negative integers."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    if values.ndim != 1:
        raise InvalidInputError("varint lists must be 1-d")
    return varint_encode_lists(np.array([0, values.size], dtype=np.int64), values)[0]


def varint_encode_lists(offsets: np.ndarray, values: np.ndarray) -> list[bytes]:
    """Row blobs of a CSR of strictly increasing non-negative lists (one numba pass)."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    check_offsets_loose(offsets, values.size)
    starts = offsets[:-1]
    inside = np.ones(values.size, dtype=bool)
    inside[starts[starts < values.size]] = False
    if (values.size and values.min() < 0) or (np.diff(values)[inside[1:]] <= 0).any():
        raise InvalidInputError("varint lists must be strictly increasing and non-negative")
    data, row_offsets = _varint_encode_lists(np.ascontiguousarray(offsets, np.int64), values)
    raw = data.tobytes()
    return [raw[row_offsets[i] : row_offsets[i + 1]] for i in range(offsets.size - 1)]


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


def varint_decode_lists(blobs: list[bytes], max_value: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR (offsets, values) of many varint-coded rows; CorruptIndexError on any damage."""
    lengths = np.fromiter((len(b) for b in blobs), dtype=np.int64, count=len(blobs))
    row_offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=row_offsets[1:])
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    offsets, values, status = _varint_decode_lists(data, row_offsets, np.int64(max_value))
    if status:
        raise CorruptIndexError("an inverted list is damaged (truncated, unsorted or out of range)")
    return offsets, values


def pool_documents(
    vectors: np.ndarray, offsets: np.ndarray, factor: int, iterations: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Token pooling: (pooled unit vectors, new offsets) keeping ~1/factor of each document's tokens."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    check_offsets(offsets, vectors.shape[0])
    if factor < 1 or iterations < 0:
        raise InvalidInputError("pool factor must be >= 1")
    with PARALLEL_LOCK:
        return _pool_documents(vectors, offsets, int(factor), int(iterations))


def dot_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b.T`` in float32 with numba threads (no BLAS)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise InvalidInputError(f"shapes {a.shape} and {b.shape} do not match")
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]), np.float32)
    with PARALLEL_LOCK:
        return _dot_matrix(a, b)


def select_cells(scores_t: np.ndarray, ncells: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique ids of each query token's ``ncells`` best centroids, keep mask of
    centroids scoring >= threshold for some query token)."""
    scores_t = np.ascontiguousarray(scores_t, dtype=np.float32)
    ncells = max(1, min(int(ncells), scores_t.shape[0]))
    top, keep = _select_cells(scores_t, ncells, np.float32(threshold))
    return np.unique(top[top >= 0]), keep


def kmeanspp_seeds(points: np.ndarray, k: int, seed: int, trials: int | None = None) -> np.ndarray:
    """Row indices of k k-means++ seeds of unit-norm points (deterministic for a seed).

    ``trials`` candidates per seed (greedy k-means++); default 2 + ln(k), 1 is plain k-means++.
    """
    points = np.ascontiguousarray(points, dtype=np.float32)
    if not 1 <= k <= points.shape[0]:
        raise InvalidInputError(f"cannot pick {k} seeds from {points.shape[0]} points")
    trials = 2 + int(np.log(k)) if trials is None else max(1, int(trials))
    uniforms = np.random.default_rng(seed).random((k, trials))
    with PARALLEL_LOCK:
        return _kmeanspp(points, int(k), uniforms)


def centroid_sums(points: np.ndarray, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(sums float64[k, dim], counts int64[k]) of points grouped by code."""
    codes = np.ascontiguousarray(codes, dtype=np.int64)
    if codes.shape != (points.shape[0],) or (codes.size and (codes.min() < 0 or codes.max() >= k)):
        raise InvalidInputError("codes out of range")
    return _centroid_sums(np.ascontiguousarray(points, dtype=np.float32), codes, k)


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


def nearest_centroids_reference(points: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(points, np.float32) @ np.asarray(centroids, np.float32).T
    codes = scores.argmax(axis=1)
    return codes, scores[np.arange(len(codes)), codes]


def centroid_sums_reference(points: np.ndarray, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sums = np.zeros((k, points.shape[1]))
    np.add.at(sums, codes, points)
    return sums, np.bincount(codes, minlength=k)


def nearest_in_groups_reference(
    points: np.ndarray, coarse: np.ndarray, fine: np.ndarray, group_offsets: np.ndarray, probe: int
) -> np.ndarray:
    coarse_scores = points @ coarse.T
    codes = np.empty(points.shape[0], dtype=np.int64)
    for i, row in enumerate(coarse_scores):
        groups = np.argsort(-row, kind="stable")[:probe]
        members = np.concatenate([np.arange(group_offsets[g], group_offsets[g + 1]) for g in groups])
        codes[i] = members[np.argmax(fine[members] @ points[i])]
    return codes


def encode_residuals_reference(vectors, codes, centroids, basis, cutoffs, nbits):
    residual = np.asarray(vectors, np.float32) - np.asarray(centroids, np.float32)[codes]
    if basis is not None:
        residual = residual @ basis
    buckets = np.stack([np.searchsorted(cutoffs[j], residual[:, j], side="left") for j in range(residual.shape[1])], 1)
    per_byte = 8 // nbits
    buckets = buckets.reshape(len(buckets), -1, per_byte).astype(np.uint16)
    shifts = (np.arange(per_byte) * nbits).astype(np.uint16)
    return (buckets << shifts).sum(axis=2).astype(np.uint8)


def decode_residuals_reference(packed, weights, nbits):
    per_byte = 8 // nbits
    shifts = np.arange(per_byte) * nbits
    buckets = ((packed[:, :, None] >> shifts) & ((1 << nbits) - 1)).reshape(len(packed), -1)
    return np.take_along_axis(weights[None, :, :], buckets[:, :, None], axis=2)[:, :, 0].astype(np.float32)


def maxsim_residual_reference(query, centroids, basis, codes, packed, weights, nbits, offsets, positions=None):
    """Decode every token to full dimension, renormalize, then plain MaxSim."""
    w = decode_residuals_reference(packed, weights, nbits)
    vectors = centroids[codes] + (w if basis is None else w @ basis.T)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return maxsim_f32_reference(query, vectors, offsets, positions)


def centroid_maxsim_reference(scores, codes, offsets, positions, keep=None):
    """scores is (nq, K) here (not transposed)."""
    keep = np.ones(scores.shape[1], bool) if keep is None else keep
    out = []
    for d in positions:
        cs = codes[offsets[d] : offsets[d + 1]]
        cs = cs[keep[cs]]
        out.append(np.maximum(scores[:, cs].max(axis=1), 0).sum() if cs.size else 0.0)
    return np.array(out, dtype=np.float32)


def kmeanspp_seeds_reference(points: np.ndarray, k: int, seed: int, trials: int | None = None) -> np.ndarray:
    trials = 2 + int(np.log(k)) if trials is None else trials
    uniforms = np.random.default_rng(seed).random((k, trials))
    n = len(points)

    def sample(dist, u):
        cumulative = np.cumsum(dist.astype(np.float64))
        if cumulative[-1] <= 0:
            return min(int(u * n), n - 1)
        return min(int(np.searchsorted(cumulative, u * cumulative[-1], side="right")), n - 1)

    chosen = [min(int(uniforms[0, 0] * n), n - 1)]
    dist = np.maximum(2 - 2 * points @ points[chosen[0]], 0)
    for j in range(1, k):
        candidates = [sample(dist, uniforms[j, t]) for t in range(trials)]
        potentials = [np.minimum(dist, np.maximum(2 - 2 * points @ points[c], 0)).sum() for c in candidates]
        best = candidates[int(np.argmin(potentials))]
        chosen.append(best)
        dist = np.minimum(dist, np.maximum(2 - 2 * points @ points[best], 0))
    return np.array(chosen)


def pool_documents_reference(vectors, offsets, factor, iterations=4):
    pooled, new_offsets = [], [0]
    for d in range(offsets.size - 1):
        x = vectors[offsets[d] : offsets[d + 1]]
        n = len(x)
        m = max(1, -(-n // factor))
        means = x[[(g * n) // m for g in range(m)]].copy()
        for _ in range(iterations):
            assign = np.argmax(x @ means.T, axis=1)
            for g in range(m):
                members = x[assign == g]
                if len(members):
                    total = members.sum(axis=0)
                    means[g] = total / max(np.linalg.norm(total), 1e-12)
        pooled.append(means)
        new_offsets.append(new_offsets[-1] + m)
    return np.concatenate(pooled).astype(np.float32), np.array(new_offsets, dtype=np.int64)

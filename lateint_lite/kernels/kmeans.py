"""Spherical k-means: greedy k-means++ seeding, centroid sums, nearest-centroid assignment
(flat, and two-level within coarse groups)."""

from __future__ import annotations

import numpy as np
from numba import prange

from ..errors import CorruptIndexError, InvalidInputError
from ._checks import check_offsets
from ._runtime import PARALLEL_LOCK, Float32Array, Float64Array, Int64Array, jit
from ._tiles import _best_in_range
from .maxsim import _dot_matrix


@jit(parallel=True, fastmath=True)
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


@jit(parallel=True, fastmath=True)
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


@jit(parallel=True, fastmath=True)
def _closer(points, center, dist):  # pragma: no cover - compiled
    """dist[i] = min(dist[i], squared distance of unit point i to ``center``)."""
    for i in prange(points.shape[0]):
        acc = np.float32(0.0)
        for t in range(points.shape[1]):
            acc += points[i, t] * center[t]
        d = max(np.float32(2.0) - np.float32(2.0) * acc, np.float32(0.0))
        if d < dist[i]:
            dist[i] = d


@jit()
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


@jit()
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


@jit()
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


@jit(parallel=True, fastmath=True)
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


def nearest_centroids(points: Float32Array, centroids: Float32Array) -> tuple[Int64Array, Float32Array]:
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


@jit()
def _row_top(row, values, ids):  # pragma: no cover - compiled
    """The ``values.size`` largest entries of ``row`` (ids and values, best first), by insertion
    into the short sorted buffers; ids start as 0..p-1 so a row of NaNs still names real groups."""
    p = values.shape[0]
    for j in range(p):
        values[j] = -np.inf
        ids[j] = j
    for c in range(row.shape[0]):
        s = row[c]
        if s > values[p - 1]:
            j = p - 1
            while j > 0 and values[j - 1] < s:
                values[j] = values[j - 1]
                ids[j] = ids[j - 1]
                j -= 1
            values[j] = s
            ids[j] = c


@jit(parallel=True)
def _top_per_row(scores, values, ids):  # pragma: no cover - compiled
    for i in prange(scores.shape[0]):
        _row_top(scores[i], values[i], ids[i])


def top_per_row(scores: Float32Array, p: int) -> Int64Array:
    """Column ids of each row's ``p`` largest scores, best first (ties: the lower id first).

    Replaces ``np.argpartition(-scores, p - 1, axis=1)[:, :p]``, which took 27 % of an add's
    time at 32,768 centroids (181 coarse groups, probe 4): a full partition per row for 4 ids."""
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    if not 1 <= p <= scores.shape[1]:
        raise InvalidInputError(f"cannot pick {p} of {scores.shape[1]} columns")
    values = np.empty((scores.shape[0], p), dtype=np.float32)
    ids = np.empty((scores.shape[0], p), dtype=np.int64)
    with PARALLEL_LOCK:
        _top_per_row(scores, values, ids)
    return ids


def nearest_in_groups(
    points: Float32Array, coarse: Float32Array, fine: Float32Array, group_offsets: Int64Array, probe: int
) -> Int64Array:
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
        top = top_per_row(scores, probe) if probe < n_groups else None
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


def kmeanspp_seeds(points: Float32Array, k: int, seed: int, trials: int | None = None) -> Int64Array:
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


def centroid_sums(points: Float32Array, codes: Int64Array, k: int) -> tuple[Float64Array, Int64Array]:
    """(sums float64[k, dim], counts int64[k]) of points grouped by code."""
    codes = np.ascontiguousarray(codes, dtype=np.int64)
    if codes.shape != (points.shape[0],) or (codes.size and (codes.min() < 0 or codes.max() >= k)):
        raise InvalidInputError("codes out of range")
    return _centroid_sums(np.ascontiguousarray(points, dtype=np.float32), codes, k)

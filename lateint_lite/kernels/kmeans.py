"""Spherical k-means: greedy k-means++ seeding, centroid sums, nearest-centroid assignment
(flat, and two-level within coarse groups)."""

from __future__ import annotations

import numpy as np
from numba import prange

from ..errors import CorruptIndexError, InvalidInputError
from ._checks import check_offsets
from ._runtime import PARALLEL_LOCK, Float32Array, Float64Array, Int64Array, in_threads, jit


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


#: Rows per block of a blocked assignment, at most; a block's scores and gathered points stay
#: under ``BLOCK_FLOATS`` float32 values (32 MiB) each.
BLOCK_ROWS = 16_384
BLOCK_FLOATS = 2**23


def _block_rows(floats_per_row: int) -> int:
    return max(256, min(BLOCK_ROWS, BLOCK_FLOATS // max(int(floats_per_row), 1)))


def nearest_centroids(points: Float32Array, centroids: Float32Array) -> tuple[Int64Array, Float32Array]:
    """(index, dot product) of the highest-dot-product centroid for every point; the lowest
    index wins a tie.

    Each block of points is scored with one BLAS matrix product, blocks spread over threads:
    2-2.3x the register-tiled numba kernel this replaced, on 2 cores (docs/ARCHITECTURE.md)."""
    points = np.ascontiguousarray(points, dtype=np.float32)
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    if points.ndim != 2 or centroids.ndim != 2 or points.shape[1] != centroids.shape[1] or centroids.shape[0] == 0:
        raise InvalidInputError(f"points {points.shape} and centroids {centroids.shape} do not match")
    n = points.shape[0]
    codes = np.empty(n, dtype=np.int64)
    best = np.empty(n, dtype=np.float32)

    def block(lo: int, hi: int) -> None:
        scores = points[lo:hi] @ centroids.T
        codes[lo:hi] = scores.argmax(axis=1)
        best[lo:hi] = np.take_along_axis(scores, codes[lo:hi, None], axis=1)[:, 0]

    in_threads(block, n, _block_rows(centroids.shape[0]))
    return codes, best


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


@jit(nogil=True)
def _top_rows(scores, values, ids):  # pragma: no cover - compiled
    """:func:`_row_top` of every row, serially (threads run blocks side by side)."""
    for i in range(scores.shape[0]):
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


def _assign_block(
    points: Float32Array, coarse: Float32Array, fine: Float32Array, group_offsets: Int64Array, probe: int
) -> Int64Array:
    """Codes of one block of points: the best fine centroid within each point's ``probe`` best
    coarse groups. The (point, level) pairs are sorted by group so that each group's fine
    centroids meet all of its points in one BLAS product; ties go to the better coarse level,
    then to the lower code, as a scan in that order would decide them."""
    n, n_groups = points.shape[0], coarse.shape[0]
    values = np.empty((n, probe), dtype=np.float32)
    ids = np.empty((n, probe), dtype=np.int64)
    _top_rows(points @ coarse.T, values, ids)
    pair_groups = ids.reshape(-1).astype(np.uint16 if n_groups <= 1 << 16 else np.int64)
    order = np.argsort(pair_groups, kind="stable")  # a radix sort for uint16
    starts = np.searchsorted(pair_groups[order], np.arange(n_groups + 1))
    members = np.take(points, order // probe, axis=0)
    best = np.empty(order.size, dtype=np.float32)
    arg = np.empty(order.size, dtype=np.int64)
    for g in np.flatnonzero(np.diff(starts)):
        a, b, lo = starts[g], starts[g + 1], group_offsets[g]
        scores = members[a:b] @ fine[lo : group_offsets[g + 1]].T
        top = scores.argmax(axis=1)
        arg[a:b] = top + lo
        best[a:b] = np.take_along_axis(scores, top[:, None], axis=1)[:, 0]
    pair_best = np.empty_like(best)
    pair_best[order] = best
    pair_arg = np.empty_like(arg)
    pair_arg[order] = arg
    level = pair_best.reshape(n, probe).argmax(axis=1)
    return np.take_along_axis(pair_arg.reshape(n, probe), level[:, None], axis=1)[:, 0]


def nearest_in_groups(
    points: Float32Array, coarse: Float32Array, fine: Float32Array, group_offsets: Int64Array, probe: int
) -> Int64Array:
    """Two-level assignment: best fine centroid within the ``probe`` best coarse groups.

    Blocks of points run on threads, each scored against the coarse centroids and then against
    each probed group's fine centroids with BLAS (:func:`_assign_block`): 1.5x the numba
    register tiles this replaced on 2 cores, with the same codes (docs/ARCHITECTURE.md)."""
    points = np.ascontiguousarray(points, dtype=np.float32)
    coarse = np.ascontiguousarray(coarse, dtype=np.float32)
    fine = np.ascontiguousarray(fine, dtype=np.float32)
    check_offsets(group_offsets, fine.shape[0])
    n_groups = coarse.shape[0]
    if (
        group_offsets.size != n_groups + 1
        or n_groups == 0
        or points.ndim != 2
        or not points.shape[1] == coarse.shape[1] == fine.shape[1]
    ):
        raise CorruptIndexError("codebook arrays do not match")
    if probe < 1:
        raise InvalidInputError("probe must be at least 1")
    probe = min(int(probe), n_groups)
    offsets = np.asarray(group_offsets, dtype=np.int64)
    codes = np.empty(points.shape[0], dtype=np.int64)

    def block(lo: int, hi: int) -> None:
        codes[lo:hi] = _assign_block(points[lo:hi], coarse, fine, offsets, probe)

    in_threads(block, points.shape[0], _block_rows(max(probe * points.shape[1], n_groups)))
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

"""Centroid training and assignment: two-level spherical k-means.

Seeding: greedy k-means++ for the coarse level (robust against two seeds landing
in one cluster), plain k-means++ for the fine level, where greedy trials cost
18 of 24 s of a SciFact build and the many small groups gain little from them.

Flat k-means with PLAID's centroid counts (2^floor(log2(16 sqrt(n)))) costs
O(n K d) per pass: assigning SciFact's 1.24M tokens to 16,384 centroids is
5 TFLOP, about 50 s on 2 cores. A two-level codebook trains ``K1 ~ sqrt(K)``
coarse centroids, then splits each coarse cluster into fine centroids in
proportion to its size; a point is assigned by scoring the coarse centroids
and only the fine centroids of its ``probe`` best coarse clusters, which is
~25x less work (see docs/ARCHITECTURE.md for the accuracy this costs).

All vectors here are L2-normalized; "nearest" means largest dot product.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from . import kernels
from .errors import CorruptIndexError, InvalidInputError

KMEANS_ITERATIONS = 10
MAX_CENTROIDS = 65536  # codes are stored as uint16
MIN_CENTROIDS = 8
DEFAULT_PROBE = 4
#: The coarse level trains on at most this many points per coarse centroid.
COARSE_POINTS_PER_GROUP = 256


def plaid_centroid_count(n_tokens: int) -> int:
    """PLAID's rule 2^floor(log2(16 sqrt(n))), clamped to [MIN_CENTROIDS, MAX_CENTROIDS] and n/4."""
    if n_tokens <= 0:
        raise InvalidInputError("cannot size a codebook for zero tokens")
    k = 2 ** int(np.floor(np.log2(16.0 * np.sqrt(n_tokens))))
    return int(max(MIN_CENTROIDS, min(k, MAX_CENTROIDS, max(MIN_CENTROIDS, n_tokens // 4))))


def _normalize(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


def spherical_kmeans(
    points: np.ndarray,
    k: int,
    *,
    iterations: int = KMEANS_ITERATIONS,
    seed: int = 0,
    greedy: bool = True,
) -> np.ndarray:
    """k unit-norm centroids maximizing the summed dot product to their points.

    Greedy k-means++ seeding (plain k-means++ with ``greedy=False``), then Lloyd
    iterations; deterministic for a given seed. Empty clusters are re-seeded
    with the points that are currently worst served.
    """
    points = np.ascontiguousarray(points, dtype=np.float32)
    n = points.shape[0]
    if n == 0:
        raise InvalidInputError("k-means needs at least one point")
    k = min(k, n)
    centroids = points[kernels.kmeanspp_seeds(points, k, seed, trials=None if greedy else 1)].copy()
    for _ in range(iterations):
        codes, best = kernels.nearest_centroids(points, centroids)
        sums, counts = kernels.centroid_sums(points, codes, k)
        empty = np.flatnonzero(counts == 0)
        centroids = _normalize(sums.astype(np.float32))
        if empty.size:
            worst = np.argsort(best)[: empty.size]
            centroids[empty] = points[worst]
    return centroids


#: Points per block when training points are turned into float32 rows a block at a time.
POINT_BLOCK_ROWS = 8192


@dataclass(frozen=True)
class TrainingPoints:
    """Training vectors held compactly: the int8 values of canonical vectors (a quarter of their
    float32 size; each row is ``unit_rows`` of its values, exactly the canonical vector), or plain
    float32 unit rows when the vectors are not int8-canonical (pooled tokens). Consumers take
    float32 rows a block or a selection at a time."""

    values: np.ndarray  # int8 or float32 (n, dim)

    @classmethod
    def of(cls, points: np.ndarray | TrainingPoints) -> TrainingPoints:
        """``points`` as training points (a float array is taken as unit rows)."""
        if isinstance(points, TrainingPoints):
            return points
        return cls(np.ascontiguousarray(points, dtype=np.float32))

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def dim(self) -> int:
        return int(self.values.shape[1])

    def take(self, index: np.ndarray | slice) -> np.ndarray:
        """float32 unit rows of a selection (indices or a slice). int8 rows are scaled a block at
        a time into the result, so the only float32 array of the selection's size is the result
        (scaling 32k x 384 rows at once held three: 150 MB at the peak of a SciFact build)."""
        if self.values.dtype != np.int8:
            return np.ascontiguousarray(self.values[index], dtype=np.float32)
        from .codecs.int8 import unit_rows

        positions = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index)
        out = np.empty((positions.size, self.dim), dtype=np.float32)
        for lo in range(0, positions.size, POINT_BLOCK_ROWS):
            out[lo : lo + POINT_BLOCK_ROWS] = unit_rows(self.values[positions[lo : lo + POINT_BLOCK_ROWS]])
        return out

    def blocks(self, rows: int = POINT_BLOCK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, float32 rows) of consecutive blocks."""
        for lo in range(0, len(self), rows):
            yield lo, self.take(slice(lo, lo + rows))


@dataclass(frozen=True)
class Codebook:
    """Fine centroids grouped by coarse cluster.

    ``centroids[group_offsets[g]:group_offsets[g+1]]`` are the fine centroids of
    coarse centroid ``g``; a code is a row of ``centroids``.
    """

    centroids: np.ndarray  # float32[K, dim], unit rows
    coarse: np.ndarray  # float32[G, dim], unit rows
    group_offsets: np.ndarray  # int64[G + 1]

    @property
    def size(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    def validate(self) -> None:
        """Shapes and offsets consistent (checked before kernels use them)."""
        g = self.coarse.shape[0]
        offsets = self.group_offsets
        if (
            self.centroids.ndim != 2
            or self.coarse.ndim != 2
            or self.coarse.shape[1] != self.centroids.shape[1]
            or offsets.shape != (g + 1,)
            or offsets[0] != 0
            or offsets[-1] != self.size
            or (np.diff(offsets) <= 0).any()
        ):
            raise CorruptIndexError("codebook arrays are inconsistent")
        if self.size > MAX_CENTROIDS:
            raise CorruptIndexError(f"codebook has {self.size} centroids, more than {MAX_CENTROIDS}")

    def assign(self, points: np.ndarray, probe: int = DEFAULT_PROBE) -> np.ndarray:
        """Code of the (approximately) nearest centroid of each point."""
        points = np.ascontiguousarray(points, dtype=np.float32)
        if points.shape[0] == 0:
            return np.empty(0, np.int64)
        return kernels.nearest_in_groups(points, self.coarse, self.centroids, self.group_offsets, probe)


def train_codebook(
    points: np.ndarray | TrainingPoints, k: int, *, seed: int = 0, iterations: int = KMEANS_ITERATIONS
) -> Codebook:
    """Two-level codebook of about ``k`` centroids (exactly k when every group has room). Only
    the coarse level's subsample and one group's members are float32 at a time."""
    points = TrainingPoints.of(points)
    n = len(points)
    k = max(1, min(k, n))
    n_groups = max(1, min(int(2 ** np.ceil(np.log2(np.sqrt(k)))), k))
    chosen: np.ndarray | slice = slice(None)
    if n > COARSE_POINTS_PER_GROUP * n_groups:
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(n, COARSE_POINTS_PER_GROUP * n_groups, replace=False))
    coarse = spherical_kmeans(points.take(chosen), n_groups, iterations=iterations, seed=seed)
    groups = np.empty(n, dtype=np.int64)
    for lo, block in points.blocks():
        groups[lo : lo + len(block)] = kernels.nearest_centroids(block, coarse)[0]
    sizes = np.bincount(groups, minlength=coarse.shape[0])
    quotas = _allocate(sizes, k)
    kept = np.flatnonzero(quotas > 0)
    fine: list[np.ndarray] = [np.empty(0, np.float32)] * kept.size
    by_group = np.argsort(groups, kind="stable")  # each group's points in ascending order
    starts = np.searchsorted(groups[by_group], np.arange(coarse.shape[0] + 1))

    def train_groups(lo: int, hi: int) -> None:
        # groups are independent (a seed each), so running them side by side changes no bit
        for i in range(lo, hi):
            g = int(kept[i])
            members = points.take(by_group[starts[g] : starts[g + 1]])
            fine[i] = spherical_kmeans(members, int(quotas[g]), iterations=iterations, seed=seed + 1 + g, greedy=False)

    kernels.in_threads(train_groups, kept.size, 1)
    kept_coarse = [coarse[g] for g in kept]
    counts = np.array([f.shape[0] for f in fine], dtype=np.int64)
    offsets = np.zeros(len(fine) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    book = Codebook(centroids=np.concatenate(fine), coarse=np.stack(kept_coarse), group_offsets=offsets)
    book.validate()
    return book


def _allocate(sizes: np.ndarray, k: int) -> np.ndarray:
    """Split k centroids across groups in proportion to their sizes (largest remainders)."""
    sizes = sizes.astype(np.float64)
    share = sizes / sizes.sum() * k
    quotas = np.minimum(np.floor(share).astype(np.int64), sizes.astype(np.int64))
    order = np.argsort(-(share - quotas), kind="stable")
    while quotas.sum() < k:
        for g in order:
            if quotas.sum() >= k:
                break
            if quotas[g] < sizes[g]:
                quotas[g] += 1
    return quotas

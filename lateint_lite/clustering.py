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


def train_codebook(points: np.ndarray, k: int, *, seed: int = 0, iterations: int = KMEANS_ITERATIONS) -> Codebook:
    """Two-level codebook of about ``k`` centroids (exactly k when every group has room)."""
    points = np.ascontiguousarray(points, dtype=np.float32)
    n = points.shape[0]
    k = max(1, min(k, n))
    n_groups = max(1, min(int(2 ** np.ceil(np.log2(np.sqrt(k)))), k))
    subsample = points
    if n > COARSE_POINTS_PER_GROUP * n_groups:
        rng = np.random.default_rng(seed)
        subsample = points[np.sort(rng.choice(n, COARSE_POINTS_PER_GROUP * n_groups, replace=False))]
    coarse = spherical_kmeans(subsample, n_groups, iterations=iterations, seed=seed)
    groups, _ = kernels.nearest_centroids(points, coarse)
    sizes = np.bincount(groups, minlength=coarse.shape[0])
    quotas = _allocate(sizes, k)
    fine: list[np.ndarray] = []
    kept_coarse: list[np.ndarray] = []
    for g in range(coarse.shape[0]):
        if quotas[g] == 0:
            continue
        members = points[groups == g]
        fine.append(spherical_kmeans(members, int(quotas[g]), iterations=iterations, seed=seed + 1 + g, greedy=False))
        kept_coarse.append(coarse[g])
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

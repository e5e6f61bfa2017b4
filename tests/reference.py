"""Plain-numpy twins of the numba kernels: the oracles the kernel tests compare against.

Written for clarity, not speed: one matmul per document, explicit loops where
the kernel is clever. Nothing in the package imports this module.
"""

from __future__ import annotations

import numpy as np


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


def quantize_int8_reference(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The int8 payload's rounding as plain numpy (what ``encode_int8`` computed before its kernel)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    peak = np.abs(vectors).max(axis=1)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    return np.clip(np.rint(vectors / scales[:, None]), -127, 127).astype(np.int8), scales


def canonical_int8_reference(vectors: np.ndarray) -> np.ndarray:
    """The canonical form's int8 values as numpy formulas: rows normalized, then rounded."""
    vectors = np.asarray(vectors, dtype=np.float32)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), np.float32(1e-12))
    return quantize_int8_reference(unit)[0]


def unit_rows_int8_reference(values: np.ndarray) -> np.ndarray:
    """int8 rows scaled to unit length as numpy formulas."""
    rows = np.asarray(values).astype(np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), np.float32(1e-12))


def document_means_reference(vectors: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Each document's ``mean(axis=0)``, stacked."""
    return np.stack([vectors[offsets[d] : offsets[d + 1]].mean(axis=0) for d in range(offsets.size - 1)])


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


def top_per_row_reference(scores: np.ndarray, p: int) -> np.ndarray:
    """Each row's p largest column ids, best first, lower id first among equal scores."""
    return np.argsort(-scores, axis=1, kind="stable")[:, :p]


def select_cells_reference(scores_t: np.ndarray, ncells: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Each query token's ``ncells`` best centroids by (score desc, id asc), and the keep mask."""
    ncells = max(1, min(ncells, scores_t.shape[0]))
    chosen = set()
    for column in scores_t.T:
        chosen.update(int(c) for c in np.argsort(-column, kind="stable")[:ncells])
    return np.array(sorted(chosen), dtype=np.int64), (scores_t >= threshold).any(axis=1)

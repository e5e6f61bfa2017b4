"""Search stages: exhaustive MaxSim, and PLAID's prune-then-rerank pipeline.

PLAID over a built index (Santhanam et al., 2022):
1. score the query tokens against every centroid (S = Q C^T);
2. candidates = union of the inverted lists of each query token's ``ncells``
   best centroids;
3. centroid-only MaxSim over the candidates, ignoring centroids whose best
   score is below ``threshold``; keep ``ndocs``;
4. centroid-only MaxSim with every centroid; keep ``ndocs / 4``;
5. exact MaxSim over the decoded residuals of those; return the top k.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .codec import ResidualCodec
from .documents import check_k
from .errors import InvalidInputError
from .ivf import InvertedLists
from .kernels import bucket_lut, centroid_maxsim, dot_matrix, gather_candidates, maxsim_residual, select_cells
from .tokens import CodeMatrix, ResidualRows, TokenMatrix


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, best first; equal scores keep index order."""
    k = min(k, scores.size)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
    order = np.lexsort((part, -scores[part]))
    return part[order].astype(np.int64)


def exhaustive_search(
    query: np.ndarray, matrix: TokenMatrix, k: int, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact MaxSim against every int8 document (or the ``allowed`` positions): (doc_ids, scores)."""
    positions = None if allowed is None else np.flatnonzero(allowed)
    scores = matrix.maxsim(query, positions)
    best = top_k(scores, k)
    chosen = best if positions is None else positions[best]
    return matrix.doc_ids[chosen], scores[best]


@dataclass(frozen=True)
class SearchParams:
    """PLAID pruning knobs: cells probed per query token, centroid score threshold, docs kept."""

    ncells: int
    threshold: float
    ndocs: int

    @classmethod
    def for_k(
        cls, k: int, *, ncells: int | None = None, threshold: float | None = None, ndocs: int | None = None
    ) -> SearchParams:
        """PLAID's defaults by k, with per-query overrides (validated)."""
        if k <= 10:
            base = cls(1, 0.5, 256)
        elif k <= 100:
            base = cls(2, 0.45, 1024)
        else:
            base = cls(4, 0.4, max(4 * k, 4096))
        params = cls(
            ncells=base.ncells if ncells is None else check_k(ncells),
            threshold=base.threshold if threshold is None else float(threshold),
            ndocs=base.ndocs if ndocs is None else check_k(ndocs),
        )
        if np.isnan(params.threshold):
            raise InvalidInputError("threshold must be a number")
        return params


@dataclass(frozen=True)
class CodecTables:
    """A residual codec plus the per-centroid tables the rerank kernel needs."""

    codec: ResidualCodec
    centroid_basis: np.ndarray  # float32[K, r] = C B
    centroid_norm2: np.ndarray  # float32[K] = |C|^2
    lut: np.ndarray  # float32[row_bytes, 256, 8 / nbits]: packed byte -> residual coordinates

    @classmethod
    def from_codec(cls, codec: ResidualCodec) -> CodecTables:
        centroids = codec.codebook.centroids
        basis = centroids if codec.basis is None else centroids @ codec.basis
        return cls(
            codec=codec,
            centroid_basis=np.ascontiguousarray(basis, dtype=np.float32),
            centroid_norm2=np.einsum("ij,ij->i", centroids, centroids).astype(np.float32),
            lut=bucket_lut(codec.weights, codec.nbits),
        )


@dataclass(frozen=True)
class QueryTables:
    """Per-query tables: centroid scores (K, nq) and the query in the residual basis (nq, r)."""

    scores_t: np.ndarray
    q_basis: np.ndarray

    @classmethod
    def build(cls, query: np.ndarray, tables: CodecTables) -> QueryTables:
        codec = tables.codec
        q_basis = query if codec.basis is None else query @ codec.basis
        return cls(
            scores_t=dot_matrix(codec.codebook.centroids, query),
            q_basis=np.ascontiguousarray(q_basis, dtype=np.float32),
        )


def residual_scores(
    qt: QueryTables, tables: CodecTables, rows: ResidualRows, positions: np.ndarray | None = None
) -> np.ndarray:
    """Exact MaxSim over decoded residual tokens of ``rows`` (all, or ``positions``)."""
    return maxsim_residual(
        qt.q_basis,
        qt.scores_t,
        rows.codes,
        rows.packed,
        tables.lut,
        tables.centroid_basis,
        tables.centroid_norm2,
        rows.offsets,
        positions,
    )


def plaid_search(
    query: np.ndarray,
    tables: CodecTables,
    codes: CodeMatrix,
    lists: InvertedLists,
    k: int,
    params: SearchParams,
    fetch_rows: Callable[[np.ndarray], ResidualRows],
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pruned search: (doc_ids, scores), best first. ``lists`` hold positions in ``codes``.

    ``allowed`` (a boolean mask over positions) restricts candidates to documents
    that pass a filter; when the lists yield fewer allowed candidates than the
    rerank needs, every allowed document becomes a candidate, so a selective
    filter still returns k results whenever k documents match.
    """
    qt = QueryTables.build(query, tables)
    cells, keep = select_cells(qt.scores_t, params.ncells, params.threshold)
    candidates = gather_candidates(cells, lists.offsets, lists.values, codes.n_docs)
    if allowed is not None:
        candidates = candidates[allowed[candidates]]
        if candidates.size < max(k, params.ndocs // 4):
            candidates = np.flatnonzero(allowed)
    if candidates.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    pruned = centroid_maxsim(qt.scores_t, codes.codes, codes.offsets, candidates, keep, trusted=True)
    candidates = candidates[top_k(pruned, params.ndocs)]
    full = centroid_maxsim(qt.scores_t, codes.codes, codes.offsets, candidates, None, trusted=True)
    candidates = candidates[top_k(full, max(k, params.ndocs // 4))]
    rows = fetch_rows(np.sort(codes.doc_ids[candidates]))
    scores = residual_scores(qt, tables, rows)
    best = top_k(scores, k)
    return rows.doc_ids[best], scores[best]


def exhaustive_residual_search(
    query: np.ndarray, tables: CodecTables, rows: ResidualRows, k: int, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact MaxSim over every document's (or the ``allowed`` positions') decoded residuals."""
    positions = None if allowed is None else np.flatnonzero(allowed)
    scores = residual_scores(QueryTables.build(query, tables), tables, rows, positions)
    best = top_k(scores, k)
    chosen = best if positions is None else positions[best]
    return rows.doc_ids[chosen], scores[best]

"""Search stages over any token codec: exhaustive MaxSim, and PLAID's prune-then-rerank pipeline.

PLAID over a codec with centroids (Santhanam et al., 2022):
1. score the query tokens against every centroid (S = Q C^T; the codec's prepared query);
2. candidates = union of the inverted lists of each query token's ``ncells``
   best centroids;
3. centroid-only MaxSim over the candidates, ignoring centroids whose best
   score is below ``threshold``; keep ``ndocs``;
4. centroid-only MaxSim with every centroid, which orders those ``ndocs``;
5. exact MaxSim (the codec's scoring, the same as rerank and exhaustive
   search) down that order, in batches, until the next document cannot reach
   the current k-th exact score; return the top k.

Two changes to PLAID adapt stages 3 and 5 to the collection and the query
(issue 11, measured in docs/benchmarks.md):
- the threshold never ignores more than ``1 - MIN_KEPT_CENTROIDS`` of the
  centroids: where every centroid scores low (flat, noisy token spaces), a fixed
  0.45 kept 1-2 % of them on NFCorpus and the hard synthetic collection and threw
  away most of the evidence;
- the rerank depth is not fixed (PLAID: ``ndocs / 4``). It starts at
  ``ndocs / 8`` documents (at least ``RERANK_BATCH``), so a caller who asks for a
  larger ``ndocs`` still buys a deeper rerank; after each batch, the
  next document's centroid score plus the largest (exact - centroid) correction
  seen so far estimates the best exact score it could reach; when that is below
  the k-th exact score found so far, the rerank stops (a threshold-algorithm bound
  with an estimated, not a proven, correction). Easy queries stop after one
  batch; queries whose centroid ranking is unreliable go deeper, up to ``ndocs``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from . import kernels
from .codecs import PreparedQuery, PruningIndex, StoredTokens, TokenCodec


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, best first; equal scores keep index order."""
    k = min(k, scores.size)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
    order = np.lexsort((part, -scores[part]))
    return part[order].astype(np.int64)


#: The centroid threshold never ignores more than 90 % of the centroids (see the module docstring).
MIN_KEPT_CENTROIDS = 0.1
#: Exact scores per step of the progressive rerank (at least k).
RERANK_BATCH = 64


@dataclass(frozen=True)
class PruningParams:
    """PLAID pruning knobs: cells probed per query token, centroid score threshold, docs kept."""

    ncells: int
    threshold: float
    ndocs: int

    @classmethod
    def for_k(
        cls, k: int, *, ncells: int | None = None, threshold: float | None = None, ndocs: int | None = None
    ) -> PruningParams:
        """Defaults by k, with (already validated) overrides.

        PLAID's k <= 10 tier (1 cell, threshold 0.5, 256 documents) lost 0.67 nDCG@10 on
        NFCorpus against exhaustive search over the same index (34.58 vs 35.25); 2 cells,
        threshold 0.45 and 512 documents kept 35.17 at 10.6 ms p50, 14x faster than
        exhaustive in the same run, the knee of the curve (docs/benchmarks.md, "Pruning
        curve, NFCorpus"). The k <= 100 tier is PLAID's.
        """
        if k <= 10:
            base = cls(2, 0.45, 512)
        elif k <= 100:
            base = cls(2, 0.45, 1024)
        else:
            base = cls(4, 0.4, max(4 * k, 4096))
        return cls(
            ncells=base.ncells if ncells is None else ncells,
            threshold=base.threshold if threshold is None else threshold,
            ndocs=base.ndocs if ndocs is None else ndocs,
        )


def exhaustive_search(
    codec: TokenCodec, query: PreparedQuery, parts: Sequence[tuple[StoredTokens, np.ndarray | None]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact MaxSim against every document of every part (a segment's tokens, with a boolean
    mask of the positions to score, or None for all): (doc_ids, scores), best first."""
    ids: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for tokens, allowed in parts:
        positions = None if allowed is None else np.flatnonzero(allowed)
        if positions is not None and positions.size == 0:
            continue
        scores.append(codec.score(query, tokens, positions))
        ids.append(tokens.doc_ids if positions is None else tokens.doc_ids[positions])
    if not scores:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    all_scores = np.concatenate(scores)
    best = top_k(all_scores, k)
    return np.concatenate(ids)[best], all_scores[best]


def plaid_search(
    codec: TokenCodec,
    query: PreparedQuery,
    parts: Sequence[tuple[PruningIndex, np.ndarray | None]],
    k: int,
    params: PruningParams,
    fetch_rows: Callable[[np.ndarray], StoredTokens],
    filtered: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Pruned search over segments: (doc_ids, scores), best first.

    Each part is one segment's pruning data (``lists`` hold positions in its ``codes``) and a
    boolean mask over its positions (documents not deleted, and passing a filter), or None.
    Stages 1-2 are shared; candidates of all segments then compete for the same ``ndocs``
    and the same rerank, in doc id order, so segments answer exactly as one index holding
    the same codes and lists would. With ``filtered`` (the masks hold a filter), when the
    lists yield fewer candidates than the rerank needs, every allowed document becomes a
    candidate, so a selective filter still returns k results whenever k documents match.
    """
    scores_t = codec.centroid_scores(query)
    cells, keep = _first_stage(query, scores_t, params)
    found = [_candidates(cells, pruning, mask) for pruning, mask in parts]
    if filtered and sum(c.size for c in found) < rerank_batch(k):
        found = [np.flatnonzero(mask) if mask is not None else np.arange(p.codes.n_docs) for p, mask in parts]
    segment_of = np.repeat(np.arange(len(parts)), [c.size for c in found])
    if segment_of.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    positions = np.concatenate(found)
    pruned = np.concatenate([_centroid_scores(scores_t, p, c, keep) for (p, _), c in zip(parts, found, strict=True)])
    chosen = top_k(pruned, params.ndocs)
    approx = np.empty(chosen.size, dtype=np.float32)
    doc_ids = np.empty(chosen.size, dtype=np.int64)  # of the chosen candidates only
    for s, (pruning, _) in enumerate(parts):
        mine = np.flatnonzero(segment_of[chosen] == s)
        if mine.size:
            approx[mine] = _centroid_scores(scores_t, pruning, positions[chosen[mine]], None)
            doc_ids[mine] = pruning.codes.doc_ids[positions[chosen[mine]]]
    order = top_k(approx, approx.size)
    first = max(rerank_batch(k), params.ndocs // 8)
    return progressive_rerank(codec, query, doc_ids[order], approx[order], k, fetch_rows, first)


def _first_stage(query: PreparedQuery, scores_t: np.ndarray, params: PruningParams) -> tuple[np.ndarray, np.ndarray]:
    """Each query token's cells and the kept-centroid mask: a function of S^T and the parameters
    only, so a query prepared once for several indexes with one codec (shards) keeps them."""
    memo = getattr(query, "memo", None)
    if memo is None:
        return kernels.select_cells(scores_t, params.ncells, kept_threshold(scores_t, params.threshold))
    key = ("first stage", params.ncells, params.threshold)
    with memo.setdefault("lock", threading.Lock()):  # shards searched by threads wait for the first
        if key not in memo:
            memo[key] = kernels.select_cells(scores_t, params.ncells, kept_threshold(scores_t, params.threshold))
        found: tuple[np.ndarray, np.ndarray] = memo[key]
    return found


def _candidates(cells: np.ndarray, pruning: PruningIndex, mask: np.ndarray | None) -> np.ndarray:
    """Sorted positions of one segment listed under any of ``cells`` (and allowed by ``mask``)."""
    lists = pruning.lists
    found = kernels.gather_candidates(cells, lists.offsets, lists.values, pruning.codes.n_docs)
    return found if mask is None else found[mask[found]]


def _centroid_scores(
    scores_t: np.ndarray, pruning: PruningIndex, positions: np.ndarray, keep: np.ndarray | None
) -> np.ndarray:
    """Centroid-only MaxSim of one segment's documents at ``positions``."""
    if positions.size == 0:
        return np.empty(0, dtype=np.float32)
    codes = pruning.codes
    return kernels.centroid_maxsim(scores_t, codes.codes, codes.offsets, positions, keep, trusted=True)


def kept_threshold(scores_t: np.ndarray, threshold: float) -> float:
    """``threshold``, lowered where needed so that ``MIN_KEPT_CENTROIDS`` of the centroids pass it
    (a centroid passes when its best score against any query token reaches the threshold)."""
    best = kernels.centroid_best(scores_t)
    n_kept = max(1, int(MIN_KEPT_CENTROIDS * best.size))
    floor = float(np.partition(best, best.size - n_kept)[best.size - n_kept])
    return min(threshold, floor)


def rerank_batch(k: int) -> int:
    """Documents scored exactly per step of the progressive rerank."""
    return max(k, RERANK_BATCH)


def progressive_rerank(
    codec: TokenCodec,
    query: PreparedQuery,
    doc_ids: np.ndarray,
    approx: np.ndarray,
    k: int,
    fetch_rows: Callable[[np.ndarray], StoredTokens],
    first: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact MaxSim down ``doc_ids`` (ordered by their centroid scores ``approx``, best first):
    the ``first`` documents (at least one batch), then a batch at a time until the next
    document's estimated best exact score (its centroid score plus the largest correction
    seen) falls below the k-th exact score so far: (doc_ids, scores)."""
    batch = rerank_batch(k)
    step = max(batch, first)
    found_ids: list[np.ndarray] = []
    found_scores: list[np.ndarray] = []
    largest_correction = -np.inf
    kth = -np.inf
    done = 0
    while done < doc_ids.size:
        step_ids, step_approx = doc_ids[done : done + step], approx[done : done + step]
        step = batch
        order = np.argsort(step_ids, kind="stable")
        rows = fetch_rows(step_ids[order])
        scores = codec.score(query, rows)
        largest_correction = max(largest_correction, float((scores - step_approx[order]).max()))
        found_ids.append(rows.doc_ids)
        found_scores.append(scores)
        done += step_ids.size
        all_scores = np.concatenate(found_scores)
        if all_scores.size >= k:
            kth = float(np.partition(all_scores, all_scores.size - k)[all_scores.size - k])
        if done < doc_ids.size and approx[done] + largest_correction < kth:
            break
    ids, scores = np.concatenate(found_ids), np.concatenate(found_scores)
    best = top_k(scores, k)
    return ids[best], scores[best]

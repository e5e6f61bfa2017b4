"""Inverted lists: for every centroid, the sorted ids of documents with a token there.

Stored one row per (segment, centroid) as LEB128 varints (count, then gaps
between consecutive ids), about 1.5 bytes per entry instead of 4. A segment's
lists are written once, when the segment is (:mod:`lateint_lite.segments`);
merging segments concatenates their lists (:func:`merged`) in a few vectorized
passes, without a Python step per centroid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from . import kernels
from .errors import CorruptIndexError


@dataclass(frozen=True)
class InvertedLists:
    """CSR form: documents of row c are ``values[offsets[c]:offsets[c+1]]``."""

    offsets: np.ndarray  # int64[rows + 1]
    values: np.ndarray  # int64 (doc ids, or positions after ``to_positions``)

    @property
    def n_centroids(self) -> int:
        return int(self.offsets.size - 1)

    def to_positions(self, position_of: np.ndarray, base: int = 0, dropped: np.ndarray | None = None) -> InvertedLists:
        """The same lists with doc ids replaced by positions in a token matrix (``position_of``
        is indexed by doc id - ``base``). Entries of ``dropped`` doc ids (tombstoned documents,
        no longer stored) are left out; any other id without a position is damage."""
        local = self.values - base
        if local.size and (int(local.min()) < 0 or int(local.max()) >= position_of.size):
            raise CorruptIndexError("an inverted list names a document that does not exist")
        positions = position_of[local]
        missing = positions < 0
        if not missing.any():
            return InvertedLists(offsets=self.offsets, values=positions.astype(np.int64))
        if dropped is None or not np.isin(self.values[missing], dropped).all():
            raise CorruptIndexError("an inverted list names a document that does not exist")
        rows = np.repeat(np.arange(self.n_centroids), np.diff(self.offsets))[~missing]
        offsets = np.zeros(self.offsets.size, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=self.n_centroids), out=offsets[1:])
        return InvertedLists(offsets=offsets, values=positions[~missing].astype(np.int64))


@dataclass(frozen=True)
class Postings:
    """(centroid, doc id) pairs grouped by centroid: ``centroids[i]`` owns ``lists`` row i."""

    centroids: np.ndarray  # int64[rows], ascending
    lists: InvertedLists

    def items(self) -> Iterable[tuple[int, np.ndarray]]:
        off, val = self.lists.offsets, self.lists.values
        for i, c in enumerate(self.centroids.tolist()):
            yield c, val[off[i] : off[i + 1]]


def _csr_from_pairs(rows: np.ndarray, ids: np.ndarray, n_rows: int) -> InvertedLists:
    """CSR of sorted unique (row, id) pairs."""
    order = np.lexsort((ids, rows))
    rows, ids = rows[order], ids[order]
    if rows.size:
        keep = np.ones(rows.size, dtype=bool)
        keep[1:] = (rows[1:] != rows[:-1]) | (ids[1:] != ids[:-1])
        rows, ids = rows[keep], ids[keep]
    offsets = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=offsets[1:])
    return InvertedLists(offsets=offsets, values=ids.astype(np.int64))


def postings_of(doc_codes: Iterable[tuple[int, np.ndarray]]) -> Postings:
    """Group (doc_id, codes) pairs into per-centroid sorted unique doc id lists."""
    pairs = [(doc_id, np.asarray(codes, dtype=np.int64).ravel()) for doc_id, codes in doc_codes]
    if not pairs:
        return Postings(np.empty(0, np.int64), InvertedLists(np.zeros(1, np.int64), np.empty(0, np.int64)))
    cent = np.concatenate([codes for _, codes in pairs])
    docs = np.repeat(np.array([d for d, _ in pairs], dtype=np.int64), [codes.size for _, codes in pairs])
    centroids, rows = np.unique(cent, return_inverse=True)
    return Postings(centroids, _csr_from_pairs(rows, docs, centroids.size))  # drops repeated pairs


def group_by_centroid(doc_codes: Iterable[tuple[int, np.ndarray]]) -> dict[int, np.ndarray]:
    """centroid -> sorted unique doc ids, from (doc_id, codes) pairs."""
    return dict(postings_of(doc_codes).items())


def encode_list(doc_ids: np.ndarray) -> bytes:
    """Row blob of one list (doc ids strictly increasing)."""
    return kernels.varint_encode(doc_ids)


def encode_postings(postings: Postings) -> dict[int, bytes]:
    """centroid -> row blob for every list of ``postings``."""
    blobs = kernels.varint_encode_lists(postings.lists.offsets, postings.lists.values)
    return dict(zip(postings.centroids.tolist(), blobs, strict=True))


def decode_rows(rows: Mapping[int, bytes], n_centroids: int, max_doc_id: int) -> InvertedLists:
    """All lists from (centroid_id -> blob); missing centroids have empty lists. Only the rows
    present are decoded (a one-document segment has ~100 of 65,536), so the cost follows the
    segment's size, not the codebook's."""
    if rows and (min(rows) < 0 or max(rows) >= n_centroids):
        raise CorruptIndexError("inverted list for a centroid that does not exist")
    present = sorted(rows)
    row_offsets, values = kernels.varint_decode_lists([rows[c] for c in present], max_doc_id)
    counts = np.zeros(n_centroids, dtype=np.int64)
    counts[np.asarray(present, dtype=np.int64)] = np.diff(row_offsets)
    offsets = np.zeros(n_centroids + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return InvertedLists(offsets=offsets, values=values)


def decode_one(blob: bytes | None) -> np.ndarray:
    """Doc ids of one stored list (empty when there is no row)."""
    if blob is None:
        return np.empty(0, dtype=np.int64)
    return kernels.varint_decode_lists([blob], np.iinfo(np.int64).max)[1]


def merged(parts: Sequence[InvertedLists], dropped: np.ndarray) -> Postings:
    """One set of lists from the lists of consecutive segments (``parts`` in doc id order, each
    over all centroids), without the ``dropped`` (tombstoned) doc ids."""
    n_rows = parts[0].n_centroids if parts else 0
    rows = np.concatenate([np.repeat(np.arange(n_rows), np.diff(p.offsets)) for p in parts]) if parts else np.empty(0)
    ids = np.concatenate([p.values for p in parts]) if parts else np.empty(0, np.int64)
    keep = ~np.isin(ids, dropped)
    rows, ids = rows[keep].astype(np.int64), ids[keep]
    # each part is sorted by (row, id) and every id of a part is below the next part's ids, so
    # a stable sort by row alone leaves each row's ids sorted
    order = np.argsort(rows, kind="stable")
    rows, ids = rows[order], ids[order]
    centroids, counts = np.unique(rows, return_counts=True)
    offsets = np.zeros(centroids.size + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Postings(centroids.astype(np.int64), InvertedLists(offsets=offsets, values=ids.astype(np.int64)))

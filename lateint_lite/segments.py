"""Segments: the documents of one write, with their own inverted lists, merged by later writes.

A segment is a range of doc_ids (``first_doc..last_doc``; ranges never overlap,
and new documents always get doc_ids above every range) plus the inverted lists
of exactly its documents. A write appends one segment (its lists written once);
a delete marks tombstones instead of rewriting lists; readers load only the
segments and tombstones they have not seen (:mod:`lateint_lite.state`).

Merging follows Lucene's LogMergePolicy: a segment's level is the order of
magnitude (base ``MERGE_FACTOR``) of its live documents over ``FLOOR_DOCS``, and
whenever ``MERGE_FACTOR`` adjacent segments share a level they become one
segment, their lists concatenated without the tombstoned documents. Every
document is merged O(log n) times, no write rewrites more than the segments it
merges, and the number of segments stays below ``MERGE_FACTOR`` per level.
Only adjacent segments merge, so a merged segment is again one doc_id range.
Tiered merging (Lucene's default since 4.x) can merge non-adjacent segments,
which would need a segment column on every document; it buys fewer merges
under heavy deletes, which ``optimize()`` covers here: it makes the whole index
one segment with lists recomputed from the codes (:func:`replace_all`).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

import numpy as np

from . import ivf
from .store import SegmentRow, Store

#: Adjacent segments of one level merged at once (Lucene's default).
MERGE_FACTOR = 10
#: Segments with fewer live documents than this share the lowest level.
FLOOR_DOCS = 1000
#: A long write starts a new segment after this many documents (bounds the postings it holds).
SEGMENT_MAX_DOCS = 65_536


def level(live_docs: int) -> int:
    """Merge level of a segment with ``live_docs`` live documents."""
    n, size = 0, FLOOR_DOCS
    while live_docs >= size:
        n += 1
        size *= MERGE_FACTOR
    return n


def merges_due(segments: Sequence[SegmentRow]) -> list[list[SegmentRow]]:
    """Runs of ``MERGE_FACTOR`` adjacent segments on one level (``segments`` by doc_id), oldest first."""
    runs: list[list[SegmentRow]] = []
    start = 0
    while start < len(segments):
        end = start
        while end < len(segments) and level(segments[end].live) == level(segments[start].live):
            end += 1
        for lo in range(start, end - MERGE_FACTOR + 1, MERGE_FACTOR):
            runs.append(list(segments[lo : lo + MERGE_FACTOR]))
        start = end
    return runs


def append(store: Store, doc_ids: Sequence[int], doc_cells: Iterable[tuple[int, np.ndarray]] | None) -> int:
    """Record new documents (consecutive new doc_ids) as a segment with their lists (None: the
    codec keeps no lists); inside a write. Returns the segment id."""
    segment_id = store.add_segment(min(doc_ids), max(doc_ids), len(doc_ids))
    if doc_cells is not None:
        store.write_segment_lists(segment_id, ivf.encode_postings(ivf.postings_of(doc_cells)))
    return segment_id


def replace_all(store: Store, doc_cells: Iterable[tuple[int, np.ndarray]] | None) -> None:
    """Make every stored document one segment, lists from ``doc_cells`` (after a build)."""
    store.clear_segments()
    counts = store.doc_token_counts()
    if counts:
        append(store, [d for d, _ in counts], doc_cells)


def tombstone(store: Store, doc_ids: Sequence[int]) -> None:
    """Mark deleted documents in their segments; drop segments left without live documents.
    Inside the write that deleted them."""
    if not doc_ids:
        return
    segments = store.segments()
    firsts = [s.first_doc for s in segments]
    marks: list[tuple[int, int]] = []
    for doc_id in doc_ids:
        at = bisect.bisect_right(firsts, doc_id) - 1
        if at >= 0 and doc_id <= segments[at].last_doc:
            marks.append((segments[at].segment_id, int(doc_id)))
    store.add_tombstones(marks)
    emptied = [s.segment_id for s in store.segments() if s.live <= 0]
    store.delete_segments(emptied)


def merge(store: Store, run: Sequence[SegmentRow], n_centroids: int | None) -> int | None:
    """Replace adjacent segments by one, tombstoned documents dropped from its lists; inside a
    write. Returns the new segment's id (None when no live document was left)."""
    live = sum(s.live for s in run)
    ids = [s.segment_id for s in run]
    postings = None
    if n_centroids is not None and live > 0:
        parts = [ivf.decode_rows(store.segment_list_rows(s.segment_id), n_centroids, s.last_doc) for s in run]
        dropped = np.concatenate([store.tombstoned_doc_ids(s.segment_id) for s in run])
        postings = ivf.merged(parts, dropped)
    store.delete_segments(ids)
    if live <= 0:
        return None
    segment_id = store.add_segment(run[0].first_doc, run[-1].last_doc, live)
    if postings is not None:
        store.write_segment_lists(segment_id, ivf.encode_postings(postings))
    return segment_id


def merge_due(store: Store, n_centroids: int | None) -> int:
    """Run the merge policy until no merge is due; inside a write. Returns how many merges ran."""
    done = 0
    while runs := merges_due(store.segments()):
        for run in runs:
            merge(store, run, n_centroids)
            done += 1
    return done

"""Inverted-list encoding and segment merging against a plain set model."""

from __future__ import annotations

import numpy as np
import pytest

from lateint_lite import ivf
from lateint_lite.errors import CorruptIndexError


def model_lists(doc_codes):
    lists: dict[int, set[int]] = {}
    for doc_id, codes in doc_codes:
        for c in set(codes.tolist()):
            lists.setdefault(c, set()).add(doc_id)
    return lists


def random_docs(rng, ids, n_centroids=40):
    return [(int(d), rng.integers(0, n_centroids, rng.integers(1, 12))) for d in ids]


def test_postings_group_unique_sorted_ids():
    rng = np.random.default_rng(0)
    docs = random_docs(rng, range(1, 60))
    grouped = ivf.group_by_centroid(docs)
    assert {c: set(v.tolist()) for c, v in grouped.items()} == model_lists(docs)
    assert all((np.diff(v) > 0).all() for v in grouped.values())


@pytest.mark.parametrize("seed", range(5))
def test_merged_segments_equal_the_set_model_without_dropped_ids(seed):
    """Lists of consecutive segments, merged with some ids dropped, equal lists grouped from
    scratch over the surviving documents."""
    rng = np.random.default_rng(seed)
    bounds = np.sort(rng.choice(np.arange(2, 120), 4, replace=False))
    ranges = [range(lo, hi) for lo, hi in zip(np.r_[1, bounds], np.r_[bounds, 120], strict=True)]
    n_centroids = 40
    parts, everything = [], []
    for ids in ranges:
        docs = random_docs(rng, ids, n_centroids)
        everything += docs
        rows = ivf.encode_postings(ivf.postings_of(docs))
        parts.append(ivf.decode_rows(rows, n_centroids, max_doc_id=119))
    dropped = rng.choice(np.arange(1, 120), 35, replace=False)
    merged = ivf.merged(parts, dropped)
    got = {c: ids.tolist() for c, ids in merged.items()}
    survivors = [(d, codes) for d, codes in everything if d not in set(dropped.tolist())]
    want = {c: sorted(ids) for c, ids in model_lists(survivors).items()}
    assert got == want


def test_to_positions_leaves_out_dropped_ids_only():
    rows = {0: ivf.encode_list(np.array([10, 12, 13])), 1: ivf.encode_list(np.array([11, 13]))}
    lists = ivf.decode_rows(rows, 2, max_doc_id=13)
    position_of = np.array([0, -1, 1, 2])  # doc ids 10..13 from base 10; 11 was deleted
    moved = lists.to_positions(position_of, base=10, dropped=np.array([11]))
    np.testing.assert_array_equal(moved.offsets, [0, 3, 4])
    np.testing.assert_array_equal(moved.values, [0, 1, 2, 2])
    with pytest.raises(CorruptIndexError):
        lists.to_positions(position_of, base=10)  # 11 has no position and is not dropped
    with pytest.raises(CorruptIndexError):
        lists.to_positions(position_of, base=11, dropped=np.array([11]))  # 10 lies below the segment


def test_decode_rows_rejects_unknown_centroids_and_ids():
    rows = {0: ivf.encode_list(np.array([1, 5])), 2: ivf.encode_list(np.array([3]))}
    lists = ivf.decode_rows(rows, 3, max_doc_id=5)
    np.testing.assert_array_equal(lists.offsets, [0, 2, 2, 3])
    with pytest.raises(CorruptIndexError):
        ivf.decode_rows(rows, 2, max_doc_id=5)
    with pytest.raises(CorruptIndexError):
        ivf.decode_rows(rows, 3, max_doc_id=4)
    position_of = np.array([-1, 0, -1, 1, -1, -1])
    with pytest.raises(CorruptIndexError):
        lists.to_positions(position_of)  # doc 5 has no position

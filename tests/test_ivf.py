"""Inverted-list encoding and patching against a plain set model."""

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
def test_patched_adds_and_removes_like_sets(seed):
    rng = np.random.default_rng(seed)
    docs = random_docs(rng, range(1, 80))
    stored = ivf.encode_postings(ivf.postings_of(docs))
    model = model_lists(docs)
    added = random_docs(rng, range(80, 95))
    stored.update(ivf.patched(stored, ivf.postings_of(added), remove=False))
    for c, ids in model_lists(added).items():
        model.setdefault(c, set()).update(ids)
    removed = [docs[i] for i in rng.choice(len(docs), 30, replace=False)] + added[:3]
    for c, blob in ivf.patched(stored, ivf.postings_of(removed), remove=True).items():
        if blob is None:
            del stored[c]
        else:
            stored[c] = blob
    for c, ids in model_lists(removed).items():
        model[c] -= ids
    model = {c: ids for c, ids in model.items() if ids}
    assert {c: set(ivf.decode_one(b).tolist()) for c, b in stored.items()} == model


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


def test_the_empty_list_constant_is_what_the_encoder_writes():
    from lateint_lite.ivf import EMPTY_LIST, decode_one, encode_list

    assert encode_list(np.empty(0, np.int64)) == EMPTY_LIST
    assert decode_one(EMPTY_LIST).size == 0

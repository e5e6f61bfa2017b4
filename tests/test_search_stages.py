"""PLAID's adaptive stages (issue 11): the centroid-threshold floor and the progressive rerank,
checked against a plain numpy oracle (exact MaxSim over every document)."""

from __future__ import annotations

import numpy as np
import pytest

from lateint_lite.codecs import Int8Codec
from lateint_lite.search import MIN_KEPT_CENTROIDS, kept_threshold, progressive_rerank, top_k
from lateint_lite.store import TokenRow

DIM = 16


def _documents(n_docs: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    docs = [rng.standard_normal((int(rng.integers(3, 12)), DIM)).astype(np.float32) for _ in range(n_docs)]
    return [d / np.linalg.norm(d, axis=1, keepdims=True) for d in docs]


class Rows:
    """``fetch_rows`` over int8-encoded documents that records how many documents it was asked for."""

    def __init__(self, codec: Int8Codec, docs: list[np.ndarray]) -> None:
        self.codec = codec
        encoded = codec.encode(docs)
        self.rows = {i: TokenRow(i, e.n_tokens, e.codes, e.payload) for i, e in enumerate(encoded)}
        self.fetched = 0

    def __call__(self, doc_ids: np.ndarray):
        assert (np.diff(doc_ids) > 0).all(), "rows are fetched in doc_id order"
        self.fetched += doc_ids.size
        return self.codec.read_rows(self.rows[int(i)] for i in doc_ids)


def _exhaustive(codec: Int8Codec, rows: Rows, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (doc ids, scores) of the codec's exact MaxSim over every document."""
    scores = codec.score(codec.prepare(query), codec.read_rows(rows.rows[i] for i in range(len(rows.rows))))
    best = top_k(scores, k)
    return best, scores[best]


def _numpy_maxsim(codec: Int8Codec, rows: Rows, query: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Plain numpy MaxSim of the query against the decoded tokens of ``ids``."""
    return np.array([(query @ codec.decode(rows.rows[int(i)]).T).max(axis=1).sum() for i in ids])


def _check(codec: Int8Codec, rows: Rows, query: np.ndarray, ids: np.ndarray, scores: np.ndarray) -> None:
    want_ids, want_scores = _exhaustive(codec, rows, query, ids.size)
    assert ids.tolist() == want_ids.tolist()
    np.testing.assert_array_equal(scores, want_scores)
    # the int8 codec scores an int8-quantized query: close to float MaxSim, not equal
    np.testing.assert_allclose(scores, _numpy_maxsim(codec, rows, query, ids), rtol=5e-3)


@pytest.mark.parametrize("k", [1, 5, 70])
def test_uninformative_centroid_scores_make_the_rerank_score_everything(k):
    docs = _documents(300)
    codec = Int8Codec(DIM)
    rows = Rows(codec, docs)
    query = _documents(1, seed=9)[0]
    order = np.random.default_rng(1).permutation(len(docs)).astype(np.int64)
    ids, scores = progressive_rerank(codec, codec.prepare(query), order, np.zeros(len(docs)), k, rows)
    assert rows.fetched == len(docs)
    assert ids.size == k
    _check(codec, rows, query, ids, scores)


def _perfectly_ranked(first: int = 0):
    """progressive_rerank over 300 documents whose centroid scores rank them exactly:
    (codec, rows, query, ids, scores)."""
    docs = _documents(300)
    codec = Int8Codec(DIM)
    rows = Rows(codec, docs)
    query = _documents(1, seed=3)[0]
    order, exact_all = _exhaustive(codec, rows, query, len(docs))
    ids, scores = progressive_rerank(codec, codec.prepare(query), order, exact_all - 0.5, 10, rows, first=first)
    return codec, rows, query, ids, scores


def test_exact_centroid_scores_stop_the_rerank_after_one_batch():
    codec, rows, query, ids, scores = _perfectly_ranked()
    _check(codec, rows, query, ids, scores)
    assert rows.fetched < 300  # a perfectly ranked list needs one batch


def test_rerank_of_fewer_documents_than_k_returns_them_all():
    docs = _documents(4)
    codec = Int8Codec(DIM)
    rows = Rows(codec, docs)
    query = _documents(1, seed=5)[0]
    ids, _ = progressive_rerank(codec, codec.prepare(query), np.arange(4), np.zeros(4), 10, rows)
    assert sorted(ids.tolist()) == [0, 1, 2, 3]


def test_threshold_is_kept_where_enough_centroids_pass_it():
    scores_t = np.linspace(-1, 1, 1000, dtype=np.float32).reshape(500, 2)
    assert kept_threshold(scores_t, 0.0) == 0.0  # half the centroids pass


def test_threshold_is_lowered_so_a_share_of_the_centroids_passes():
    rng = np.random.default_rng(0)
    scores_t = (0.3 * rng.random((4096, 8))).astype(np.float32)  # nothing reaches 0.45
    threshold = kept_threshold(scores_t, 0.45)
    passing = int((scores_t.max(axis=1) >= threshold).sum())
    assert threshold < 0.45
    assert passing == int(MIN_KEPT_CENTROIDS * 4096)


def test_no_threshold_stays_no_threshold():
    scores_t = np.zeros((64, 4), dtype=np.float32)
    assert kept_threshold(scores_t, float("-inf")) == float("-inf")


def test_a_deeper_first_step_is_scored_even_when_the_bound_would_stop():
    codec, rows, query, ids, scores = _perfectly_ranked(first=200)
    assert rows.fetched >= 200
    _check(codec, rows, query, ids, scores)

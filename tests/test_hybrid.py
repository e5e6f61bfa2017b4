"""BM25 over FTS5, fusion, and hostile query strings."""

from __future__ import annotations

import pytest

from lateint_lite.errors import InvalidInputError
from lateint_lite.fusion import normalized_score_fusion, reciprocal_rank_fusion
from lateint_lite.lexical import fts5_query

DOCS = [
    {"id": "a", "text": "apple orchards grow apples in autumn"},
    {"id": "b", "text": "the near field of an antenna"},
    {"id": "c", "text": "bananas and apples are fruit"},
    {"id": "d", "text": 'quotes "inside" text and (parentheses)'},
]

HOSTILE = [
    '"',
    '""',
    "NEAR(apple banana, 2)",
    "apple AND OR NOT",
    "appl*",
    "*",
    "(apple",
    "apple)",
    "text: apple",
    "col:val ^start",
    "'; DROP TABLE documents; --",
    "\\",
    "apple\x00banana",
    "🍎 apple",
]


@pytest.fixture
def lexical_index(fake_index):
    fake_index.add(DOCS)
    return fake_index


def test_fts5_query_quotes_every_word():
    assert fts5_query("Apple NEAR banana") == '"apple" OR "near" OR "banana"'
    assert fts5_query("apple apple") == '"apple"'
    assert fts5_query("  !!! ") is None


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_never_raise_syntax_errors(lexical_index, query):
    for mode in ("bm25", "hybrid"):
        hits = lexical_index.search(query, k=4, mode=mode)
        assert all(h.id in {"a", "b", "c", "d"} for h in hits)
    assert len(lexical_index) == 4


def test_bm25_ranks_by_shared_words(lexical_index):
    hits = lexical_index.search("apples autumn", k=4, mode="bm25")
    assert hits[0].id == "a"
    assert {h.id for h in hits} == {"a", "c"}
    assert hits[0].score > hits[1].score
    assert lexical_index.search("near", k=4, mode="bm25")[0].id == "b"  # NEAR is a plain word here
    assert lexical_index.search("???", k=4, mode="bm25") == []


def test_hybrid_includes_documents_from_both_rankings(lexical_index):
    hits = lexical_index.search("apples fruit", k=4, mode="hybrid")
    assert hits[0].id in {"a", "c"}
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    with pytest.raises(InvalidInputError, match="fusion"):
        lexical_index.search("apples", mode="hybrid", fusion="max")


def test_bm25_follows_deletes(lexical_index):
    lexical_index.delete(["a"])
    assert [h.id for h in lexical_index.search("apples autumn", k=4, mode="bm25")] == ["c"]


def test_reciprocal_rank_fusion_by_hand():
    fused = reciprocal_rank_fusion([[(1, 9.0), (2, 8.0)], [(2, 0.5), (3, 0.4)]], k=60)
    assert [d for d, _ in fused] == [2, 1, 3]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1][1] == pytest.approx(1 / 61)


def test_normalized_score_fusion_by_hand():
    fused = normalized_score_fusion([[(1, 10.0), (2, 6.0), (3, 2.0)], [(3, 5.0), (1, 1.0)]], [1.0, 1.0])
    scores = dict(fused)
    assert scores[1] == pytest.approx(1.0 + 0.0)
    assert scores[2] == pytest.approx(0.5)
    assert scores[3] == pytest.approx(0.0 + 1.0)
    assert normalized_score_fusion([[], [(4, 2.0)]], [1.0, 1.0]) == [(4, 1.0)]

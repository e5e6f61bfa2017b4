"""The validation boundary: caller input is checked and normalized before any I/O."""

from __future__ import annotations

import numpy as np
import pytest

import lateint_lite as li
from lateint_lite.errors import InvalidInputError
from lateint_lite.requests import SearchOptions, search_request

DOCS = [
    {"id": "a", "text": "red apples and pears", "meta": {"x": 1, "ok": True, "tag": "fruit"}},
    {"id": "b", "text": "green pears in baskets", "meta": {"x": 3, "ok": False, "tag": "fruit"}},
    {"id": "c", "text": "blue boats on water", "meta": {"x": 5, "ok": True, "tag": "boat"}},
]


@pytest.fixture
def filled(fake_index):
    fake_index.add(DOCS)
    return fake_index


def ids(hits):
    return sorted(h.id for h in hits)


def test_numpy_scalars_in_filters_behave_like_python_ones(filled):
    assert ids(filled.search("pears", k=5, where={"x": {"gt": np.float64(2)}})) == ["b", "c"]
    assert ids(filled.search("pears", k=5, where={"x": {"lte": np.int64(3)}})) == ["a", "b"]
    assert ids(filled.search("pears", k=5, where={"ok": np.bool_(True)})) == ["a", "c"]
    assert ids(filled.search("pears", k=5, where={"tag": {"in": np.array(["boat"])}})) == ["c"]
    assert ids(filled.search("pears", k=5, where={"x": {"exists": np.bool_(True)}})) == ["a", "b", "c"]


@pytest.mark.parametrize(
    "where",
    [
        {"x": {"gt": 2**70}},
        {"x": {"in": [1, -(2**64)]}},
        {"x": {"gt": float("inf")}},
        {"ok": {"gt": True}},
        {"x": {"gt": [1]}},
        {"x": {"near": 1}},
    ],
)
def test_filters_sqlite_cannot_hold_are_invalid_input(filled, where):
    with pytest.raises(InvalidInputError):
        filled.search("pears", where=where)


@pytest.mark.parametrize(
    "options",
    [
        {"threshold": "abc"},
        {"threshold": float("nan")},
        {"ncells": 1.5},
        {"ndocs": True},
        {"exact": "yes"},
        {"mode": "vector"},
        {"fusion": "max"},
        {"bogus": 1},
    ],
)
def test_bad_search_options_are_invalid_input(filled, options):
    with pytest.raises(InvalidInputError):
        filled.search("pears", **options)


def test_search_options_object_and_keyword_overrides(filled):
    options = SearchOptions(mode="bm25", where={"tag": "fruit"})
    assert ids(filled.search("pears", k=5, options=options)) == ["a", "b"]
    assert ids(filled.search("pears", k=5, options=options, where={"tag": "boat"})) == []
    assert filled.search("boats", k=np.int64(1), options=options, mode="maxsim", where=None)[0].id == "c"
    with pytest.raises(InvalidInputError, match="SearchOptions"):
        filled.search("pears", options={"mode": "bm25"})
    request = search_request(np.int32(7), None, {"mode": "hybrid"})
    assert request.k == 7 and request.depth == 100 and request.params.ncells == 2


def test_ids_and_queries_must_be_lists_not_single_strings(filled):
    with pytest.raises(InvalidInputError, match="list of document ids"):
        filled.rerank("pears", "ab")
    with pytest.raises(InvalidInputError, match="list of document ids"):
        filled.delete(5)
    with pytest.raises(InvalidInputError):
        filled.search_many("pears")
    assert filled.delete("a") == 1  # one string is one id for delete
    assert [h.id for h in filled.rerank("pears", [np.int64(0)] * 0 + ["b"])] == ["b"]


def test_search_vectors_is_maxsim_only(filled, fake_encoder):
    query = fake_encoder.encode_queries(["pears"])[0]
    assert filled.search_vectors(query, k=1)[0].id in {"a", "b"}
    with pytest.raises(InvalidInputError, match="MaxSim only"):
        filled.search_vectors(query, k=1, mode="bm25")


def test_bad_input_reads_and_writes_nothing(filled, monkeypatch):
    calls = []
    monkeypatch.setattr(filled._store, "write", lambda: calls.append("write"))
    monkeypatch.setattr(filled._store, "snapshot", lambda: calls.append("snapshot"))
    for bad in (
        lambda: filled.add([{"id": "z", "text": ""}]),
        lambda: filled.add([{"id": "z", "text": "t", "meta": {"v": float("nan")}}]),
        lambda: filled.search("pears", k=0),
        lambda: filled.search("pears", where={"x": {"gt": 2**64}}),
        lambda: filled.build(nbits=3),
        lambda: filled.rerank("", ["a"]),
    ):
        with pytest.raises(InvalidInputError):
            bad()
    assert calls == []


def test_build_options_object(filled):
    with pytest.raises(InvalidInputError, match="BuildOptions"):
        filled.build(options={"nbits": 2})
    with pytest.raises(InvalidInputError, match="unknown option"):
        filled.build(li.BuildOptions(), centroids=4)

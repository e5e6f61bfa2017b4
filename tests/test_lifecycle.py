"""Index life cycle: upsert, delete, filters, batch search, rerank."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import HashEncoder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lateint_lite as li
from lateint_lite.errors import DocumentNotFoundError, DuplicateIdError, InvalidInputError

DIM = 32
WORDS = [f"w{i}" for i in range(40)]

HOSTILE = [
    "'; DROP TABLE documents; --",
    'Robert"); DELETE FROM meta; --',
    "$.lang",
    "a'b\"c",
    "%_*?",
    "\\x00",
    "ключ",
    "OR 1=1",
]


def corpus(n=300, seed=0):
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        words = " ".join(rng.choice(WORDS, int(rng.integers(4, 20))))
        meta = {
            "lang": ["en", "de", "fr"][i % 3],
            "year": 2000 + i % 25,
            "score": float(i % 7) / 2,
            "date": f"2024-{1 + i % 12:02d}-01",
            "rare": "yes" if i % 100 == 7 else "no",
            "draft": i % 5 == 0,
        }
        if i % 4 == 0:
            meta["tags"] = "x"
        docs.append({"id": f"d{i}", "text": words, "meta": meta})
    return docs


def brute_force_filter(docs, predicate):
    return {d["id"] for d in docs if predicate(d["meta"])}


FILTERS = [
    ({"lang": "en"}, lambda m: m["lang"] == "en"),
    ({"lang": {"in": ["de", "fr"]}}, lambda m: m["lang"] in ("de", "fr")),
    ({"lang": {"nin": ["de", "fr"]}}, lambda m: m["lang"] not in ("de", "fr")),
    ({"year": {"gte": 2010, "lt": 2015}}, lambda m: 2010 <= m["year"] < 2015),
    ({"score": {"gt": 2.0}}, lambda m: m["score"] > 2.0),
    ({"date": {"gte": "2024-06-01", "lte": "2024-08-01"}}, lambda m: "2024-06-01" <= m["date"] <= "2024-08-01"),
    ({"draft": True}, lambda m: m["draft"] is True),
    ({"draft": {"ne": True}}, lambda m: m["draft"] is not True),
    ({"tags": {"exists": True}}, lambda m: "tags" in m),
    ({"tags": {"exists": False}, "lang": "fr"}, lambda m: "tags" not in m and m["lang"] == "fr"),
    ({"rare": "yes"}, lambda m: m["rare"] == "yes"),
    ({"year": "2003"}, lambda m: False),  # a string never equals a number
    ({"date": {"prefix": "2024-07"}}, lambda m: m["date"].startswith("2024-07")),
    ({"lang": {"prefix": "e"}, "year": {"lt": 2010}}, lambda m: m["lang"].startswith("e") and m["year"] < 2010),
    ({"year": {"prefix": "20"}}, lambda m: False),  # prefixes test strings only
    ({"$or": [{"lang": "en"}, {"year": {"gte": 2018}}]}, lambda m: m["lang"] == "en" or m["year"] >= 2018),
    (
        {"draft": False, "$or": [{"tags": {"exists": True}}, {"$or": [{"rare": "yes"}, {"lang": "fr"}]}]},
        lambda m: m["draft"] is False and ("tags" in m or m["rare"] == "yes" or m["lang"] == "fr"),
    ),
]


@pytest.fixture(params=["int8", "built"])
def filtered_index(request, index_path):
    docs = corpus()
    idx = li.open(index_path, create=True, encoder=HashEncoder(dim=DIM), auto_build=False)
    idx.add(docs)
    if request.param == "built":
        idx.build(residual_dim=16)
    yield idx, docs
    idx.close()


@pytest.mark.parametrize("where,predicate", FILTERS)
def test_filters_match_brute_force(filtered_index, where, predicate):
    idx, docs = filtered_index
    allowed = brute_force_filter(docs, predicate)
    for mode in ("maxsim", "bm25", "hybrid", "pooled"):
        hits = idx.search("w1 w2 w3 w4", k=len(docs), mode=mode, where=where)
        assert {h.id for h in hits} <= allowed, mode
    exact = idx.search("w1 w2 w3 w4", k=len(docs), where=where, exact=True)
    assert {h.id for h in exact} == allowed


def test_selective_filter_still_returns_k_results(filtered_index):
    """1 % of documents match; pruning must not starve the result list."""
    idx, docs = filtered_index
    matching = brute_force_filter(docs, lambda m: m["rare"] == "yes")
    assert len(matching) == 3
    hits = idx.search("w5 w6", k=3, where={"rare": "yes"})
    assert {h.id for h in hits} == matching
    ten = idx.search("w5 w6", k=10, where={"lang": "de"})
    assert len(ten) == 10 and all(idx.get(h.id).meta["lang"] == "de" for h in ten)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_injection_strings_are_stored_and_filtered_literally(fake_index, hostile):
    fake_index.add(
        [
            {"id": hostile, "text": "alpha beta", "meta": {hostile: hostile, "k": hostile}},
            {"id": "plain", "text": "alpha beta", "meta": {"k": "other"}},
        ]
    )
    assert fake_index.get(hostile).meta == {hostile: hostile, "k": hostile}
    assert [h.id for h in fake_index.search("alpha", k=5, where={hostile: hostile})] == [hostile]
    assert [h.id for h in fake_index.search("alpha", k=5, where={"k": {"in": [hostile]}})] == [hostile]
    assert [h.id for h in fake_index.search("alpha", k=5, where={"k": {"ne": hostile}})] == ["plain"]
    assert fake_index.delete([hostile]) == 1
    assert fake_index.ids() == ["plain"]


@pytest.mark.parametrize(
    "where",
    [
        "lang=en",
        {"": 1},
        {"lang": {}},
        {"lang": {"like": "e%"}},
        {"lang": {"in": "en"}},
        {"lang": {"in": []}},
        {"lang": ["en"]},
        {"year": {"gt": None}},
        {"year": {"gt": float("nan")}},
        {"draft": {"gt": True}},
        {"tags": {"exists": "yes"}},
    ],
)
def test_bad_filters_are_rejected(filtered_index, where):
    idx, _ = filtered_index
    with pytest.raises(InvalidInputError):
        idx.search("w1", where=where)


def test_upsert_replaces_everything_in_one_transaction(fake_index):
    fake_index.add([{"id": "a", "text": "red apples", "meta": {"v": 1}}, {"id": "b", "text": "green pears"}])
    with pytest.raises(DuplicateIdError):
        fake_index.add([{"id": "a", "text": "again"}])
    fake_index.upsert([{"id": "a", "text": "blue bananas", "meta": {"v": 2}}, {"id": "c", "text": "new"}])
    assert fake_index.get("a").text == "blue bananas" and fake_index.get("a").meta == {"v": 2}
    assert sorted(fake_index.ids()) == ["a", "b", "c"]
    assert [h.id for h in fake_index.search("apples", k=3, mode="bm25")] == []
    assert fake_index.search("bananas", k=1, mode="bm25")[0].id == "a"
    assert fake_index.search("bananas", k=1)[0].id == "a"
    assert fake_index.search("blue bananas", k=1, mode="pooled")[0].id == "a"
    with pytest.raises(InvalidInputError):
        fake_index.upsert([{"id": "a", "text": "ok"}, {"id": "b", "text": ""}])
    assert fake_index.get("a").text == "blue bananas"


def test_search_many_equals_search(fake_index):
    fake_index.add(corpus(60))
    queries = ["w1 w2", "w3", "w7 w8 w9"]
    many = fake_index.search_many(queries, k=5, where={"lang": "en"})
    single = [fake_index.search(q, k=5, where={"lang": "en"}) for q in queries]
    assert [[h.id for h in hits] for hits in many] == [[h.id for h in hits] for hits in single]
    assert fake_index.search_many([], k=3) == []
    with pytest.raises(InvalidInputError):
        fake_index.search_many("w1 w2")


def test_rerank_scores_given_documents_exactly(fake_index, fake_encoder):
    docs = corpus(40)
    fake_index.add(docs)
    ids = ["d3", "d10", "d20", "d33"]
    hits = fake_index.rerank("w1 w2 w3", ids)
    assert sorted(h.id for h in hits) == sorted(ids)
    q = fake_encoder.encode_queries(["w1 w2 w3"])[0]
    expected = {
        d["id"]: float((q @ fake_encoder.encode_documents([d["text"]])[0].T).max(axis=1).sum())
        for d in docs
        if d["id"] in ids
    }
    for hit in hits:
        assert hit.score == pytest.approx(expected[hit.id], abs=0.05)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len(fake_index.rerank("w1", ids, k=2)) == 2
    with pytest.raises(DocumentNotFoundError):
        fake_index.rerank("w1", ["d3", "ghost"])


# -- property test: any add/upsert/delete history equals a fresh build of the final set ------------

ACTIONS = st.lists(
    st.tuples(st.sampled_from(["add", "upsert", "delete"]), st.integers(0, 14), st.integers(0, 5)),
    min_size=1,
    max_size=25,
)


def doc_vectors(doc_number: int, version: int) -> np.ndarray:
    rng = np.random.default_rng(doc_number * 100 + version)
    return rng.standard_normal((int(rng.integers(2, 9)), DIM)).astype(np.float32)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS)
def test_any_history_equals_a_fresh_index_of_the_final_documents(tmp_path_factory, actions):
    """Replay random adds/upserts/deletes on a built index, then compare with a copy of the
    same built index (same centroids) that received the final document set in one add."""
    import shutil

    base = tmp_path_factory.mktemp("history")
    seeds = [{"id": f"s{i}", "text": f"seed {i}", "vectors": doc_vectors(1000 + i, 0)} for i in range(40)]
    with li.open(base / "seeded.lateint", create=True, encoder=HashEncoder(dim=DIM), auto_build=False) as idx:
        idx.add(seeds)
        idx.build(residual_dim=16, seed=3)
    shutil.copy(base / "seeded.lateint", base / "live.lateint")
    shutil.copy(base / "seeded.lateint", base / "fresh.lateint")

    final: dict[str, dict] = {d["id"]: d for d in seeds}
    with li.open(base / "live.lateint", encoder=HashEncoder(dim=DIM)) as live:
        for action, number, version in actions:
            doc = {"id": f"d{number}", "text": f"doc {number} v{version}", "vectors": doc_vectors(number, version)}
            if action == "add" and doc["id"] not in final:
                live.add([doc])
                final[doc["id"]] = doc
            elif action == "upsert":
                live.upsert([doc])
                final[doc["id"]] = doc
            elif action == "delete" and doc["id"] in final:
                live.delete([doc["id"]])
                del final[doc["id"]]
        with li.open(base / "fresh.lateint", encoder=HashEncoder(dim=DIM)) as fresh:
            fresh.delete([d["id"] for d in seeds if d["id"] not in final])
            fresh.add([d for i, d in final.items() if not i.startswith("s")])
            assert sorted(live.ids()) == sorted(fresh.ids()) == sorted(final)
            rng = np.random.default_rng(len(actions))
            for _ in range(3):
                query = rng.standard_normal((4, DIM)).astype(np.float32)
                for exact in (False, True):
                    a = live.search_vectors(query, k=10, exact=exact)
                    b = fresh.search_vectors(query, k=10, exact=exact)
                    assert [h.id for h in a] == [h.id for h in b]
                    np.testing.assert_allclose([h.score for h in a], [h.score for h in b], rtol=1e-5)

"""Index behaviour with the deterministic fake encoder."""

from __future__ import annotations

import numpy as np
import pytest
import reference
from fakes import FailingEncoder, HashEncoder

import lateint_lite as li
from lateint_lite.errors import (
    DocumentNotFoundError,
    DuplicateIdError,
    EmptyIndexError,
    IndexVersionError,
    InternalError,
    InvalidInputError,
    LateIntError,
    ModelMismatchError,
    NotAnIndexError,
    ReadOnlyError,
)

DOCS = [
    {"id": "fruit", "text": "apples and oranges are fruit", "meta": {"kind": "food"}},
    {"id": "cars", "text": "cars drive on roads with wheels", "meta": {"kind": "vehicle"}},
    {"id": "boats", "text": "boats sail on water with sails", "meta": {"kind": "vehicle"}},
    {"id": "bread", "text": "bread is baked from flour and water", "meta": {}},
]


def brute_force(encoder, docs, query, k):
    """Reference ranking: float MaxSim in numpy over freshly encoded documents."""
    q = encoder.encode_queries([query])[0]
    scores = [(q @ encoder.encode_documents([d["text"]])[0].T).max(axis=1).sum() for d in docs]
    order = sorted(range(len(docs)), key=lambda i: (-scores[i], i))[:k]
    return [docs[i]["id"] for i in order], [scores[i] for i in order]


def test_add_search_get_delete(fake_index, fake_encoder):
    assert fake_index.add(DOCS) == [d["id"] for d in DOCS]
    assert len(fake_index) == 4
    hits = fake_index.search("water sails", k=2)
    assert [h.id for h in hits] == ["boats", "bread"]
    assert [h.rank for h in hits] == [1, 2]
    assert hits[0].meta == {"kind": "vehicle"}
    assert hits[0].text == DOCS[2]["text"]
    doc = fake_index.get("cars")
    assert doc.text == DOCS[1]["text"] and doc.n_tokens == 6
    assert "cars" in fake_index and "nope" not in fake_index
    assert fake_index.delete(["cars"]) == 1
    assert "cars" not in [h.id for h in fake_index.search("cars roads", k=4)]
    with pytest.raises(DocumentNotFoundError):
        fake_index.get("cars")


def test_ranking_matches_numpy_float_maxsim(fake_index, fake_encoder):
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(60)]
    docs = [{"id": f"d{i}", "text": " ".join(rng.choice(words, rng.integers(3, 30)))} for i in range(80)]
    fake_index.add(docs)
    for query in ["w1 w2 w3", "w10 w59 w33 w7", "w0"]:
        want_ids, want_scores = brute_force(fake_encoder, docs, query, 10)
        hits = fake_index.search(query, k=10)
        np.testing.assert_allclose([h.score for h in hits], want_scores, atol=0.02)
        # int8 storage may swap near-ties; the top result and the set overlap must agree
        assert hits[0].score == pytest.approx(want_scores[0], abs=0.02)
        assert len({h.id for h in hits} & set(want_ids)) >= 9


def test_k_larger_than_index_returns_everything(fake_index):
    fake_index.add(DOCS)
    assert len(fake_index.search("fruit", k=100)) == 4


def test_reopen_keeps_documents(index_path, fake_encoder):
    with li.open(index_path, create=True, encoder=fake_encoder) as idx:
        idx.add(DOCS)
    with li.open(index_path, encoder=fake_encoder) as idx:
        assert idx.ids() == [d["id"] for d in DOCS]
        assert idx.search("flour", k=1)[0].id == "bread"
        info = idx.info()
    assert info.documents == 4
    assert info.model == "hash-fake"
    assert info.codec == "int8"
    assert info.bytes_per_token == pytest.approx(32 + 4)


def test_second_connection_sees_committed_writes(index_path, fake_encoder):
    with (
        li.open(index_path, create=True, encoder=fake_encoder) as writer,
        li.open(index_path, encoder=fake_encoder) as reader,
    ):
        writer.add(DOCS[:2])
        assert {h.id for h in reader.search("water", k=10)} == {"fruit", "cars"}
        writer.add(DOCS[2:])
        assert reader.search("water sails", k=1)[0].id == "boats"


def test_precomputed_vectors_skip_the_encoder(fake_index):
    rng = np.random.default_rng(2)
    vecs = rng.standard_normal((5, 32)).astype(np.float32)
    fake_index.add([{"id": "v", "text": "precomputed", "vectors": vecs}, DOCS[0]])
    hits = fake_index.search_vectors(vecs[:2], k=1)
    assert hits[0].id == "v"
    assert hits[0].score == pytest.approx(2.0, abs=0.02)


@pytest.mark.parametrize(
    "doc,error",
    [
        ({"id": "a", "text": ""}, "must not be empty"),
        ({"id": "a", "text": "   \n\t"}, "must not be empty"),
        ({"id": "a", "text": 42}, "must be a string"),
        ({"id": "a", "text": None}, "must be a string"),
        ({"text": "no id"}, "has no 'id'"),
        ({"id": "", "text": "x"}, "must not be empty"),
        ({"id": 3.5, "text": "x"}, "must be a string"),
        ({"id": True, "text": "x"}, "must be a string"),
        ({"id": "a", "text": "x", "meta": [1, 2]}, "meta must be a mapping"),
        ({"id": "a", "text": "x", "meta": {"f": float("nan")}}, "JSON"),
        ({"id": "a", "text": "x", "meta": {"o": object()}}, "JSON"),
        ({"id": "a", "text": "x", "vectors": np.ones((2, 5))}, "shape"),
        ({"id": "a", "text": "x", "vectors": np.full((2, 32), np.nan)}, "NaN"),
        ({"id": "a", "text": "x", "vectors": np.ones((0, 32))}, "shape"),
        ({"id": "a", "text": "x", "vectors": [["a"] * 32]}, "numeric"),
        ("just a string", "must be a mapping"),
    ],
)
def test_bad_documents_are_rejected_and_nothing_is_written(fake_index, doc, error):
    with pytest.raises(InvalidInputError, match=error):
        fake_index.add([DOCS[0], doc])
    assert len(fake_index) == 0


def test_a_single_mapping_is_not_a_document_list(fake_index):
    with pytest.raises(InvalidInputError, match="iterable of documents"):
        fake_index.add(DOCS[0])


def test_duplicate_ids_within_a_batch_and_against_the_index(fake_index):
    with pytest.raises(DuplicateIdError, match="more than once"):
        fake_index.add([DOCS[0], {"id": "fruit", "text": "again"}])
    fake_index.add(DOCS[:1])
    with pytest.raises(DuplicateIdError, match="already in the index"):
        fake_index.add([DOCS[1], {"id": "fruit", "text": "again"}])
    assert fake_index.ids() == ["fruit"]


def test_failure_midway_through_an_add_rolls_everything_back(index_path):
    encoder = FailingEncoder(fail_on_call=2)
    with li.open(index_path, create=True, encoder=encoder) as idx:
        idx.add(DOCS[:1])
        docs = [{"id": f"x{i}", "text": f"word{i}"} for i in range(10)]
        with pytest.raises(InternalError, match="exploded"):
            idx.add(docs, batch_size=3)  # first chunk is written, second chunk's encode fails
        assert idx.ids() == ["fruit"]
        assert idx.search("word1", k=5)[0].id == "fruit"


@pytest.mark.parametrize("k", [0, -1, 1.5, "3", None, True])
def test_bad_k(fake_index, k):
    fake_index.add(DOCS)
    with pytest.raises(InvalidInputError, match="k must be"):
        fake_index.search("fruit", k=k)


@pytest.mark.parametrize("query", ["", "  ", None, 7])
def test_bad_query(fake_index, query):
    fake_index.add(DOCS)
    with pytest.raises(InvalidInputError, match="query"):
        fake_index.search(query)


def test_searching_an_empty_index(fake_index):
    with pytest.raises(EmptyIndexError):
        fake_index.search("anything")


def test_delete_unknown_id_deletes_nothing(fake_index):
    fake_index.add(DOCS)
    with pytest.raises(DocumentNotFoundError, match="not in the index"):
        fake_index.delete(["fruit", "ghost"])
    assert len(fake_index) == 4
    assert fake_index.delete(["fruit", "ghost"], missing_ok=True) == 1
    assert fake_index.delete("cars") == 1


def test_opening_a_file_that_is_not_sqlite(tmp_path, fake_encoder):
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a database at all" * 100)
    with pytest.raises(NotAnIndexError, match="not a SQLite database"):
        li.open(path, encoder=fake_encoder)
    with pytest.raises(NotAnIndexError):
        li.open(path, create=True, encoder=fake_encoder)
    assert path.read_text().startswith("hello")


def test_opening_a_sqlite_file_that_is_not_ours(tmp_path, fake_encoder):
    import apsw

    path = tmp_path / "other.db"
    conn = apsw.Connection(str(path))
    conn.execute("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
    conn.close()
    with pytest.raises(NotAnIndexError, match="not a lateint-lite index"):
        li.open(path, create=True, encoder=fake_encoder)


def test_opening_a_missing_or_empty_file_without_create(tmp_path, fake_encoder):
    with pytest.raises(NotAnIndexError, match="no such index"):
        li.open(tmp_path / "missing.lateint", encoder=fake_encoder)
    assert not (tmp_path / "missing.lateint").exists()
    (tmp_path / "empty.lateint").write_bytes(b"")
    with pytest.raises(NotAnIndexError, match="empty file"):
        li.open(tmp_path / "empty.lateint", encoder=fake_encoder)


def test_a_newer_schema_is_refused(index_path, fake_encoder):
    import apsw

    li.open(index_path, create=True, encoder=fake_encoder).close()
    conn = apsw.Connection(str(index_path))
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(IndexVersionError, match="newer"):
        li.open(index_path, encoder=fake_encoder)


def test_a_different_model_is_refused(index_path, fake_encoder):
    li.open(index_path, create=True, encoder=fake_encoder).close()
    with pytest.raises(ModelMismatchError):
        li.open(index_path, encoder=HashEncoder(dim=16))
    with pytest.raises(ModelMismatchError):
        li.open(index_path, encoder=HashEncoder(name="other"))
    with pytest.raises(ModelMismatchError):
        li.open(index_path, model="minilm-l6-v2")


def test_custom_encoder_index_needs_its_encoder_to_encode(index_path, fake_encoder):
    with li.open(index_path, create=True, encoder=fake_encoder) as idx:
        idx.add(DOCS)
    with li.open(index_path) as idx:
        assert idx.get("fruit").text == DOCS[0]["text"]
        with pytest.raises(LateIntError, match="custom encoder"):
            idx.search("fruit")


def test_readonly_index_refuses_writes(index_path, fake_encoder):
    with li.open(index_path, create=True, encoder=fake_encoder) as idx:
        idx.add(DOCS)
    with li.open(index_path, readonly=True, encoder=fake_encoder) as idx:
        assert idx.search("bread", k=1)[0].id == "bread"
        with pytest.raises(ReadOnlyError):
            idx.add([{"id": "new", "text": "new doc"}])
        with pytest.raises(ReadOnlyError):
            idx.delete(["bread"])


def test_kernel_scores_equal_stored_int8_reference(fake_index, fake_encoder):
    fake_index.add(DOCS)
    with fake_index._store.snapshot():
        state, resident = fake_index._cache.resident()  # an unbuilt index holds int8 tokens
    (segment,) = resident.segments  # one add: one segment
    matrix = segment.data.tokens
    query = fake_encoder.encode_queries(["water and roads"])[0]
    np.testing.assert_allclose(
        state.codec.score(state.codec.prepare(query), matrix),
        reference.maxsim_int8_reference(query, matrix.values, matrix.scales, matrix.offsets),
        rtol=1e-5,
        atol=1e-5,
    )


def test_pooled_mode_uses_sqlite_vec_knn(fake_index, fake_encoder):
    fake_index.add(DOCS)
    hits = fake_index.search("boats sail on water with sails", k=2, mode="pooled")
    assert hits[0].id == "boats"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)  # cosine of identical pooled vectors
    assert hits[0].score >= hits[1].score
    with pytest.raises(InvalidInputError, match="mode"):
        fake_index.search("boats", mode="nope")


def test_export_writes_a_single_file_that_opens_from_read_only_media(index_path, fake_encoder, tmp_path):
    import os
    import stat

    with li.open(index_path, create=True, encoder=fake_encoder) as idx:
        idx.add(DOCS)
        shipped = tmp_path / "ship" / "docs.lateint"
        shipped.parent.mkdir()
        idx.export(shipped)
        with pytest.raises(InvalidInputError, match="already exists"):
            idx.export(shipped)
    assert sorted(p.name for p in shipped.parent.iterdir()) == ["docs.lateint"]
    os.chmod(shipped, stat.S_IRUSR)
    os.chmod(shipped.parent, stat.S_IRUSR | stat.S_IXUSR)
    try:
        with li.open(shipped, readonly=True, encoder=fake_encoder) as copy:
            assert copy.search("flour", k=1)[0].id == "bread"
            assert len(copy) == 4
        assert sorted(p.name for p in shipped.parent.iterdir()) == ["docs.lateint"]
    finally:
        os.chmod(shipped.parent, stat.S_IRWXU)
        os.chmod(shipped, stat.S_IRUSR | stat.S_IWUSR)
    with li.open(shipped, encoder=fake_encoder) as writable:  # writing again switches back to WAL
        writable.add([{"id": "new", "text": "fresh bread"}])
        assert writable._store._scalar("PRAGMA journal_mode") == "wal"


def test_a_long_add_writes_several_segments_whose_lists_match_the_codes(tmp_path, monkeypatch, fake_encoder):
    """An add starts a new segment every SEGMENT_MAX_DOCS documents; every segment's stored
    lists then equal the lists recomputed from its codes (check() compares)."""
    from lateint_lite import segments, writer

    monkeypatch.setattr(segments, "SEGMENT_MAX_DOCS", 50)
    monkeypatch.setattr(writer, "ENCODE_FLOATS", 64 * 8 * 32)  # steps of 64 documents of 8 tokens
    rng = np.random.default_rng(5)
    docs = [
        {"id": f"d{i}", "text": f"doc {i}", "vectors": rng.standard_normal((8, 32)).astype(np.float32)}
        for i in range(400)
    ]
    with li.open(tmp_path / "lists.lateint", create=True, encoder=fake_encoder, auto_build=False) as idx:
        idx.add(docs[:100])
        idx.build(n_centroids=16, seed=0)
        idx.add(docs[100:])  # 300 documents in steps of 64: a segment per step (64 >= 50)
        assert [s.n_docs for s in idx._store.segments()] == [100, 64, 64, 64, 64, 44]
        report = idx.check()
        assert report.ok, report.problems
        query = docs[250]["vectors"][:3]
        exact = idx.search_vectors(query, k=5, exact=True, highlight=False)
        pruned = idx.search_vectors(query, k=5, ndocs=4096, highlight=False)
        assert [h.id for h in pruned] == [h.id for h in exact] and exact[0].id == "d250"

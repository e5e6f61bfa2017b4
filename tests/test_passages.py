"""Passages: a long document is stored as windows and scored by its best one (issue 14).

The oracle is plain numpy over the vectors the codec decodes, split by the passage lengths the
fake encoder produced (not by the stored blobs the code under test reads)."""

from __future__ import annotations

import itertools

import apsw
import numpy as np
import pytest
from fakes import PassageHashEncoder

import lateint_lite as li
from lateint_lite.errors import CorruptIndexError
from lateint_lite.passages import PassageLayout, best_passage, lengths_blob, passage_layout, read_lengths

WORDS = [
    *("tide", "moon", "harbour", "ferry", "glacier", "comet", "orbit", "saffron", "onion", "garlic"),
    *("river", "delta", "canyon", "basalt", "granite", "lichen", "moss", "fern", "cedar", "maple"),
    *("heron", "egret", "otter", "badger"),
]


def _corpus(n: int = 60, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        length = int(rng.integers(2, 30))
        docs.append({"id": f"d{i}", "text": " ".join(rng.choice(WORDS, size=length)), "meta": {"i": i}})
    return docs


def _windows(encoder: PassageHashEncoder, text: str) -> list[np.ndarray]:
    return encoder.encode_document_passages([text])[0]


def _best_passage_score(query: np.ndarray, decoded: np.ndarray, lengths: list[int]) -> float:
    bounds = np.cumsum([0, *lengths])
    sims = query @ decoded.T
    return max(float(sims[:, a:b].max(axis=1).sum()) for a, b in itertools.pairwise(bounds))


def _decoded(idx, doc_id: str) -> np.ndarray:
    """A stored document's vectors as its codec decodes them (through the index's internals)."""
    store = idx._store
    with store.snapshot():
        row = store.document_by_ext_id(doc_id)
        token_row = next(iter(store.token_payloads([row.doc_id])))
        return idx._cache.current().codec.decode(token_row)


@pytest.fixture(params=["unbuilt", "built", "built-pooled"])
def passage_index(request, index_path):
    encoder = PassageHashEncoder(window=5, overlap=1)
    with li.open(index_path, create=True, encoder=encoder, auto_build=False) as idx:
        idx.add(_corpus())
        if request.param == "built":
            idx.build(n_centroids=16, seed=0)
        elif request.param == "built-pooled":
            idx.build(n_centroids=16, seed=0, pool_factor=2)
    return index_path, encoder, request.param


def test_exact_scores_are_the_best_passage_maxsim(passage_index):
    path, encoder, kind = passage_index
    docs = {d["id"]: d["text"] for d in _corpus()}
    with li.open(path, encoder=encoder, readonly=True) as idx:
        for query in ("moon tide saffron", "heron otter", "granite basalt canyon river"):
            q = encoder.encode_queries([query])[0]
            hits = idx.search(query, k=len(docs), exact=True, highlight=False)
            assert len(hits) == len(docs)
            for hit in hits:
                if kind == "built-pooled":  # pooling changes the token count, so re-derive lengths
                    lengths = read_lengths(_passages_blob(idx, hit.id), len(_decoded(idx, hit.id)), 0).tolist()
                else:
                    lengths = [len(w) for w in _windows(encoder, docs[hit.id])]
                want = _best_passage_score(q, _decoded(idx, hit.id), lengths)
                assert hit.score == pytest.approx(want, abs=2e-4)


def _passages_blob(idx, doc_id: str) -> bytes | None:
    store = idx._store
    with store.snapshot():
        row = store.document_by_ext_id(doc_id)
        return next(iter(store.token_payloads([row.doc_id]))).passages


def test_pooling_keeps_every_passage(index_path):
    encoder = PassageHashEncoder(window=6, overlap=2)
    with li.open(index_path, create=True, encoder=encoder, auto_build=False) as idx:
        idx.add(_corpus())
        idx.build(n_centroids=16, seed=0, pool_factor=2)
        for doc in _corpus():
            windows = _windows(encoder, doc["text"])
            lengths = read_lengths(_passages_blob(idx, doc["id"]), idx.get(doc["id"]).n_tokens, 0)
            assert lengths.size == len(windows)
            assert lengths.tolist() == [-(-len(w) // 2) for w in windows]  # ceil(n / factor) per passage
        assert idx.check().ok


def test_pruned_search_finds_what_exact_search_finds(index_path):
    encoder = PassageHashEncoder(window=5, overlap=1)
    with li.open(index_path, create=True, encoder=encoder, auto_build=False) as idx:
        idx.add(_corpus(200, seed=3))
        idx.build(n_centroids=16, seed=0)
        for query in ("moon tide saffron", "heron otter", "granite basalt canyon river", "fern"):
            exact = idx.search(query, k=5, exact=True, highlight=False)
            pruned = idx.search(query, k=5, ndocs=4096, highlight=False)
            assert [h.score for h in pruned] == pytest.approx([h.score for h in exact], abs=1e-5)
            scores = {h.id: h.score for h in idx.search(query, k=200, exact=True, highlight=False)}
            assert all(scores[h.id] == pytest.approx(h.score, abs=1e-5) for h in pruned)  # ties may swap ids


def test_a_query_matched_in_one_passage_beats_one_spread_over_two(index_path):
    """Best-passage scoring: the words together in one window count; scattered ones do not add up."""
    encoder = PassageHashEncoder(window=4, overlap=0)
    docs = [
        {"id": "together", "text": "cedar maple heron egret otter badger moss fern saffron garlic"},
        {"id": "apart", "text": "saffron cedar maple heron garlic egret otter badger moss fern"},
    ]
    with li.open(index_path, create=True, encoder=encoder) as idx:
        idx.add(docs)
        hits = idx.search("saffron garlic", k=2)
        assert [h.id for h in hits] == ["together", "apart"]
        assert hits[0].score == pytest.approx(2.0, abs=0.02) and hits[1].score < 1.8
        assert hits[0].passage == 2  # "saffron garlic" is the third window
        assert [hits[0].text[a:b] for a, b in hits[0].highlights] == ["saffron", "garlic"]
        assert hits[1].passage in (0, 1) and len(hits[1].highlights) == 1  # one word per window


def test_upsert_and_delete_replace_all_passages(index_path):
    encoder = PassageHashEncoder(window=4, overlap=1)
    long_text = " ".join(WORDS)
    with li.open(index_path, create=True, encoder=encoder) as idx:
        idx.add([{"id": "long", "text": long_text}, {"id": "short", "text": "moon tide"}])
        assert idx.info().split_documents == 1
        assert idx.get("long").text == long_text
        idx.upsert([{"id": "long", "text": "heron"}])
        assert idx.info().split_documents == 0 and _passages_blob(idx, "long") is None
        idx.upsert([{"id": "long", "text": long_text}])
        assert idx.info().split_documents == 1
        idx.delete(["long"])
        assert idx.info().split_documents == 0 and idx.ids() == ["short"]
        assert idx.check().ok


def test_filters_and_rebuilds_act_on_parents(index_path):
    encoder = PassageHashEncoder(window=5, overlap=1)
    with li.open(index_path, create=True, encoder=encoder, auto_build=False) as idx:
        idx.add(_corpus())
        before = {h.id: h.score for h in idx.search("moon tide", k=60, exact=True, where={"i": {"lt": 30}})}
        assert set(before) == {f"d{i}" for i in range(30)}
        idx.build(n_centroids=16, seed=0)
        idx.build(n_centroids=16, seed=0)  # a rebuild goes back to the text and splits it again
        after = {h.id: h for h in idx.search("moon tide", k=60, exact=True, where={"i": {"lt": 30}})}
        assert set(after) == set(before)
        assert idx.info().split_documents == sum(len(_windows(encoder, d["text"])) > 1 for d in _corpus())


def test_vectors_passed_in_are_one_passage(index_path, fake_encoder):
    vectors = np.random.default_rng(0).standard_normal((700, 32)).astype(np.float32)
    with li.open(index_path, create=True, encoder=fake_encoder) as idx:
        idx.add([{"id": "v", "text": "many vectors", "vectors": vectors}])
        assert idx.info().split_documents == 0
        assert idx.search_vectors(vectors[:3], k=1)[0].passage == 0


def _sql(path, statement):
    import sqlite_vec

    conn = apsw.Connection(str(path))
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    conn.execute(statement)
    conn.close()


@pytest.mark.parametrize("blob", ["x'0100000002'", "x'0000000001000000'", "x'ffffffff01000000'", "x'01000000'", "x''"])
def test_damaged_passage_lengths_are_reported_not_trusted(passage_index, blob):
    """Lengths that are cut, zero, do not add up to the token count, or empty: check() names the
    document and search refuses it with CorruptIndexError (a kernel never sees them)."""
    path, encoder, _ = passage_index
    target = "(SELECT doc_id FROM documents WHERE ext_id = 'd3')"
    _sql(path, f"UPDATE doc_tokens SET passages = {blob} WHERE doc_id = {target}")
    with li.open(path, encoder=encoder) as idx:
        report = idx.check()
        assert not report.ok and any("passage lengths" in p for p in report.problems)
        with pytest.raises(CorruptIndexError, match="'d3'"):
            for query in ("moon", "tide", "saffron", "heron", "granite", "fern", "otter"):
                idx.search(query, k=60, exact=True)


def test_passage_layout_matches_a_plain_loop():
    rng = np.random.default_rng(1)
    lengths = [rng.integers(1, 6, size=rng.integers(1, 4)) for _ in range(40)]
    layout = passage_layout(lengths)
    assert isinstance(layout, PassageLayout)
    positions = rng.choice(40, size=17, replace=False)
    which, runs = layout.passages_of(positions)
    want, want_runs = [], []
    firsts = np.cumsum([0] + [len(x) for x in lengths])
    for p in positions:
        want_runs.append(len(want))
        want.extend(range(firsts[p], firsts[p + 1]))
    assert which.tolist() == want and runs.tolist() == want_runs
    assert layout.offsets[-1] == sum(int(x.sum()) for x in lengths)
    assert passage_layout([np.array([3]), np.array([4])]) is None


def test_lengths_round_trip_and_best_passage():
    lengths = np.array([3, 2, 4])
    assert lengths_blob(np.array([9])) is None
    assert read_lengths(lengths_blob(lengths), 9, 1).tolist() == [3, 2, 4]
    sims = np.zeros((2, 9), dtype=np.float32)
    sims[0, 5], sims[1, 8] = 0.9, 0.8  # both in the third passage
    sims[0, 0] = 0.95  # the best single match sits in the first
    assert best_passage(sims, lengths) == (2, 5, 9)


@pytest.mark.model
def test_a_passage_window_chosen_at_creation_is_kept_for_every_later_add(tmp_path, capsys):
    from lateint_lite.cli import main

    path = tmp_path / "window.lateint"
    text = " ".join(f"Sentence {i} is about tides, the moon and the harbour." for i in range(30))
    with li.open(path, create=True, passage_length=128, passage_overlap=16) as idx:
        idx.add([{"id": "long", "text": text}])
        assert idx.info().passage_window == "128 tokens, 16 shared"
        passages = read_lengths(_passages_blob(idx, "long"), idx.get("long").n_tokens, 0)
    windows = idx.encoder.encode_document_passages([text])[0]
    assert passages.tolist() == [len(w) for w in windows] and passages.max() == 128 and passages.size >= 3
    with li.open(path) as idx:  # the window comes back from the file, for the next add too
        idx.add([{"id": "again", "text": text}])
        assert _passages_blob(idx, "again") == _passages_blob(idx, "long")
        assert idx.search("moon harbour", k=1)[0].passage is not None
    default = tmp_path / "default.lateint"
    assert main(["init", str(default)]) == 0
    with li.open(default, readonly=True) as idx:
        assert idx.info().passage_window == "model default"
    assert main(["init", str(tmp_path / "cli.lateint"), "--passage-length", "600"]) == 1  # InvalidInputError
    err = capsys.readouterr().err
    assert err.startswith("lateint: error: passage_length must be an integer from 16 to 512") and err.count("\n") == 1
    assert main(["init", str(tmp_path / "cli.lateint"), "--passage-length", "200"]) == 0
    with li.open(tmp_path / "cli.lateint", readonly=True) as idx:
        assert idx.info().passage_window == "200 tokens, 50 shared"


@pytest.mark.model
def test_max_passages_chosen_at_creation_keeps_more_of_a_long_document(tmp_path, capsys, caplog):
    import logging

    from lateint_lite.cli import main

    text = " ".join(f"Sentence {i} is about tides, the moon and the harbour." for i in range(400))
    counts = {}
    for name, chosen in (("default", None), ("two", 2), ("many", 200)):
        created = li.open(tmp_path / f"{name}.lateint", create=True, max_passages=chosen)
        with caplog.at_level(logging.WARNING, logger="lateint_lite"), created as idx:
            idx.add([{"id": "notes.txt", "text": text}])
        with li.open(tmp_path / f"{name}.lateint") as idx:  # the count comes back from the file
            idx.add([{"id": "again.txt", "text": text}])
            counts[name] = [
                read_lengths(_passages_blob(idx, i), idx.get(i).n_tokens, 0).size for i in ("notes.txt", "again.txt")
            ]
            window = idx.info().passage_window
        assert window == ("model default" if chosen is None else f"model default, at most {chosen} passages")
    whole = len(li.open(tmp_path / "many.lateint", readonly=True).encoder.encode_document_passages([text])[0])
    assert 2 < whole < 200 and counts == {"default": [whole] * 2, "two": [2, 2], "many": [whole] * 2}
    assert caplog.text.count("'notes.txt'") == 1 and caplog.text.count("'again.txt'") == 1  # only the index of 2 cut it
    capsys.readouterr()  # the warnings above
    assert main(["init", str(tmp_path / "cli.lateint"), "--max-passages", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lateint: error: max_passages must be an integer from 1 to 4096") and err.count("\n") == 1
    assert main(["init", str(tmp_path / "cli.lateint"), "--max-passages", "500", "--passage-length", "128"]) == 0
    with li.open(tmp_path / "cli.lateint", readonly=True) as idx:
        assert idx.info().passage_window == "128 tokens, 32 shared, at most 500 passages"
    notes = tmp_path / "notes.txt"  # lateint add creates an index with the count it is given
    notes.write_text(text)
    added = str(tmp_path / "added.lateint")
    assert main(["add", added, str(notes), "--max-passages", "2", "--no-progress", "--no-build"]) == 0
    with li.open(added, readonly=True) as idx:
        assert idx.info().passage_window == "model default, at most 2 passages"
        assert read_lengths(_passages_blob(idx, str(notes)), idx.get(str(notes)).n_tokens, 0).size == 2
    capsys.readouterr()
    assert main(["add", added, str(notes), "--max-passages", "3", "--no-progress"]) == 1  # not for an existing one
    err = capsys.readouterr().err
    assert err.startswith(
        "lateint: error: skiplist and the passage window can only be chosen when the index is created"
    )
    assert err.count("\n") == 1

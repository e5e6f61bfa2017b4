"""Sharded indexes on one machine (issue 17): routing, the shared codec, merged search, failures.

The oracle for search is one ordinary index holding every document, built with the very same
codec (``build(codec=sharded.shared_codec())``): exact MaxSim over shards must return its
top-k with its scores; pruned search must find at least as many of the exact answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import lateint_lite as li
from lateint_lite.errors import (
    CorruptIndexError,
    DocumentNotFoundError,
    DuplicateIdError,
    InvalidInputError,
    NotAnIndexError,
)
from lateint_lite.sharding import ShardManifest, shard_of
from lateint_lite.shared_codec import train_shared_codec

WORDS = [f"w{i}" for i in range(400)]


def _docs(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {"id": f"d{i}", "text": " ".join(rng.choice(WORDS, 30)), "meta": {"n": i, "even": i % 2 == 0}} for i in range(n)
    ]


def _queries(n: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, 5)) for _ in range(n)]


@pytest.fixture
def pair(tmp_path, fake_encoder):
    """(a built 3-shard index, one index of the same documents built with the same codec)."""
    docs = _docs(600)
    sharded = li.open_sharded(tmp_path / "s.json", create=True, shards=3, encoder=fake_encoder)
    sharded.add(docs)
    sharded.build(n_centroids=64)
    single = li.open(tmp_path / "one.lateint", create=True, encoder=fake_encoder, auto_build=False)
    single.add(docs)
    single.build(codec=sharded.shared_codec())
    yield sharded, single
    sharded.close()
    single.close()


def test_routing_is_stable_across_processes_and_spreads_ids():
    ids = [f"doc-{i}" for i in range(2000)]
    here = [shard_of(i, 4) for i in ids]
    code = (
        "import json; from lateint_lite.sharding import shard_of; "
        "print(json.dumps([shard_of(f'doc-{i}', 4) for i in range(2000)]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    there = json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True).stdout)
    assert here == there
    counts = np.bincount(here, minlength=4)
    assert counts.min() > 400 and counts.max() < 600


def test_documents_live_in_the_shard_their_id_names(pair):
    sharded, _ = pair
    for doc_id in ("d0", "d17", "d599"):
        owner = sharded.shard_for(doc_id)
        assert [doc_id in shard for shard in sharded.shards] == [n == owner for n in range(3)]
    assert len(sharded) == 600 and sum(len(s) for s in sharded.shards) == 600


def test_exact_search_equals_one_index_with_the_same_codec(pair):
    sharded, single = pair
    for query in _queries(25):
        got = sharded.search(query, 10, exact=True)
        want = single.search(query, 10, exact=True)
        assert got.complete and got.shards == 3
        assert [h.id for h in got] == [h.id for h in want]
        np.testing.assert_allclose([h.score for h in got], [h.score for h in want], rtol=1e-6)
        assert [h.rank for h in got] == list(range(1, 11))


def test_a_query_prepared_once_answers_like_each_shard_alone(pair, fake_encoder):
    sharded, single = pair
    for query in _queries(5, seed=4):
        vectors = fake_encoder.encode_queries([query])[0]
        prepared = sharded.shards[0].prepare_shared_query(vectors)
        for shard in sharded.shards:
            got = [(h.id, h.score) for h in shard.search_prepared(prepared, 10, highlight=False)]
            want = [(h.id, h.score) for h in shard.search_vectors(vectors, 10, highlight=False)]
            assert got == want
    # one index built with the same codec takes the same prepared query
    got = [(h.id, h.score) for h in single.search_prepared(prepared, 10, highlight=False)]
    assert got == [(h.id, h.score) for h in single.search_vectors(vectors, 10, highlight=False)]
    with li.open(single.path + "-own", create=True, encoder=fake_encoder, auto_build=False) as own:
        own.add(_docs(60, seed=9))
        own.build(n_centroids=8)  # a codec of its own
        with pytest.raises(InvalidInputError, match="no shared codec"):
            own.prepare_shared_query(vectors)
        with pytest.raises(InvalidInputError, match="another codec"):
            own.search_prepared(prepared, 5)


def test_pruned_recall_is_not_lower_than_one_index(pair):
    sharded, single = pair
    found_sharded = found_single = 0
    for query in _queries(25, seed=2):
        exact = {h.id for h in single.search(query, 10, exact=True)}
        found_sharded += len(exact & {h.id for h in sharded.search(query, 10)})
        found_single += len(exact & {h.id for h in single.search(query, 10)})
    assert found_sharded >= found_single


def test_filters_apply_in_every_shard(pair):
    sharded, single = pair
    query = _queries(1, seed=3)[0]
    got = sharded.search(query, 10, exact=True, where={"even": True})
    want = single.search(query, 10, exact=True, where={"even": True})
    assert [h.id for h in got] == [h.id for h in want]
    assert all(h.meta["even"] for h in got)


def test_bm25_and_hybrid_merge_across_shards(pair):
    sharded, _ = pair
    query = "w5 w77"
    lexical = sharded.search(query, 10, mode="bm25")
    assert lexical.complete and len(lexical) == 10
    assert all({"w5", "w77"} & set(h.text.split()) for h in lexical)
    assert [h.score for h in lexical] == sorted((h.score for h in lexical), reverse=True)
    hybrid = sharded.search(query, 10, mode="hybrid")
    assert hybrid.complete and len(hybrid) == 10 and len({h.id for h in hybrid}) == 10
    many = sharded.search_many([query, "w9"], 5)
    assert [len(r) for r in many] == [5, 5]
    with pytest.raises(InvalidInputError):
        sharded.search(query, 5, mode="pooled")


def test_upsert_and_delete_act_on_the_owning_shard(pair):
    sharded, _ = pair
    owner = sharded.shard_for("d3")
    sharded.upsert([{"id": "d3", "text": "completely new words here"}])
    assert sharded.get("d3").text == "completely new words here"
    assert len(sharded.shards[owner]) == len([i for i in range(600) if shard_of(f"d{i}", 3) == owner])
    assert sharded.delete(["d3", "d4"]) == 2
    assert "d3" not in sharded and len(sharded) == 598
    with pytest.raises(DocumentNotFoundError):
        sharded.delete(["d3"])
    assert sharded.delete(["d3"], missing_ok=True) == 0


def test_an_add_of_an_existing_id_writes_nothing(pair):
    sharded, _ = pair
    before = len(sharded)
    with pytest.raises(DuplicateIdError):
        sharded.add([{"id": "brand-new", "text": "w1"}, {"id": "d10", "text": "w2"}])
    assert len(sharded) == before and "brand-new" not in sharded
    with pytest.raises(InvalidInputError):  # validation of every document comes before any write
        sharded.add([{"id": "fine", "text": "w1"}, {"id": "bad", "text": ""}])
    assert "fine" not in sharded


def test_writes_take_a_batch_size_like_one_index(pair):
    sharded, _ = pair
    sharded.add([{"id": f"b{i}", "text": f"w{i} w{i + 1}"} for i in range(7)], batch_size=2)
    sharded.upsert([{"id": "b0", "text": "w9 w8"}], batch_size=1)
    assert all(f"b{i}" in sharded for i in range(7)) and sharded.get("b0").text == "w9 w8"
    with pytest.raises(InvalidInputError, match="batch_size"):
        sharded.add([{"id": "b99", "text": "w1"}], batch_size=0)
    assert "b99" not in sharded


def test_a_new_document_in_a_built_shard_uses_the_shared_codec(pair):
    sharded, single = pair
    doc = {"id": "late", "text": "w1 w2 w3 w4 w5 w6"}
    sharded.add([doc])
    single.add([doc])
    got = sharded.search("w1 w2 w3", 5, exact=True)
    want = single.search("w1 w2 w3", 5, exact=True)
    assert [h.id for h in got] == [h.id for h in want] and "late" in [h.id for h in got]


def test_a_shard_refuses_a_codec_of_its_own(pair):
    sharded, _ = pair
    shard = sharded.shards[0]
    with pytest.raises(InvalidInputError, match="shard"):
        shard.build()
    with pytest.raises(InvalidInputError, match="shard"):
        shard.optimize(retrain=True)
    report = shard.optimize()  # lists rebuilt, never a retrain on its own
    assert report.action == "lists rebuilt"
    assert shard.check().ok


def test_a_shard_with_another_codec_is_detected_on_open(tmp_path, fake_encoder):
    path = tmp_path / "s.json"
    with li.open_sharded(path, create=True, shards=2, encoder=fake_encoder) as sharded:
        sharded.add(_docs(200))
        sharded.build(n_centroids=32)
        other_sample, other_heldout = sharded.shards[1].training_sample(4000, 1000, seed=7)
        stray = train_shared_codec(
            [other_sample], [other_heldout], li.BuildOptions(n_centroids=16, seed=7).validated(32), 6000
        )
        sharded.shards[1].build(codec=stray)  # as if a build stopped between shards
    with pytest.raises(CorruptIndexError, match="shard 1"):
        li.open_sharded(path, encoder=fake_encoder)


def test_check_catches_codec_tables_that_do_not_match_the_fingerprint(pair):
    sharded, _ = pair
    shard = sharded.shards[1]
    assert shard.check().ok
    store = shard._store
    with store.write():
        store._conn.execute("UPDATE codec_arrays SET data = zeroblob(length(data)) WHERE name = 'bucket_weights'")
    problems = shard.check().problems
    assert any("shared codec" in p for p in problems)


def test_a_failing_shard_is_reported_and_the_others_answer(pair):
    sharded, _ = pair
    sharded.shards[2].close()
    result = sharded.search("w1 w2", 10)
    assert not result.complete
    assert [f.shard for f in result.failed] == [2] and "closed" in result.failed[0].error
    assert len(result) == 10 and all(sharded.shard_for(h.id) != 2 for h in result)


def test_a_slow_shard_times_out_and_is_reported(pair, monkeypatch):
    sharded, _ = pair
    slow = sharded.shards[0]
    original = slow.search_prepared  # a built shard answers from the query prepared once

    def stalled(*args, **kwargs):
        time.sleep(3)
        return original(*args, **kwargs)

    monkeypatch.setattr(slow, "search_prepared", stalled)
    result = sharded.search("w1 w2", 5, timeout=0.5)
    assert [f.shard for f in result.failed] == [0] and "no answer within" in result.failed[0].error
    assert len(result) == 5


def test_an_empty_shard_takes_the_shared_codec(tmp_path, fake_encoder):
    with li.open_sharded(tmp_path / "s.json", create=True, shards=4, encoder=fake_encoder) as sharded:
        ids = [f"x{i}" for i in range(40) if shard_of(f"x{i}", 4) != 3][:20]
        sharded.add([{"id": i, "text": " ".join(WORDS[n : n + 8])} for n, i in enumerate(ids)])
        sharded.build(n_centroids=16)
        assert all(s.is_built for s in sharded.shards) and len(sharded.shards[3]) == 0
        late = next(f"y{i}" for i in range(100) if shard_of(f"y{i}", 4) == 3)
        sharded.add([{"id": late, "text": "w300 w301 w302"}])
        assert sharded.search("w300 w301", 1)[0].id == late
    with li.open_sharded(tmp_path / "s.json", encoder=fake_encoder) as reopened:
        assert len(reopened) == 21


def test_a_sharded_index_builds_with_a_codec_it_is_given(pair, tmp_path, fake_encoder):
    _, single = pair
    given = single.shared_codec()
    with li.open_sharded(tmp_path / "g.json", create=True, shards=3, encoder=fake_encoder) as sharded:
        report = sharded.build(codec=given)  # empty shards: the codec first, documents after
        assert report.codec_fingerprint == given.fingerprint and report.sample_tokens == 0
        sharded.add(_docs(600))
        for query in _queries(5):
            got, want = sharded.search(query, 10, exact=True), single.search(query, 10, exact=True)
            assert [h.id for h in got] == [h.id for h in want]
            np.testing.assert_allclose([h.score for h in got], [h.score for h in want], rtol=1e-6)
    with li.open_sharded(tmp_path / "g.json", encoder=fake_encoder) as reopened:
        assert reopened.info()["codec_fingerprint"] == given.fingerprint  # recorded in the manifest


def test_manifest_errors_are_clear(tmp_path, fake_encoder):
    path = tmp_path / "m.json"
    with pytest.raises(NotAnIndexError, match="no such"):
        li.open_sharded(path)
    path.write_text("not json")
    with pytest.raises(NotAnIndexError, match="not a sharded-index manifest"):
        li.open_sharded(path)
    good = ShardManifest(shards=("a.lateint",))
    for damage in ({"version": 9}, {"shards": ["../a.lateint"]}, {"shards": []}, {"routing": "md5"}):
        path.write_text(json.dumps({**json.loads(good.to_json()), **damage}))
        with pytest.raises(CorruptIndexError):
            li.open_sharded(path)
    path.write_text(good.to_json())
    with pytest.raises(CorruptIndexError, match="missing"):
        li.open_sharded(path, encoder=fake_encoder)
    with pytest.raises(InvalidInputError):
        li.open_sharded(tmp_path / "new.json", create=True, shards=0, encoder=fake_encoder)
    with pytest.raises(InvalidInputError):
        li.open_sharded(tmp_path / "m.json", shards=2)
    assert not (tmp_path / "new.json").exists()


def test_an_unbuilt_index_has_no_codec_to_share(fake_index):
    fake_index.add(_docs(5))
    with pytest.raises(InvalidInputError, match="not built"):
        fake_index.shared_codec()


def test_passages_encoded_elsewhere_are_stored_as_text_documents(fake_index, fake_encoder):
    rng = np.random.default_rng(0)
    parts = [rng.standard_normal((4, 32)).astype(np.float32), rng.standard_normal((3, 32)).astype(np.float32)]
    fake_index.add([{"id": "p", "text": "encoded by the same model", "passages": parts}])
    info = fake_index.info()
    assert info.split_documents == 1 and info.vector_documents == 0
    assert fake_index.get("p").n_tokens == 7
    hit = fake_index.search_vectors(parts[1], 1, exact=True)[0]
    assert hit.id == "p" and hit.passage == 1


@pytest.mark.model
def test_cli_builds_searches_and_describes_a_sharded_index(tmp_path, capsys):
    from lateint_lite.cli import main

    sample = os.path.join(os.path.dirname(li.__file__), "data", "sample.jsonl")
    manifest = str(tmp_path / "s.json")
    assert main(["shard", "build", manifest, sample, "--shards", "2", "--local"]) == 0
    assert main(["shard", "search", manifest, "why do onions make you cry", "-k", "2", "--json"]) == 0
    out = capsys.readouterr().out
    hits = json.loads(out[out.index("[") :])
    assert hits[0]["id"] == "cook-3"
    assert main(["shard", "info", manifest, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shards"] == 2 and info["documents"] == sum(s["documents"] for s in info["shard_info"])
    assert main(["shard", "search", str(tmp_path / "missing.json"), "q"]) == 1
    assert capsys.readouterr().err.startswith("lateint: error:")
    assert main(["shard", "build", manifest, sample, "--shards", "2", "--local"]) == 1
    assert "already exists" in capsys.readouterr().err


def test_a_sharded_search_scores_the_centroids_once(pair, monkeypatch):
    """The shards share one codec, so the query's centroid scores and PLAID's first stage are
    computed once per search, not once per shard."""
    sharded, _ = pair
    from lateint_lite import search

    calls = []
    original = search.kept_threshold
    monkeypatch.setattr(search, "kept_threshold", lambda *a: calls.append(1) or original(*a))
    sharded.search("w1 w2 w3", 10, highlight=False)
    assert len(calls) == 1

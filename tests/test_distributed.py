"""Sharded indexes built and searched on a local Ray cluster (issue 17), with the real default model.

One local cluster (2 CPUs) serves the module. The oracle is the engine on one machine: the files
Ray wrote, opened as a :class:`~lateint_lite.ShardedIndex`, and one ordinary index of the same
documents built with the same shared codec.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import lateint_lite as li

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'lateint-lite[ray]')")
pytest.importorskip("ray.data", reason="Ray Data needs the ray extra's pandas and pyarrow")

from lateint_lite import distributed  # noqa: E402
from lateint_lite.sharding import shard_of  # noqa: E402

pytestmark = pytest.mark.model

SAMPLE = os.path.join(os.path.dirname(li.__file__), "data", "sample.jsonl")
QUERIES = ["why do onions make you cry", "what happens when a massive star dies?", "my laptop crashes"]


@pytest.fixture(scope="module")
def cluster():
    distributed.connect(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def built(cluster, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ray")
    manifest = str(folder / "docs.json")
    report = distributed.build_sharded(manifest, SAMPLE, shards=3, workers=2)
    return manifest, report


def _sample_docs() -> list[dict]:
    with open(SAMPLE, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_the_ray_build_routes_every_document_and_shares_one_codec(built):
    manifest, report = built
    docs = _sample_docs()
    assert report.documents == len(docs) and report.shards == 3
    with li.open_sharded(manifest) as sharded:
        assert len(sharded) == len(docs)
        for doc in docs:
            assert doc["id"] in sharded.shards[shard_of(doc["id"], 3)]
        assert {s.config.shared_codec for s in sharded.shards} == {report.codec_fingerprint}
        assert all(s.check().ok for s in sharded.shards)
        assert sharded.info()["shard_info"][0]["vector_documents"] == 0  # stored as text documents


def test_ray_built_shards_answer_like_one_index_with_the_same_codec(built, tmp_path, real_encoder):
    manifest, _ = built
    with (
        li.open_sharded(manifest) as sharded,
        li.open(tmp_path / "one.lateint", create=True, auto_build=False) as single,
    ):
        single.add(_sample_docs())
        single.build(codec=sharded.shared_codec())
        for query in QUERIES:
            got = sharded.search(query, 5, exact=True)
            want = single.search(query, 5, exact=True)
            assert [h.id for h in got] == [h.id for h in want]
            np.testing.assert_allclose([h.score for h in got], [h.score for h in want], rtol=1e-5)


def test_ray_actors_search_like_the_local_sharded_index(built):
    manifest, _ = built
    with li.open_sharded(manifest, readonly=True) as local, distributed.RaySearcher(manifest, actors=2) as remote:
        for options in ({}, {"exact": True}, {"mode": "hybrid"}, {"mode": "bm25"}, {"where": {"topic": "cooking"}}):
            for query in QUERIES:
                got = remote.search(query, 4, **options)
                want = local.search(query, 4, **options)
                assert got.complete
                assert [(h.id, round(h.score, 5)) for h in got] == [(h.id, round(h.score, 5)) for h in want]
        many = remote.search_many(QUERIES, 2)
        assert [r[0].id for r in many] == [local.search(q, 1)[0].id for q in QUERIES]


def test_a_killed_actor_is_reported_and_the_others_answer(built):
    manifest, _ = built
    with distributed.RaySearcher(manifest, actors=3) as remote:
        ray.kill(remote.actors[1])
        result = remote.search(QUERIES[0], 5, timeout=30)
        assert [f.shard for f in result.failed] == [1]
        assert len(result) == 5 and all(shard_of(h.id, 3) != 1 for h in result)


def test_parquet_and_folder_sources(cluster, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    docs = _sample_docs()[:6]
    table = pa.table(
        {"id": [d["id"] for d in docs], "text": [d["text"] for d in docs], "meta": [json.dumps({"k": 1})] * 6}
    )
    pq.write_table(table, tmp_path / "docs.parquet")
    report = distributed.build_sharded(str(tmp_path / "p.json"), str(tmp_path / "docs.parquet"), shards=2)
    assert report.documents == 6
    with li.open_sharded(tmp_path / "p.json") as sharded:
        assert sharded.get(docs[0]["id"]).meta == {"k": 1}

    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("Onions release a sulfur gas that makes eyes water.")
    (folder / "sub" / "b.md").write_text("# Stars\nA massive star ends as a black hole.")
    (folder / "c.bin").write_bytes(bytes(range(256)) * 4)  # not a text file name: not taken
    (folder / "d.txt").write_bytes(bytes(range(256)) * 4)  # binary under a text name: skipped
    report = distributed.build_sharded(str(tmp_path / "f.json"), str(folder), shards=2)
    assert report.documents == 2
    with li.open_sharded(tmp_path / "f.json") as sharded:
        top = sharded.search("black hole", 1)[0]
        assert top.meta["path"].endswith("b.md")


def test_the_cli_builds_on_ray_and_searches_with_actors(cluster, tmp_path, capsys):
    from lateint_lite.cli import main

    manifest = str(tmp_path / "cli.json")
    assert main(["shard", "build", manifest, SAMPLE, "--shards", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["documents"] == len(_sample_docs()) and report["shards"] == 2
    assert main(["shard", "search", manifest, QUERIES[0], "-k", "1", "--address", "local", "--jsonl"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["id"] == "cook-3"

"""Schema migrations: files written by the v1 release open, migrate in one transaction, and
answer exactly as v1 answered (tests/fixtures/make_v1_fixture.py recorded those answers)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fakes import HashEncoder
from fixtures.make_v1_fixture import QUERIES, RUNS  # what the v1 release was asked

import lateint_lite as li
from lateint_lite import migrations
from lateint_lite.cli import main
from lateint_lite.errors import CorruptIndexError, InternalError, MigrationRequiredError
from lateint_lite.schema import SCHEMA_VERSION

FIXTURES = Path(__file__).with_name("fixtures")
EXPECTED = json.loads((FIXTURES / "v1_expected.json").read_text())
STABLE_INFO = (
    "documents",
    "tokens",
    "model",
    "model_sha256",
    "dim",
    "codec",
    "nbits",
    "residual_dim",
    "n_centroids",
    "pool_factor",
    "skiplist",
    "tokens_at_build",
    "built_at",
    "created_at",
)


def v1_copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / f"{name}.lateint"
    shutil.copyfile(FIXTURES / f"{name}.lateint", target)
    return target


def assert_same_ranking(got, want, tolerance=1e-5):
    assert [h.id for h in got] == [w[0] for w in want]
    for hit, (_, score) in zip(got, want, strict=True):
        assert hit.score == pytest.approx(score, abs=tolerance)


def assert_answers_as_recorded(idx, expected, ignore=(), tolerance=1e-5) -> dict:
    """Every recorded search and rerank answer, and the stable info fields; returns info()."""
    for run, kwargs in RUNS.items():
        for query in QUERIES:
            assert_same_ranking(idx.search(query, k=5, **kwargs), expected["results"][run][query], tolerance)
    for query in QUERIES:
        assert_same_ranking(idx.rerank(query, idx.ids()[:12]), expected["results"]["rerank"][query], tolerance)
    info = idx.info().to_dict()
    stable = [k for k in STABLE_INFO if k not in ignore]
    assert {k: info[k] for k in stable} == {k: expected["info"][k] for k in stable}
    return info


@pytest.mark.parametrize("name", ["v1_unbuilt", "v1_built"])
def test_v1_file_migrates_and_answers_as_v1_did(tmp_path, name):
    expected = EXPECTED[name]
    path = v1_copy(tmp_path, name)
    with li.open(path, encoder=HashEncoder(dim=32)) as idx:
        for run, kwargs in RUNS.items():
            for query in QUERIES:
                assert_same_ranking(idx.search(query, k=5, **kwargs), expected["results"][run][query])
        ids = idx.ids()
        assert ids == expected["results"]["ids"]
        # rerank now shares search's scorer. v1 renormalized dequantized int8 tokens in rerank
        # only (search never did): int8 rounding of these 32-d vectors moves token norms by a few
        # tenths of a percent, so unbuilt rerank scores moved that much; residual ones did not
        for query in QUERIES:
            reranked = idx.rerank(query, ids[:12])
            want = expected["results"]["rerank"][query]
            if name == "v1_unbuilt":
                assert [h.id for h in reranked] == [w[0] for w in want]
                assert [h.score for h in reranked] == pytest.approx([w[1] for w in want], rel=5e-3)
            else:
                assert_same_ranking(reranked, want)
            exact = {h.id: h.score for h in idx.search(query, k=len(ids), exact=True)}
            assert all(h.score == pytest.approx(exact[h.id], abs=1e-6) for h in reranked)
        doc = idx.get(ids[3])
        assert {"id": doc.id, "text": doc.text, "meta": doc.meta, "n_tokens": doc.n_tokens} == expected["results"][
            "get"
        ]
        info = idx.info().to_dict()
        assert {k: info[k] for k in STABLE_INFO} == {k: expected["info"][k] for k in STABLE_INFO}
        assert info["schema_version"] == SCHEMA_VERSION
        assert idx.is_built == (name == "v1_built")
    # the migrated file keeps working for writes and opens read-only now
    with li.open(path, encoder=HashEncoder(dim=32)) as idx:
        idx.add([{"id": "new", "text": "zephyr quixotic vellum"}])
        assert idx.search("zephyr quixotic vellum", k=1)[0].id == "new"
    with li.open(path, readonly=True, encoder=HashEncoder(dim=32)) as idx:
        assert len(idx) == expected["info"]["documents"] + 1


def test_v2_file_migrates_and_answers_as_v2_did(tmp_path):
    expected = json.loads((FIXTURES / "v2_expected.json").read_text())["v2_mixed"]
    path = tmp_path / "v2.lateint"
    shutil.copyfile(FIXTURES / "v2_mixed.lateint", path)
    with li.open(path, encoder=HashEncoder(dim=32)) as idx:
        info = assert_answers_as_recorded(idx, expected)
        assert info["schema_version"] == SCHEMA_VERSION and info["lossy_generations"] == 0


def test_v3_file_migrates_and_answers_as_v3_did(tmp_path):
    """Schema 4 adds passage lengths; a v3 document reads as one passage, scored as v3 scored it,
    and a rebuild from text keeps answering the same (the sample has no long documents)."""
    expected = json.loads((FIXTURES / "v3_expected.json").read_text())["v3_pooled"]
    path = tmp_path / "v3.lateint"
    shutil.copyfile(FIXTURES / "v3_pooled.lateint", path)
    assert li.migrate(path) == [3, 4, 5]
    options = {"n_centroids": 16, "residual_dim": 16, "nbits": 2, "seed": 0, "pool_factor": 2}
    with li.open(path, encoder=HashEncoder(dim=32)) as idx:
        info = assert_answers_as_recorded(idx, expected, ignore=("built_at",))
        assert info["split_documents"] == 0 and idx.check().ok
        idx.build(**options)
        assert idx.check().ok and idx.info().split_documents == 0
        # k-means runs on float32 BLAS, whose kernels differ by CPU (AVX2 vs AVX-512), so the rebuilt
        # file is compared with an index built here from the same documents, not with the recording
        docs = [idx.get(i) for i in idx.ids()]
        with li.open(tmp_path / "fresh.lateint", create=True, encoder=HashEncoder(dim=32), auto_build=False) as fresh:
            fresh.add([{"id": d.id, "text": d.text, "meta": d.meta} for d in docs])
            fresh.build(**options)
            for _run, kwargs in RUNS.items():
                for query in QUERIES:
                    want = [(h.id, h.score) for h in fresh.search(query, k=5, **kwargs)]
                    assert_same_ranking(idx.search(query, k=5, **kwargs), want)


def test_v4_file_migrates_to_one_segment_and_answers_as_v4_did(tmp_path):
    """Schema 5 keeps lists per segment: the v4 file (written to after its build, with a gap at
    its top doc id) becomes one segment holding its old lists, answers as v4 did, passes the
    check, and later writes add segments above the old range without reusing a doc id."""
    expected = json.loads((FIXTURES / "v4_expected.json").read_text())["v4_written"]
    path = tmp_path / "v4.lateint"
    shutil.copyfile(FIXTURES / "v4_written.lateint", path)
    assert li.migrate(path) == [4, 5]
    with li.open(path, encoder=HashEncoder(dim=32)) as idx:
        info = assert_answers_as_recorded(idx, expected)
        assert info["schema_version"] == SCHEMA_VERSION and idx.check().ok
        (segment,) = idx._store.segments()
        assert segment.n_docs == expected["info"]["documents"] and segment.tombstones == 0
        top = segment.last_doc
        idx.add([{"id": "after", "text": "zephyr quixotic vellum"}, {"id": "after-2", "text": "vellum"}])
        idx.delete(["after-2"])
        old, new = idx._store.segments()
        assert new.first_doc > top and new.tombstones == 1 and old.tombstones == 0
        assert idx.search("zephyr quixotic vellum", k=1)[0].id == "after"
        assert idx.check().ok
        idx.optimize()
        assert len(idx._store.segments()) == 1 and idx.check().ok
        idx.delete(["after"])
        assert_answers_as_recorded(idx, expected, ignore=("built_at",))


def test_v5_file_migrates_with_its_segments_and_answers_as_v5_did(tmp_path):
    """Schema 6 adds the table that can carry the model: the v5 file (four segments, tombstones)
    keeps every segment and tombstone, carries no model, and answers as v5 did."""
    expected = json.loads((FIXTURES / "v5_expected.json").read_text())["v5_segmented"]
    path = tmp_path / "v5.lateint"
    shutil.copyfile(FIXTURES / "v5_segmented.lateint", path)
    assert li.migrate(path) == [5]
    with li.open(path, encoder=HashEncoder(dim=32)) as idx:
        info = assert_answers_as_recorded(idx, expected)
        assert info["schema_version"] == SCHEMA_VERSION and idx.check().ok
        assert info["segments"] == expected["info"]["segments"] == 4
        assert info["deleted_in_segments"] == expected["info"]["deleted_in_segments"] == 4
        assert info["model_embedded_bytes"] == 0


def test_read_only_open_of_v1_is_refused_with_the_command_to_migrate(tmp_path):
    path = v1_copy(tmp_path, "v1_built")
    before = path.read_bytes()
    with pytest.raises(MigrationRequiredError, match="lateint migrate"):
        li.open(path, readonly=True, encoder=HashEncoder(dim=32))
    assert path.read_bytes() == before


def test_cli_migrate_then_read_only_search(tmp_path, capsys):
    path = v1_copy(tmp_path, "v1_built")
    assert main(["search", str(path), "stars"]) == 1
    assert "lateint migrate" in capsys.readouterr().err
    assert main(["migrate", str(path)]) == 0
    assert "migrated from schema 1" in capsys.readouterr().out
    assert main(["migrate", str(path)]) == 0
    assert "already at the current schema" in capsys.readouterr().out
    assert li.migrate(path) == []
    with li.open(path, readonly=True, encoder=HashEncoder(dim=32)) as idx:
        assert idx.info().schema_version == SCHEMA_VERSION


def test_a_failing_migration_leaves_the_v1_file_untouched(tmp_path, monkeypatch):
    path = v1_copy(tmp_path, "v1_built")
    before = path.read_bytes()

    def half_done(store):
        store.migrate_v1_to_v2("{}", ["codec"])  # writes part of the change, then fails
        raise RuntimeError("power cut")

    monkeypatch.setitem(migrations.MIGRATIONS, 1, half_done)
    with pytest.raises(InternalError, match="power cut"):
        li.open(path, encoder=HashEncoder(dim=32))
    monkeypatch.undo()
    with li.open(path, encoder=HashEncoder(dim=32)) as idx:  # still v1, migrates now
        assert idx.info().codec == "residual"
    assert path.read_bytes() != before


def test_damaged_v1_metadata_is_a_corrupt_index_error(tmp_path):
    import apsw

    path = v1_copy(tmp_path, "v1_built")
    conn = apsw.Connection(str(path))
    conn.execute("UPDATE meta SET value = 'seven' WHERE key = 'nbits'")
    conn.close()
    with pytest.raises(CorruptIndexError, match="nbits"):
        li.open(path, encoder=HashEncoder(dim=32))

"""``Index.check()`` / ``lateint check`` (issue 13): sound indexes pass; each kind of damage is
reported without changing the file; search names a document whose tokens are gone; optimize
repairs what can be rebuilt."""

from __future__ import annotations

import hashlib

import apsw
import numpy as np
import pytest

import lateint_lite as li
from lateint_lite.cli import main
from lateint_lite.errors import CorruptIndexError

DIM = 32


def _docs(n: int = 150) -> list[dict]:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, 12, DIM)).astype(np.float32)
    return [{"id": f"d{i}", "text": f"document number {i} about tides", "vectors": vectors[i]} for i in range(n)]


@pytest.fixture(params=["unbuilt", "built"])
def index_file(request, index_path, fake_encoder):
    with li.open(index_path, create=True, encoder=fake_encoder, auto_build=False) as idx:
        idx.add(_docs())
        if request.param == "built":
            idx.build(n_centroids=16)
    return index_path


def _sql(path, statement, params=()):
    import sqlite_vec

    conn = apsw.Connection(str(path))
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    conn.execute(statement, params)
    conn.close()


def _check(path, fake_encoder, readonly=False):
    with li.open(path, encoder=fake_encoder, readonly=readonly) as idx:
        return idx.check()


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_sound_index_passes_every_check(index_file, fake_encoder):
    report = _check(index_file, fake_encoder)
    assert report.ok and report.problems == () and report.documents == 150
    assert "full-text index" in report.checks and "sqlite" in report.checks
    built = _check(index_file, fake_encoder, readonly=True)
    assert built.ok and built.skipped  # read-only: the FTS5 check is skipped, and says so


def test_check_changes_nothing(index_file, fake_encoder):
    _sql(index_file, "PRAGMA wal_checkpoint(TRUNCATE)")
    before = _digest(index_file)
    _check(index_file, fake_encoder, readonly=True)
    assert _digest(index_file) == before


def test_a_lost_token_row_is_reported_and_search_names_the_document(index_file, fake_encoder):
    _sql(index_file, "DELETE FROM doc_tokens WHERE doc_id = (SELECT doc_id FROM documents WHERE ext_id = 'd7')")
    report = _check(index_file, fake_encoder)
    assert not report.ok
    assert any("documents without stored tokens" in p for p in report.problems)
    idx = li.open(index_file, encoder=fake_encoder, readonly=True)
    try:
        with pytest.raises(CorruptIndexError, match="'d7'"):
            idx.search("tides", k=3)
    finally:
        idx.close()


def test_a_truncated_payload_is_reported(index_file, fake_encoder):
    _sql(index_file, "UPDATE doc_tokens SET payload = substr(payload, 1, 5) WHERE doc_id = 3")
    report = _check(index_file, fake_encoder)
    assert any(p.startswith("tokens of doc_id 3") for p in report.problems)


def test_a_lost_pooled_vector_is_reported(index_file, fake_encoder):
    _sql(index_file, "DELETE FROM doc_vectors WHERE rowid = 5")
    report = _check(index_file, fake_encoder)
    assert any("documents without a pooled vector: doc_id 5" in p for p in report.problems)


def test_a_damaged_full_text_index_is_reported_and_optimize_rebuilds_it(index_file, fake_encoder):
    _sql(
        index_file,
        "INSERT INTO documents_fts(documents_fts, rowid, text) SELECT 'delete', doc_id, text FROM documents "
        "WHERE doc_id = 2",
    )
    assert any("full-text index" in p for p in _check(index_file, fake_encoder).problems)
    with li.open(index_file, encoder=fake_encoder) as idx:
        idx.optimize()
    assert _check(index_file, fake_encoder).ok


def _built(path, fake_encoder):
    with li.open(path, create=True, encoder=fake_encoder, auto_build=False) as idx:
        idx.add(_docs())
        idx.build(n_centroids=16)
    return path


def test_a_tampered_inverted_list_is_reported_and_optimize_repairs_it(index_path, fake_encoder):
    _built(index_path, fake_encoder)
    _sql(
        index_path,
        "UPDATE segment_lists SET doc_ids = (SELECT doc_ids FROM segment_lists WHERE centroid_id = 1) "
        "WHERE centroid_id = 0",
    )
    report = _check(index_path, fake_encoder)
    assert any("inverted list of centroid 0" in p for p in report.problems)
    with li.open(index_path, encoder=fake_encoder) as idx:
        idx.optimize()
    assert _check(index_path, fake_encoder).ok


def test_damaged_codec_tables_are_reported(index_path, fake_encoder):
    _built(index_path, fake_encoder)
    _sql(index_path, "DELETE FROM codec_arrays WHERE name = 'bucket_weights'")
    report = _check(index_path, fake_encoder)
    assert any(p.startswith("codec:") and "bucket_weights" in p for p in report.problems)


def test_cli_check_exit_status(index_file, capsys):
    assert main(["check", str(index_file)]) == 0
    assert "checked  sqlite" in capsys.readouterr().out
    _sql(index_file, "DELETE FROM doc_vectors WHERE rowid = 5")
    assert main(["check", str(index_file)]) == 1
    captured = capsys.readouterr()
    assert "PROBLEM  documents without a pooled vector" in captured.out
    assert captured.err.startswith("lateint: error:") and captured.err.count("\n") == 1


def test_a_damaged_payload_met_by_a_search_names_the_document(index_file, fake_encoder):
    _sql(
        index_file,
        "UPDATE doc_tokens SET payload = substr(payload, 1, 5) "
        "WHERE doc_id = (SELECT doc_id FROM documents WHERE ext_id = 'd5')",
    )
    idx = li.open(index_file, encoder=fake_encoder, readonly=True)
    try:
        with pytest.raises(CorruptIndexError, match="document 'd5' is damaged") as caught:
            idx.search_vectors(np.ones((3, DIM), np.float32), k=3, exact=True)
        assert caught.value.doc_id is not None and isinstance(caught.value.__cause__, CorruptIndexError)
    finally:
        idx.close()

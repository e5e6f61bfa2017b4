"""Staged documents (encoded before the write lock): exact round trip, passages kept, spilled to
an unlinked file past the spool size, nothing left behind."""

from __future__ import annotations

import numpy as np

import lateint_lite as li
from lateint_lite import staging
from lateint_lite.codecs import canonical
from lateint_lite.passages import DocumentTokens
from lateint_lite.staging import StagedDocuments


def _docs(n: int, dim: int = 32) -> list[DocumentTokens]:
    rng = np.random.default_rng(0)
    docs = []
    for _ in range(n):
        vectors = canonical(rng.standard_normal((int(rng.integers(1, 40)), dim)).astype(np.float32))
        cut = len(vectors) // 2
        docs.append(DocumentTokens.joined([vectors[:cut], vectors[cut:]]) if cut else DocumentTokens.whole(vectors))
    return docs


def test_staged_documents_come_back_bit_for_bit(tmp_path, monkeypatch):
    for spool in (staging.SPOOL_BYTES, 1):  # in memory, and spilled to a file at the first byte
        monkeypatch.setattr(staging, "SPOOL_BYTES", spool)
        docs = _docs(50)
        with StagedDocuments(str(tmp_path), 32) as staged:
            for doc in docs:
                staged.append(doc)
            assert len(staged) == 50
            assert staged._file._rolled == (spool == 1)
            assert list(tmp_path.iterdir()) == []  # the spill file is unlinked at once
            for i in (7, 0, 49, 3):  # any order
                got = staged.get(i)
                assert np.array_equal(got.vectors, docs[i].vectors) and got.lengths.tolist() == docs[i].lengths.tolist()


def test_a_write_through_a_spilled_stage_equals_one_in_memory(tmp_path, monkeypatch, fake_encoder):
    docs = [{"id": f"d{i}", "text": f"document {i} about tides and the moon {i % 7}"} for i in range(150)]
    answers = []
    for name, spool in (("memory", staging.SPOOL_BYTES), ("file", 1)):
        monkeypatch.setattr(staging, "SPOOL_BYTES", spool)
        with li.open(tmp_path / f"{name}.lateint", create=True, encoder=fake_encoder, auto_build=False) as idx:
            idx.add(docs)
            answers.append([(h.id, h.score) for h in idx.search("tides moon 3", k=10)])
    assert answers[0] == answers[1]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [
        "file.lateint",
        "memory.lateint",
    ]


def test_writes_are_refused_before_anything_is_encoded(index_path, fake_encoder):
    """A read-only index, or an add of ids already present, fails before the encoder runs."""
    import pytest
    from fakes import FailingEncoder

    from lateint_lite.errors import DuplicateIdError, ReadOnlyError

    with li.open(index_path, create=True, encoder=fake_encoder) as idx:
        idx.add([{"id": "a", "text": "tides"}])
    never = FailingEncoder(fail_on_call=1)  # raises if it is ever asked to encode
    with li.open(index_path, encoder=never, readonly=True) as idx, pytest.raises(ReadOnlyError):
        idx.add([{"id": "b", "text": "moon"}])
    with li.open(index_path, encoder=never) as idx, pytest.raises(DuplicateIdError):
        idx.add([{"id": "b", "text": "moon"}, {"id": "a", "text": "again"}])
    assert never.calls == 0

"""Staged documents (encoded before the write lock): exact round trip, passages kept, spilled to
an unlinked file past the spool size, nothing left behind."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_steps_cover_every_document_once_in_runs_of_enough_values():
    docs = _docs(60)
    counts = [len(d.vectors) for d in docs]
    with StagedDocuments(None, 32) as staged:
        assert staged.steps(1000) == []
        for doc in docs:
            staged.append(doc)
        for floats in (1, 32 * 25, 32 * 100, 32 * 10**6):
            runs = staged.steps(floats)
            assert [p for a, b in runs for p in range(a, b)] == list(range(60))  # in order, none split or lost
            sizes = [sum(counts[a:b]) * 32 for a, b in runs]
            assert all(size >= floats for size in sizes[:-1]) and all(b - a >= 1 for a, b in runs)
            # a run ends as soon as it holds enough: without its last document it would not
            assert all((sum(counts[a : b - 1]) * 32 < floats) for a, b in runs)
        assert staged.steps(1) == [(i, i + 1) for i in range(60)]


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


def test_supplied_vectors_staged_together_equal_one_document_at_a_time(tmp_path):
    """A chunk's supplied vectors are canonicalized on their concatenation and read back in one
    range: the same bits as canonical_supplied of each document alone."""
    from lateint_lite.origins import canonical_supplied, canonical_values
    from lateint_lite.requests import check_vectors

    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((int(rng.integers(1, 120)), 48)) * rng.uniform(0.01, 100) for _ in range(40)]
    checked = [check_vectors(a, 48) for a in arrays]
    with StagedDocuments(str(tmp_path), 48) as staged:
        for values in canonical_values(checked):
            staged.append_values(values, np.array([len(values)], dtype=np.int64))
        together = staged.get_range(0, 40)
        assert [d.vectors.shape[0] for d in staged.get_range(5, 9)] == [len(a) for a in arrays[5:9]]
        assert staged.get_range(40, 40) == []
    for i, (got, array) in enumerate(zip(together, arrays, strict=True)):
        alone = canonical_supplied(array, 48, f"d{i}")
        assert got.vectors.tobytes() == alone.vectors.tobytes()
        assert got.lengths.tolist() == alone.lengths.tolist()


def test_an_encoder_that_returns_no_passage_for_a_text_is_named():
    from lateint_lite.encoder import encode_passages
    from lateint_lite.origins import encode_texts

    class NoPassages:
        dim = 8

        def encode_document_passages(self, texts):
            return [[np.ones((2, 8), np.float32)], []][: len(texts)]

    with pytest.raises(li.InvalidInputError, match="'second': no passages"):
        encode_texts(NoPassages(), ["a", "b"], ["first", "second"], 8)
    with pytest.raises(li.InvalidInputError, match="document 1: no passages"):  # no names given
        encode_passages(NoPassages(), ["a", "b"])


def test_stage_chunks_bound_documents_and_characters():
    from lateint_lite.requests import DocumentInput
    from lateint_lite.writer import _stage_chunks

    vectors = np.ones((3, 4), np.float32)
    lengths = [10, 300, 5, 5, 5, 90, 0, 40, 40, 40]
    items = [DocumentInput(f"d{i}", "x" * n, "{}", vectors if n == 0 else None) for i, n in enumerate(lengths)] + [
        DocumentInput("v", "y" * 500, "{}", vectors)
    ]  # supplied vectors: its text is not encoded
    runs = [[item.id for item in run] for run in _stage_chunks(items, 3, 100)]
    assert [i for run in runs for i in run] == [item.id for item in items]
    assert runs == [["d0"], ["d1"], ["d2", "d3", "d4"], ["d5", "d6"], ["d7", "d8"], ["d9", "v"]]
    assert [[i.id for i in r] for r in _stage_chunks(items[:4], 64, 10**9)] == [["d0", "d1", "d2", "d3"]]
    assert list(_stage_chunks([], 3, 100)) == []


def test_a_write_staged_in_small_chunks_stores_what_one_chunk_stores(tmp_path, monkeypatch, fake_encoder):
    from lateint_lite import writer

    docs = [{"id": f"d{i}", "text": " ".join(f"w{i * j % 97}" for j in range(5 + i % 40))} for i in range(120)]
    stage, calls = writer.Writer._stage, []

    def counted(self, staged, chunk, encoder):
        calls.append(len(chunk))
        return stage(self, staged, chunk, encoder)

    monkeypatch.setattr(writer.Writer, "_stage", counted)
    stored = []
    for name, chars in (("one", writer.STAGE_CHARS), ("small", 150)):
        monkeypatch.setattr(writer, "STAGE_CHARS", chars)
        with li.open(tmp_path / f"{name}.lateint", create=True, encoder=fake_encoder, auto_build=False) as idx:
            idx.add(docs, batch_size=1000)
            rows = idx._store.token_payloads(list(range(1, 121)))
            stored.append([(r.n_tokens, r.payload) for r in rows])
    assert calls[0] == 120 and len(calls) > 20 and sum(calls[1:]) == 120
    assert len(stored[0]) == 120 and stored[0] == stored[1]

"""The error contract (issue 13): every failure that leaves the public API is a LateIntError.

A catalogue of bad inputs and bad circumstances is walked through the public API;
each must raise a LateIntError subclass (the expected one where it matters), with
the original exception chained when one was translated, and leave the index as it was.
"""

from __future__ import annotations

import contextlib
import errno
import threading
import time

import apsw
import numpy as np
import pytest

import lateint_lite as li
from lateint_lite.boundary import guarded, translate
from lateint_lite.errors import (
    CorruptIndexError,
    DiskFullError,
    DocumentNotFoundError,
    IndexBusyError,
    InternalError,
    InvalidInputError,
    LateIntError,
    ReadOnlyError,
    StorageError,
)

DIM = 32


def _docs(n: int = 12) -> list[dict]:
    words = ["tide", "moon", "salt", "river", "stone", "cloud", "ember", "frost", "glass", "amber"]
    texts = [" ".join(words[(i + j) % len(words)] for j in range(5)) for i in range(n)]
    return [{"id": f"d{i}", "text": text, "meta": {"n": i}} for i, text in enumerate(texts)]


@pytest.fixture
def filled(fake_index):
    fake_index.add(_docs())
    return fake_index


@pytest.fixture
def built_index(index_path, fake_encoder):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((120, 20, DIM)).astype(np.float32)
    docs = [{"id": f"d{i}", "text": f"doc {i}", "vectors": vectors[i], "meta": {"n": i}} for i in range(120)]
    with li.open(index_path, create=True, encoder=fake_encoder, auto_build=False) as idx:
        idx.add(docs)
        idx.build(n_centroids=32)
        yield idx


BAD_CALLS = {
    "delete an int instead of a list": lambda idx: idx.delete(5),
    "rerank with a string of ids": lambda idx: idx.rerank("tide", "d1"),
    "threshold as text": lambda idx: idx.search("tide", threshold="abc"),
    "negative seed": lambda idx: idx.build(seed=-1),
    "residual_dim beyond dim": lambda idx: idx.build(residual_dim=10_000),
    "499 values in an 'in' filter": lambda idx: idx.search("tide", where={"n": {"$in": list(range(499))}}),
    "integer beyond 64 bits in a filter": lambda idx: idx.search("tide", where={"n": 2**70}),
    "lone surrogate in a query": lambda idx: idx.search("tide \ud800"),
    "highlight as text": lambda idx: idx.search("tide", highlight="yes"),
    "empty prefix filter": lambda idx: idx.search("tide", where={"n": {"prefix": ""}}),
    "$or that is not a list": lambda idx: idx.search("tide", where={"$or": {"n": 1}}),
    "$or nested too deep": lambda idx: idx.search(
        "tide", where={"$or": [{"$or": [{"$or": [{"$or": [{"$or": [{"n": 1}]}]}]}]}]}
    ),
    "lone surrogate in text": lambda idx: idx.add([{"id": "x", "text": "bad \ud800 text"}]),
    "lone surrogate in an id": lambda idx: idx.add([{"id": "x\ud800", "text": "fine"}]),
    "lone surrogate in meta": lambda idx: idx.add([{"id": "x", "text": "fine", "meta": {"k": "\udfff"}}]),
    "deeply nested meta": lambda idx: idx.add([{"id": "x", "text": "fine", "meta": _nested(5000)}]),
    "all-zero vectors": lambda idx: idx.add([{"id": "x", "text": "zeros", "vectors": np.zeros((3, DIM), np.float32)}]),
    "k as a float": lambda idx: idx.search("tide", k=2.5),
    "unknown search option": lambda idx: idx.search("tide", colour="red"),
    "get a missing id": lambda idx: idx.get("nope"),
    "query vectors of the wrong width": lambda idx: idx.search_vectors(np.ones((2, DIM + 1), np.float32)),
    "zero query vectors": lambda idx: idx.search_vectors(np.zeros((2, DIM), np.float32)),
    "export over an existing file": lambda idx: idx.export(idx.path),
    "export below a file": lambda idx: idx.export(f"{idx.path}/x.lateint"),
    "build with a codec that is not a SharedCodec": lambda idx: idx.build(codec="shared"),
    "training sample of zero tokens": lambda idx: idx.training_sample(0, 10),
    "training sample with a negative seed": lambda idx: idx.training_sample(10, 10, seed=-1),
    "both vectors and passages": lambda idx: idx.add(
        [{"id": "x", "text": "t", "vectors": np.ones((2, DIM)), "passages": [np.ones((2, DIM))]}]
    ),
    "passages that are not a list": lambda idx: idx.add([{"id": "x", "text": "t", "passages": np.ones((2, DIM))}]),
    "a shared query on an index without a shared codec": lambda idx: idx.prepare_shared_query(np.ones((2, DIM))),
    "search_prepared with plain vectors": lambda idx: idx.search_prepared(np.ones((2, DIM))),
    "no passages": lambda idx: idx.add([{"id": "x", "text": "t", "passages": []}]),
    "a passage of the wrong width": lambda idx: idx.add([{"id": "x", "text": "t", "passages": [np.ones((2, 3))]}]),
}


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_input_is_a_lateint_error_and_changes_nothing(filled, case):
    before = (len(filled), filled.ids())
    with pytest.raises(LateIntError) as caught:
        BAD_CALLS[case](filled)
    assert not isinstance(caught.value, InternalError), f"{case}: {caught.value}"
    assert (len(filled), filled.ids()) == before


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_input_on_a_built_index_is_a_lateint_error(built_index, case):
    with pytest.raises(LateIntError) as caught:
        BAD_CALLS[case](built_index)
    assert not isinstance(caught.value, InternalError), f"{case}: {caught.value}"


@pytest.mark.parametrize("op", ["in", "nin"])
def test_the_largest_membership_filter_works(filled, op):
    values = [*range(9_990), "5", None, True, 2.5, *range(-5, 0)]
    hits = filled.search("tide", k=100, where={"n": {op: values}})
    matching = {f"d{i}" for i in range(len(filled)) if (i < 9_990) == (op == "in")}
    assert {h.id for h in hits} == matching


def test_numpy_scalars_filter_like_python_ones(filled):
    plain = [h.id for h in filled.search("tide", where={"n": {"gte": 3, "in": [3, 4, 5]}})]
    numpy = [h.id for h in filled.search("tide", where={"n": {"gte": np.int64(3), "in": list(np.arange(3, 6))}})]
    assert plain == numpy and len(plain) == 3


@pytest.mark.parametrize("mode", ["maxsim", "bm25", "hybrid", "pooled"])
def test_every_mode_accepts_a_k_beyond_sqlite_vec_knn_limit(filled, mode):
    hits = filled.search("tide moon", k=5000, mode=mode)
    assert 0 < len(hits) <= len(filled)
    if mode in ("maxsim", "pooled"):
        assert len(hits) == len(filled)
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))


def test_pooled_full_scan_ranks_like_the_knn_query(filled):
    knn = filled.search("tide moon", k=10, mode="pooled")
    scan = filled.search("tide moon", k=5000, mode="pooled")[:10]
    np.testing.assert_allclose([h.score for h in scan], [h.score for h in knn], atol=1e-6)  # ties may swap


def test_foreign_exceptions_are_translated_with_the_cause_chained():
    cases = [
        (apsw.FullError("database or disk is full"), DiskFullError),
        (apsw.BusyError("database is locked"), IndexBusyError),
        (apsw.ReadOnlyError("attempt to write a readonly database"), ReadOnlyError),
        (apsw.CorruptError("database disk image is malformed"), CorruptIndexError),
        (apsw.IOError("disk I/O error"), StorageError),
        (OSError(errno.ENOSPC, "No space left on device"), DiskFullError),
        (OSError(errno.EROFS, "Read-only file system"), ReadOnlyError),
        (OSError(errno.EIO, "Input/output error"), StorageError),
        (UnicodeEncodeError("utf-8", "x\ud800", 1, 2, "surrogates not allowed"), InvalidInputError),
        (RecursionError("maximum recursion depth exceeded"), InvalidInputError),
        (RuntimeError("unexpected"), InternalError),
    ]
    for raw, wanted in cases:

        @guarded
        def fail(exc=raw):
            raise exc

        with pytest.raises(wanted) as caught:
            fail()
        assert caught.value.__cause__ is raw
    assert translate(KeyboardInterrupt(), "x").__class__ is KeyboardInterrupt


def test_a_full_disk_rolls_back_and_reports_disk_full(filled):
    conn = filled._store._conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages + 2}")
    big = [{"id": f"big{i}", "text": " ".join(f"w{i}x{j}" for j in range(200))} for i in range(200)]
    before = filled.ids()
    with pytest.raises(DiskFullError) as caught:
        filled.add(big)
    assert isinstance(caught.value.__cause__, apsw.FullError)
    conn.execute("PRAGMA max_page_count=1073741823")
    assert filled.ids() == before
    filled.add(big[:2])  # the index works again once there is room
    assert len(filled) == len(before) + 2


def _hold_write_lock(path: str, seconds: float, started: threading.Event) -> None:
    conn = apsw.Connection(path)
    conn.execute("BEGIN IMMEDIATE")
    started.set()
    time.sleep(seconds)
    conn.execute("COMMIT")
    conn.close()


@contextlib.contextmanager
def _locked_elsewhere(path: str, seconds: float):
    """Another connection holds the write lock for ``seconds`` (from a thread) while the body runs."""
    started = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, seconds, started))
    holder.start()
    started.wait(10)
    try:
        yield
    finally:
        holder.join()


def test_a_writer_waits_for_another_connections_write(index_path, fake_encoder):
    with li.open(index_path, create=True, encoder=fake_encoder, busy_timeout=60) as idx:
        idx.add(_docs(3))
        with _locked_elsewhere(idx.path, 1.0):
            idx.add(_docs(6)[3:])  # waits about 1 s, then succeeds
        assert len(idx) == 6
        assert idx.search("tide", k=3)  # reads never waited on the lock


def test_a_writer_gives_up_after_its_busy_timeout(index_path, fake_encoder):
    with li.open(index_path, create=True, encoder=fake_encoder, busy_timeout=0.3) as idx:
        idx.add(_docs(3))
        with _locked_elsewhere(idx.path, 3.0):
            hits = idx.search("tide", k=3)  # a reader does not wait
            with pytest.raises(IndexBusyError) as caught:
                idx.add(_docs(6)[3:])
            assert isinstance(caught.value.__cause__, apsw.BusyError)
        assert len(idx) == 3 and hits


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "10", float("inf")])
def test_busy_timeout_is_validated(index_path, fake_encoder, bad):
    with pytest.raises(InvalidInputError):
        li.open(index_path, create=True, encoder=fake_encoder, busy_timeout=bad)


@pytest.mark.parametrize(
    ("length", "overlap"), [(8, None), (513, None), (128, 65), (128, -1), ("256", None), (True, None), (None, 200)]
)
def test_a_bad_passage_window_is_refused_before_the_file_is_created(index_path, length, overlap):
    with pytest.raises(InvalidInputError, match="passage_"):
        li.open(index_path, create=True, passage_length=length, passage_overlap=overlap)
    assert not index_path.exists()


@pytest.mark.parametrize("count", [0, -3, 4097, 2.5, "8", True])
def test_a_bad_passage_count_is_refused_before_the_file_is_created(index_path, count):
    with pytest.raises(InvalidInputError, match="max_passages must be an integer from 1 to 4096"):
        li.open(index_path, create=True, max_passages=count)
    assert not index_path.exists()


@pytest.mark.parametrize("stored", [0, 4097, 10**12, "64", 2.5])
def test_a_damaged_passage_count_in_the_file_is_a_corrupt_index(index_path, fake_encoder, stored):
    import json

    li.open(index_path, create=True, encoder=fake_encoder).close()
    connection = apsw.Connection(str(index_path))
    (text,) = connection.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
    config = {**json.loads(text), "max_passages": stored}
    connection.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(config),))
    connection.close()
    with pytest.raises(CorruptIndexError, match="passage count"):
        li.open(index_path, encoder=fake_encoder)


def test_a_passage_window_needs_a_new_index_and_an_onnx_model(index_path, fake_encoder):
    with pytest.raises(InvalidInputError, match="custom encoder"):
        li.open(index_path, create=True, encoder=fake_encoder, passage_length=128)
    with pytest.raises(InvalidInputError, match="custom encoder"):
        li.open(index_path, create=True, encoder=fake_encoder, max_passages=8)
    li.open(index_path, create=True, encoder=fake_encoder).close()
    with pytest.raises(InvalidInputError, match="when the index is created"):
        li.open(index_path, passage_length=128)
    with pytest.raises(InvalidInputError, match="when the index is created"):
        li.open(index_path, max_passages=8)


def test_document_not_found_is_still_a_key_error(filled):
    with pytest.raises(KeyError):
        filled.get("nope")
    with pytest.raises(DocumentNotFoundError):
        filled.delete(["nope"])


def test_a_failed_creation_leaves_no_file(index_path):
    from lateint_lite.errors import ModelError

    with pytest.raises(ModelError):
        li.open(index_path, create=True, model="no-such-model")
    assert not index_path.exists()
    assert not list(index_path.parent.glob(index_path.name + "*"))


def _vector_docs(start: int, n: int, version: int = 0) -> list[dict]:
    rng = np.random.default_rng(start * 10 + version)
    vectors = rng.standard_normal((n, 24, DIM)).astype(np.float32)
    return [{"id": f"v{start + i}", "text": f"doc {start + i} v{version}", "vectors": vectors[i]} for i in range(n)]


WRITES = {
    "add": lambda idx: idx.add(_vector_docs(1000, 300)),
    "upsert": lambda idx: idx.upsert(_vector_docs(0, 150, version=1)),
    "delete": lambda idx: idx.delete([f"v{i}" for i in range(0, 150, 3)]),
    "build": lambda idx: idx.build(n_centroids=64, lossy=True, compact=False),
    "optimize": lambda idx: idx.optimize(retrain=True, lossy=True),
}


@pytest.mark.parametrize("operation", sorted(WRITES))
@pytest.mark.parametrize("room_pages", [0, 3, 40])
def test_every_write_on_a_full_disk_rolls_back_cleanly(index_path, fake_encoder, operation, room_pages):
    with li.open(index_path, create=True, encoder=fake_encoder, auto_build=False) as idx:
        idx.add(_vector_docs(0, 150))
        idx.build(n_centroids=32)
        before = {i: idx.get(i).text for i in idx.ids()}
        conn = idx._store._conn
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={pages + room_pages}")
        try:
            WRITES[operation](idx)
            succeeded = True
        except DiskFullError as exc:
            assert isinstance(exc.__cause__, apsw.FullError)
            succeeded = False
        conn.execute("PRAGMA max_page_count=1073741823")
        after = {i: idx.get(i).text for i in idx.ids()}
        if not succeeded:
            assert after == before  # nothing of the failed write is visible
        elif room_pages == 0:  # rewrites can reuse freed pages; adding 300 documents cannot
            assert operation != "add"
        assert idx.check().ok
        assert idx.search_vectors(np.ones((2, DIM), np.float32), k=3)


@pytest.mark.parametrize("mode", ["maxsim", "bm25", "hybrid", "pooled"])
@pytest.mark.parametrize("options", [{"k": 2**70}, {"k": 2**63}, {"ncells": 2**70}, {"ndocs": 2**70}])
def test_counts_beyond_64_bits_mean_everything_in_every_mode(built_index, mode, options):
    if mode != "maxsim" and set(options) & {"ncells", "ndocs"}:
        options = {**options, "k": 5}
    hits = built_index.search("doc", mode=mode, **options)
    assert hits and [h.rank for h in hits] == list(range(1, len(hits) + 1))

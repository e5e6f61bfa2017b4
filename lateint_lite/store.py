"""All SQL of lateint-lite: connection setup, DDL, reads and writes.

Blob columns are read through ``CAST(... AS BLOB)``: a damaged file can hold
text (even invalid UTF-8) where a blob belongs, and callers must get bytes to
validate rather than a decoding error.

The index is one SQLite file opened through ``apsw`` (it ships a current SQLite
and can always load extensions, which the stdlib ``sqlite3`` cannot on many
Pythons; see docs/ARCHITECTURE.md). ``sqlite-vec`` is loaded into every
connection; its ``vec0`` tables hold the pooled per-document vectors and the
centroids, both as int8 (cosine is scale-free, and centroid scales live in
``codec_arrays``).

Nothing here interprets blobs: callers get bytes and validate them (codec.py).
Writers wrap their calls in :meth:`Store.write`, one ``BEGIN IMMEDIATE``
transaction that rolls back on any exception.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import apsw
import numpy as np
import sqlite_vec

from .errors import CorruptIndexError, ExtensionError, LateIntError, NotAnIndexError, ReadOnlyError
from .filters import AnyOf, Clause
from .schema import APPLICATION_ID, SCHEMA_VERSION, FileState, classify

log = logging.getLogger(__name__)

#: meta key of the index configuration (JSON, see config.py); written only by Store.write_config
CONFIG_KEY = "config"

#: The largest k sqlite-vec's KNN query accepts.
VEC_KNN_MAX_K = 4096
#: How long a writer waits for another connection's write (a build can take minutes); None: forever.
DEFAULT_BUSY_TIMEOUT_S: float | None = 1800.0
#: A writer that has waited this long says so (logged once per wait).
BUSY_NOTICE_S = 2.0
MMAP_BYTES = 1 << 30
CACHE_KIB = 64 * 1024
#: Largest number of host parameters per statement we generate (SQLite allows 32766).
PARAM_CHUNK = 900

#: Every table of the current schema (virtual tables included).
TABLES = (
    "meta",
    "documents",
    "doc_tokens",
    "codec_arrays",
    "segments",
    "segment_lists",
    "tombstones",
    "doc_vectors",
    "centroids",
    "documents_fts",
    "model_files",
)

#: A document's stored tokens, as read into a TokenRow.
_TOKEN_COLUMNS = "d.doc_id, d.n_tokens, CAST(t.codes AS BLOB), CAST(t.payload AS BLOB), CAST(t.passages AS BLOB)"
#: FROM/WHERE of the documents that have no row in doc_tokens (damage: every document has one).
_DOCUMENTS_WITHOUT_TOKENS = "FROM documents d WHERE NOT EXISTS (SELECT 1 FROM doc_tokens t WHERE t.doc_id = d.doc_id)"

#: Schema 5: segments (each write's documents, a doc_id range), their inverted lists, tombstones.
_SEGMENT_TABLES = """
CREATE TABLE segments(
    segment_id INTEGER PRIMARY KEY AUTOINCREMENT,
    first_doc  INTEGER NOT NULL,
    last_doc   INTEGER NOT NULL CHECK (last_doc >= first_doc),
    n_docs     INTEGER NOT NULL CHECK (n_docs > 0),
    created_at REAL NOT NULL
);

CREATE TABLE segment_lists(
    segment_id  INTEGER NOT NULL,
    centroid_id INTEGER NOT NULL,
    doc_ids     BLOB NOT NULL,
    PRIMARY KEY (segment_id, centroid_id)
);

CREATE TABLE tombstones(
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    segment_id INTEGER NOT NULL,
    doc_id     INTEGER NOT NULL
);

CREATE INDEX tombstones_by_segment ON tombstones(segment_id, doc_id);
"""

#: Schema 6: the files of the model that encoded the index, when it carries them (embed_model).
_MODEL_TABLE = """
CREATE TABLE model_files(
    name   TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    data   BLOB NOT NULL
);
"""

_SCHEMA = """
CREATE TABLE meta(
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE documents(
    doc_id   INTEGER PRIMARY KEY,
    ext_id   TEXT NOT NULL UNIQUE,
    text     TEXT NOT NULL,
    meta     TEXT NOT NULL DEFAULT '{{}}' CHECK (json_valid(meta)),
    n_tokens INTEGER NOT NULL CHECK (n_tokens > 0),
    added_at REAL NOT NULL,
    origin   INTEGER CHECK (origin IN (0, 1))
);

CREATE TABLE doc_tokens(
    doc_id   INTEGER PRIMARY KEY REFERENCES documents(doc_id) ON DELETE CASCADE,
    passages BLOB,
    codes    BLOB,
    payload  BLOB NOT NULL
);

CREATE TABLE codec_arrays(
    name  TEXT PRIMARY KEY,
    dtype TEXT NOT NULL,
    shape TEXT NOT NULL,
    data  BLOB NOT NULL
) WITHOUT ROWID;

{segments}

{model}

CREATE VIRTUAL TABLE doc_vectors USING vec0(embedding int8[{dim}] distance_metric=cosine);

CREATE VIRTUAL TABLE centroids USING vec0(embedding int8[{dim}]);

CREATE VIRTUAL TABLE documents_fts USING fts5(
    text, content='documents', content_rowid='doc_id',
    tokenize='porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER documents_fts_insert AFTER INSERT ON documents BEGIN
    INSERT INTO documents_fts(rowid, text) VALUES (new.doc_id, new.text);
END;
CREATE TRIGGER documents_fts_delete AFTER DELETE ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, text) VALUES ('delete', old.doc_id, old.text);
END;
CREATE TRIGGER documents_fts_update AFTER UPDATE OF text ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, text) VALUES ('delete', old.doc_id, old.text);
    INSERT INTO documents_fts(rowid, text) VALUES (new.doc_id, new.text);
END;
"""


@dataclass(frozen=True)
class DocumentRow:
    """One row of ``documents`` as stored."""

    doc_id: int
    ext_id: str
    text: str
    meta_json: str
    n_tokens: int


class TokenRow(NamedTuple):
    """One document's stored tokens, as read: bytes are unchecked until a codec reads them."""

    doc_id: int
    n_tokens: int
    codes: bytes | None
    payload: bytes
    passages: bytes | None = None  # uint32 token count per passage; None: one passage


class SegmentRow(NamedTuple):
    """One segment as stored: the doc_id range its documents hold, how many were written into it,
    and how many of those are deleted (tombstoned) since."""

    segment_id: int
    first_doc: int
    last_doc: int
    n_docs: int
    tombstones: int = 0

    @property
    def live(self) -> int:
        return self.n_docs - self.tombstones


class CodesRow(NamedTuple):
    """One document's centroid codes blob, as read."""

    doc_id: int
    n_tokens: int
    codes: bytes | None


@dataclass(frozen=True)
class NewDocument:
    """Everything one document insert writes, already encoded."""

    ext_id: str
    text: str
    meta_json: str
    n_tokens: int
    codes: bytes | None
    payload: bytes
    passages: bytes | None
    pooled: bytes
    origin: int  # ORIGIN_TEXT or ORIGIN_VECTORS


#: ``documents.origin``: the vectors were encoded from the document's text by the index's model...
ORIGIN_TEXT = 0
#: ...or were passed in precomputed (there is no text to re-encode them from). NULL: unknown.
ORIGIN_VECTORS = 1


class SourceRow(NamedTuple):
    """What a build needs to recreate one document's vectors from its best source."""

    doc_id: int
    ext_id: str
    text: str
    origin: int | None
    n_tokens: int
    codes: bytes | None
    payload: bytes
    passages: bytes | None


def sqlite_vec_version() -> str:
    """Version string of the bundled sqlite-vec extension."""
    return str(getattr(sqlite_vec, "__version__", "unknown"))


def _busy_handler(path: str, timeout: float | None) -> Callable[[int], bool]:
    """SQLite busy handler: retry with backoff (1 ms doubling to 100 ms) until ``timeout``
    seconds have passed since this wait began (never, for None); log once when a wait is long."""
    wait = {"start": 0.0, "told": False}

    def handler(prior_calls: int) -> bool:
        now = time.monotonic()
        if prior_calls == 0:
            wait["start"], wait["told"] = now, False
        waited = now - float(wait["start"])
        if timeout is not None and waited >= timeout:
            return False
        if waited >= BUSY_NOTICE_S and not wait["told"]:
            wait["told"] = True
            limit = "without a limit" if timeout is None else f"up to {timeout:g} s"
            log.warning("%s: waiting for another connection's write to finish (%s)", path, limit)
        time.sleep(min(0.001 * 2 ** min(prior_calls, 7), 0.1))
        return True

    return handler


class Store:
    """Connections to one index file, plus every query the library runs.

    Each thread gets its own apsw connection (SQLite connections must not be
    used by two threads at once; WAL lets them read concurrently while one
    writes). Every write transaction bumps ``meta.write_counter``, which
    readers use to notice that cached search data is stale.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = False,
        readonly: bool = False,
        busy_timeout: float | None = DEFAULT_BUSY_TIMEOUT_S,
    ) -> None:
        self.path = str(path)
        self.readonly = readonly
        self.busy_timeout = busy_timeout
        if not create and not Path(self.path).exists():
            raise NotAnIndexError(f"{self.path}: no such index (create it with `lateint init` or create=True)")
        if Path(self.path).is_dir():
            raise NotAnIndexError(f"{self.path}: is a directory, not an index file")
        if create and readonly:
            raise LateIntError("an index cannot be created read-only")
        self._local = threading.local()
        self._all: list[apsw.Connection] = []
        self._all_lock = threading.Lock()
        self._closed = False
        try:
            self.state = self._classify()
        except BaseException:
            self.close()
            raise

    # -- connection -----------------------------------------------------------------

    @property
    def _conn(self) -> apsw.Connection:
        """This thread's connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open_connection()
            self._local.conn = conn
        return conn

    def _open_connection(self) -> apsw.Connection:
        if self._closed:
            raise LateIntError(f"{self.path}: the index is closed")
        flags = apsw.SQLITE_OPEN_READONLY if self.readonly else apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
        try:
            conn = apsw.Connection(self.path, flags=flags)
        except apsw.CantOpenError as exc:
            raise NotAnIndexError(f"{self.path}: cannot open: {exc}") from exc
        try:
            self._configure(conn)
        except BaseException:
            conn.close()
            raise
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _configure(self, conn: apsw.Connection) -> None:
        conn.set_busy_handler(_busy_handler(self.path, self.busy_timeout))
        try:
            conn.enable_load_extension(True)
            conn.load_extension(sqlite_vec.loadable_path())
            conn.enable_load_extension(False)
        except apsw.Error as exc:
            raise ExtensionError(f"cannot load sqlite-vec: {exc}") from exc
        try:
            conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            conn.execute("PRAGMA foreign_keys=ON")
            if not self.readonly:
                conn.execute("PRAGMA synchronous=NORMAL")
        except apsw.NotADBError as exc:
            raise NotAnIndexError(f"{self.path}: not a SQLite database") from exc

    def _classify(self) -> FileState:
        try:
            app_id = self._scalar("PRAGMA application_id")
            version = self._scalar("PRAGMA user_version")
            has_tables = bool(self._scalar("SELECT count(*) FROM sqlite_master"))
        except (apsw.NotADBError, apsw.CorruptError) as exc:
            raise NotAnIndexError(f"{self.path}: not a SQLite database ({exc})") from exc
        return classify(int(app_id), int(version), has_tables, self.path)

    def close(self) -> None:
        """Close every connection (idempotent)."""
        self._closed = True
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def _scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self._conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        """The single row an aggregate query always returns."""
        row = self._conn.execute(sql, params).fetchone()
        if row is None:
            raise LateIntError(f"query returned no row: {sql}")
        return tuple(row)

    def require_writable(self) -> None:
        """Refuse a write on a read-only connection (before any work is done for it)."""
        if self.readonly:
            raise ReadOnlyError(f"{self.path}: index is open read-only")

    @contextmanager
    def write(self) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` transaction; rolls back on any exception (including a failed
        COMMIT; SQLite may already have rolled back, e.g. when the disk is full)."""
        self.require_writable()
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute(
                "INSERT INTO meta(key, value) VALUES ('write_counter', '1') "
                "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
            )
            conn.execute("COMMIT")
        except BaseException:
            if not conn.get_autocommit():
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def unmapped(self) -> Iterator[None]:
        """Reads inside go through SQLite's bounded page cache instead of the memory map, so a
        pass over the whole file (a build reading every document's tokens) adds none of the
        file's pages to this process's resident memory (they were up to ``MMAP_BYTES``)."""
        self._conn.execute("PRAGMA mmap_size=0")
        try:
            yield
        finally:
            self._conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")

    def drop_read_pages(self) -> None:
        """Unmap the pages reads have mapped and free the page cache, after a pass over much of
        the file (loading the resident search state). Mapped pages stay mapped, and count in
        this process's RSS, until the next commit by another process, when SQLite unmaps them
        all inside that commit's first read: 28 ms for the 1 GiB a 1M-document load maps."""
        self._conn.execute("PRAGMA mmap_size=0")
        self._conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        self.release_cache()

    def release_cache(self) -> None:
        """Free what SQLite's page cache holds that it can (clean pages; ``PRAGMA shrink_memory``):
        before work that reads no page for a while, such as training a codec on a sample."""
        self._conn.execute("PRAGMA shrink_memory")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every read inside sees the same committed state."""
        conn = self._conn
        if not conn.get_autocommit():  # already inside write() or snapshot() on this thread
            yield
            return
        conn.execute("BEGIN DEFERRED")
        try:
            yield
        finally:
            if not conn.get_autocommit():
                conn.execute("COMMIT")

    def write_counter(self) -> int:
        """Number of committed write transactions (changes whenever anyone writes)."""
        value = self._scalar("SELECT coalesce((SELECT value FROM meta WHERE key = 'write_counter'), 0)")
        try:
            return int(value or 0)
        except (TypeError, ValueError) as exc:
            raise CorruptIndexError(f"{self.path}: meta write_counter is not a number ({value!r})") from exc

    def missing_tables(self) -> list[str]:
        """Tables of the current schema that the file lacks."""
        present = {str(r[0]) for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return [t for t in TABLES if t not in present]

    def compact(self) -> None:
        """VACUUM (rewrite the file without free pages) and truncate the WAL; outside transactions."""
        if self.readonly:
            raise ReadOnlyError(f"{self.path}: index is open read-only")
        try:
            self._conn.execute("VACUUM")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except apsw.Error as exc:
            raise LateIntError(f"{self.path}: compaction (VACUUM) failed: {exc}") from exc

    def ensure_wal(self) -> None:
        """Switch a writable index (e.g. a shipped copy) back to WAL mode."""
        if not self.readonly and str(self._scalar("PRAGMA journal_mode")).lower() != "wal":
            self._conn.execute("PRAGMA journal_mode=WAL")

    def export_copy(self, target: str) -> None:
        """Write a compact, self-contained copy (``VACUUM INTO``) in rollback-journal mode,
        so it opens read-only from read-only media without -wal/-shm files."""
        self._conn.execute("VACUUM INTO ?", (target,))
        copy = apsw.Connection(target)
        try:
            copy.execute("PRAGMA journal_mode=DELETE")
        finally:
            copy.close()

    def free_fraction(self) -> float:
        """Share of the file's pages that are free (left behind by deletes and rebuilds)."""
        pages = int(self._scalar("PRAGMA page_count"))
        return int(self._scalar("PRAGMA freelist_count")) / pages if pages else 0.0

    # -- schema ---------------------------------------------------------------------

    def initialize(self, dim: int, meta: dict[str, str], config_json: str) -> None:
        """Create the current schema in an empty file, in one transaction, with WAL on."""
        if self.state is not FileState.EMPTY:
            raise LateIntError(f"{self.path}: already initialized")
        self._conn.execute("PRAGMA journal_mode=WAL")
        with self.write():
            self._conn.execute(_SCHEMA.format(dim=int(dim), segments=_SEGMENT_TABLES, model=_MODEL_TABLE))
            self._put_meta({**meta, CONFIG_KEY: config_json})
            self._conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            self._set_user_version(SCHEMA_VERSION)
        self.state = FileState.CURRENT

    def schema_version(self) -> int:
        return int(self._scalar("PRAGMA user_version"))

    def _set_user_version(self, version: int) -> None:
        self._conn.execute(f"PRAGMA user_version={int(version)}")
        self._put_meta({"schema_version": str(int(version))})

    def migrate_v1_to_v2(self, config_json: str, moved_keys: Sequence[str]) -> None:
        """Schema 2: the scattered v1 meta keys become one config row. Inside :meth:`write`."""
        self._conn.executemany("DELETE FROM meta WHERE key = ?", [(k,) for k in moved_keys])
        self._put_meta({CONFIG_KEY: config_json})
        self._set_user_version(2)

    def migrate_v2_to_v3(self) -> None:
        """Schema 3: ``documents.origin`` (0 text, 1 precomputed vectors; NULL unknown). Inside :meth:`write`."""
        self._conn.execute("ALTER TABLE documents ADD COLUMN origin INTEGER CHECK (origin IN (0, 1))")
        self._set_user_version(3)

    def migrate_v3_to_v4(self) -> None:
        """Schema 4: ``doc_tokens.passages`` (passage token counts; NULL: one passage). Inside :meth:`write`."""
        self._conn.execute("ALTER TABLE doc_tokens ADD COLUMN passages BLOB")
        self._set_user_version(4)

    def migrate_v4_to_v5(self) -> None:
        """Schema 5: segments, per-segment inverted lists and tombstones replace the one ``ivf``
        table; every existing document becomes one segment holding the old lists. Inside :meth:`write`."""
        self._conn.execute(_SEGMENT_TABLES)
        if self.has_documents():
            first, last, n_docs = self._one("SELECT min(doc_id), max(doc_id), count(*) FROM documents")
            segment_id = self.add_segment(int(first), int(last), int(n_docs))
            self._conn.execute(
                "INSERT INTO segment_lists(segment_id, centroid_id, doc_ids) "
                "SELECT ?, centroid_id, CAST(doc_ids AS BLOB) FROM ivf",
                (segment_id,),
            )
        self._conn.execute("DROP TABLE ivf")
        self._set_user_version(5)

    def migrate_v5_to_v6(self) -> None:
        """Schema 6: ``model_files`` (empty: a migrated file carries no model). Inside :meth:`write`."""
        self._conn.execute(_MODEL_TABLE)
        self._set_user_version(6)

    # -- the embedded model ------------------------------------------------------------------

    def replace_model_files(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        """Store the model's files as (name, sha256, bytes), replacing any; inside :meth:`write`."""
        self._conn.execute("DELETE FROM model_files")
        self._conn.executemany("INSERT INTO model_files(name, sha256, data) VALUES (?, ?, ?)", rows)

    def model_files(self) -> list[tuple[str, str, int]]:
        """(name, sha256, bytes) of every embedded model file, by name, unvalidated."""
        return [
            (str(n), str(h), int(size))
            for n, h, size in self._conn.execute("SELECT name, sha256, length(data) FROM model_files ORDER BY name")
        ]

    def model_file_data(self, name: str) -> bytes:
        """One embedded model file's bytes (empty when absent)."""
        row = self._conn.execute("SELECT CAST(data AS BLOB) FROM model_files WHERE name = ?", (name,)).fetchone()
        return b"" if row is None else bytes(row[0])

    def mark_current(self) -> None:
        """Record that the file was brought to the current schema (after a migration)."""
        self.state = FileState.CURRENT

    # -- meta -----------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        """Every meta row (versions, timestamps, the write counter, the raw config)."""
        return {k: v for k, v in self._conn.execute("SELECT key, value FROM meta")}

    def read_config(self) -> str | None:
        """The stored index configuration (JSON text, unvalidated), or None."""
        value = self._scalar("SELECT value FROM meta WHERE key = ?", (CONFIG_KEY,))
        return None if value is None else str(value)

    def write_config(self, config_json: str) -> None:
        """Replace the index configuration; the only writer of it. Inside :meth:`write`."""
        self._put_meta({CONFIG_KEY: config_json})

    def set_meta(self, values: dict[str, str]) -> None:
        """Upsert meta keys; call inside :meth:`write`."""
        self._put_meta(values)

    def _put_meta(self, values: dict[str, str]) -> None:
        self._conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [(k, str(v)) for k, v in values.items()],
        )

    # -- documents ------------------------------------------------------------------

    def existing_ext_ids(self, ext_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(ext_ids):
            marks = ",".join("?" * len(chunk))
            found.update(
                r[0] for r in self._conn.execute(f"SELECT ext_id FROM documents WHERE ext_id IN ({marks})", chunk)
            )
        return found

    def next_doc_id(self) -> int:
        """The doc_id the next inserted document gets: above every stored document and every
        segment's range, so a new document never falls into an existing segment."""
        return 1 + int(
            self._scalar(
                "SELECT max(coalesce((SELECT max(doc_id) FROM documents), 0), "
                "coalesce((SELECT max(last_doc) FROM segments), 0))"
            )
        )

    def insert_documents(self, docs: Iterable[NewDocument]) -> list[int]:
        """Insert documents with their token payload and pooled vector, under consecutive new
        doc_ids (:meth:`next_doc_id` on); inside :meth:`write`."""
        now = time.time()
        docs = list(docs)
        first = self.next_doc_id()
        ids = list(range(first, first + len(docs)))
        self._conn.executemany(
            "INSERT INTO documents(doc_id, ext_id, text, meta, n_tokens, added_at, origin) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(i, d.ext_id, d.text, d.meta_json, d.n_tokens, now, d.origin) for i, d in zip(ids, docs, strict=True)],
        )
        self._conn.executemany(
            "INSERT INTO doc_tokens(doc_id, codes, payload, passages) VALUES (?, ?, ?, ?)",
            [(i, d.codes, d.payload, d.passages) for i, d in zip(ids, docs, strict=True)],
        )
        self._conn.executemany(
            "INSERT INTO doc_vectors(rowid, embedding) VALUES (?, vec_int8(?))",
            [(i, d.pooled) for i, d in zip(ids, docs, strict=True)],
        )
        return ids

    def delete_documents(self, ext_ids: Sequence[str]) -> list[int]:
        """Delete by external id; returns the internal ids removed. Inside :meth:`write`."""
        removed: list[int] = []
        for chunk in _chunks(ext_ids):
            marks = ",".join("?" * len(chunk))
            doc_ids = [
                r[0] for r in self._conn.execute(f"SELECT doc_id FROM documents WHERE ext_id IN ({marks})", chunk)
            ]
            if not doc_ids:
                continue
            id_marks = ",".join("?" * len(doc_ids))
            self._conn.execute(f"DELETE FROM doc_tokens WHERE doc_id IN ({id_marks})", doc_ids)
            self._conn.execute(f"DELETE FROM doc_vectors WHERE rowid IN ({id_marks})", doc_ids)
            self._conn.execute(f"DELETE FROM documents WHERE doc_id IN ({id_marks})", doc_ids)
            removed.extend(doc_ids)
        return removed

    def document_by_ext_id(self, ext_id: str) -> DocumentRow | None:
        row = self._conn.execute(
            "SELECT doc_id, ext_id, text, meta, n_tokens FROM documents WHERE ext_id = ?", (ext_id,)
        ).fetchone()
        return None if row is None else DocumentRow(*row)

    def documents_by_ext_ids(self, ext_ids: Sequence[str]) -> list[DocumentRow]:
        rows: list[DocumentRow] = []
        for chunk in _chunks(list(ext_ids)):
            marks = ",".join("?" * len(chunk))
            rows.extend(
                DocumentRow(*row)
                for row in self._conn.execute(
                    f"SELECT doc_id, ext_id, text, meta, n_tokens FROM documents WHERE ext_id IN ({marks})", chunk
                )
            )
        return rows

    def documents_by_doc_ids(self, doc_ids: Sequence[int]) -> dict[int, DocumentRow]:
        rows: dict[int, DocumentRow] = {}
        for chunk in _chunks([int(i) for i in doc_ids]):
            marks = ",".join("?" * len(chunk))
            for row in self._conn.execute(
                f"SELECT doc_id, ext_id, text, meta, n_tokens FROM documents WHERE doc_id IN ({marks})", chunk
            ):
                rows[row[0]] = DocumentRow(*row)
        return rows

    def iter_ext_ids(self) -> Iterator[str]:
        for (ext_id,) in self._conn.execute("SELECT ext_id FROM documents ORDER BY doc_id"):
            yield ext_id

    def has_documents(self) -> bool:
        return bool(self._scalar("SELECT EXISTS (SELECT 1 FROM documents)"))

    def counts(self) -> tuple[int, int]:
        """(number of documents, number of stored tokens)."""
        row = self._one("SELECT count(*), coalesce(sum(n_tokens), 0) FROM documents")
        return int(row[0]), int(row[1])

    def count_split_documents(self) -> int:
        """How many documents are stored as more than one passage."""
        return int(self._one("SELECT count(*) FROM doc_tokens WHERE passages IS NOT NULL")[0])

    def iter_token_payloads(self, first: int = 0, last: int = 2**62) -> Iterator[TokenRow]:
        """Stored tokens of every document (with doc_id in first..last), by doc_id."""
        for row in self._conn.execute(
            f"SELECT {_TOKEN_COLUMNS} FROM documents d JOIN doc_tokens t ON t.doc_id = d.doc_id "
            "WHERE d.doc_id BETWEEN ? AND ? ORDER BY d.doc_id",
            (int(first), int(last)),
        ):
            yield TokenRow(*row)

    def count_documents(self, first: int, last: int) -> int:
        """How many documents have a doc_id in first..last."""
        return int(self._scalar("SELECT count(*) FROM documents WHERE doc_id BETWEEN ? AND ?", (first, last)))

    def token_payloads(self, doc_ids: Sequence[int]) -> Iterator[TokenRow]:
        """Stored tokens of the given documents, in one batched query per chunk."""
        for chunk in _chunks([int(i) for i in doc_ids]):
            marks = ",".join("?" * len(chunk))
            for row in self._conn.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM documents d JOIN doc_tokens t ON t.doc_id = d.doc_id "
                f"WHERE d.doc_id IN ({marks})",
                chunk,
            ):
                yield TokenRow(*row)

    def source_rows(self, doc_ids: Sequence[int]) -> list[SourceRow]:
        """Text, origin and stored tokens of the given documents, in ``doc_ids`` order."""
        found: dict[int, SourceRow] = {}
        for chunk in _chunks([int(i) for i in doc_ids]):
            marks = ",".join("?" * len(chunk))
            for row in self._conn.execute(
                "SELECT d.doc_id, d.ext_id, d.text, d.origin, d.n_tokens, CAST(t.codes AS BLOB), "
                "CAST(t.payload AS BLOB), CAST(t.passages AS BLOB) FROM documents d "
                f"JOIN doc_tokens t ON t.doc_id = d.doc_id WHERE d.doc_id IN ({marks})",
                chunk,
            ):
                found[row[0]] = SourceRow(*row)
        return [found[int(i)] for i in doc_ids if int(i) in found]

    def origin_counts(self) -> dict[int | None, int]:
        """Number of documents per origin (None: unknown, from files older than schema 3)."""
        return {o: int(n) for o, n in self._conn.execute("SELECT origin, count(*) FROM documents GROUP BY origin")}

    def set_origins(self, origins: Iterable[tuple[int, int]]) -> None:
        """Record (doc_id, origin) pairs; inside :meth:`write`."""
        self._conn.executemany("UPDATE documents SET origin = ? WHERE doc_id = ?", [(o, d) for d, o in origins])

    # -- single-vector and lexical ----------------------------------------------------

    def pooled_knn(self, vector_int8: bytes, k: int, conditions: Sequence[Clause] = ()) -> list[tuple[int, float]]:
        """(doc_id, cosine distance) of the k nearest pooled document vectors (sqlite-vec).

        sqlite-vec's KNN takes k <= ``VEC_KNN_MAX_K``; a larger k scans every vector.
        """
        where, params = _filter_sql(conditions)
        restrict = f" AND rowid IN (SELECT d.doc_id FROM documents d WHERE {where})" if conditions else ""
        if k <= VEC_KNN_MAX_K:
            sql = f"SELECT rowid, distance FROM doc_vectors WHERE embedding MATCH vec_int8(?) AND k = ?{restrict}"
            args: tuple[Any, ...] = (vector_int8, int(k), *params)
        else:
            sql = (
                "SELECT rowid, vec_distance_cosine(embedding, vec_int8(?)) AS distance FROM doc_vectors "
                f"WHERE 1{restrict} ORDER BY distance, rowid LIMIT ?"
            )
            args = (vector_int8, *params, int(k))
        return [(int(r[0]), float(r[1])) for r in self._conn.execute(sql, args)]

    def bm25(self, match: str, k: int, conditions: Sequence[Clause] = ()) -> list[tuple[int, float]]:
        """(doc_id, BM25 score, higher is better) of the k best FTS5 matches of ``match``."""
        where, params = _filter_sql(conditions)
        restrict = f" AND rowid IN (SELECT d.doc_id FROM documents d WHERE {where})" if conditions else ""
        return [
            (int(r[0]), -float(r[1]))
            for r in self._conn.execute(
                "SELECT rowid, bm25(documents_fts) AS score FROM documents_fts "
                f"WHERE documents_fts MATCH ?{restrict} ORDER BY score LIMIT ?",
                (match, *params, int(k)),
            )
        ]

    def fts_highlights(self, match: str, doc_ids: Sequence[int], open_mark: str, close_mark: str) -> dict[int, str]:
        """Text of the given documents with FTS5's matched terms of ``match`` wrapped in the marks."""
        found: dict[int, str] = {}
        for chunk in _chunks([int(i) for i in doc_ids]):
            marks = ",".join("?" * len(chunk))
            for doc_id, marked in self._conn.execute(
                "SELECT rowid, highlight(documents_fts, 0, ?, ?) FROM documents_fts "
                f"WHERE documents_fts MATCH ? AND rowid IN ({marks})",
                (open_mark, close_mark, match, *chunk),
            ):
                found[int(doc_id)] = str(marked)
        return found

    def filtered_doc_ids(self, conditions: Sequence[Clause]) -> np.ndarray:
        """Sorted doc ids of the documents whose metadata meets every condition."""
        where, params = _filter_sql(conditions)
        rows = self._conn.execute(f"SELECT d.doc_id FROM documents d WHERE {where} ORDER BY d.doc_id", params)
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    # -- codec tables -----------------------------------------------------------------

    def replace_arrays(self, rows: Sequence[tuple[str, str, str, bytes]]) -> None:
        """Replace every stored codec array with (name, dtype, shape, bytes) rows; inside :meth:`write`."""
        self._conn.execute("DELETE FROM codec_arrays")
        self._conn.executemany("INSERT INTO codec_arrays(name, dtype, shape, data) VALUES (?, ?, ?, ?)", rows)

    def array_rows(self) -> list[tuple[str, Any, Any, Any]]:
        """Every stored codec array as (name, dtype, shape, data), unvalidated."""
        return list(self._conn.execute("SELECT name, dtype, shape, CAST(data AS BLOB) FROM codec_arrays"))

    def replace_centroids(self, values: np.ndarray) -> None:
        """Replace the centroid table with int8 rows 0..K-1; inside :meth:`write`."""
        self._conn.execute("DELETE FROM centroids")
        self._conn.executemany(
            "INSERT INTO centroids(rowid, embedding) VALUES (?, vec_int8(?))",
            [(i, values[i].tobytes()) for i in range(values.shape[0])],
        )

    def centroid_rows(self) -> list[tuple[int, Any]]:
        """(rowid, int8 bytes) of every centroid, by rowid, unvalidated."""
        return list(self._conn.execute("SELECT rowid, CAST(embedding AS BLOB) FROM centroids ORDER BY rowid"))

    # -- token rows and inverted lists ---------------------------------------------------

    def doc_id_chunks(self, size: int) -> Iterator[list[int]]:
        """All doc ids in ascending chunks of at most ``size``."""
        last = -1
        while True:
            chunk = [
                r[0]
                for r in self._conn.execute(
                    "SELECT doc_id FROM documents WHERE doc_id > ? ORDER BY doc_id LIMIT ?", (last, size)
                )
            ]
            if not chunk:
                return
            yield chunk
            last = chunk[-1]

    def update_token_rows(self, rows: Iterable[TokenRow]) -> None:
        """Rewrite documents' stored tokens (count, codes, payload, passages); inside :meth:`write`."""
        rows = list(rows)
        self._conn.executemany(
            "UPDATE documents SET n_tokens = ? WHERE doc_id = ?", [(r.n_tokens, r.doc_id) for r in rows]
        )
        self._conn.executemany(
            "UPDATE doc_tokens SET codes = ?, payload = ?, passages = ? WHERE doc_id = ?",
            [(r.codes, r.payload, r.passages, r.doc_id) for r in rows],
        )

    def iter_codes(self, first: int = 0, last: int = 2**62) -> Iterator[CodesRow]:
        """Centroid codes of every document (with doc_id in first..last), by doc_id."""
        for row in self._conn.execute(
            "SELECT d.doc_id, d.n_tokens, CAST(t.codes AS BLOB) FROM documents d "
            "JOIN doc_tokens t ON t.doc_id = d.doc_id WHERE d.doc_id BETWEEN ? AND ? ORDER BY d.doc_id",
            (int(first), int(last)),
        ):
            yield CodesRow(*row)

    # -- integrity ------------------------------------------------------------------

    def sqlite_problems(self, limit: int = 20) -> list[str]:
        """SQLite's own page and index check (``PRAGMA integrity_check``); empty when sound."""
        rows = [str(r[0]) for r in self._conn.execute(f"PRAGMA integrity_check({int(limit)})")]
        return [] if rows == ["ok"] else rows

    def fts_problem(self) -> str | None:
        """FTS5's check of the full-text index against the documents (a no-op write statement,
        so it needs a writable connection); None when they agree."""
        try:
            self._conn.execute("INSERT INTO documents_fts(documents_fts, rank) VALUES ('integrity-check', 1)")
        except apsw.CorruptError as exc:
            return f"full-text index does not match the documents ({exc})"
        return None

    def orphans(self, limit: int = 5) -> dict[str, list[int]]:
        """doc_ids that one table has and its partner lacks, up to ``limit`` per kind."""
        queries = {
            "documents without stored tokens": f"SELECT d.doc_id {_DOCUMENTS_WITHOUT_TOKENS}",
            "stored tokens without a document": "SELECT t.doc_id FROM doc_tokens t "
            "WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.doc_id = t.doc_id)",
            "documents without a pooled vector": "SELECT d.doc_id FROM documents d "
            "WHERE d.doc_id NOT IN (SELECT rowid FROM doc_vectors)",
            "pooled vectors without a document": "SELECT v.rowid FROM doc_vectors v "
            "WHERE v.rowid NOT IN (SELECT doc_id FROM documents)",
        }
        return {
            kind: [int(r[0]) for r in self._conn.execute(f"{sql} ORDER BY 1 LIMIT ?", (int(limit),))]
            for kind, sql in queries.items()
        }

    def rebuild_fts(self) -> None:
        """Rebuild the full-text index from the documents table; inside :meth:`write`."""
        self._conn.execute("INSERT INTO documents_fts(documents_fts) VALUES ('rebuild')")

    def document_without_tokens(self) -> str | None:
        """The id of a document that has no token row (None when every document has one)."""
        row = self._conn.execute(f"SELECT d.ext_id {_DOCUMENTS_WITHOUT_TOKENS} ORDER BY d.doc_id LIMIT 1").fetchone()
        return None if row is None else str(row[0])

    def doc_token_counts(self) -> list[tuple[int, int]]:
        """(doc_id, n_tokens) of every document, by doc_id."""
        return [
            (int(d), int(n)) for d, n in self._conn.execute("SELECT doc_id, n_tokens FROM documents ORDER BY doc_id")
        ]

    # -- segments, their inverted lists, tombstones ------------------------------------------

    def segments(self) -> list[SegmentRow]:
        """Every segment, by first doc_id, with how many of its documents are tombstoned."""
        return [
            SegmentRow(*map(int, r))
            for r in self._conn.execute(
                "SELECT s.segment_id, s.first_doc, s.last_doc, s.n_docs, "
                "(SELECT count(*) FROM tombstones t WHERE t.segment_id = s.segment_id) "
                "FROM segments s ORDER BY s.first_doc"
            )
        ]

    def add_segment(self, first: int, last: int, n_docs: int) -> int:
        """Record a segment (doc_ids first..last, ``n_docs`` documents); its new id. Inside :meth:`write`."""
        self._conn.execute(
            "INSERT INTO segments(first_doc, last_doc, n_docs, created_at) VALUES (?, ?, ?, ?)",
            (int(first), int(last), int(n_docs), time.time()),
        )
        return int(self._conn.last_insert_rowid())

    def delete_segments(self, segment_ids: Sequence[int]) -> None:
        """Drop segments with their lists and tombstones; inside :meth:`write`."""
        ids = [(int(s),) for s in segment_ids]
        for table in ("segment_lists", "tombstones", "segments"):
            self._conn.executemany(f"DELETE FROM {table} WHERE segment_id = ?", ids)

    def clear_segments(self) -> None:
        """Drop every segment, list and tombstone (a build writes them anew); inside :meth:`write`."""
        for table in ("segment_lists", "tombstones", "segments"):
            self._conn.execute(f"DELETE FROM {table}")

    def segment_list_rows(self, segment_id: int) -> dict[int, bytes]:
        """centroid_id -> list blob of one segment."""
        return {
            int(c): b
            for c, b in self._conn.execute(
                "SELECT centroid_id, CAST(doc_ids AS BLOB) FROM segment_lists WHERE segment_id = ?", (int(segment_id),)
            )
        }

    def write_segment_lists(self, segment_id: int, rows: dict[int, bytes]) -> None:
        """Store a new segment's list blobs; inside :meth:`write`."""
        self._conn.executemany(
            "INSERT INTO segment_lists(segment_id, centroid_id, doc_ids) VALUES (?, ?, ?)",
            [(int(segment_id), int(c), b) for c, b in rows.items()],
        )

    def add_tombstones(self, marks: Iterable[tuple[int, int]]) -> None:
        """Record (segment_id, doc_id) of deleted documents; inside :meth:`write`."""
        self._conn.executemany("INSERT INTO tombstones(segment_id, doc_id) VALUES (?, ?)", list(marks))

    def tombstones_since(self, seq: int) -> list[tuple[int, int, int]]:
        """(seq, segment_id, doc_id) of every tombstone after ``seq``, in order."""
        return [
            (int(q), int(s), int(d))
            for q, s, d in self._conn.execute(
                "SELECT seq, segment_id, doc_id FROM tombstones WHERE seq > ? ORDER BY seq", (int(seq),)
            )
        ]

    def tombstoned_doc_ids(self, segment_id: int) -> np.ndarray:
        """Sorted doc_ids tombstoned in one segment."""
        rows = self._conn.execute(
            "SELECT doc_id FROM tombstones WHERE segment_id = ? ORDER BY doc_id", (int(segment_id),)
        )
        return np.asarray([int(r[0]) for r in rows], dtype=np.int64)

    def tombstone_mark(self) -> int:
        """The newest tombstone's seq (0 when there is none): readers ask for what came after it."""
        return int(self._scalar("SELECT coalesce(max(seq), 0) FROM tombstones"))

    def documents_outside_segments(self) -> int:
        """How many documents no segment's range covers (damage: every document has a segment)."""
        return int(
            self._scalar(
                "SELECT count(*) FROM documents d WHERE NOT EXISTS "
                "(SELECT 1 FROM segments s WHERE d.doc_id BETWEEN s.first_doc AND s.last_doc)"
            )
        )

    # -- sizes ----------------------------------------------------------------------

    def storage_bytes(self) -> dict[str, int]:
        """Bytes of token payload, codes, text and inverted lists, plus the file's page total."""
        row = self._one("SELECT coalesce(sum(length(payload)), 0), coalesce(sum(length(codes)), 0) FROM doc_tokens")
        text = self._scalar("SELECT coalesce(sum(length(CAST(text AS BLOB))), 0) FROM documents")
        ivf = self._scalar("SELECT coalesce(sum(length(doc_ids)), 0) FROM segment_lists")
        pages = self._scalar("PRAGMA page_count") * self._scalar("PRAGMA page_size")
        free = self._scalar("PRAGMA freelist_count") * self._scalar("PRAGMA page_size")
        return {
            "payload": int(row[0]),
            "codes": int(row[1]),
            "text": int(text),
            "ivf": int(ivf),
            "file": int(pages),
            "free": int(free),
        }


_JSON_TYPES = {bool: ("true", "false"), str: ("text",), int: ("integer", "real"), float: ("integer", "real")}
_SQL_COMPARISON = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _membership_test(values: Sequence[Any]) -> tuple[str, list[Any]]:
    """SQL testing json_each row ``j`` against any of ``values``, types kept strict (5 != '5').

    Values are grouped by JSON type into flat ``IN (...)`` lists: a chain of one OR per
    value hits SQLite's expression depth limit (1,000) at a few hundred values."""
    tests: list[str] = []
    params: list[Any] = []
    if any(v is None for v in values):
        tests.append("j.type = 'null'")
    flags = sorted({"true" if v else "false" for v in values if isinstance(v, bool)})
    if flags:
        tests.append(f"j.type IN ({','.join('?' * len(flags))})")
        params += flags
    for kind in (str, float):
        group = [v for v in values if isinstance(v, str if kind is str else (int, float)) and not isinstance(v, bool)]
        if group:
            types = _JSON_TYPES[kind]
            tests.append(f"(j.type IN ({','.join('?' * len(types))}) AND j.value IN ({','.join('?' * len(group))}))")
            params += [*types, *group]
    return " OR ".join(tests), params


def _condition_sql(cond: Clause) -> tuple[str, list[Any]]:
    """A parameterized SQL test of one clause against ``documents d``."""
    if isinstance(cond, AnyOf):
        parts = [_filter_sql(group) for group in cond.groups]
        return " OR ".join(f"({sql})" for sql, _ in parts), [p for _, ps in parts for p in ps]
    exists = "EXISTS (SELECT 1 FROM json_each(d.meta) AS j WHERE j.key = ?{})"
    if cond.op == "prefix":  # substr counts characters, as Python's len does
        prefix = str(cond.values[0])  # filters.py admits only a string here
        return exists.format(" AND j.type = 'text' AND substr(j.value, 1, ?) = ?"), [cond.key, len(prefix), prefix]
    if cond.op == "exists":
        sql = exists.format("")
        return (sql if cond.values[0] else f"NOT {sql}"), [cond.key]
    if cond.op in ("eq", "ne", "in", "nin"):
        test, values = _membership_test(cond.values)
        sql = exists.format(f" AND ({test})")
        params = [cond.key, *values]
        return (f"NOT {sql}" if cond.op in ("ne", "nin") else sql), params
    value = cond.values[0]
    types = _JSON_TYPES[type(value)]
    marks = ",".join("?" * len(types))
    sql = exists.format(f" AND j.type IN ({marks}) AND j.value {_SQL_COMPARISON[cond.op]} ?")
    return sql, [cond.key, *types, value]


def _filter_sql(conditions: Sequence[Clause]) -> tuple[str, list[Any]]:
    """(WHERE expression over ``documents d``, parameters); "1" when there is no condition."""
    if not conditions:
        return "1", []
    parts = [_condition_sql(c) for c in conditions]
    return " AND ".join(f"({sql})" for sql, _ in parts), [p for _, ps in parts for p in ps]


def _chunks(values: Sequence[Any], size: int = PARAM_CHUNK) -> Iterator[list[Any]]:
    values = list(values)
    for i in range(0, len(values), size):
        yield values[i : i + size]

"""``Index.check()``: verify an index without changing it.

Checks, in order: SQLite's page and index structure; the full-text index against
the documents (FTS5's own check, on a writable index); documents, stored tokens
and pooled vectors pair up one to one; the configuration and codec tables load
and validate; every document's tokens decode (lengths, codes in range); segments
cover every document without overlapping, and tombstones name deleted documents
of their own segment; and, on a built index, each segment's inverted lists equal
lists recomputed from its documents' codes (tombstoned entries aside).
Problems are reported, never repaired: a damaged file is restored from a copy.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from .codecs import TokenCodec, load_codec
from .config import IndexConfig
from .errors import LateIntError
from .ivf import decode_rows, group_by_centroid
from .shared_codec import tables_fingerprint
from .store import Store

#: Documents decoded per step of the token check.
CHUNK = 512


@dataclass(frozen=True)
class CheckReport:
    """What :meth:`Index.check` found: ``problems`` is empty for a sound index."""

    path: str
    documents: int
    checks: tuple[str, ...]  # what was checked
    skipped: tuple[str, ...]  # what could not be checked, and why
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def check_index(store: Store) -> CheckReport:
    """Run every check inside one read snapshot (the FTS5 check runs first, outside it)."""
    checks: list[str] = []
    skipped: list[str] = []
    problems: list[str] = []
    checks.append("sqlite")
    problems += [f"sqlite: {p}" for p in store.sqlite_problems()]
    if store.readonly:
        skipped.append("full-text index (FTS5's check needs a writable index)")
    else:
        checks.append("full-text index")
        fts = store.fts_problem()
        if fts:
            problems.append(fts)
    with store.snapshot():
        documents = store.counts()[0]
        checks.append("documents, tokens and pooled vectors pair up")
        for kind, doc_ids in store.orphans().items():
            if doc_ids:
                problems.append(f"{kind}: doc_id {', '.join(map(str, doc_ids))}")
        if store.model_files():
            checks.append("embedded model files match their sha256")
            problems += _model_file_problems(store)
        checks.append("configuration and codec tables")
        loaded = _codec(store, problems)
        if loaded is not None:
            config, codec = loaded
            if config.shared_codec is not None:
                checks.append("the codec tables are the shared codec the configuration names")
                problems += _shared_codec_problems(store, config)
            checks.append("every document's tokens decode")
            problems += _token_problems(store, codec)
            checks.append("segments cover the documents; tombstones name deleted documents")
            problems += _segment_problems(store)
            if codec.supports_pruning:
                checks.append("inverted lists match the codes")
                problems += _list_problems(store, codec, int(config.codec.n_centroids or 0))
    return CheckReport(store.path, documents, tuple(checks), tuple(skipped), tuple(problems))


def _codec(store: Store, problems: list[str]) -> tuple[IndexConfig, TokenCodec] | None:
    try:
        config = IndexConfig.from_json(store.read_config(), store.path)
        return config, load_codec(store, config)
    except LateIntError as exc:
        problems.append(f"codec: {exc}")
        return None


def _model_file_problems(store: Store) -> list[str]:
    """Each embedded model file must hash to its recorded sha256."""
    return [
        f"embedded model file {name!r} fails its sha256"
        for name, sha256, _ in store.model_files()
        if hashlib.sha256(store.model_file_data(name)).hexdigest() != sha256
    ]


def _shared_codec_problems(store: Store, config: IndexConfig) -> list[str]:
    """A shard's codec tables must hash to the fingerprint its siblings share."""
    rows = [bytes(value) for _, value in store.centroid_rows()]
    found = tables_fingerprint(config.codec, rows, store.array_rows())
    named = config.shared_codec or ""
    if found != named:
        return [f"codec: tables hash to {found[:12]}, the configuration names shared codec {named[:12]}"]
    return []


def _token_problems(store: Store, codec: TokenCodec, limit: int = 20) -> list[str]:
    """One line per document whose stored tokens do not decode (the first ``limit``)."""
    problems: list[str] = []
    for doc_ids in store.doc_id_chunks(CHUNK):
        for row in store.token_payloads(doc_ids):
            try:
                codec.read_rows([row])
            except LateIntError as exc:
                problems.append(f"tokens of doc_id {row.doc_id}: {exc}")
                if len(problems) >= limit:
                    return problems
    return problems


def _segment_problems(store: Store) -> list[str]:
    """Segments that overlap, documents outside every segment, tombstones of live documents."""
    problems: list[str] = []
    segments = store.segments()
    for before, after in pairwise(segments):
        if after.first_doc <= before.last_doc:
            problems.append(f"segments {before.segment_id} and {after.segment_id} overlap")
    outside = store.documents_outside_segments()
    if outside:
        problems.append(f"{outside} document(s) belong to no segment")
    for segment in segments:
        dead = store.tombstoned_doc_ids(segment.segment_id)
        if dead.size and (dead.min() < segment.first_doc or dead.max() > segment.last_doc):
            problems.append(f"segment {segment.segment_id}: a tombstone lies outside its range")
        alive = store.documents_by_doc_ids(dead.tolist())
        if alive:
            problems.append(f"segment {segment.segment_id}: tombstoned doc_id {min(alive)} is still stored")
        if store.count_documents(segment.first_doc, segment.last_doc) != segment.live:
            problems.append(f"segment {segment.segment_id}: its live document count does not match the documents")
    return problems


def _list_problems(store: Store, codec: TokenCodec, n_centroids: int, limit: int = 20) -> list[str]:
    """(Segment, centroid) pairs whose stored inverted list differs from the list recomputed
    from the segment's codes (entries of the segment's tombstoned documents aside)."""
    problems: list[str] = []
    for segment in store.segments():
        try:
            stored = decode_rows(store.segment_list_rows(segment.segment_id), n_centroids, segment.last_doc)
            codes = store.iter_codes(segment.first_doc, segment.last_doc)
            want = group_by_centroid((int(row.doc_id), codec.cells(row)) for row in codes)
        except LateIntError as exc:
            return [f"inverted lists of segment {segment.segment_id}: {exc}"]
        dead = store.tombstoned_doc_ids(segment.segment_id)
        for centroid in range(n_centroids):
            have = stored.values[stored.offsets[centroid] : stored.offsets[centroid + 1]]
            have = have[~np.isin(have, dead)]
            if not np.array_equal(np.sort(have), np.sort(want.get(centroid, np.empty(0, np.int64)))):
                problems.append(
                    f"inverted list of centroid {centroid} in segment {segment.segment_id} does not match the codes"
                )
                if len(problems) >= limit:
                    return problems
    return problems

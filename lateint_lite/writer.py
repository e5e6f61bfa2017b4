"""Writes: add, upsert and delete, each one transaction.

A write validates every document first (nothing is read or written for bad
input), encodes them into a temporary staging file
(:class:`~lateint_lite.staging.StagedDocuments`) without any lock, and only then
holds one ``BEGIN IMMEDIATE`` transaction while it inserts in chunks: text,
metadata, token payload (through the codec current at that moment), full-text
entry, pooled vector, and the document's origin (encoded from its text, or
precomputed vectors) that rebuilds need. The new documents become a segment
whose inverted lists are written once (:mod:`lateint_lite.segments`); deletes
and the replaced documents of an upsert become tombstones; then the merge policy
runs. Another writer waits for the SQL, not for the encoding. Any failure rolls
back the whole call. Vectors are rounded through int8 first
(``codecs.canonical``), the precision every build starts from. An ``add`` of ids
that already exist is refused before encoding (and checked again under the lock).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from . import kernels, segments
from .codecs import TokenCodec
from .codecs.int8 import quantize_unit_int8_rows
from .encoder import Encoder
from .errors import DocumentNotFoundError, DuplicateIdError
from .origins import canonical_passages, canonical_values, encode_texts
from .passages import DocumentTokens, lengths_blob
from .pooling import pool_vectors
from .progress import ProgressArg, progress_bar
from .requests import DocumentInput, normalize_ids, positive_int, prepare_documents
from .staging import StagedDocuments, staging_folder
from .state import StateCache
from .store import ORIGIN_TEXT, ORIGIN_VECTORS, NewDocument, Store

#: Documents encoded and staged per step of a write (memory per step, not per call).
WRITE_CHUNK = 64
#: Characters of text encoded per staging step, at most (a longer document is a step alone): an
#: encoded passage of 256 tokens is 384 KB of float32 at dim 384, and 64 long files held ~1 GB.
STAGE_CHARS = 1 << 18
#: Vector values (float32) the codec encodes and the store inserts per step under the write lock,
#: at least (32 MiB; 65,536 tokens at dim 128, 21,845 at 384): the blocked assignment pays a
#: loop over the coarse groups per call, which made 64 short documents per step 1.5x slower.
ENCODE_FLOATS = 2**23


class Writer:
    """add / upsert / delete over one store."""

    def __init__(self, store: Store, cache: StateCache, encoder: Callable[[], Encoder], dim: int) -> None:
        self._store = store
        self._cache = cache
        self._encoder = encoder
        self._dim = dim

    def write(
        self, docs: Iterable[Mapping[str, Any]], *, replace: bool, progress: ProgressArg, batch_size: int
    ) -> list[str]:
        """Encode and store documents in one transaction; ``replace`` allows existing ids (upsert)."""
        items = prepare_documents(docs, self._dim)
        step = positive_int(batch_size, "batch_size")
        if not items:
            return []
        self._store.require_writable()  # before minutes of encoding, not after
        if not replace:
            with self._store.snapshot():
                self._refuse_taken(self._store.existing_ext_ids([item.id for item in items]))
        encoder = self._encoder() if any(_needs_encoding(item) for item in items) else None
        with StagedDocuments(staging_folder(self._store.path), self._dim) as staged:
            with progress_bar(progress, len(items), "encoding") as tick:
                for chunk in _stage_chunks(items, step, STAGE_CHARS):
                    self._stage(staged, chunk, encoder)
                    tick(len(chunk))
            with self._store.write():
                state = self._cache.current()
                taken = self._store.existing_ext_ids([item.id for item in items])
                if not replace:
                    self._refuse_taken(taken)
                self._remove([i.id for i in items if i.id in taken])
                segment = _NewSegment(self._store, state.codec)
                for start, stop in staged.steps(ENCODE_FLOATS):
                    vectors = staged.get_range(start, stop)
                    segment.extend(self._insert(state.codec, state.config.pool_factor, items[start:stop], vectors))
                segment.close()
                segments.merge_due(self._store, state.codec.n_centroids)
                self._store.set_meta({"updated_at": str(time.time())})
        return [item.id for item in items]

    @staticmethod
    def _refuse_taken(taken: set[str]) -> None:
        if taken:
            raise DuplicateIdError(f"{len(taken)} id(s) already in the index, e.g. {sorted(taken)[0]!r}")

    def delete(self, ids: Iterable[object], *, missing_ok: bool) -> int:
        """Delete documents by id in one transaction; returns how many were removed."""
        if isinstance(ids, (str, bytes)):
            ids = [ids]
        wanted = normalize_ids(ids)
        with self._store.write():
            present = self._store.existing_ext_ids(wanted)
            missing = [i for i in wanted if i not in present]
            if missing and not missing_ok:
                raise DocumentNotFoundError(f"{len(missing)} id(s) not in the index, e.g. {missing[0]!r}")
            removed = self._remove([i for i in wanted if i in present])
            self._store.set_meta({"updated_at": str(time.time())})
        return removed

    def _stage(self, staged: StagedDocuments, chunk: Sequence[DocumentInput], encoder: Encoder | None) -> None:
        """Stage a chunk's canonical vectors (unit, rounded through int8) with their passages, in
        chunk order: encoded here, encoded elsewhere by the index's model (``passages``), or as
        supplied (one passage; checked by ``prepare_documents``, canonicalized together)."""
        encoded: dict[int, DocumentTokens] = {}
        pending = [i for i, item in enumerate(chunk) if _needs_encoding(item)]
        if encoder is not None and pending:
            texts, ids = [chunk[i].text for i in pending], [chunk[i].id for i in pending]
            encoded = dict(zip(pending, encode_texts(encoder, texts, ids, self._dim), strict=True))
        given = {i: item.vectors for i, item in enumerate(chunk) if item.vectors is not None}
        supplied = dict(zip(given, canonical_values(list(given.values())), strict=True))
        for i, item in enumerate(chunk):
            if i in supplied:
                staged.append_values(supplied[i], np.array([len(supplied[i])], dtype=np.int64))
            elif item.passages is not None:
                staged.append(canonical_passages(item.passages))
            else:
                staged.append(encoded[i])

    def _insert(
        self, codec: TokenCodec, pool: int, chunk: Sequence[DocumentInput], full: list[DocumentTokens]
    ) -> list[tuple[int, np.ndarray | None]]:
        """Write one chunk; returns each new document's (doc_id, centroid ids it is listed
        under, or None when the codec keeps no lists)."""
        pooled = pool_vectors(full, pool)
        encoded = codec.encode([doc.vectors for doc in pooled])
        offsets = np.cumsum([0, *(len(doc.vectors) for doc in full)], dtype=np.int64)
        means = quantize_unit_int8_rows(kernels.document_means(np.concatenate([d.vectors for d in full]), offsets))
        rows = [
            NewDocument(
                ext_id=item.id,
                text=item.text,
                meta_json=item.meta_json,
                n_tokens=stored.n_tokens,
                codes=stored.codes,
                payload=stored.payload,
                passages=lengths_blob(doc.lengths),
                pooled=mean.tobytes(),
                origin=ORIGIN_TEXT if item.vectors is None else ORIGIN_VECTORS,
            )
            for item, mean, doc, stored in zip(chunk, means, pooled, encoded, strict=True)
        ]
        doc_ids = self._store.insert_documents(rows)
        return [(d, e.cells) for d, e in zip(doc_ids, encoded, strict=True)]

    def _remove(self, ext_ids: list[str]) -> int:
        """Delete existing documents, leaving tombstones in their segments; inside a write."""
        if not ext_ids:
            return 0
        removed = self._store.delete_documents(ext_ids)
        segments.tombstone(self._store, removed)
        return len(removed)


def _needs_encoding(item: DocumentInput) -> bool:
    return item.vectors is None and item.passages is None


def _stage_chunks(items: Sequence[DocumentInput], most: int, chars: int) -> Iterator[Sequence[DocumentInput]]:
    """Consecutive runs of at most ``most`` documents whose text to encode totals at most
    ``chars`` characters (a run holds at least one document)."""
    start, size = 0, 0
    for i, item in enumerate(items):
        length = len(item.text) if _needs_encoding(item) else 0
        if i > start and (i - start >= most or size + length > chars):
            yield items[start:i]
            start, size = i, 0
        size += length
    if start < len(items):
        yield items[start:]


class _NewSegment:
    """The documents one write inserts, recorded as segments of at most
    ``segments.SEGMENT_MAX_DOCS`` documents each (bounds the list entries held in memory)."""

    def __init__(self, store: Store, codec: TokenCodec) -> None:
        self._store = store
        self._lists = codec.supports_pruning
        self._docs: list[tuple[int, np.ndarray | None]] = []

    def extend(self, docs: list[tuple[int, np.ndarray | None]]) -> None:
        self._docs.extend(docs)
        if len(self._docs) >= segments.SEGMENT_MAX_DOCS:
            self.close()

    def close(self) -> None:
        """Write the documents collected so far as one segment with its lists."""
        if not self._docs:
            return
        cells = [(d, c) for d, c in self._docs if c is not None] if self._lists else None
        segments.append(self._store, [d for d, _ in self._docs], cells)
        self._docs = []

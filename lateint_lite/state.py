"""What an open index keeps between calls, keyed by the file's write counter.

Every committed write transaction bumps ``meta.write_counter`` (whichever
thread, connection or process wrote). Reads compare it, inside their own
snapshot, with the counter their cached data was loaded at, and refresh on a
difference: the configuration (read and validated once per change), the codec
with its tables (reloaded only when the configuration changed: a build), and
the resident search data per segment (:class:`LoadedSegment`). A refresh loads
only segments it has not seen and applies only tombstones newer than the last
it applied (issue 12): after a one-document add, that is one small segment,
whatever the size of the rest of the index.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

import numpy as np

from .codecs import Resident, StoredTokens, TokenCodec, load_codec
from .config import IndexConfig
from .errors import CorruptIndexError
from .store import SegmentRow, Store

T = TypeVar("T")


@dataclass(frozen=True)
class IndexState:
    """One committed generation of the index: its configuration and codec."""

    key: int  # the write counter it was loaded at
    config: IndexConfig
    codec: TokenCodec


@dataclass(frozen=True)
class LoadedSegment(Generic[T]):
    """One segment's search data: ``data`` covers its documents at load time, in ``doc_ids``
    order; ``live`` marks those not deleted since (None: all of them)."""

    row: SegmentRow
    data: T
    doc_ids: np.ndarray
    live: np.ndarray | None = None

    def without(self, doc_ids: np.ndarray) -> LoadedSegment[T]:
        """The same segment with ``doc_ids`` marked deleted (ids it does not hold are ignored)."""
        at = np.searchsorted(self.doc_ids, doc_ids)
        held = at < self.doc_ids.size
        held[held] = self.doc_ids[at[held]] == doc_ids[held]
        if not held.any():
            return self
        live = np.ones(self.doc_ids.size, dtype=bool) if self.live is None else self.live.copy()
        live[at[held]] = False
        return replace(self, live=live)


@dataclass(frozen=True)
class Segmented(Generic[T]):
    """Every segment's search data at one generation (``key``), loaded with ``codec``;
    ``mark``: the newest tombstone applied."""

    key: int
    codec: TokenCodec
    mark: int
    segments: tuple[LoadedSegment[T], ...]

    def segments_by_id(self) -> dict[int, LoadedSegment[T]]:
        return {s.row.segment_id: s for s in self.segments}


class StateCache:
    """Per-Index cache of configuration, codec and resident search data; thread-safe."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()  # config and codec (quick to load; writers need them)
        self._resident_lock = threading.Lock()  # resident search data (slow to load; searches only)
        self._config: tuple[int, IndexConfig] | None = None
        self._state: IndexState | None = None
        self._resident: Segmented[Resident] | None = None
        self._all_tokens: Segmented[StoredTokens] | None = None

    def config(self) -> IndexConfig:
        """The configuration of the snapshot being read (the codec tables are not loaded)."""
        key = self._store.write_counter()
        with self._lock:
            return self._config_at(key)

    def _config_at(self, key: int) -> IndexConfig:
        if self._config is None or self._config[0] != key:
            self._config = (key, IndexConfig.from_json(self._store.read_config(), self._store.path))
        return self._config[1]

    def current(self) -> IndexState:
        """Configuration and codec of the snapshot being read; call inside a snapshot or write."""
        key = self._store.write_counter()
        with self._lock:
            return self._current(key)

    def _current(self, key: int) -> IndexState:
        if self._state is None or self._state.key != key:
            config = self._config_at(key)
            # the codec's tables change only with the configuration (a build records a new one)
            same = self._state is not None and self._state.config == config
            codec = self._state.codec if same and self._state is not None else load_codec(self._store, config)
            self._state = IndexState(key, config, codec)
        return self._state

    def resident(self) -> tuple[IndexState, Segmented[Resident]]:
        """State plus what searches keep in memory, per segment; inside a snapshot."""
        key = self._store.write_counter()
        with self._resident_lock:
            with self._lock:
                state = self._current(key)
            if self._resident is None or self._resident.key != key:
                load = state.codec.load_resident
                self._resident = self._refreshed(self._resident, state, lambda row: load(self._store, row), _doc_ids)
            return state, self._resident

    def all_tokens(self) -> Segmented[StoredTokens]:
        """Every document's tokens per segment, for exhaustive search; inside a snapshot."""
        key = self._store.write_counter()
        with self._resident_lock:
            with self._lock:
                state = self._current(key)
            if self._all_tokens is None or self._all_tokens.key != key:
                load = state.codec.all_tokens
                self._all_tokens = self._refreshed(
                    self._all_tokens, state, lambda row: load(self._store, row), lambda t: t.doc_ids
                )
            return self._all_tokens

    def _refreshed(
        self,
        previous: Segmented[T] | None,
        state: IndexState,
        load: Callable[[SegmentRow], T],
        doc_ids_of: Callable[[T], np.ndarray],
    ) -> Segmented[T]:
        """``previous`` brought to the snapshot being read: segments it holds are kept (with new
        tombstones applied), new ones loaded, merged-away ones dropped. A new codec (a build)
        starts over."""
        kept = {} if previous is None or previous.codec is not state.codec else previous.segments_by_id()
        full = not kept
        deleted: dict[int, list[int]] = defaultdict(list)
        if kept and previous is not None:
            for _, segment_id, doc_id in self._store.tombstones_since(previous.mark):
                deleted[segment_id].append(doc_id)
        mark = self._store.tombstone_mark()
        rows = self._store.segments()
        fresh = {r.segment_id: r for r in rows if r.segment_id not in kept}
        if fresh:
            for segment_id, row in fresh.items():
                kept[segment_id] = self._loaded_segment(row, load, doc_ids_of)
            self._store.drop_read_pages()
        segments: list[LoadedSegment[T]] = []
        for row in rows:
            loaded = kept[row.segment_id]
            if row.segment_id not in fresh and deleted.get(row.segment_id):
                loaded = loaded.without(np.asarray(deleted[row.segment_id], dtype=np.int64))
            segments.append(replace(loaded, row=row))
        if full:
            self._check_all_in_segments(segments)
        return Segmented(state.key, state.codec, mark, tuple(segments))

    def _loaded_segment(
        self, row: SegmentRow, load: Callable[[SegmentRow], T], doc_ids_of: Callable[[T], np.ndarray]
    ) -> LoadedSegment[T]:
        """One segment's data, checked to hold every document of its range: a lost token row is
        corruption, reported with the document's id, not a document that silently drops out of
        MaxSim results."""
        try:
            data = load(row)
        except CorruptIndexError as exc:
            self._raise_if_tokens_missing(exc)
            raise
        doc_ids = doc_ids_of(data)
        if doc_ids.size != self._store.count_documents(row.first_doc, row.last_doc):
            self._raise_if_tokens_missing(None)
        return LoadedSegment(row, data, doc_ids)

    def _check_all_in_segments(self, segments: Sequence[LoadedSegment[T]]) -> None:
        """Every document belongs to a segment (checked on a full load)."""
        if sum(s.doc_ids.size for s in segments) != self._store.counts()[0]:
            self._raise_if_tokens_missing(None)

    def _raise_if_tokens_missing(self, cause: CorruptIndexError | None) -> None:
        """Raise when a document has no token row (or, with no ``cause``, in any case: the
        loaded data already disagreed with the document count)."""
        missing = self._store.document_without_tokens()
        if missing is not None:
            raise CorruptIndexError(
                f"{self._store.path}: document {missing!r} has no stored tokens (run `lateint check`; "
                "delete and re-add the document, or restore a copy)"
            ) from cause
        if cause is None:
            raise CorruptIndexError(
                f"{self._store.path}: {self._store.documents_outside_segments()} document(s) belong to no "
                "segment (run `lateint check`; restore a copy)"
            )

    def clear(self) -> None:
        with self._resident_lock, self._lock:
            self._config = self._state = self._resident = self._all_tokens = None


def _doc_ids(resident: Resident) -> np.ndarray:
    """The documents a segment's resident search data covers, in position order."""
    if resident.pruning is not None:
        return resident.pruning.codes.doc_ids
    if resident.tokens is not None:
        return resident.tokens.doc_ids
    return np.empty(0, dtype=np.int64)

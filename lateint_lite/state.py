"""What an open index keeps between calls, keyed by the file's write counter.

Every committed write transaction bumps ``meta.write_counter`` (whichever
thread, connection or process wrote). Reads compare it, inside their own
snapshot, with the counter their cached data was loaded at, and reload on a
difference: the configuration (read and validated once per change), the
codec with its tables, and the resident search data (:class:`Resident`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .codecs import Resident, StoredTokens, TokenCodec, load_codec
from .config import IndexConfig
from .errors import CorruptIndexError
from .store import Store

T = TypeVar("T")


@dataclass(frozen=True)
class IndexState:
    """One committed generation of the index: its configuration and codec."""

    key: int  # the write counter it was loaded at
    config: IndexConfig
    codec: TokenCodec


class StateCache:
    """Per-Index cache of configuration, codec and resident search data; thread-safe."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()  # config and codec (quick to load; writers need them)
        self._resident_lock = threading.Lock()  # resident search data (slow to load; searches only)
        self._config: tuple[int, IndexConfig] | None = None
        self._state: IndexState | None = None
        self._resident: tuple[int, Resident] | None = None
        self._all_tokens: tuple[int, StoredTokens] | None = None

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
            self._state = IndexState(key, config, load_codec(self._store, config))
        return self._state

    def resident(self) -> tuple[IndexState, Resident]:
        """State plus what searches keep in memory; inside a snapshot."""
        key = self._store.write_counter()
        with self._resident_lock:
            with self._lock:
                state = self._current(key)
            if self._resident is None or self._resident[0] != key:
                resident = self._loaded(lambda: state.codec.load_resident(self._store), _documents_in)
                self._resident = (key, resident)
            return state, self._resident[1]

    def all_tokens(self) -> StoredTokens:
        """Every document's tokens, for exhaustive search; inside a snapshot."""
        key = self._store.write_counter()
        with self._resident_lock:
            with self._lock:
                state = self._current(key)
            if self._all_tokens is None or self._all_tokens[0] != key:
                self._all_tokens = (key, self._loaded(lambda: state.codec.all_tokens(self._store), lambda t: t.n_docs))
            return self._all_tokens[1]

    def _loaded(self, load: Callable[[], T], documents_in: Callable[[T], int | None]) -> T:
        """``load()``, checked to hold every document: a lost token row is corruption, reported
        with the document's id, not a document that silently drops out of MaxSim results."""
        try:
            loaded = load()
        except CorruptIndexError as exc:
            self._raise_if_tokens_missing(exc)
            raise
        n_docs = documents_in(loaded)
        if n_docs is not None and n_docs != self._store.counts()[0]:
            self._raise_if_tokens_missing(None)
        return loaded

    def _raise_if_tokens_missing(self, cause: CorruptIndexError | None) -> None:
        """Raise when a document has no token row (or, with no ``cause``, in any case: the
        loaded data already disagreed with the document count)."""
        missing = self._store.document_without_tokens()
        if missing is None and cause is None:
            missing = "?"
        if missing is not None:
            raise CorruptIndexError(
                f"{self._store.path}: document {missing!r} has no stored tokens (run `lateint check`; "
                "delete and re-add the document, or restore a copy)"
            ) from cause

    def clear(self) -> None:
        with self._resident_lock, self._lock:
            self._config = self._state = self._resident = self._all_tokens = None


def _documents_in(resident: Resident) -> int | None:
    """How many documents the resident search data covers (None when it holds none)."""
    loaded = resident.pruning.codes if resident.pruning is not None else resident.tokens
    return None if loaded is None else loaded.n_docs

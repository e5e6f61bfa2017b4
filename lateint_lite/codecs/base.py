"""The token codec interface: how a document's token vectors become stored bytes, come back,
and are scored against a query.

Every write (insert, remove), every read (search, rerank, resident state) and
every rebuild goes through a :class:`TokenCodec`; nothing outside
``lateint_lite.codecs`` looks at payload bytes or dispatches on codec names. A
new codec is one new module here plus a line in :func:`lateint_lite.codecs.load_codec`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from ..ivf import InvertedLists
from ..passages import PassageLayout, passage_layout, read_lengths
from ..store import CodesRow, SegmentRow, Store, TokenRow


@dataclass(frozen=True)
class EncodedDocument:
    """One document's tokens in stored form."""

    n_tokens: int
    codes: bytes | None  # centroid codes blob (None for codecs without centroids)
    payload: bytes
    cells: np.ndarray | None  # int64 centroid ids the document is listed under; None: no inverted lists


class StoredTokens(Protocol):
    """Validated flat token data of some documents: rows of document p are offsets[p]:offsets[p+1];
    ``passages`` splits them into passages (None: one passage per document)."""

    @property
    def doc_ids(self) -> np.ndarray: ...

    @property
    def offsets(self) -> np.ndarray: ...

    @property
    def passages(self) -> PassageLayout | None: ...

    @property
    def n_docs(self) -> int: ...


@dataclass(frozen=True)
class CodeMatrix:
    """Centroid codes of every document, plus a doc id -> position map (resident for pruning)."""

    doc_ids: np.ndarray  # int64[n_docs], ascending
    offsets: np.ndarray  # int64[n_docs + 1]
    codes: np.ndarray  # uint16[n_tokens]
    position_of: np.ndarray  # int64[max_doc_id - base + 1], -1 where no document
    base: int = 0  # the doc id ``position_of`` starts at (its segment's first doc id)

    @property
    def n_docs(self) -> int:
        return int(self.doc_ids.size)


@dataclass(frozen=True)
class PruningIndex:
    """What PLAID's candidate stages need resident: all centroid codes and the inverted
    lists (as positions into ``codes``)."""

    codes: CodeMatrix
    lists: InvertedLists


@dataclass(frozen=True)
class Resident:
    """What a search keeps in memory of one segment between writes.

    ``tokens``: every document's tokens, for codecs that search exhaustively by
    default (loaded with the state). ``pruning``: centroid codes and inverted
    lists, for codecs that support PLAID pruning.
    """

    tokens: StoredTokens | None = None
    pruning: PruningIndex | None = None


class PreparedQuery(Protocol):
    """A query's token matrix plus whatever per-query tables the codec scores with."""

    @property
    def vectors(self) -> np.ndarray: ...


class TokenCodec(ABC):
    """Encode, decode, load and score token vectors stored in one layout."""

    kind: ClassVar[str]

    @property
    @abstractmethod
    def dim(self) -> int:
        """Dimension of the token vectors."""

    @property
    def is_lossless_source(self) -> bool:
        """Whether decoded stored tokens are as good as the vectors that were stored (a build
        may start from them); lossy codecs make rebuilds go back to the text or the caller."""
        return False

    @property
    def supports_pruning(self) -> bool:
        """Whether the codec keeps centroid codes and inverted lists (PLAID pruning)."""
        return False

    @property
    def n_centroids(self) -> int | None:
        """Rows of the inverted lists (the centroid count) of a pruning codec; None otherwise."""
        return None

    @abstractmethod
    def encode(self, vectors: Sequence[np.ndarray]) -> list[EncodedDocument]:
        """Stored form of each document's unit-norm (n, dim) token vectors."""

    @abstractmethod
    def decode(self, row: TokenRow) -> np.ndarray:
        """Unit-norm float32 (n, dim) vectors of one stored document (lengths checked)."""

    @abstractmethod
    def read_rows(self, rows: Iterable[TokenRow]) -> StoredTokens:
        """Validated flat arrays of stored documents, ready for :meth:`score`."""

    @abstractmethod
    def prepare(self, query: np.ndarray) -> PreparedQuery:
        """Per-query tables for a unit-norm (nq, dim) query matrix."""

    def score(self, query: PreparedQuery, tokens: StoredTokens, positions: np.ndarray | None = None) -> np.ndarray:
        """Exact MaxSim of ``query`` against the documents at ``positions`` of ``tokens`` (default
        all): for a document of several passages, the score of its best passage."""
        layout = tokens.passages
        if layout is None:
            return self.score_spans(query, tokens, tokens.offsets, positions)
        chosen = np.arange(tokens.n_docs, dtype=np.int64) if positions is None else np.asarray(positions, np.int64)
        if chosen.size == 0:
            return np.empty(0, dtype=np.float32)
        which, runs = layout.passages_of(chosen)
        return np.maximum.reduceat(self.score_spans(query, tokens, layout.offsets, which), runs)

    @abstractmethod
    def score_spans(
        self, query: PreparedQuery, tokens: StoredTokens, offsets: np.ndarray, positions: np.ndarray | None
    ) -> np.ndarray:
        """MaxSim of ``query`` against the token runs offsets[p]:offsets[p+1] of ``tokens`` for
        each p in ``positions`` (default all runs); ``offsets`` cover the same tokens."""

    def token_similarities(self, query: PreparedQuery, row: TokenRow) -> np.ndarray:
        """(nq, n) similarity of every query token with every stored token of one document (the
        values MaxSim takes its maxima over); used to explain matches."""
        return np.asarray(query.vectors, dtype=np.float32) @ self.decode(row).T

    @abstractmethod
    def load_resident(self, store: Store, segment: SegmentRow) -> Resident:
        """Read and validate what searches keep in memory of one segment; inside a snapshot."""

    def centroid_scores(self, query: PreparedQuery) -> np.ndarray:
        """Scores of every centroid against every query token, (K, nq); pruning codecs only."""
        raise TypeError(f"the {self.kind} codec has no centroids")

    def cells(self, row: CodesRow) -> np.ndarray:
        """Centroid ids a stored document is listed under; pruning codecs only."""
        raise TypeError(f"the {self.kind} codec keeps no inverted lists")

    @staticmethod
    def passage_layout_of(rows: Sequence[TokenRow]) -> PassageLayout | None:
        """The passages of stored documents (lengths checked against their token counts)."""
        return passage_layout([read_lengths(r.passages, int(r.n_tokens), int(r.doc_id)) for r in rows])

    def all_tokens(self, store: Store, segment: SegmentRow) -> StoredTokens:
        """Every token of one segment's documents (exhaustive search); inside a snapshot."""
        return self.read_rows(store.iter_token_payloads(segment.first_doc, segment.last_doc))

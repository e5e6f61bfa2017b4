"""A document's passages: its token vectors in windows, stored with their lengths, scored by the best.

A document longer than the model's document length is encoded as overlapping
windows (:meth:`~lateint_lite.encoder.OnnxEncoder.encode_document_passages`).
Its stored tokens are the windows' tokens in order; ``doc_tokens.passages``
holds the windows' token counts (little-endian uint32; NULL for a document of
one passage). A document's MaxSim score is that of its best passage: each
passage is scored as if it were a document, and the document keeps the
maximum. Measured against MaxSim over the union of the passages' tokens (each
query token's best match anywhere in the document), which gives long documents
more chances per query token: SciFact 72.51 vs 70.60 nDCG@10, NFCorpus 35.40
vs 34.99 (docs/benchmarks.md, "Passage aggregation").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import CorruptIndexError

#: On-disk form of the passage lengths.
LENGTH_DTYPE = np.dtype("<u4")


@dataclass(frozen=True)
class DocumentTokens:
    """One document's token vectors (n, dim) and its passages' token counts (sum n, each > 0)."""

    vectors: np.ndarray
    lengths: np.ndarray  # int64[n_passages]

    @classmethod
    def whole(cls, vectors: np.ndarray) -> DocumentTokens:
        """A document of one passage."""
        return cls(vectors, np.array([len(vectors)], dtype=np.int64))

    @classmethod
    def joined(cls, passages: Sequence[np.ndarray]) -> DocumentTokens:
        """A document from its passages' token matrices, in order."""
        if len(passages) == 1:
            return cls.whole(passages[0])
        return cls(np.concatenate(passages), np.array([len(p) for p in passages], dtype=np.int64))

    @property
    def n_passages(self) -> int:
        return int(self.lengths.size)

    def with_vectors(self, vectors: np.ndarray, lengths: np.ndarray | None = None) -> DocumentTokens:
        """The same passages over new vectors (``lengths`` when a transformation changed them)."""
        return DocumentTokens(vectors, self.lengths if lengths is None else lengths)


def lengths_blob(lengths: np.ndarray) -> bytes | None:
    """Stored form of passage lengths; None for a document of one passage."""
    return None if lengths.size <= 1 else np.asarray(lengths, dtype=LENGTH_DTYPE).tobytes()


def read_lengths(blob: bytes | None, n_tokens: int, doc_id: int) -> np.ndarray:
    """Passage lengths of a stored document, checked against its token count."""
    if blob is None:
        return np.array([n_tokens], dtype=np.int64)
    if len(blob) % LENGTH_DTYPE.itemsize or not blob:
        raise CorruptIndexError(f"document {doc_id}: passage lengths blob has {len(blob)} bytes", doc_id=doc_id)
    lengths = np.frombuffer(blob, dtype=LENGTH_DTYPE).astype(np.int64)
    if int(lengths.min()) <= 0 or int(lengths.sum()) != n_tokens:
        raise CorruptIndexError(
            f"document {doc_id}: passage lengths do not add up to its {n_tokens} tokens", doc_id=doc_id
        )
    return lengths


@dataclass(frozen=True)
class PassageLayout:
    """Passages of flat stored tokens: passage j is tokens offsets[j]:offsets[j+1]; document p's
    passages are firsts[p]:firsts[p+1]."""

    offsets: np.ndarray  # int64[n_passages + 1]
    firsts: np.ndarray  # int64[n_docs + 1]

    def passages_of(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(passage indices of the documents at ``positions``, in order; where each document's
        run of passages starts in that array)."""
        starts, ends = self.firsts[positions], self.firsts[positions + 1]
        counts = ends - starts
        runs = np.zeros(positions.size, dtype=np.int64)
        np.cumsum(counts[:-1], out=runs[1:])
        which = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(runs - starts, counts)
        return which, runs


def passage_layout(lengths: Sequence[np.ndarray]) -> PassageLayout | None:
    """The layout of documents with these passage lengths; None when every one has one passage."""
    if all(len(x) == 1 for x in lengths):
        return None
    flat = np.concatenate(lengths) if lengths else np.empty(0, np.int64)
    offsets = np.zeros(flat.size + 1, dtype=np.int64)
    np.cumsum(flat, out=offsets[1:])
    firsts = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum([len(x) for x in lengths], out=firsts[1:])
    return PassageLayout(offsets=offsets, firsts=firsts)


def best_passage(similarity: np.ndarray, lengths: np.ndarray) -> tuple[int, int, int]:
    """(index, first token, end token) of the passage with the highest MaxSim, from a document's
    (nq, n) token similarities."""
    bounds = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=bounds[1:])
    if lengths.size == 1 or similarity.shape[1] != bounds[-1]:
        return 0, 0, similarity.shape[1]
    scores = [similarity[:, bounds[j] : bounds[j + 1]].max(axis=1).sum() for j in range(lengths.size)]
    best = int(np.argmax(scores))
    return best, int(bounds[best]), int(bounds[best + 1])

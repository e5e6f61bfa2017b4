"""In-memory token data in flat arrays + offsets, validated once, then handed to kernels.

Rows of document ``p`` are ``offsets[p]:offsets[p+1]``; ``doc_ids[p]`` is its
internal id. ``TokenMatrix`` holds int8 vectors (an index before ``build()``),
``CodeMatrix`` the centroid codes of every document (resident for pruning),
``ResidualRows`` codes plus packed residuals of some documents (the candidates
being reranked, or all of them for exhaustive search).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .codec import CODE_DTYPE, ResidualCodec, decode_int8
from .errors import CorruptIndexError
from .kernels import check_offsets, maxsim_int8


@dataclass(frozen=True)
class TokenMatrix:
    """Flat int8 token vectors of a set of documents."""

    doc_ids: np.ndarray  # int64[n_docs], ascending
    offsets: np.ndarray  # int64[n_docs + 1]
    values: np.ndarray  # int8[n_tokens, dim]
    scales: np.ndarray  # float32[n_tokens]

    @property
    def n_docs(self) -> int:
        return int(self.doc_ids.size)

    @property
    def n_tokens(self) -> int:
        return int(self.values.shape[0])

    @classmethod
    def from_payloads(cls, rows: Iterable[tuple[int, int, bytes | None, bytes]], dim: int) -> TokenMatrix:
        """Decode (doc_id, n_tokens, codes, payload) rows of the ``int8`` codec."""
        doc_ids: list[int] = []
        counts: list[int] = []
        values: list[np.ndarray] = []
        scales: list[np.ndarray] = []
        for doc_id, n_tokens, _codes, payload in rows:
            v, s = decode_int8(payload, int(n_tokens), dim)
            doc_ids.append(int(doc_id))
            counts.append(int(n_tokens))
            values.append(v)
            scales.append(s)
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        matrix = cls(
            doc_ids=np.asarray(doc_ids, dtype=np.int64),
            offsets=offsets,
            values=np.concatenate(values) if values else np.empty((0, dim), np.int8),
            scales=np.concatenate(scales) if scales else np.empty(0, np.float32),
        )
        matrix.validate()
        return matrix

    def validate(self) -> None:
        """Check the invariants every kernel relies on."""
        check_offsets(self.offsets, self.n_tokens)
        if self.offsets.size != self.doc_ids.size + 1 or self.scales.shape != (self.n_tokens,):
            raise CorruptIndexError("token matrix arrays disagree in length")
        if self.doc_ids.size > 1 and (np.diff(self.doc_ids) <= 0).any():
            raise CorruptIndexError("document ids are not strictly increasing")

    def maxsim(self, query: np.ndarray, positions: np.ndarray | None = None) -> np.ndarray:
        """MaxSim scores of ``query`` for documents at ``positions`` (default all)."""
        return maxsim_int8(query, self.values, self.scales, self.offsets, positions)


def _offsets(counts: list[int]) -> np.ndarray:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def _check_ids(doc_ids: np.ndarray) -> None:
    if doc_ids.size and (int(doc_ids.min()) < 0 or (np.diff(doc_ids) <= 0).any()):
        raise CorruptIndexError("document ids are not strictly increasing and non-negative")


@dataclass(frozen=True)
class CodeMatrix:
    """Centroid codes of every document, plus a doc id -> position map."""

    doc_ids: np.ndarray  # int64[n_docs], ascending
    offsets: np.ndarray  # int64[n_docs + 1]
    codes: np.ndarray  # uint16[n_tokens]
    position_of: np.ndarray  # int64[max_doc_id + 1], -1 where no document

    @property
    def n_docs(self) -> int:
        return int(self.doc_ids.size)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[int, int, bytes | None]], n_centroids: int) -> CodeMatrix:
        """Decode (doc_id, n_tokens, codes blob) rows; every code must be < n_centroids."""
        doc_ids: list[int] = []
        counts: list[int] = []
        blobs: list[bytes] = []
        for doc_id, n_tokens, blob in rows:
            if blob is None or len(blob) != int(n_tokens) * CODE_DTYPE.itemsize:
                raise CorruptIndexError(f"document {doc_id}: codes blob does not hold {n_tokens} codes")
            doc_ids.append(int(doc_id))
            counts.append(int(n_tokens))
            blobs.append(blob)
        ids = np.asarray(doc_ids, dtype=np.int64)
        codes = np.frombuffer(b"".join(blobs), dtype=CODE_DTYPE).astype(np.uint16)
        _check_ids(ids)
        if codes.size and int(codes.max()) >= n_centroids:
            raise CorruptIndexError("centroid code out of range")
        position_of = np.full(int(ids.max()) + 1 if ids.size else 0, -1, dtype=np.int64)
        position_of[ids] = np.arange(ids.size)
        offsets = _offsets(counts)
        check_offsets(offsets, codes.size)
        return cls(doc_ids=ids, offsets=offsets, codes=codes, position_of=position_of)


@dataclass(frozen=True)
class ResidualRows:
    """Codes and packed residuals of a set of documents, in ``doc_ids`` order."""

    doc_ids: np.ndarray  # int64[n_docs]
    offsets: np.ndarray  # int64[n_docs + 1]
    codes: np.ndarray  # uint16[n_tokens]
    packed: np.ndarray  # uint8[n_tokens, row_bytes]

    @property
    def n_docs(self) -> int:
        return int(self.doc_ids.size)

    @classmethod
    def from_payloads(cls, rows: Iterable[tuple[int, int, bytes | None, bytes]], codec: ResidualCodec) -> ResidualRows:
        """Decode (doc_id, n_tokens, codes, payload) rows, checking every length and code."""
        doc_ids: list[int] = []
        counts: list[int] = []
        code_blobs: list[bytes] = []
        payloads: list[bytes] = []
        width = codec.row_bytes
        for doc_id, n_tokens, codes_blob, payload in rows:
            n = int(n_tokens)
            if codes_blob is None or len(codes_blob) != n * CODE_DTYPE.itemsize or len(payload) != n * width:
                raise CorruptIndexError(f"document {doc_id}: stored codes or residuals do not hold {n} tokens")
            doc_ids.append(int(doc_id))
            counts.append(n)
            code_blobs.append(codes_blob)
            payloads.append(payload)
        codes = np.frombuffer(b"".join(code_blobs), dtype=CODE_DTYPE).astype(np.uint16)
        if codes.size and int(codes.max()) >= codec.codebook.size:
            raise CorruptIndexError("centroid code out of range")
        offsets = _offsets(counts)
        check_offsets(offsets, codes.size)
        return cls(
            doc_ids=np.asarray(doc_ids, dtype=np.int64),
            offsets=offsets,
            codes=codes,
            packed=np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(codes.size, width),
        )

"""In-memory token matrix: every document's token vectors in flat arrays.

Rows of document ``p`` are ``offsets[p]:offsets[p+1]``; ``doc_ids[p]`` is its
internal id. Built from stored payloads, validated once, then handed to kernels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .codec import decode_int8
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

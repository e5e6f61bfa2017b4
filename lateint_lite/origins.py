"""Where a build gets each document's vectors: the best source there is, never a quantization
of a quantization.

- Before the first build, the stored int8 tokens are that source: they hold exactly
  :func:`~lateint_lite.codecs.canonical` of what the encoder (or the caller) produced.
- After it, the stored codes are lossy, so a rebuild goes back further, by
  ``documents.origin``:

  - text: the document's text, encoded again by the index's own model (its identity
    is checked against the file when the encoder loads);
  - precomputed vectors: the vectors the caller passes again (a mapping id -> array,
    or a function ids -> arrays, so they can be streamed); without them the build is
    refused, unless the caller opts into a lossy rebuild from the stored codes;
  - unknown (files written before schema 3): the text, if encoding it with the current
    codec reproduces the stored tokens (same count, mean token cosine >= 0.9; a text
    document measures 1.0, vectors from elsewhere fail the count or score near 0);
    otherwise it is treated as precomputed vectors. What is learned is recorded.

Every source yields unit vectors rounded through int8 and pooled to the index's
pooling, with the document's passages (stored lengths, or the text split again),
so the same options rebuild the same index.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import kernels
from .codecs import TokenCodec, canonical
from .encoder import Encoder, encode_passages, l2_normalize
from .errors import RebuildSourceError
from .passages import DocumentTokens, read_lengths
from .pooling import pool_vectors
from .requests import check_vectors
from .store import ORIGIN_TEXT, ORIGIN_VECTORS, SourceRow, Store, TokenRow

#: Precomputed vectors passed to a rebuild: id -> (n, dim) array, or a function of a list of ids.
SuppliedVectors = Mapping[str, Any] | Callable[[list[str]], Sequence[Any]]
#: An unknown-origin document counts as text when its re-encoded tokens match the stored ones this well.
TEXT_MATCH_COSINE = 0.9


def encode_texts(encoder: Encoder, texts: Sequence[str], ids: Sequence[str], dim: int) -> list[DocumentTokens]:
    """The encoder's passages for ``texts``, checked, normalized and rounded to the canonical form."""
    encoded = encode_passages(encoder, texts, ids) if texts else []
    return [
        DocumentTokens.joined(
            [canonical(l2_normalize(check_vectors(v, dim, f"encoder output for {i!r}"))) for v in parts]
        )
        for parts, i in zip(encoded, ids, strict=True)
    ]


def canonical_passages(passages: Sequence[Any]) -> DocumentTokens:
    """A document's passages encoded elsewhere by the index's model (checked by the caller),
    normalized and rounded as if encoded here."""
    return DocumentTokens.joined([canonical(l2_normalize(p)) for p in passages])


def canonical_values(checked: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The int8 values of the canonical form of documents' checked vectors (one passage each):
    ``canonical_supplied(v).vectors == unit_rows(values)``. Computed on their concatenation,
    which gives each document the same bits (every step works row by row) at a fraction of the
    per-document calls (a third of an add's time at 100k synthetic documents), by the fused
    kernel (``kernels.canonical_int8``: the same bits as ``int8_values(l2_normalize(v))``)."""
    if not checked:
        return []
    values = kernels.canonical_int8(np.concatenate(checked))
    bounds = np.cumsum([0, *(len(v) for v in checked)])
    return [values[bounds[i] : bounds[i + 1]] for i in range(len(checked))]


def canonical_supplied(vectors: Any, dim: int, doc_id: str) -> DocumentTokens:
    """Caller-supplied vectors of one document (one passage), checked, normalized and rounded."""
    return DocumentTokens.whole(canonical(l2_normalize(check_vectors(vectors, dim, f"vectors of {doc_id!r}"))))


class VectorSource:
    """Vectors for a build, document by document, from the best source available."""

    def __init__(
        self,
        store: Store,
        current: TokenCodec,
        *,
        current_pool: int,
        target_pool: int,
        encoder: Callable[[], Encoder],
        supplied: SuppliedVectors | None = None,
        lossy: bool = False,
    ) -> None:
        """``current_pool``: the pooling of the stored tokens; ``target_pool``: of the rebuilt ones."""
        self._store = store
        self._current = current
        self._from_stored = current.is_lossless_source
        self._current_pool = current_pool
        self._target_pool = target_pool
        # stored tokens are pooled already, unless pooling starts with this build
        self._stored_pool = target_pool if current_pool == 1 else 1
        self._encoder = encoder
        self._supplied = supplied
        self._lossy = lossy
        self.used_stored_codes = False
        self.learned: dict[int, int] = {}

    @property
    def yields_int8_rows(self) -> bool:
        """Whether every vector is a stored int8 token as it is (``unit_rows`` of its values, not
        pooled here), so its int8 values give it back exactly."""
        return self._from_stored and self._stored_pool <= 1

    @property
    def reads_stored_tokens(self) -> bool:
        """Whether vectors come from the stored int8 tokens (cheap to read again), not the model."""
        return self._from_stored

    def check_available(self) -> None:
        """Refuse up front when documents known to be precomputed vectors have no source."""
        if self._from_stored or self._supplied is not None or self._lossy:
            return
        n_vectors = self._store.origin_counts().get(ORIGIN_VECTORS, 0)
        if n_vectors:
            raise self._refusal(n_vectors, None)

    def vectors(self, doc_ids: Sequence[int]) -> list[DocumentTokens]:
        """Pooled canonical vectors of ``doc_ids``, with their passages, in that order."""
        rows = self._store.source_rows(doc_ids)
        if self._from_stored:
            return pool_vectors([self._stored(r) for r in rows], self._stored_pool)
        out: list[DocumentTokens | None] = [None] * len(rows)
        readable = [i for i, r in enumerate(rows) if r.origin in (ORIGIN_TEXT, None)]
        texts = [rows[i].text for i in readable]
        ids = [rows[i].ext_id for i in readable]
        fresh = encode_texts(self._encoder(), texts, ids, self._current.dim) if readable else []
        kept = [(i, v) for i, v in zip(readable, fresh, strict=True) if self._is_text(rows[i], v)]
        for (i, _), pooled in zip(kept, pool_vectors([v for _, v in kept], self._target_pool), strict=True):
            out[i] = pooled
        missing = [i for i, v in enumerate(out) if v is None]
        for i, vectors in zip(missing, self._without_text([rows[i] for i in missing]), strict=True):
            out[i] = vectors
        return [v for v in out if v is not None]

    def _stored(self, row: SourceRow) -> DocumentTokens:
        """A document's stored tokens decoded, with its stored passages."""
        token_row = _token_row(row)
        return DocumentTokens(
            self._current.decode(token_row), read_lengths(row.passages, int(row.n_tokens), int(row.doc_id))
        )

    def _is_text(self, row: SourceRow, fresh: DocumentTokens) -> bool:
        """Whether ``fresh`` (the text re-encoded) is this document's source; learns unknown origins."""
        if row.origin is not None:
            return row.origin == ORIGIN_TEXT
        matches = self._matches_stored(row, pool_vectors([fresh], self._current_pool)[0])
        self.learned[row.doc_id] = ORIGIN_TEXT if matches else ORIGIN_VECTORS
        return matches

    def _matches_stored(self, row: SourceRow, fresh: DocumentTokens) -> bool:
        if len(fresh.vectors) != row.n_tokens:
            return False
        stored = self._current.decode(_token_row(row))
        encoded = self._current.encode([fresh.vectors])[0]
        again = self._current.decode(TokenRow(row.doc_id, encoded.n_tokens, encoded.codes, encoded.payload))
        return float((stored * again).sum(axis=1).mean()) >= TEXT_MATCH_COSINE

    def _without_text(self, rows: list[SourceRow]) -> list[DocumentTokens]:
        """Vectors of documents that have no text to re-encode: supplied, or (lossy) decoded."""
        if not rows:
            return []
        if self._supplied is not None:
            return pool_vectors(self._lookup([r.ext_id for r in rows]), self._target_pool)
        if self._lossy:
            self.used_stored_codes = True
            return pool_vectors([self._stored(r) for r in rows], self._stored_pool)
        raise self._refusal(len(rows), rows[0].ext_id)

    def _lookup(self, ext_ids: list[str]) -> list[DocumentTokens]:
        supplied = self._supplied
        dim = self._current.dim
        if callable(supplied):
            got = list(supplied(list(ext_ids)))
            if len(got) != len(ext_ids):
                raise RebuildSourceError(f"the vectors function returned {len(got)} arrays for {len(ext_ids)} ids")
            return [canonical_supplied(v, dim, i) for v, i in zip(got, ext_ids, strict=True)]
        assert supplied is not None
        absent = [i for i in ext_ids if i not in supplied]
        if absent:
            raise RebuildSourceError(
                f"{len(absent)} document(s) added as precomputed vectors are not in the vectors passed "
                f"to build, e.g. {absent[0]!r}"
            )
        return [canonical_supplied(supplied[i], dim, i) for i in ext_ids]

    def _refusal(self, count: int, example: str | None) -> RebuildSourceError:
        which = f", e.g. {example!r}" if example else ""
        return RebuildSourceError(
            f"{self._store.path}: {count} document(s){which} were added as precomputed vectors (or, in a file "
            "from before schema 3, their text does not reproduce their stored tokens), so there is no text "
            "to re-encode them from, and rebuilding from their stored codes would quantize a "
            "quantization. Pass their vectors again (build(vectors={id: array} or a function ids -> arrays)), "
            "or opt into a lossy rebuild (build(lossy=True), `lateint build --lossy`); info().lossy_generations "
            "counts lossy rebuilds"
        )


def _token_row(row: SourceRow) -> TokenRow:
    return TokenRow(row.doc_id, row.n_tokens, row.codes, row.payload, row.passages)


__all__ = [
    "TEXT_MATCH_COSINE",
    "SuppliedVectors",
    "VectorSource",
    "canonical_supplied",
    "canonical_values",
    "encode_texts",
]

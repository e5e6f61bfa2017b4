"""Reads: search in every mode (MaxSim, BM25, hybrid, pooled), filters, fusion, rerank.

Every ranking is computed inside one read snapshot, so it sees one committed
state of the file. MaxSim scoring goes through the index's codec: PLAID's
final stage, exhaustive search and :meth:`Searcher.rerank` share the codec's
exact scorer.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np

from .codecs import PreparedQuery, PruningIndex, Resident, StoredTokens, quantize_unit_int8
from .documents import Hit
from .encoder import Encoder, l2_normalize
from .errors import CorruptIndexError, DocumentNotFoundError, EmptyIndexError
from .explain import (
    CLOSE_MARK,
    EXPLAINED_HITS,
    MIN_MATCH_SIMILARITY,
    OPEN_MARK,
    Match,
    marked_spans,
    passage_match,
    readable_spans,
    snippet_window,
)
from .filters import Clause
from .fusion import normalized_score_fusion, reciprocal_rank_fusion
from .lexical import fts5_query
from .passages import best_passage, read_lengths
from .requests import SearchRequest
from .search import exhaustive_search, plaid_search, top_k
from .state import LoadedSegment, StateCache
from .store import Store

Ranking = list[tuple[int, float]]
#: Finds what documents given as doc_id -> text matched.
Explainer = Callable[[dict[int, str]], dict[int, Match]]


class Searcher:
    """Search and rerank over one store."""

    def __init__(self, store: Store, cache: StateCache, encoder: Callable[[], Encoder]) -> None:
        self._store = store
        self._cache = cache
        self._encoder = encoder

    def search_texts(self, texts: Sequence[str], request: SearchRequest) -> list[list[Hit]]:
        """One hit list per (validated) query text; queries are encoded in one batch."""
        self._require_documents()
        if not texts:
            return []
        encoded: Sequence[np.ndarray | None] = (
            [None] * len(texts) if request.mode == "bm25" else self._encoder().encode_queries(list(texts))
        )
        results = []
        for text, vectors in zip(texts, encoded, strict=True):
            with self._store.snapshot(), self._naming_damaged_documents():
                ranking, prepared = self._rank(text, vectors, request)
                explain = partial(self._matches, request, text, prepared) if request.highlight else None
                results.append(self._hits(ranking, explain))
        return results

    def search_vectors(
        self, query: np.ndarray, request: SearchRequest, prepared: PreparedQuery | None = None
    ) -> list[Hit]:
        """MaxSim search with a validated (nq, dim) query matrix (``prepared`` by this index's codec,
        or by an identical one, when given)."""
        with self._store.snapshot(), self._naming_damaged_documents():
            self._require_documents()
            ranking, prepared = self._maxsim(l2_normalize(query), request.k, request, prepared)
            return self._hits(ranking, partial(self._matches, request, None, prepared) if request.highlight else None)

    def prepare(self, query: np.ndarray) -> PreparedQuery:
        """The query prepared by the current codec (unit rows)."""
        with self._store.snapshot():
            return self._cache.current().codec.prepare(l2_normalize(query))

    def rerank(self, text: str, ids: list[str], k: int | None) -> list[Hit]:
        """Exact MaxSim of the query against the given documents, best first."""
        if not ids:
            return []
        query = l2_normalize(self._encoder().encode_queries([text])[0])
        with self._store.snapshot(), self._naming_damaged_documents():
            rows = {r.ext_id: r.doc_id for r in self._store.documents_by_ext_ids(ids)}
            missing = [i for i in ids if i not in rows]
            if missing:
                raise DocumentNotFoundError(f"{len(missing)} id(s) not in the index, e.g. {missing[0]!r}")
            codec = self._cache.current().codec
            tokens = codec.read_rows(self._store.token_payloads(sorted(rows.values())))
            prepared = codec.prepare(query)
            scores = codec.score(prepared, tokens)
            best = top_k(scores, len(scores) if k is None else k)
            ranking = list(zip(tokens.doc_ids[best].tolist(), scores[best].tolist(), strict=True))
            return self._hits(ranking, partial(self._maxsim_matches, prepared, query_text=text))

    @contextmanager
    def _naming_damaged_documents(self) -> Iterator[None]:
        """Damage found in one document's stored data is reported with that document's id."""
        try:
            yield
        except CorruptIndexError as exc:
            if exc.doc_id is None:
                raise
            row = self._store.documents_by_doc_ids([exc.doc_id]).get(exc.doc_id)
            name = repr(row.ext_id) if row is not None else f"with internal id {exc.doc_id}"
            raise CorruptIndexError(
                f"{self._store.path}: document {name} is damaged ({exc}); run `lateint check`, then delete "
                "and re-add it or restore a copy",
                doc_id=exc.doc_id,
            ) from exc

    def _rank(
        self, text: str, vectors: np.ndarray | None, request: SearchRequest
    ) -> tuple[Ranking, PreparedQuery | None]:
        """(doc_id, score) best first for one query, and the query as the codec prepared it (for
        MaxSim modes); call inside a snapshot."""
        if vectors is None:  # bm25 is the only mode that encodes nothing
            return self._bm25(text, request.k, request.conditions), None
        query = l2_normalize(vectors)
        if request.mode == "pooled":
            found = self._store.pooled_knn(quantize_unit_int8(query.mean(axis=0)), request.k, request.conditions)
            return [(d, 1.0 - dist) for d, dist in found], None
        dense, prepared = self._maxsim(query, request.depth, request)
        if request.mode == "maxsim":
            return dense, prepared
        lexical = self._bm25(text, request.depth, request.conditions)
        if request.fusion == "rrf":
            return reciprocal_rank_fusion([dense, lexical])[: request.k], prepared
        return normalized_score_fusion([dense, lexical], [1.0, 1.0])[: request.k], prepared

    def _maxsim(
        self, query: np.ndarray, k: int, request: SearchRequest, prepared: PreparedQuery | None = None
    ) -> tuple[Ranking, PreparedQuery]:
        """(doc_id, MaxSim score) best first, and the prepared query; call inside a snapshot."""
        state, resident = self._cache.resident()
        codec = state.codec
        allowed_ids = self._store.filtered_doc_ids(request.conditions) if request.conditions else None
        prepared = codec.prepare(query) if prepared is None else prepared
        if request.exact or not codec.supports_pruning:
            doc_ids, scores = self._exhaustive(codec, prepared, resident, allowed_ids, k)
        else:
            pruning = [(_pruning_of(s.data), _mask(s, allowed_ids)) for s in resident.segments]

            def fetch(doc_ids: np.ndarray) -> StoredTokens:
                return codec.read_rows(self._store.token_payloads(doc_ids.tolist()))

            filtered = allowed_ids is not None
            doc_ids, scores = plaid_search(codec, prepared, pruning, k, request.params, fetch, filtered)
            # candidates come from the probed cells only: a small index (no more live documents than
            # PLAID would rerank anyway) can come up short of k although it holds k; score it all
            if doc_ids.size < k and _live_documents(resident) <= request.params.ndocs:
                doc_ids, scores = self._exhaustive(codec, prepared, resident, allowed_ids, k)
        return list(zip(doc_ids.tolist(), scores.tolist(), strict=True)), prepared

    def _exhaustive(
        self, codec: Any, prepared: PreparedQuery, resident: Any, allowed_ids: np.ndarray | None, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        segments = self._cache.all_tokens() if codec.supports_pruning else resident
        parts = [(_tokens_of(s.data), _mask(s, allowed_ids)) for s in segments.segments]
        return exhaustive_search(codec, prepared, parts, k)

    def _bm25(self, text: str, k: int, conditions: tuple[Clause, ...]) -> Ranking:
        match = fts5_query(text)
        return [] if match is None else self._store.bm25(match, k, conditions)

    def _hits(self, ranking: Ranking, explain: Explainer | None = None) -> list[Hit]:
        """Hits of a ranking; ``explain`` finds the matched spans of the first ``EXPLAINED_HITS``
        documents from their texts (read here once, with the rest of the hit)."""
        rows = self._store.documents_by_doc_ids([d for d, _ in ranking])
        texts = {d: rows[d].text for d, _ in ranking[:EXPLAINED_HITS]}
        matches = None if explain is None or not texts else explain(texts)
        hits = []
        for rank, (doc_id, score) in enumerate(ranking, start=1):
            row = rows[doc_id]
            match = matches.get(doc_id, Match([])) if matches is not None else Match([])
            spans = tuple(match.spans)
            window = snippet_window(row.text, spans) if matches is not None else None
            hits.append(
                Hit(
                    id=row.ext_id,
                    score=float(score),
                    rank=rank,
                    text=row.text,
                    meta=json.loads(row.meta_json),
                    highlights=spans,
                    snippet_span=window,
                    passage=match.passage,
                )
            )
        return hits

    # -- explained matches ------------------------------------------------------------

    def _matches(
        self, request: SearchRequest, text: str | None, query: PreparedQuery | None, texts: dict[int, str]
    ) -> dict[int, Match]:
        """What each document (``texts``: doc_id -> text) matched: MaxSim's best passage and its
        best-matching tokens (hybrid: those, else the BM25 terms), BM25's matched terms, nothing
        for pooled search."""
        if request.mode == "pooled":
            return {}
        dense = self._maxsim_matches(query, texts, text) if query is not None and request.mode != "bm25" else {}
        missing = [d for d in texts if d not in dense or not dense[d].spans]
        if text is not None and missing and request.mode in ("bm25", "hybrid"):
            fts_query = fts5_query(text)
            if fts_query is not None:
                marked = self._store.fts_highlights(fts_query, missing, OPEN_MARK, CLOSE_MARK)
                for d, m in marked.items():
                    dense[d] = Match(marked_spans(texts[d], m), dense[d].passage if d in dense else None)
        return dense

    def _maxsim_matches(
        self, query: PreparedQuery, texts: dict[int, str], query_text: str | None = None
    ) -> dict[int, Match]:
        """For each document (``texts``: doc_id -> text), its best passage and the spans of that
        passage's tokens that some token of the query's own words matched best (spans need an
        encoder that reports token spans, and unpooled tokens)."""
        state = self._cache.current()
        if not texts:
            return {}
        encoder = self._encoder()
        spans_of = getattr(encoder, "document_token_spans", None)
        if state.config.pool_factor != 1:
            spans_of = None
        rows_of = getattr(encoder, "query_text_rows", None)
        query_rows = rows_of(query_text) if rows_of is not None and query_text is not None else None
        token_rows = list(self._store.token_payloads(list(texts)))
        lengths = [read_lengths(r.passages, int(r.n_tokens), int(r.doc_id)) for r in token_rows]
        similarities = [state.codec.token_similarities(query, r) for r in token_rows]
        all_spans = None
        if spans_of is not None:
            documents = [texts[r.doc_id] for r in token_rows]
            if "through" in inspect.signature(spans_of).parameters:  # tokenize up to the best passage only
                best = [best_passage(s, n)[0] for s, n in zip(similarities, lengths, strict=True)]
                all_spans = spans_of(documents, through=best)
            else:
                all_spans = spans_of(documents)
        matches = {}
        for n, row in enumerate(token_rows):
            spans = all_spans[n] if all_spans is not None else []
            match = passage_match(similarities[n], lengths[n], spans, MIN_MATCH_SIMILARITY, query_rows)
            matches[row.doc_id] = Match(readable_spans(match.spans, texts[row.doc_id], query_text), match.passage)
        return matches

    def _require_documents(self) -> None:
        if not self._store.has_documents():
            raise EmptyIndexError(f"{self._store.path}: the index holds no documents")


def _mask(segment: LoadedSegment[Any], allowed_ids: np.ndarray | None) -> np.ndarray | None:
    """Which positions of a segment a search may return: not deleted, and passing the filter
    (``allowed_ids``; None: no filter); None when that is all of them."""
    if allowed_ids is None:
        return segment.live
    allowed = np.isin(segment.doc_ids, allowed_ids)
    return allowed if segment.live is None else allowed & segment.live


def _live_documents(resident: Any) -> int:
    return sum(s.doc_ids.size if s.live is None else int(np.count_nonzero(s.live)) for s in resident.segments)


def _tokens_of(data: Resident | StoredTokens) -> StoredTokens:
    tokens = data.tokens if isinstance(data, Resident) else data
    if tokens is None:
        raise TypeError("segment data holds no tokens")
    return tokens


def _pruning_of(data: Resident) -> PruningIndex:
    if data.pruning is None:
        raise TypeError("segment data holds no pruning index")
    return data.pruning

"""The Index: add, search, get, delete and info over one SQLite file.

Orchestration only: validation lives in documents.py, SQL in store.py, payload
layouts in codec.py, scoring in search.py/kernels.py, text encoding in encoder.py.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import codec
from ._version import __version__
from .builder import (
    BuildOptions,
    add_to_lists,
    build_codec,
    encode_for_store,
    pool_vectors,
    rebuild_lists,
    remove_from_lists,
)
from .documents import (
    Document,
    DocumentInput,
    Hit,
    check_k,
    check_vectors,
    normalize_id,
    normalize_text,
    prepare_documents,
)
from .encoder import PUNCTUATION, Encoder, OnnxEncoder, l2_normalize, resolve_skiplist
from .errors import (
    CorruptIndexError,
    DocumentNotFoundError,
    DuplicateIdError,
    EmptyIndexError,
    InvalidInputError,
    ModelError,
    ModelMismatchError,
    NotAnIndexError,
)
from .filters import Condition, parse_where
from .fusion import normalized_score_fusion, reciprocal_rank_fusion
from .kernels import maxsim_f32
from .lexical import fts5_query
from .manifest import load_manifest
from .progress import ProgressArg, progress_bar
from .schema import SCHEMA_VERSION, FileState
from .search import SearchParams, exhaustive_residual_search, exhaustive_search, plaid_search, top_k
from .state import BuiltState, Int8State, SearchState, load_codec, load_state
from .store import NewDocument, Store, sqlite_vec_version
from .tokens import ResidualRows

SEARCH_MODES = ("maxsim", "bm25", "hybrid", "pooled")
FUSIONS = ("rrf", "score")
#: min-max score fusion beat RRF on SciFact (72.66 vs 71.56 nDCG@10) and, confirming, on
#: NFCorpus (35.86 vs 35.60); see docs/benchmarks.md.
DEFAULT_FUSION = "score"
#: Each ranking fused by hybrid search contributes its top max(k, HYBRID_DEPTH) documents.
HYBRID_DEPTH = 100
WRITE_CHUNK = 64
#: An unbuilt index is built automatically once an add leaves it with this many tokens.
AUTO_BUILD_TOKENS = 50_000
#: optimize() retrains when the token count grew or shrank by this factor since the last build.
RETRAIN_GROWTH = 2.0
#: build() VACUUMs when more than this share of the file is free pages.
COMPACT_FREE_FRACTION = 0.25


@dataclass(frozen=True)
class ModelIdentity:
    """What the index records about the model that encoded it."""

    name: str
    fingerprint: str
    dim: int
    source: str


def open(
    path: str | os.PathLike[str],
    *,
    create: bool = False,
    model: str | os.PathLike[str] | None = None,
    encoder: Encoder | None = None,
    readonly: bool = False,
    threads: int | None = None,
    auto_build: bool = True,
    skiplist: str | Sequence[str] | None = None,
) -> Index:
    """Open (or with ``create=True`` create) an index file.

    ``model`` is a bundled model name or a model folder; ``encoder`` is any
    :class:`~lateint_lite.encoder.Encoder` (tests, custom models). Without
    either, the model recorded in the file is loaded on first use.
    ``auto_build`` compresses the index (:meth:`Index.build`) once an add
    leaves an unbuilt index with at least ``AUTO_BUILD_TOKENS`` tokens.
    ``skiplist`` (at creation: "punctuation", "none" or a list of tokens)
    drops those document tokens before storage, for every later add too;
    the default keeps the model manifest's choice.
    """
    chosen_skiplist = resolve_skiplist(skiplist)
    store = Store(path, create=create, readonly=readonly)
    try:
        if store.state is FileState.EMPTY:
            if not create:
                raise NotAnIndexError(f"{store.path}: empty file, not an index (create it with create=True)")
            identity = _identity_of(model, encoder)
            meta = _initial_meta(identity)
            if chosen_skiplist is not None:
                meta["doc_skiplist"] = json.dumps(list(chosen_skiplist))
            store.initialize(identity.dim, meta)
        elif chosen_skiplist is not None:
            raise InvalidInputError("skiplist can only be chosen when the index is created")
        else:
            store.ensure_wal()
        return Index(store, model=model, encoder=encoder, threads=threads, auto_build=auto_build)
    except BaseException:
        store.close()
        raise


def _identity_of(model: str | os.PathLike[str] | None, encoder: Encoder | None) -> ModelIdentity:
    if encoder is not None:
        return ModelIdentity(encoder.name, encoder.fingerprint, encoder.dim, "custom encoder")
    manifest = load_manifest(None if model is None else str(model))
    source = manifest.name if model is None or str(model) == manifest.name else str(model)
    return ModelIdentity(manifest.name, manifest.model.sha256, manifest.dim, source)


def _initial_meta(identity: ModelIdentity) -> dict[str, str]:
    now = str(time.time())
    return {
        "library_version": __version__,
        "schema_version": str(SCHEMA_VERSION),
        "sqlite_vec_version": sqlite_vec_version(),
        "model_name": identity.name,
        "model_sha256": identity.fingerprint,
        "model_source": identity.source,
        "dim": str(identity.dim),
        "codec": codec.INT8,
        "created_at": now,
        "updated_at": now,
    }


class Index:
    """A late-interaction index stored in one SQLite file. Use :func:`open`."""

    def __init__(
        self,
        store: Store,
        *,
        model: str | os.PathLike[str] | None = None,
        encoder: Encoder | None = None,
        threads: int | None = None,
        auto_build: bool = True,
    ) -> None:
        self._store = store
        self._auto_build = auto_build
        self._meta = store.meta()  # only for what never changes: dim, model identity, skiplist
        self._dim = self._meta_int("dim")
        if self._meta.get("codec") not in codec.CODECS:
            raise CorruptIndexError(f"{store.path}: unknown codec {self._meta.get('codec')!r}")
        self._model = model
        self._threads = threads
        self._encoder: Encoder | None = None
        self._encoder_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._state: SearchState | None = None
        self._state_key: int | None = None
        self._all_rows: tuple[int, ResidualRows] | None = None
        if encoder is not None:
            self._check_identity(encoder.name, encoder.fingerprint, encoder.dim)
            self._encoder = encoder
        elif model is not None:
            manifest = load_manifest(str(model))
            self._check_identity(manifest.name, manifest.model.sha256, manifest.dim)

    # -- life cycle -----------------------------------------------------------------

    @property
    def path(self) -> str:
        return self._store.path

    def close(self) -> None:
        """Release the file; the Index must not be used afterwards."""
        self._state = None
        self._all_rows = None
        self._store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self._store.counts()[0]

    def __contains__(self, doc_id: object) -> bool:
        return self._store.document_by_ext_id(normalize_id(doc_id)) is not None

    # -- model ----------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def encoder(self) -> Encoder:
        """The text encoder, loaded on first use and checked against the file."""
        with self._encoder_lock:
            if self._encoder is None:
                self._encoder = self._load_recorded_encoder()
            return self._encoder

    def _load_recorded_encoder(self) -> Encoder:
        spec: str | os.PathLike[str] | None = self._model
        if spec is None:
            source = self._meta.get("model_source", "")
            if source == "custom encoder":
                raise ModelError(
                    f"{self.path} was built with a custom encoder; pass the same encoder to open() to encode text"
                )
            spec = source or self._meta.get("model_name")
        recorded = self._meta.get("doc_skiplist")
        skiplist = None if recorded is None else json.loads(recorded)
        encoder = OnnxEncoder.from_model(spec, threads=self._threads, skiplist=skiplist)
        self._check_identity(encoder.name, encoder.fingerprint, encoder.dim)
        return encoder

    def _check_identity(self, name: str, fingerprint: str, dim: int) -> None:
        if fingerprint != self._meta.get("model_sha256") or dim != self._dim:
            raise ModelMismatchError(
                f"{self.path} was built with model {self._meta.get('model_name')!r} "
                f"(sha256 {self._meta.get('model_sha256', '?')[:12]}, dim {self._dim}); "
                f"got {name!r} (sha256 {fingerprint[:12]}, dim {dim})"
            )

    # -- writes ---------------------------------------------------------------------

    def add(
        self,
        docs: Iterable[Mapping[str, Any]],
        *,
        progress: ProgressArg = False,
        batch_size: int = WRITE_CHUNK,
    ) -> list[str]:
        """Encode and store documents in one transaction; returns their ids.

        Each document is ``{"id": str, "text": str, "meta": dict?, "vectors": array?}``;
        ``vectors`` (n, dim) skips the text encoder. Ids already present are an
        error (see :meth:`upsert`). A built index encodes new documents with its
        existing centroids.
        """
        return self._write(docs, replace=False, progress=progress, batch_size=batch_size)

    def upsert(
        self,
        docs: Iterable[Mapping[str, Any]],
        *,
        progress: ProgressArg = False,
        batch_size: int = WRITE_CHUNK,
    ) -> list[str]:
        """Like :meth:`add`, but documents whose id exists replace the stored ones.

        The old text, metadata, token payload, inverted-list entries, full-text
        entry and pooled vector go in the same transaction as the new ones arrive.
        """
        return self._write(docs, replace=True, progress=progress, batch_size=batch_size)

    def _write(
        self, docs: Iterable[Mapping[str, Any]], *, replace: bool, progress: ProgressArg, batch_size: int
    ) -> list[str]:
        items = prepare_documents(docs, self._dim)
        if not items:
            return []
        needs_encoder = any(item.vectors is None for item in items)
        encoder = self.encoder if needs_encoder else None
        with progress_bar(progress, len(items), "encoding") as tick, self._store.write():
            taken = self._store.existing_ext_ids([item.id for item in items])
            if taken and not replace:
                raise DuplicateIdError(f"{len(taken)} id(s) already in the index, e.g. {sorted(taken)[0]!r}")
            self._remove([i.id for i in items if i.id in taken])
            meta = self._store.meta()
            residual = load_codec(self._store, meta, self._dim)
            pool = int(meta.get("pool_factor", "1"))
            for start in range(0, len(items), max(1, batch_size)):
                chunk = items[start : start + max(1, batch_size)]
                self._insert(chunk, self._vectors_for(chunk, encoder), residual, pool)
                tick(len(chunk))
            self._store.set_meta({"updated_at": str(time.time())})
        if self._auto_build and not self.is_built and self._store.counts()[1] >= AUTO_BUILD_TOKENS:
            self.build(progress=progress)
        return [item.id for item in items]

    def _vectors_for(self, chunk: Sequence[DocumentInput], encoder: Encoder | None) -> list[np.ndarray]:
        pending = [i for i, item in enumerate(chunk) if item.vectors is None]
        encoded = encoder.encode_documents([chunk[i].text for i in pending]) if encoder and pending else []
        out: list[np.ndarray] = [np.empty(0)] * len(chunk)
        for i, vectors in zip(pending, encoded, strict=True):
            out[i] = l2_normalize(check_vectors(vectors, self._dim, f"encoder output for {chunk[i].id!r}"))
        for i, item in enumerate(chunk):
            if item.vectors is not None:
                out[i] = l2_normalize(item.vectors)
        return out

    def _insert(
        self,
        chunk: Sequence[DocumentInput],
        full: list[np.ndarray],
        residual: codec.ResidualCodec | None,
        pool: int,
    ) -> None:
        """Write one chunk (and patch the inverted lists of a built index)."""
        vectors = pool_vectors(full, pool)
        encoded = [] if residual is None else encode_for_store(residual, vectors)
        payloads: list[tuple[bytes | None, bytes]] = (
            [(None, codec.encode_int8(v)) for v in vectors] if residual is None else [(c, p) for c, p, _ in encoded]
        )
        rows = [
            NewDocument(
                ext_id=item.id,
                text=item.text,
                meta_json=item.meta_json,
                n_tokens=int(matrix.shape[0]),
                codes=codes_blob,
                payload=payload,
                pooled=codec.quantize_unit_int8(original.mean(axis=0)),
            )
            for item, matrix, original, (codes_blob, payload) in zip(chunk, vectors, full, payloads, strict=True)
        ]
        doc_ids = self._store.insert_documents(rows)
        if residual is not None:
            add_to_lists(self._store, [(d, e[2]) for d, e in zip(doc_ids, encoded, strict=True)])

    def delete(self, ids: Iterable[object], *, missing_ok: bool = False) -> int:
        """Delete documents by id in one transaction; returns how many were removed.

        Unknown ids raise :class:`DocumentNotFoundError` (nothing is deleted)
        unless ``missing_ok``.
        """
        if isinstance(ids, (str, bytes)):
            ids = [ids]
        wanted = list(dict.fromkeys(normalize_id(i) for i in ids))
        with self._store.write():
            present = self._store.existing_ext_ids(wanted)
            missing = [i for i in wanted if i not in present]
            if missing and not missing_ok:
                raise DocumentNotFoundError(f"{len(missing)} id(s) not in the index, e.g. {missing[0]!r}")
            removed = self._remove([i for i in wanted if i in present])
            self._store.set_meta({"updated_at": str(time.time())})
        return removed

    def _remove(self, ext_ids: list[str]) -> int:
        """Delete existing documents and their list entries; call inside a write."""
        if not ext_ids:
            return 0
        if self._store.meta().get("codec") == codec.RESIDUAL:
            rows = self._store.documents_by_ext_ids(ext_ids)
            codes = self._store.codes_of([r.doc_id for r in rows])
            remove_from_lists(self._store, [(d, np.frombuffer(c or b"", dtype=codec.CODE_DTYPE)) for d, c in codes])
        return len(self._store.delete_documents(ext_ids))

    def build(
        self,
        *,
        nbits: int = 2,
        residual_dim: int | None = 128,
        n_centroids: int | None = None,
        seed: int = 0,
        pool_factor: int | None = None,
        progress: ProgressArg = False,
        compact: bool = True,
    ) -> dict[str, Any]:
        """Compress the index: train centroids + residual codec, re-encode, build inverted lists.

        Runs in one transaction. On a built index this retrains from the decoded
        vectors (use it after the collection grew or drifted). ``compact``
        VACUUMs afterwards when over a quarter of the file is free pages (the
        replaced int8 payloads). ``pool_factor`` > 1 turns on token pooling: each
        document keeps about 1/pool_factor of its token vectors (cluster means),
        now and for every later add; it can be set once, on an unpooled index.
        Returns a report (centroids, bytes per token, seconds).
        """
        current_pool = self.pool_factor
        if pool_factor is not None and pool_factor != current_pool and current_pool != 1:
            raise InvalidInputError(f"tokens are already pooled by {current_pool}; pooling applies once")
        target_pool = current_pool if pool_factor is None else pool_factor
        options = BuildOptions(
            nbits=nbits,
            residual_dim=residual_dim,
            n_centroids=n_centroids,
            seed=seed,
            pool_now=target_pool if current_pool == 1 else 1,
        )
        total = self._store.counts()[0]
        with progress_bar(progress, total, "building") as tick, self._store.write():
            current = load_codec(self._store, self._store.meta(), self._dim)
            report = build_codec(self._store, dim=self._dim, current=current, options=options, progress=tick)
            self._store.set_meta({"pool_factor": str(target_pool)})
            report["pool_factor"] = target_pool
        if compact and self._store.free_fraction() > COMPACT_FREE_FRACTION:
            started = time.perf_counter()
            self._store.compact()
            report["compact_seconds"] = round(time.perf_counter() - started, 2)
        return report

    def optimize(self, *, retrain: bool = False, progress: ProgressArg = False) -> dict[str, Any]:
        """Maintenance: build or retrain when due (or asked), else rebuild the lists; then VACUUM.

        An unbuilt index is built once it holds ``AUTO_BUILD_TOKENS`` tokens; a
        built one is retrained (same nbits, residual dimension and pooling) when
        its token count changed by ``RETRAIN_GROWTH``x since the last build or
        when ``retrain`` is set; otherwise the inverted lists are rebuilt from
        the stored codes. Returns what was done.
        """
        meta = self._store.meta()
        n_docs, n_tokens = self._store.counts()
        reason = "asked" if retrain else _staleness(meta, n_tokens)
        report: dict[str, Any] = {"documents": n_docs, "tokens": n_tokens}
        if n_docs and reason is not None:
            options = {}
            if meta.get("codec") == codec.RESIDUAL:
                options = {"nbits": int(meta["nbits"]), "residual_dim": int(meta["residual_dim"])}
            report["action"] = "retrained" if meta.get("codec") == codec.RESIDUAL else "built"
            report["reason"] = reason
            report["build"] = self.build(progress=progress, compact=False, **options)
        elif meta.get("codec") == codec.RESIDUAL:
            with self._store.write():
                rebuild_lists(self._store)
            report["action"] = "lists rebuilt"
        else:
            report["action"] = "nothing to build"
        before = self._store.storage_bytes()["file"]
        self._store.compact()
        report["file_bytes_before"] = before
        report["file_bytes_after"] = self._store.storage_bytes()["file"]
        return report

    def export(self, path: str | os.PathLike[str]) -> str:
        """Write a compact copy of the index to ``path`` (which must not exist) for shipping.

        The copy is one file (no -wal/-shm), VACUUMed, in rollback-journal mode so
        it opens read-only even from read-only media; reopening it for writing
        works too. Returns the path.
        """
        target = str(path)
        if os.path.exists(target):
            raise InvalidInputError(f"{target}: already exists")
        with self._store.snapshot():
            pass  # fail early on a closed index
        self._store.export_copy(target)
        return target

    @property
    def pool_factor(self) -> int:
        """Token pooling factor applied to stored documents (1: every token kept)."""
        return int(self._store.meta().get("pool_factor", "1"))

    @property
    def is_built(self) -> bool:
        """Whether documents are stored with the residual codec (after :meth:`build`)."""
        return self._store.meta().get("codec") == codec.RESIDUAL

    # -- reads ----------------------------------------------------------------------

    def get(self, doc_id: object) -> Document:
        """The stored document with this id."""
        ext_id = normalize_id(doc_id)
        row = self._store.document_by_ext_id(ext_id)
        if row is None:
            raise DocumentNotFoundError(f"no document with id {ext_id!r}")
        return Document(id=row.ext_id, text=row.text, meta=json.loads(row.meta_json), n_tokens=row.n_tokens)

    def ids(self) -> list[str]:
        """Every document id, in insertion order."""
        return list(self._store.iter_ext_ids())

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: str = "maxsim",
        where: Mapping[str, Any] | None = None,
        exact: bool = False,
        ncells: int | None = None,
        threshold: float | None = None,
        ndocs: int | None = None,
        fusion: str = DEFAULT_FUSION,
    ) -> list[Hit]:
        """The k best documents for ``query``.

        Modes: ``"maxsim"`` scores by late interaction: PLAID pruning then an exact
        rerank on a built index (``ncells``, ``threshold`` and ``ndocs`` override
        PLAID's defaults for k), or exhaustive MaxSim with ``exact=True`` or
        before :meth:`build`. ``"bm25"`` ranks by SQLite FTS5 BM25 over the text.
        ``"hybrid"`` fuses the MaxSim and BM25 rankings (``fusion="score"``, the
        default: sum of min-max normalized scores; ``"rrf"``: reciprocal-rank fusion).
        ``"pooled"`` is the single-vector baseline: a sqlite-vec KNN over
        mean-pooled document vectors. ``where`` filters on metadata (see
        :mod:`lateint_lite.filters`), applied while candidates are generated.
        """
        return self.search_many(
            [query],
            k,
            mode=mode,
            where=where,
            exact=exact,
            ncells=ncells,
            threshold=threshold,
            ndocs=ndocs,
            fusion=fusion,
        )[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        *,
        mode: str = "maxsim",
        where: Mapping[str, Any] | None = None,
        exact: bool = False,
        ncells: int | None = None,
        threshold: float | None = None,
        ndocs: int | None = None,
        fusion: str = DEFAULT_FUSION,
    ) -> list[list[Hit]]:
        """:meth:`search` for many queries, encoded in one batch; one hit list per query."""
        if isinstance(queries, str):
            raise InvalidInputError("search_many takes a list of queries, not a single string")
        texts = [normalize_text(q, "query") for q in queries]
        k = check_k(k)
        if mode not in SEARCH_MODES:
            raise InvalidInputError(f"mode must be one of {', '.join(SEARCH_MODES)}, got {mode!r}")
        if fusion not in FUSIONS:
            raise InvalidInputError(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
        conditions = parse_where(where)
        depth = max(k, HYBRID_DEPTH) if mode == "hybrid" else k
        params = SearchParams.for_k(depth, ncells=ncells, threshold=threshold, ndocs=ndocs)
        self._require_documents()
        if not texts:
            return []
        encoded = [None] * len(texts) if mode == "bm25" else self.encoder.encode_queries(texts)
        results = []
        for text, vectors in zip(texts, encoded, strict=True):
            with self._store.snapshot():
                ranking = self._rank(text, vectors, mode, k, depth, exact, params, fusion, conditions)
                results.append(self._hits_of(ranking))
        return results

    def _rank(
        self,
        text: str,
        vectors: np.ndarray | None,
        mode: str,
        k: int,
        depth: int,
        exact: bool,
        params: SearchParams,
        fusion: str,
        conditions: tuple[Condition, ...],
    ) -> list[tuple[int, float]]:
        """(doc_id, score) best first for one query in one mode; call inside a snapshot."""
        if mode == "bm25":
            return self._bm25_ranking(text, k, conditions)
        assert vectors is not None  # encoded for every mode but bm25
        query = l2_normalize(vectors)
        if mode == "pooled":
            found = self._store.pooled_knn(codec.quantize_unit_int8(query.mean(axis=0)), k, conditions)
            return [(d, 1.0 - dist) for d, dist in found]
        dense = self._maxsim_ranking(query, depth, exact, params, conditions)
        if mode == "maxsim":
            return dense
        lexical = self._bm25_ranking(text, depth, conditions)
        if fusion == "rrf":
            return reciprocal_rank_fusion([dense, lexical])[:k]
        return normalized_score_fusion([dense, lexical], [1.0, 1.0])[:k]

    def search_vectors(
        self,
        query_vectors: np.ndarray,
        k: int = 10,
        *,
        where: Mapping[str, Any] | None = None,
        exact: bool = False,
        ncells: int | None = None,
        threshold: float | None = None,
        ndocs: int | None = None,
    ) -> list[Hit]:
        """MaxSim search with precomputed query token vectors (n, dim), L2-normalized here."""
        k = check_k(k)
        conditions = parse_where(where)
        params = SearchParams.for_k(k, ncells=ncells, threshold=threshold, ndocs=ndocs)
        query = l2_normalize(check_vectors(query_vectors, self._dim, "query vectors"))
        with self._store.snapshot():
            self._require_documents()
            return self._hits_of(self._maxsim_ranking(query, k, exact, params, conditions))

    def rerank(self, query: str, ids: Iterable[object], k: int | None = None) -> list[Hit]:
        """Exact MaxSim of ``query`` against the given documents, best first.

        Late interaction as a second stage behind any retriever: ``ids`` come
        from elsewhere (BM25, a vector store...). Unknown ids raise
        :class:`DocumentNotFoundError`; ``k`` keeps the best k (default all).
        """
        text = normalize_text(query, "query")
        wanted = list(dict.fromkeys(normalize_id(i) for i in ids))
        if k is not None:
            k = check_k(k)
        if not wanted:
            return []
        query_vectors = l2_normalize(self.encoder.encode_queries([text])[0])
        with self._store.snapshot():
            rows = {r.ext_id: r.doc_id for r in self._store.documents_by_ext_ids(wanted)}
            missing = [i for i in wanted if i not in rows]
            if missing:
                raise DocumentNotFoundError(f"{len(missing)} id(s) not in the index, e.g. {missing[0]!r}")
            residual = load_codec(self._store, self._store.meta(), self._dim)
            payloads = list(self._store.token_payloads(list(rows.values())))
            vectors = [codec.decode_stored(residual, self._dim, n, c, p) for _, n, c, p in payloads]
            offsets = np.cumsum([0] + [len(v) for v in vectors]).astype(np.int64)
            scores = maxsim_f32(query_vectors, np.concatenate(vectors), offsets)
            best = top_k(scores, len(scores) if k is None else k)
            return self._hits([payloads[i][0] for i in best.tolist()], scores[best].tolist())

    def _maxsim_ranking(
        self, query: np.ndarray, k: int, exact: bool, params: SearchParams, conditions: tuple[Condition, ...] = ()
    ) -> list[tuple[int, float]]:
        """(doc_id, MaxSim score) best first; call inside a snapshot."""
        state = self._search_state()
        allowed_ids = self._store.filtered_doc_ids(conditions) if conditions else None
        if isinstance(state, Int8State):
            mask = None if allowed_ids is None else np.isin(state.matrix.doc_ids, allowed_ids)
            doc_ids, scores = exhaustive_search(query, state.matrix, k, mask)
        elif exact:
            rows = self._every_residual(state)
            mask = None if allowed_ids is None else np.isin(rows.doc_ids, allowed_ids)
            doc_ids, scores = exhaustive_residual_search(query, state.tables, rows, k, mask)
        else:
            mask = None if allowed_ids is None else np.isin(state.codes.doc_ids, allowed_ids)
            doc_ids, scores = plaid_search(
                query, state.tables, state.codes, state.lists, k, params, self._fetch_rows(state), mask
            )
        return list(zip(doc_ids.tolist(), scores.tolist(), strict=True))

    def _bm25_ranking(self, text: str, k: int, conditions: tuple[Condition, ...] = ()) -> list[tuple[int, float]]:
        match = fts5_query(text)
        return [] if match is None else self._store.bm25(match, k, conditions)

    def _hits_of(self, ranking: Sequence[tuple[int, float]]) -> list[Hit]:
        return self._hits([d for d, _ in ranking], [s for _, s in ranking])

    def _hits(self, doc_ids: list[int], scores: list[float]) -> list[Hit]:
        rows = self._store.documents_by_doc_ids(doc_ids)
        return [
            Hit(id=rows[d].ext_id, score=float(s), rank=r, text=rows[d].text, meta=json.loads(rows[d].meta_json))
            for r, (d, s) in enumerate(zip(doc_ids, scores, strict=True), start=1)
        ]

    def _require_documents(self) -> None:
        if not self._store.has_documents():
            raise EmptyIndexError(f"{self.path}: the index holds no documents")

    def _search_state(self) -> SearchState:
        """Resident search data matching this thread's snapshot; call inside a snapshot.

        Reloaded whenever anyone committed a write since it was loaded
        (``meta.write_counter``), whichever thread, connection or process.
        """
        key = self._store.write_counter()
        with self._cache_lock:
            if self._state is None or self._state_key != key:
                self._state = load_state(self._store, self._store.meta(), self._dim)
                self._state_key = key
            return self._state

    def _every_residual(self, state: BuiltState) -> ResidualRows:
        """All residual payloads in memory (exhaustive search on a built index); inside a snapshot."""
        key = self._store.write_counter()
        with self._cache_lock:
            if self._all_rows is None or self._all_rows[0] != key:
                self._all_rows = (
                    key,
                    ResidualRows.from_payloads(self._store.iter_token_payloads(), state.tables.codec),
                )
            return self._all_rows[1]

    def _fetch_rows(self, state: BuiltState) -> Callable[[np.ndarray], ResidualRows]:
        def fetch(doc_ids: np.ndarray) -> ResidualRows:
            return ResidualRows.from_payloads(self._store.token_payloads(doc_ids.tolist()), state.tables.codec)

        return fetch

    def info(self) -> dict[str, Any]:
        """Counts, sizes, model and versions, as a JSON-ready dict."""
        n_docs, n_tokens = self._store.counts()
        sizes = self._store.storage_bytes()
        meta = self._store.meta()
        stored = sizes["payload"] + sizes["codes"]
        return {
            "path": self.path,
            "documents": n_docs,
            "tokens": n_tokens,
            "model": meta.get("model_name"),
            "model_sha256": meta.get("model_sha256"),
            "dim": self._dim,
            "codec": meta.get("codec"),
            "nbits": _int_or_none(meta.get("nbits")),
            "residual_dim": _int_or_none(meta.get("residual_dim")),
            "n_centroids": _int_or_none(meta.get("n_centroids")),
            "pool_factor": int(meta.get("pool_factor", "1")),
            "skiplist": _describe_skiplist(meta.get("doc_skiplist")),
            "tokens_at_build": _int_or_none(meta.get("built_tokens")),
            "optimize_recommended": _staleness(meta, n_tokens) is not None,
            "optimize_reason": _staleness(meta, n_tokens),
            "bytes_per_token": round(stored / n_tokens, 2) if n_tokens else None,
            "file_bytes": sizes["file"],
            "payload_bytes": stored,
            "text_bytes": sizes["text"],
            "ivf_bytes": sizes["ivf"],
            "free_bytes": sizes["free"],
            "schema_version": SCHEMA_VERSION,
            "library_version": meta.get("library_version"),
            "sqlite_vec_version": meta.get("sqlite_vec_version"),
            "created_at": _iso(meta.get("created_at")),
            "updated_at": _iso(meta.get("updated_at")),
            "built_at": _iso(meta.get("built_at")),
        }

    def _meta_int(self, key: str) -> int:
        try:
            value = int(self._meta[key])
        except (KeyError, ValueError) as exc:
            raise CorruptIndexError(f"{self.path}: meta {key!r} missing or not an integer") from exc
        if value <= 0:
            raise CorruptIndexError(f"{self.path}: meta {key!r} must be positive")
        return value


def _staleness(meta: dict[str, str], n_tokens: int) -> str | None:
    """Why :meth:`Index.optimize` would retrain now, or None."""
    if meta.get("codec") != codec.RESIDUAL:
        return "not built yet" if n_tokens >= AUTO_BUILD_TOKENS else None
    built = int(meta.get("built_tokens", "0") or 0)
    if built and n_tokens >= RETRAIN_GROWTH * built:
        return f"grew {n_tokens / built:.1f}x since the last build"
    if built and n_tokens * RETRAIN_GROWTH <= built:
        return f"shrank to {n_tokens / built:.2f}x of the last build"
    return None


def _describe_skiplist(recorded: str | None) -> str | list[str]:
    if recorded is None:
        return "model default"
    tokens = json.loads(recorded)
    if tuple(tokens) == PUNCTUATION:
        return "punctuation"
    return tokens or "none"


def _int_or_none(value: str | None) -> int | None:
    return None if value is None else int(value)


def _iso(timestamp: str | None) -> str | None:
    if not timestamp:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(timestamp)))


__all__ = ["Index", "ModelIdentity", "open"]

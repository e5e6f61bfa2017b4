"""The public facade: :func:`open` and :class:`Index`.

An :class:`Index` wires one store to its parts and adds no logic of its own:
:class:`~lateint_lite.writer.Writer` (add, upsert, delete),
:class:`~lateint_lite.searcher.Searcher` (search modes, filters, fusion,
rerank), :class:`~lateint_lite.maintenance.Maintenance` (build, optimize,
automatic build), :class:`~lateint_lite.binding.EncoderBinding` (the text
encoder, checked against the file) and :class:`~lateint_lite.state.StateCache`
(configuration, codec and resident search data per committed generation).
Caller input is validated by :mod:`lateint_lite.requests` before any I/O.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .binding import EncoderBinding, identity_of, passage_window
from .boundary import guarded
from .builder import BuildReport
from .config import BuildOptions, IndexConfig
from .documents import Document, Hit
from .embedded_model import embed, extract, has_embedded_model
from .encoder import Encoder, OnnxEncoder, l2_normalize, resolve_skiplist
from .errors import CorruptIndexError, DocumentNotFoundError, InvalidInputError, NotAnIndexError
from .info import IndexInfo, describe
from .integrity import CheckReport, check_index
from .maintenance import Maintenance, OptimizeReport
from .manifest import ModelManifest, load_manifest
from .memory import return_freed_memory
from .migrations import migrate as migrate_store
from .migrations import require_current
from .origins import SuppliedVectors
from .progress import ProgressArg
from .requests import (
    SearchOptions,
    check_vectors,
    flag,
    normalize_id,
    normalize_ids,
    normalize_text,
    normalize_texts,
    optional_k,
    optional_seconds,
    positive_int,
    search_request,
    supplied_vectors,
    with_overrides,
)
from .schema import FileState
from .searcher import Searcher
from .shared_codec import SharedCodec, SharedQuery
from .state import StateCache
from .store import DEFAULT_BUSY_TIMEOUT_S, Store, sqlite_vec_version
from .writer import WRITE_CHUNK, Writer


@guarded
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
    passage_length: int | None = None,
    passage_overlap: int | None = None,
    max_passages: int | None = None,
    busy_timeout: float | None = DEFAULT_BUSY_TIMEOUT_S,
    embed_model: bool | None = None,
) -> Index:
    """Open (or with ``create=True`` create) an index file.

    ``model`` is a bundled model name or a model folder; ``encoder`` is any
    :class:`~lateint_lite.encoder.Encoder` (tests, custom models). Without
    either, the model recorded in the file is loaded on first use.
    ``auto_build`` compresses the index (:meth:`Index.build`) once an add
    leaves an unbuilt index with at least ``AUTO_BUILD_TOKENS`` tokens.
    ``skiplist`` (at creation: "punctuation", "none" or a list of tokens)
    drops those document tokens before storage, for every later add too;
    the default keeps the model manifest's choice. ``passage_length`` and
    ``passage_overlap`` (at creation, ONNX models only) set the document window:
    a longer document is split into passages of that many tokens sharing
    ``passage_overlap`` (default: the manifest's, or a quarter of the chosen
    length); ``max_passages`` (at creation) is how many passages a document keeps
    (default: the manifest's, 64; the rest of a longer one is not indexed, with a
    warning naming it). A file written by an older
    schema is migrated in one transaction (a read-only open refuses it with
    :class:`~lateint_lite.errors.MigrationRequiredError`).
    ``busy_timeout``: seconds a write waits for another connection's write (a
    build of a large index takes minutes; None waits forever) before
    :class:`~lateint_lite.errors.IndexBusyError`; reads never wait.
    ``embed_model`` (at creation): store the model's files in the index, used
    wherever the named model is not installed (default: only for a model given
    as a folder, so the index never depends on that folder's path again).
    """
    chosen_skiplist = resolve_skiplist(skiplist)
    window = passage_window(model, encoder, passage_length, passage_overlap, max_passages)
    if embed_model is not None and not create:
        raise InvalidInputError("embed_model applies when the index is created (later: export(with_model=True))")
    if embed_model and encoder is not None:
        raise InvalidInputError("embed_model stores an ONNX model folder; a custom encoder cannot be embedded")
    created = create and not os.path.exists(path)
    store = Store(path, create=create, readonly=readonly, busy_timeout=optional_seconds(busy_timeout, "busy_timeout"))
    try:
        if store.state is FileState.EMPTY:
            if not create:
                raise NotAnIndexError(f"{store.path}: empty file, not an index (create it with create=True)")
            config = IndexConfig(model=identity_of(model, encoder), skiplist=chosen_skiplist)
            config = replace(config, **window._asdict())
            store.initialize(config.dim, _initial_meta(), config.to_json())
            from_folder = encoder is None and config.model.source != config.model.name
            if embed_model or (embed_model is None and from_folder):
                with store.write():
                    embed(store, load_manifest(None if model is None else str(model)), config.model)
        elif chosen_skiplist is not None or any(v is not None for v in window):
            raise InvalidInputError("skiplist and the passage window can only be chosen when the index is created")
        else:
            if store.state is FileState.OLDER:
                if readonly:
                    require_current(store)
                migrate_store(store)
            missing = store.missing_tables()
            if missing:
                raise CorruptIndexError(f"{store.path}: the index is missing its {', '.join(missing)} table(s)")
            store.ensure_wal()
        return Index(store, model=model, encoder=encoder, threads=threads, auto_build=auto_build)
    except BaseException:
        store.close()
        if created:  # a failed creation leaves nothing behind
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(OSError):
                    os.remove(f"{os.fspath(path)}{suffix}")
        raise


@guarded
def migrate(path: str | os.PathLike[str]) -> list[int]:
    """Bring an index file written by an older schema to the current one, in one transaction.

    Returns the schema versions it was migrated from (empty when already current).
    """
    store = Store(path)
    try:
        return migrate_store(store) if store.state is FileState.OLDER else []
    finally:
        store.close()


def _seed(value: object) -> int:
    return BuildOptions(seed=value).validated(8).seed  # type: ignore[arg-type]


def _initial_meta() -> dict[str, str]:
    now = str(time.time())
    return {
        "library_version": __version__,
        "sqlite_vec_version": sqlite_vec_version(),
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
        self._cache = StateCache(store)
        with store.snapshot():
            config = self._cache.config()  # validated here, before anything else
        self._dim = config.dim
        self._encoder = EncoderBinding(
            config, store.path, model=model, encoder=encoder, threads=threads, embedded=self._embedded_model
        )
        self._writer = Writer(store, self._cache, self._encoder.get, self._dim)
        self._searcher = Searcher(store, self._cache, self._encoder.get)
        self._maintenance = Maintenance(store, self._cache, self._encoder.get)

    def _embedded_model(self) -> Path | None:
        """The folder of the model this file carries (extracted on first use), or None."""
        with self._store.snapshot():
            if not has_embedded_model(self._store):
                return None
            return extract(self._store, self._cache.config().model)

    # -- life cycle -----------------------------------------------------------------

    @property
    def path(self) -> str:
        return self._store.path

    @guarded
    def close(self) -> None:
        """Release the file; the Index must not be used afterwards."""
        self._cache.clear()
        self._store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @guarded
    def __len__(self) -> int:
        return self._store.counts()[0]

    @property
    @guarded
    def n_tokens(self) -> int:
        """Token vectors stored for all documents (every passage's)."""
        return self._store.counts()[1]

    @guarded
    def __contains__(self, doc_id: object) -> bool:
        return self._store.document_by_ext_id(normalize_id(doc_id)) is not None

    # -- model and configuration ------------------------------------------------------

    @property
    @guarded
    def dim(self) -> int:
        return self._dim

    @property
    @guarded
    def encoder(self) -> Encoder:
        """The text encoder, loaded on first use and checked against the file."""
        return self._encoder.get()

    @property
    @guarded
    def config(self) -> IndexConfig:
        """The index configuration of the latest committed generation."""
        with self._store.snapshot():
            return self._cache.config()

    @property
    @guarded
    def pool_factor(self) -> int:
        """Token pooling factor applied to stored documents (1: every token kept)."""
        return self.config.pool_factor

    @property
    @guarded
    def is_built(self) -> bool:
        """Whether documents are stored with the residual codec (after :meth:`build`)."""
        return self.config.is_built

    # -- writes ---------------------------------------------------------------------

    @guarded
    def add(
        self, docs: Iterable[Mapping[str, Any]], *, progress: ProgressArg = False, batch_size: int = WRITE_CHUNK
    ) -> list[str]:
        """Encode and store documents in one transaction; returns their ids.

        Each document is ``{"id": str, "text": str, "meta": dict?, "vectors": array?}``;
        ``vectors`` (n, dim) skips the text encoder. Ids already present are an
        error (see :meth:`upsert`). A built index encodes new documents with its
        existing centroids.
        """
        written = self._writer.write(docs, replace=False, progress=progress, batch_size=batch_size)
        self._after_write(progress)
        return written

    @guarded
    def upsert(
        self, docs: Iterable[Mapping[str, Any]], *, progress: ProgressArg = False, batch_size: int = WRITE_CHUNK
    ) -> list[str]:
        """Like :meth:`add`, but documents whose id exists replace the stored ones.

        The old text, metadata, token payload, inverted-list entries, full-text
        entry and pooled vector go in the same transaction as the new ones arrive.
        """
        written = self._writer.write(docs, replace=True, progress=progress, batch_size=batch_size)
        self._after_write(progress)
        return written

    def _after_write(self, progress: ProgressArg) -> None:
        if self._auto_build and self._maintenance.build_due():
            # a first build reads the stored int8 tokens, never the model: free the model and the
            # write's buffers first (`lateint add` of SciFact peaked 96 MiB lower); the next
            # encode loads the model again
            self._encoder.release()
            return_freed_memory()
            self._maintenance.auto_build(progress=progress)

    @guarded
    def delete(self, ids: Iterable[object], *, missing_ok: bool = False) -> int:
        """Delete documents by id in one transaction; returns how many were removed.

        Unknown ids raise :class:`DocumentNotFoundError` (nothing is deleted)
        unless ``missing_ok``.
        """
        return self._writer.delete(ids, missing_ok=missing_ok)

    # -- maintenance ----------------------------------------------------------------

    @guarded
    def build(
        self,
        options: BuildOptions | None = None,
        *,
        vectors: SuppliedVectors | None = None,
        lossy: bool = False,
        progress: ProgressArg = False,
        compact: bool = True,
        codec: SharedCodec | None = None,
        **overrides: Any,
    ) -> BuildReport:
        """Compress the index: train centroids + residual codec, re-encode, build inverted lists.

        ``options`` (a :class:`~lateint_lite.config.BuildOptions`) and/or keyword
        overrides: ``nbits`` (1, 2, 4; default 2), ``residual_dim`` (default 128;
        None keeps every direction), ``n_centroids`` (default PLAID's rule),
        ``seed`` and ``pool_factor`` (> 1 keeps about 1/pool_factor of each
        document's tokens, now and for every later add; it can be set once).
        Runs in one transaction. Every document is encoded from its best source,
        never from already-quantized codes: the stored int8 tokens of an index not
        yet built, else its text encoded again by the index's model. Documents added
        as precomputed vectors have no text: pass their ``vectors`` again (a mapping
        id -> array, or a function ids -> arrays), or set ``lossy=True`` to re-encode
        their stored codes (counted in ``info().lossy_generations``); otherwise a
        rebuild raises :class:`~lateint_lite.errors.RebuildSourceError`. The same
        options and seed rebuild the same index. ``compact`` VACUUMs afterwards when
        over a quarter of the file is free pages. ``codec`` (a
        :class:`~lateint_lite.shared_codec.SharedCodec`, e.g. another index's
        :meth:`shared_codec`) skips training: every document is encoded with that
        codec, so scores compare with those of every index built with it (shards);
        its parameters replace ``nbits``/``residual_dim``/``n_centroids``/``seed``.
        An index built with a shared codec refuses a build of its own.
        """
        if codec is not None and not isinstance(codec, SharedCodec):
            raise InvalidInputError(f"codec must be a SharedCodec, got {type(codec).__name__}")
        chosen = with_overrides(BuildOptions, options, overrides).validated(self._dim)
        return self._maintenance.build(
            chosen,
            vectors=supplied_vectors(vectors),
            lossy=flag(lossy, "lossy"),
            progress=progress,
            compact=compact,
            shared=codec,
        )

    @guarded
    def shared_codec(self) -> SharedCodec:
        """This built index's codec in stored form, to build other indexes (shards) with the very same
        quantization (``build(codec=...)``)."""
        with self._store.snapshot():
            config = self._cache.config()
            seed = config.build.seed if config.build is not None else 0
            cosine = config.build.centroid_cosine if config.build is not None else None
            return SharedCodec.from_tables(
                config.codec, self._store.centroid_rows(), self._store.array_rows(), seed, cosine
            )

    @guarded
    def training_sample(self, tokens: int, heldout_tokens: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Token vectors of random documents, from the source a build would use: (about ``tokens``
        for training, about ``heldout_tokens`` held out). For training a codec shared by shards
        (:func:`~lateint_lite.shared_codec.train_shared_codec`)."""
        return self._maintenance.sample(
            positive_int(tokens, "tokens"), positive_int(heldout_tokens, "heldout_tokens"), _seed(seed)
        )

    @guarded
    def optimize(
        self,
        *,
        retrain: bool = False,
        vectors: SuppliedVectors | None = None,
        lossy: bool = False,
        progress: ProgressArg = False,
    ) -> OptimizeReport:
        """Maintenance: build or retrain when due (or asked), else rebuild the lists; rebuild the
        full-text index; then VACUUM.

        An unbuilt index is built once it holds ``AUTO_BUILD_TOKENS`` tokens; a
        built one is retrained (same codec parameters, pooling and seed) when its
        token count changed by ``RETRAIN_GROWTH``x since the last build or when
        ``retrain`` is set, from the same sources as :meth:`build` (``vectors``
        and ``lossy`` as there); otherwise the inverted lists are rebuilt from
        the stored codes.
        """
        return self._maintenance.optimize(
            retrain=flag(retrain, "retrain"),
            vectors=supplied_vectors(vectors),
            lossy=flag(lossy, "lossy"),
            progress=progress,
        )

    @guarded
    def export(self, path: str | os.PathLike[str], *, with_model: bool = False) -> str:
        """Write a compact copy of the index to ``path`` (which must not exist; missing parent
        folders are created) for shipping.

        The copy is one file (no -wal/-shm), VACUUMed, in rollback-journal mode so
        it opens read-only even from read-only media; reopening it for writing
        works too. ``with_model`` stores the model's files in the copy (unless this
        index carries them already), so it opens and searches where the model is
        not installed. Returns the path.
        """
        with_model = flag(with_model, "with_model")
        manifest = self._model_manifest() if with_model else None
        target = str(path)
        if os.path.exists(target):
            raise InvalidInputError(f"{target}: already exists")
        parent = os.path.dirname(os.path.abspath(target))
        if os.path.exists(parent) and not os.path.isdir(parent):
            raise InvalidInputError(f"{target}: {parent} is not a directory")
        os.makedirs(parent, exist_ok=True)
        self._store.export_copy(target)
        if manifest is not None:
            copy = Store(target)
            try:
                with copy.write():
                    embed(copy, manifest, self.config.model)
            except BaseException:
                copy.close()
                with contextlib.suppress(OSError):
                    os.remove(target)
                raise
            copy.close()
        return target

    def _model_manifest(self) -> ModelManifest | None:
        """The manifest of the model to embed in an export; None when this file carries it already."""
        with self._store.snapshot():
            if has_embedded_model(self._store):
                return None
        encoder = self._encoder.get()
        if not isinstance(encoder, OnnxEncoder):
            raise InvalidInputError("a custom encoder cannot be embedded: export(with_model=True) needs an ONNX model")
        return load_manifest(encoder.manifest.root)

    # -- reads ----------------------------------------------------------------------

    @guarded
    def get(self, doc_id: object) -> Document:
        """The stored document with this id."""
        ext_id = normalize_id(doc_id)
        row = self._store.document_by_ext_id(ext_id)
        if row is None:
            raise DocumentNotFoundError(f"no document with id {ext_id!r}")
        return Document(id=row.ext_id, text=row.text, meta=json.loads(row.meta_json), n_tokens=row.n_tokens)

    @guarded
    def ids(self) -> list[str]:
        """Every document id, in insertion order."""
        return list(self._store.iter_ext_ids())

    @guarded
    def search(self, query: str, k: int = 10, *, options: SearchOptions | None = None, **overrides: Any) -> list[Hit]:
        """The k best documents for ``query``.

        Options (a :class:`~lateint_lite.requests.SearchOptions` and/or keyword
        overrides): ``mode`` "maxsim" (default) scores by late interaction: PLAID
        pruning then an exact rerank on a built index (``ncells``,
        ``threshold`` and ``ndocs`` override PLAID's defaults for k), or
        exhaustive MaxSim with ``exact=True`` or before :meth:`build`. "bm25"
        ranks by SQLite FTS5 BM25 over the text. "hybrid" fuses the MaxSim and
        BM25 rankings (``fusion="score"``, the default: sum of min-max
        normalized scores; "rrf": reciprocal-rank fusion). "pooled" is the
        single-vector baseline: a sqlite-vec KNN over mean-pooled document
        vectors. ``where`` filters on metadata (see :mod:`lateint_lite.filters`),
        applied while candidates are generated.
        """
        text = normalize_text(query, "query")
        return self._searcher.search_texts([text], search_request(k, options, overrides))[0]

    @guarded
    def search_many(
        self, queries: Sequence[str], k: int = 10, *, options: SearchOptions | None = None, **overrides: Any
    ) -> list[list[Hit]]:
        """:meth:`search` for many queries, encoded in one batch; one hit list per query."""
        texts = normalize_texts(queries)
        return self._searcher.search_texts(texts, search_request(k, options, overrides))

    @guarded
    def search_vectors(
        self, query_vectors: np.ndarray, k: int = 10, *, options: SearchOptions | None = None, **overrides: Any
    ) -> list[Hit]:
        """MaxSim search with precomputed query token vectors (n, dim), L2-normalized here."""
        request = search_request(k, options, overrides)
        if request.mode != "maxsim":
            raise InvalidInputError("search_vectors scores by MaxSim only (mode='maxsim')")
        return self._searcher.search_vectors(check_vectors(query_vectors, self._dim, "query vectors"), request)

    @guarded
    def prepare_shared_query(self, query_vectors: np.ndarray) -> SharedQuery:
        """Query token vectors prepared once for every index that shares this index's codec (the
        shards of one sharded index): pass it to :meth:`search_prepared` of each."""
        fingerprint = self.config.shared_codec
        if fingerprint is None:
            raise InvalidInputError(f"{self.path} has no shared codec (build it through a sharded index)")
        vectors = l2_normalize(check_vectors(query_vectors, self._dim, "query vectors"))
        return SharedQuery(fingerprint, vectors, self._searcher.prepare(vectors))

    @guarded
    def search_prepared(
        self, query: SharedQuery, k: int = 10, *, options: SearchOptions | None = None, **overrides: Any
    ) -> list[Hit]:
        """:meth:`search_vectors` with a query from :meth:`prepare_shared_query` of an index that
        shares this one's codec (refused otherwise: the prepared tables would not fit)."""
        if not isinstance(query, SharedQuery):
            raise InvalidInputError(f"query must be a SharedQuery, got {type(query).__name__}")
        if query.codec_fingerprint != self.config.shared_codec:
            raise InvalidInputError(f"{self.path}: the query was prepared for another codec")
        request = search_request(k, options, overrides)
        if request.mode != "maxsim":
            raise InvalidInputError("search_prepared scores by MaxSim only (mode='maxsim')")
        return self._searcher.search_vectors(query.vectors, request, query.prepared)  # type: ignore[arg-type]

    @guarded
    def rerank(self, query: str, ids: Iterable[object], k: int | None = None) -> list[Hit]:
        """Exact MaxSim of ``query`` against the given documents, best first.

        Late interaction as a second stage behind any retriever: ``ids`` come
        from elsewhere (BM25, a vector store...). Unknown ids raise
        :class:`DocumentNotFoundError`; ``k`` keeps the best k (default all).
        Scores equal those of :meth:`search` (the same scorer).
        """
        text = normalize_text(query, "query")
        wanted = normalize_ids(ids)
        return self._searcher.rerank(text, wanted, optional_k(k))

    @guarded
    def warm_up(self) -> None:
        """Load the codec and the resident search data now, so the first search does not wait.

        A built index loads its centroid tables, codes and inverted lists; an
        unbuilt one every token vector. Later writes (from any process) make the
        next search reload what changed.
        """
        with self._store.snapshot():
            self._cache.resident()

    @guarded
    def check(self) -> CheckReport:
        """Verify the index without changing it: SQLite's structure, the full-text index (on a
        writable index), documents / tokens / pooled vectors pairing up, codec tables, every
        document's tokens, and the inverted lists against the codes. ``report.ok`` is True when
        nothing is wrong; ``report.problems`` lists what is (``optimize()`` rebuilds lists)."""
        return check_index(self._store)

    @guarded
    def info(self) -> IndexInfo:
        """Counts, sizes, model, codec and versions (``.to_dict()`` for JSON)."""
        with self._store.snapshot():
            return describe(self._store, self._cache.config())


__all__ = ["Index", "migrate", "open"]

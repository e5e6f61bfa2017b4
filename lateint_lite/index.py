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
from .encoder import Encoder, OnnxEncoder, l2_normalize
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
from .manifest import load_manifest
from .schema import SCHEMA_VERSION, FileState
from .search import exhaustive_search
from .store import NewDocument, Store, sqlite_vec_version
from .tokens import TokenMatrix

ProgressArg = bool | Callable[[int], None]
SEARCH_MODES = ("maxsim", "pooled")
WRITE_CHUNK = 64


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
) -> Index:
    """Open (or with ``create=True`` create) an index file.

    ``model`` is a bundled model name or a model folder; ``encoder`` is any
    :class:`~lateint_lite.encoder.Encoder` (tests, custom models). Without
    either, the model recorded in the file is loaded on first use.
    """
    store = Store(path, create=create, readonly=readonly)
    try:
        if store.state is FileState.EMPTY:
            if not create:
                raise NotAnIndexError(f"{store.path}: empty file, not an index (create it with create=True)")
            identity = _identity_of(model, encoder)
            store.initialize(identity.dim, _initial_meta(identity))
        return Index(store, model=model, encoder=encoder, threads=threads)
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
    ) -> None:
        self._store = store
        self._meta = store.meta()
        self._dim = self._meta_int("dim")
        if self._meta.get("codec") not in codec.CODECS:
            raise CorruptIndexError(f"{store.path}: unknown codec {self._meta.get('codec')!r}")
        self._model = model
        self._threads = threads
        self._encoder: Encoder | None = None
        self._encoder_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._matrix: TokenMatrix | None = None
        self._matrix_key: tuple[int, int] | None = None
        self._generation = 0
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
        self._matrix = None
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
        encoder = OnnxEncoder.from_model(spec, threads=self._threads)
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
        ``vectors`` (n, dim) skips the text encoder. Ids already present are an error.
        """
        items = prepare_documents(docs, self._dim)
        if not items:
            return []
        needs_encoder = any(item.vectors is None for item in items)
        encoder = self.encoder if needs_encoder else None
        with _progress_bar(progress, len(items), "encoding") as tick, self._store.write():
            taken = self._store.existing_ext_ids([item.id for item in items])
            if taken:
                raise DuplicateIdError(f"{len(taken)} id(s) already in the index, e.g. {sorted(taken)[0]!r}")
            for start in range(0, len(items), max(1, batch_size)):
                chunk = items[start : start + max(1, batch_size)]
                vectors = self._vectors_for(chunk, encoder)
                self._store.insert_documents(self._rows(chunk, vectors))
                tick(len(chunk))
            self._store.set_meta({"updated_at": str(time.time())})
        self._generation += 1
        return [item.id for item in items]

    def _vectors_for(self, chunk: Sequence[DocumentInput], encoder: Encoder | None) -> list[np.ndarray]:
        pending = [i for i, item in enumerate(chunk) if item.vectors is None]
        encoded = encoder.encode_documents([chunk[i].text for i in pending]) if encoder and pending else []
        out: list[np.ndarray] = [np.empty(0)] * len(chunk)
        for i, vectors in zip(pending, encoded, strict=True):
            out[i] = check_vectors(vectors, self._dim, f"encoder output for {chunk[i].id!r}")
        for i, item in enumerate(chunk):
            if item.vectors is not None:
                out[i] = l2_normalize(item.vectors)
        return out

    def _rows(self, chunk: Sequence[DocumentInput], vectors: Sequence[np.ndarray]) -> list[NewDocument]:
        rows = []
        for item, matrix in zip(chunk, vectors, strict=True):
            pooled = l2_normalize(matrix.mean(axis=0, keepdims=True))[0]
            rows.append(
                NewDocument(
                    ext_id=item.id,
                    text=item.text,
                    meta_json=item.meta_json,
                    n_tokens=int(matrix.shape[0]),
                    codes=None,
                    payload=codec.encode_int8(matrix),
                    pooled=pooled.astype(np.float32).tobytes(),
                )
            )
        return rows

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
            removed = self._store.delete_documents([i for i in wanted if i in present])
            self._store.set_meta({"updated_at": str(time.time())})
        self._generation += 1
        return len(removed)

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

    def search(self, query: str, k: int = 10, *, mode: str = "maxsim") -> list[Hit]:
        """The k best documents for ``query``.

        ``mode="maxsim"`` scores by late interaction; ``mode="pooled"`` is the
        single-vector baseline: a sqlite-vec KNN over mean-pooled document vectors.
        """
        text = normalize_text(query, "query")
        k = check_k(k)
        if mode not in SEARCH_MODES:
            raise InvalidInputError(f"mode must be one of {', '.join(SEARCH_MODES)}, got {mode!r}")
        self._require_documents()
        vectors = self.encoder.encode_queries([text])[0]
        if mode == "pooled":
            return self._search_pooled(vectors, k)
        return self.search_vectors(vectors, k)

    def search_vectors(self, query_vectors: np.ndarray, k: int = 10) -> list[Hit]:
        """MaxSim search with precomputed query token vectors (n, dim), L2-normalized here."""
        k = check_k(k)
        query = l2_normalize(check_vectors(query_vectors, self._dim, "query vectors"))
        with self._store.snapshot():
            self._require_documents()
            doc_ids, scores = exhaustive_search(query, self._token_matrix(), k)
            return self._hits(doc_ids.tolist(), scores.tolist())

    def _search_pooled(self, query_vectors: np.ndarray, k: int) -> list[Hit]:
        pooled = l2_normalize(query_vectors.mean(axis=0, keepdims=True))[0]
        with self._store.snapshot():
            found = self._store.pooled_knn(pooled, k)
            return self._hits([d for d, _ in found], [1.0 - dist for _, dist in found])

    def _hits(self, doc_ids: list[int], scores: list[float]) -> list[Hit]:
        rows = self._store.documents_by_doc_ids(doc_ids)
        return [
            Hit(id=rows[d].ext_id, score=float(s), rank=r, text=rows[d].text, meta=json.loads(rows[d].meta_json))
            for r, (d, s) in enumerate(zip(doc_ids, scores, strict=True), start=1)
        ]

    def _require_documents(self) -> None:
        if self._store.counts()[0] == 0:
            raise EmptyIndexError(f"{self.path}: the index holds no documents")

    def _token_matrix(self) -> TokenMatrix:
        """All token vectors in memory, reloaded when this or another connection wrote."""
        key = (self._store.data_version(), self._generation)
        with self._cache_lock:
            if self._matrix is None or self._matrix_key != key:
                self._matrix = TokenMatrix.from_payloads(self._store.iter_token_payloads(), self._dim)
                self._matrix_key = key
            return self._matrix

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
            "bytes_per_token": round(stored / n_tokens, 2) if n_tokens else None,
            "file_bytes": sizes["file"],
            "payload_bytes": stored,
            "text_bytes": sizes["text"],
            "schema_version": SCHEMA_VERSION,
            "library_version": meta.get("library_version"),
            "sqlite_vec_version": meta.get("sqlite_vec_version"),
            "created_at": _iso(meta.get("created_at")),
            "updated_at": _iso(meta.get("updated_at")),
        }

    def _meta_int(self, key: str) -> int:
        try:
            value = int(self._meta[key])
        except (KeyError, ValueError) as exc:
            raise CorruptIndexError(f"{self.path}: meta {key!r} missing or not an integer") from exc
        if value <= 0:
            raise CorruptIndexError(f"{self.path}: meta {key!r} must be positive")
        return value


def _iso(timestamp: str | None) -> str | None:
    if not timestamp:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(timestamp)))


class _progress_bar:
    """tqdm bar (progress=True), a caller's callback, or nothing."""

    def __init__(self, progress: ProgressArg, total: int, desc: str) -> None:
        self._bar: Any = None
        self._callback: Callable[[int], None] | None = None
        if callable(progress):
            self._callback = progress
        elif progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="doc")
            self._callback = self._bar.update

    def __enter__(self) -> Callable[[int], None]:
        return self._callback or (lambda n: None)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


__all__ = ["Index", "ModelIdentity", "open"]

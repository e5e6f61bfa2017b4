"""What :meth:`Index.info` reports: counts, sizes, model, codec, versions, staleness."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from .config import INT8, IndexConfig
from .encoder import PUNCTUATION
from .maintenance import staleness
from .schema import SCHEMA_VERSION
from .store import ORIGIN_VECTORS, Store


@dataclass(frozen=True)
class IndexInfo:
    """A snapshot of an index's counts, sizes and configuration (``to_dict()`` for JSON)."""

    path: str
    documents: int
    tokens: int
    model: str
    model_sha256: str
    model_embedded_bytes: int  # bytes of model files the index carries (0: the model must be installed)
    shared_codec: str | None  # fingerprint of the codec this file shares with other shards, or None
    dim: int
    codec: str
    nbits: int | None
    residual_dim: int | None
    n_centroids: int | None
    pool_factor: int
    skiplist: str | list[str]
    passage_window: str  # "model default", or "<length> tokens, <overlap> shared" chosen at creation
    tokens_at_build: int | None
    centroid_cosine: float | None  # mean token-to-centroid cosine at the last build (how much codes alone explain)
    lossy_generations: int  # rebuilds since the last lossless one that re-encoded stored codes
    vector_documents: int  # documents added as precomputed vectors (no text to re-encode)
    split_documents: int  # documents stored as several passages (longer than the model's document length)
    segments: int  # segments the documents are in (writes append one; merges and optimize() join them)
    deleted_in_segments: int  # deleted documents whose list entries wait for a merge (tombstones)
    optimize_recommended: bool
    optimize_reason: str | None
    bytes_per_token: float | None
    file_bytes: int
    payload_bytes: int
    text_bytes: int
    ivf_bytes: int
    free_bytes: int
    schema_version: int
    library_version: str | None
    sqlite_vec_version: str | None
    created_at: str | None
    updated_at: str | None
    built_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe(store: Store, config: IndexConfig) -> IndexInfo:
    """The :class:`IndexInfo` of the snapshot being read; call inside a snapshot."""
    n_docs, n_tokens = store.counts()
    sizes = store.storage_bytes()
    meta = store.meta()
    stored = sizes["payload"] + sizes["codes"]
    segments = store.segments()
    deleted = sum(s.tombstones for s in segments)
    reason = staleness(config, n_tokens) or _tombstone_reason(deleted, n_docs)
    codec = config.codec
    return IndexInfo(
        path=store.path,
        documents=n_docs,
        tokens=n_tokens,
        model=config.model.name,
        model_sha256=config.model.fingerprint,
        model_embedded_bytes=sum(size for _, _, size in store.model_files()),
        shared_codec=config.shared_codec,
        dim=config.dim,
        codec=codec.kind,
        nbits=codec.nbits,
        residual_dim=codec.residual_dim,
        n_centroids=codec.n_centroids,
        pool_factor=config.pool_factor,
        skiplist=_describe_skiplist(config.skiplist),
        passage_window=_describe_window(config),
        tokens_at_build=None if codec.kind == INT8 or config.build is None else config.build.tokens,
        centroid_cosine=None if config.build is None else config.build.centroid_cosine,
        lossy_generations=config.lossy_generations,
        vector_documents=store.origin_counts().get(ORIGIN_VECTORS, 0),
        split_documents=store.count_split_documents(),
        segments=len(segments),
        deleted_in_segments=deleted,
        optimize_recommended=reason is not None,
        optimize_reason=reason,
        bytes_per_token=round(stored / n_tokens, 2) if n_tokens else None,
        file_bytes=sizes["file"],
        payload_bytes=stored,
        text_bytes=sizes["text"],
        ivf_bytes=sizes["ivf"],
        free_bytes=sizes["free"],
        schema_version=SCHEMA_VERSION,
        library_version=meta.get("library_version"),
        sqlite_vec_version=meta.get("sqlite_vec_version"),
        created_at=_iso(meta.get("created_at")),
        updated_at=_iso(meta.get("updated_at")),
        built_at=None if config.build is None else _iso(str(config.build.at)),
    )


#: info() recommends optimize() once this share of the listed documents is deleted (tombstones).
TOMBSTONE_SHARE = 0.25


def _tombstone_reason(deleted: int, live: int) -> str | None:
    """Why optimize() would pay off for deletes: lists that still name many deleted documents
    make every search skip them (optimize() merges them away)."""
    if deleted and deleted >= TOMBSTONE_SHARE * (deleted + live):
        return f"{deleted} deleted documents are still in the inverted lists"
    return None


def _describe_window(config: IndexConfig) -> str:
    window = (
        "model default"
        if config.passage_length is None
        else (f"{config.passage_length} tokens, {config.passage_overlap} shared")
    )
    return window if config.max_passages is None else f"{window}, at most {config.max_passages} passages"


def _describe_skiplist(skiplist: tuple[str, ...] | None) -> str | list[str]:
    if skiplist is None:
        return "model default"
    if skiplist == PUNCTUATION:
        return "punctuation"
    return list(skiplist) or "none"


def _iso(timestamp: str | None) -> str | None:
    if not timestamp:
        return None
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(timestamp)))
    except (ValueError, OverflowError, OSError):
        return None

"""A sharded index on one machine: N ordinary index files behind one manifest, one codec.

:func:`open_sharded` opens (or creates) a :class:`ShardedIndex`. Writes go to the
shard each document's id routes to (:func:`~lateint_lite.sharding.shard_of`);
each shard's part of a write is one transaction in that shard, so a write that
spans shards is atomic per shard, not across them (a failure names what was
written). :meth:`ShardedIndex.build` trains one codec on a sample drawn from
every shard in proportion to its tokens and builds every shard with it, so MaxSim
scores compare across shards and the merged top-k of exact search equals that of
one index holding every document with the same codec. A search encodes the query
once, asks every shard (a thread per shard), and merges; a shard that fails or
runs past ``timeout`` is reported in :attr:`ShardedHits.failed` and the answer
comes from the others. :mod:`lateint_lite.distributed` runs the same steps on Ray.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np

from .boundary import guarded
from .builder import HELDOUT_TOKENS, sample_tokens_for
from .config import BuildOptions
from .documents import Document, Hit
from .encoder import Encoder
from .errors import CorruptIndexError, DocumentNotFoundError, DuplicateIdError, InvalidInputError, LateIntError
from .fusion import normalized_score_fusion, reciprocal_rank_fusion
from .index import Index
from .index import open as open_index
from .progress import ProgressArg
from .requests import (
    SearchOptions,
    SearchRequest,
    check_vectors,
    normalize_id,
    normalize_ids,
    normalize_text,
    normalize_texts,
    positive_int,
    prepare_documents,
    search_request,
    with_overrides,
)
from .sharding import ShardManifest, check_shard_count, shard_file_names, shard_of
from .shared_codec import SharedCodec, SharedQuery, train_shared_codec
from .writer import WRITE_CHUNK

T = TypeVar("T")
#: Seconds a search waits for a shard by default before reporting it as timed out.
DEFAULT_SHARD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ShardFailure:
    """A shard that did not answer: its number, file and why (one line)."""

    shard: int
    path: str
    error: str


@dataclass(frozen=True)
class ShardedHits(Sequence[Hit]):
    """The merged hits of a sharded search (a sequence of :class:`Hit`), and the shards that failed."""

    hits: list[Hit]
    shards: int
    failed: tuple[ShardFailure, ...] = field(default=())

    @property
    def complete(self) -> bool:
        """Whether every shard answered."""
        return not self.failed

    def __len__(self) -> int:
        return len(self.hits)

    def __getitem__(self, index: Any) -> Any:
        return self.hits[index]

    def __iter__(self) -> Iterator[Hit]:
        return iter(self.hits)


@dataclass(frozen=True)
class ShardAnswer:
    """One shard's rankings for one query: MaxSim and/or BM25 hits, best first."""

    dense: list[Hit] | None = None
    lexical: list[Hit] | None = None


@dataclass(frozen=True)
class ShardedBuildReport:
    """What :meth:`ShardedIndex.build` did."""

    codec_fingerprint: str
    sample_tokens: int
    n_centroids: int
    documents: int
    tokens: int
    shard_seconds: tuple[float, ...]


# -- per-shard work and merging (shared with the Ray actors) -------------------------------------


def search_options(request_options: SearchOptions | None, overrides: Mapping[str, Any]) -> SearchOptions:
    """Validated options for a sharded search (pooled mode is per file only)."""
    options = with_overrides(SearchOptions, request_options, overrides)
    if options.mode == "pooled":
        raise InvalidInputError("pooled search is per file; a sharded index searches maxsim, bm25 or hybrid")
    return options


def answer_query(
    index: Index,
    text: str | None,
    vectors: np.ndarray | None,
    options: SearchOptions,
    k: int,
    prepared: SharedQuery | None = None,
) -> ShardAnswer:
    """What one shard contributes to a search: its MaxSim top ``depth`` (from the query vectors
    encoded once by the caller, and ``prepared`` once for every shard when given) and/or its BM25
    top ``depth`` (from the text)."""
    request = search_request(k, options)
    dense = lexical = None
    if options.mode in ("maxsim", "hybrid") and vectors is not None:
        maxsim = replace(options, mode="maxsim")
        if prepared is not None:
            dense = index.search_prepared(prepared, request.depth, options=maxsim)
        else:
            dense = index.search_vectors(vectors, request.depth, options=maxsim)
    if options.mode in ("bm25", "hybrid") and text is not None:
        lexical = index.search(text, request.depth, options=replace(options, mode="bm25"))
    return ShardAnswer(dense=dense, lexical=lexical)


def prepare_once(shards: Sequence[Index], vectors: np.ndarray | None) -> SharedQuery | None:
    """The query prepared for the codec the shards share (centroid scores and PLAID's first stage
    computed once, not once per shard); None before the shards are built or when no shard can."""
    if vectors is None:
        return None
    for shard in shards:
        try:
            return shard.prepare_shared_query(vectors) if shard.config.shared_codec else None
        except LateIntError:
            continue  # that shard is failing; its own answer will report it
    return None


def merge_answers(answers: Sequence[ShardAnswer], request: SearchRequest) -> list[Hit]:
    """The merged top k: MaxSim and BM25 rankings merged by score across shards (the shards share
    one codec, so MaxSim scores compare), then fused for hybrid exactly as one index fuses."""
    dense = _best([a.dense for a in answers if a.dense is not None], request.depth)
    lexical = _best([a.lexical for a in answers if a.lexical is not None], request.depth)
    if request.mode == "maxsim":
        ranked = [(h, h.score) for h in dense[: request.k]]
    elif request.mode == "bm25":
        ranked = [(h, h.score) for h in lexical[: request.k]]
    else:
        by_id = {h.id: h for h in lexical} | {h.id: h for h in dense}  # MaxSim explains a hit first
        rankings = [[(h.id, h.score) for h in dense], [(h.id, h.score) for h in lexical]]
        fused = (
            reciprocal_rank_fusion(rankings)
            if request.fusion == "rrf"
            else normalized_score_fusion(rankings, [1.0, 1.0])
        )
        ranked = [(by_id[i], s) for i, s in fused[: request.k]]
    return [replace(hit, score=float(score), rank=rank) for rank, (hit, score) in enumerate(ranked, start=1)]


def _best(lists: Sequence[list[Hit]], n: int) -> list[Hit]:
    """The n best hits of several rankings, by score then id (deterministic across shard orders)."""
    merged = [hit for hits in lists for hit in hits]
    merged.sort(key=lambda h: (-h.score, h.id))
    return merged[:n]


def fan_out(
    calls: Sequence[Callable[[], T]], paths: Sequence[str], timeout: float | None, pool: ThreadPoolExecutor
) -> tuple[list[T | None], list[ShardFailure]]:
    """Run one call per shard on ``pool``; (results, None where failed), and the failures. A call
    past ``timeout`` (seconds for the whole fan-out) is reported and left to finish on its own."""
    results: list[T | None] = [None] * len(calls)
    failures: list[ShardFailure] = []
    futures = [pool.submit(call) for call in calls]
    deadline = None if timeout is None else time.monotonic() + timeout
    for number, future in enumerate(futures):
        try:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            results[number] = future.result(timeout=left)
        except FutureTimeout:
            future.cancel()
            failures.append(ShardFailure(number, paths[number], f"no answer within {timeout} s"))
        except LateIntError as exc:
            failures.append(ShardFailure(number, paths[number], f"{type(exc).__name__}: {exc}"))
    return results, failures


def shard_samples(token_counts: Sequence[int], options: BuildOptions) -> tuple[int, list[tuple[int, int]]]:
    """(total tokens, per shard (training tokens, held-out tokens) to draw), in proportion to its tokens."""
    total = sum(token_counts)
    if total == 0:
        raise InvalidInputError("nothing to build: every shard is empty")
    target = sample_tokens_for(total, options.n_centroids)
    plan = [
        (math.ceil(target * n / total), math.ceil(HELDOUT_TOKENS * n / total)) if n else (0, 0) for n in token_counts
    ]
    return total, plan


# -- the local sharded index ----------------------------------------------------------------------


class _SharedEncoder:
    """Every shard's encoder: the first shard's, loaded once on first use (shards share one model)."""

    def __init__(self, first: Index) -> None:
        identity = first.config.model
        self._first = first
        self.name, self.fingerprint, self.dim = identity.name, identity.fingerprint, identity.dim

    def __getattr__(self, name: str) -> Any:  # encode_documents, encode_queries, spans... of the real one
        return getattr(self._first.encoder, name)


@guarded
def open_sharded(
    path: str | os.PathLike[str],
    *,
    create: bool = False,
    shards: int | None = None,
    model: str | os.PathLike[str] | None = None,
    encoder: Encoder | None = None,
    readonly: bool = False,
    threads: int | None = None,
) -> ShardedIndex:
    """Open the sharded index whose manifest is ``path`` (with ``create=True`` and ``shards=N``:
    create the manifest and N empty shard files beside it, named after it)."""
    manifest_path = os.fspath(path)
    if create and not os.path.exists(manifest_path):
        return ShardedIndex._create(manifest_path, check_shard_count(shards), model, encoder, threads)
    if shards is not None and not create:
        raise InvalidInputError("shards= applies only when the sharded index is created")
    manifest = ShardManifest.read(manifest_path)
    return ShardedIndex(manifest_path, manifest, model=model, encoder=encoder, readonly=readonly, threads=threads)


class ShardedIndex:
    """Several index files searched as one; use :func:`open_sharded`."""

    def __init__(
        self,
        path: str,
        manifest: ShardManifest,
        *,
        model: str | os.PathLike[str] | None = None,
        encoder: Encoder | None = None,
        readonly: bool = False,
        threads: int | None = None,
    ) -> None:
        self._path = path
        self._manifest = manifest
        self._paths = manifest.shard_paths(path)
        self._shards: list[Index] = []
        self._pool: ThreadPoolExecutor | None = None  # one thread per shard, made on the first search
        self._pool_lock = threading.Lock()
        try:
            for number, shard_path in enumerate(self._paths):
                if not os.path.isfile(shard_path):
                    raise CorruptIndexError(f"{path}: shard {number} ({shard_path}) is missing")
                shared = encoder if encoder is not None or not self._shards else _SharedEncoder(self._shards[0])
                self._shards.append(
                    open_index(
                        shard_path,
                        model=model if number == 0 else None,
                        encoder=shared,
                        readonly=readonly,
                        threads=threads,
                        auto_build=False,
                    )
                )
            self._check_shards()
        except BaseException:
            self.close()
            raise

    @classmethod
    def _create(
        cls,
        path: str,
        n_shards: int,
        model: str | os.PathLike[str] | None,
        encoder: Encoder | None,
        threads: int | None,
    ) -> ShardedIndex:
        stem = os.path.basename(path).removesuffix(".json")
        names = shard_file_names(stem, n_shards)
        folder = os.path.dirname(os.path.abspath(path))
        taken = [n for n in names if os.path.exists(os.path.join(folder, n))]
        if taken:
            raise InvalidInputError(f"{path}: shard file {taken[0]} already exists")
        os.makedirs(folder, exist_ok=True)
        created: list[str] = []
        try:
            for name in names:
                target = os.path.join(folder, name)
                open_index(target, create=True, model=model, encoder=encoder, auto_build=False).close()
                created.append(target)
            manifest = ShardManifest(shards=names, model=None if model is None else os.fspath(model))
            manifest.write(path)
        except BaseException:
            for target in created:
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(OSError):
                        os.remove(target + suffix)
            raise
        return cls(path, manifest, model=model, encoder=encoder, threads=threads)

    def _check_shards(self) -> None:
        """Every shard holds the same model and the manifest's codec (same fingerprint)."""
        first = self._shards[0].config.model
        for number, shard in enumerate(self._shards):
            config = shard.config
            if config.model.fingerprint != first.fingerprint or config.dim != first.dim:
                raise CorruptIndexError(f"{self._path}: shard {number} was encoded by another model")
            if config.shared_codec != self._manifest.codec_fingerprint:
                raise CorruptIndexError(
                    f"{self._path}: shard {number} ({self._paths[number]}) has codec "
                    f"{(config.shared_codec or 'none')[:12]}, the manifest names "
                    f"{(self._manifest.codec_fingerprint or 'none')[:12]}: an interrupted or separate build; "
                    "run build() on the sharded index again"
                )

    # -- life cycle and reads -------------------------------------------------------------------

    @property
    def path(self) -> str:
        return self._path

    @property
    def manifest(self) -> ShardManifest:
        return self._manifest

    @property
    def shards(self) -> list[Index]:
        """The shard indexes, in manifest order (each an ordinary :class:`Index`)."""
        return list(self._shards)

    @property
    def shard_paths(self) -> list[str]:
        return list(self._paths)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        for shard in self._shards:
            with contextlib.suppress(LateIntError):
                shard.close()
        self._shards = []

    def __enter__(self) -> ShardedIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @guarded
    def __len__(self) -> int:
        return sum(len(shard) for shard in self._shards)

    def shard_for(self, doc_id: object) -> int:
        """The shard number that holds (or would hold) ``doc_id``."""
        return shard_of(normalize_id(doc_id), len(self._shards))

    @guarded
    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._shards[self.shard_for(doc_id)]

    @guarded
    def get(self, doc_id: object) -> Document:
        return self._shards[self.shard_for(doc_id)].get(doc_id)

    # -- writes ---------------------------------------------------------------------------------

    @guarded
    def add(
        self, docs: Iterable[Mapping[str, Any]], *, progress: ProgressArg = False, batch_size: int = WRITE_CHUNK
    ) -> list[str]:
        """Validate every document, refuse ids already present, then add each shard's documents in
        one transaction of that shard (``batch_size`` as in :meth:`Index.add`). Returns the ids in
        input order."""
        return self._write(docs, replace_existing=False, progress=progress, batch_size=batch_size)

    @guarded
    def upsert(
        self, docs: Iterable[Mapping[str, Any]], *, progress: ProgressArg = False, batch_size: int = WRITE_CHUNK
    ) -> list[str]:
        """Like :meth:`add`; a document whose id exists replaces it (in its own shard)."""
        return self._write(docs, replace_existing=True, progress=progress, batch_size=batch_size)

    def _write(
        self, docs: Iterable[Mapping[str, Any]], *, replace_existing: bool, progress: ProgressArg, batch_size: int
    ) -> list[str]:
        positive_int(batch_size, "batch_size")
        documents = list(docs) if not isinstance(docs, (Mapping, str, bytes)) else docs
        items = prepare_documents(documents, self._shards[0].dim)  # every document checked before any write
        groups: dict[int, list[Mapping[str, Any]]] = {}
        ids: dict[int, list[str]] = {}
        for item, doc in zip(items, documents, strict=True):
            number = shard_of(item.id, len(self._shards))
            groups.setdefault(number, []).append(doc)
            ids.setdefault(number, []).append(item.id)
        if not replace_existing:
            taken = [i for number, group in ids.items() for i in group if i in self._shards[number]]
            if taken:
                raise DuplicateIdError(f"{len(taken)} id(s) already in the index, e.g. {taken[0]!r}")
        for number in sorted(groups):
            write = self._shards[number].upsert if replace_existing else self._shards[number].add
            try:
                write(groups[number], progress=progress, batch_size=batch_size)
            except LateIntError as exc:
                done = [n for n in sorted(groups) if n < number]
                raise type(exc)(
                    f"shard {number}: {exc} (shards {done or 'none'} of this write were committed)"
                ) from exc
        return [item.id for item in items]

    @guarded
    def delete(self, ids: Iterable[object], *, missing_ok: bool = False) -> int:
        """Delete documents by id, each from its shard; unknown ids raise unless ``missing_ok``."""
        wanted = normalize_ids([ids] if isinstance(ids, (str, bytes)) else ids)
        groups: dict[int, list[str]] = {}
        for doc_id in wanted:
            groups.setdefault(shard_of(doc_id, len(self._shards)), []).append(doc_id)
        if not missing_ok:
            missing = [i for n, g in groups.items() for i in g if i not in self._shards[n]]
            if missing:
                raise DocumentNotFoundError(f"{len(missing)} id(s) not in the index, e.g. {missing[0]!r}")
        return sum(self._shards[n].delete(g, missing_ok=True) for n, g in sorted(groups.items()))

    @guarded
    def build(
        self,
        options: BuildOptions | None = None,
        *,
        codec: SharedCodec | None = None,
        progress: ProgressArg = False,
        **overrides: Any,
    ) -> ShardedBuildReport:
        """Train one codec on a sample from every shard (in proportion to its tokens), build every
        shard with it, then record its fingerprint in the manifest (last, so an interrupted build
        is detected on open). ``codec`` skips training, as in :meth:`Index.build`: every shard,
        empty ones too, is built with that codec."""
        dim = self._shards[0].dim
        chosen = with_overrides(BuildOptions, options, overrides).validated(dim)
        tokens = [shard.info().tokens for shard in self._shards]
        samples: list[np.ndarray] = []
        if codec is None:
            total, plan = shard_samples(tokens, chosen)
            heldouts = []
            for shard, (n_sample, n_heldout) in zip(self._shards, plan, strict=True):
                if n_sample:
                    sample, heldout = shard.training_sample(n_sample, n_heldout, seed=chosen.seed)
                    samples.append(sample)
                    heldouts.append(heldout)
            shared = train_shared_codec(samples, heldouts, chosen, total)
        else:
            shared, total = codec, sum(tokens)
        seconds = []
        for shard in self._shards:
            report = shard.build(codec=shared, pool_factor=chosen.pool_factor, progress=progress)
            seconds.append(report.train_seconds + report.encode_seconds)
        self._manifest = self._manifest.with_codec(shared.fingerprint)
        self._manifest.write(self._path)
        return ShardedBuildReport(
            codec_fingerprint=shared.fingerprint,
            sample_tokens=sum(len(s) for s in samples),
            n_centroids=int(shared.centroids.shape[0]),
            documents=len(self),
            tokens=total,
            shard_seconds=tuple(seconds),
        )

    @guarded
    def shared_codec(self) -> SharedCodec:
        """The codec every shard shares (after :meth:`build`)."""
        return self._shards[0].shared_codec()

    # -- search ---------------------------------------------------------------------------------

    @guarded
    def search(
        self,
        query: str,
        k: int = 10,
        *,
        options: SearchOptions | None = None,
        timeout: float | None = DEFAULT_SHARD_TIMEOUT_S,
        **overrides: Any,
    ) -> ShardedHits:
        """The k best documents across shards (modes maxsim, bm25, hybrid; filters as in
        :meth:`Index.search`). The query is encoded once; shards that fail or take longer than
        ``timeout`` seconds are listed in ``failed``."""
        return self.search_many([query], k, options=options, timeout=timeout, **overrides)[0]

    @guarded
    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        *,
        options: SearchOptions | None = None,
        timeout: float | None = DEFAULT_SHARD_TIMEOUT_S,
        **overrides: Any,
    ) -> list[ShardedHits]:
        """:meth:`search` for many queries, encoded in one batch."""
        texts = normalize_texts(queries)
        chosen = search_options(options, overrides)
        request = search_request(k, chosen)
        vectors: Sequence[np.ndarray | None] = (
            [None] * len(texts) if chosen.mode == "bm25" else self._shards[0].encoder.encode_queries(texts)
        )
        return [self._fan_out(text, v, chosen, request, timeout) for text, v in zip(texts, vectors, strict=True)]

    @guarded
    def search_vectors(
        self,
        query_vectors: np.ndarray,
        k: int = 10,
        *,
        options: SearchOptions | None = None,
        timeout: float | None = DEFAULT_SHARD_TIMEOUT_S,
        **overrides: Any,
    ) -> ShardedHits:
        """MaxSim search with precomputed query token vectors, across shards."""
        chosen = search_options(options, overrides)
        if chosen.mode != "maxsim":
            raise InvalidInputError("search_vectors scores by MaxSim only (mode='maxsim')")
        vectors = check_vectors(query_vectors, self._shards[0].dim, "query vectors")
        return self._fan_out(None, vectors, chosen, search_request(k, chosen), timeout)

    def _fan_out(
        self,
        text: str | None,
        vectors: np.ndarray | None,
        options: SearchOptions,
        request: SearchRequest,
        timeout: float | None,
    ) -> ShardedHits:
        if text is not None:
            normalize_text(text, "query")
        prepared = prepare_once(self._shards, vectors)
        calls = [
            (lambda shard=shard: answer_query(shard, text, vectors, options, request.k, prepared))
            for shard in self._shards
        ]
        answers, failed = fan_out(calls, self._paths, timeout, self._threads())
        merged = merge_answers([a for a in answers if a is not None], request)
        return ShardedHits(hits=merged, shards=len(self._shards), failed=tuple(failed))

    def _threads(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=len(self._shards), thread_name_prefix="lateint-shard")
            return self._pool

    @guarded
    def info(self) -> dict[str, Any]:
        """The manifest, totals and every shard's :meth:`Index.info` (as dicts)."""
        shards = [shard.info().to_dict() for shard in self._shards]
        return {
            "path": self._path,
            "shards": len(shards),
            "documents": sum(s["documents"] for s in shards),
            "tokens": sum(s["tokens"] for s in shards),
            "codec_fingerprint": self._manifest.codec_fingerprint,
            "model": self._manifest.model,
            "shard_info": shards,
        }


__all__ = [
    "ShardAnswer",
    "ShardFailure",
    "ShardedBuildReport",
    "ShardedHits",
    "ShardedIndex",
    "answer_query",
    "merge_answers",
    "open_sharded",
]

"""Sharded indexes built and searched on Ray (optional extra ``ray``).

Build (:func:`build_sharded`): a Ray Data pipeline reads the source (JSON Lines
or Parquet files, or text files and folders through :mod:`lateint_lite.sources`),
encodes documents in an actor pool (one onnxruntime session per actor, its
threads set by ``threads``; the rest of Ray's CPUs go to other actors), routes
each to its shard by id, and writes every shard from exactly one task (one
writer per file; each batch one transaction). Then each shard draws a token
sample, the driver trains one codec on all of them, and every shard is built
with it in parallel; the manifest records the codec's fingerprint last.

Search (:class:`RaySearcher`): actors each hold one or more shards open
read-only; the query is encoded once in the caller, fanned out to every actor
with :meth:`~lateint_lite.Index.search_vectors` (and BM25 for hybrid), and the
exact top-k merged as on one machine (:func:`~lateint_lite.sharded.merge_answers`).
An actor that fails or does not answer within ``timeout`` is reported in
:attr:`~lateint_lite.sharded.ShardedHits.failed`.

Shard files must be on a filesystem every Ray node sees (a local cluster, or a
shared mount on a real one). Ray moves Python objects between our own processes
with its own serializer; nothing lateint-lite stores or reads from a file is
pickled.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import BuildOptions
from .encoder import Encoder, OnnxEncoder
from .errors import InvalidInputError, LateIntError
from .extract import NotText
from .extras import require
from .index import open as open_index
from .origins import encode_texts
from .passages import LENGTH_DTYPE
from .requests import SearchOptions, normalize_texts, search_request
from .sharded import (
    DEFAULT_SHARD_TIMEOUT_S,
    ShardAnswer,
    ShardedHits,
    ShardFailure,
    answer_query,
    merge_answers,
    open_sharded,
    search_options,
    shard_samples,
)
from .sharding import ShardManifest, shard_of
from .shared_codec import SharedCodec, train_shared_codec
from .sources import DEFAULT_PATTERNS, file_document, is_jsonl, record_to_document, walk

#: Documents per encoding batch handed to one actor.
ENCODE_BATCH = 64
#: Documents per write transaction in a shard's writer task.
WRITE_BATCH = 512


def _ray() -> Any:
    return require("ray", "ray", "Distributed indexing and search")


def connect(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at ``address``, or start a local one (``num_cpus`` CPUs) when None."""
    ray = _ray()
    if ray.is_initialized():
        return
    ray.init(
        address=address,
        num_cpus=None if address else num_cpus,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )


# -- reading and encoding ---------------------------------------------------------------------------


def read_source(source: str | Sequence[str]) -> Any:
    """A Ray Dataset of documents ({"id", "text", "meta_json"}) from JSON Lines files, Parquet
    files (columns id, text, meta?) or text files and folders."""
    data = _ray().data
    paths = [source] if isinstance(source, str) else list(source)
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise InvalidInputError(f"{missing[0]}: no such file or folder")
    if all(p.endswith(".parquet") for p in paths):
        return data.read_parquet(paths).map(_parquet_row)
    if all(os.path.isfile(p) and is_jsonl(p) for p in paths):
        lines = data.read_text(paths)
        return lines.filter(lambda row: bool(row["text"].strip())).map(_jsonl_row)
    files = [f for p in paths for f in (walk(p, DEFAULT_PATTERNS) if os.path.isdir(p) else [p])]
    if not files:
        raise InvalidInputError(f"no files found in {' '.join(paths)}")
    return data.from_items([{"path": f} for f in files]).flat_map(_file_rows)


def _document_row(doc: dict[str, Any]) -> dict[str, Any]:
    import json

    return {"id": str(doc["id"]), "text": doc["text"], "meta_json": json.dumps(doc.get("meta") or {})}


def _jsonl_row(row: dict[str, Any]) -> dict[str, Any]:
    import json

    return _document_row(record_to_document(json.loads(row["text"])))


def _parquet_row(row: dict[str, Any]) -> dict[str, Any]:
    meta = row.get("meta")
    return {"id": str(row["id"]), "text": str(row["text"]), "meta_json": meta if isinstance(meta, str) else "{}"}


def _file_rows(row: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return [_document_row(file_document(row["path"]))]
    except (NotText, LateIntError):  # unreadable or binary: skipped, as `lateint add` skips it
        return []


class EncodeBatches:
    """A Ray Data actor: one encoder (one onnxruntime session) turning document batches into
    canonical token rows (int8 values, passage lengths) with their shard numbers."""

    def __init__(self, make_encoder: Callable[[], Encoder], n_shards: int) -> None:
        self._encoder = make_encoder()
        self._shards = n_shards

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        from .codecs.int8 import int8_values

        ids = [str(i) for i in batch["id"]]
        encoded = encode_texts(self._encoder, [str(t) for t in batch["text"]], ids, self._encoder.dim)
        return {
            "id": ids,
            "text": [str(t) for t in batch["text"]],
            "meta_json": [str(m) for m in batch["meta_json"]],
            "shard": [shard_of(i, self._shards) for i in ids],
            "tokens": [int8_values(doc.vectors).tobytes() for doc in encoded],
            "lengths": [np.asarray(doc.lengths, dtype=LENGTH_DTYPE).tobytes() for doc in encoded],
        }


def onnx_encoder_factory(model: str | None, threads: int) -> Callable[[], Encoder]:
    """A function that loads the ONNX model in the process that calls it (an actor)."""

    def make() -> Encoder:
        return OnnxEncoder.from_model(model, threads=threads)

    return make


def encoded_documents(rows: dict[str, Any], dim: int) -> list[dict[str, Any]]:
    """Documents for :meth:`Index.add` from a batch of encoded rows (passages from the int8 values)."""
    import json

    from .codecs.int8 import unit_rows

    docs = []
    for doc_id, text, meta, tokens, lengths in zip(
        rows["id"], rows["text"], rows["meta_json"], rows["tokens"], rows["lengths"], strict=True
    ):
        vectors = unit_rows(np.frombuffer(tokens, dtype=np.int8).reshape(-1, dim))
        bounds = np.cumsum(np.frombuffer(lengths, dtype=LENGTH_DTYPE))[:-1]
        docs.append(
            {"id": str(doc_id), "text": str(text), "meta": json.loads(meta), "passages": np.split(vectors, bounds)}
        )
    return docs


# -- the shard tasks -------------------------------------------------------------------------------


def _write_shard(path: str, blocks: list[Any], dim: int) -> int:
    """Add one shard's documents (Arrow blocks in Ray's object store; this task is the only writer
    of that file, each batch one transaction); returns how many."""
    ray = _ray()
    written = 0
    with open_index(path, auto_build=False) as index:
        for ref in blocks:
            table = ray.get(ref)
            for start in range(0, table.num_rows, WRITE_BATCH):
                rows = table.slice(start, WRITE_BATCH).to_pydict()
                written += len(index.upsert(encoded_documents(rows, dim)))
    return written


def _sample_shard(path: str, tokens: int, heldout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    with open_index(path, auto_build=False) as index:
        return index.training_sample(tokens, heldout, seed=seed)


def _build_shard(path: str, shared: SharedCodec, pool_factor: int | None) -> float:
    started = time.perf_counter()
    with open_index(path, auto_build=False) as index:
        index.build(codec=shared, pool_factor=pool_factor)
    return round(time.perf_counter() - started, 2)


def _count_tokens(path: str) -> int:
    with open_index(path, auto_build=False) as index:
        return index.info().tokens


@dataclass(frozen=True)
class DistributedBuildReport:
    """What :func:`build_sharded` did, with the time of each phase."""

    manifest: str
    shards: int
    documents: int
    codec_fingerprint: str
    encode_write_seconds: float
    train_seconds: float
    build_seconds: float


def build_sharded(
    manifest_path: str,
    source: Any,
    *,
    shards: int,
    model: str | None = None,
    encoder_factory: Callable[[], Encoder] | None = None,
    workers: int = 1,
    threads: int = 1,
    address: str | None = None,
    options: BuildOptions | None = None,
) -> DistributedBuildReport:
    """Create a sharded index at ``manifest_path`` from ``source`` (paths, or a Ray Dataset of
    {"id", "text", "meta_json"} rows) on Ray: ``workers`` encoding actors with ``threads``
    onnxruntime threads each, one writer task per shard, one shared codec."""
    ray = _ray()
    connect(address)
    started = time.perf_counter()
    sharded = open_sharded(manifest_path, create=True, shards=shards, model=model, encoder=_probe(encoder_factory))
    dim, paths = sharded.shards[0].dim, sharded.shard_paths
    sharded.close()
    make = encoder_factory or onnx_encoder_factory(model, threads)
    dataset = source if hasattr(source, "map_batches") else read_source(source)
    # read first: encoding actors that hold every CPU would leave the read tasks none
    dataset = dataset.materialize()
    encoded = dataset.map_batches(
        EncodeBatches,
        fn_constructor_args=(make, shards),
        batch_size=ENCODE_BATCH,
        compute=_ray().data.ActorPoolStrategy(size=workers),
        num_cpus=threads,
        batch_format="numpy",
    ).materialize()
    # each shard's rows are gathered by the driver's dataset (not inside a task, which would wait
    # for CPUs the writer tasks hold), then written by one task per shard
    parts = [encoded.filter(_in_shard(number)).materialize().to_arrow_refs() for number in range(shards)]
    write = ray.remote(_write_shard)
    counts = ray.get([write.remote(path, blocks, dim) for path, blocks in zip(paths, parts, strict=True)])
    written = time.perf_counter()
    chosen = (options or BuildOptions()).validated(dim)
    tokens = ray.get([ray.remote(_count_tokens).remote(p) for p in paths])
    total, plan = shard_samples(tokens, chosen)
    sample = ray.remote(_sample_shard)
    drawn = ray.get([sample.remote(p, s, h, chosen.seed) for p, (s, h) in zip(paths, plan, strict=True) if s])
    shared = train_shared_codec([d[0] for d in drawn], [d[1] for d in drawn], chosen, total)
    trained = time.perf_counter()
    ray.get([ray.remote(_build_shard).remote(p, shared, chosen.pool_factor) for p in paths])
    ShardManifest.read(manifest_path).with_codec(shared.fingerprint).write(manifest_path)
    return DistributedBuildReport(
        manifest=manifest_path,
        shards=shards,
        documents=int(sum(counts)),
        codec_fingerprint=shared.fingerprint,
        encode_write_seconds=round(written - started, 2),
        train_seconds=round(trained - written, 2),
        build_seconds=round(time.perf_counter() - trained, 2),
    )


def _probe(factory: Callable[[], Encoder] | None) -> Encoder | None:
    """The encoder a custom factory makes, for the shards' model identity (None: the ONNX model)."""
    return None if factory is None else factory()


def _in_shard(number: int) -> Callable[[dict[str, Any]], bool]:
    def keep(row: dict[str, Any]) -> bool:
        return int(row["shard"]) == number

    return keep


# -- search ----------------------------------------------------------------------------------------


class ShardServer:
    """A Ray actor holding some shards open read-only and answering queries for them."""

    def __init__(self, paths: list[str], make_encoder: Callable[[], Encoder] | None) -> None:
        encoder = None if make_encoder is None else make_encoder()
        self._shards = [open_index(p, readonly=True, auto_build=False, encoder=encoder) for p in paths]

    def fingerprints(self) -> list[str | None]:
        return [shard.config.shared_codec for shard in self._shards]

    def answer(self, text: str | None, vectors: np.ndarray | None, options: SearchOptions, k: int) -> list[ShardAnswer]:
        return [answer_query(shard, text, vectors, options, k) for shard in self._shards]


class RaySearcher:
    """Search a sharded index with Ray actors; the same answers as :class:`~lateint_lite.sharded.ShardedIndex`."""

    def __init__(
        self,
        manifest_path: str,
        *,
        actors: int | None = None,
        address: str | None = None,
        encoder: Encoder | None = None,
        encoder_factory: Callable[[], Encoder] | None = None,
    ) -> None:
        ray = _ray()
        connect(address)
        self._manifest = ShardManifest.read(manifest_path)
        self._paths = self._manifest.shard_paths(manifest_path)
        n_actors = max(1, min(actors or len(self._paths), len(self._paths)))
        self._groups = [list(range(i, len(self._paths), n_actors)) for i in range(n_actors)]
        server = ray.remote(ShardServer)
        self._actors = [server.remote([self._paths[n] for n in group], encoder_factory) for group in self._groups]
        with open_index(self._paths[0], readonly=True, auto_build=False, encoder=encoder) as first:
            self._dim = first.dim
            self._encoder = encoder if encoder is not None else first.encoder  # loaded here, kept after close
        for group, found in zip(self._groups, ray.get([a.fingerprints.remote() for a in self._actors]), strict=True):
            for number, fingerprint in zip(group, found, strict=True):
                if fingerprint != self._manifest.codec_fingerprint:
                    from .errors import CorruptIndexError

                    raise CorruptIndexError(f"{manifest_path}: shard {number} does not hold the manifest's codec")

    @property
    def actors(self) -> list[Any]:
        return list(self._actors)

    def search(
        self, query: str, k: int = 10, *, timeout: float | None = DEFAULT_SHARD_TIMEOUT_S, **overrides: Any
    ) -> ShardedHits:
        return self.search_many([query], k, timeout=timeout, **overrides)[0]

    def search_many(
        self, queries: Sequence[str], k: int = 10, *, timeout: float | None = DEFAULT_SHARD_TIMEOUT_S, **overrides: Any
    ) -> list[ShardedHits]:
        texts = normalize_texts(queries)
        options = search_options(None, overrides)
        search_request(k, options)  # k and the options are checked before anything runs
        vectors: Sequence[np.ndarray | None] = (
            [None] * len(texts) if options.mode == "bm25" else self._encoder.encode_queries(texts)
        )
        return [self._fan_out(t, v, options, k, timeout) for t, v in zip(texts, vectors, strict=True)]

    def _fan_out(
        self, text: str | None, vectors: np.ndarray | None, options: SearchOptions, k: int, timeout: float | None
    ) -> ShardedHits:
        ray = _ray()
        refs = [actor.answer.remote(text, vectors, options, k) for actor in self._actors]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        answers: list[ShardAnswer] = []
        failed: list[ShardFailure] = []
        for ref, group in zip(refs, self._groups, strict=True):
            reason = None
            if ref not in ready:
                reason = f"no answer within {timeout} s"
            else:
                try:
                    answers.extend(ray.get(ref))
                except Exception as exc:  # an actor's death or its error, reported per shard
                    reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if reason is not None:
                failed.extend(ShardFailure(n, self._paths[n], reason) for n in group)
        merged = merge_answers(answers, search_request(k, options))
        return ShardedHits(hits=merged, shards=len(self._paths), failed=tuple(failed))

    def close(self) -> None:
        ray = _ray()
        for actor in self._actors:
            ray.kill(actor)
        self._actors = []

    def __enter__(self) -> RaySearcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["DistributedBuildReport", "RaySearcher", "build_sharded", "connect", "read_source"]

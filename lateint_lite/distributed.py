"""Sharded indexes built and searched on Ray (optional extra ``ray``).

Build (:func:`build_sharded`): a Ray Data pipeline reads the source (JSON Lines
or Parquet files, or text files and folders through :mod:`lateint_lite.sources`)
and encodes documents in an actor pool (one onnxruntime session per actor, its
threads set by ``threads``), tagging each with the shard its id routes to. One
codec is trained on a random sample of the encoded rows (as many tokens as a build
of the whole collection samples) and written into every shard while they are
still empty; then every shard is written by exactly one task (one writer per
file, each batch one transaction), its documents encoded with that codec as they
arrive, so nothing is stored twice. The manifest records the codec's fingerprint last.

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

from .builder import HELDOUT_TOKENS, sample_tokens_for
from .config import BuildOptions
from .encoder import Encoder, OnnxEncoder
from .errors import InvalidInputError, LateIntError
from .extract import NotText
from .extras import require
from .index import open as open_index
from .origins import encode_texts
from .passages import LENGTH_DTYPE
from .requests import SearchOptions, check_vectors, normalize_texts, search_request
from .sharded import (
    DEFAULT_SHARD_TIMEOUT_S,
    ShardAnswer,
    ShardedHits,
    ShardFailure,
    answer_query,
    merge_answers,
    open_sharded,
    prepare_once,
    search_options,
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

    docs = []
    for n in range(len(rows["id"])):
        row = {name: column[n] for name, column in rows.items()}
        doc: dict[str, Any] = {"id": str(row["id"]), "text": str(row["text"]), "meta": json.loads(row["meta_json"])}
        vectors = _row_vectors(row, dim)
        if "tokens" in row:
            bounds = np.cumsum(np.frombuffer(row["lengths"], dtype=LENGTH_DTYPE))[:-1]
            doc["passages"] = np.split(vectors, bounds)
        else:
            doc["vectors"] = vectors
        docs.append(doc)
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


def _build_shard(path: str, shared: SharedCodec, pool_factor: int | None) -> float:
    started = time.perf_counter()
    with open_index(path, auto_build=False) as index:
        index.build(codec=shared, pool_factor=pool_factor)
    return round(time.perf_counter() - started, 2)


@dataclass(frozen=True)
class DistributedBuildReport:
    """What :func:`build_sharded` did, with the time of each phase."""

    manifest: str
    shards: int
    documents: int
    codec_fingerprint: str
    encode_seconds: float  # reading and encoding
    train_seconds: float  # the shared codec, on a sample of the encoded rows
    write_seconds: float  # shards built empty with the codec, then written, one task each


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
    onnxruntime threads each, one shared codec trained on a sample, one writer task per shard."""
    if os.path.exists(manifest_path):
        raise InvalidInputError(f"{manifest_path}: already exists (a build creates a new sharded index)")
    connect(address)
    started = time.perf_counter()
    open_sharded(manifest_path, create=True, shards=shards, model=model, encoder=_probe(encoder_factory)).close()
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
    return write_encoded(manifest_path, encoded, options=options, started=started)


def write_encoded(
    manifest_path: str, encoded: Any, *, options: BuildOptions | None = None, started: float | None = None
) -> DistributedBuildReport:
    """Train the shared codec on a sample of ``encoded`` rows, build the (empty) shards of the
    sharded index at ``manifest_path`` with it, then write every shard from one task. Rows hold
    "id", "text", "meta_json", "shard" and either "tokens" + "lengths" (:class:`EncodeBatches`)
    or "vectors" (float32 bytes of precomputed vectors, stored as such)."""
    ray = _ray()
    began = time.perf_counter() if started is None else started
    manifest = ShardManifest.read(manifest_path)
    paths = manifest.shard_paths(manifest_path)
    with open_index(paths[0], auto_build=False) as first:
        dim = first.dim
    chosen = (options or BuildOptions()).validated(dim)
    encoded_at = time.perf_counter()
    shared = train_on_rows(encoded, dim, chosen)
    trained = time.perf_counter()
    ray.get([ray.remote(_build_shard).remote(p, shared, chosen.pool_factor) for p in paths])
    # each shard's rows are gathered by the driver's dataset (not inside a task, which would wait
    # for CPUs the writer tasks hold), then written by one task per shard
    parts = [encoded.filter(_in_shard(number)).materialize().to_arrow_refs() for number in range(len(paths))]
    write = ray.remote(_write_shard)
    counts = ray.get([write.remote(path, blocks, dim) for path, blocks in zip(paths, parts, strict=True)])
    manifest.with_codec(shared.fingerprint).write(manifest_path)
    return DistributedBuildReport(
        manifest=manifest_path,
        shards=len(paths),
        documents=int(sum(counts)),
        codec_fingerprint=shared.fingerprint,
        encode_seconds=round(encoded_at - began, 2),
        train_seconds=round(trained - encoded_at, 2),
        write_seconds=round(time.perf_counter() - trained, 2),
    )


def train_on_rows(encoded: Any, dim: int, options: BuildOptions, seed_rows: int = 256) -> SharedCodec:
    """One codec for every shard, trained on random rows of the encoded dataset: as many tokens
    as a build of the whole collection samples (total estimated from the first ``seed_rows``)."""
    n_docs = encoded.count()
    if n_docs == 0:
        raise InvalidInputError("no documents to index")
    probe = [_row_vectors(r, dim) for r in encoded.limit(seed_rows).take_all()]
    per_doc = sum(len(v) for v in probe) / len(probe)
    total = int(per_doc * n_docs)
    wanted = sample_tokens_for(total, options.n_centroids) + HELDOUT_TOKENS
    fraction = min(1.0, 1.5 * wanted / max(total, 1))
    rows = encoded.random_sample(fraction, seed=options.seed).take_all() if fraction < 1.0 else encoded.take_all()
    vectors = [_row_vectors(r, dim) for r in rows]
    heldout_tokens = min(HELDOUT_TOKENS, sum(len(v) for v in vectors) // 4)
    held, taken = [], 0
    while vectors and taken < heldout_tokens:
        held.append(vectors.pop())
        taken += len(held[-1])
    return train_shared_codec(vectors, held, options, total)


def _row_vectors(row: dict[str, Any], dim: int) -> np.ndarray:
    """One encoded row's token vectors: canonical unit rows from int8 values, or float32 vectors."""
    from .codecs.int8 import unit_rows

    if "tokens" in row:
        return unit_rows(np.frombuffer(row["tokens"], dtype=np.int8).reshape(-1, dim))
    return np.frombuffer(row["vectors"], dtype=np.float32).reshape(-1, dim)


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
        prepared = prepare_once(self._shards, vectors)  # once per actor, for all its shards
        return [answer_query(shard, text, vectors, options, k, prepared) for shard in self._shards]


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

    def search_vectors(
        self,
        query_vectors: np.ndarray,
        k: int = 10,
        *,
        timeout: float | None = DEFAULT_SHARD_TIMEOUT_S,
        **overrides: Any,
    ) -> ShardedHits:
        """MaxSim search with precomputed query token vectors, across the actors' shards."""
        options = search_options(None, overrides)
        if options.mode != "maxsim":
            raise InvalidInputError("search_vectors scores by MaxSim only (mode='maxsim')")
        return self._fan_out(None, check_vectors(query_vectors, self._dim, "query vectors"), options, k, timeout)

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

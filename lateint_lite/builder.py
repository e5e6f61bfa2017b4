"""Building an index: train the residual codec, re-encode every document, rebuild the lists.

The mechanics only; when to build and with which options is decided in
:mod:`lateint_lite.maintenance`, inside the same write transaction, so a failed
build leaves the index as it was. Vectors come from a
:class:`~lateint_lite.origins.VectorSource` (stored int8 tokens, or the text
encoded again, or vectors passed again), never from decoded residual codes
unless the caller opted into a lossy rebuild.

Memory is bounded by the training sample: the sample's vectors are held once, in one
preallocated matrix (the int8 values of stored tokens before the first build, a quarter of
float32: :class:`~lateint_lite.clustering.TrainingPoints`); every document is then read,
encoded and written back in chunks of at most ``REENCODE_CHUNK_TOKENS`` tokens. The sample is
reused for its documents only when reading them again would mean running the model again (a
text rebuild); stored int8 tokens are read again instead, so the sample is freed before the
re-encode (docs/benchmarks.md "Peak memory per phase"). Time: one pass of the encoder over the
collection when the source is text (SciFact: minutes; see docs/benchmarks.md), a decode
otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import segments
from .clustering import TrainingPoints, plaid_centroid_count
from .codecs import ResidualCodec, train_residual_codec
from .codecs.int8 import int8_values
from .config import BuildOptions, BuildRecord
from .errors import EmptyIndexError
from .memory import return_freed_memory
from .origins import VectorSource
from .passages import DocumentTokens, lengths_blob
from .store import Store, TokenRow

if TYPE_CHECKING:
    from .shared_codec import SharedCodec

#: Training points per centroid (PLAID samples ~76; 16 measured no worse on SciFact).
SAMPLE_PER_CENTROID = 16
MIN_SAMPLE_TOKENS = 65_536
SAMPLE_READ_DOCS = 64
HELDOUT_TOKENS = 65_536
REENCODE_CHUNK_DOCS = 512
#: Tokens per re-encode chunk (16,384 x 384 float32 = 24 MiB, plus the codec's temporaries; 65,536 peaked a
#: SciFact build at 725 MiB instead of 574 MiB, in the same time).
REENCODE_CHUNK_TOKENS = 16_384


@dataclass(frozen=True)
class BuildReport:
    """What a build did."""

    documents: int
    tokens: int
    tokens_before_pooling: int
    n_centroids: int
    nbits: int
    residual_dim: int
    bytes_per_token: int
    sample_tokens: int
    train_seconds: float
    encode_seconds: float
    pool_factor: int
    centroid_cosine: float = 0.0  # mean held-out token-to-centroid cosine
    lossy: bool = False  # some documents were re-encoded from their stored codes (build(lossy=True))
    compact_seconds: float | None = None
    compact_error: str | None = None  # the build committed; only the VACUUM after it failed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _split_sample(
    counts: list[tuple[int, int]], sample_tokens: int, heldout_tokens: int, seed: int
) -> tuple[list[int], list[int]]:
    """Random documents for training and (disjoint when possible) for the held-out residuals."""
    order = np.random.default_rng(seed).permutation(len(counts))
    sample: list[int] = []
    heldout: list[int] = []
    taken = 0
    for i in order:
        doc_id, n = counts[i]
        if taken < sample_tokens:
            sample.append(doc_id)
        elif taken < sample_tokens + heldout_tokens:
            heldout.append(doc_id)
        else:
            break
        taken += n
    return sample, heldout or sample


def _read_sample(
    source: VectorSource, doc_ids: list[int], dim: int, expected_tokens: int
) -> tuple[TrainingPoints, dict[int, DocumentTokens]]:
    """(vectors of ``doc_ids`` as training points, doc_id -> that document, its vectors as views).
    The documents are read a chunk at a time into a matrix sized for ``expected_tokens`` (their
    stored counts; grown if a source yields more), so the sample is never held twice. When the
    source yields stored int8 tokens as they are, the matrix keeps their int8 values (a quarter
    of float32: 100 MB instead of 403 MB for SciFact's 262k x 384 sample) and no documents are
    kept (reading them again is cheap)."""
    compact = source.yields_int8_rows
    matrix = np.empty((max(expected_tokens, 1), dim), np.int8 if compact else np.float32)
    filled = 0
    spans: list[tuple[int, DocumentTokens, int, int]] = []
    for lo in range(0, len(doc_ids), SAMPLE_READ_DOCS):
        chunk = doc_ids[lo : lo + SAMPLE_READ_DOCS]
        for d, part in zip(chunk, source.vectors(chunk), strict=False):
            n = len(part.vectors)
            if filled + n > len(matrix):
                matrix = np.concatenate([matrix, np.empty((max(n, len(matrix) // 4), dim), matrix.dtype)])
            matrix[filled : filled + n] = int8_values(part.vectors) if compact else part.vectors
            if not compact:
                spans.append((d, part, filled, filled + n))
            filled += n
    matrix = matrix[:filled]
    return TrainingPoints(matrix), {d: part.with_vectors(matrix[a:b]) for d, part, a, b in spans}


def sample_tokens_for(n_tokens: int, n_centroids: int | None) -> int:
    """How many tokens a codec for ``n_tokens`` tokens trains on."""
    k = n_centroids or plaid_centroid_count(n_tokens)
    return max(MIN_SAMPLE_TOKENS, SAMPLE_PER_CENTROID * k)


def train_codec(
    sample: np.ndarray | TrainingPoints, heldout: np.ndarray | TrainingPoints, options: BuildOptions, n_tokens: int
) -> ResidualCodec:
    """A codec for a collection of ``n_tokens`` tokens (PLAID's centroid count unless the validated
    ``options`` set one; never more centroids than sample tokens)."""
    k = options.n_centroids or plaid_centroid_count(n_tokens)
    return train_residual_codec(
        sample,
        heldout,
        n_centroids=min(k, len(sample)),
        nbits=options.nbits,
        residual_dim=options.projected_dim,
        seed=options.seed,
    )


def draw_sample(
    counts: list[tuple[int, int]], source: VectorSource, dim: int, sample_tokens: int, heldout_tokens: int, seed: int
) -> tuple[TrainingPoints, TrainingPoints, dict[int, DocumentTokens]]:
    """(training points, held-out points, their documents by doc_id) from random documents of
    ``counts`` ((doc_id, n_tokens) of every document)."""
    sample_ids, heldout_ids = _split_sample(counts, sample_tokens, heldout_tokens, seed)
    sizes = dict(counts)
    sample, cached = _read_sample(source, sample_ids, dim, sum(sizes[d] for d in sample_ids))
    heldout, cached_heldout = (
        _read_sample(source, heldout_ids, dim, sum(sizes[d] for d in heldout_ids))
        if heldout_ids != sample_ids
        else (sample, {})
    )
    cached.update(cached_heldout)
    return sample, heldout, cached


def build_codec(
    store: Store,
    *,
    source: VectorSource,
    dim: int,
    options: BuildOptions,
    pool_factor: int,
    progress: Callable[[int], None] | None = None,
    shared: SharedCodec | None = None,
) -> tuple[ResidualCodec, BuildRecord, BuildReport]:
    """Train a codec on vectors from ``source`` (or take the ``shared`` one), store its tables,
    re-encode every document and rebuild the inverted lists. Call inside a write; ``options``
    are validated."""
    counts = store.doc_token_counts()
    n_tokens = sum(n for _, n in counts)
    if not counts and shared is None:  # an empty shard still takes the codec its siblings share
        raise EmptyIndexError(f"{store.path}: nothing to build, the index holds no documents")
    started = time.perf_counter()
    cached: dict[int, DocumentTokens] = {}
    if shared is None:
        sample, heldout, cached = draw_sample(
            counts, source, dim, sample_tokens_for(n_tokens, options.n_centroids), HELDOUT_TOKENS, options.seed
        )
        store.release_cache()  # training reads no page: its pages (up to 64 MiB) go back first
        return_freed_memory()
        codec = train_codec(sample, heldout, options, n_tokens)
        centroid_values, array_rows = codec.to_stored()
    else:
        sample = heldout = TrainingPoints(np.empty((0, dim), np.float32))
        codec = shared.codec()
        centroid_values, array_rows = shared.centroids, list(shared.arrays)
    trained = time.perf_counter()
    fit = centroid_cosine(codec, heldout) if shared is None else shared.centroid_cosine
    sample_tokens = len(sample)
    del sample, heldout
    if source.reads_stored_tokens:  # reading them again is cheap: free the sample now
        cached = {}
    store.replace_arrays(array_rows)
    store.replace_centroids(centroid_values)
    n_stored = _reencode_all(store, source, codec, counts, cached, progress)
    finished = time.perf_counter()
    record = BuildRecord(at=time.time(), tokens=n_stored, documents=len(counts), seed=options.seed, centroid_cosine=fit)
    report = BuildReport(
        documents=len(counts),
        tokens=n_stored,
        tokens_before_pooling=n_tokens,
        n_centroids=codec.codebook.size,
        nbits=codec.nbits,
        residual_dim=codec.residual_dim,
        bytes_per_token=codec.bytes_per_token,
        sample_tokens=sample_tokens,
        train_seconds=round(trained - started, 2),
        encode_seconds=round(finished - trained, 2),
        pool_factor=pool_factor,
        centroid_cosine=fit or 0.0,
    )
    return codec, record, report


def centroid_cosine(codec: ResidualCodec, tokens: np.ndarray | TrainingPoints) -> float:
    """Mean cosine between held-out tokens and their centroids: how much of a token the code
    alone explains (PLAID's centroid-only stages rank well when this is high)."""
    points = TrainingPoints.of(tokens)
    if len(points) == 0:
        return 0.0
    cosines = []
    for _, block in points.blocks():
        centroids = codec.codebook.centroids[codec.codebook.assign(block)]
        norms = np.linalg.norm(centroids, axis=1) * np.linalg.norm(block, axis=1)
        cosines.append(np.einsum("ij,ij->i", block, centroids) / np.maximum(norms, 1e-12))
    return round(float(np.mean(np.concatenate(cosines))), 4)


def _token_chunks(counts: list[tuple[int, int]]) -> Iterator[list[int]]:
    """Doc ids in order, in chunks of at most ``REENCODE_CHUNK_TOKENS`` stored tokens and
    ``REENCODE_CHUNK_DOCS`` documents (a longer document is a chunk of its own)."""
    chunk: list[int] = []
    tokens = 0
    for doc_id, n in counts:
        if chunk and (tokens + n > REENCODE_CHUNK_TOKENS or len(chunk) == REENCODE_CHUNK_DOCS):
            yield chunk
            chunk, tokens = [], 0
        chunk.append(doc_id)
        tokens += n
    if chunk:
        yield chunk


def _reencode_all(
    store: Store,
    source: VectorSource,
    codec: ResidualCodec,
    counts: list[tuple[int, int]],
    cached: dict[int, DocumentTokens],
    progress: Callable[[int], None] | None,
) -> int:
    """Encode every document of ``counts`` with ``codec`` chunk by chunk (vectors from ``source``,
    or from ``cached`` for the training sample) and rebuild the inverted lists; returns the
    stored token count."""
    cells: list[tuple[int, np.ndarray]] = []
    n_stored = 0
    for chunk in _token_chunks(counts):
        wanted = [d for d in chunk if d not in cached]
        fresh = dict(zip(wanted, source.vectors(wanted), strict=True))
        docs = [cached[d] if d in cached else fresh[d] for d in chunk]
        encoded = codec.encode([doc.vectors for doc in docs])
        store.update_token_rows(
            TokenRow(d, e.n_tokens, e.codes, e.payload, lengths_blob(doc.lengths))
            for d, e, doc in zip(chunk, encoded, docs, strict=True)
        )
        cells.extend((d, e.cells) for d, e in zip(chunk, encoded, strict=True) if e.cells is not None)
        n_stored += sum(e.n_tokens for e in encoded)
        if progress is not None:
            progress(len(chunk))
    segments.replace_all(store, cells)
    return n_stored

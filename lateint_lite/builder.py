"""Building an index: train the residual codec, re-encode every document, rebuild the lists.

Memory stays bounded by the training sample: documents are read, re-encoded and
written back in chunks. The caller runs :func:`build_codec` inside one write
transaction, so a failed build leaves the index as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import ivf
from .clustering import plaid_centroid_count
from .codec import RESIDUAL, ResidualCodec, codec_to_arrays, decode_stored, train_residual_codec
from .errors import EmptyIndexError, InvalidInputError
from .kernels import pool_documents
from .store import Store

#: Training points per centroid (PLAID samples ~76; 16 measured no worse on SciFact).
SAMPLE_PER_CENTROID = 16
MIN_SAMPLE_TOKENS = 65_536
HELDOUT_TOKENS = 65_536
REENCODE_CHUNK_DOCS = 512


@dataclass(frozen=True)
class BuildOptions:
    """Codec choices for :meth:`Index.build`."""

    nbits: int = 2
    residual_dim: int | None = 128
    n_centroids: int | None = None
    seed: int = 0
    pool_now: int = 1  # pool the stored tokens by this factor while re-encoding (1: keep them)

    def validated(self) -> BuildOptions:
        if self.nbits not in (1, 2, 4):
            raise InvalidInputError(f"nbits must be 1, 2 or 4, got {self.nbits!r}")
        if self.residual_dim is not None and (not isinstance(self.residual_dim, int) or self.residual_dim <= 0):
            raise InvalidInputError("residual_dim must be a positive integer or None")
        if self.n_centroids is not None and not 1 <= self.n_centroids <= 65536:
            raise InvalidInputError("n_centroids must be between 1 and 65536")
        if not isinstance(self.pool_now, int) or self.pool_now < 1:
            raise InvalidInputError("pool factor must be a positive integer")
        return self


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


def pool_vectors(vectors: list[np.ndarray], factor: int) -> list[np.ndarray]:
    """Token pooling of each document's vectors (factor 1 returns them unchanged)."""
    if factor <= 1 or not vectors:
        return vectors
    offsets = np.cumsum([0] + [len(v) for v in vectors]).astype(np.int64)
    pooled, new_offsets = pool_documents(np.concatenate(vectors), offsets, factor)
    return [pooled[new_offsets[i] : new_offsets[i + 1]] for i in range(len(vectors))]


def _read_vectors(store: Store, doc_ids: list[int], current: ResidualCodec | None, dim: int, pool: int) -> np.ndarray:
    parts = [decode_stored(current, dim, n, codes, payload) for _, n, codes, payload in store.token_payloads(doc_ids)]
    parts = pool_vectors(parts, pool)
    return np.concatenate(parts) if parts else np.empty((0, dim), np.float32)


def build_codec(
    store: Store,
    *,
    dim: int,
    current: ResidualCodec | None,
    options: BuildOptions,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train a codec on the stored documents and re-encode them all; returns a report."""
    options = options.validated()
    counts = store.doc_token_counts()
    n_tokens = sum(n for _, n in counts)
    if not counts:
        raise EmptyIndexError(f"{store.path}: nothing to build, the index holds no documents")
    started = time.perf_counter()
    k = options.n_centroids or plaid_centroid_count(n_tokens)
    sample_ids, heldout_ids = _split_sample(
        counts, max(MIN_SAMPLE_TOKENS, SAMPLE_PER_CENTROID * k), HELDOUT_TOKENS, options.seed
    )
    sample = _read_vectors(store, sample_ids, current, dim, options.pool_now)
    heldout = _read_vectors(store, heldout_ids, current, dim, options.pool_now)
    codec = train_residual_codec(
        sample,
        heldout,
        n_tokens=n_tokens,
        nbits=options.nbits,
        residual_dim=options.residual_dim,
        n_centroids=min(k, sample.shape[0]),
        seed=options.seed,
    )
    trained = time.perf_counter()
    centroid_values, arrays = codec_to_arrays(codec)
    store.delete_arrays(["residual_basis"])
    store.put_arrays(arrays)
    store.replace_centroids(centroid_values)
    postings, n_stored = _reencode_all(store, dim, current, codec, options.pool_now, progress)
    store.clear_ivf()
    store.write_ivf_rows(dict(ivf.encode_postings(postings)))
    finished = time.perf_counter()
    report = {
        "documents": len(counts),
        "tokens": n_stored,
        "tokens_before_pooling": n_tokens,
        "n_centroids": codec.codebook.size,
        "nbits": codec.nbits,
        "residual_dim": codec.residual_dim,
        "bytes_per_token": codec.bytes_per_token,
        "sample_tokens": int(sample.shape[0]),
        "train_seconds": round(trained - started, 2),
        "encode_seconds": round(finished - trained, 2),
    }
    store.set_meta(
        {
            "codec": RESIDUAL,
            "nbits": str(codec.nbits),
            "residual_dim": str(codec.residual_dim),
            "n_centroids": str(codec.codebook.size),
            "built_at": str(time.time()),
            "built_tokens": str(n_stored),
            "built_documents": str(len(counts)),
            "build_seed": str(options.seed),
        }
    )
    return report


def _reencode_all(
    store: Store,
    dim: int,
    current: ResidualCodec | None,
    codec: ResidualCodec,
    pool: int,
    progress: Callable[[int], None] | None,
) -> tuple[ivf.Postings, int]:
    """Re-encode every document with ``codec`` chunk by chunk (pooling its tokens first
    when ``pool`` > 1); returns the new inverted lists and the stored token count."""
    pairs: list[tuple[int, np.ndarray]] = []
    n_stored = 0
    for chunk in store.doc_id_chunks(REENCODE_CHUNK_DOCS):
        rows = list(store.token_payloads(chunk))
        vectors = pool_vectors([decode_stored(current, dim, n, codes, payload) for _, n, codes, payload in rows], pool)
        encoded = encode_for_store(codec, vectors)
        doc_ids = [row[0] for row in rows]
        store.update_token_rows([(d, len(v), c, p) for d, v, (c, p, _) in zip(doc_ids, vectors, encoded, strict=True)])
        pairs.extend((d, codes) for d, (_, _, codes) in zip(doc_ids, encoded, strict=True))
        n_stored += sum(len(v) for v in vectors)
        if progress is not None:
            progress(len(rows))
    return ivf.postings_of(pairs), n_stored


def encode_for_store(codec: ResidualCodec, vectors: list[np.ndarray]) -> list[tuple[bytes, bytes, np.ndarray]]:
    """(codes blob, payload blob, codes) per document, encoded in one batch."""
    if not vectors:
        return []
    bounds = np.cumsum([0] + [len(v) for v in vectors])
    codes, packed = codec.encode(np.concatenate(vectors))
    out = []
    for i in range(len(vectors)):
        doc_codes = codes[bounds[i] : bounds[i + 1]]
        out.append((doc_codes.tobytes(), packed[bounds[i] : bounds[i + 1]].tobytes(), doc_codes))
    return out


def add_to_lists(store: Store, doc_codes: list[tuple[int, np.ndarray]]) -> None:
    """Merge new documents into their centroids' stored lists."""
    change = ivf.postings_of(doc_codes)
    store.write_ivf_rows(ivf.patched(store.ivf_rows(change.centroids.tolist()), change, remove=False))


def remove_from_lists(store: Store, doc_codes: list[tuple[int, np.ndarray]]) -> None:
    """Drop deleted documents from their centroids' stored lists (empty lists are deleted)."""
    change = ivf.postings_of(doc_codes)
    store.write_ivf_rows(ivf.patched(store.ivf_rows(change.centroids.tolist()), change, remove=True))


def rebuild_lists(store: Store) -> None:
    """Recompute every inverted list from the stored codes (call inside a write)."""
    pairs = [(doc_id, np.frombuffer(codes or b"", dtype="<u2")) for doc_id, _, codes in store.iter_codes()]
    store.clear_ivf()
    store.write_ivf_rows(dict(ivf.encode_postings(ivf.postings_of(pairs))))

"""The ``residual`` codec (ColBERTv2/PLAID style): an index after ``build()``.

Each token stores the uint16 code of its centroid and its residual
``v - C[code]``, projected on an orthonormal basis of ``r`` directions (PCA of
residuals; none when ``r == dim``) and quantized per direction into
``2^nbits`` buckets, packed ``nbits`` per value. A token decodes to
``normalize(C[code] + B @ w)``, where ``w[j]`` is the bucket weight of
direction j. Keeping centroids at full dimension and projecting only the
residual measured 71.3 nDCG@10 on SciFact at 34 B/token, against 69.2 when
vectors are projected to 128-d first (docs/ARCHITECTURE.md).

Scoring never expands tokens to ``dim``: with ``qB = Q B`` and per-centroid
tables ``C B`` and ``|C|^2``, ``q.v = S[q, c] + qB.w`` and
``|v|^2 = |C|^2 + 2 (C B).w + |w|^2`` (see ``kernels.residual``).

Every reader checks byte lengths, codes and table shapes before anything is
reshaped or handed to a kernel: damage raises :class:`CorruptIndexError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .. import kernels
from ..clustering import Codebook, TrainingPoints, train_codebook
from ..config import NBITS, RESIDUAL, CodecSpec
from ..errors import CorruptIndexError
from ..ivf import decode_rows
from ..passages import PassageLayout
from ..store import CodesRow, SegmentRow, Store, TokenRow
from .arrays import array_row, decode_arrays
from .base import CodeMatrix, EncodedDocument, PreparedQuery, PruningIndex, Resident, StoredTokens, TokenCodec
from .int8 import decode_int8, dequantize_int8, encode_int8

CODE_DTYPE = np.dtype("<u2")


@dataclass(frozen=True)
class ResidualRows:
    """Codes and packed residuals of a set of documents, in ``doc_ids`` order."""

    doc_ids: np.ndarray  # int64[n_docs]
    offsets: np.ndarray  # int64[n_docs + 1]
    codes: np.ndarray  # uint16[n_tokens]
    packed: np.ndarray  # uint8[n_tokens, row_bytes]
    passages: PassageLayout | None = None

    @property
    def n_docs(self) -> int:
        return int(self.doc_ids.size)


@dataclass(frozen=True)
class QueryTables:
    """A query prepared for the residual codec: centroid scores S^T (K, nq), the query in the
    residual basis (nq, r); ``memo`` keeps what PLAID's first stage derives from S^T, so indexes
    sharing the codec (shards) searched with the same prepared query compute it once."""

    vectors: np.ndarray
    scores_t: np.ndarray
    q_basis: np.ndarray
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


def _offsets(counts: list[int]) -> np.ndarray:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def _cells_per_document(codes: np.ndarray, counts: np.ndarray, n_centroids: int) -> list[np.ndarray]:
    """Each document's distinct centroid codes, ascending (int64), for documents of ``counts``
    consecutive tokens: one sort of (document, code) keys instead of a ``np.unique`` per document."""
    owner = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    keys = np.unique(owner * n_centroids + codes.astype(np.int64))
    splits = np.searchsorted(keys // n_centroids, np.arange(1, counts.size))
    return np.split(keys % n_centroids, splits)


@dataclass(frozen=True, eq=False)
class ResidualCodec(TokenCodec):
    """Centroids, residual basis and bucket tables of a built index."""

    codebook: Codebook
    basis: np.ndarray | None  # float32[dim, r] with orthonormal columns, or None (identity)
    cutoffs: np.ndarray  # float32[r, 2^nbits - 1], ascending per row
    weights: np.ndarray  # float32[r, 2^nbits]
    nbits: int

    kind = RESIDUAL

    @property
    def dim(self) -> int:
        return self.codebook.dim

    @property
    def n_centroids(self) -> int | None:
        return self.codebook.size

    @property
    def supports_pruning(self) -> bool:
        return True

    @property
    def residual_dim(self) -> int:
        return self.dim if self.basis is None else int(self.basis.shape[1])

    @property
    def row_bytes(self) -> int:
        """Packed residual bytes per token."""
        return self.residual_dim * self.nbits // 8

    @property
    def bytes_per_token(self) -> int:
        """Stored bytes per token: residual plus the uint16 centroid code."""
        return self.row_bytes + CODE_DTYPE.itemsize

    @property
    def spec(self) -> CodecSpec:
        return CodecSpec(RESIDUAL, nbits=self.nbits, residual_dim=self.residual_dim, n_centroids=self.codebook.size)

    # -- derived tables (computed once per loaded codec) ---------------------------------

    @cached_property
    def centroid_basis(self) -> np.ndarray:
        """float32[K, r] = C B."""
        centroids = self.codebook.centroids
        basis = centroids if self.basis is None else centroids @ self.basis
        return np.ascontiguousarray(basis, dtype=np.float32)

    @cached_property
    def centroid_norm2(self) -> np.ndarray:
        """float32[K] = |C|^2."""
        centroids = self.codebook.centroids
        return np.einsum("ij,ij->i", centroids, centroids).astype(np.float32)

    @cached_property
    def lut(self) -> np.ndarray:
        """float32[row_bytes, 256, 8 / nbits]: packed byte -> residual coordinates."""
        return kernels.bucket_lut(self.weights, self.nbits)

    def validate(self) -> None:
        """Shapes and values consistent (every array came from the file)."""
        self.codebook.validate()
        r = self.residual_dim
        if self.nbits not in NBITS or (r * self.nbits) % 8:
            raise CorruptIndexError(f"unsupported residual layout: {r} dims x {self.nbits} bits")
        if self.basis is not None and self.basis.shape != (self.dim, r):
            raise CorruptIndexError("residual basis does not match the centroid dimension")
        levels = 1 << self.nbits
        if self.cutoffs.shape != (r, levels - 1) or self.weights.shape != (r, levels):
            raise CorruptIndexError("bucket tables do not match nbits and the residual dimension")
        arrays = [self.codebook.centroids, self.cutoffs, self.weights]
        if self.basis is not None:
            arrays.append(self.basis)
        if not all(np.isfinite(a).all() for a in arrays):
            raise CorruptIndexError("codec tables contain NaN or infinity")

    # -- the codec interface ---------------------------------------------------------------

    def encode_tokens(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(uint16 codes, packed residual rows) for unit-norm vectors (n, dim)."""
        codes = self.codebook.assign(vectors)
        packed = kernels.encode_residuals(vectors, codes, self.codebook.centroids, self.basis, self.cutoffs, self.nbits)
        return codes.astype(CODE_DTYPE), packed

    def encode(self, vectors: Sequence[np.ndarray]) -> list[EncodedDocument]:
        if not vectors:
            return []
        counts = np.array([len(v) for v in vectors], dtype=np.int64)
        bounds = _offsets(counts.tolist())
        codes, packed = self.encode_tokens(np.concatenate(vectors))
        cells = _cells_per_document(codes, counts, self.codebook.size)
        return [
            EncodedDocument(
                int(counts[i]),
                codes[bounds[i] : bounds[i + 1]].tobytes(),
                packed[bounds[i] : bounds[i + 1]].tobytes(),
                cells[i],
            )
            for i in range(len(vectors))
        ]

    def decode_tokens(self, codes: np.ndarray, packed: np.ndarray) -> np.ndarray:
        """Unit-norm float32 vectors (n, dim) of codes + packed residual rows."""
        w = kernels.decode_residuals(packed, self.weights, self.nbits)
        residual = w if self.basis is None else w @ self.basis.T
        vectors = self.codebook.centroids[codes.astype(np.int64)] + residual
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def _codes(self, doc_id: int, n_tokens: int, blob: bytes | None) -> np.ndarray:
        """One document's centroid codes, length and range checked."""
        if blob is None or n_tokens <= 0 or len(blob) != n_tokens * CODE_DTYPE.itemsize:
            raise CorruptIndexError(
                f"document {doc_id}: codes blob does not hold {n_tokens} uint16 codes", doc_id=doc_id
            )
        codes = np.frombuffer(blob, dtype=CODE_DTYPE)
        if int(codes.max()) >= self.codebook.size:
            raise CorruptIndexError(f"document {doc_id}: centroid code out of range", doc_id=doc_id)
        return codes

    def split(self, row: TokenRow) -> tuple[np.ndarray, np.ndarray]:
        """(codes, packed rows) of one stored document, lengths and codes checked."""
        n = int(row.n_tokens)
        codes = self._codes(row.doc_id, n, row.codes)
        if len(row.payload) != n * self.row_bytes:
            raise CorruptIndexError(
                f"document {row.doc_id}: residual payload has {len(row.payload)} bytes, expected {n * self.row_bytes}",
                doc_id=row.doc_id,
            )
        return codes, np.frombuffer(row.payload, dtype=np.uint8).reshape(n, self.row_bytes)

    def decode(self, row: TokenRow) -> np.ndarray:
        return self.decode_tokens(*self.split(row))

    def cells(self, row: CodesRow) -> np.ndarray:
        return np.unique(self._codes(row.doc_id, int(row.n_tokens), row.codes)).astype(np.int64)

    def read_rows(self, rows: Iterable[TokenRow]) -> ResidualRows:
        rows = list(rows)
        doc_ids: list[int] = []
        counts: list[int] = []
        code_blobs: list[bytes] = []
        payloads: list[bytes] = []
        width = self.row_bytes
        for row in rows:
            n = int(row.n_tokens)
            if row.codes is None or len(row.codes) != n * CODE_DTYPE.itemsize or len(row.payload) != n * width:
                raise CorruptIndexError(
                    f"document {row.doc_id}: stored codes or residuals do not hold {n} tokens", doc_id=row.doc_id
                )
            doc_ids.append(int(row.doc_id))
            counts.append(n)
            code_blobs.append(row.codes)
            payloads.append(row.payload)
        codes = np.frombuffer(b"".join(code_blobs), dtype=CODE_DTYPE).astype(np.uint16)
        if codes.size and int(codes.max()) >= self.codebook.size:
            raise CorruptIndexError("centroid code out of range")
        offsets = _offsets(counts)
        kernels.check_offsets(offsets, codes.size)
        return ResidualRows(
            doc_ids=np.asarray(doc_ids, dtype=np.int64),
            offsets=offsets,
            codes=codes,
            packed=np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(codes.size, width),
            passages=self.passage_layout_of(rows),
        )

    def prepare(self, query: np.ndarray) -> QueryTables:
        query = np.ascontiguousarray(query, dtype=np.float32)
        q_basis = query if self.basis is None else query @ self.basis
        return QueryTables(
            vectors=query,
            scores_t=kernels.dot_matrix(self.codebook.centroids, query),
            q_basis=np.ascontiguousarray(q_basis, dtype=np.float32),
        )

    def centroid_scores(self, query: PreparedQuery) -> np.ndarray:
        if not isinstance(query, QueryTables):
            raise TypeError("the residual codec takes QueryTables")
        return query.scores_t

    def score_spans(
        self, query: PreparedQuery, tokens: StoredTokens, offsets: np.ndarray, positions: np.ndarray | None
    ) -> np.ndarray:
        if not isinstance(query, QueryTables) or not isinstance(tokens, ResidualRows):
            raise TypeError("the residual codec scores ResidualRows with QueryTables")
        return kernels.maxsim_residual(
            query.q_basis,
            query.scores_t,
            tokens.codes,
            tokens.packed,
            self.lut,
            self.centroid_basis,
            self.centroid_norm2,
            offsets,
            positions,
            trusted=True,
        )

    def token_similarities(self, query: PreparedQuery, row: TokenRow) -> np.ndarray:
        """In the residual basis, as the scorer does: q.v = S[q, c] + (qB).w, |v|^2 = |C[c]|^2 +
        2 (C[c]B).w + |w|^2; no projection back to ``dim``."""
        if not isinstance(query, QueryTables):
            raise TypeError("the residual codec takes QueryTables")
        codes, packed = self.split(row)
        cells = codes.astype(np.int64)
        # one document: a numpy table lookup beats waking the parallel decode kernel (7 ms vs 0.1 ms)
        w = self.lut[np.arange(packed.shape[1])[None, :], packed].reshape(len(cells), -1)
        dots = query.scores_t[cells].T + query.q_basis @ w.T
        norm2 = self.centroid_norm2[cells] + 2.0 * np.einsum("ij,ij->i", self.centroid_basis[cells], w)
        norm2 += np.einsum("ij,ij->i", w, w)
        return dots / np.sqrt(np.maximum(norm2, 1e-12))

    def load_resident(self, store: Store, segment: SegmentRow) -> Resident:
        codes = self._code_matrix(store.iter_codes(segment.first_doc, segment.last_doc), segment)
        stored = decode_rows(store.segment_list_rows(segment.segment_id), self.codebook.size, segment.last_doc)
        dropped = store.tombstoned_doc_ids(segment.segment_id) if segment.tombstones else None
        lists = stored.to_positions(codes.position_of, segment.first_doc, dropped)
        return Resident(pruning=PruningIndex(codes=codes, lists=lists))

    def _code_matrix(self, rows: Iterable[CodesRow], segment: SegmentRow) -> CodeMatrix:
        """Codes of one segment's documents, checked."""
        doc_ids: list[int] = []
        counts: list[int] = []
        blobs: list[bytes] = []
        for doc_id, n_tokens, blob in rows:
            if blob is None or n_tokens <= 0 or len(blob) != int(n_tokens) * CODE_DTYPE.itemsize:
                raise CorruptIndexError(f"document {doc_id}: codes blob does not hold {n_tokens} codes", doc_id=doc_id)
            doc_ids.append(int(doc_id))
            counts.append(int(n_tokens))
            blobs.append(blob)
        ids = np.asarray(doc_ids, dtype=np.int64)
        codes = np.frombuffer(b"".join(blobs), dtype=CODE_DTYPE).astype(np.uint16)
        base = segment.first_doc
        if ids.size and (int(ids.min()) < base or int(ids.max()) > segment.last_doc or (np.diff(ids) <= 0).any()):
            raise CorruptIndexError("document ids are not strictly increasing within their segment")
        if codes.size and int(codes.max()) >= self.codebook.size:
            raise CorruptIndexError("centroid code out of range")
        position_of = np.full(segment.last_doc - base + 1, -1, dtype=np.int64)
        position_of[ids - base] = np.arange(ids.size)
        offsets = _offsets(counts)
        kernels.check_offsets(offsets, codes.size)
        return CodeMatrix(doc_ids=ids, offsets=offsets, codes=codes, position_of=position_of, base=base)

    # -- stored form -----------------------------------------------------------------------

    def to_stored(self) -> tuple[np.ndarray, list[tuple[str, str, str, bytes]]]:
        """(int8 centroid rows for the centroid table, named array rows for ``codec_arrays``)."""
        values, scales = decode_int8(encode_int8(self.codebook.centroids), self.codebook.size, self.dim)
        arrays: dict[str, np.ndarray] = {
            "centroid_scales": scales.astype(np.float32),
            "coarse_centroids": self.codebook.coarse.astype(np.float32),
            "centroid_groups": self.codebook.group_offsets.astype(np.int64),
            "bucket_cutoffs": self.cutoffs,
            "bucket_weights": self.weights,
        }
        if self.basis is not None:
            arrays["residual_basis"] = self.basis
        return np.ascontiguousarray(values), [array_row(name, a) for name, a in arrays.items()]

    @classmethod
    def from_stored(
        cls,
        centroid_rows: list[tuple[int, object]],
        array_rows: Iterable[tuple[str, object, object, object]],
        spec: CodecSpec,
        dim: int,
    ) -> ResidualCodec:
        """Rebuild and validate a codec from the centroid table and ``codec_arrays`` rows."""
        if any(r[0] != i or not isinstance(r[1], bytes) or len(r[1]) != dim for i, r in enumerate(centroid_rows)):
            raise CorruptIndexError("centroid table rows are not 0..K-1 int8 vectors of the index dimension")
        centroid_values = np.frombuffer(b"".join(r[1] for r in centroid_rows), dtype=np.int8)  # type: ignore[misc]
        centroid_values = centroid_values.reshape(len(centroid_rows), dim)
        arrays = decode_arrays(array_rows)
        required = ("centroid_scales", "coarse_centroids", "centroid_groups", "bucket_cutoffs", "bucket_weights")
        missing = [name for name in required if name not in arrays]
        if missing:
            raise CorruptIndexError(f"codec arrays missing: {', '.join(missing)}")
        scales = arrays["centroid_scales"]
        if scales.shape != (centroid_values.shape[0],) or not np.isfinite(scales).all():
            raise CorruptIndexError("centroid scales do not match the centroid table")
        codec = cls(
            codebook=Codebook(
                centroids=dequantize_int8(centroid_values, scales.astype(np.float32)),
                coarse=np.ascontiguousarray(arrays["coarse_centroids"], np.float32),
                group_offsets=np.ascontiguousarray(arrays["centroid_groups"], np.int64),
            ),
            basis=None
            if "residual_basis" not in arrays
            else np.ascontiguousarray(arrays["residual_basis"], np.float32),
            cutoffs=np.ascontiguousarray(arrays["bucket_cutoffs"], np.float32),
            weights=np.ascontiguousarray(arrays["bucket_weights"], np.float32),
            nbits=int(spec.nbits or 0),
        )
        codec.validate()
        if codec.spec != spec:
            raise CorruptIndexError(
                f"stored codec tables ({codec.spec}) disagree with the index configuration ({spec})"
            )
        return codec

    @classmethod
    def load(cls, store: Store, spec: CodecSpec, dim: int) -> ResidualCodec:
        """The codec stored in an index; call inside a snapshot."""
        return cls.from_stored(store.centroid_rows(), store.array_rows(), spec, dim)


def _optional(arrays: dict[str, np.ndarray], name: str) -> np.ndarray | None:
    return None if name not in arrays else np.ascontiguousarray(arrays[name], np.float32)


# -- training ------------------------------------------------------------------------------


BASIS_BLOCK_ROWS = 8192


def _heldout_codes(codebook: Codebook, heldout: TrainingPoints) -> np.ndarray:
    """The code of every held-out point, assigned a block at a time (both residual passes use them)."""
    codes = np.empty(len(heldout), dtype=np.int64)
    for lo, block in heldout.blocks(BASIS_BLOCK_ROWS):
        codes[lo : lo + len(block)] = codebook.assign(block)
    return codes


def _residual_blocks(codebook: Codebook, heldout: TrainingPoints, codes: np.ndarray) -> Iterator[np.ndarray]:
    """Residuals ``v - C[code]`` of the held-out points, a block at a time (float32)."""
    for lo, block in heldout.blocks(BASIS_BLOCK_ROWS):
        residual = codebook.centroids[codes[lo : lo + len(block)]]
        np.subtract(block, residual, out=residual)
        yield residual


def _orthonormal_basis(codebook: Codebook, heldout: TrainingPoints, codes: np.ndarray, r: int) -> np.ndarray:
    """Top-r principal directions (uncentered) of the held-out residuals, float32 (dim, r). The
    second moment is accumulated in float64 a block of rows at a time (two float64 copies of a
    65k x 384 sample were 400 MB, the peak of a SciFact build)."""
    dim = heldout.dim
    second_moment = np.zeros((dim, dim), np.float64)
    for residual in _residual_blocks(codebook, heldout, codes):
        block = residual.astype(np.float64)
        second_moment += block.T @ block
    second_moment /= max(len(heldout), 1)
    eigenvalues, eigenvectors = np.linalg.eigh(second_moment)
    order = np.argsort(-eigenvalues, kind="stable")[:r]
    return np.ascontiguousarray(eigenvectors[:, order], dtype=np.float32)


def _bucket_tables(projected: np.ndarray, nbits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-direction quantile cutoffs and bucket-centre weights."""
    levels = 1 << nbits
    # one call: each np.quantile partitions a copy of ``projected`` (same values as two calls)
    both = np.quantile(projected, np.concatenate([np.arange(1, levels), np.arange(levels) + 0.5]) / levels, axis=0)
    cutoffs, weights = both[: levels - 1].T, both[levels - 1 :].T
    return np.ascontiguousarray(cutoffs, np.float32), np.ascontiguousarray(weights, np.float32)


def _quantized_codebook(codebook: Codebook) -> Codebook:
    """The codebook with centroids rounded through their stored int8 form, so that encoding
    (at build time) and decoding (from the file) use exactly the same centroids."""
    values, scales = decode_int8(encode_int8(codebook.centroids), codebook.size, codebook.dim)
    return Codebook(
        centroids=dequantize_int8(values, scales),
        coarse=codebook.coarse,
        group_offsets=codebook.group_offsets,
    )


def train_residual_codec(
    sample: np.ndarray | TrainingPoints,
    heldout: np.ndarray | TrainingPoints,
    *,
    n_centroids: int,
    nbits: int,
    residual_dim: int | None,
    seed: int,
) -> ResidualCodec:
    """Fit ``n_centroids`` centroids on ``sample`` and the residual basis and bucket tables on
    ``heldout`` residuals. ``residual_dim`` None keeps every residual direction. Arguments
    are validated by the caller (``BuildOptions.validated``)."""
    sample, heldout = TrainingPoints.of(sample), TrainingPoints.of(heldout)
    dim = sample.dim
    r = dim if residual_dim is None else int(residual_dim)
    codebook = _quantized_codebook(train_codebook(sample, n_centroids, seed=seed))
    codes = _heldout_codes(codebook, heldout)
    basis = None if r == dim else _orthonormal_basis(codebook, heldout, codes, r)
    projected = np.empty((len(heldout), r), dtype=np.float32)
    at = 0
    for residual in _residual_blocks(codebook, heldout, codes):  # filled in place: no list of blocks
        projected[at : at + len(residual)] = residual if basis is None else residual @ basis
        at += len(residual)
    cutoffs, weights = _bucket_tables(projected, nbits)
    codec = ResidualCodec(codebook=codebook, basis=basis, cutoffs=cutoffs, weights=weights, nbits=nbits)
    codec.validate()
    return codec

"""A residual codec trained once and written into several index files (the shards of one index).

MaxSim scores from two index files compare only when both files quantize tokens
with the same centroids and residual tables. A :class:`SharedCodec` is those
tables in their stored form (int8 centroid rows + named codec arrays, exactly
the bytes a build writes), with a fingerprint (sha256 over the spec and every
byte) that each shard records in its configuration (``shared_codec``) and a
sharded index checks on open. It is trained on a sample drawn from every shard
(:func:`train_shared_codec`) and applied with ``Index.build(codec=...)``, which
re-encodes the shard's documents with it instead of training its own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .builder import centroid_cosine, train_codec
from .codecs import ResidualCodec
from .config import RESIDUAL, BuildOptions, CodecSpec
from .errors import CorruptIndexError, InvalidInputError

ArrayRow = tuple[str, str, str, bytes]


@dataclass(frozen=True)
class SharedCodec:
    """A trained residual codec in stored form, ready to be written into any index of ``dim``."""

    spec: CodecSpec
    centroids: np.ndarray  # int8 (n_centroids, dim): the centroid table's rows
    arrays: tuple[ArrayRow, ...]  # (name, dtype, shape, bytes) rows of codec_arrays
    seed: int
    centroid_cosine: float | None = None

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    @property
    def fingerprint(self) -> str:
        """sha256 of the spec and every stored byte; equal fingerprints quantize identically."""
        return tables_fingerprint(self.spec, [row.tobytes() for row in self.centroids], self.arrays)

    def codec(self) -> ResidualCodec:
        """The codec these tables describe, validated (as a search would load it from a file)."""
        rows = [(i, row.tobytes()) for i, row in enumerate(self.centroids)]
        return ResidualCodec.from_stored(rows, list(self.arrays), self.spec, self.dim)

    def check_dim(self, dim: int) -> None:
        if self.dim != dim:
            raise InvalidInputError(f"the shared codec is for dimension {self.dim}, the index has {dim}")

    @classmethod
    def from_tables(
        cls,
        spec: CodecSpec,
        centroid_rows: list[tuple[int, object]],
        array_rows: list[tuple[str, object, object, object]],
        seed: int,
        centroid_cosine: float | None,
    ) -> SharedCodec:
        """The codec stored in an index (validated by loading it first)."""
        if spec.kind != RESIDUAL or not centroid_rows:
            raise InvalidInputError("the index is not built: it has no codec to share")
        values = [bytes(v) for _, v in centroid_rows]  # type: ignore[call-overload]
        dim = len(values[0])
        ResidualCodec.from_stored([(i, v) for i, v in enumerate(values)], array_rows, spec, dim)
        centroids = np.frombuffer(b"".join(values), dtype=np.int8).reshape(len(values), dim).copy()
        arrays = tuple(
            (str(name), str(dtype), str(shape), bytes(data))  # type: ignore[call-overload]
            for name, dtype, shape, data in sorted(array_rows, key=lambda r: str(r[0]))
        )
        return cls(spec=spec, centroids=centroids, arrays=arrays, seed=seed, centroid_cosine=centroid_cosine)


@dataclass(frozen=True)
class SharedQuery:
    """Query vectors prepared once for every index built with the codec ``codec_fingerprint``
    (the shards of one index): centroid scores and PLAID's first stage are computed once, not
    once per shard. Made by ``Index.prepare_shared_query``; refused by an index with another codec."""

    codec_fingerprint: str
    vectors: np.ndarray = field(repr=False)
    prepared: object = field(repr=False)  # the codec's prepared query (QueryTables)


def tables_fingerprint(spec: CodecSpec, centroid_rows: Sequence[bytes], array_rows: Sequence[tuple]) -> str:
    """sha256 over the codec spec, the centroid rows in order and the array rows sorted by name."""
    digest = hashlib.sha256(json.dumps(asdict(spec), sort_keys=True).encode())
    for row in centroid_rows:
        digest.update(bytes(row))
    for name, dtype, shape, data in sorted(array_rows, key=lambda r: str(r[0])):
        for part in (str(name), str(dtype), str(shape)):
            digest.update(part.encode() + b"\0")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CorruptIndexError(f"codec array {name!r} is not a blob")
        digest.update(bytes(data))
    return digest.hexdigest()


def train_shared_codec(
    samples: Sequence[np.ndarray], heldouts: Sequence[np.ndarray], options: BuildOptions, total_tokens: int
) -> SharedCodec:
    """Train one codec on token samples drawn from every shard (``options`` validated; the
    centroid count follows PLAID's rule for ``total_tokens`` unless the options set it)."""
    parts = [s for s in samples if len(s)]
    if not parts:
        raise InvalidInputError("no token vectors to train a shared codec on (every shard is empty)")
    sample = np.concatenate(parts).astype(np.float32, copy=False)
    held = [h for h in heldouts if len(h)]
    heldout = np.concatenate(held).astype(np.float32, copy=False) if held else sample
    codec = train_codec(sample, heldout, options, total_tokens)
    values, array_rows = codec.to_stored()
    return SharedCodec(
        spec=codec.spec,
        centroids=np.ascontiguousarray(values, dtype=np.int8),
        arrays=tuple(sorted(array_rows, key=lambda r: r[0])),
        seed=options.seed,
        centroid_cosine=centroid_cosine(codec, heldout),
    )

"""Token codecs: the stored forms of token vectors, behind one interface (:class:`TokenCodec`).

- ``int8`` (:mod:`.int8`): an index before ``build()``; exhaustive search.
- ``residual`` (:mod:`.residual`): centroid code + projected, bucket-quantized
  residual; PLAID pruning.

:func:`load_codec` is the only place that maps a configuration to a codec.
"""

from __future__ import annotations

from ..config import INT8, RESIDUAL, IndexConfig
from ..errors import CorruptIndexError
from ..store import Store
from .base import CodeMatrix, EncodedDocument, PreparedQuery, PruningIndex, Resident, StoredTokens, TokenCodec
from .int8 import Int8Codec, TokenMatrix, canonical, quantize_unit_int8
from .residual import ResidualCodec, ResidualRows, train_residual_codec


def load_codec(store: Store, config: IndexConfig) -> TokenCodec:
    """The codec an index's configuration names, with its stored tables; inside a snapshot."""
    if config.codec.kind == INT8:
        return Int8Codec(config.dim)
    if config.codec.kind == RESIDUAL:
        return ResidualCodec.load(store, config.codec, config.dim)
    raise CorruptIndexError(f"{store.path}: unknown codec {config.codec.kind!r}")


__all__ = [
    "CodeMatrix",
    "EncodedDocument",
    "Int8Codec",
    "PreparedQuery",
    "PruningIndex",
    "Resident",
    "ResidualCodec",
    "ResidualRows",
    "StoredTokens",
    "TokenCodec",
    "TokenMatrix",
    "canonical",
    "load_codec",
    "quantize_unit_int8",
    "train_residual_codec",
]

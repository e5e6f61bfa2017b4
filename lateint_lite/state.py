"""What a search needs in memory, loaded from the file once per change.

Before ``build()`` that is every document's int8 token matrix; after it, the
residual codec with its derived tables, every document's centroid codes and
the inverted lists (as positions into the code matrix). Residual payloads stay
in the file and are fetched for the final candidates only.
"""

from __future__ import annotations

from dataclasses import dataclass

from .codec import INT8, RESIDUAL, ResidualCodec, codec_from_arrays
from .errors import CorruptIndexError
from .ivf import InvertedLists, decode_rows
from .search import CodecTables
from .store import Store
from .tokens import CodeMatrix, TokenMatrix


@dataclass(frozen=True)
class Int8State:
    """An index before ``build()``: every token vector, int8, in memory."""

    matrix: TokenMatrix


@dataclass(frozen=True)
class BuiltState:
    """A built index: codec tables, all centroid codes, inverted lists over positions."""

    tables: CodecTables
    codes: CodeMatrix
    lists: InvertedLists


SearchState = Int8State | BuiltState


def meta_nbits(meta: dict[str, str]) -> int:
    try:
        return int(meta["nbits"])
    except (KeyError, ValueError) as exc:
        raise CorruptIndexError("built index without a valid 'nbits' meta entry") from exc


def load_codec(store: Store, meta: dict[str, str], dim: int) -> ResidualCodec | None:
    """The residual codec of a built index, or None before ``build()``."""
    if meta.get("codec") == INT8:
        return None
    if meta.get("codec") != RESIDUAL:
        raise CorruptIndexError(f"unknown codec {meta.get('codec')!r}")
    codec = codec_from_arrays(store.centroid_values(dim), store.get_arrays(), meta_nbits(meta))
    if codec.dim != dim:
        raise CorruptIndexError("codec dimension differs from the index dimension")
    return codec


def load_state(store: Store, meta: dict[str, str], dim: int) -> SearchState:
    """Read and validate everything a search keeps resident."""
    codec = load_codec(store, meta, dim)
    if codec is None:
        return Int8State(matrix=TokenMatrix.from_payloads(store.iter_token_payloads(), dim))
    codes = CodeMatrix.from_rows(store.iter_codes(), codec.codebook.size)
    lists = decode_rows(store.ivf_rows(), codec.codebook.size, store.max_doc_id()).to_positions(codes.position_of)
    return BuiltState(tables=CodecTables.from_codec(codec), codes=codes, lists=lists)

"""Named numeric arrays stored as (dtype, shape, little-endian bytes) rows.

Decoding checks every row before numpy reshapes it: an unsupported dtype, a
malformed shape or a byte count that does not match raises CorruptIndexError.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..errors import CorruptIndexError

_DTYPES = {"f4": "<f4", "f8": "<f8", "i4": "<i4", "i8": "<i8", "u2": "<u2", "u1": "|u1", "i1": "|i1"}


def array_row(name: str, array: np.ndarray) -> tuple[str, str, str, bytes]:
    """(name, dtype, shape, bytes) of an array, as stored."""
    dtype = _DTYPES[array.dtype.kind + str(array.dtype.itemsize)]
    data = np.ascontiguousarray(array, dtype=np.dtype(array.dtype).newbyteorder("<")).tobytes()
    return name, dtype, ",".join(map(str, array.shape)), data


def decode_array(name: str, dtype: object, shape: object, data: object) -> np.ndarray:
    """The array of one stored row, validated."""
    if dtype not in _DTYPES.values() or not isinstance(shape, str) or not isinstance(data, bytes):
        raise CorruptIndexError(f"codec array {name!r} has an unsupported dtype or a damaged row")
    try:
        dims = tuple(int(x) for x in shape.split(",")) if shape else ()
    except ValueError as exc:
        raise CorruptIndexError(f"codec array {name!r} has a malformed shape {shape!r}") from exc
    if any(d < 0 for d in dims) or int(np.prod(dims, dtype=np.int64)) * np.dtype(str(dtype)).itemsize != len(data):
        raise CorruptIndexError(f"codec array {name!r}: shape {shape} does not match {len(data)} bytes")
    return np.frombuffer(data, dtype=str(dtype)).reshape(dims).astype(np.dtype(str(dtype)).newbyteorder("="))


def decode_arrays(rows: Iterable[tuple[str, object, object, object]]) -> dict[str, np.ndarray]:
    """name -> array for every stored row."""
    return {name: decode_array(name, dtype, shape, data) for name, dtype, shape, data in rows}

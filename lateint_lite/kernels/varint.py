"""LEB128 varint lists (count, then gaps) for the inverted lists, encoded and decoded in bulk."""

from __future__ import annotations

import numpy as np

from ..errors import CorruptIndexError, InvalidInputError
from ._checks import check_offsets_loose, varint_rows
from ._runtime import Int64Array, jit


@jit()
def _varint_encode_lists(offsets, values):  # pragma: no cover - compiled
    """Rows (count, gaps...) of many strictly increasing lists: (bytes, row byte offsets)."""
    n_rows = offsets.shape[0] - 1
    out = np.empty(10 * (values.shape[0] + n_rows), dtype=np.uint8)
    row_offsets = np.zeros(n_rows + 1, dtype=np.int64)
    pos = 0
    for row in range(n_rows):
        previous = np.int64(0)
        for i in range(offsets[row] - 1, offsets[row + 1]):
            if i < offsets[row]:
                x = np.uint64(offsets[row + 1] - offsets[row])
            else:
                x = np.uint64(values[i] - previous)
                previous = values[i]
            while x >= 0x80:
                out[pos] = np.uint8((x & np.uint64(0x7F)) | np.uint64(0x80))
                x >>= np.uint64(7)
                pos += 1
            out[pos] = np.uint8(x)
            pos += 1
        row_offsets[row + 1] = pos
    return out[:pos], row_offsets


@jit()
def _read_varint(data, pos, end):  # pragma: no cover - compiled
    """(value, next position); next position -1 if the varint overruns ``end`` or 63 bits."""
    value = np.int64(0)
    shift = 0
    while pos < end:
        byte = np.int64(data[pos])
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 56:
            return value, -1
    return value, -1


@jit()
def _varint_decode_lists(data, row_offsets, max_value):  # pragma: no cover - compiled
    """Decode concatenated rows (count, gaps...) into CSR (offsets, values).

    Returns status 0 on success; 1 if a row is truncated, has trailing bytes,
    a zero gap (not strictly increasing) or a value above ``max_value``.
    Every read is bounds-checked: the bytes come from the file.
    """
    n_rows = row_offsets.shape[0] - 1
    offsets = np.zeros(n_rows + 1, dtype=np.int64)
    for row in range(n_rows):
        count, pos = _read_varint(data, row_offsets[row], row_offsets[row + 1])
        if pos < 0 or count < 0 or count > row_offsets[row + 1] - pos:
            return offsets, np.empty(0, dtype=np.int64), 1
        offsets[row + 1] = offsets[row] + count
    values = np.empty(offsets[n_rows], dtype=np.int64)
    for row in range(n_rows):
        count, pos = _read_varint(data, row_offsets[row], row_offsets[row + 1])
        current = np.int64(0)
        for k in range(count):
            gap, pos = _read_varint(data, pos, row_offsets[row + 1])
            if pos < 0 or (k > 0 and gap == 0):
                return offsets, values, 1
            current += gap
            if current > max_value:
                return offsets, values, 1
            values[offsets[row] + k] = current
        if pos != row_offsets[row + 1]:
            return offsets, values, 1
    return offsets, values, 0


def varint_encode(values: Int64Array) -> bytes:
    """Compact bytes of a strictly increasing sequence of non-negative integers."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    if values.ndim != 1:
        raise InvalidInputError("varint lists must be 1-d")
    return varint_encode_lists(np.array([0, values.size], dtype=np.int64), values)[0]


def varint_encode_lists(offsets: Int64Array, values: Int64Array) -> list[bytes]:
    """Row blobs of a CSR of strictly increasing non-negative lists (one numba pass)."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    check_offsets_loose(offsets, values.size)
    starts = offsets[:-1]
    inside = np.ones(values.size, dtype=bool)
    inside[starts[starts < values.size]] = False
    if (values.size and values.min() < 0) or (np.diff(values)[inside[1:]] <= 0).any():
        raise InvalidInputError("varint lists must be strictly increasing and non-negative")
    data, row_offsets = _varint_encode_lists(np.ascontiguousarray(offsets, np.int64), values)
    raw = data.tobytes()
    return [raw[row_offsets[i] : row_offsets[i + 1]] for i in range(offsets.size - 1)]


def varint_decode_lists(blobs: list[bytes], max_value: int) -> tuple[Int64Array, Int64Array]:
    """CSR (offsets, values) of many varint-coded rows; CorruptIndexError on any damage."""
    data, row_offsets = varint_rows(blobs)
    offsets, values, status = _varint_decode_lists(data, row_offsets, np.int64(max_value))
    if status:
        raise CorruptIndexError("an inverted list is damaged (truncated, unsorted or out of range)")
    return offsets, values

"""Documents encoded before their write transaction, spilled to a temporary file.

A write encodes first and takes the write lock only to store (issue 12): another
writer waits for SQL, not for minutes of ONNX encoding. What waits in between is
each document's canonical vectors (unit vectors rounded through int8; see
:func:`~lateint_lite.codecs.canonical`) as their int8 values, one byte per
dimension, plus passage lengths. Rows go to a spooled temporary file in the
index's folder (in memory up to ``SPOOL_BYTES``, then on disk, unlinked at once),
so a large add does not hold every document's vectors in memory. The codec is
applied inside the transaction, so a build committed by another process while
this one encoded is honoured.
"""

from __future__ import annotations

import os
import tempfile
from types import TracebackType

import numpy as np

from .codecs.int8 import int8_values, unit_rows
from .passages import DocumentTokens

#: Staged bytes kept in memory before the spool moves to a file (~170k tokens at dim 384).
SPOOL_BYTES = 64 * 2**20


class StagedDocuments:
    """Append-only store of documents' canonical vectors; read back in order, by position."""

    def __init__(self, folder: str | None, dim: int) -> None:
        # closed by __exit__ (the class is the context manager)
        self._file = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=SPOOL_BYTES, dir=folder, prefix=".lateint-stage-"
        )
        self._dim = dim
        self._rows: list[tuple[int, int, np.ndarray]] = []  # (byte offset, tokens, passage lengths)
        self._end = 0

    def __enter__(self) -> StagedDocuments:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._file.close()

    def __len__(self) -> int:
        return len(self._rows)

    def append(self, doc: DocumentTokens) -> None:
        """Stage canonical vectors (as produced by ``canonical``: they round-trip exactly)."""
        values = int8_values(doc.vectors).tobytes()  # scales are not needed to recover unit rows
        self._file.seek(self._end)
        self._file.write(values)
        self._rows.append((self._end, len(doc.vectors), doc.lengths))
        self._end += len(values)

    def get(self, position: int) -> DocumentTokens:
        """The staged document at ``position``, as canonical float32 unit vectors."""
        offset, n, lengths = self._rows[position]
        self._file.seek(offset)
        raw = self._file.read(n * self._dim)
        return DocumentTokens(unit_rows(np.frombuffer(raw, dtype=np.int8).reshape(n, self._dim)), lengths)


def staging_folder(index_path: str) -> str | None:
    """Where a write stages its documents: the index's own folder (same disk as the index, which
    has room for them once written), or the system's temporary folder when that is not writable."""
    folder = os.path.dirname(os.path.abspath(index_path))
    return folder if os.access(folder, os.W_OK) else None

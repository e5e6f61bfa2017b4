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

from . import kernels
from .codecs.int8 import int8_values
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
        self.append_values(int8_values(doc.vectors), doc.lengths)  # scales are not needed to recover unit rows

    def append_values(self, values: np.ndarray, lengths: np.ndarray) -> None:
        """Stage a document by the int8 values of its canonical vectors (int8[n, dim])."""
        raw = np.ascontiguousarray(values, dtype=np.int8).tobytes()
        self._file.seek(self._end)
        self._file.write(raw)
        self._rows.append((self._end, len(values), lengths))
        self._end += len(raw)

    def steps(self, floats: int) -> list[tuple[int, int]]:
        """(start, stop) positions that split the staged documents, in order, into runs of at least
        ``floats`` vector values each (the last run may hold fewer; a document is never split)."""
        least = max(1, floats // self._dim)
        runs, start, tokens = [], 0, 0
        for position, (_, count, _) in enumerate(self._rows):
            tokens += count
            if tokens >= least:
                runs.append((start, position + 1))
                start, tokens = position + 1, 0
        if start < len(self._rows):
            runs.append((start, len(self._rows)))
        return runs

    def get(self, position: int) -> DocumentTokens:
        """The staged document at ``position``, as canonical float32 unit vectors."""
        return self.get_range(position, position + 1)[0]

    def get_range(self, start: int, stop: int) -> list[DocumentTokens]:
        """The staged documents ``start:stop``, read and scaled to unit rows together (the kernel
        twin of ``codecs.int8.unit_rows``, same bits); their vectors are consecutive row slices
        of one array."""
        rows = self._rows[start:stop]
        if not rows:
            return []
        counts = [n for _, n, _ in rows]
        self._file.seek(rows[0][0])
        raw = self._file.read(sum(counts) * self._dim)
        vectors = kernels.unit_rows_int8(np.frombuffer(raw, dtype=np.int8).reshape(-1, self._dim))
        bounds = np.cumsum([0, *counts])
        return [DocumentTokens(vectors[bounds[i] : bounds[i + 1]], lengths) for i, (_, _, lengths) in enumerate(rows)]


def staging_folder(index_path: str) -> str | None:
    """Where a write stages its documents: the index's own folder (same disk as the index, which
    has room for them once written), or the system's temporary folder when that is not writable."""
    folder = os.path.dirname(os.path.abspath(index_path))
    return folder if os.access(folder, os.W_OK) else None

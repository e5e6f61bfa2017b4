"""Exceptions raised by lateint-lite.

Every exception that leaves the public API is a :class:`LateIntError` (foreign
exceptions are translated at the boundary, :mod:`lateint_lite.boundary`, with
the original chained as ``__cause__``); the CLI prints its message on one line
and exits with its ``exit_code`` (docs/errors.md). Input errors also subclass
the matching built-in (``ValueError``, ``KeyError``) so generic handlers keep
working.
"""

from __future__ import annotations


class LateIntError(Exception):
    """Base class of every error lateint-lite raises on purpose."""

    exit_code = 1


class InvalidInputError(LateIntError, ValueError):
    """An argument or document is malformed (empty text, bad id, k <= 0, ...)."""


class DuplicateIdError(InvalidInputError):
    """A document id is given twice, or already exists and upsert was not asked for."""


class DocumentNotFoundError(LateIntError, KeyError):
    """No document has the requested id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "document not found"


class NotAnIndexError(LateIntError):
    """The file is not SQLite, or is SQLite but not a lateint-lite index."""


class IndexVersionError(LateIntError):
    """The index was written by a newer schema than this library understands."""


class CorruptIndexError(LateIntError):
    """Stored data fails validation (lengths, offsets, codes out of range). ``doc_id`` is the
    internal id of the damaged document when one is known (the searcher names its external id)."""

    def __init__(self, message: str, *, doc_id: int | None = None) -> None:
        super().__init__(message)
        self.doc_id = doc_id


class ModelError(LateIntError):
    """A model folder or manifest is missing, malformed, or fails its checksum."""


class ModelMismatchError(LateIntError):
    """The index was built with a different model than the one supplied."""


class EmptyIndexError(LateIntError):
    """A search was asked of an index that holds no documents."""


class ReadOnlyError(LateIntError):
    """A write was attempted on an index opened read-only, or on a file (or directory) the
    process may not write: read-only media, permissions."""

    exit_code = 77  # EX_NOPERM


class StorageError(LateIntError):
    """The file system or SQLite failed to read or write the file (I/O error)."""

    exit_code = 74  # EX_IOERR


class DiskFullError(StorageError):
    """The disk (or quota) is full; the transaction was rolled back and nothing was written."""


class IndexBusyError(LateIntError):
    """Another connection held the write lock longer than the busy timeout."""

    exit_code = 75  # EX_TEMPFAIL


class InternalError(LateIntError):
    """An unexpected failure inside the library (a bug: please report it with the chained cause)."""

    exit_code = 70  # EX_SOFTWARE


class ExtensionError(LateIntError):
    """The sqlite-vec extension could not be loaded."""


class MissingExtraError(LateIntError):
    """A feature needs an optional extra that is not installed (the message names the pip command)."""


class MigrationRequiredError(IndexVersionError):
    """The index was written by an older schema and must be migrated before this library can read it."""


class RebuildSourceError(LateIntError):
    """A rebuild has no lossless source for some documents (precomputed vectors, no text to
    re-encode): pass their vectors again, or opt into a lossy rebuild from the stored codes."""

"""File identity and schema versions.

A lateint-lite index is a SQLite file whose ``PRAGMA application_id`` is
:data:`APPLICATION_ID` and whose ``PRAGMA user_version`` is the schema version.
This module decides, from those two numbers, whether a file can be opened, and
whether it must first be migrated (:mod:`lateint_lite.migrations`); the DDL
itself lives with the rest of the SQL in :mod:`lateint_lite.store`.

Versions:
1. tables, with the configuration spread over ``meta`` keys (0.1.0)
2. the configuration in one validated JSON row, ``meta['config']``
3. ``documents.origin``: whether a document's vectors came from its text or were passed in
4. ``doc_tokens.passages``: the token counts of a long document's passages (best-passage scoring)
5. segments: each write's documents form a segment (a doc_id range) with its own inverted lists;
   deletes are tombstones until a merge; the one ``ivf`` table is gone
6. ``model_files``: the model's files, when the index carries its model (``embed_model``)
"""

from __future__ import annotations

from enum import Enum

from .errors import IndexVersionError, NotAnIndexError

#: "LIlt" as a big-endian 32-bit integer; written once at creation.
APPLICATION_ID = 0x4C496C74
#: Current schema version; bump together with a step in migrations.MIGRATIONS.
SCHEMA_VERSION = 6
#: The oldest schema version this library can migrate from.
OLDEST_SUPPORTED = 1


class FileState(Enum):
    """What an opened SQLite file is, as far as this library is concerned."""

    EMPTY = "empty"  # a brand-new or empty SQLite file: may be initialized
    CURRENT = "current"  # ours, at the current schema version
    OLDER = "older"  # ours, at an older schema version: migrate before use


def classify(application_id: int, user_version: int, has_tables: bool, path: str) -> FileState:
    """Classify a file by its header fields; raise if it is not ours or too new."""
    if application_id == 0 and user_version == 0 and not has_tables:
        return FileState.EMPTY
    if application_id != APPLICATION_ID:
        raise NotAnIndexError(f"{path}: SQLite file is not a lateint-lite index (application_id {application_id:#x})")
    if user_version > SCHEMA_VERSION:
        raise IndexVersionError(
            f"{path}: index schema version {user_version} is newer than this library supports "
            f"({SCHEMA_VERSION}); upgrade lateint-lite"
        )
    if user_version < OLDEST_SUPPORTED:
        raise NotAnIndexError(f"{path}: index has no schema version (interrupted initialization?)")
    return FileState.CURRENT if user_version == SCHEMA_VERSION else FileState.OLDER

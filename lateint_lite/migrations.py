"""Schema migrations: an older index file is brought to the current schema in one transaction.

:data:`MIGRATIONS` maps a schema version ``v`` to the step that turns a ``v``
file into a ``v + 1`` file. :func:`migrate` runs every step a file needs
inside one write transaction, after re-reading the version under the write
lock (two processes opening the same old file migrate it once); if any step
fails, the file stays as it was. A read-only open of an older file is refused
with :class:`MigrationRequiredError` naming the command that migrates it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from .config import INT8, RESIDUAL, BuildRecord, CodecSpec, IndexConfig, ModelIdentity
from .errors import CorruptIndexError, MigrationRequiredError
from .schema import SCHEMA_VERSION
from .store import Store

log = logging.getLogger(__name__)

#: v1 meta keys that schema 2 folds into the config row.
V1_CONFIG_KEYS = (
    "model_name",
    "model_sha256",
    "model_source",
    "dim",
    "codec",
    "doc_skiplist",
    "pool_factor",
    "nbits",
    "residual_dim",
    "n_centroids",
    "built_at",
    "built_tokens",
    "built_documents",
    "build_seed",
)


def config_from_v1_meta(meta: dict[str, str], path: str) -> IndexConfig:
    """The configuration a schema-1 file spread over its meta keys, validated."""

    def integer(key: str, default: int | None = None) -> int:
        raw = meta.get(key)
        if raw is None and default is not None:
            return default
        try:
            return int(str(raw))
        except ValueError as exc:
            raise CorruptIndexError(f"{path}: meta {key!r} missing or not an integer") from exc

    try:
        skiplist = None if "doc_skiplist" not in meta else tuple(json.loads(meta["doc_skiplist"]))
        built_at = float(meta.get("built_at", "0"))
    except (ValueError, TypeError) as exc:
        raise CorruptIndexError(f"{path}: damaged v1 metadata ({exc})") from exc
    model = ModelIdentity(
        name=meta.get("model_name", ""),
        fingerprint=meta.get("model_sha256", ""),
        dim=integer("dim"),
        source=meta.get("model_source") or meta.get("model_name", ""),
    )
    kind = meta.get("codec")
    if kind == INT8:
        codec, build = CodecSpec(INT8), None
    elif kind == RESIDUAL:
        codec = CodecSpec(RESIDUAL, integer("nbits"), integer("residual_dim"), integer("n_centroids"))
        build = BuildRecord(
            at=built_at,
            tokens=integer("built_tokens", 0),
            documents=integer("built_documents", 0),
            seed=integer("build_seed", 0),
        )
    else:
        raise CorruptIndexError(f"{path}: unknown codec {kind!r}")
    config = IndexConfig(
        model=model, skiplist=skiplist, pool_factor=integer("pool_factor", 1), codec=codec, build=build
    )
    config.validate(path)
    return config


def _v1_to_v2(store: Store) -> None:
    config = config_from_v1_meta(store.meta(), store.path)
    store.migrate_v1_to_v2(config.to_json(), V1_CONFIG_KEYS)


def _v2_to_v3(store: Store) -> None:
    store.migrate_v2_to_v3()  # origins stay unknown (NULL); a rebuild finds them out


def _v3_to_v4(store: Store) -> None:
    # every document reads as one passage, as schema 3 scored it (MaxSim over all its tokens);
    # a rebuild from text stores the passages of long documents
    store.migrate_v3_to_v4()


def _v4_to_v5(store: Store) -> None:
    # the whole file becomes one segment holding the old lists (patched on every delete, so
    # they name no deleted document and need no tombstones)
    store.migrate_v4_to_v5()


def _v5_to_v6(store: Store) -> None:
    store.migrate_v5_to_v6()  # no model inside: the named model is loaded as before


MIGRATIONS: dict[int, Callable[[Store], None]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
    4: _v4_to_v5,
    5: _v5_to_v6,
}


def migrate(store: Store) -> list[int]:
    """Bring the file to the current schema in one transaction; returns the versions migrated from."""
    steps: list[int] = []
    with store.write():
        version = store.schema_version()
        while version < SCHEMA_VERSION:
            MIGRATIONS[version](store)
            steps.append(version)
            version += 1
    store.mark_current()
    if steps:
        log.info("%s: migrated schema %d -> %d", store.path, steps[0], SCHEMA_VERSION)
    return steps


def require_current(store: Store) -> None:
    """Refuse an older file that cannot be migrated here (read-only open)."""
    version = store.schema_version()
    if version < SCHEMA_VERSION:
        raise MigrationRequiredError(
            f"{store.path}: index schema version {version} is older than this library's ({SCHEMA_VERSION}); "
            f"migrate it once with `lateint migrate {store.path}` (or open it writable), then open it read-only"
        )

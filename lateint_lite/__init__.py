"""lateint-lite: an embedded late-interaction (ColBERT-style) retrieval engine.

    import lateint_lite as li
    with li.open("docs.lateint", create=True) as idx:
        idx.add([{"id": "a1", "text": "..."}])
        hits = idx.search("query text", k=10)

Heavy modules (numpy, numba, onnxruntime) load on first use of ``open``,
``Index`` and friends, so ``import lateint_lite`` and the CLI start fast.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    CorruptIndexError,
    DocumentNotFoundError,
    DuplicateIdError,
    EmptyIndexError,
    ExtensionError,
    IndexVersionError,
    InvalidInputError,
    LateIntError,
    MigrationRequiredError,
    MissingExtraError,
    ModelError,
    ModelMismatchError,
    NotAnIndexError,
    ReadOnlyError,
    RebuildSourceError,
)

# Long operations (build, migration, compaction) log to "lateint_lite"; silent unless the
# application configures logging (the CLI prints warnings).
logging.getLogger(__name__).addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from .builder import BuildReport
    from .config import BuildOptions, IndexConfig
    from .documents import Document, Hit
    from .encoder import Encoder, OnnxEncoder
    from .index import Index, migrate, open
    from .info import IndexInfo
    from .maintenance import OptimizeReport
    from .requests import SearchOptions
    from .sharded import ShardedHits, ShardedIndex, open_sharded
    from .shared_codec import SharedCodec

_LAZY = {
    "open": "index",
    "migrate": "index",
    "Index": "index",
    "BuildOptions": "config",
    "BuildReport": "builder",
    "IndexConfig": "config",
    "IndexInfo": "info",
    "OptimizeReport": "maintenance",
    "SearchOptions": "requests",
    "ShardedHits": "sharded",
    "ShardedIndex": "sharded",
    "open_sharded": "sharded",
    "SharedCodec": "shared_codec",
    "Document": "documents",
    "Hit": "documents",
    "Encoder": "encoder",
    "OnnxEncoder": "encoder",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lateint_lite' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)


__all__ = [
    "BuildOptions",
    "BuildReport",
    "CorruptIndexError",
    "Document",
    "DocumentNotFoundError",
    "DuplicateIdError",
    "EmptyIndexError",
    "Encoder",
    "ExtensionError",
    "Hit",
    "Index",
    "IndexConfig",
    "IndexInfo",
    "IndexVersionError",
    "InvalidInputError",
    "LateIntError",
    "MigrationRequiredError",
    "MissingExtraError",
    "ModelError",
    "ModelMismatchError",
    "NotAnIndexError",
    "OnnxEncoder",
    "OptimizeReport",
    "ReadOnlyError",
    "RebuildSourceError",
    "SearchOptions",
    "ShardedHits",
    "ShardedIndex",
    "SharedCodec",
    "__version__",
    "migrate",
    "open",
    "open_sharded",
]

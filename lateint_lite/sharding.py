"""The sharded-index manifest and document routing.

A sharded index is a small JSON manifest naming N shard files, each an
ordinary lateint-lite index (openable and searchable alone), that share one
codec (:mod:`lateint_lite.shared_codec`; its fingerprint is in the manifest and
in every built shard's configuration). A document lives in the shard
:func:`shard_of` its id names: a stable hash (BLAKE2b, 64 bits) modulo N, the
same on every machine and Python version, so an upsert or delete finds the
document's shard without asking the others.

Manifest (``format`` "lateint-lite-shards", ``version`` 1)::

    {"format": "lateint-lite-shards", "version": 1, "routing": "blake2b-64",
     "shards": ["docs.shard-000.lateint", ...],   # relative to the manifest's folder
     "model": "minilm-l6-v2",                     # or null (custom encoder)
     "codec_fingerprint": "ab12..."}              # null until the first build
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, replace

from .errors import CorruptIndexError, InvalidInputError, NotAnIndexError

MANIFEST_FORMAT = "lateint-lite-shards"
MANIFEST_VERSION = 1
ROUTING = "blake2b-64"
MAX_SHARDS = 4096


def shard_of(doc_id: str, n_shards: int) -> int:
    """The shard that holds ``doc_id``: BLAKE2b-64 of its UTF-8 bytes modulo ``n_shards``."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n_shards


def shard_file_names(stem: str, n_shards: int) -> tuple[str, ...]:
    """The shard files of a new sharded index named ``stem``."""
    return tuple(f"{stem}.shard-{i:03d}.lateint" for i in range(n_shards))


def check_shard_count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SHARDS:
        raise InvalidInputError(f"shards must be an integer between 1 and {MAX_SHARDS}, got {value!r}")
    return value


@dataclass(frozen=True)
class ShardManifest:
    """What a sharded index is: its shard files, model and shared codec."""

    shards: tuple[str, ...]
    model: str | None = None
    codec_fingerprint: str | None = None
    routing: str = ROUTING
    format: str = MANIFEST_FORMAT
    version: int = MANIFEST_VERSION

    def shard_paths(self, manifest_path: str) -> list[str]:
        """Absolute paths of the shard files (relative names resolve against the manifest's folder)."""
        folder = os.path.dirname(os.path.abspath(manifest_path))
        return [os.path.join(folder, name) for name in self.shards]

    def with_codec(self, fingerprint: str) -> ShardManifest:
        return replace(self, codec_fingerprint=fingerprint)

    def to_json(self) -> str:
        data = asdict(self)
        data["shards"] = list(self.shards)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> ShardManifest:
        """Parse and validate a manifest; anything else is a clear error."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise NotAnIndexError(f"{where}: not a sharded-index manifest (not JSON: {exc})") from exc
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise NotAnIndexError(f"{where}: not a sharded-index manifest (no format {MANIFEST_FORMAT!r})")
        if data.get("version") != MANIFEST_VERSION:
            raise CorruptIndexError(
                f"{where}: manifest version {data.get('version')!r}; this release reads version {MANIFEST_VERSION}"
            )
        shards, model, fingerprint = data.get("shards"), data.get("model"), data.get("codec_fingerprint")
        if (
            not isinstance(shards, list)
            or not 1 <= len(shards) <= MAX_SHARDS
            or not all(isinstance(s, str) and s and os.path.basename(s) == s for s in shards)
            or len(set(shards)) != len(shards)
        ):
            raise CorruptIndexError(f"{where}: the manifest's shard list is damaged (distinct file names expected)")
        if data.get("routing") != ROUTING:
            raise CorruptIndexError(f"{where}: unknown routing {data.get('routing')!r}")
        if not (model is None or isinstance(model, str)) or not (fingerprint is None or isinstance(fingerprint, str)):
            raise CorruptIndexError(f"{where}: the manifest's model or codec fingerprint is damaged")
        return cls(shards=tuple(shards), model=model, codec_fingerprint=fingerprint)

    @classmethod
    def read(cls, path: str) -> ShardManifest:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError as exc:
            raise NotAnIndexError(f"{path}: no such sharded-index manifest") from exc
        except IsADirectoryError as exc:
            raise NotAnIndexError(f"{path}: is a directory, not a sharded-index manifest") from exc
        except UnicodeDecodeError as exc:
            raise NotAnIndexError(f"{path}: not a sharded-index manifest (not UTF-8 text)") from exc
        return cls.from_json(text, path)

    def write(self, path: str) -> None:
        """Replace the manifest atomically (write a sibling, fsync, rename)."""
        temporary = f"{path}.tmp-{os.getpid()}"
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(self.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)

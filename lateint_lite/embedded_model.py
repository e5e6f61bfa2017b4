"""The model inside the index file: stored as checked blobs, used when the named model is missing.

An index can carry the files of the model that encoded it (``open(create=True,
embed_model=True)``, ``Index.export(path, with_model=True)``, ``lateint export
--with-model``) in its ``model_files`` table: ``manifest.json``, the ONNX graph,
the tokenizer and the licence files beside them, each with its sha256. An index
created from a model *folder* (not a name) carries its model unless told not to,
so it never depends on that folder's path again.

When the recorded model cannot be found (not bundled, not installed, the folder
gone), the binding extracts the embedded files into a per-user cache folder named
after the weights' fingerprint (``$LATEINT_MODEL_CACHE``, else
``$XDG_CACHE_HOME/lateint-lite/models``, else ``~/.cache/lateint-lite/models``;
the system's temporary folder when that is not writable), checking every file's
sha256 as it is written and the weights against the index's recorded fingerprint,
and loads the model from there. Files are written to a sibling folder and renamed
into place, so a concurrent or interrupted extraction never leaves a half-written model.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from .config import ModelIdentity
from .errors import CorruptIndexError, ModelError
from .manifest import MANIFEST_NAME, ModelManifest, load_manifest
from .store import Store

#: Files beside the model that travel with it (licence terms must ship with the weights).
LICENCE_PREFIXES = ("LICENSE", "LICENCE", "NOTICE", "COPYING")


def model_file_rows(manifest: ModelManifest) -> list[tuple[str, str, bytes]]:
    """(name, sha256, bytes) of a model folder's files: manifest, weights, tokenizer, licences;
    the weights and tokenizer are checked against the manifest first."""
    manifest.verify_files()
    root = manifest.root
    names = [MANIFEST_NAME, manifest.model.path, manifest.tokenizer.path]
    names += sorted(p.name for p in root.iterdir() if p.is_file() and p.name.upper().startswith(LICENCE_PREFIXES))
    rows = []
    for name in dict.fromkeys(names):
        data = (root / name).read_bytes()
        rows.append((name, hashlib.sha256(data).hexdigest(), data))
    return rows


def embed(store: Store, manifest: ModelManifest, identity: ModelIdentity) -> int:
    """Store the model's files in the index (inside a write); returns the bytes stored."""
    if manifest.model.sha256 != identity.fingerprint:
        raise ModelError(
            f"{manifest.root}: model {manifest.name!r} (sha256 {manifest.model.sha256[:12]}) is not the one that "
            f"encoded {store.path} (sha256 {identity.fingerprint[:12]})"
        )
    rows = model_file_rows(manifest)
    store.replace_model_files(rows)
    return sum(len(data) for _, _, data in rows)


def has_embedded_model(store: Store) -> bool:
    return bool(store.model_files())


def cache_root() -> Path:
    """Where embedded models are extracted (see the module docstring)."""
    configured = os.environ.get("LATEINT_MODEL_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lateint-lite" / "models"


def extract(store: Store, identity: ModelIdentity) -> Path:
    """The folder of the embedded model, extracted and checked (reused when already there)."""
    rows = store.model_files()
    if not rows:
        raise ModelError(f"{store.path}: the index carries no model")
    for root in (cache_root(), Path(tempfile.gettempdir()) / f"lateint-lite-models-{os.getuid()}"):
        target = root / identity.fingerprint[:32]
        try:
            if not _complete(target, rows):
                _write_folder(store, rows, target)
            break
        except OSError:
            continue
    else:
        raise ModelError(
            f"{store.path}: no writable folder to extract the embedded model into (set LATEINT_MODEL_CACHE)"
        )
    manifest = load_manifest(target)
    if manifest.model.sha256 != identity.fingerprint:
        raise CorruptIndexError(
            f"{store.path}: the embedded model (sha256 {manifest.model.sha256[:12]}) is not the one that encoded "
            f"the index (sha256 {identity.fingerprint[:12]})"
        )
    return target


def _complete(folder: Path, rows: list[tuple[str, str, int]]) -> bool:
    """Whether ``folder`` already holds every file with the right size (hashes were checked when
    it was written; the loader checks the weights' sha256 again)."""
    return all((folder / name).is_file() and (folder / name).stat().st_size == size for name, _, size in rows)


def _write_folder(store: Store, rows: list[tuple[str, str, int]], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
    try:
        for name, sha256, _ in rows:
            path = staging / name
            if staging.resolve() not in path.resolve().parents:
                raise CorruptIndexError(f"{store.path}: embedded model file name {name!r} leaves its folder")
            data = store.model_file_data(name)
            if hashlib.sha256(data).hexdigest() != sha256:
                raise CorruptIndexError(f"{store.path}: embedded model file {name!r} fails its sha256")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(target)  # an incomplete earlier extraction
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

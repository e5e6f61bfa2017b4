"""Model manifests: what a model folder holds and how its encoder must be driven.

A model folder contains ``manifest.json``, an ONNX graph with a per-token output,
and a ``tokenizers`` JSON file. The manifest is parsed into frozen dataclasses and
validated field by field, so a bad folder fails at load with a clear
:class:`~lateint_lite.errors.ModelError` instead of deep inside onnxruntime.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ModelError

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
DEFAULT_MODEL = "minilm-l6-v2"


@dataclass(frozen=True)
class ModelFile:
    """One file of a model folder and its expected sha256."""

    path: str
    sha256: str


@dataclass(frozen=True)
class QueryConfig:
    """How queries are turned into tokens.

    ``expand_to`` pads short queries with ``mask_token`` up to that many tokens
    (ColBERT query augmentation); ``attend_to_expansion`` says whether the model
    attends to those pads.
    """

    max_length: int = 64
    prefix: str = ""
    marker: str | None = None
    expand_to: int | None = None
    mask_token: str = "[MASK]"
    attend_to_expansion: bool = True


@dataclass(frozen=True)
class DocumentConfig:
    """How documents are turned into tokens; ``skiplist`` tokens are dropped. A document longer
    than ``max_length`` tokens is split into passages of ``max_length`` tokens, consecutive ones
    sharing ``overlap`` tokens (default a quarter of ``max_length``), at most ``max_passages``
    of them (the rest is cut, with a warning)."""

    max_length: int = 256
    prefix: str = ""
    marker: str | None = None
    skiplist: tuple[str, ...] = ()
    overlap: int = 64
    max_passages: int = 64


@dataclass(frozen=True)
class ModelManifest:
    """A validated model description plus the folder it was read from.

    ``max_batch_size`` caps how many texts share one ONNX run. Dynamically
    quantized graphs compute activation scales over the whole batch tensor, so
    batching changes a text's vectors; 1 keeps encoding deterministic.
    """

    name: str
    dim: int
    model: ModelFile
    tokenizer: ModelFile
    output: str
    query: QueryConfig
    document: DocumentConfig
    normalize: bool
    license: str
    root: Path
    max_batch_size: int | None = None
    max_positions: int | None = None  # longest input the model takes (position embeddings); None: unknown
    description: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def model_path(self) -> Path:
        return self.root / self.model.path

    @property
    def tokenizer_path(self) -> Path:
        return self.root / self.tokenizer.path

    def verify_files(self) -> None:
        """Check that both files exist and match their recorded sha256."""
        for entry in (self.model, self.tokenizer):
            path = self.root / entry.path
            if not path.is_file():
                raise ModelError(f"model file missing: {path}")
            actual = sha256_file(path)
            if actual != entry.sha256:
                raise ModelError(f"{path}: sha256 {actual} does not match the manifest ({entry.sha256})")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundled_models_dir() -> Path:
    """Folder of the models shipped with the package (wheel) or the source tree."""
    packaged = Path(str(resources.files("lateint_lite"))) / "models"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "models"


#: Entry point group through which installed packages offer model folders: ``name = module:attr``,
#: where the attribute is the folder (str or Path) or a function returning it.
ENTRY_POINT_GROUP = "lateint_lite.models"


def installed_models() -> dict[str, tuple[Path, str]]:
    """Every model found by name: name -> (folder, where it comes from: "bundled" or the
    distribution offering it). Entry points that fail to load are skipped with a logged warning."""
    import logging
    from importlib.metadata import entry_points

    found: dict[str, tuple[Path, str]] = {}
    for manifest in sorted(bundled_models_dir().glob(f"*/{MANIFEST_NAME}")):
        found[manifest.parent.name] = (manifest.parent, "bundled")
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in found:
            continue
        try:
            target = point.load()
            folder = Path(target() if callable(target) else target)
        except Exception as exc:  # a broken third-party package must not break model lookup
            logging.getLogger("lateint_lite").warning("model entry point %r failed to load: %s", point.name, exc)
            continue
        if (folder / MANIFEST_NAME).is_file():
            found[point.name] = (folder, point.dist.name if point.dist is not None else "installed package")
    return found


def resolve_model_dir(model: str | Path | None) -> Path:
    """Turn a model name, a folder path or None (the default) into a folder."""
    if model is None:
        model = DEFAULT_MODEL
    candidate = Path(model)
    if (candidate / MANIFEST_NAME).is_file():
        return candidate
    if isinstance(model, str) and "/" not in model and "\\" not in model:
        bundled = bundled_models_dir() / model
        if (bundled / MANIFEST_NAME).is_file():
            return bundled
        if model in (known := installed_models()):
            return known[model][0]
    raise ModelError(
        f"no model named or at {str(model)!r} (a folder with {MANIFEST_NAME} is expected; "
        "`lateint models list` shows the installed ones)"
    )


def describe_model(manifest: ModelManifest, origin: str) -> dict[str, Any]:
    """What `lateint models info` prints: identity, shapes, files with size and sha256, licence."""
    files = {
        role: {"path": str(path), "bytes": _size(path), "sha256": entry.sha256}
        for role, entry in (("model", manifest.model), ("tokenizer", manifest.tokenizer))
        for path in [manifest.root / entry.path]
    }
    return {
        "name": manifest.name,
        "origin": origin,
        "folder": str(manifest.root),
        "description": manifest.description,
        "dim": manifest.dim,
        "query_max_length": manifest.query.max_length,
        "query_expand_to": manifest.query.expand_to,
        "document_max_length": manifest.document.max_length,
        "passage_overlap": manifest.document.overlap,
        "max_positions": manifest.max_positions,
        "license": manifest.license,
        "files": files,
        "provenance": manifest.provenance,
    }


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def load_manifest(model: str | Path | None = None) -> ModelManifest:
    """Read and validate the manifest of a model name or folder."""
    root = resolve_model_dir(model)
    path = root / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: cannot read manifest: {exc}") from exc
    return parse_manifest(raw, root)


def parse_manifest(raw: Any, root: Path) -> ModelManifest:
    """Validate a decoded manifest object; ``root`` is the model folder."""
    where = str(root / MANIFEST_NAME)
    obj = _require_mapping(raw, where)
    version = obj.get("format_version", MANIFEST_FORMAT)
    if version != MANIFEST_FORMAT:
        raise ModelError(f"{where}: format_version {version!r} is not supported (expected {MANIFEST_FORMAT})")
    files = _require_mapping(obj.get("files"), f"{where}: files")
    return ModelManifest(
        name=_require(obj, "name", str, where),
        dim=_positive_int(obj.get("dim"), f"{where}: dim"),
        model=_model_file(files.get("model"), f"{where}: files.model"),
        tokenizer=_model_file(files.get("tokenizer"), f"{where}: files.tokenizer"),
        output=str(obj.get("output", "last_hidden_state")),
        query=_query_config(obj.get("query", {}), f"{where}: query"),
        document=_document_config(obj.get("document", {}), f"{where}: document"),
        normalize=bool(obj.get("normalize", True)),
        license=str(obj.get("license", "unknown")),
        root=root,
        max_batch_size=None
        if obj.get("max_batch_size") is None
        else _positive_int(obj.get("max_batch_size"), f"{where}: max_batch_size"),
        max_positions=None
        if obj.get("max_positions") is None
        else _positive_int(obj.get("max_positions"), f"{where}: max_positions"),
        description=str(obj.get("description", "")),
        provenance=dict(_require_mapping(obj.get("provenance", {}), f"{where}: provenance")),
    )


def _require_mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ModelError(f"{where}: expected a JSON object")
    return value


def _require(obj: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is str and not value):
        raise ModelError(f"{where}: {key!r} must be a non-empty {kind.__name__}")
    return value


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ModelError(f"{where}: expected a positive integer, got {value!r}")
    return value


def _optional_str(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ModelError(f"{where}: expected a string or null")
    return value


def _model_file(value: Any, where: str) -> ModelFile:
    obj = _require_mapping(value, where)
    path = _require(obj, "path", str, where)
    if Path(path).is_absolute() or ".." in Path(path).parts:
        raise ModelError(f"{where}: path must stay inside the model folder")
    digest = _require(obj, "sha256", str, where).lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ModelError(f"{where}: sha256 must be 64 hex digits")
    return ModelFile(path=path, sha256=digest)


def _query_config(value: Any, where: str) -> QueryConfig:
    obj = _require_mapping(value, where)
    expand_to = obj.get("expand_to")
    max_length = _positive_int(obj.get("max_length", 64), f"{where}.max_length")
    if expand_to is not None:
        expand_to = _positive_int(expand_to, f"{where}.expand_to")
        if expand_to > max_length:
            raise ModelError(f"{where}: expand_to ({expand_to}) exceeds max_length ({max_length})")
    return QueryConfig(
        max_length=max_length,
        prefix=str(obj.get("prefix", "")),
        marker=_optional_str(obj.get("marker"), f"{where}.marker"),
        expand_to=expand_to,
        mask_token=str(obj.get("mask_token", "[MASK]")),
        attend_to_expansion=bool(obj.get("attend_to_expansion", True)),
    )


def _document_config(value: Any, where: str) -> DocumentConfig:
    obj = _require_mapping(value, where)
    skiplist = obj.get("skiplist", [])
    if not isinstance(skiplist, list) or not all(isinstance(t, str) for t in skiplist):
        raise ModelError(f"{where}.skiplist: expected a list of token strings")
    max_length = _positive_int(obj.get("max_length", 256), f"{where}.max_length")
    overlap = obj.get("overlap", max_length // 4)
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap <= max_length // 2:
        raise ModelError(f"{where}.overlap: expected an integer from 0 to max_length / 2, got {overlap!r}")
    return DocumentConfig(
        max_length=max_length,
        prefix=str(obj.get("prefix", "")),
        marker=_optional_str(obj.get("marker"), f"{where}.marker"),
        skiplist=tuple(skiplist),
        overlap=overlap,
        max_passages=_positive_int(obj.get("max_passages", 64), f"{where}.max_passages"),
    )

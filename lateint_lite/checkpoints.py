"""Checkpoint folders on disk: which layout they use and what their late-interaction conventions are.

Reading a layout needs no torch: it is JSON and file names. :mod:`lateint_lite.model_export`
turns the resulting :class:`ExportPlan` into an ONNX model folder. Three layouts are recognised:

- **sentence-transformers / PyLate**: ``modules.json`` naming a Transformer module and optional
  Dense modules (the projection head; PyLate's ColBERT models are saved this way, with their
  conventions in ``config_sentence_transformers.json``);
- **Stanford ColBERT** (``colbert-ai``): ``artifact.metadata`` beside a Hugging Face checkpoint
  whose weights hold the backbone under its model prefix and the projection as ``linear.weight``;
- **plain Hugging Face**: ``config.json`` and weights; the hidden states are the token vectors
  unless a projection is given.

Weights must be ``.safetensors``: a ``pytorch_model.bin`` is a pickle, which this project never
loads.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ModelError

#: Dense activations the exporter can put into the graph (sentence-transformers stores the class path).
ACTIVATIONS = {
    "torch.nn.modules.linear.Identity": "identity",
    "torch.nn.modules.activation.Tanh": "tanh",
    "torch.nn.modules.activation.ReLU": "relu",
    "torch.nn.modules.activation.GELU": "gelu",
}
PUNCTUATION = tuple(string.punctuation)


@dataclass(frozen=True)
class Projection:
    """One dense layer after the backbone: ``weights`` (a safetensors file), the tensor names in it,
    and the activation applied after it."""

    weights: Path
    weight_key: str
    bias_key: str | None
    in_features: int
    out_features: int
    activation: str = "identity"


@dataclass(frozen=True)
class Conventions:
    """How texts become tokens for this checkpoint (the manifest's ``query`` / ``document``)."""

    query_marker: str | None = None
    document_marker: str | None = None
    query_length: int = 32
    document_length: int = 256
    expand_to: int | None = None
    attend_to_expansion: bool = True
    mask_token: str = "[MASK]"
    skiplist: tuple[str, ...] = ()
    query_prefix: str = ""
    document_prefix: str = ""


@dataclass(frozen=True)
class ExportPlan:
    """Everything the exporter needs: the backbone folder, the projection head(s), the conventions."""

    layout: str
    source: Path
    backbone: Path
    projections: tuple[Projection, ...] = ()
    conventions: Conventions = field(default_factory=Conventions)
    license: str = "unknown"
    notes: tuple[str, ...] = ()

    def with_overrides(self, **changes: Any) -> ExportPlan:
        """The plan with convention fields replaced where a value is given (None keeps the checkpoint's)."""
        given = {k: v for k, v in changes.items() if v is not None}
        return replace(self, conventions=replace(self.conventions, **given))


def read_checkpoint(source: Path, projection_file: Path | None = None) -> ExportPlan:
    """Detect the layout of ``source`` and read its conventions; ``projection_file`` adds a trained
    linear layer (safetensors) to a plain checkpoint."""
    source = Path(source)
    if not source.is_dir():
        raise ModelError(f"{source}: not a checkpoint folder")
    if (source / "modules.json").is_file():
        plan = _sentence_transformers(source)
    elif (source / "artifact.metadata").is_file():
        plan = _stanford_colbert(source)
    else:
        plan = ExportPlan(
            layout="huggingface",
            source=source,
            backbone=source,
            conventions=Conventions(mask_token=_mask_token(source)),
            license=_license(source),
        )
    _require_backbone(plan.backbone)
    if projection_file is not None:
        if plan.projections:
            raise ModelError(f"{source}: the checkpoint has its own projection; --projection-file would add a second")
        plan = replace(plan, projections=(_projection_from_file(Path(projection_file)),))
    return plan


def _sentence_transformers(source: Path) -> ExportPlan:
    modules = _read_json(source / "modules.json")
    if not isinstance(modules, list):
        raise ModelError(f"{source / 'modules.json'}: expected a list of modules")
    backbone, projections, notes = None, [], []
    for module in modules:
        kind = str(module.get("type", "")) if isinstance(module, dict) else ""
        folder = source / str(module.get("path", "")) if isinstance(module, dict) else source
        if kind.endswith(".Transformer"):
            backbone = folder
        elif kind.endswith(".Dense") or kind.endswith(".Dense.Dense"):
            projections.append(_dense_module(folder))
        elif kind.endswith(".Pooling"):
            notes.append("Pooling module ignored: late interaction keeps every token")
        elif kind.endswith(".Normalize"):
            notes.append("Normalize module: token vectors are L2-normalized by the encoder")
        else:
            raise ModelError(f"{source}: module {kind or module!r} is not supported by the exporter")
    if backbone is None:
        raise ModelError(f"{source / 'modules.json'}: no Transformer module")
    config = _read_json_if(source / "config_sentence_transformers.json")
    return ExportPlan(
        layout="pylate" if "query_prefix" in config or "document_prefix" in config else "sentence-transformers",
        source=source,
        backbone=backbone,
        projections=tuple(projections),
        conventions=_pylate_conventions(config, backbone),
        license=_license(source),
        notes=tuple(notes),
    )


def _pylate_conventions(config: dict[str, Any], backbone: Path) -> Conventions:
    """PyLate inserts ``query_prefix`` / ``document_prefix`` as one token after the first, like
    ColBERT's markers; plain sentence-transformers prompts are text prefixes."""
    if "query_prefix" not in config and "document_prefix" not in config:
        prompts = config.get("prompts") or {}
        length = _int_or(_read_json_if(backbone / "sentence_bert_config.json").get("max_seq_length"), 256)
        return Conventions(
            query_prefix=str(prompts.get("query", "")),
            document_prefix=str(prompts.get("document", prompts.get("passage", ""))),
            query_length=min(length, 64),
            document_length=length,
            mask_token=_mask_token(backbone),
        )
    expand = bool(config.get("do_query_expansion", True))
    query_length = _int_or(config.get("query_length"), 32)
    return Conventions(
        query_marker=config.get("query_prefix") or None,
        document_marker=config.get("document_prefix") or None,
        query_length=query_length,
        document_length=_int_or(config.get("document_length"), 180),
        expand_to=query_length if expand else None,
        attend_to_expansion=bool(config.get("attend_to_expansion_tokens", False)),
        mask_token=_mask_token(backbone),
        skiplist=tuple(str(w) for w in config.get("skiplist_words") or ()),
    )


def _dense_module(folder: Path) -> Projection:
    config = _read_json(folder / "config.json")
    activation = str(config.get("activation_function", "torch.nn.modules.linear.Identity"))
    if activation not in ACTIVATIONS:
        raise ModelError(f"{folder}: activation {activation} is not supported (known: {', '.join(ACTIVATIONS)})")
    weights = _safetensors_in(folder)
    keys = _tensor_names(weights)
    weight_key = _one_key(keys, "weight", weights)
    bias_key = next((k for k in keys if k.endswith("bias")), None)
    if bool(config.get("bias", bias_key is not None)) != (bias_key is not None):
        raise ModelError(f"{folder}: config says bias={config.get('bias')} but the weights disagree")
    return Projection(
        weights=weights,
        weight_key=weight_key,
        bias_key=bias_key,
        in_features=_int_or(config.get("in_features"), 0),
        out_features=_int_or(config.get("out_features"), 0),
        activation=ACTIVATIONS[activation],
    )


def _stanford_colbert(source: Path) -> ExportPlan:
    meta = _read_json(source / "artifact.metadata")
    weights = _safetensors_in(source)
    keys = _tensor_names(weights)
    if "linear.weight" not in keys:
        raise ModelError(f"{weights}: a ColBERT checkpoint keeps its projection as 'linear.weight'; not found")
    shape = _tensor_shape(weights, "linear.weight")
    projection = Projection(
        weights=weights,
        weight_key="linear.weight",
        bias_key="linear.bias" if "linear.bias" in keys else None,
        in_features=shape[1],
        out_features=shape[0],
    )
    query_length = _int_or(meta.get("query_maxlen"), 32)
    return ExportPlan(
        layout="colbert",
        source=source,
        backbone=source,
        projections=(projection,),
        conventions=Conventions(
            query_marker=str(meta.get("query_token_id", "[unused0]")),
            document_marker=str(meta.get("doc_token_id", "[unused1]")),
            query_length=query_length,
            document_length=_int_or(meta.get("doc_maxlen"), 180),
            expand_to=query_length,
            attend_to_expansion=bool(meta.get("attend_to_mask_tokens", False)),
            mask_token=_mask_token(source),
            skiplist=PUNCTUATION if meta.get("mask_punctuation", True) else (),
        ),
        license=_license(source),
    )


def _projection_from_file(path: Path) -> Projection:
    if path.suffix != ".safetensors":
        raise ModelError(f"{path}: the projection must be a .safetensors file (pickled weights are never loaded)")
    keys = _tensor_names(path)
    weight_key = _one_key(keys, "weight", path)
    shape = _tensor_shape(path, weight_key)
    bias = weight_key[: -len("weight")] + "bias"
    return Projection(path, weight_key, bias if bias in keys else None, shape[1], shape[0])


def _require_backbone(folder: Path) -> None:
    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder}: no config.json (not a Hugging Face checkpoint)")
    _safetensors_in(folder)


def _safetensors_in(folder: Path) -> Path:
    """The folder's one safetensors weights file; a pickle-only checkpoint is refused."""
    found = sorted(folder.glob("*.safetensors"))
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        preferred = folder / "model.safetensors"
        if preferred in found:
            return preferred
        raise ModelError(f"{folder}: several safetensors files and no model.safetensors (sharded weights?)")
    if any(folder.glob("*.bin")) or any(folder.glob("*.pt")):
        raise ModelError(
            f"{folder}: weights are only in pickle form (.bin/.pt), which lateint-lite never loads; "
            "convert them to safetensors first"
        )
    raise ModelError(f"{folder}: no .safetensors weights")


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (names, dtypes, shapes), read without any framework;
    its length is checked against the file before it is trusted."""
    try:
        with open(path, "rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if not 2 <= size <= min(path.stat().st_size - 8, 100 * 2**20):
                raise ModelError(f"{path}: not a safetensors file (header length {size})")
            header = json.loads(handle.read(size))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: cannot read safetensors header: {exc}") from exc
    if not isinstance(header, dict):
        raise ModelError(f"{path}: safetensors header is not a JSON object")
    return {k: v for k, v in header.items() if k != "__metadata__"}


def _tensor_names(path: Path) -> list[str]:
    return sorted(safetensors_header(path))


def _tensor_shape(path: Path, key: str) -> tuple[int, int]:
    shape = safetensors_header(path)[key].get("shape")
    if not isinstance(shape, list) or len(shape) != 2 or not all(isinstance(n, int) and n > 0 for n in shape):
        raise ModelError(f"{path}: {key} has shape {shape}, expected a 2-d matrix")
    return shape[0], shape[1]


def _one_key(keys: list[str], suffix: str, where: Path) -> str:
    matches = [k for k in keys if k.endswith(suffix)]
    if len(matches) != 1:
        raise ModelError(f"{where}: expected one tensor named *{suffix}, found {matches}")
    return matches[0]


def _mask_token(folder: Path) -> str:
    """The tokenizer's mask token ([MASK] for BERT, <mask> for RoBERTa/XLM-R)."""
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        value = _read_json_if(folder / name).get("mask_token")
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str) and value:
            return value
    return "[MASK]"


def _license(folder: Path) -> str:
    """The licence named in a model card's front matter (``license: apache-2.0``), else unknown."""
    card = folder / "README.md"
    try:
        lines = card.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return "unknown"
    if not lines or lines[0].strip() != "---":
        return "unknown"
    for line in lines[1:]:
        if line.strip() == "---":
            break
        key, _, value = line.partition(":")
        if key.strip() == "license" and value.strip():
            return value.strip()
    return "unknown"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: cannot read: {exc}") from exc


def _read_json_if(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    value = _read_json(path)
    return value if isinstance(value, dict) else {}


def _int_or(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default

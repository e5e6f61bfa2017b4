"""``lateint models export``: a local checkpoint folder -> a lateint-lite model folder (ONNX + manifest).

Needs the ``export`` extra (CPU torch, transformers, onnx) and never downloads anything: the source
is a folder on disk (:mod:`lateint_lite.checkpoints` reads its layout). The graph computes the
backbone's last hidden states followed by the checkpoint's projection head, so its output is the
final token vector; dynamic int8 quantization (per-channel weights) follows unless turned off. The
folder is written next to ``dest`` and renamed into place, so a failed export leaves nothing.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .boundary import guarded, translate
from .checkpoints import ExportPlan, Projection, read_checkpoint
from .encoder import OnnxEncoder
from .errors import InvalidInputError, ModelError
from .extras import require
from .manifest import MANIFEST_FORMAT, MANIFEST_NAME, load_manifest, sha256_file

OUTPUT_NAME = "last_hidden_state"
PROBE_TEXT = "Late interaction scores every query token against every document token."
OPSET = 17


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote and how close the ONNX graph is to the PyTorch model on a probe text."""

    folder: str
    layout: str
    dim: int
    quantized: bool
    min_token_cosine: float
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@guarded
def export_checkpoint(
    source: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    name: str | None = None,
    projection_file: str | os.PathLike[str] | None = None,
    quantize: bool = True,
    license: str | None = None,
    **conventions: Any,
) -> ExportReport:
    """Export the checkpoint folder ``source`` into the new model folder ``dest``. Every failure is
    a :class:`~lateint_lite.errors.LateIntError` (a torch or onnxruntime error inside the export:
    :class:`~lateint_lite.errors.InternalError`, its cause chained).

    ``conventions`` override what the checkpoint says (``query_marker``, ``document_marker``,
    ``query_length``, ``document_length``, ``expand_to``, ``skiplist``, ...); None keeps it.
    """
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise InvalidInputError(f"{dest}: already exists and is not empty; choose a new folder")
    plan = read_checkpoint(Path(source), None if projection_file is None else Path(projection_file))
    plan = plan.with_overrides(**conventions)
    torch = require("torch", "export", "exporting a checkpoint")
    require("transformers", "export", "exporting a checkpoint")
    require("onnx", "export", "exporting a checkpoint")
    staging = dest.parent / f".{dest.name}.exporting-{os.getpid()}"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)  # left by a killed export of this process id
        staging.mkdir()
    except OSError as exc:  # named by the destination, not by this function
        raise translate(exc, str(dest)) from exc
    try:
        with torch.no_grad(), _quiet():
            model, backbone_config = _token_model(plan)
            fp32 = staging / "model-fp32.onnx"
            inputs = _export_graph(model, fp32)
            onnx_path = staging / "model.onnx"
            if quantize:
                _quantize(fp32, onnx_path)
                fp32.unlink()
            else:
                fp32.rename(onnx_path)
            _write_tokenizer(plan, staging / "tokenizer.json")
            dim = plan.projections[-1].out_features if plan.projections else int(backbone_config.hidden_size)
            manifest = _manifest(plan, name or dest.name, dim, backbone_config, quantize, license, inputs)
            for entry in manifest["files"].values():
                entry["sha256"] = sha256_file(staging / entry["path"])
            (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            _copy_licence_files(plan.source, staging)
            gap = _min_cosine_vs_torch(model, staging, inputs)
        OnnxEncoder(load_manifest(staging), threads=1)  # the folder loads: files, tokens it names, graph
        if dest.exists():
            dest.rmdir()
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportReport(str(dest), plan.layout, dim, quantize, gap, plan.notes)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep torch's tracer warnings, transformers' load reports and progress bars off the terminal:
    the export prints its own one-line report."""
    import transformers

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)
        transformers.logging.enable_progress_bar()
        transformers.logging.set_verbosity(verbosity)


def _token_model(plan: ExportPlan) -> tuple[Any, Any]:
    """backbone -> projection head(s), as one torch module whose output is the token vectors."""
    import torch
    from transformers import AutoModel

    try:
        backbone = AutoModel.from_pretrained(str(plan.backbone), attn_implementation="eager").to(torch.float32)
    except Exception as exc:  # transformers raises many kinds for an unloadable checkpoint
        raise ModelError(f"{plan.backbone}: transformers cannot load this checkpoint: {exc}") from exc
    backbone.eval()
    heads = torch.nn.ModuleList(_linear(p) for p in plan.projections)
    activations = [p.activation for p in plan.projections]
    accepts_types = "token_type_ids" in inspect.signature(backbone.forward).parameters

    class TokenVectors(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = backbone
            self.heads = heads
            self.accepts_types = accepts_types

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
            hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
            for head, activation in zip(self.heads, activations, strict=True):
                hidden = _activate(head(hidden), activation)
            return hidden

    return TokenVectors().eval(), backbone.config


def _linear(projection: Projection) -> Any:
    import torch
    from safetensors.torch import load_file

    tensors = load_file(str(projection.weights))
    weight = tensors[projection.weight_key].to(torch.float32)
    if projection.in_features and tuple(weight.shape) != (projection.out_features, projection.in_features):
        raise ModelError(f"{projection.weights}: {projection.weight_key} has shape {tuple(weight.shape)}")
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=projection.bias_key is not None)
    layer.weight.data.copy_(weight)
    if projection.bias_key is not None:
        layer.bias.data.copy_(tensors[projection.bias_key].to(torch.float32))
    return layer


def _activate(values: Any, activation: str) -> Any:
    import torch

    functions = {"identity": lambda v: v, "tanh": torch.tanh, "relu": torch.relu, "gelu": torch.nn.functional.gelu}
    return functions[activation](values)


def _export_graph(model: Any, path: Path) -> list[str]:
    """torch.onnx.export with dynamic batch and sequence axes; returns the graph's input names."""
    import torch

    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if model.accepts_types else [])
    sample = torch.ones((2, 16), dtype=torch.int64)
    args = (sample, sample) + ((torch.zeros_like(sample),) if model.accepts_types else ())
    axes = {0: "batch", 1: "sequence"}
    try:
        torch.onnx.export(
            model,
            args,
            str(path),
            input_names=names,
            output_names=[OUTPUT_NAME],
            dynamic_axes={n: axes for n in [*names, OUTPUT_NAME]},
            opset_version=OPSET,
            dynamo=False,
        )
    except Exception as exc:  # the tracer's errors have no common base class
        raise ModelError(f"ONNX export of {type(model.backbone).__name__} failed: {exc}") from exc
    return names


def _quantize(fp32: Path, int8: Path) -> None:
    """Dynamic int8, per-channel weights (closer to fp32 than per-tensor; docs/ARCHITECTURE.md)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)


def _write_tokenizer(plan: ExportPlan, path: Path) -> None:
    """Copy tokenizer.json, or have transformers write one from the checkpoint's slow-tokenizer files."""
    for folder in (plan.backbone, plan.source):
        if (folder / "tokenizer.json").is_file():
            shutil.copyfile(folder / "tokenizer.json", path)
            return
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(plan.backbone), use_fast=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{plan.backbone}: no tokenizer.json and no tokenizer transformers can load") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"{plan.backbone}: only a slow tokenizer is available; a fast tokenizer.json is needed")
    tokenizer.backend_tokenizer.save(str(path))


def _max_positions(config: Any) -> int | None:
    """Longest input the position embeddings allow (RoBERTa-style models reserve pad+1 slots)."""
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int):
        return None
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        limit -= int(getattr(config, "pad_token_id", 1) or 0) + 1
    return limit


def _manifest(
    plan: ExportPlan,
    name: str,
    dim: int,
    config: Any,
    quantized: bool,
    license: str | None,
    inputs: list[str],
) -> dict[str, Any]:
    import onnxruntime
    import torch
    import transformers

    c = plan.conventions
    limit = _max_positions(config)
    for role, length in (("query", c.query_length), ("document", c.document_length)):
        if limit is not None and length > limit:
            raise ModelError(f"{role} length {length} exceeds the model's {limit} positions; pass --{role}-length")
    weights = sorted(plan.backbone.glob("*.safetensors")) + [p.weights for p in plan.projections]
    conversion = (
        f"lateint models export ({plan.layout} layout): torch {torch.__version__} torch.onnx.export(opset {OPSET}), "
        f"transformers {transformers.__version__}, inputs {inputs}"
        + (f", onnxruntime {onnxruntime.__version__} quantize_dynamic(QInt8, per_channel=True)" if quantized else "")
    )
    return {
        "format_version": MANIFEST_FORMAT,
        "name": name,
        "description": f"exported from {plan.source.name} ({plan.layout} layout)",
        "dim": dim,
        "files": {
            "model": {"path": "model.onnx", "sha256": None},
            "tokenizer": {"path": "tokenizer.json", "sha256": None},
        },
        "output": OUTPUT_NAME,
        "normalize": True,
        # dynamic int8 scales activations over the whole batch: batch size 1 keeps vectors independent
        "max_batch_size": 1 if quantized else None,
        "max_positions": limit,
        "query": {
            "max_length": c.query_length,
            "prefix": c.query_prefix,
            "marker": c.query_marker,
            "expand_to": c.expand_to,
            "mask_token": c.mask_token,
            "attend_to_expansion": c.attend_to_expansion,
        },
        "document": {
            "max_length": c.document_length,
            "prefix": c.document_prefix,
            "marker": c.document_marker,
            "skiplist": list(c.skiplist),
        },
        "license": license or plan.license,
        "provenance": {
            "source_folder": plan.source.name,
            "source_weights_sha256": {p.name: sha256_file(p) for p in weights},
            "conversion": conversion,
        },
    }


def _copy_licence_files(source: Path, staging: Path) -> None:
    for name in ("LICENSE", "LICENSE.txt", "NOTICE", "README.md"):
        if (source / name).is_file():
            shutil.copyfile(source / name, staging / name)


def _min_cosine_vs_torch(model: Any, folder: Path, inputs: list[str]) -> float:
    """Smallest cosine between the written graph's and torch's token vectors on a probe text."""
    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    ids = np.array([tokenizer.encode(PROBE_TEXT).ids], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], {n: feeds[n] for n in inputs})[0][0]
    tensors = [torch.from_numpy(feeds[n]) for n in inputs]
    want = model(*tensors)[0].numpy()
    got = got / np.linalg.norm(got, axis=1, keepdims=True)
    want = want / np.linalg.norm(want, axis=1, keepdims=True)
    return float((got * want).sum(axis=1).min())

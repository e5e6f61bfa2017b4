"""Binding a text encoder to an index: load the model the file names, and refuse any other.

The index records its model's identity (name, weights fingerprint, dimension,
source) in its configuration. An encoder is either given by the caller (checked
against that identity at open) or loaded on first use from the recorded source
(a bundled model name or a model folder) with the index's document skiplist.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from .config import IndexConfig, ModelIdentity
from .encoder import Encoder, OnnxEncoder, with_passage_window
from .errors import InvalidInputError, ModelError, ModelMismatchError
from .manifest import load_manifest


def identity_of(model: str | os.PathLike[str] | None, encoder: Encoder | None) -> ModelIdentity:
    """The identity a new index records for a model name/folder or a custom encoder."""
    if encoder is not None:
        return ModelIdentity(encoder.name, encoder.fingerprint, encoder.dim, ModelIdentity.CUSTOM_ENCODER)
    manifest = load_manifest(None if model is None else str(model))
    source = manifest.name if model is None or str(model) == manifest.name else str(model)
    return ModelIdentity(manifest.name, manifest.model.sha256, manifest.dim, source)


class PassageWindow(NamedTuple):
    """The document window a new index records where its creator chose it (None: the model's)."""

    passage_length: int | None = None
    passage_overlap: int | None = None
    max_passages: int | None = None


def passage_window(
    model: str | os.PathLike[str] | None,
    encoder: Encoder | None,
    length: int | None,
    overlap: int | None,
    max_passages: int | None = None,
) -> PassageWindow:
    """The window a new index records: (passage length, overlap) when the caller chose either,
    ``max_passages`` when chosen, each checked against the model; all None when left to the model."""
    if length is None and overlap is None and max_passages is None:
        return PassageWindow()
    if encoder is not None:
        raise InvalidInputError(
            "passage_length, passage_overlap and max_passages apply to ONNX models, not to a custom encoder"
        )
    manifest = load_manifest(None if model is None else str(model))
    document = with_passage_window(manifest, length, overlap, max_passages).document
    sized = length is not None or overlap is not None
    return PassageWindow(
        document.max_length if sized else None,
        document.overlap if sized else None,
        None if max_passages is None else document.max_passages,
    )


class EncoderBinding:
    """The encoder of one open index, loaded lazily and checked against the file; thread-safe."""

    def __init__(
        self,
        config: IndexConfig,
        path: str,
        *,
        model: str | os.PathLike[str] | None = None,
        encoder: Encoder | None = None,
        threads: int | None = None,
        embedded: Callable[[], Path | None] | None = None,
    ) -> None:
        """``embedded``: the folder of the model the index carries (extracted), or None when it
        carries none; asked only when the recorded model cannot be found."""
        self._config = config
        self._path = path
        self._model = model
        self._threads = threads
        self._embedded = embedded
        self._lock = threading.Lock()
        self._encoder: Encoder | None = None
        self._given = encoder is not None
        if encoder is not None:
            self._check(encoder.name, encoder.fingerprint, encoder.dim)
            self._encoder = encoder
        elif model is not None:
            manifest = load_manifest(str(model))
            self._check(manifest.name, manifest.model.sha256, manifest.dim)

    def get(self) -> Encoder:
        """The encoder, loaded on first use."""
        with self._lock:
            if self._encoder is None:
                self._encoder = self._load()
            return self._encoder

    def release(self) -> bool:
        """Drop the model this binding loaded (the next :meth:`get` loads it again); an encoder the
        caller passed is kept. Returns whether one was dropped. Frees ~100 MiB (the ONNX session
        and its arena) for work that needs no encoder, such as a first build."""
        with self._lock:
            if self._given or self._encoder is None:
                return False
            self._encoder = None
            return True

    def _load(self) -> Encoder:
        recorded = self._config.model
        spec: str | os.PathLike[str] | None = self._model
        if spec is None:
            if recorded.is_custom:
                raise ModelError(
                    f"{self._path} was built with a custom encoder; pass the same encoder to open() to encode text"
                )
            spec = recorded.source or recorded.name
        try:
            encoder = self._onnx(spec)
            self._check(encoder.name, encoder.fingerprint, encoder.dim)
        except (ModelError, ModelMismatchError) as exc:
            if self._model is not None:  # the caller named the model: no substitute
                raise
            folder = self._embedded() if self._embedded is not None else None
            if folder is None:
                raise ModelError(
                    f"{self._path} was encoded by model {recorded.name!r} (from {recorded.source!r}, sha256 "
                    f"{recorded.fingerprint[:12]}), which is neither installed here nor embedded in the file "
                    f"({exc}); install that model (`lateint models list` shows what is installed), open with "
                    "model=<its folder>, or ship the index with `lateint export --with-model`"
                ) from exc
            encoder = self._onnx(folder)
            self._check(encoder.name, encoder.fingerprint, encoder.dim)
        return encoder

    def _onnx(self, spec: str | os.PathLike[str]) -> Encoder:
        config = self._config
        skiplist = None if config.skiplist is None else list(config.skiplist)
        return OnnxEncoder.from_model(
            spec,
            threads=self._threads,
            skiplist=skiplist,
            passage_length=config.passage_length,
            passage_overlap=config.passage_overlap,
            max_passages=config.max_passages,
        )

    def _check(self, name: str, fingerprint: str, dim: int) -> None:
        recorded = self._config.model
        if fingerprint != recorded.fingerprint or dim != recorded.dim:
            raise ModelMismatchError(
                f"{self._path} was built with model {recorded.name!r} "
                f"(sha256 {recorded.fingerprint[:12]}, dim {recorded.dim}); "
                f"got {name!r} (sha256 {fingerprint[:12]}, dim {dim})"
            )

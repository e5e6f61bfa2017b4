"""Public record types (Document, Hit) and validation of caller input.

Everything a caller hands to the index passes through here first, so malformed
input fails with an :class:`InvalidInputError` before any encoding or writing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import DuplicateIdError, InvalidInputError

MAX_ID_LENGTH = 1024


@dataclass(frozen=True)
class Document:
    """A stored document."""

    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    n_tokens: int = 0


@dataclass(frozen=True)
class Hit:
    """One search result; ``rank`` starts at 1."""

    id: str
    score: float
    rank: int
    text: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "id": self.id, "score": self.score, "text": self.text, "meta": self.meta}


@dataclass(frozen=True)
class DocumentInput:
    """A validated document waiting to be encoded and written."""

    id: str
    text: str
    meta_json: str
    vectors: np.ndarray | None = None


def normalize_id(value: object) -> str:
    """A document id as stored: non-empty str (ints are accepted and converted)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidInputError(f"document id must be a string, got {type(value).__name__}")
    text = str(value)
    if not text.strip():
        raise InvalidInputError("document id must not be empty")
    if len(text) > MAX_ID_LENGTH:
        raise InvalidInputError(f"document id longer than {MAX_ID_LENGTH} characters")
    return text


def normalize_text(value: object, what: str = "text") -> str:
    """Non-empty, non-whitespace string."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInputError(f"{what} must not be empty or whitespace")
    return value


def encode_meta(value: object) -> str:
    """Canonical JSON text of a metadata mapping (None means {})."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"meta must be a mapping, got {type(value).__name__}")
    try:
        return json.dumps(dict(value), ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"meta is not JSON-serializable: {exc}") from exc


def check_vectors(value: object, dim: int, what: str = "vectors") -> np.ndarray:
    """A finite (n >= 1, dim) float32 matrix, from precomputed token vectors."""
    try:
        array = np.asarray(value)
    except Exception as exc:  # arbitrary objects can fail in arbitrary ways
        raise InvalidInputError(f"{what}: not an array: {exc}") from exc
    if array.dtype.kind not in "fiu":
        raise InvalidInputError(f"{what}: expected a numeric array, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] != dim:
        raise InvalidInputError(f"{what}: expected shape (n >= 1, {dim}), got {array.shape}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise InvalidInputError(f"{what}: contains NaN or infinity")
    return array


def check_k(k: object) -> int:
    """A positive integer result count."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise InvalidInputError(f"k must be a positive integer, got {k!r}")
    return int(k)


def prepare_documents(docs: Iterable[Mapping[str, Any]], dim: int) -> list[DocumentInput]:
    """Validate documents ({"id", "text", "meta"?, "vectors"?}) and reject duplicate ids."""
    if isinstance(docs, Mapping):
        raise InvalidInputError("add() takes an iterable of documents, not a single mapping")
    prepared: list[DocumentInput] = []
    seen: set[str] = set()
    for position, doc in enumerate(docs):
        if not isinstance(doc, Mapping):
            raise InvalidInputError(f"document #{position} must be a mapping, got {type(doc).__name__}")
        if "id" not in doc:
            raise InvalidInputError(f"document #{position} has no 'id'")
        doc_id = normalize_id(doc["id"])
        if doc_id in seen:
            raise DuplicateIdError(f"document id {doc_id!r} appears more than once")
        seen.add(doc_id)
        text = normalize_text(doc.get("text"), f"document {doc_id!r}: text")
        vectors = doc.get("vectors")
        prepared.append(
            DocumentInput(
                id=doc_id,
                text=text,
                meta_json=encode_meta(doc.get("meta")),
                vectors=None if vectors is None else check_vectors(vectors, dim, f"document {doc_id!r}: vectors"),
            )
        )
    return prepared

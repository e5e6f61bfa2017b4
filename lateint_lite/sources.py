"""Reading documents from files: JSON Lines (optionally gzipped) and plain text.

JSON Lines records take their id from ``id`` or ``_id`` (BEIR), their text from
``text``, prefixed by ``title`` when one is present, and their metadata from
``meta`` (or ``metadata``). A plain text file is one document whose id is the
path as given.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import InvalidInputError

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz")


def is_jsonl(path: str) -> bool:
    """Whether a path names JSON Lines input (``-`` is stdin, read as JSON Lines)."""
    return path == "-" or path.lower().endswith(JSONL_SUFFIXES)


def open_text(path: str) -> IO[str]:
    """Open a text file, gunzipping ``*.gz``; ``-`` is stdin."""
    if path == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8")
    try:
        if path.lower().endswith(".gz"):
            return gzip.open(path, "rt", encoding="utf-8")
        return open(path, encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"{path}: {exc.strerror or exc}") from exc


def read_jsonl(path: str) -> Iterator[dict[str, Any]]:
    """Decoded JSON objects of a JSON Lines file; blank lines are skipped."""
    with open_text(path) as handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidInputError(f"{path}:{number}: invalid JSON: {exc.msg}") from exc
                if not isinstance(obj, dict):
                    raise InvalidInputError(f"{path}:{number}: expected a JSON object")
                yield obj
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"{path}: cannot read: {exc}") from exc


def record_to_document(obj: dict[str, Any], where: str = "record") -> dict[str, Any]:
    """A document mapping from one JSON record (id/_id, title + text, meta/metadata)."""
    doc_id = obj.get("id", obj.get("_id"))
    if doc_id is None:
        raise InvalidInputError(f"{where}: no 'id' (or '_id') field")
    text = obj.get("text")
    if not isinstance(text, str):
        raise InvalidInputError(f"{where}: 'text' must be a string")
    meta = obj.get("meta", obj.get("metadata")) or {}
    if not isinstance(meta, dict):
        raise InvalidInputError(f"{where}: 'meta' must be an object")
    title = obj.get("title")
    if isinstance(title, str) and title.strip():
        text = f"{title.strip()}\n\n{text}" if text.strip() else title.strip()
        meta = {**meta, "title": title.strip()}
    return {"id": doc_id, "text": text, "meta": meta}


def read_documents(path: str) -> Iterator[dict[str, Any]]:
    """Documents of one input: JSON Lines records, or a whole text file as one."""
    if is_jsonl(path):
        for number, obj in enumerate(read_jsonl(path), start=1):
            yield record_to_document(obj, f"{path}: record {number}")
        return
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path}: cannot read: {exc}") from exc
    name = displayable(path)
    yield {"id": name, "text": text, "meta": {"path": name}}


def displayable(path: str) -> str:
    """A file name or command-line argument as valid Unicode: bytes that were not UTF-8 (kept
    by Python as lone surrogates) become U+FFFD, as a terminal shows them."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")

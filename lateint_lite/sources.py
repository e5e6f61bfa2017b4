"""Reading documents from inputs: JSON Lines (optionally gzipped), files and folders.

JSON Lines records take their id from ``id`` or ``_id`` (BEIR), their text from
``text``, prefixed by ``title`` when one is present, and their metadata from
``meta`` (or ``metadata``). Any other file is one document whose id is its path
(as given, or below the folder given), its text extracted by :mod:`extract`,
and its metadata ``path``, ``size``, ``mtime`` (UTC, ISO 8601), ``sha256`` of
the bytes, and a ``title`` when the format has one. Folders are walked
recursively (hidden entries skipped); files that hold no text are skipped
with a reason instead of failing the batch.
"""

from __future__ import annotations

import codecs
import datetime as dt
import fnmatch
import gzip
import hashlib
import io
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from .errors import InvalidInputError
from .extract import HTML_SUFFIXES, PDF_SUFFIXES, TEXT_SUFFIXES, NotText, extract

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


#: Files a folder contributes when no ``--glob`` is given (JSON Lines only when named or globbed).
DEFAULT_PATTERNS = tuple(f"*{s}{gz}" for s in (*TEXT_SUFFIXES, *HTML_SUFFIXES, *PDF_SUFFIXES) for gz in ("", ".gz"))


@dataclass(frozen=True)
class Skipped:
    """A file that gave no document, and why."""

    path: str
    reason: str


@dataclass
class Collected:
    """Documents read from inputs, and the files skipped on the way."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def skip_summary(self) -> str:
        """'3 files skipped: 2 binary, 1 no text' (empty when nothing was skipped)."""
        if not self.skipped:
            return ""
        counts = Counter(_reason_kind(s.reason) for s in self.skipped)
        parts = ", ".join(f"{n} {reason}" for reason, n in counts.most_common())
        return f"{len(self.skipped)} file{'' if len(self.skipped) == 1 else 's'} skipped: {parts}"


def _reason_kind(reason: str) -> str:
    """A reason without its details ('not UTF-8 text (byte 3)' -> 'not UTF-8 text')."""
    return reason.split(" (", 1)[0].split(":", 1)[0]


def collect_documents(
    inputs: Sequence[str], patterns: Sequence[str] | None = None, encoding: str | None = None
) -> Collected:
    """Documents of every input: JSON Lines files and stdin (records), other files (one document
    each) and folders (their files matching ``patterns``, recursively, in name order).
    ``encoding`` reads plain text files that are not UTF-8 (see :func:`text_encoding`)."""
    fallback = text_encoding(encoding)
    collected = Collected()
    for given in inputs:
        if given != "-" and not os.path.lexists(given):
            raise InvalidInputError(f"{displayable(given)}: no such file or directory")
        paths = walk(given, patterns or DEFAULT_PATTERNS) if given != "-" and os.path.isdir(given) else [given]
        for path in paths:
            _collect_file(path, collected, fallback)
    return collected


def text_encoding(name: str | None) -> str | None:
    """The codec's canonical name for ``name`` (e.g. "latin-1" -> "iso8859-1"), None for None;
    :class:`InvalidInputError` for a name Python does not know or a codec that is not text."""
    if name is None:
        return None
    try:
        info = codecs.lookup(name)
    except LookupError as exc:
        raise InvalidInputError(f"unknown text encoding {name!r} (e.g. cp1252, latin-1, shift_jis)") from exc
    if not getattr(info, "_is_text_encoding", True):
        raise InvalidInputError(f"{name!r} is not a text encoding")
    return info.name


def walk(folder: str, patterns: Sequence[str]) -> Iterator[str]:
    """Files below ``folder`` whose names match a pattern (case-insensitive), sorted; hidden
    files and folders are left out, symbolic links to folders are not followed."""
    lowered = [p.lower() for p in patterns]
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and any(fnmatch.fnmatchcase(name.lower(), p) for p in lowered):
                yield os.path.join(root, name)


def _collect_file(path: str, collected: Collected, fallback: str | None) -> None:
    if is_jsonl(path):
        collected.documents.extend(read_documents(path))
        return
    try:
        collected.documents.append(file_document(path, fallback))
    except NotText as exc:
        collected.skipped.append(Skipped(displayable(path), exc.reason))


def file_document(path: str, fallback: str | None = None) -> dict[str, Any]:
    """One file as a document (id = its path); :class:`NotText` when it holds no text or cannot be
    read. ``fallback``: the encoding of plain text that is not UTF-8 (a checked codec name)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
            stat = os.fstat(handle.fileno())
    except OSError as exc:
        raise NotText(f"unreadable ({exc.strerror or exc})") from exc
    extracted = extract(path, data, fallback)
    name = displayable(path)
    mtime = dt.datetime.fromtimestamp(stat.st_mtime, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta = {"path": name, "size": stat.st_size, "mtime": mtime, "sha256": hashlib.sha256(data).hexdigest()}
    return {"id": name, "text": extracted.text, "meta": {**extracted.meta, **meta}}


def read_documents(path: str) -> Iterator[dict[str, Any]]:
    """Documents of one input: JSON Lines records, or a whole file as one (text extracted)."""
    if is_jsonl(path):
        for number, obj in enumerate(read_jsonl(path), start=1):
            yield record_to_document(obj, f"{path}: record {number}")
        return
    try:
        yield file_document(path)
    except NotText as exc:
        raise InvalidInputError(f"{displayable(path)}: {exc.reason}") from exc


def displayable(path: str) -> str:
    """A file name or command-line argument as valid Unicode: bytes that were not UTF-8 (kept
    by Python as lone surrogates) become U+FFFD, as a terminal shows them."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")

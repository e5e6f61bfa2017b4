"""The validation boundary: everything a caller hands the index becomes a typed request here.

Documents, ids, query texts, query vectors, ``k`` and search options are checked
and normalized (numpy scalars included) before any I/O or encoding; anything
malformed raises :class:`InvalidInputError` and nothing is read or written.
Bytes read from the file are checked elsewhere, by the readers that decode them
(codecs, inverted lists, config), which raise :class:`CorruptIndexError`.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

import numpy as np

from .config import BuildOptions
from .errors import DuplicateIdError, InvalidInputError
from .filters import Clause, parse_where, valid_unicode
from .search import PruningParams

MAX_ID_LENGTH = 1024
SEARCH_MODES = ("maxsim", "bm25", "hybrid", "pooled")
FUSIONS = ("rrf", "score")
#: min-max score fusion beat RRF on SciFact (72.66 vs 71.56 nDCG@10) and, confirming, on
#: NFCorpus (35.86 vs 35.60); see docs/benchmarks.md.
DEFAULT_FUSION = "score"
#: Each ranking fused by hybrid search contributes its top max(k, HYBRID_DEPTH) documents.
HYBRID_DEPTH = 100


@dataclass(frozen=True)
class DocumentInput:
    """A validated document waiting to be encoded and written."""

    id: str
    text: str
    meta_json: str
    vectors: np.ndarray | None = None  # precomputed vectors, one passage (origin: vectors)
    passages: tuple[np.ndarray, ...] | None = None  # the text's passages, encoded by the index's model


def normalize_id(value: object) -> str:
    """A document id as stored: non-empty str (ints are accepted and converted)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (str, numbers.Integral)):
        raise InvalidInputError(f"document id must be a string, got {type(value).__name__}")
    text = str(int(value)) if isinstance(value, numbers.Integral) else valid_unicode(value, "document id")
    if not text.strip():
        raise InvalidInputError("document id must not be empty")
    if len(text) > MAX_ID_LENGTH:
        raise InvalidInputError(f"document id longer than {MAX_ID_LENGTH} characters")
    return text


def normalize_ids(values: Iterable[object], what: str = "ids") -> list[str]:
    """Unique ids in first-seen order; a bare string is refused (it would be read as characters)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise InvalidInputError(f"{what} must be a list of document ids, got {type(values).__name__}")
    return list(dict.fromkeys(normalize_id(v) for v in values))


def normalize_text(value: object, what: str = "text") -> str:
    """Non-empty, non-whitespace string."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInputError(f"{what} must not be empty or whitespace")
    return valid_unicode(value, what)


def normalize_texts(values: object, what: str = "queries") -> list[str]:
    """A list of query texts; a bare string is refused."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise InvalidInputError(f"{what} must be a list of strings, not a single {type(values).__name__}")
    return [normalize_text(v, "query") for v in values]


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
    array = array.astype(np.float32, copy=False)  # float32 input is used as given (no second copy of a batch)
    squares = np.einsum("ij,ij->i", array, array)
    if squares.min() > 0 and np.isfinite(squares).all():
        return array  # finite, no zero row (the common case, one pass; else the exact checks below)
    if not np.isfinite(array).all():
        raise InvalidInputError(f"{what}: contains NaN or infinity")
    zero = np.flatnonzero(~np.any(array != 0, axis=1))
    if zero.size:
        raise InvalidInputError(f"{what}: row {int(zero[0])} is all zeros (a token vector needs a direction)")
    return array


def positive_int(value: object, what: str) -> int:
    """A positive integer (numpy integers accepted; bools and floats refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value <= 0:
        raise InvalidInputError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


#: Result counts above this are treated as "everything" (SQLite binds 64-bit integers; no index
#: holds this many documents).
MAX_K = 2**31 - 1


def positive_count(value: object, what: str) -> int:
    """A positive integer count of results or candidates; counts beyond ``MAX_K`` mean all of them."""
    return min(positive_int(value, what), MAX_K)


def check_k(k: object) -> int:
    """A positive integer result count."""
    return positive_count(k, "k")


def prepare_documents(docs: Iterable[Mapping[str, Any]], dim: int) -> list[DocumentInput]:
    """Validate documents ({"id", "text", "meta"?, "vectors"? | "passages"?}) and reject duplicate ids."""
    if isinstance(docs, (Mapping, str, bytes)) or not isinstance(docs, Iterable):
        raise InvalidInputError("add() takes an iterable of documents (mappings), not a single value")
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
        passages = doc.get("passages")
        if vectors is not None and passages is not None:
            raise InvalidInputError(f"document {doc_id!r}: give 'vectors' or 'passages', not both")
        prepared.append(
            DocumentInput(
                id=doc_id,
                text=text,
                meta_json=encode_meta(doc.get("meta")),
                vectors=None if vectors is None else check_vectors(vectors, dim, f"document {doc_id!r}: vectors"),
                passages=None if passages is None else check_passages(passages, dim, doc_id),
            )
        )
    return prepared


def check_passages(value: object, dim: int, doc_id: str) -> tuple[np.ndarray, ...]:
    """A document's encoded passages: a non-empty list of (n >= 1, dim) matrices."""
    if isinstance(value, np.ndarray) or not isinstance(value, Iterable) or isinstance(value, (str, bytes)):
        raise InvalidInputError(f"document {doc_id!r}: passages must be a list of (n, {dim}) arrays")
    parts = tuple(check_vectors(p, dim, f"document {doc_id!r}: passage {i}") for i, p in enumerate(value))
    if not parts:
        raise InvalidInputError(f"document {doc_id!r}: passages must not be empty")
    return parts


@dataclass(frozen=True)
class SearchOptions:
    """How to search; every field is optional (see :meth:`lateint_lite.Index.search`).

    ``mode``: "maxsim", "bm25", "hybrid" or "pooled". ``where``: metadata filter
    (:mod:`lateint_lite.filters`). ``exact``: exhaustive MaxSim instead of PLAID
    pruning. ``ncells``, ``threshold``, ``ndocs``: PLAID overrides (defaults by k).
    ``fusion``: "score" or "rrf" (hybrid only). ``highlight``: fill each hit's
    ``highlights`` and ``snippet_span`` (what the query matched).
    """

    mode: str = "maxsim"
    where: Mapping[str, Any] | None = None
    exact: bool = False
    ncells: int | None = None
    threshold: float | None = None
    ndocs: int | None = None
    fusion: str = DEFAULT_FUSION
    highlight: bool = True


Options = TypeVar("Options", SearchOptions, BuildOptions)


def with_overrides(kind: type[Options], options: object, overrides: Mapping[str, Any]) -> Options:
    """``options`` (an instance of ``kind`` or None for the defaults) with keyword overrides;
    unknown names and wrong types are an error."""
    if options is not None and not isinstance(options, kind):
        raise InvalidInputError(f"options must be a {kind.__name__}, got {type(options).__name__}")
    base = options if options is not None else kind()
    names = {f.name for f in fields(base)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise InvalidInputError(f"unknown option {unknown[0]!r}; {kind.__name__} has {', '.join(sorted(names))}")
    return replace(base, **overrides) if overrides else base


@dataclass(frozen=True)
class SearchRequest:
    """A validated search: k, mode and fusion, filter conditions, pruning parameters."""

    k: int
    depth: int  # how many MaxSim results to compute (max(k, HYBRID_DEPTH) when fused)
    mode: str
    fusion: str
    exact: bool
    conditions: tuple[Clause, ...]
    params: PruningParams
    highlight: bool = True


def search_request(
    k: object, options: SearchOptions | None = None, overrides: Mapping[str, Any] | None = None
) -> SearchRequest:
    """Validate ``k`` and the options (a :class:`SearchOptions` and/or keyword overrides)."""
    opts = with_overrides(SearchOptions, options, overrides or {})
    count = check_k(k)
    if opts.mode not in SEARCH_MODES:
        raise InvalidInputError(f"mode must be one of {', '.join(SEARCH_MODES)}, got {opts.mode!r}")
    if opts.fusion not in FUSIONS:
        raise InvalidInputError(f"fusion must be one of {', '.join(FUSIONS)}, got {opts.fusion!r}")
    exact = flag(opts.exact, "exact")
    depth = max(count, HYBRID_DEPTH) if opts.mode == "hybrid" else count
    params = PruningParams.for_k(
        depth,
        ncells=None if opts.ncells is None else positive_count(opts.ncells, "ncells"),
        threshold=None if opts.threshold is None else _number(opts.threshold, "threshold"),
        ndocs=None if opts.ndocs is None else positive_count(opts.ndocs, "ndocs"),
    )
    return SearchRequest(
        k=count,
        depth=depth,
        mode=opts.mode,
        fusion=opts.fusion,
        exact=exact,
        conditions=parse_where(opts.where),
        params=params,
        highlight=flag(opts.highlight, "highlight"),
    )


def _number(value: object, what: str) -> float:
    """A real number (infinities allowed: -inf keeps every centroid); NaN, bools and strings refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or math.isnan(float(value)):
        raise InvalidInputError(f"{what} must be a number, got {value!r}")
    return float(value)


def flag(value: object, what: str) -> bool:
    """A boolean option (numpy booleans accepted)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidInputError(f"{what} must be true or false, got {value!r}")
    return bool(value)


def supplied_vectors(value: object) -> Any:
    """Vectors passed to a rebuild: None, a mapping id -> array, or a function ids -> arrays."""
    if value is None or isinstance(value, Mapping) or callable(value):
        return value
    raise InvalidInputError(f"vectors must be a mapping of id -> array or a function, got {type(value).__name__}")


def optional_seconds(value: object, what: str) -> float | None:
    """``None`` (no limit) or a positive, finite number of seconds."""
    if value is None:
        return None
    seconds = _number(value, what)
    if not 0 < seconds < math.inf:
        raise InvalidInputError(f"{what} must be a positive number of seconds or None, got {value!r}")
    return seconds


def optional_k(k: object) -> int | None:
    """``None`` (all) or a positive result count."""
    return None if k is None else check_k(k)


__all__ = [
    "DEFAULT_FUSION",
    "FUSIONS",
    "SEARCH_MODES",
    "DocumentInput",
    "SearchOptions",
    "SearchRequest",
    "check_k",
    "check_vectors",
    "normalize_id",
    "normalize_ids",
    "normalize_text",
    "normalize_texts",
    "prepare_documents",
    "search_request",
    "with_overrides",
]

"""How a hit is written as JSON (CLI ``--json``/``--jsonl``, HTTP responses): the fields one may
choose and their values."""

from __future__ import annotations

from typing import Any

from .documents import Hit
from .errors import InvalidInputError
from .explain import CLOSE_MARK, OPEN_MARK

#: Fields a record may carry. "snippet": the best-matching window on one line; "marked_snippet": the
#: same with every match wrapped in U+0002 ... U+0003; "highlights": [start, end] spans of "text";
#: "passage": which passage of the document MaxSim matched best (0-based; null when not explained);
#: "text": the whole document (an opt-in).
HIT_FIELDS = ("rank", "id", "score", "meta", "snippet", "marked_snippet", "highlights", "passage", "text")
DEFAULT_FIELDS = ("rank", "id", "score", "meta", "snippet")


def parse_fields(fields: list[str]) -> tuple[str, ...]:
    """Validated field names, in the order given; an unknown name is an error."""
    chosen = tuple(dict.fromkeys(f.strip() for f in fields if f.strip()))
    unknown = [f for f in chosen if f not in HIT_FIELDS]
    if unknown:
        raise InvalidInputError(f"unknown hit field {unknown[0]!r}; choose among {', '.join(HIT_FIELDS)}")
    if not chosen:
        raise InvalidInputError(f"fields must name at least one of {', '.join(HIT_FIELDS)}")
    return chosen


def hit_record(hit: Hit, fields: tuple[str, ...]) -> dict[str, Any]:
    """The chosen fields of one hit."""
    values = {
        "rank": lambda: hit.rank,
        "id": lambda: hit.id,
        "score": lambda: hit.score,
        "meta": lambda: hit.meta,
        "snippet": lambda: hit.snippet,
        "marked_snippet": lambda: hit.marked_snippet(OPEN_MARK, CLOSE_MARK),
        "highlights": lambda: [list(span) for span in hit.highlights],
        "passage": lambda: hit.passage,
        "text": lambda: hit.text,
    }
    return {name: values[name]() for name in fields}

"""How a hit is written in a JSON response: the fields a client may choose and their values."""

from __future__ import annotations

from typing import Any

from ..documents import Hit, preview
from ..errors import InvalidInputError

#: Fields a response may carry; "text" is the whole document, an opt-in.
HIT_FIELDS = ("rank", "id", "score", "meta", "snippet", "text")
DEFAULT_FIELDS = ("rank", "id", "score", "meta", "snippet")
#: Characters of a hit's plain snippet (the start of its text on one line).
SNIPPET_CHARS = 300


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
        "snippet": lambda: preview(hit.text, SNIPPET_CHARS),
        "text": lambda: hit.text,
    }
    return {name: values[name]() for name in fields}

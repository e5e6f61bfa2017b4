"""Public record types: a stored :class:`Document` and a search :class:`Hit`.

Caller input is validated in :mod:`lateint_lite.requests`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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


def preview(text: str, width: int = 100) -> str:
    """The start of ``text`` on one line (whitespace runs collapsed), cut to ``width`` characters with "…"."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"

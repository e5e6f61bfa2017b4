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
    """One search result; ``rank`` starts at 1.

    ``highlights`` are (start, end) character spans of ``text`` that the query matched
    (MaxSim: the document tokens some query token matched best; BM25: the matched terms);
    ``snippet_span`` is the window of ``text`` where they are densest. A document longer than
    the model's document length is scored by its best passage (MaxSim); ``passage`` says which
    (0-based), and the highlights and snippet come from it. All three are empty for pooled search,
    when ``highlight=False``, and beyond the first ``explain.EXPLAINED_HITS`` (20) hits of a search.
    """

    id: str
    score: float
    rank: int
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    highlights: tuple[tuple[int, int], ...] = ()
    snippet_span: tuple[int, int] | None = None
    passage: int | None = None

    @property
    def snippet(self) -> str:
        """The best-matching window of the text on one line ("…" where it was cut)."""
        return self.marked_snippet("", "")

    def marked_snippet(self, before: str = "**", after: str = "**") -> str:
        """:attr:`snippet` with every highlight wrapped in ``before`` / ``after``."""
        from .explain import render, snippet_window

        window = self.snippet_span or snippet_window(self.text, ())
        return render(self.text, window, self.highlights, before, after)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "id": self.id,
            "score": self.score,
            "text": self.text,
            "meta": self.meta,
            "snippet": self.snippet,
            "highlights": [list(span) for span in self.highlights],
            "passage": self.passage,
        }


def preview(text: str, width: int = 100) -> str:
    """The start of ``text`` on one line (whitespace runs collapsed), cut to ``width`` characters with "…"."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"

"""Explained matches: which parts of a document a query matched, and the snippet around them.

MaxSim already decides, for every query token, the document token it matches
best; :func:`maxsim_spans` recovers those tokens and maps them to character
spans of the original text through the tokenizer's offsets. BM25 matches come
from FTS5's ``highlight()`` (:func:`marked_spans`). :func:`snippet_window` picks
the window of the text where the matches are densest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .passages import best_passage

Span = tuple[int, int]
#: Hits explained per search, best first (each costs ~1-3 ms: tokenizing the text, token similarities);
#: the rest keep a snippet from the start of their text, as a result page shows the first hits.
EXPLAINED_HITS = 20
#: Characters of a snippet (before it is widened to whole words).
SNIPPET_CHARS = 240
#: A query token's best match is highlighted when its similarity is at least this (cosine).
MIN_MATCH_SIMILARITY = 0.5
#: Longest run of letters and digits a highlight is widened to (:func:`whole_words`).
MAX_WORD_CHARS = 40
#: Markers FTS5's highlight() wraps around matched terms (control characters no text should hold).
OPEN_MARK, CLOSE_MARK = "\x02", "\x03"


class Match(NamedTuple):
    """What a hit matched: character spans of its text, and (MaxSim) which passage scored best."""

    spans: list[Span]
    passage: int | None = None


def passage_match(
    similarity: np.ndarray,
    lengths: np.ndarray,
    token_spans: Sequence[Span | None],
    min_similarity: float,
    query_rows: np.ndarray | None = None,
) -> Match:
    """The best passage of a document (by MaxSim over its (nq, n) token similarities) and the spans
    of its tokens that some query token matched best (see :func:`maxsim_spans`); ``query_rows``
    (a mask over query tokens) keeps only the query's own words for the spans ([MASK] expansion
    tokens match function words, which made noise). ``token_spans`` covers every token, or the
    tokens up to the end of the best passage."""
    passage, first, end = best_passage(similarity, lengths)
    if len(token_spans) not in (end, similarity.shape[1]):
        return Match([], passage)
    rows = similarity if query_rows is None or query_rows.shape != (similarity.shape[0],) else similarity[query_rows]
    return Match(maxsim_spans(rows[:, first:end], token_spans[first:end], min_similarity), passage)


def maxsim_spans(similarity: np.ndarray, token_spans: Sequence[Span | None], min_similarity: float) -> list[Span]:
    """Character spans of the document tokens that are some query token's best match, from the
    (nq, n) token similarities (at least ``min_similarity``), merged and sorted; [] when the
    tokens and the spans do not line up."""
    if similarity.ndim != 2 or len(token_spans) != similarity.shape[1] or not similarity.shape[1]:
        return []
    best = similarity.argmax(axis=1)
    strong = similarity[np.arange(len(best)), best] >= min_similarity
    chosen = {token_spans[int(j)] for j in best[strong]}
    return merge_spans([s for s in chosen if s is not None and s[1] > s[0]])


def merge_spans(spans: Sequence[Span], text: str | None = None) -> list[Span]:
    """Sorted spans with overlapping or touching ones joined; given the ``text``, also those with
    only whitespace between them (so "**cry** **now**" reads "**cry now**")."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and (start <= merged[-1][1] or (text is not None and not text[merged[-1][1] : start].strip())):
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def readable_spans(spans: Sequence[Span], text: str, query: str | None) -> list[Span]:
    """Token spans as a reader wants them marked: whole words (:func:`whole_words`), without lone
    punctuation the query does not contain (a query word's best match is sometimes a quote
    mark or a bracket nearby; "C++" keeps its "+" for a query with "+")."""
    kept = [(s, e) for s, e in spans if any(c.isalnum() for c in text[s:e]) or (query and text[s:e] in query)]
    return whole_words(kept, text)


def whole_words(spans: Sequence[Span], text: str) -> list[Span]:
    """Spans widened to the whole words they cut into, merged: a model's word pieces match parts of
    words ("muta" of "mutably"), a reader expects the word marked. A word is a run of letters and
    digits; a span that would grow past ``MAX_WORD_CHARS`` (a hash, a data blob) is left cut."""
    widened = []
    for start, end in spans:
        wide = (_word_edge(text, start, -1), _word_edge(text, end, 1))
        widened.append(wide if wide[1] - wide[0] <= MAX_WORD_CHARS else (start, end))
    return merge_spans(widened)


def _word_edge(text: str, position: int, step: int) -> int:
    """``position`` (a span's start for step -1, its end for +1) moved to the edge of the word it
    falls inside (at most ``MAX_WORD_CHARS`` + 1 characters); unchanged at a word boundary."""
    if not 0 < position < len(text) or not (text[position - 1].isalnum() and text[position].isalnum()):
        return position
    edge, moved = position, 0
    while 0 < edge < len(text) and text[edge - 1 if step < 0 else edge].isalnum() and moved <= MAX_WORD_CHARS:
        edge += step
        moved += 1
    return edge


def marked_spans(original: str, marked: str) -> list[Span]:
    """Spans of the text between OPEN_MARK/CLOSE_MARK in ``marked`` (FTS5 highlight() output), as
    offsets into ``original``; [] when removing the marks does not give back the original."""
    spans: list[Span] = []
    plain: list[str] = []
    start: int | None = None
    for char in marked:
        if char == OPEN_MARK:
            start = len(plain)
        elif char == CLOSE_MARK and start is not None:
            spans.append((start, len(plain)))
            start = None
        else:
            plain.append(char)
    return merge_spans(spans) if "".join(plain) == original else []


def snippet_window(text: str, spans: Sequence[Span], width: int = SNIPPET_CHARS) -> Span:
    """(start, end) of the ``width``-character window holding the most matched characters, widened to
    whole words; the start of the text when nothing matched."""
    if len(text) <= width:
        return 0, len(text)
    if not spans:
        return 0, _word_end(text, width)
    best_start, best_cover = 0, -1
    ordered = sorted(spans)
    for first, (anchor, _) in enumerate(ordered):  # windows starting a little before each span
        start = max(0, min(anchor - width // 8, len(text) - width))
        cover = 0
        for begin, end in ordered[first:]:
            if begin >= start + width:
                break
            cover += min(end, start + width) - max(begin, start)
        if cover > best_cover:
            best_start, best_cover = start, cover
    start = _word_start(text, best_start)
    return start, _word_end(text, start + width)


def _word_start(text: str, position: int) -> int:
    """``position`` moved back to the start of the word it falls in."""
    while 0 < position < len(text) and not text[position - 1].isspace():
        position -= 1
    return position


def _word_end(text: str, position: int) -> int:
    """``position`` moved forward to the end of the word it falls in."""
    position = min(position, len(text))
    while position < len(text) and not text[position].isspace():
        position += 1
    return position


def render(text: str, window: Span, spans: Sequence[Span], before: str, after: str) -> str:
    """The window of ``text`` on one line, "…" at cut ends, with every span inside wrapped in markers."""
    start, end = window
    pieces, cursor = [], start
    for begin, finish in merge_spans(spans, text):
        begin, finish = max(begin, start), min(finish, end)
        if begin >= finish:
            continue
        pieces += [text[cursor:begin], before, text[begin:finish], after]
        cursor = finish
    pieces.append(text[cursor:end])
    body = " ".join("".join(pieces).split())
    return f"{'…' if start > 0 else ''}{body}{'…' if end < len(text) else ''}"

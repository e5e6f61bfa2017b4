"""Turning user text into a safe SQLite FTS5 query.

User input never reaches FTS5's query language as syntax: the text is split
into words (Unicode letters and digits), each word becomes a double-quoted
string (so ``NEAR``, ``AND``, ``*``, ``:`` or parentheses are plain words), and
the words are joined with ``OR`` so BM25 ranks documents by how many rare
query words they share. Text with no word at all yields no query.
"""

from __future__ import annotations

import re

WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 64


def fts5_query(text: str) -> str | None:
    """An FTS5 MATCH expression for ``text``, or None when it has no words."""
    terms = list(dict.fromkeys(w.lower() for w in WORD.findall(text)))[:MAX_TERMS]
    if not terms:
        return None
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)

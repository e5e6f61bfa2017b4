"""Text out of a file's bytes: plain text, Markdown, reStructuredText, HTML, gzip, PDF.

HTML goes through the standard library's ``html.parser`` (scripts, styles and
templates dropped; block elements end lines; ``<title>`` kept as metadata); PDF
through pypdf, the ``pdf`` extra. A file that holds no usable text raises
:class:`NotText` with the reason, which callers count instead of failing a batch.
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass, field
from html.parser import HTMLParser
from io import BytesIO
from typing import Any

TEXT_SUFFIXES = (".txt", ".text", ".md", ".markdown", ".rst")
HTML_SUFFIXES = (".html", ".htm", ".xhtml")
PDF_SUFFIXES = (".pdf",)
#: Byte order marks of text that holds NUL bytes (UTF-32 first: its little-endian mark starts
#: with UTF-16's); the codecs drop the mark.
_BYTE_ORDER_MARKS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
#: Bytes looked at for NUL bytes, the sign of a binary file.
SNIFF_BYTES = 8192


class NotText(Exception):
    """The file holds no text we can index; ``reason`` says why (binary, not UTF-8, empty, ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Extracted:
    """A file's text and what the format says about it (an HTML or PDF title)."""

    text: str
    meta: dict[str, Any] = field(default_factory=dict)


def kind_of(name: str) -> str:
    """ "html", "pdf" or "text" by file name (a trailing .gz is looked through)."""
    lowered = name.lower().removesuffix(".gz")
    if lowered.endswith(HTML_SUFFIXES):
        return "html"
    if lowered.endswith(PDF_SUFFIXES):
        return "pdf"
    return "text"


def extract(name: str, data: bytes, fallback: str | None = None) -> Extracted:
    """The text of a file called ``name`` holding ``data``; :class:`NotText` when there is none.
    Plain text is UTF-8, or UTF-16/32 with a byte order mark; ``fallback`` (a codec name such as
    "cp1252", checked by the caller) reads text that is neither, undecodable bytes as U+FFFD."""
    if name.lower().endswith(".gz"):
        data = _gunzip(data)
    kind = kind_of(name)
    if kind == "pdf":
        extracted = _pdf(data)
    elif kind == "html":
        # undeclared non-UTF-8 HTML is read as windows-1252, the web's default (as browsers do)
        extracted = _html(_decode(data, _declared_charset(data) or "windows-1252"))
    else:
        extracted = Extracted(_decode(data, fallback=fallback))
    if not extracted.text.strip():
        raise NotText("no text")
    return extracted


def _gunzip(data: bytes) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise NotText(f"bad gzip data ({exc})") from exc


def _decode(data: bytes, declared: str | None = None, fallback: str | None = None) -> str:
    """UTF-8 text, UTF-16/32 text that starts with its byte order mark (Windows "Unicode" text),
    text in the encoding the file declares (HTML), or in ``fallback``; :class:`NotText` otherwise."""
    marked = next((codec for bom, codec in _BYTE_ORDER_MARKS if data.startswith(bom)), None)
    if marked is not None:
        try:
            return data.decode(marked)
        except UnicodeDecodeError as exc:
            raise NotText(f"not {marked.upper()} text despite its byte order mark (byte {exc.start})") from exc
    if b"\x00" in data[:SNIFF_BYTES]:
        raise NotText("binary")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if declared is None and fallback is not None:
            try:
                return data.decode(fallback, errors="replace")
            except (UnicodeError, ValueError) as again:  # codecs that refuse even with "replace"
                raise NotText(f"not {fallback} text ({again})") from again
        if declared is None:
            raise NotText(f"not UTF-8 text (byte {exc.start}; --encoding reads other encodings)") from exc
        try:
            return data.decode(declared, errors="replace" if declared == "windows-1252" else "strict")
        except (LookupError, UnicodeDecodeError) as again:
            raise NotText(f"not {declared} text as declared ({again})") from again


#: An HTML document's declared encoding: <meta charset=...> or http-equiv content="...; charset=...",
#: looked for in the first bytes as the HTML standard's prescan does.
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
CHARSET_PRESCAN_BYTES = 1024 * 4


def _declared_charset(data: bytes) -> str | None:
    match = _CHARSET.search(data[:CHARSET_PRESCAN_BYTES])
    return match.group(1).decode("ascii").lower() if match else None


class _HtmlText(HTMLParser):
    """Collects visible text; block elements break lines."""

    HIDDEN = frozenset({"script", "style", "template", "noscript", "head"})
    BLOCKS = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "section",
         "article", "header", "footer", "table", "ul", "ol", "dl", "dt", "dd", "hr", "title"}
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._hidden = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self.HIDDEN:
            self._hidden += 1
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self.HIDDEN and self._hidden:
            self._hidden -= 1
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._hidden:
            self.parts.append(data)


def _html(markup: str) -> Extracted:
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    text = "\n".join(line for line in lines if line)
    title = " ".join("".join(parser.title).split())
    return Extracted(text, {"title": title} if title else {})


def _pdf(data: bytes) -> Extracted:
    try:
        import pypdf
    except ImportError as exc:
        raise NotText("PDF needs the pdf extra: pip install 'lateint-lite[pdf]'") from exc
    try:
        reader = pypdf.PdfReader(BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = str((reader.metadata.title if reader.metadata else None) or "").strip()
    except Exception as exc:  # pypdf raises many kinds on damaged files
        raise NotText(f"unreadable PDF ({type(exc).__name__}: {exc})") from exc
    meta: dict[str, Any] = {"pages": len(pages)}
    if title:
        meta["title"] = title
    return Extracted("\n\n".join(p.strip() for p in pages if p.strip()), meta)

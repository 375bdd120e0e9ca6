"""HTML -> text with tags stripped, keeping the block structure the model needs.

stdlib ``html.parser`` is enough: we want readable text, not a DOM. Script, style and other
non-content elements are dropped; headings become markdown ``#`` lines so the document splits
into sections like a markdown file; list items become ``- `` lines; table cells are separated by
`` | `` and rows by newlines, so a table stays readable row by row.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from .base import Document
from .encoding import decode, normalize_newlines
from .text import text_document_from_str

# Not content: code, styling, embedded objects, and navigation menus repeated on every page of a site.
_SKIP = {"script", "style", "noscript", "template", "svg", "head", "iframe", "object", "canvas", "nav"}
_BLOCK = {
    "p", "div", "section", "article", "main", "header", "footer", "nav", "aside", "blockquote", "pre",
    "ul", "ol", "dl", "dt", "dd", "table", "thead", "tbody", "tfoot", "form", "fieldset", "figure",
    "figcaption", "address", "hr", "details", "summary", "body", "html",
}  # fmt: skip
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_VOID = {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "track", "wbr"}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._skip_depth = 0
        self._in_title = False
        self._pre = 0
        self._cell_open = False

    def _newline(self, blank: bool = False) -> None:
        """End the current line (``blank``: and leave an empty line), without stacking empty lines."""
        want = 2 if blank else 1
        tail = "".join(self.parts[-3:]).rstrip(" ")
        have = len(tail) - len(tail.rstrip("\n"))
        if self.parts and have < want:
            self.parts.append("\n" * (want - have))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
            return
        if tag in _SKIP:
            if tag not in _VOID:
                self._skip_depth += 1
            return
        if self._skip_depth:
            return
        if tag in _HEADINGS:
            self._newline(blank=True)
            self.parts.append("#" * _HEADINGS[tag] + " ")
        elif tag == "li":
            self._newline()
            self.parts.append("- ")
        elif tag == "br":
            self._newline()
        elif tag == "tr":
            self._newline()
            self._cell_open = False
        elif tag in ("td", "th"):
            if self._cell_open:
                self.parts.append(" | ")
            self._cell_open = True
        elif tag == "pre":
            self._pre += 1
            self._newline(blank=True)
        elif tag in _BLOCK:
            self._newline(blank=tag in ("p", "table", "blockquote"))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "hr") and not self._skip_depth:
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            return
        if tag in _SKIP:
            if tag not in _VOID:
                self._skip_depth = max(0, self._skip_depth - 1)
            return
        if self._skip_depth:
            return
        if tag in _HEADINGS or tag in ("p", "table", "pre"):
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
            self._newline(blank=True)
        elif tag in _BLOCK or tag == "li":
            self._newline()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
            return
        if self._skip_depth:
            return
        if self._pre:
            self.parts.append(data)
            return
        text = re.sub(r"\s+", " ", data)
        if text == " " and (not self.parts or self.parts[-1].endswith(("\n", " "))):
            return  # whitespace between block tags
        self.parts.append(text)


def html_to_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    lines = [line.strip() if not line.startswith("    ") else line.rstrip() for line in text.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    title = " ".join("".join(parser.title).split())
    if title and not text.startswith(title) and f"# {title}" not in text:
        text = f"# {title}\n\n{text}"
    return text


def _declared_charset(data: bytes) -> str | None:
    m = _META_CHARSET.search(data[:4096])
    if not m:
        return None
    name = m.group(1).decode("ascii", "ignore")
    try:
        "".encode(name)
    except LookupError:
        return None
    return name


def html_document(data: bytes, source: str) -> Document:
    warnings: list[str] = []
    charset = _declared_charset(data)
    if charset and charset.lower().replace("-", "") not in ("utf8", "utf16"):
        html = data.decode(charset, errors="replace")
    else:
        html = decode(data, source, warnings)
    text = html_to_text(normalize_newlines(html))
    return text_document_from_str(text, source, "html", warnings)

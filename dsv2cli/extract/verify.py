"""Evidence checks: is a quote really in the document, and where?

Matching rule (documented in the README): both sides are normalised the same way, character by
character (:mod:`dsv2cli.sources.quotes`, which ``ask`` uses for quotes too), then the quote must
be a substring of the document text:

- Unicode NFKC (ligatures such as "ﬁ" become "fi"), then case-folded: models often
  capitalise a quote taken from mid-sentence, and case carries no evidence;
- curly quotes and apostrophes become straight ones; en/em dashes and minus signs become "-";
- any run of whitespace (line breaks, PDF column gaps) becomes one space;
- a quote's own wrapping (surrounding quote marks, leading/trailing "..." or "…", spaces) is
  ignored.

Words, digits and punctuation inside the quote must match. A quote shorter than
``MIN_QUOTE_CHARS`` after normalisation is never verified (too short to prove anything), and an
ellipsis inside a quote (skipping text) is not matched.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..sources.base import Document, Location, Segment
from ..sources.quotes import MIN_QUOTE_CHARS, normalise, normalise_quote

__all__ = ["MIN_QUOTE_CHARS", "Found", "SourceText", "check_fields", "normalise", "normalise_quote"]


@dataclass(frozen=True)
class _Span:
    start: int  # in the normalised document text
    end: int
    segment: Segment
    index: list[int]  # normalised offset (relative to start) -> raw offset in segment.text


class SourceText:
    """A document's text, normalised once, for many quote look-ups."""

    def __init__(self, doc: Document) -> None:
        self.source = doc.source
        parts: list[str] = []
        self._spans: list[_Span] = []
        pos = 0
        for segment in doc.segments:
            norm, index = normalise(segment.text)
            if not norm:
                continue
            if parts:
                parts.append(" ")  # segments are separated by a blank line in Document.text
                pos += 1
            parts.append(norm)
            self._spans.append(_Span(pos, pos + len(norm), segment, index))
            pos += len(norm)
        self.text = "".join(parts)

    def find(self, quote: str) -> Found | None:
        """Where ``quote`` first occurs, or None when it is not in the document."""
        needle = normalise_quote(quote)
        if len(needle) < MIN_QUOTE_CHARS or "..." in needle or "…" in needle:
            return None
        at = self.text.find(needle)
        if at < 0:
            return None
        end = at + len(needle)
        spans = [s for s in self._spans if s.start < end and s.end > at]
        first, last = spans[0], spans[-1]
        loc = first.segment.location
        line_start = _line(first, max(at, first.start))
        line_end = _line(last, min(end, last.end) - 1)
        location = Location(loc.source, loc.page, line_start, line_end, loc.section)
        return Found(location, last.segment.location.page)


@dataclass(frozen=True)
class Found:
    location: Location  # where the quote starts (page, section, first line) and its last line
    page_end: int | None  # the page it ends on

    def to_dict(self) -> dict[str, object]:
        """The result's ``location``: page(s), section, lines and a citation."""
        loc = self.location
        spans_pages = self.page_end is not None and loc.page is not None and self.page_end != loc.page
        cite = replace(loc, source="").cite().strip()
        if spans_pages:
            cite = cite.replace(f"p. {loc.page}", f"pp. {loc.page}-{self.page_end}")
        elif cite.startswith(":"):  # a text file: lines only
            cite = ("line " if loc.line_start == loc.line_end else "lines ") + cite[1:]
        return {
            "page": loc.page,
            "page_end": self.page_end if spans_pages else None,
            "section": loc.section,
            "line_start": loc.line_start,
            "line_end": loc.line_end,
            "cite": cite,
        }


def _line(span: _Span, offset: int) -> int | None:
    base = span.segment.location.line_start
    if base is None:
        return None
    raw = span.index[offset - span.start]
    return base + span.segment.text.count("\n", 0, raw)


def check_fields(fields: dict[str, object], source: SourceText) -> list[str]:
    """Add ``verified`` and ``location`` to every non-null field (in place); return the unverified names.

    ``fields`` maps name -> ``None`` or ``{"value", "evidence", ...}`` as the model wrote it.
    """
    unverified: list[str] = []
    for name, entry in fields.items():
        if not isinstance(entry, dict):
            continue
        found = source.find(str(entry.get("evidence", "")))
        entry["verified"] = found is not None
        entry["location"] = found.to_dict() if found is not None else None
        if found is None:
            unverified.append(name)
    return unverified

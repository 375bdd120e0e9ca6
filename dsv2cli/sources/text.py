"""Plain text and markdown (files or standard input), split into segments along their structure.

A segment is a run of whole lines, with its line range, so a later map-reduce can cut between
segments without breaking a sentence and a citation can say ``notes.md:40-52``:

- markdown: one segment per heading section (ATX ``#`` headings outside code fences);
- text with numbered clauses (``1.``, ``8.2``, ``Section 8.2``, ``ARTICLE IV``): one per clause,
  with ``Location.section`` set;
- anything else: paragraphs, grouped.

A section longer than ``MAX_SEGMENT_CHARS`` is split further at blank lines (then at line ends),
so no single segment is too large to place in a small context window.
"""

from __future__ import annotations

import re

from .base import Document, Location, Segment
from .encoding import decode, normalize_newlines
from .structure import find_headings, parse_heading

MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdown", ".mkd"}

# ~1,500 tokens: small enough for any window we support, large enough to keep paragraphs whole.
MAX_SEGMENT_CHARS = 6000

_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t#]*$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")

# (first line index, section label or None) for each block start
Boundary = tuple[int, str | None]


def markdown_boundaries(lines: list[str]) -> list[Boundary]:
    """Heading lines outside fenced code; a heading numbered like ``## 8.2 Fees`` gives the section."""
    starts: list[Boundary] = []
    fence: str | None = None
    for i, line in enumerate(lines):
        m = _FENCE.match(line)
        if m:
            marker = m.group(1)
            if fence is None:
                fence = marker[0] * 3
            elif marker.startswith(fence):
                fence = None
            continue
        if fence is not None or not line.lstrip().startswith("#"):
            continue
        h = _ATX.match(line)
        if h:
            parsed = parse_heading(h.group(2) or "")
            starts.append((i, parsed[0] if parsed else None))
    return starts


def clause_boundaries(lines: list[str]) -> list[Boundary]:
    return [(h.line, h.label) for h in find_headings(lines)]


def _trimmed(lines: list[str], start: int, end: int) -> tuple[int, int] | None:
    """Shrink [start, end) past blank lines at both ends; None when nothing is left."""
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return (start, end) if start < end else None


def _pieces(lines: list[str], start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Split [start, end) into runs of whole lines of at most ~``limit`` characters, preferring blank lines."""
    out: list[tuple[int, int]] = []
    piece_start = start
    size = 0
    last_blank: int | None = None
    for i in range(start, end):
        size += len(lines[i]) + 1
        if not lines[i].strip():
            last_blank = i
        if size > limit and i > piece_start:
            cut = last_blank + 1 if last_blank is not None and last_blank > piece_start else i
            out.append((piece_start, cut))
            piece_start = cut
            size = sum(len(x) + 1 for x in lines[piece_start : i + 1])
            last_blank = None
    out.append((piece_start, end))
    return out


def segments_from_lines(
    lines: list[str], source: str, boundaries: list[Boundary], *, limit: int = MAX_SEGMENT_CHARS
) -> list[Segment]:
    """Segments cut at ``boundaries`` (and inside long blocks), trimmed of blank edge lines."""
    starts = [b for b in boundaries if b[0] > 0]
    blocks: list[tuple[int, int, str | None]] = []
    first_section = next((label for line, label in boundaries if line == 0), None)
    prev, label = 0, first_section
    for line, next_label in starts:
        blocks.append((prev, line, label))
        prev, label = line, next_label
    blocks.append((prev, len(lines), label))

    segments: list[Segment] = []
    for start, end, section in blocks:
        for a, b in _pieces(lines, start, end, limit):
            span = _trimmed(lines, a, b)
            if span is None:
                continue
            s, e = span
            loc = Location(source, line_start=s + 1, line_end=e, section=section)
            segments.append(Segment("\n".join(lines[s:e]), loc))
    return segments


def split_text(text: str, source: str, kind: str) -> list[Segment]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    boundaries = markdown_boundaries(lines) if kind in ("markdown", "html") else clause_boundaries(lines)
    return segments_from_lines(lines, source, boundaries)


def text_document(data: bytes, source: str, kind: str = "text") -> Document:
    warnings: list[str] = []
    text = normalize_newlines(decode(data, source, warnings))
    return text_document_from_str(text, source, kind, warnings)


def text_document_from_str(text: str, source: str, kind: str, warnings: list[str] | None = None) -> Document:
    segments = split_text(text, source, kind)
    return Document(source, kind, segments, list(warnings or []))

"""Greedy packing of ranked chunks into a token budget, as citable sources in reading order.

Best chunks are taken first until the budget is full; chunks of one file that overlap or touch
(or of one page) merge into one source, so no line is paid for twice; the result is ordered by
path and position, the way a reader would meet it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..sources.base import Location
from .ranking import ScoredChunk

# After this many chunks in a row that did not fit, the budget is as full as it will get.
MAX_MISSES = 64


@dataclass
class SelectedSource:
    """A contiguous span of one file (lines) or one page, as it goes into the prompt."""

    location: Location
    text: str
    score: float
    tokens: int = 0

    @property
    def path(self) -> str:
        return self.location.source

    def cite(self) -> str:
        return self.location.cite()

    def to_dict(self) -> dict[str, Any]:
        return {**self.location.to_dict(), "cite": self.cite(), "score": round(self.score, 6), "tokens": self.tokens}


@dataclass
class _Span:
    path: str
    page: int | None
    section: str | None
    lines: dict[int, str]  # line-based spans: line number → text
    pieces: dict[int, str]  # page-based spans: chunk ordinal → text
    score: float
    tokens: int = 0

    @property
    def start(self) -> int:
        return min(self.lines) if self.lines else 0

    @property
    def end(self) -> int:
        return max(self.lines) if self.lines else 0

    def text(self) -> str:
        if self.lines:
            return "\n".join(self.lines[n] for n in sorted(self.lines))
        return "\n\n".join(self.pieces[o] for o in sorted(self.pieces))

    def location(self) -> Location:
        if self.lines:
            return Location(self.path, page=self.page, line_start=self.start, line_end=self.end, section=self.section)
        return Location(self.path, page=self.page, section=self.section)


def source_header(location: Location) -> str:
    """The line that introduces a source in the prompt; its tokens count against the budget."""
    return f"[{location.cite()}]\n"


def pack_chunks(
    ranked: Sequence[ScoredChunk],
    budget: int,
    count_tokens: Callable[[str], int],
    *,
    header: Callable[[Location], str] = source_header,
) -> list[SelectedSource]:
    """Take the best chunks until ``budget`` tokens (headers included) are used; merge and order them."""
    spans: list[_Span] = []
    used = 0
    misses = 0
    for item in ranked:
        if misses >= MAX_MISSES or budget - used <= 0:
            break
        chunk = item.chunk
        loc = chunk.location
        line_based = loc.line_start is not None and loc.line_end is not None and loc.page is None
        candidate = _Span(loc.source, loc.page, loc.section, {}, {}, item.score)
        if line_based:
            assert loc.line_start is not None
            candidate.lines = {loc.line_start + k: line for k, line in enumerate(chunk.text.split("\n"))}
        else:
            candidate.pieces = {chunk.ordinal: chunk.text}
        touching = [s for s in spans if _touches(s, candidate)]
        if touching and all(_covers(s, candidate) for s in touching[:1]) and len(touching) == 1:
            touching[0].score = max(touching[0].score, item.score)
            continue  # already inside the context: costs nothing
        merged = candidate
        for span in touching:
            merged = _merge(span, merged)
        text = merged.text()
        merged.tokens = count_tokens(header(merged.location()) + text)
        delta = merged.tokens - sum(s.tokens for s in touching)
        if used + delta > budget:
            misses += 1
            continue
        misses = 0
        used += delta
        spans = [s for s in spans if s not in touching] + [merged]
    spans.sort(key=lambda s: (s.path, s.page or 0, s.start, min(s.pieces) if s.pieces else 0))
    return [SelectedSource(s.location(), s.text(), s.score, s.tokens) for s in spans]


def _touches(a: _Span, b: _Span) -> bool:
    if a.path != b.path or a.page != b.page:
        return False
    if a.lines and b.lines:
        return b.start <= a.end + 1 and b.end >= a.start - 1
    return not a.lines and not b.lines  # chunks of one page form one source


def _covers(a: _Span, b: _Span) -> bool:
    if a.lines and b.lines:
        return a.start <= b.start and b.end <= a.end
    return set(b.pieces) <= set(a.pieces)


def _merge(a: _Span, b: _Span) -> _Span:
    return _Span(
        a.path,
        a.page,
        a.section if a.section == b.section else None,
        {**a.lines, **b.lines},
        {**a.pieces, **b.pieces},
        max(a.score, b.score),
    )

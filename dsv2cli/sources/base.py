"""The source interface: every input becomes a Document made of located Segments."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .neutral import Neutralised


@dataclass(frozen=True)
class Location:
    """Where a piece of text came from, precise enough to cite."""

    source: str  # display path, or "<stdin>"
    page: int | None = None  # 1-based
    line_start: int | None = None  # 1-based, inclusive
    line_end: int | None = None
    section: str | None = None  # e.g. "8.2"

    def cite(self) -> str:
        """``path:12-40``, ``report.pdf p. 4``, ``contract.pdf § 8.2, p. 4``."""
        parts = []
        if self.section:
            parts.append(f"§ {self.section}")
        if self.page is not None:
            parts.append(f"p. {self.page}")
        if parts:
            return f"{self.source} {', '.join(parts)}"
        if self.line_start is not None:
            end = self.line_end if self.line_end is not None else self.line_start
            span = str(self.line_start) if end == self.line_start else f"{self.line_start}-{end}"
            return f"{self.source}:{span}"
        return self.source

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.source,
            "page": self.page,
            "line_start": self.line_start,
            "line_end": self.line_end,
            "section": self.section,
        }


@dataclass(frozen=True)
class Segment:
    text: str
    location: Location


@dataclass(frozen=True)
class Redaction:
    """A secret value replaced by ``[REDACTED:kind]`` as the input was read (sources/secrets.py)."""

    path: str
    line: int | None  # 1-based; None: in the file's name
    kind: str
    page: int | None = None  # a PDF's page (line counts within the page's text)

    def where(self) -> str:
        """``line 12``, ``p. 3``, ``p. 3 line 4``, or ``name``."""
        if self.line is None:
            return "name"
        return f"p. {self.page} line {self.line}" if self.page is not None else f"line {self.line}"

    def note(self) -> str:
        if self.line is None:
            return f"{self.path}: redacted a value in the file name that looks like a secret ({self.kind})"
        page = f" p. {self.page}" if self.page is not None else ""
        return f"{self.path}{page}:{self.line}: redacted a value that looks like a secret ({self.kind})"


@dataclass
class Document:
    source: str  # display name
    kind: str  # "text", "markdown", "pdf", "html", "code", ...
    segments: list[Segment]
    warnings: list[str] = field(default_factory=list)
    redactions: list[Redaction] = field(default_factory=list)  # secrets taken out of the text
    # How section labels were found, when the reader knows ("outline" for a PDF's bookmarks);
    # otherwise ``headings`` tells from the segments.
    heading_source: str | None = None
    # Text that imitated the prompt's structure and was made inert (sources/neutral.py).
    neutralised: list[Neutralised] = field(default_factory=list)

    @property
    def headings(self) -> str:
        """How sections were found: "outline", "numbered headings", or "none" (no section labels)."""
        if self.heading_source is not None:
            return self.heading_source
        return "numbered headings" if any(s.location.section for s in self.segments) else "none"

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.segments)

    @property
    def content_hash(self) -> str:
        """sha256 (hex) of ``text``: a cache key for token counts; equal text gives equal hashes wherever it lives."""
        return hashlib.sha256(self.text.encode("utf-8", "surrogatepass")).hexdigest()

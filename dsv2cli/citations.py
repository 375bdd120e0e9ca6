"""Citations in an answer, checked against the passages that were actually sent.

A *marker* is text in square brackets that names a source the way the packed context does:
``[report.pdf p. 4]``, ``[p. 4]``, ``[contract.pdf § 8.2, p. 3]``, ``[src/app.py:12-20]``,
``[src/app.py lines 12-20]``, ``[notes.md § Fares]``; several may share one pair of brackets,
separated by ``;``. Brackets that name no page, section, line or known file (``[0]``, ``[x]``,
a markdown link ``[text](url)``) are not markers.

A marker *matches* a packed passage when the file is the same (the marker may give the path as
sent, a shorter tail of it such as the file name, or no path at all) and

- it names pages: the passage is on one of them (a section given with a page is not checked:
  the page decides);
- else it names lines: the passage's lines overlap them;
- else it names a section: the passage is in that section (or a subsection of it);
- else (a file alone): any passage of the file.

A marker that matches nothing is *unknown*: an invented source, or the example format of a
prompt copied as if it were one. A passage no marker matches is *uncited*.

A *quote* (text in double quotation marks) next to a marker, i.e. followed by it within
``QUOTE_GAP`` characters on the same line or right after it, is checked against the passages
the marker matched with extract's evidence normalisation (:mod:`dsv2cli.sources.quotes`: NFKC,
case-folded, curly quotes and dashes made plain, whitespace collapsed). A quote that elides text
(``...`` or ``…``) matches when its pieces appear in that order. Quotes shorter than
``MIN_QUOTE_CHARS`` after normalisation prove nothing and are not checked.

Pure functions over strings and :class:`~dsv2cli.sources.base.Location`: no I/O, no model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .sources.base import Location
from .sources.quotes import MIN_QUOTE_CHARS, normalise, normalise_quote

# A quote is next to a marker that starts at most this many characters after it (same line) ...
QUOTE_GAP = 60
# ... or that ends at most this many characters before it ("[p. 4]: "the fee is ..."").
QUOTE_GAP_BEFORE = 12

# A path given alone ("[src/app.py]") counts as a marker when it names a packed file or ends
# in one of these extensions.
FILE_EXTENSIONS = frozenset(
    {
        "pdf", "txt", "md", "markdown", "rst", "html", "htm", "py", "pyi", "js", "ts", "tsx", "jsx", "go",
        "rs", "java", "kt", "c", "h", "cc", "cpp", "hpp", "cs", "rb", "php", "swift", "scala", "sh", "toml",
        "yaml", "yml", "json", "cfg", "ini", "sql", "r",
    }
)  # fmt: skip

_BRACKET = re.compile(r"\[([^\[\]\n]{1,300})\](?!\()")
_RANGE = r"\d+(?:\s*(?:-|–|—|to)\s*\d+)?"
_RANGES = rf"{_RANGE}(?:\s*(?:,|&|and)\s*{_RANGE})*"
_PAGES = re.compile(rf"(?<![\w.])(?:pp?\.|pages?\b)\s*({_RANGES})", re.IGNORECASE)
_LINES = re.compile(
    rf"(?::\s*L?({_RANGES})\s*$)|(?:#L(\d+)(?:-L?(\d+))?)|(?:(?<![\w.])(?:lines?\b|ll?\.)\s*({_RANGES}))",
    re.IGNORECASE,
)
_SECTION = re.compile(r"(?:§+|(?<!\w)sect(?:ion|\.)\s)\s*([^,;]+?)\s*(?=,|;|$)", re.IGNORECASE)
_QUOTE = re.compile(r'"([^"\n]{1,600})"|“([^”\n]{1,600})”|«([^»\n]{1,600})»')


@dataclass(frozen=True)
class Passage:
    """One packed passage: where it is, and the text the model read."""

    location: Location
    text: str

    @property
    def path(self) -> str:
        return self.location.source

    def cite(self) -> str:
        return self.location.cite()

    def to_dict(self) -> dict[str, Any]:
        return {**self.location.to_dict(), "cite": self.cite()}


@dataclass(frozen=True)
class Marker:
    """One citation as the answer wrote it, parsed."""

    text: str  # as written, brackets included: "[report.pdf p. 4]"
    start: int  # offsets of the brackets in the answer
    end: int
    path: str | None = None
    pages: tuple[tuple[int, int], ...] = ()
    lines: tuple[tuple[int, int], ...] = ()
    section: str | None = None


def _ranges(text: str) -> tuple[tuple[int, int], ...]:
    out = []
    for piece in re.split(r"\s*(?:,|&|and)\s*", text.strip()):
        numbers = [int(n) for n in re.findall(r"\d+", piece)]
        if numbers:
            low, high = numbers[0], numbers[-1]
            out.append((min(low, high), max(low, high)))
    return tuple(out)


def _clean_path(text: str) -> str | None:
    path = text.strip().strip("`'\"").strip(" ,:;-–").strip()
    path = re.sub(r"^(?:see|source|sources|from|in)\s*:?\s+", "", path, flags=re.IGNORECASE).strip("`'\" ")
    return path or None


def parse_part(text: str, known_paths: Iterable[str] = ()) -> Marker | None:
    """One citation (the text between brackets, or one ``;``-separated part of it); None when it is
    not one. Its offsets are 0 until :func:`find_markers` places it in the answer."""
    body = text.strip()
    if not body:
        return None
    cut = len(body)  # where the path ends: at the first page / section / line token
    pages: tuple[tuple[int, int], ...] = ()
    lines: tuple[tuple[int, int], ...] = ()
    section = None
    if m := _PAGES.search(body):
        pages = _ranges(m.group(1))
        cut = min(cut, m.start())
    if m := _SECTION.search(body):
        section = m.group(1).strip().rstrip(".") or None
        cut = min(cut, m.start())
        if section and (p := _PAGES.search(section)):  # "§ 8.2 p. 4" without a comma
            section = section[: p.start()].strip(" ,") or None
    if m := _LINES.search(body):
        if m.group(1):
            lines = _ranges(m.group(1))
        elif m.group(2):
            lines = ((int(m.group(2)), int(m.group(3) or m.group(2))),)
        else:
            lines = _ranges(m.group(4))
        lines = tuple((min(a, b), max(a, b)) for a, b in lines)
        cut = min(cut, m.start())
    path = _clean_path(body[:cut])
    if path is not None and (" " in path.strip() and "/" not in path and not _has_extension(path)):
        return None  # prose in brackets ("[see the table above, p. 4]" is not worth guessing at)
    if not (pages or lines or section) and (path is None or not (_is_known(path, known_paths) or _has_extension(path))):
        return None
    return Marker(f"[{body}]", 0, 0, path, pages, lines, section)


def _has_extension(path: str) -> bool:
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return "." in name and name.rsplit(".", 1)[1].lower() in FILE_EXTENSIONS


def _norm_path(path: str) -> str:
    path = path.replace("\\", "/").strip()
    while path.startswith("./"):
        path = path[2:]
    return path


def same_file(marker_path: str, passage_path: str) -> bool:
    """The marker names the passage's file: the same path, or a tail of it at a ``/`` (or the reverse)."""
    a, b = _norm_path(marker_path), _norm_path(passage_path)
    return a == b or b.endswith("/" + a) or a.endswith("/" + b)


def _is_known(path: str, known_paths: Iterable[str]) -> bool:
    return any(same_file(path, known) for known in known_paths)


def find_markers(answer: str, known_paths: Iterable[str] = ()) -> list[Marker]:
    """Every citation in the answer, in order; several in one pair of brackets count separately."""
    known = list(known_paths)
    found: list[Marker] = []
    for m in _BRACKET.finditer(answer):
        parts = m.group(1).split(";")
        for part in parts:
            marker = parse_part(part, known_paths=known)
            if marker is None:
                continue
            text = m.group(0) if len(parts) == 1 else marker.text
            found.append(replace(marker, text=text, start=m.start(), end=m.end()))
    return found


def _norm_section(section: str) -> str:
    return re.sub(r"\s+", " ", section.strip().rstrip(".")).casefold()


def _in_section(marker_section: str, passage_section: str | None) -> bool:
    if not passage_section:
        return False
    a, b = _norm_section(marker_section), _norm_section(passage_section)
    return a == b or b.startswith(a + ".") or b.startswith(a + " ")


def _overlaps(ranges: Sequence[tuple[int, int]], start: int | None, end: int | None) -> bool:
    if start is None:
        return False
    end = end if end is not None else start
    return any(low <= end and start <= high for low, high in ranges)


def _show(ranges: Sequence[tuple[int, int]]) -> str:
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def _not_sent(kind: str, ranges: Sequence[tuple[int, int]], path: str | None) -> str:
    several = len(ranges) > 1 or ranges[0][0] != ranges[0][1]
    what = f"{kind}s" if several else kind
    return f"{what} {_show(ranges)}{f' of {path}' if path else ''} {'were' if several else 'was'} not sent"


def match(marker: Marker, passages: Sequence[Passage]) -> tuple[list[int], str]:
    """Indexes of the passages the marker names, and when there are none, why (one phrase)."""
    candidates = [i for i, p in enumerate(passages) if marker.path is None or same_file(marker.path, p.path)]
    if not candidates:
        return [], f"no passage of {marker.path} was sent"
    if marker.pages:
        hits = [i for i in candidates if _overlaps(marker.pages, passages[i].location.page, None)]
        return hits, "" if hits else _not_sent("page", marker.pages, marker.path)
    if marker.lines:
        hits = [
            i
            for i in candidates
            if _overlaps(marker.lines, passages[i].location.line_start, passages[i].location.line_end)
        ]
        return hits, "" if hits else _not_sent("line", marker.lines, marker.path)
    if marker.section:
        hits = [i for i in candidates if _in_section(marker.section, passages[i].location.section)]
        where = f" of {marker.path}" if marker.path else ""
        return hits, "" if hits else f"section {marker.section}{where} was not sent"
    return candidates, ""


@dataclass(frozen=True)
class UsedMarker:
    """A marker that matched: how it was written, how often, and the passages it names."""

    marker: Marker
    count: int
    passages: tuple[int, ...]

    def to_dict(self, passages: Sequence[Passage]) -> dict[str, Any]:
        """Where the marker points, read from the passages it matched: ``section`` is theirs (several
        joined by ", " when a page holds more than one); ``section_mismatch`` says that the marker
        named a section none of them is in (its page decided the match); passages without a
        section cannot contradict one."""
        hits = [passages[i] for i in self.passages]
        pages = sorted({p.location.page for p in hits if p.location.page is not None})
        sections = list(dict.fromkeys(p.location.section for p in hits if p.location.section))
        m = self.marker
        named = [s for s in sections if m.section and _in_section(m.section, s)]
        lines = m.lines or tuple(
            (p.location.line_start, p.location.line_end or p.location.line_start)
            for p in hits
            if p.location.line_start is not None
        )
        return {
            "marker": m.text,
            "count": self.count,
            "path": ", ".join(dict.fromkeys(p.path for p in hits)),
            "page": (m.pages[0][0] if m.pages else (pages[0] if pages else None)),
            "page_end": (m.pages[-1][1] if m.pages else (pages[-1] if pages else None)),
            "line_start": min(a for a, _ in lines) if lines else None,
            "line_end": max(b for _, b in lines) if lines else None,
            "section": ", ".join(named or sections) or None,
            "section_mismatch": bool(m.section and sections) and not named,  # unknown: not a mismatch
            "passages": [p.cite() for p in hits],
        }


@dataclass(frozen=True)
class UnknownMarker:
    marker: Marker
    count: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        m = self.marker
        return {
            "marker": m.text,
            "count": self.count,
            "path": m.path,
            "page": m.pages[0][0] if m.pages else None,
            "line_start": m.lines[0][0] if m.lines else None,
            "line_end": m.lines[0][1] if m.lines else None,
            "section": m.section,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class QuoteCheck:
    """A quoted span next to a marker, looked for in the passages that marker names."""

    quote: str
    marker: str  # the marker's text
    verified: bool
    found_in: str | None = None  # when not in the cited passages: the passage that does hold it

    def to_dict(self) -> dict[str, Any]:
        return {"quote": self.quote, "marker": self.marker, "verified": self.verified, "found_in": self.found_in}


@dataclass
class CitationCheck:
    """The verdict on one answer's citations."""

    used: list[UsedMarker] = field(default_factory=list)
    unknown: list[UnknownMarker] = field(default_factory=list)
    uncited: list[int] = field(default_factory=list)  # indexes into passages
    quotes: list[QuoteCheck] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)

    @property
    def unverified_quotes(self) -> list[QuoteCheck]:
        return [q for q in self.quotes if not q.verified]

    @property
    def ok(self) -> bool:
        """Every marker names a passage that was sent, and every checked quote is in it."""
        return not self.unknown and not self.unverified_quotes

    def problems(self) -> list[str]:
        """One phrase per kind of problem, for a one-line warning."""
        out = []
        if self.unknown:
            n = len(self.unknown)
            out.append(
                f"{n} citation{'s' if n > 1 else ''} match{'' if n > 1 else 'es'} nothing that was sent: "
                + ", ".join(f"{u.marker.text} ({u.reason})" for u in self.unknown)
            )
        if bad := self.unverified_quotes:
            n = len(bad)
            out.append(
                f"{n} quote{'s' if n > 1 else ''} not found in the passage cited: "
                + ", ".join(f'"{_short(q.quote)}" {q.marker}' for q in bad)
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "verified": self.ok,
            "used": [u.to_dict(self.passages) for u in self.used],
            "unknown": [u.to_dict() for u in self.unknown],
            "uncited": [self.passages[i].to_dict() for i in self.uncited],
            "quotes": [q.to_dict() for q in self.quotes],
            "passages_sent": len(self.passages),
        }


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Normalised:
    """Each passage's text normalised once."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        self.passages = passages
        self._cache: dict[int, str] = {}

    def text(self, i: int) -> str:
        if i not in self._cache:
            self._cache[i] = normalise(self.passages[i].text)[0]
        return self._cache[i]

    def holds(self, indexes: Iterable[int], pieces: Sequence[str]) -> bool:
        joined = " ".join(self.text(i) for i in indexes)
        at = 0
        for piece in pieces:
            found = joined.find(piece, at)
            if found < 0:
                return False
            at = found + len(piece)
        return True


def quote_pieces(quote: str) -> list[str] | None:
    """The normalised pieces a quote must contain in order; None when it is too short to check."""
    pieces = [normalise_quote(p) for p in re.split(r"\.\.\.|…", quote)]
    pieces = [p for p in pieces if p]
    if sum(len(p) for p in pieces) < MIN_QUOTE_CHARS:
        return None
    return pieces


def _quotes(answer: str) -> list[tuple[str, int, int]]:
    return [(next(g for g in m.groups() if g is not None), m.start(), m.end()) for m in _QUOTE.finditer(answer)]


def _marker_next_to(answer: str, start: int, end: int, markers: Sequence[Marker]) -> Marker | None:
    after = [m for m in markers if end <= m.start <= end + QUOTE_GAP and "\n" not in answer[end : m.start]]
    after = [m for m in after if '"' not in answer[end : m.start] and "“" not in answer[end : m.start]]
    if after:
        return min(after, key=lambda m: m.start)
    before = [m for m in markers if start - QUOTE_GAP_BEFORE <= m.end <= start and "\n" not in answer[m.end : start]]
    return max(before, key=lambda m: m.end) if before else None


def check(answer: str, passages: Sequence[Passage]) -> CitationCheck:
    """Match every marker of ``answer`` against ``passages`` and check the quotes next to them."""
    passages = list(passages)
    markers = find_markers(answer, {p.path for p in passages})
    result = CitationCheck(passages=passages)
    hits_of: dict[str, list[int]] = {}
    used: dict[str, tuple[Marker, int, list[int]]] = {}
    unknown: dict[str, tuple[Marker, int, str]] = {}
    for marker in markers:
        key = re.sub(r"\s+", " ", marker.text)
        hits, reason = match(marker, passages)
        hits_of[marker.text] = hits
        if hits:
            first, count, _ = used.get(key, (marker, 0, hits))
            used[key] = (first, count + 1, hits)
        else:
            first, count, _ = unknown.get(key, (marker, 0, reason))
            unknown[key] = (first, count + 1, reason)
    result.used = [UsedMarker(m, n, tuple(h)) for m, n, h in used.values()]
    result.unknown = [UnknownMarker(m, n, r) for m, n, r in unknown.values()]
    cited = {i for _, _, hits in used.values() for i in hits}
    result.uncited = [i for i in range(len(passages)) if i not in cited]

    texts = _Normalised(passages)
    for quote, start, end in _quotes(answer):
        beside = _marker_next_to(answer, start, end, markers)
        pieces = quote_pieces(quote)
        if beside is None or pieces is None:
            continue
        hits = hits_of.get(beside.text, [])
        if hits and texts.holds(hits, pieces):
            result.quotes.append(QuoteCheck(quote, beside.text, True))
            continue
        elsewhere = next((passages[i].cite() for i in range(len(passages)) if texts.holds([i], pieces)), None)
        result.quotes.append(QuoteCheck(quote, beside.text, False, elsewhere))
    return result


def format_example(passages: Sequence[Passage], max_lines: int = 8) -> str:
    """How to cite, shown with the first real marker of each kind in the packed context
    (a page, a section, lines): ``[report.pdf p. 1]`` or ``[src/app.py:1-8]``.

    A line range is shortened to its first ``max_lines`` lines (still inside the passage): a
    citation should name the lines it uses, not a whole file.
    """
    examples: dict[str, str] = {}
    for p in passages:
        loc = p.location
        if loc.page is not None:
            kind = "page"
        elif loc.section:
            kind = "section"
        elif loc.line_start is not None:
            kind = "lines"
            end = loc.line_end if loc.line_end is not None else loc.line_start
            loc = Location(loc.source, line_start=loc.line_start, line_end=min(end, loc.line_start + max_lines - 1))
        else:
            kind = "file"
        examples.setdefault(kind, f"[{loc.cite()}]")
    if not examples:
        return "[file p. N] or [file:first-last line]"
    return " or ".join(examples.values())

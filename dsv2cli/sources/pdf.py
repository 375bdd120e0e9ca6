"""PDF -> text per page, with pypdfium2 (PDFium, the engine in Chrome).

Why pypdfium2 and no fallback (measured with bench/ingest.py, see its output and the commit log):
- speed: 12-25x pypdf on the same files (978 vs 64 pages/s on a 236-page manual, 196 vs 8 on a
  160-page 10-K, both on a 2-core x86-64 machine; here ~440 vs ~32 pages/s on the Debian
  libtasn1 manual);
- fidelity: the same words (identical word multisets on the libtasn1 and shared-mime-info
  manuals and both samples), the same reading order on our generated PDFs (content order, so a
  two-column page reads left column then right), row-per-line tables, and the same
  headers/footers. PDFium also marks the hyphens it finds at line ends, so we join the
  typesetter's hyphenation (31 words in the libtasn1 manual: "manip-ulation", "OP-TIONAL");
  pypdf leaves all 31 split as "manip-\\nulation".
- robustness: both refuse the same truncated files (no xref, no trailer), so pypdf as a
  fallback recovered nothing PDFium could not; it also logs to stderr on bad input.

Header/footer stripping: a line repeated at the top or bottom of most pages ("ACME Corp -
Confidential", "Page 3 of 12") carries no information, costs tokens on every page and cuts
sentences that run across a page break. We drop a line when it sits in the first or last two
lines of a page and the same line is in that position on at least 60% of the pages with text,
and there are at least 3 such pages. Page numbers ("7", "- 7 -", "Page 7 of 40") at a page
edge are dropped when they follow the page order on 3+ pages. The page index is kept in
``Location.page``, so nothing citable is lost. Running headers that change per chapter
("Chapter 2: Usage") stay: they are rare enough to be cheap and they say where the page belongs.

Sections (``Location.section``), in this order of trust:
1. the PDF's outline (bookmarks), when it has 2+ entries that point at pages and at least a
   third of their titles are found on those pages: the author's own structure in most manuals
   and annual reports. Each entry starts where its title is found on
   its destination page (else at the top of that page) and governs until the next entry starts.
   The label is the entry's number ("6.3.4"), else the number the heading line carries on the
   page ("2.1 ASN.1 syntax" for the bookmark "ASN.1 syntax"), else its title ("Concept Index",
   brackets made round so a citation marker stays whole, cut at 80 characters). Pages before
   the first entry have no section.
2. without an outline, numbered headings in the text (structure.py), with contents pages and
   table rows set aside and each heading followed by body text;
3. otherwise none. ``Document.headings`` says which ("outline", "numbered headings", "none").
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .base import Document, Location, Segment
from .structure import find_headings, parse_heading

# PDFium error codes (fpdfview.h FPDF_ERR_*)
_ERR_PASSWORD = 4
_ERR_SECURITY = 5

# Character -> text, applied with str.replace: str.translate takes its slow per-character path
# for non-ASCII tables (0.26 ms per page of R's reference manual, a fifth of its load time);
# a replace of a character the page lacks is one fast scan. No output is another's input, so
# replacing one after another gives what a translation would.
_LIGATURES = (("ﬀ", "ff"), ("ﬁ", "fi"), ("ﬂ", "fl"), ("ﬃ", "ffi"), ("ﬄ", "ffl"), ("ﬅ", "ft"), ("ﬆ", "st"))
# PDFium marks a hyphen it found at a line break as U+FFFE (get_text_range) or U+0002
# (get_text_bounded); a soft hyphen U+00AD means the same. Other control characters are noise.
_HYPHEN_MARKS = (("\ufffe", "\x02"), ("\xad", "\x02"))
_CONTROLS = re.compile(r"[\x00\x01\x03-\x08\x0b\x0c\x0e-\x1f\uffff]")
_HEADER_FOOTER_SHARE = 0.6
_EDGE_LINES = 2


def _dehyphenate(text: str) -> str:
    """Join words PDFium broke at a line end (marked U+0002).

    Letters of the same case on both sides ("manip-ulation", "OP-TIONAL") are typesetter
    hyphenation: join without the hyphen. A digit or a case change ("COVID-19", "Jean-Paul")
    keeps the hyphen. A compound that really has a hyphen and breaks at it ("well-known")
    loses it; in running text that is rarer than line-break hyphenation (all 31 marks in the
    libtasn1 manual were typesetter hyphens), and the word stays readable.
    """
    if "\x02" not in text:
        return text
    text = re.sub(r"(?:(?<=[a-zß-ÿ])\x02\s*(?=[a-zß-ÿ]))|(?:(?<=[A-ZÀ-Þ])\x02\s*(?=[A-ZÀ-Þ]))", "", text)
    return re.sub(r"\x02\s*", "-", text)


def _replace_all(text: str, pairs: tuple[tuple[str, str], ...]) -> str:
    for old, new in pairs:
        text = text.replace(old, new)
    return text


# What read_pdf returns, as kept by the text cache (pdfcache.py): bump it when clean_page_text or
# read_outline change what they give, so that text extracted the old way is read again.
READER_VERSION = 1


def clean_page_text(raw: str) -> str:
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    text = _dehyphenate(_replace_all(text, _HYPHEN_MARKS))
    text = _CONTROLS.sub("", _replace_all(text, _LIGATURES))
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def _edge_key(line: str) -> str:
    # Exact text (whitespace aside): with digits masked, a short page's first body line
    # ("Week 3: ...") would match the same line on other pages and be dropped as a header.
    return " ".join(line.split())


_PAGE_NUMBER = re.compile(r"[\W_]*(?:page\s*)?(\d{1,4})(?:\s*(?:of|/)\s*\d{1,4})?[\W_]*", re.IGNORECASE)


def _page_number_offset(pages: list[list[str]]) -> int | None:
    """The usual (printed number - page index) of bare page-number lines at page edges, if consistent.

    Printed numbers ("7", "- 7 -", "Page 7 of 40") often start after front matter, so they
    rarely equal the page index; a constant offset on 3+ pages tells them from content.
    """
    offsets: Counter[int] = Counter()
    for index, lines in enumerate(pages):
        seen: set[int] = set()
        for line in lines[:_EDGE_LINES] + lines[-_EDGE_LINES:]:
            m = _PAGE_NUMBER.fullmatch(line.strip())
            if m:
                seen.add(int(m.group(1)) - index)
        offsets.update(seen)
    if not offsets:
        return None
    offset, count = offsets.most_common(1)[0]
    return offset if count >= 3 else None


def _is_page_number(line: str, index: int, offset: int | None) -> bool:
    if offset is None:
        return False
    m = _PAGE_NUMBER.fullmatch(line.strip())
    return m is not None and int(m.group(1)) - index == offset


def strip_repeated_edges(pages: list[list[str]]) -> tuple[list[list[str]], int]:
    """Remove header/footer lines repeated on most pages, and page numbers (see module doc).

    Returns the pages and the number of lines removed.
    """
    with_text = [p for p in pages if p]
    if len(with_text) < 3:
        return pages, 0
    offset = _page_number_offset(pages)
    top: Counter[str] = Counter()
    bottom: Counter[str] = Counter()
    for lines in with_text:
        top.update({_edge_key(x) for x in lines[:_EDGE_LINES] if x.strip()})
        bottom.update({_edge_key(x) for x in lines[-_EDGE_LINES:] if x.strip()})
    need = max(3, int(len(with_text) * _HEADER_FOOTER_SHARE + 0.999))
    top_keys = {k for k, n in top.items() if n >= need}
    bottom_keys = {k for k, n in bottom.items() if n >= need}
    if not top_keys and not bottom_keys and offset is None:
        return pages, 0
    removed = 0
    out: list[list[str]] = []
    for index, lines in enumerate(pages):
        keep = list(lines)
        n = len(keep)
        top_idx = range(min(_EDGE_LINES, n))
        bottom_idx = range(max(0, n - _EDGE_LINES), n)
        drop = {i for i in top_idx if _edge_key(keep[i]) in top_keys}
        drop |= {i for i in bottom_idx if _edge_key(keep[i]) in bottom_keys}
        drop |= {i for i in (*top_idx, *bottom_idx) if _is_page_number(keep[i], index, offset)}
        removed += len(drop)
        kept = [x for i, x in enumerate(keep) if i not in drop]
        while kept and not kept[0].strip():
            kept.pop(0)
        while kept and not kept[-1].strip():
            kept.pop()
        out.append(kept)
    return out, removed


def _open_error(exc: Exception, source: str, password: str | None) -> InputError:
    code = getattr(exc, "err_code", None)
    if code == _ERR_PASSWORD:
        if password is None:
            return InputError(f"{source}: PDF is encrypted; pass --password")
        return InputError(f"{source}: wrong password for this encrypted PDF")
    if code == _ERR_SECURITY:
        return InputError(f"{source}: PDF uses an unsupported security handler")
    return InputError(f"{source}: not a readable PDF (corrupt or truncated)")


@dataclass(frozen=True)
class OutlineEntry:
    """One bookmark of the PDF's outline."""

    level: int  # 0 for a top-level entry
    title: str  # whitespace collapsed
    page: int  # 0-based index of its destination page


_MAX_OUTLINE = 20_000  # entries read; pypdfium2 itself stops at cycles and 15 levels


def _bookmark(item: Any) -> tuple[str, int | None]:
    """(title, page index) of a pypdfium2 bookmark: PdfBookmark (5.x) or PdfOutlineItem (4.x)."""
    if hasattr(item, "get_title"):
        dest = item.get_dest()
        title, index = item.get_title(), dest.get_index() if dest is not None else None
    else:
        title, index = item.title, item.page_index
    return str(title or ""), index if isinstance(index, int) else None


def read_outline(doc: Any, n_pages: int) -> list[OutlineEntry]:
    """The outline entries that point at a page of this document, in outline order.

    A damaged outline is read as far as it goes: the text of the pages matters more than the
    bookmarks, so no outline problem makes the PDF unreadable.
    """
    import pypdfium2 as pdfium

    entries: list[OutlineEntry] = []
    try:
        for item in doc.get_toc():
            title, page = _bookmark(item)
            title = " ".join(title.split())
            if title and isinstance(page, int) and 0 <= page < n_pages:
                entries.append(OutlineEntry(int(item.level), title, page))
            if len(entries) >= _MAX_OUTLINE:
                break
    except (pdfium.PdfiumError, ValueError, UnicodeDecodeError, OSError):
        pass
    return entries


def read_pages(data: bytes | Path, source: str, password: str | None = None) -> list[str]:
    """Cleaned text of every page, in order ('' for a page without a text layer)."""
    return read_pdf(data, source, password)[0]


def read_pdf(
    data: bytes | Path, source: str, password: str | None = None, cache: Path | None = None
) -> tuple[list[str], list[OutlineEntry]]:
    """Cleaned text of every page, in order ('' for a page without a text layer), and the outline.

    ``cache``: a folder where what is read from these bytes is kept, and read back the next time
    instead of parsing the PDF again (``pdfcache.py``); never for a PDF opened with a password."""
    if cache is None or password is not None or not isinstance(data, bytes):
        return _read_pdf(data, source, password)
    from .pdfcache import PdfTextCache

    store = PdfTextCache(cache, READER_VERSION)
    kept = store.get(data)
    if kept is not None:
        return kept[0], [OutlineEntry(level, title, page) for level, title, page in kept[1]]
    pages, outline = _read_pdf(data, source, password)
    store.put(data, (pages, [(e.level, e.title, e.page) for e in outline]))
    return pages, outline


def _read_pdf(data: bytes | Path, source: str, password: str | None) -> tuple[list[str], list[OutlineEntry]]:
    import pypdfium2 as pdfium  # lazy: keeps `dsv2 --help` fast

    try:
        doc = pdfium.PdfDocument(data, password=password)
    except pdfium.PdfiumError as exc:
        raise _open_error(exc, source, password) from None
    pages: list[str] = []
    outline: list[OutlineEntry] = []
    try:
        for index in range(len(doc)):
            try:
                page = doc[index]
                textpage = page.get_textpage()
                try:
                    raw = textpage.get_text_range()
                finally:
                    textpage.close()
                    page.close()
            except pdfium.PdfiumError as exc:
                raise InputError(f"{source}: page {index + 1} cannot be read (corrupt PDF)") from exc
            pages.append(clean_page_text(raw))
        outline = read_outline(doc, len(pages))
    finally:
        doc.close()
    return pages, outline


def _page_ranges(pages: list[str]) -> str:
    """[2, 3, 4, 7] -> '2-4, 7'"""
    nums = [i + 1 for i, text in enumerate(pages) if not text.strip()]
    spans: list[str] = []
    start = prev = nums[0]
    for n in [*nums[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        spans.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(spans)


def pdf_document(data: bytes | Path, source: str, password: str | None = None, cache: Path | None = None) -> Document:
    """A Document with one segment per page, or per (page, section) when sections are found
    (the outline first, else numbered headings: see the module doc). ``cache``: see ``read_pdf``."""
    texts, outline = read_pdf(data, source, password, cache)
    if not texts:
        raise InputError(f"{source}: PDF has no pages")
    if not any(t.strip() for t in texts):
        raise InputError(f"{source}: no page has a text layer (a scan?); run OCR first, e.g. `ocrmypdf in.pdf out.pdf`")
    warnings: list[str] = []
    if not all(t.strip() for t in texts):
        empty = [t for t in texts if not t.strip()]
        warnings.append(
            f"{source}: {len(empty)} of {len(texts)} pages have no text layer (scanned images?) "
            f"and were skipped: page {_page_ranges(texts)}"
        )
    pages, _removed = strip_repeated_edges([t.split("\n") if t.strip() else [] for t in texts])
    starts, located = outline_starts(pages, outline)
    if len(outline) >= 2 and located * _OUTLINE_FOUND >= len(outline):
        return Document(source, "pdf", _cut(pages, starts, source), warnings, heading_source="outline")
    # Without an outline, Document.headings says "numbered headings" or "none" from the segments.
    return Document(source, "pdf", page_segments(pages, source), warnings)


# -- Outline: where each bookmark's heading sits on its page, and its label ---------------------

_NOT_ALNUM = re.compile(r"[\W_]+")
# A heading's number or prefix before its title: "2.1 ", "6.3.4. ", "A ", "Chapter 3: ", "Appendix B "
_NUMBER_PREFIX = re.compile(
    r"\s*(?:(?:chapter|appendix|part|section)\s+)?(?:(?:\d{1,3}|[A-Z])(?:\.\d{1,3})*|[IVXLC]{1,6})\.?:?\s+",
    re.IGNORECASE,
)
_MAX_LABEL = 80
# An outline is trusted when at least 1 in this many entries' titles is found on its page: a
# title may differ from its heading, but an outline whose titles are nowhere points elsewhere.
_OUTLINE_FOUND = 3
_WRAPPED_MIN = 12  # characters of a title's first line, to accept a heading wrapped onto two lines


def _norm(text: str) -> str:
    return _NOT_ALNUM.sub("", text.casefold())


def _unnumbered(text: str) -> str:
    m = _NUMBER_PREFIX.match(text)
    return text[m.end() :] if m else text


def _norms(text: str) -> tuple[str, str]:
    """A line or a title as compared: its letters and digits casefolded, with and without its number."""
    return _norm(text), _norm(_unnumbered(text))


def _title_matches(line: tuple[str, str], title: tuple[str, str]) -> bool:
    """Does the line (``_norms``) read as the heading of the title (``_norms``)?"""
    (have, have_bare), (want, want_bare) = line, title
    if not have or not want:
        return False
    for h, w in ((have, want), (have_bare, want_bare), (have_bare, want)):
        if not h or not w:
            continue
        if h == w or (h.startswith(w) and len(h) - len(w) <= 4):  # a page number after the title
            return True
        if len(h) >= _WRAPPED_MIN and w.startswith(h):  # the title wraps onto the next line
            return True
    return False


def _find_title(lines: list[str], normed: dict[int, tuple[str, str]], title: str, begin: int) -> int | None:
    """The first line from ``begin`` on (then from the top) that reads as the title's heading.
    ``normed``: the page's lines already normalised, by index; filled as lines are compared, so
    each line of a page is normalised once however many entries point at the page."""
    want = _norms(title)
    order: list[int] = [*range(begin, len(lines)), *range(begin)]
    for i in order:
        have = normed.get(i)
        if have is None:
            have = normed[i] = _norms(lines[i])
        if _title_matches(have, want):
            return i
    return None


# The number a heading line carries, once the outline vouches that the line is a heading: any
# case after the number ("6.3.2 attach() and detach()"), lettered ("B.1 Invoking R"), appendices.
_LINE_NUMBERS = (
    re.compile(r"(\d{1,3}(?:\.\d{1,3})*)\.?\s+(\S.*)"),
    re.compile(r"([A-Z](?:\.\d{1,3})+)\.?\s+(\S.*)"),
    re.compile(r"((?:Appendix|APPENDIX|Annex|ANNEX)\s+(?:[A-Z]|[IVX]{1,4}|\d{1,2}))\b[.:]?\s*(.*)"),
)


def _line_number(line: str, title: str) -> str | None:
    s = line.strip()
    # "R and statistics" also reads as lettered heading "R" + "and statistics": compare both ways
    wanted = {w for w in (_norm(title)[:_WRAPPED_MIN], _norm(_unnumbered(title))[:_WRAPPED_MIN]) if w}
    for pattern in _LINE_NUMBERS:
        m = pattern.match(s)
        if m is None:
            continue
        rest = _norm(m.group(2))
        if any(rest.startswith(w) for w in wanted) or (not rest and not _norm(_unnumbered(title))):
            return m.group(1)
    return None


def outline_label(title: str, line: str | None) -> str:
    """The entry's number, else the number of its heading line on the page, else its title."""
    parsed = parse_heading(title)
    if parsed is not None:
        return parsed[0]
    number = _line_number(line, title) if line is not None else None
    if number is not None:
        return number
    label = title.translate(str.maketrans("[]", "()"))
    return label if len(label) <= _MAX_LABEL else label[: _MAX_LABEL - 1].rstrip() + "…"


def outline_starts(pages: list[list[str]], outline: list[OutlineEntry]) -> tuple[dict[int, dict[int, str]], int]:
    """page -> {line -> label}: where each outline entry starts (module doc); and how many
    entries' titles were found on their pages."""
    starts: dict[int, dict[int, str]] = {}
    located = 0
    last: dict[int, int] = {}  # page -> line where the previous entry on it starts
    normed: dict[int, dict[int, tuple[str, str]]] = {}  # page -> line -> _norms(line)
    for entry in outline:
        lines = pages[entry.page]
        begin = last.get(entry.page, 0)
        at = _find_title(lines, normed.setdefault(entry.page, {}), entry.title, begin)
        where = at if at is not None else begin
        located += at is not None
        starts.setdefault(entry.page, {})[where] = outline_label(entry.title, lines[at] if at is not None else None)
        last[entry.page] = where
    return starts, located


def page_segments(pages: list[list[str]], source: str) -> list[Segment]:
    """One segment per page; where numbered sections are found, also split at each section start."""
    flat = [(p, i) for p, lines in enumerate(pages) for i in range(len(lines))]
    headings = find_headings([pages[p][i] for p, i in flat])
    starts: dict[int, dict[int, str]] = {}
    for h in headings:
        p, i = flat[h.line]
        starts.setdefault(p, {})[i] = h.label
    return _cut(pages, starts, source)


def _cut(pages: list[list[str]], starts: dict[int, dict[int, str]], source: str) -> list[Segment]:
    """Segments per page, split where a section starts; a section runs on until the next starts."""
    segments: list[Segment] = []
    section: str | None = None
    for p, lines in enumerate(pages):
        cuts = starts.get(p, {})
        bounds = sorted({0, *cuts})
        for k, a in enumerate(bounds):
            b = bounds[k + 1] if k + 1 < len(bounds) else len(lines)
            section = cuts.get(a, section)
            text = "\n".join(lines[a:b]).strip("\n")
            if text.strip():
                segments.append(Segment(text, Location(source, page=p + 1, section=section)))
    return segments

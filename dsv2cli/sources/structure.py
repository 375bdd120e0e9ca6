"""Section and clause structure: numbered headings such as ``1.``, ``8.2``, ``Section 8.2``, ``§ 8``, ``ARTICLE IV``.

Only the start of a line can open a section. Numbers alone are weak evidence (a numbered list, a
figure such as "4.82 million", a line wrapped before "Section 8.2 of this Agreement"), so a
candidate is accepted only when it continues the numbering seen so far: the next sibling
(8.1 -> 8.2), a first child (8 -> 8.1) or the next item of an ancestor (8.3 -> 9). A list that
restarts at "1." inside section 4 is therefore not a section. A gap of one number is tolerated
(8.1 -> 8.3), because PDF text sometimes loses a heading in a table or a wrapped line.

A table of contents repeats every heading, so read naively its last entry ("14.4 ...") would
lock the numbering and the real headings after it would be refused. Before the numbering is
followed, these lines are set aside (``toc_lines``):
- a line with dot leaders and a page number ("6.3.4 Attaching lists . . . . . 28");
- a run of 3+ numbered lines with no body between them, none reading like a clause of its own,
  most ending in a page number ("2 Methods 5"), or 5+ such lines whatever their ends (a
  contents page whose numbers came out elsewhere, a table's rows);
- a number repeated on 3+ candidate lines close together: rows of a table ("4 CARD32 ...").
Chapters keep one style: after "4 Function reference", "5. COMBINING DOCUMENTS" (a licence's
clause list) is not chapter 5. "Appendix A ..." / "Annex II ..." ends the numbered body: it
labels what follows ("Appendix A") and the numbering starts afresh after it; so does back
matter on a line of its own ("Concept Index", "References", "Glossary").
Then a heading counts only where body text follows it: the next line is body, a clause
carrying its own text ("1.1 Agreement means this document."), or a first child heading that is
itself followed by body. A heading on the last line of the text also counts.
When the evidence is thin the answer is no section: callers leave ``Location.section`` unset.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}

# "ARTICLE IV", "Article 4 - Term", "ARTICLE IV. TERMINATION"
_ARTICLE = re.compile(r"(?:ARTICLE|Article)\s+([IVXLC]+|\d{1,3})\b\s*[.:\-–—]?\s*(.*)")
# "Section 8.2", "SECTION 8.2.", "Sec. 8", "Clause 12.1", "§ 8", "§§ 8.2"
_NAMED = re.compile(r"(?:SECTION|Section|Sec\.|CLAUSE|Clause|§+)\s*(\d{1,3}(?:\.\d{1,3})*)\.?(?=\s|$)\s*(.*)")
# "8.2 Limitation", "8.2. Limitation", "1. Definitions"
_DOTTED = re.compile(r"(\d{1,2}(?:\.\d{1,3})+)\.?\s+(\S.*)|(\d{1,2})\.\s+(\S.*)")
# "2 Definitions" (LaTeX style): accepted only on a short line that does not read like a sentence
_BARE = re.compile(r"(\d{1,2})\s+([A-Z].{0,60})")
# "Appendix A Copying Information", "ANNEX II: Prices": ends the numbered body, labelled as written
_APPENDIX = re.compile(r"(Appendix|APPENDIX|Annex|ANNEX)\s+([A-Z]|[IVX]{1,4}|\d{1,2})\b\s*[.:\-–—]?\s*(.*)")


@dataclass(frozen=True)
class Heading:
    line: int  # 0-based index into the lines given to find_headings
    label: str  # as written: "8.2", "IV"
    title: str  # the rest of the line, possibly the start of the clause text
    number: tuple[int, ...]


def _roman(text: str) -> int | None:
    total = 0
    for i, ch in enumerate(text):
        value = _ROMAN[ch]
        if i + 1 < len(text) and _ROMAN[text[i + 1]] > value:
            total -= value
        else:
            total += value
    return total if 0 < total < 200 else None


def _title_ok(title: str) -> bool:
    """Heading text starts like a title or a clause, not like a sentence continuing."""
    return not title or title[0].isupper() or title[0].isdigit() or title[0] in "(\"'“‘["


# A cross-reference wrapped to the start of a line: "Section 3.3 [Getting attributes], page 15."
_XREF = re.compile(r"\[[^\]]*\],?\s*(?:page|p\.)\s*\d+")


def parse_heading(line: str) -> tuple[str, tuple[int, ...], str] | None:
    """``(label, number, title)`` when ``line`` starts like a numbered heading, else None."""
    s = line.strip()
    if not s or len(s) > 400 or ("], p" in s and _XREF.search(s)):
        return None
    m = _ARTICLE.match(s)
    if m:
        label, title = m.group(1), m.group(2)
        value = int(label) if label.isdigit() else _roman(label)
        if value is None or not _title_ok(title):
            return None
        return label, (value,), title
    m = _NAMED.match(s)
    if m:
        label, title = m.group(1), m.group(2)
        if not _title_ok(title):
            return None
        return label, tuple(int(p) for p in label.split(".")), title
    m = _DOTTED.match(s)
    if m:
        label = m.group(1) or m.group(3)
        title = m.group(2) or m.group(4)
        if not _title_ok(title) or (title[0].isdigit() and not re.search(r"[A-Za-z]{3}", title)):
            return None  # "1.5 2.3 4.4" is a row of numbers; "2. 2025 at a glance" is a heading
        return label, tuple(int(p) for p in label.split(".")), title
    m = _BARE.fullmatch(s)
    if m and not s.endswith((".", ",", ";", ":")):
        return m.group(1), (int(m.group(1)),), m.group(2)
    return None


def _top_style(line: str) -> str:
    """How a top-level heading is written: "article", "named", "n." ("4. Term") or "bare" ("4 Term").
    One document writes its chapters one way; a list "5. COMBINING DOCUMENTS" in an appendix
    after chapters written "4 Function reference" is not chapter 5."""
    s = line.strip()
    if _ARTICLE.match(s):
        return "article"
    if _NAMED.match(s):
        return "named"
    return "n." if _DOTTED.match(s) else "bare"


# Back matter on a line of its own: "Concept Index", "Function and variable index", "References"
_BACK_MATTER = re.compile(
    r"(?:[A-Z][\w-]*\s+(?:[\w-]+\s+){0,3})?(?:Index|index|INDEX)|Bibliography|References|Glossary"
)


def _appendix(line: str) -> tuple[str, tuple[int, ...], str] | None:
    """An appendix or back-matter heading: ``(label, (), title)``; it ends the numbered body."""
    s = line.strip()
    if not s or len(s) > 200 or not s[0].isupper():
        return None
    m = _APPENDIX.match(s) if s[0] == "A" else None
    if m is not None and _title_ok(m.group(3)):
        return f"{m.group(1)} {m.group(2)}", (), m.group(3)
    if len(s) <= 40 and _BACK_MATTER.fullmatch(s):
        return s, (), s
    return None


def _continues(prev: tuple[int, ...] | None, cur: tuple[int, ...]) -> bool:
    if prev is None:
        # The first heading must look like the start of a numbering: 1, 1.1, I, or 0.
        return all(p <= 1 for p in cur)
    # a first child: 8 -> 8.1 (or 8.2, when 8.1 was lost)
    if len(cur) > len(prev) and cur[: len(prev)] == prev:
        return cur[len(prev)] <= 2 and all(p <= 1 for p in cur[len(prev) + 1 :])
    # the next sibling of prev or of one of its ancestors: 8.2 -> 8.3, 8.3 -> 9, 8.3 -> 9.1
    for depth in range(len(prev)):
        if cur[:depth] == prev[:depth] and len(cur) > depth and 1 <= cur[depth] - prev[depth] <= 2:
            return all(p <= 1 for p in cur[depth + 1 :])
    return False


# Dot leaders (". . . .", "....", "…", "____") then a page number, arabic or roman, ending the line.
_LEADERS = re.compile(r"(?:[.·…_]\s?){3,}\s*(?:\d{1,4}|[ivxlcdm]{1,7})\s*$", re.IGNORECASE)
# A title ending in a page number: "2 Methods 5", "Preface iii".
_TRAILING_PAGE = re.compile(r"\S\s+(?:\d{1,4}|[ivxlcdm]{1,7})$", re.IGNORECASE)
_BARE_NUMBER = re.compile(r"\s*(?:\d{1,4}|[ivxlcdm]{1,7})\s*", re.IGNORECASE)
_TOC_RUN = 3  # numbered lines in a row, mostly ending in page numbers: a contents listing
_LONG_RUN = 5  # numbered lines in a row whatever their ends: a contents listing or a table
_REPEAT_WINDOW = 40  # lines: the same number this close, 3+ times, is a table's rows
_REPEAT_COUNT = 3
_CLAUSE_TITLE = 70  # characters: a "title" this long is the clause's own text


_PAGE_END = frozenset("0123456789ivxlcdmIVXLCDM")
_MAX_TOC_LINE = 300  # characters: longer lines are never contents lines (and regexes stay linear)


def _ends_like_a_page(s: str) -> bool:
    return 0 < len(s) <= _MAX_TOC_LINE and s[-1] in _PAGE_END


def _self_bodied(title: str) -> bool:
    """A numbered line that carries its own text ("1.1 Agreement means this document.")."""
    t = title.rstrip()
    return len(t) > _CLAUSE_TITLE or (t.endswith((".", ";", ":", ",")) and not t.endswith(".."))


def _is_blankish(line: str) -> bool:
    s = line.strip()
    return not s or (len(s) <= 8 and _BARE_NUMBER.fullmatch(s) is not None)


def _trailing_number(line: str) -> int | None:
    tail = line.split()[-1] if line.split() else ""
    return int(tail) if tail.isdigit() else None


def _next_page_entry(before: str, after: str) -> bool:
    """Both lines end in a page number, the second no lower: ``after`` reads as the next contents line."""
    a, b = _trailing_number(before), _trailing_number(after)
    return a is not None and b is not None and b >= a


def toc_lines(
    lines: Sequence[str],
    parsed: Sequence[tuple[str, tuple[int, ...], str] | None],
    blankish: Sequence[bool] | None = None,
) -> set[int]:
    """Indices of contents lines and table rows that must not be read as headings (module doc)."""
    blank = blankish if blankish is not None else [_is_blankish(line) for line in lines]
    stripped = [line.strip() if _ends_like_a_page(line.strip()) else "" for line in lines]
    toc = {i for i, s in enumerate(stripped) if s and _LEADERS.search(s)}
    paged = toc | {i for i, s in enumerate(stripped) if s and _TRAILING_PAGE.search(s)}
    # Runs of numbered lines with nothing but blank lines, bare page numbers or contents lines
    # between them. When body text ends the run, its last line may be the first real heading
    # (the contents run straight into the body): it is kept unless it ends in a page number.
    run: list[int] = []

    def close(run: list[int], body_after: bool) -> None:
        if len(run) < _TOC_RUN:
            return
        with_page = [i for i in run if i in paged]
        if len(run) < _LONG_RUN and len(with_page) * 2 <= len(run):
            return
        keep_last = body_after and not _next_page_entry(lines[run[-2]], lines[run[-1]])
        toc.update(run[:-1] if keep_last else run)

    for i, p in enumerate(parsed):
        if i in toc or blank[i]:
            continue
        if p is not None and not _self_bodied(p[2]):
            run.append(i)
        else:
            close(run, body_after=True)
            run = []
    close(run, body_after=False)
    # The same number on 3+ lines close together: table rows ("4 CARD32 N_ALIASES").
    by_number: dict[tuple[int, ...], list[int]] = {}
    for i, p in enumerate(parsed):
        if p is not None and p[1] and i not in toc:
            by_number.setdefault(p[1], []).append(i)
    for where in by_number.values():
        for k in range(len(where) - _REPEAT_COUNT + 1):
            if where[k + _REPEAT_COUNT - 1] - where[k] <= _REPEAT_WINDOW:
                toc.update(where[k : k + _REPEAT_COUNT])
    return toc


def _body_follows(
    blank: Sequence[bool], parsed: Sequence[tuple[str, tuple[int, ...], str] | None], toc: set[int]
) -> list[bool]:
    """For each line: is it followed by body text (see module doc)? Computed back to front."""
    n = len(parsed)
    ok = [False] * n
    next_line: int | None = None  # the next line that is not blank (nor a bare page number)
    for i in range(n - 1, -1, -1):
        p = parsed[i]
        if p is not None and i not in toc:
            if next_line is None or _self_bodied(p[2]):
                ok[i] = True  # the last line of the text, or a clause with its own text
            else:
                q = parsed[next_line]
                if q is None or next_line in toc:
                    ok[i] = next_line not in toc
                elif _self_bodied(q[2]):
                    ok[i] = True
                else:
                    child = len(q[1]) > len(p[1]) and q[1][: len(p[1])] == p[1]
                    ok[i] = child and ok[next_line]
        if not blank[i]:
            next_line = i
    return ok


def find_headings(lines: Sequence[str]) -> list[Heading]:
    """Numbered headings that form a consistent numbering and are followed by body text, in order."""
    parsed = [parse_heading(line) or _appendix(line) for line in lines]
    if not any(parsed):
        return []
    blank = [_is_blankish(line) for line in lines]
    toc = toc_lines(lines, parsed, blank)
    body = _body_follows(blank, parsed, toc)
    found: list[Heading] = []
    prev: tuple[int, ...] | None = None
    top_style: str | None = None
    for index, p in enumerate(parsed):
        if p is None or index in toc or not body[index]:
            continue
        label, number, title = p
        if not number:  # an appendix: the numbering starts afresh after it, in the same style
            if found:
                found.append(Heading(index, label, title, number))
                prev = None
            continue
        style = _top_style(lines[index]) if len(number) == 1 else None
        if style is not None and top_style is not None and style != top_style:
            continue
        if _continues(prev, number):
            found.append(Heading(index, label, title, number))
            prev = number
            if style is not None:
                top_style = style
    # One isolated "1." is a list item more often than a structure.
    return found if sum(1 for h in found if h.number) >= 2 else []
